/* The public tokenizer API: loading by file type, and encode/decode over the shared tables. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../mapfile.h"
#include "tokenizer.h"

kp_status kp_tokenizer_alloc(const kp_allocator *a, int32_t n_vocab, kp_tokenizer **out)
{
    *out = NULL;
    if (n_vocab <= 0 || n_vocab > (1 << 24))
        return kp_fail(KP_ERR_FORMAT, "tokenizer vocabulary size %d is outside [1, 2^24]", n_vocab);
    a = kp_allocator_or_default(a);
    kp_tokenizer *t = kp_calloc(a, 1, sizeof *t);
    if (!t)
        return KP_ERR_OUT_OF_MEMORY;
    t->alloc = a;
    t->n_vocab = n_vocab;
    t->bos = t->eos = t->eot = t->pad = t->unk = -1;
    t->render_control = 1;
    t->piece_off = kp_calloc(a, (size_t)n_vocab + 1, sizeof *t->piece_off);
    t->type = kp_alloc(a, (size_t)n_vocab);
    t->eog = kp_calloc(a, (size_t)n_vocab, 1);
    if (!t->piece_off || !t->type || !t->eog) {
        kp_tokenizer_free(t);
        return KP_ERR_OUT_OF_MEMORY;
    }
    memset(t->type, KP_TOKEN_NORMAL, (size_t)n_vocab);
    *out = t;
    return KP_OK;
}

kp_status kp_tokenizer_set_pieces(kp_tokenizer *t, const char *const *bytes, const uint32_t *lens)
{
    size_t total = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        total += lens[i];
    if (total > UINT32_MAX)
        return kp_fail(KP_ERR_FORMAT, "tokenizer pieces take %zu bytes, more than 4 GiB", total);
    char *blob = kp_alloc(t->alloc, total ? total : 1);
    if (!blob)
        return KP_ERR_OUT_OF_MEMORY;
    kp_dealloc(t->alloc, t->piece_blob, t->piece_blob_size);
    t->piece_blob = blob;
    t->piece_blob_size = total ? total : 1;
    uint32_t off = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        t->piece_off[i] = off;
        if (lens[i])
            memcpy(blob + off, bytes[i], lens[i]);
        off += lens[i];
    }
    t->piece_off[t->n_vocab] = off;
    return KP_OK;
}

kp_status kp_tokenizer_pad(kp_tokenizer *t, int32_t n_vocab)
{
    const int32_t old = t->n_vocab;
    if (n_vocab == old)
        return KP_OK;
    /* llama2.c's tables are sized by n_vocab too; they are always built at the model's size */
    if (n_vocab < old || n_vocab > (1 << 24) || !strcmp(t->vt->name, "llama2c"))
        return kp_fail(KP_ERR_TOKENIZER_MISMATCH, "the tokenizer has %d ids, the model %d", old, n_vocab);
    const kp_allocator *a = t->alloc;
    const size_t n = (size_t)n_vocab, o = (size_t)old;
    uint32_t *off = kp_alloc(a, (n + 1) * sizeof *off);
    uint8_t *type = kp_alloc(a, n), *eog = kp_calloc(a, n, 1);
    if (!off || !type || !eog) {
        kp_dealloc(a, off, (n + 1) * sizeof *off);
        kp_dealloc(a, type, n);
        kp_dealloc(a, eog, n);
        return KP_ERR_OUT_OF_MEMORY;
    }
    memcpy(off, t->piece_off, (o + 1) * sizeof *off);
    for (size_t i = o + 1; i <= n; i++)
        off[i] = off[o];
    memcpy(type, t->type, o);
    memset(type + o, KP_TOKEN_UNUSED, n - o);
    memcpy(eog, t->eog, o);
    kp_dealloc(a, t->piece_off, (o + 1) * sizeof *off);
    kp_dealloc(a, t->type, o);
    kp_dealloc(a, t->eog, o);
    t->piece_off = off;
    t->type = type;
    t->eog = eog;
    t->n_vocab = n_vocab;
    return KP_OK;
}

void kp_tokenizer_params_init(kp_tokenizer_params *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
}

static int looks_like_json(const kp_mapped_file *f, const char *path)
{
    size_t n = strlen(path);
    if (n >= 5 && strcmp(path + n - 5, ".json") == 0)
        return 1;
    for (size_t i = 0; i < f->size; i++) {
        unsigned char ch = f->data[i];
        if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
            continue;
        return ch == '{';
    }
    return 0;
}

/* A SentencePiece ModelProto begins with field 1 (pieces), length-delimited: tag byte 0x0a. A
 * tokenizer.bin whose longest token is 10 bytes starts with that byte too, so a file whose
 * llama2.c entries end exactly at its end is taken for one unless it is named *.model. */
static int looks_like_spm(const kp_mapped_file *f, const char *path)
{
    size_t n = strlen(path);
    if (n >= 6 && strcmp(path + n - 6, ".model") == 0)
        return 1;
    return f->size > 2 && f->data[0] == 0x0a && kp_llama2c_tokenizer_count(f->data, f->size) < 0;
}

kp_status kp_tokenizer_load(const char *path, const kp_tokenizer_params *p, kp_tokenizer **out)
{
    kp_clear_error();
    if (!out)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_tokenizer_load: out is NULL");
    *out = NULL;
    if (!path)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_tokenizer_load: path is NULL");
    kp_tokenizer_params dp;
    kp_tokenizer_params_init(&dp);
    if (p) {
        if (p->struct_size < sizeof(size_t) || p->struct_size > sizeof dp)
            return kp_fail(KP_ERR_INVALID_ARG, "kp_tokenizer_params.struct_size %zu is not one this library knows",
                           p->struct_size);
        memcpy(&dp, p, p->struct_size);
    }
    if (dp.n_vocab < 0)
        return kp_fail(KP_ERR_INVALID_ARG, "n_vocab %d is negative", dp.n_vocab);
    const kp_allocator *a = kp_allocator_or_default(dp.allocator);
    /* A Hugging Face model folder holds its tokenizer as tokenizer.json */
    char in_dir[4096];
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        int n = snprintf(in_dir, sizeof in_dir, "%s/tokenizer.json", path);
        if (n < 0 || (size_t)n >= sizeof in_dir)
            return kp_fail(KP_ERR_INVALID_ARG, "path '%s' is too long", path);
        path = in_dir;
    }
    kp_mapped_file f;
    kp_status st = kp_file_map(path, &f);
    if (st)
        return st;
    if (f.size >= 4 && memcmp(f.data, "GGUF", 4) == 0)
        st = kp_gguf_tokenizer_new(a, f.data, f.size, out);
    else if (looks_like_json(&f, path))
        st = kp_tokenizer_hf_json_new(a, path, out);
    else if (looks_like_spm(&f, path))
        st = kp_tokenizer_spm_model_new(a, f.data, f.size, out);
    else
        st = kp_tokenizer_llama2c_new(a, f.data, f.size, dp.n_vocab, out);
    kp_file_unmap(&f);
    if (st && kp_error_text()[0]) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", kp_error_text());
        kp_fail(st, "%s: %s", path, msg);
    }
    return st;
}

void kp_tokenizer_free(kp_tokenizer *t)
{
    if (!t)
        return;
    if (t->vt && t->vt->destroy)
        t->vt->destroy(t);
    const kp_allocator *a = t->alloc;
    kp_dealloc(a, t->piece_blob, t->piece_blob_size);
    kp_dealloc(a, t->piece_off, ((size_t)t->n_vocab + 1) * sizeof *t->piece_off);
    kp_dealloc(a, t->type, (size_t)t->n_vocab);
    kp_dealloc(a, t->eog, (size_t)t->n_vocab);
    kp_dealloc(a, t, sizeof *t);
}

int32_t kp_tokenizer_n_vocab(const kp_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t kp_tokenizer_bos(const kp_tokenizer *t) { return t ? t->bos : -1; }
int32_t kp_tokenizer_eos(const kp_tokenizer *t) { return t ? t->eos : -1; }

int kp_tokenizer_is_eog(const kp_tokenizer *t, int32_t id)
{
    return t && id >= 0 && id < t->n_vocab && t->eog[id];
}

kp_status kp_tokenize(const kp_tokenizer *t, const char *text, size_t len, uint32_t flags, int32_t *ids,
                      size_t cap, size_t *n_ids)
{
    kp_clear_error();
    if (n_ids)
        *n_ids = 0;
    if (!t || !n_ids || (!text && len) || (!ids && cap))
        return kp_fail(KP_ERR_INVALID_ARG, "kp_tokenize: NULL argument");
    if (flags & ~(KP_TOKENIZE_ADD_SPECIAL | KP_TOKENIZE_PARSE_SPECIAL))
        return kp_fail(KP_ERR_INVALID_ARG, "kp_tokenize: unknown flags 0x%x", flags);
    kp_ivec v;
    kp_ivec_init(&v, t->alloc);
    kp_status st = t->vt->encode(t, text ? text : "", len, flags, &v);
    if (!st) {
        *n_ids = v.len;
        if (v.len > cap)
            st = kp_fail(KP_ERR_BUFFER_TOO_SMALL, "kp_tokenize: %zu ids do not fit in %zu", v.len, cap);
        else if (v.len)
            memcpy(ids, v.data, v.len * sizeof *ids);
    }
    kp_ivec_free(&v);
    return st;
}

kp_status kp_token_to_piece(const kp_tokenizer *t, int32_t id, char *buf, size_t cap, size_t *len)
{
    kp_clear_error();
    if (len)
        *len = 0;
    if (!t || !len || (!buf && cap))
        return kp_fail(KP_ERR_INVALID_ARG, "kp_token_to_piece: NULL argument");
    size_t n;
    const char *p = kp_tokenizer_piece(t, id, &n);
    if (!p)
        return kp_fail(KP_ERR_TOKEN_OUT_OF_RANGE, "token id %d is outside [0, %d)", id, t->n_vocab);
    *len = n;
    if (n > cap)
        return kp_fail(KP_ERR_BUFFER_TOO_SMALL, "piece of token %d needs %zu bytes", id, n);
    if (n)
        memcpy(buf, p, n);
    return KP_OK;
}

kp_status kp_detokenize(const kp_tokenizer *t, const int32_t *ids, size_t n, char *buf, size_t cap,
                        size_t *len)
{
    kp_clear_error();
    if (len)
        *len = 0;
    if (!t || !len || (!ids && n) || (!buf && cap))
        return kp_fail(KP_ERR_INVALID_ARG, "kp_detokenize: NULL argument");
    kp_buf out;
    kp_buf_init(&out, t->alloc);
    kp_detok_stream ds;
    kp_detok_stream_init(&ds);
    kp_status st = KP_OK;
    for (size_t i = 0; i < n && !st; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            st = kp_fail(KP_ERR_TOKEN_OUT_OF_RANGE, "token id %d at index %zu is outside [0, %d)", ids[i], i,
                         t->n_vocab);
        else
            st = kp_detok_stream_push(t, &ds, ids[i], &out);
    }
    if (!st)
        st = kp_detok_stream_flush(&ds, &out);
    if (!st) {
        *len = out.len;
        if (out.len > cap)
            st = kp_fail(KP_ERR_BUFFER_TOO_SMALL, "kp_detokenize: %zu bytes do not fit in %zu", out.len, cap);
        else if (out.len)
            memcpy(buf, out.data, out.len);
    }
    kp_buf_free(&out);
    return st;
}
