/* Tokenizers from the vocabulary arrays a GGUF file stores (tokenizer.ggml.*), encoding the way
 * llama.cpp does for them. */
#include <string.h>

#include "pipeline.h"
#include "spm.h"

static const kp_tokenizer_vtbl spm_vtbl = {"spm", kp_spm_encode, kp_spm_destroy};

static int valid_id(int32_t id, int32_t n) { return id >= 0 && id < n; }

static kp_status check_common(const kp_vocab_arrays *v)
{
    if (!v || v->n <= 0 || !v->tokens || !v->token_lens)
        return kp_fail(KP_ERR_FORMAT, "GGUF vocabulary: no tokens");
    for (int32_t i = 0; i < v->n; i++)
        if (!v->tokens[i] && v->token_lens[i])
            return kp_fail(KP_ERR_FORMAT, "GGUF vocabulary: token %d has no text", i);
    return KP_OK;
}

static void set_specials(kp_tokenizer *t, const kp_vocab_arrays *v)
{
    int32_t n = t->n_vocab;
    t->bos = valid_id(v->bos, n) ? v->bos : -1;
    t->eos = valid_id(v->eos, n) ? v->eos : -1;
    t->eot = valid_id(v->eot, n) ? v->eot : -1;
    t->pad = valid_id(v->pad, n) ? v->pad : -1;
    if (valid_id(v->unk, n))
        t->unk = v->unk;
}

kp_status kp_tokenizer_spm_vocab_new(const kp_allocator *a, const kp_vocab_arrays *v, kp_tokenizer **out)
{
    *out = NULL;
    kp_status st = check_common(v);
    if (st)
        return st;
    a = kp_allocator_or_default(a);
    uint8_t *types = kp_alloc(a, (size_t)v->n);
    if (!types)
        return KP_ERR_OUT_OF_MEMORY;
    for (int32_t i = 0; i < v->n; i++)
        types[i] = v->types && v->types[i] >= 1 && v->types[i] <= 6 ? (uint8_t)v->types[i] : KP_TOKEN_NORMAL;
    kp_tokenizer *t = NULL;
    kp_spm *m = NULL;
    if ((st = kp_tokenizer_alloc(a, v->n, &t)))
        goto done;
    if (!(m = kp_calloc(a, 1, sizeof *m))) {
        st = KP_ERR_OUT_OF_MEMORY;
        goto done;
    }
    t->impl = m;
    t->vt = &spm_vtbl;
    if ((st = kp_spm_build(m, t, KP_SPM_LLAMACPP, v->n, v->tokens, v->token_lens, v->scores, types)))
        goto done;
    set_specials(t, v);
    if (t->unk >= 0)
        m->unk = t->unk;
    m->add_dummy_prefix = (uint8_t)(v->add_space_prefix != 0);
    m->add_bos = (uint8_t)(v->add_bos != 0);
    m->add_eos = (uint8_t)(v->add_eos > 0);
    t->add_bos = m->add_bos && t->bos >= 0;
    t->add_eos = m->add_eos && t->eos >= 0;
    t->strip_space_after_bos = m->add_dummy_prefix;
    if (v->chat_template && (st = kp_tokenizer_set_chat_template(t, v->chat_template, v->chat_template_len)))
        goto done;
    kp_tokenizer_mark_eog(t);
done:
    kp_dealloc(a, types, (size_t)v->n);
    if (st) {
        kp_tokenizer_free(t);
        return st;
    }
    *out = t;
    return KP_OK;
}

/* llama.cpp's pre-tokenizer regexes per tokenizer.ggml.pre (applied in sequence, each splitting
 * the pieces of the previous one and keeping what it does not match). */
static int pre_regexes(const char *pre, const char **re, int *n, int *ignore_merges, int *dflt_bos)
{
    static const char llama3[] = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?"
                                 "\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static const char qwen2[] = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?"
                                "\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static const char gpt2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    *ignore_merges = 0;
    *dflt_bos = 0;
    *n = 0;
    if (!pre || !strcmp(pre, "default")) {
        re[(*n)++] = "[\\p{P}\\$\\+<=>\\^~\\|]+";
        /* llama.cpp writes this one without the final |\s+; a lone space before a non-space then
         * stays unmatched, which gives the same pieces */
        re[(*n)++] = gpt2;
        re[(*n)++] = "\\p{N}+";
        re[(*n)++] = "[0-9][0-9][0-9]";
        return 1;
    }
    if (!strcmp(pre, "llama3") || !strcmp(pre, "llama-v3") || !strcmp(pre, "llama-bpe") || !strcmp(pre, "falcon3")) {
        re[(*n)++] = llama3;
        *ignore_merges = 1;
        *dflt_bos = 1;
        return 1;
    }
    if (!strcmp(pre, "qwen2") || !strcmp(pre, "deepseek-r1-qwen")) {
        re[(*n)++] = qwen2;
        return 1;
    }
    if (!strcmp(pre, "smollm") || !strcmp(pre, "starcoder") || !strcmp(pre, "refact") ||
        !strcmp(pre, "command-r") || !strcmp(pre, "codeshell") || !strcmp(pre, "exaone") ||
        !strcmp(pre, "minerva-7b")) {
        re[(*n)++] = "\\p{N}";
        re[(*n)++] = gpt2;
        return 1;
    }
    if (!strcmp(pre, "gpt-2") || !strcmp(pre, "gpt2") || !strcmp(pre, "mpt") || !strcmp(pre, "olmo") ||
        !strcmp(pre, "jais")) {
        re[(*n)++] = gpt2;
        return 1;
    }
    return 0;
}

kp_status kp_tokenizer_bpe_vocab_new(const kp_allocator *a, const kp_vocab_arrays *v, kp_tokenizer **out)
{
    *out = NULL;
    kp_status st = check_common(v);
    if (st)
        return st;
    if (v->n_merges < 0 || (v->n_merges && (!v->merges || !v->merge_lens)))
        return kp_fail(KP_ERR_FORMAT, "GGUF vocabulary: bad merges array");
    const char *re[4];
    int n_re, ignore_merges, dflt_bos;
    if (!pre_regexes(v->pre, re, &n_re, &ignore_merges, &dflt_bos))
        return kp_fail(KP_ERR_UNSUPPORTED, "GGUF pre-tokenizer '%s' is not supported", v->pre);
    a = kp_allocator_or_default(a);
    kp_tokenizer *t;
    if ((st = kp_bpe_tok_new(a, v->n, &t)))
        return st;
    kp_bpe_tok *p = t->impl;
    p->added.mode = KP_ADDED_LONGEST_FIRST;
    kp_bpe *b = &p->bpe;
    b->byte_level = 1;
    b->ignore_merges = (uint8_t)ignore_merges;
    int32_t n = v->n;
    size_t total = 0;
    for (int32_t i = 0; i < n; i++)
        total += v->token_lens[i];
    char *blob = kp_alloc(a, total ? total : 1);
    const char **raw = kp_calloc(a, (size_t)n, sizeof *raw);
    uint32_t *rlen = kp_calloc(a, (size_t)n, sizeof *rlen);
    uint8_t *inc = kp_calloc(a, (size_t)n, 1);
    if (!blob || !raw || !rlen || !inc) {
        st = KP_ERR_OUT_OF_MEMORY;
        goto done;
    }
    size_t o = 0;
    for (int32_t i = 0; i < n && !st; i++) {
        int ty = v->types && v->types[i] >= 1 && v->types[i] <= 6 ? v->types[i] : KP_TOKEN_NORMAL;
        t->type[i] = (uint8_t)ty;
        long m = kp_bytelevel_decode(v->tokens[i], v->token_lens[i], blob + o);
        raw[i] = blob + o;
        if (m >= 0) {
            /* llama.cpp looks every token up by its text, whatever its type */
            inc[i] = 1;
            rlen[i] = (uint32_t)m;
            o += (size_t)m;
        }
        if (ty == KP_TOKEN_CONTROL || ty == KP_TOKEN_USER_DEFINED || ty == KP_TOKEN_UNKNOWN) {
            /* USER_DEFINED text is always matched; CONTROL and UNKNOWN only with PARSE_SPECIAL */
            st = kp_added_add(&p->added, v->tokens[i], v->token_lens[i], i, ty != KP_TOKEN_USER_DEFINED, 0, 0, 0);
        }
    }
    if (st || (st = kp_added_finish(&p->added)))
        goto done;
    if ((st = kp_strmap_build(&b->vocab, a, n, raw, rlen, inc)))
        goto done;
    for (int i = 0; i < 256; i++) {
        char c = (char)i;
        b->byte_ids[i] = kp_strmap_get(&b->vocab, &c, 1);
    }
    /* merges "a b" (split at the first space after the first character, as llama.cpp does);
     * the first of duplicate pairs wins, and merges whose result is not a token are skipped */
    if ((st = kp_pairmap_init(&b->merges, a, (size_t)v->n_merges)))
        goto done;
    {
        kp_buf big;
        kp_buf_init(&big, a);
        for (int32_t i = 0; i < v->n_merges && !st; i++) {
            const char *s = v->merges[i];
            size_t len = v->merge_lens[i];
            const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
            if (!sp) {
                st = kp_fail(KP_ERR_FORMAT, "GGUF merges entry %d ('%.*s') is not two tokens separated by a space", i,
                             (int)(len > 60 ? 60 : len), s);
                break;
            }
            size_t ln = (size_t)(sp - s), rn = len - ln - 1;
            /* decoded bytes are never longer than the text: big's capacity covers both halves */
            big.len = 0;
            if ((st = kp_buf_append(&big, s, len)))
                break;
            char *tmp = big.data;
            long la = kp_bytelevel_decode(s, ln, tmp), lb = -1;
            if (la >= 0)
                lb = kp_bytelevel_decode(sp + 1, rn, tmp + la);
            int32_t ia = la >= 0 ? kp_strmap_get(&b->vocab, tmp, (size_t)la) : -1;
            int32_t ib = lb >= 0 ? kp_strmap_get(&b->vocab, tmp + la, (size_t)lb) : -1;
            if (ia < 0 || ib < 0) {
                st = kp_fail(KP_ERR_FORMAT, "GGUF merges entry %d ('%.*s') names a token that is not in the vocabulary",
                             i, (int)(len > 60 ? 60 : len), s);
                break;
            }
            int32_t ic = kp_strmap_get(&b->vocab, tmp, (size_t)(la + lb)), dummy;
            if (ic >= 0 && kp_pairmap_get(&b->merges, ia, ib, &dummy) == UINT32_MAX)
                kp_pairmap_put(&b->merges, ia, ib, (uint32_t)i, ic);
        }
        kp_buf_free(&big);
        if (st)
            goto done;
    }
    for (int i = 0; i < n_re && !st; i++) {
        kp_pre_step s;
        memset(&s, 0, sizeof s);
        s.kind = KP_PRE_SPLIT;
        s.behavior = KP_SPLIT_ISOLATED;
        size_t rl = strlen(re[i]);
        st = kp_regex_compile(a, re[i], rl, &s.re);
        if (!st) {
            s.fast = kp_fast_detect(re[i], rl, &s.fold_long_s);
            if ((st = kp_bpe_tok_add_pre(p, &s)))
                kp_pre_step_free(a, &s);
        }
    }
    if (st)
        goto done;
    /* decode pieces: normal tokens through the byte mapping, the others as written */
    {
        const char **dp = kp_alloc(a, (size_t)n * sizeof *dp);
        uint32_t *dl = kp_alloc(a, (size_t)n * sizeof *dl);
        if (!dp || !dl) {
            kp_dealloc(a, (void *)dp, (size_t)n * sizeof *dp);
            kp_dealloc(a, dl, (size_t)n * sizeof *dl);
            st = KP_ERR_OUT_OF_MEMORY;
            goto done;
        }
        for (int32_t i = 0; i < n; i++) {
            int ty = t->type[i];
            if (inc[i] && (ty == KP_TOKEN_NORMAL || ty == KP_TOKEN_UNUSED || ty == KP_TOKEN_BYTE)) {
                dp[i] = raw[i];
                dl[i] = rlen[i];
            } else {
                dp[i] = v->tokens[i];
                dl[i] = v->token_lens[i];
            }
        }
        st = kp_tokenizer_set_pieces(t, dp, dl);
        kp_dealloc(a, (void *)dp, (size_t)n * sizeof *dp);
        kp_dealloc(a, dl, (size_t)n * sizeof *dl);
        if (st)
            goto done;
    }
    set_specials(t, v);
    int add_bos = v->add_bos < 0 ? dflt_bos : v->add_bos != 0;
    if (add_bos && t->bos >= 0 && (st = kp_bpe_tok_add_post(p, 0, t->bos)))
        goto done;
    if (v->add_eos > 0 && t->eos >= 0 && (st = kp_bpe_tok_add_post(p, 1, t->eos)))
        goto done;
    t->add_bos = add_bos && t->bos >= 0;
    t->add_eos = v->add_eos > 0 && t->eos >= 0;
    if (v->chat_template && (st = kp_tokenizer_set_chat_template(t, v->chat_template, v->chat_template_len)))
        goto done;
    kp_tokenizer_mark_eog(t);
done:
    kp_dealloc(a, blob, total ? total : 1);
    kp_dealloc(a, (void *)raw, (size_t)n * sizeof *raw);
    kp_dealloc(a, rlen, (size_t)n * sizeof *rlen);
    kp_dealloc(a, inc, (size_t)n);
    if (st) {
        kp_tokenizer_free(t);
        return st;
    }
    *out = t;
    return KP_OK;
}
