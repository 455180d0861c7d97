/* llama2.c tokenizer.bin: per token a float score, an int length and the bytes. Encoding
 * follows llama2.c's encode(): dummy-prefix space, one token per UTF-8 character with byte
 * fallback (<0xXX> = id byte+3), then repeatedly merge the adjacent pair whose joined text is
 * the highest-scoring vocabulary entry (leftmost on ties).
 * A vocabulary of fewer than 259 entries cannot hold every byte token; such files load (tiny
 * test vocabularies are legitimate), and a byte whose id byte+3 lies outside the vocabulary
 * becomes <unk> (id 0), as SentencePiece writes characters it has no piece for. No id outside
 * [0, n_vocab) is ever produced. */
#include <string.h>

#include "tokenizer.h"

typedef struct l2c_tok {
    float *score;
    char *text;           /* stored texts, back to back */
    uint32_t *text_off;   /* n_vocab + 1 */
    int32_t *slots;       /* open-addressing hash of text -> id, -1 empty */
    uint32_t n_slots;
    size_t text_size;
    int32_t space_id;     /* id of " ", the dummy prefix; -1 if absent */
} l2c_tok;

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int32_t lookup(const kp_tokenizer *t, const char *s, size_t n)
{
    const l2c_tok *lt = t->impl;
    uint32_t mask = lt->n_slots - 1;
    for (uint32_t h = hash_bytes(s, n) & mask;; h = (h + 1) & mask) {
        int32_t id = lt->slots[h];
        if (id < 0)
            return -1;
        size_t len = lt->text_off[id + 1] - lt->text_off[id];
        if (len == n && memcmp(lt->text + lt->text_off[id], s, n) == 0)
            return id;
    }
}

static kp_status encode(const kp_tokenizer *t, const char *text, size_t len, uint32_t flags, kp_ivec *out)
{
    const l2c_tok *lt = t->impl;
    kp_status st;
    if ((flags & KP_TOKENIZE_ADD_SPECIAL) && t->bos >= 0 && (st = kp_ivec_push(out, t->bos)))
        return st;
    size_t base = out->len;
    if (len && lt->space_id >= 0 && (st = kp_ivec_push(out, lt->space_id)))
        return st;
    for (size_t i = 0; i < len;) {
        size_t n = 1; /* a lead byte and up to three continuation bytes */
        while (n < 4 && i + n < len && ((unsigned char)text[i + n] & 0xC0) == 0x80)
            n++;
        int32_t id = lookup(t, text + i, n);
        if (id >= 0) {
            if ((st = kp_ivec_push(out, id)))
                return st;
        } else {
            for (size_t k = 0; k < n; k++) {
                int32_t b = (unsigned char)text[i + k] + 3;
                if ((st = kp_ivec_push(out, b < t->n_vocab ? b : t->unk)))
                    return st;
            }
        }
        i += n;
    }
    char buf[512];
    for (;;) {
        float best = -1e10f;
        int32_t best_id = -1;
        size_t best_i = 0;
        for (size_t i = base; i + 1 < out->len; i++) {
            int32_t a = out->data[i], b = out->data[i + 1];
            size_t la = lt->text_off[a + 1] - lt->text_off[a], lb = lt->text_off[b + 1] - lt->text_off[b];
            if (la + lb > sizeof buf)
                continue;
            memcpy(buf, lt->text + lt->text_off[a], la);
            memcpy(buf + la, lt->text + lt->text_off[b], lb);
            int32_t id = lookup(t, buf, la + lb);
            if (id >= 0 && lt->score[id] > best) {
                best = lt->score[id];
                best_id = id;
                best_i = i;
            }
        }
        if (best_id < 0)
            break;
        out->data[best_i] = best_id;
        memmove(out->data + best_i + 1, out->data + best_i + 2, (out->len - best_i - 2) * sizeof(int32_t));
        out->len--;
    }
    return KP_OK;
}

static void destroy(kp_tokenizer *t)
{
    l2c_tok *lt = t->impl;
    if (!lt)
        return;
    kp_dealloc(t->alloc, lt->score, (size_t)t->n_vocab * sizeof(float));
    kp_dealloc(t->alloc, lt->text, lt->text_size);
    kp_dealloc(t->alloc, lt->text_off, ((size_t)t->n_vocab + 1) * sizeof(uint32_t));
    kp_dealloc(t->alloc, lt->slots, (size_t)lt->n_slots * sizeof(int32_t));
    kp_dealloc(t->alloc, lt, sizeof *lt);
    t->impl = NULL;
}

static const kp_tokenizer_vtbl l2c_vtbl = {"llama2c", encode, destroy};

int kp_llama2c_token_text(const kp_tokenizer *t, int32_t id, float *score, const char **text, size_t *len)
{
    if (t->vt != &l2c_vtbl || id < 0 || id >= t->n_vocab)
        return 0;
    const l2c_tok *lt = t->impl;
    *score = lt->score[id];
    *text = lt->text + lt->text_off[id];
    *len = lt->text_off[id + 1] - lt->text_off[id];
    return 1;
}

/* "<0xXX>" with uppercase or lowercase hex: the byte it stands for, or -1. */
static int byte_token(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Counts the entries when the caller does not know the vocabulary size; -1 unless the entries
 * end exactly at the end of the file. */
int32_t kp_llama2c_tokenizer_count(const uint8_t *data, size_t size)
{
    size_t off = 4;
    int32_t n = 0;
    while (off + 8 <= size) {
        int32_t len;
        memcpy(&len, data + off + 4, 4);
        if (len < 0 || (size_t)len > size - off - 8)
            return -1;
        off += 8 + (size_t)len;
        n++;
    }
    return off == size ? n : -1;
}

kp_status kp_tokenizer_llama2c_new(const kp_allocator *a, const uint8_t *data, size_t size, int32_t n_vocab,
                                   kp_tokenizer **out)
{
    *out = NULL;
    if (size < 4)
        return kp_fail(KP_ERR_FORMAT, "llama2.c tokenizer file is %zu bytes, too short for its header", size);
    if (n_vocab == 0 && (n_vocab = kp_llama2c_tokenizer_count(data, size)) <= 0)
        return kp_fail(KP_ERR_FORMAT, "not a llama2.c tokenizer.bin: entries do not end at the end of the file");
    /* First pass: validate and size. */
    size_t off = 4, text_size = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        int32_t len;
        if (off + 8 > size)
            return kp_fail(KP_ERR_TOKENIZER_MISMATCH,
                           "llama2.c tokenizer ends after %d of the %d tokens the model needs", i, n_vocab);
        memcpy(&len, data + off + 4, 4);
        if (len < 0 || len > 4096 || (size_t)len > size - off - 8)
            return kp_fail(KP_ERR_FORMAT, "llama2.c tokenizer: token %d has a bad length %d at offset %zu", i, len,
                           off + 4);
        off += 8 + (size_t)len;
        text_size += (size_t)len;
    }
    if (off != size)
        return kp_fail(KP_ERR_TOKENIZER_MISMATCH,
                       "llama2.c tokenizer has %zu bytes left after %d tokens: it belongs to a bigger vocabulary",
                       size - off, n_vocab);
    kp_tokenizer *t;
    kp_status st = kp_tokenizer_alloc(a, n_vocab, &t);
    if (st)
        return st;
    t->vt = &l2c_vtbl;
    l2c_tok *lt = kp_calloc(t->alloc, 1, sizeof *lt);
    if (!lt) {
        kp_tokenizer_free(t);
        return KP_ERR_OUT_OF_MEMORY;
    }
    t->impl = lt;
    lt->n_slots = 1;
    while (lt->n_slots < (uint32_t)n_vocab * 2)
        lt->n_slots <<= 1;
    lt->text_size = text_size ? text_size : 1;
    lt->score = kp_alloc(t->alloc, (size_t)n_vocab * sizeof(float));
    lt->text = kp_alloc(t->alloc, lt->text_size);
    lt->text_off = kp_alloc(t->alloc, ((size_t)n_vocab + 1) * sizeof(uint32_t));
    lt->slots = kp_alloc(t->alloc, (size_t)lt->n_slots * sizeof(int32_t));
    const char **pieces = kp_alloc(t->alloc, (size_t)n_vocab * sizeof(char *));
    uint32_t *plens = kp_alloc(t->alloc, (size_t)n_vocab * sizeof(uint32_t));
    unsigned char *bytes = kp_alloc(t->alloc, 256);
    if (!lt->score || !lt->text || !lt->text_off || !lt->slots || !pieces || !plens || !bytes) {
        st = KP_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int i = 0; i < 256; i++)
        bytes[i] = (unsigned char)i;
    memset(lt->slots, 0xff, (size_t)lt->n_slots * sizeof(int32_t));
    off = 4;
    uint32_t toff = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        int32_t len;
        memcpy(&lt->score[i], data + off, 4);
        memcpy(&len, data + off + 4, 4);
        const char *s = (const char *)data + off + 8;
        lt->text_off[i] = toff;
        memcpy(lt->text + toff, s, (size_t)len);
        toff += (uint32_t)len;
        off += 8 + (size_t)len;
        int b = byte_token(s, (size_t)len);
        if (b >= 0) {
            t->type[i] = KP_TOKEN_BYTE;
            pieces[i] = (const char *)bytes + b;
            plens[i] = 1;
        } else {
            pieces[i] = lt->text + lt->text_off[i];
            plens[i] = (uint32_t)len;
        }
    }
    lt->text_off[n_vocab] = toff;
    /* Insert so that the first of duplicate texts wins, as a lookup by text would find it. */
    for (int32_t i = 0; i < n_vocab; i++) {
        const char *s = lt->text + lt->text_off[i];
        size_t n = lt->text_off[i + 1] - lt->text_off[i];
        if (lookup(t, s, n) >= 0)
            continue;
        uint32_t mask = lt->n_slots - 1, h = hash_bytes(s, n) & mask;
        while (lt->slots[h] >= 0)
            h = (h + 1) & mask;
        lt->slots[h] = i;
    }
    lt->space_id = lookup(t, " ", 1);
    /* llama2.c's fixed layout: 0 <unk>, 1 BOS, 2 EOS. */
    t->unk = 0;
    t->bos = n_vocab > 1 ? 1 : -1;
    t->eos = n_vocab > 2 ? 2 : -1;
    if (t->unk >= 0)
        t->type[0] = KP_TOKEN_UNKNOWN;
    if (t->bos >= 0)
        t->type[t->bos] = KP_TOKEN_CONTROL;
    if (t->eos >= 0) {
        t->type[t->eos] = KP_TOKEN_CONTROL;
        t->eog[t->eos] = 1;
    }
    t->strip_space_after_bos = 1;
    t->render_control = 1;
    st = kp_tokenizer_set_pieces(t, pieces, plens);
done:
    kp_dealloc(t->alloc, pieces, (size_t)n_vocab * sizeof(char *));
    kp_dealloc(t->alloc, plens, (size_t)n_vocab * sizeof(uint32_t));
    kp_dealloc(t->alloc, bytes, 256);
    if (st) {
        kp_tokenizer_free(t);
        return st;
    }
    *out = t;
    return KP_OK;
}
