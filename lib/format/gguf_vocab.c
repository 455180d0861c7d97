/* tokenizer.ggml.* -> kp_gguf_vocab -> kp_tokenizer. Every array is checked against the token
 * count before it is indexed; special ids outside the vocabulary count as absent (converters
 * write UINT32_MAX for "none"). */
#include <string.h>

#include "gguf_vocab.h"

static kp_status opt_id(const kp_gguf *g, const char *key, int32_t n, int32_t *out)
{
    *out = -1;
    const kp_gguf_kv *kv = kp_gguf_find(g, key);
    if (!kv)
        return KP_OK;
    int64_t v;
    kp_status st = kp_gguf_get_int(g, key, INT64_MIN / 2, INT64_MAX / 2, &v);
    if (st) {
        /* UINT64 ids above INT64_MAX are "none" as well */
        if (kv->type == KP_GGUF_U64)
            return KP_OK;
        return st;
    }
    if (v >= 0 && v < n)
        *out = (int32_t)v;
    return KP_OK;
}

static kp_status opt_bool(const kp_gguf *g, const char *key, int *out)
{
    *out = -1;
    if (!kp_gguf_find(g, key))
        return KP_OK;
    return kp_gguf_get_bool(g, key, out);
}

void kp_gguf_vocab_free(kp_gguf_vocab *v)
{
    if (!v || !v->alloc)
        return;
    size_t n = v->n_vocab > 0 ? (size_t)v->n_vocab : 0;
    kp_dealloc(v->alloc, v->tokens, n * sizeof *v->tokens);
    kp_dealloc(v->alloc, v->scores, n * sizeof *v->scores);
    kp_dealloc(v->alloc, v->types, n);
    kp_dealloc(v->alloc, v->merges, v->n_merges * sizeof *v->merges);
    memset(v, 0, sizeof *v);
}

kp_status kp_gguf_vocab_read(const kp_allocator *a, const kp_gguf *g, kp_gguf_vocab *v)
{
    memset(v, 0, sizeof *v);
    v->alloc = kp_allocator_or_default(a);
    kp_gguf_str model;
    kp_status st = kp_gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (st)
        return st;
    if (kp_gguf_str_eq(model, "llama"))
        v->kind = KP_GGUF_VOCAB_SPM;
    else if (kp_gguf_str_eq(model, "gpt2"))
        v->kind = KP_GGUF_VOCAB_BPE;
    else
        return kp_fail(KP_ERR_UNSUPPORTED, "GGUF: tokenizer model '%.*s' is not supported (llama and gpt2 are)",
                       (int)(model.n < 32 ? model.n : 32), model.p);
    v->pre = (kp_gguf_str){"default", 7};
    if (kp_gguf_find(g, "tokenizer.ggml.pre") && (st = kp_gguf_get_str(g, "tokenizer.ggml.pre", &v->pre)))
        return st;

    kp_gguf_arr toks;
    if ((st = kp_gguf_get_arr(g, "tokenizer.ggml.tokens", KP_GGUF_STR, &toks)))
        return st;
    if (toks.n == 0 || toks.n > (1u << 24))
        return kp_fail(KP_ERR_FORMAT, "GGUF: tokenizer.ggml.tokens has %llu entries", (unsigned long long)toks.n);
    const int32_t n = (int32_t)toks.n;
    v->n_vocab = n;
    v->tokens = kp_alloc(v->alloc, (size_t)n * sizeof *v->tokens);
    v->types = kp_alloc(v->alloc, (size_t)n);
    if (!v->tokens || !v->types) {
        kp_gguf_vocab_free(v);
        return KP_ERR_OUT_OF_MEMORY;
    }
    kp_gguf_arr_strings(&toks, v->tokens);
    memset(v->types, KP_TOKEN_NORMAL, (size_t)n);

    if (kp_gguf_find(g, "tokenizer.ggml.scores")) {
        kp_gguf_arr sc;
        if ((st = kp_gguf_get_arr(g, "tokenizer.ggml.scores", KP_GGUF_F32, &sc)))
            goto fail;
        if (sc.n != toks.n) {
            st = kp_fail(KP_ERR_FORMAT, "GGUF: tokenizer.ggml.scores has %llu entries for %d tokens",
                         (unsigned long long)sc.n, n);
            goto fail;
        }
        v->scores = kp_alloc(v->alloc, (size_t)n * sizeof *v->scores);
        if (!v->scores) {
            st = KP_ERR_OUT_OF_MEMORY;
            goto fail;
        }
        memcpy(v->scores, sc.data, (size_t)n * sizeof *v->scores);
    }
    if (kp_gguf_find(g, "tokenizer.ggml.token_type")) {
        kp_gguf_arr ty;
        if ((st = kp_gguf_get_arr(g, "tokenizer.ggml.token_type", KP_GGUF_I32, &ty)))
            goto fail;
        if (ty.n != toks.n) {
            st = kp_fail(KP_ERR_FORMAT, "GGUF: tokenizer.ggml.token_type has %llu entries for %d tokens",
                         (unsigned long long)ty.n, n);
            goto fail;
        }
        for (int32_t i = 0; i < n; i++) {
            int64_t t = kp_gguf_arr_int(&ty, (uint64_t)i);
            if (t < KP_TOKEN_UNDEFINED || t > KP_TOKEN_BYTE) {
                st = kp_fail(KP_ERR_FORMAT, "GGUF: token %d has type %lld", i, (long long)t);
                goto fail;
            }
            v->types[i] = (uint8_t)t;
        }
    }
    if (v->kind == KP_GGUF_VOCAB_BPE) {
        kp_gguf_arr mg;
        if ((st = kp_gguf_get_arr(g, "tokenizer.ggml.merges", KP_GGUF_STR, &mg)))
            goto fail;
        v->n_merges = (size_t)mg.n;
        v->merges = kp_alloc(v->alloc, (v->n_merges ? v->n_merges : 1) * sizeof *v->merges);
        if (!v->merges) {
            st = KP_ERR_OUT_OF_MEMORY;
            goto fail;
        }
        kp_gguf_arr_strings(&mg, v->merges);
    }
    if ((st = opt_id(g, "tokenizer.ggml.bos_token_id", n, &v->bos)) ||
        (st = opt_id(g, "tokenizer.ggml.eos_token_id", n, &v->eos)) ||
        (st = opt_id(g, "tokenizer.ggml.eot_token_id", n, &v->eot)) ||
        (st = opt_id(g, "tokenizer.ggml.eom_token_id", n, &v->eom)) ||
        (st = opt_id(g, "tokenizer.ggml.unknown_token_id", n, &v->unk)) ||
        (st = opt_id(g, "tokenizer.ggml.padding_token_id", n, &v->pad)) ||
        (st = opt_id(g, "tokenizer.ggml.seperator_token_id", n, &v->sep)) ||
        (st = opt_id(g, "tokenizer.ggml.linefeed_token_id", n, &v->nl)) ||
        (st = opt_bool(g, "tokenizer.ggml.add_bos_token", &v->add_bos)) ||
        (st = opt_bool(g, "tokenizer.ggml.add_eos_token", &v->add_eos)) ||
        (st = opt_bool(g, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix)))
        goto fail;
    return KP_OK;
fail:
    kp_gguf_vocab_free(v);
    return st;
}

/* ---- the tokenizer: lib/tokenizer's constructors for GGUF vocabularies take plain arrays */

kp_status kp_gguf_vocab_tokenizer(const kp_allocator *a, const kp_gguf *g, kp_tokenizer **out)
{
    *out = NULL;
    a = kp_allocator_or_default(a);
    kp_gguf_vocab v;
    kp_status st = kp_gguf_vocab_read(a, g, &v);
    if (st)
        return st;
    const size_t n = (size_t)v.n_vocab, nm = v.n_merges ? v.n_merges : 1;
    const char **tok = kp_alloc(a, n * sizeof *tok), **mer = kp_alloc(a, nm * sizeof *mer);
    uint32_t *tlen = kp_alloc(a, n * sizeof *tlen), *mlen = kp_alloc(a, nm * sizeof *mlen);
    int32_t *types = kp_alloc(a, n * sizeof *types);
    char pre[64];
    if (!tok || !mer || !tlen || !mlen || !types) {
        st = KP_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (v.tokens[i].n > UINT32_MAX) {
            st = kp_fail(KP_ERR_FORMAT, "GGUF: token %zu is %zu bytes long", i, v.tokens[i].n);
            goto done;
        }
        tok[i] = v.tokens[i].p;
        tlen[i] = (uint32_t)v.tokens[i].n;
        types[i] = v.types[i];
    }
    if (v.n_merges > INT32_MAX) {
        st = kp_fail(KP_ERR_FORMAT, "GGUF: %zu merges", v.n_merges);
        goto done;
    }
    for (size_t i = 0; i < v.n_merges; i++) {
        if (v.merges[i].n > UINT32_MAX) {
            st = kp_fail(KP_ERR_FORMAT, "GGUF: merge %zu is %zu bytes long", i, v.merges[i].n);
            goto done;
        }
        mer[i] = v.merges[i].p;
        mlen[i] = (uint32_t)v.merges[i].n;
    }
    if (v.pre.n >= sizeof pre || memchr(v.pre.p, 0, v.pre.n)) {
        st = kp_fail(KP_ERR_UNSUPPORTED, "GGUF: tokenizer.ggml.pre '%.*s' is not supported",
                     (int)(v.pre.n < 48 ? v.pre.n : 48), v.pre.p);
        goto done;
    }
    memcpy(pre, v.pre.p, v.pre.n);
    pre[v.pre.n] = 0;
    kp_gguf_str tmpl = {NULL, 0};
    if (kp_gguf_find(g, "tokenizer.chat_template") && (st = kp_gguf_get_str(g, "tokenizer.chat_template", &tmpl)))
        goto done;
    kp_vocab_arrays va = {
        .n = v.n_vocab,
        .tokens = tok,
        .token_lens = tlen,
        .scores = v.scores,
        .types = types,
        .n_merges = (int32_t)v.n_merges,
        .merges = mer,
        .merge_lens = mlen,
        .pre = pre,
        .bos = v.bos,
        .eos = v.eos,
        .eot = v.eot,
        .unk = v.unk,
        .pad = v.pad,
        .add_bos = v.add_bos,
        .add_eos = v.add_eos,
        .add_space_prefix = v.add_space_prefix,
        .chat_template = tmpl.p,
        .chat_template_len = tmpl.n,
    };
    if (v.kind == KP_GGUF_VOCAB_SPM)
        st = kp_tokenizer_spm_vocab_new(a, &va, out);
    else
        st = kp_tokenizer_bpe_vocab_new(a, &va, out);
done:
    kp_dealloc(a, (void *)tok, n * sizeof *tok);
    kp_dealloc(a, (void *)mer, nm * sizeof *mer);
    kp_dealloc(a, tlen, n * sizeof *tlen);
    kp_dealloc(a, mlen, nm * sizeof *mlen);
    kp_dealloc(a, types, n * sizeof *types);
    kp_gguf_vocab_free(&v);
    return st;
}

kp_status kp_gguf_tokenizer_new(const kp_allocator *a, const uint8_t *data, size_t size, kp_tokenizer **out)
{
    *out = NULL;
    kp_gguf *g = NULL;
    kp_status st = kp_gguf_open(a, data, size, &g);
    if (st)
        return st;
    if (!kp_gguf_find(g, "tokenizer.ggml.model"))
        st = kp_fail(KP_ERR_NOT_FOUND, "GGUF: the file stores no vocabulary (tokenizer.ggml.model)");
    else
        st = kp_gguf_vocab_tokenizer(a, g, out);
    kp_gguf_free(g);
    return st;
}
