/* kp_tokenizer -> tokenizer.ggml.* arrays (see kp_tokenizer_vocab_export). Each tokenizer kind
 * keeps what the GGUF form needs somewhere: llama.cpp-style and SentencePiece vocabularies their
 * pieces and scores, llama2.c files their stored texts and scores, byte-level BPE its raw-byte
 * vocabulary and merge ranks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "pipeline.h"
#include "spm.h"
#include "unicode.h"

void kp_vocab_export_free(kp_vocab_export *v)
{
    if (!v || !v->alloc)
        return;
    size_t n = v->n > 0 ? (size_t)v->n : 0, nm = v->n_merges > 0 ? (size_t)v->n_merges : 0;
    kp_dealloc(v->alloc, (void *)v->tokens, n * sizeof *v->tokens);
    kp_dealloc(v->alloc, v->token_lens, n * sizeof *v->token_lens);
    kp_dealloc(v->alloc, v->scores, n * sizeof *v->scores);
    kp_dealloc(v->alloc, v->types, n * sizeof *v->types);
    kp_dealloc(v->alloc, (void *)v->merges, nm * sizeof *v->merges);
    kp_dealloc(v->alloc, v->merge_lens, nm * sizeof *v->merge_lens);
    kp_buf_free(&v->blob);
    memset(v, 0, sizeof *v);
}

/* Strings are appended to the blob and their start offsets parked in the pointer array; the
 * pointers are fixed up once the blob has stopped moving. */
static kp_status add_text(kp_vocab_export *v, const char **slot, uint32_t *len, const char *s, size_t n)
{
    *slot = (const char *)(uintptr_t)v->blob.len;
    *len = (uint32_t)n;
    return kp_buf_append(&v->blob, s, n);
}

static void fix_pointers(kp_vocab_export *v)
{
    for (int32_t i = 0; i < v->n; i++)
        v->tokens[i] = v->blob.data + (uintptr_t)v->tokens[i];
    for (int32_t i = 0; i < v->n_merges; i++)
        v->merges[i] = v->blob.data + (uintptr_t)v->merges[i];
}

/* SentencePiece text: spaces as U+2581, byte tokens as <0xXX>. */
static kp_status spm_text(kp_vocab_export *v, int32_t id, const char *s, size_t n, kp_buf *tmp)
{
    tmp->len = 0;
    kp_status st = KP_OK;
    for (size_t i = 0; i < n && !st; i++)
        st = s[i] == ' ' ? kp_buf_append(tmp, "\xE2\x96\x81", 3) : kp_buf_append(tmp, s + i, 1);
    return st ? st : add_text(v, &v->tokens[id], &v->token_lens[id], tmp->data, tmp->len);
}

static kp_status from_llama2c(const kp_tokenizer *t, kp_vocab_export *v)
{
    kp_buf tmp;
    kp_buf_init(&tmp, v->alloc);
    kp_status st = KP_OK;
    for (int32_t i = 0; i < t->n_vocab && !st; i++) {
        const char *s;
        size_t n;
        kp_llama2c_token_text(t, i, &v->scores[i], &s, &n);
        v->types[i] = t->type[i];
        if (t->type[i] == KP_TOKEN_CONTROL || t->type[i] == KP_TOKEN_UNKNOWN) {
            /* llama2.c's exporter wraps <s> and </s> in newlines; the piece is the tag */
            while (n && (*s == '\n' || *s == ' '))
                s++, n--;
            while (n && (s[n - 1] == '\n' || s[n - 1] == ' '))
                n--;
            st = add_text(v, &v->tokens[i], &v->token_lens[i], s, n);
        } else if (t->type[i] == KP_TOKEN_BYTE) {
            st = add_text(v, &v->tokens[i], &v->token_lens[i], s, n);
        } else {
            st = spm_text(v, i, s, n, &tmp);
        }
    }
    kp_buf_free(&tmp);
    v->model = "llama";
    v->add_bos = 1;
    v->add_eos = 0;
    v->add_space_prefix = 1;
    return st;
}

static kp_status from_spm(const kp_tokenizer *t, kp_vocab_export *v)
{
    const kp_spm *m = t->impl;
    kp_status st = KP_OK;
    for (int32_t i = 0; i < t->n_vocab && !st; i++) {
        size_t n;
        const char *s = kp_strmap_key(&m->all, i, &n);
        v->scores[i] = m->score ? m->score[i] : 0.0f;
        v->types[i] = t->type[i];
        st = add_text(v, &v->tokens[i], &v->token_lens[i], s, n);
    }
    v->model = "llama";
    v->add_bos = m->add_bos;
    v->add_eos = m->add_eos;
    v->add_space_prefix = m->add_dummy_prefix;
    return st;
}

/* GPT-2's printable form of raw bytes. */
static kp_status bytelevel_text(kp_buf *out, const char *s, size_t n)
{
    kp_status st = KP_OK;
    char u[4];
    for (size_t i = 0; i < n && !st; i++)
        st = kp_buf_append(out, u, kp_utf8_encode(kp_byte_to_cp((unsigned char)s[i]), u));
    return st;
}

/* llama.cpp's name for the pre-tokenizer, recognised from the steps that implement it. A
 * ByteLevel step without its regex only maps bytes (implicit here) and is skipped. */
static const char *pre_name(const kp_bpe_tok *p)
{
    const kp_pre_step *st[8];
    int n = 0;
    for (int i = 0; i < p->n_pre; i++) {
        const kp_pre_step *s = &p->pre[i];
        if (s->kind == KP_PRE_BYTELEVEL && !s->use_regex && !s->add_prefix_space)
            continue;
        if (n == 8 || s->kind == KP_PRE_METASPACE || (s->kind == KP_PRE_BYTELEVEL && s->add_prefix_space))
            return NULL;
        st[n++] = s;
    }
    const int gpt2_last = n >= 1 && ((st[n - 1]->kind == KP_PRE_SPLIT && st[n - 1]->fast == KP_FAST_GPT2) ||
                                     st[n - 1]->kind == KP_PRE_BYTELEVEL);
    if (n == 1 && st[0]->kind == KP_PRE_SPLIT && st[0]->fast == KP_FAST_LLAMA3)
        return "llama-bpe";
    if (n == 1 && st[0]->kind == KP_PRE_SPLIT && st[0]->fast == KP_FAST_QWEN2)
        return "qwen2";
    if (n == 1 && gpt2_last)
        return "gpt-2";
    /* digits split one by one, then GPT-2's pattern (SmolLM, StarCoder) */
    if (n == 2 && st[0]->kind == KP_PRE_SPLIT && st[0]->fast == KP_FAST_NONE && gpt2_last)
        return "smollm";
    if (n == 4 && st[1]->kind == KP_PRE_SPLIT && st[1]->fast == KP_FAST_GPT2)
        return "default";
    return NULL;
}

typedef struct merge_ent {
    uint32_t rank;
    int32_t a, b;
} merge_ent;

static int by_rank(const void *x, const void *y)
{
    const merge_ent *p = x, *q = y;
    return p->rank < q->rank ? -1 : p->rank > q->rank;
}

/* A SentencePiece-style BPE (tokenizer.json with byte fallback: Llama 2, TinyLlama) as a
 * "llama" vocabulary. Scores stand in for merge ranks: a token scores minus the rank of the
 * first merge that makes it, so that merging the best-scoring pair first merges the
 * lowest-ranked pair first; tokens no merge makes score far below every merge. */
static kp_status from_bpe_spm(const kp_tokenizer *t, kp_vocab_export *v)
{
    const kp_bpe_tok *p = t->impl;
    if (!p->bpe.byte_fallback)
        return kp_fail(KP_ERR_UNSUPPORTED, "this BPE tokenizer is neither byte-level nor byte-fallback; GGUF has no form for it");
    kp_buf tmp;
    kp_buf_init(&tmp, v->alloc);
    kp_status st = KP_OK;
    for (int32_t i = 0; i < t->n_vocab && !st; i++) {
        size_t n;
        const char *s = kp_tokenizer_piece(t, i, &n);
        const int ty = t->type[i];
        v->types[i] = ty;
        size_t chars = 0;
        for (size_t k = 0; k < n; k++)
            chars += ((unsigned char)s[k] & 0xC0) != 0x80;
        v->scores[i] = (ty == KP_TOKEN_NORMAL && chars > 1) ? -1e9f : 0.0f;
        if (ty == KP_TOKEN_BYTE && n == 1) {
            char b[8];
            snprintf(b, sizeof b, "<0x%02X>", (unsigned char)s[0]);
            st = add_text(v, &v->tokens[i], &v->token_lens[i], b, 6);
        } else if (ty == KP_TOKEN_NORMAL || ty == KP_TOKEN_UNUSED) {
            st = spm_text(v, i, s, n, &tmp);
        } else {
            st = add_text(v, &v->tokens[i], &v->token_lens[i], s, n);
        }
    }
    kp_buf_free(&tmp);
    const kp_pairmap *pm = &p->bpe.merges;
    for (size_t i = 0; pm->slots && i <= pm->mask; i++) {
        const kp_pair_slot *sl = &pm->slots[i];
        if (sl->rank != UINT32_MAX && sl->id >= 0 && sl->id < t->n_vocab && -(float)sl->rank - 1 > v->scores[sl->id])
            v->scores[sl->id] = -(float)sl->rank - 1;
    }
    v->model = "llama";
    v->add_bos = p->n_prefix > 0 && p->prefix[0] == t->bos;
    v->add_eos = p->n_suffix > 0 && p->suffix[p->n_suffix - 1] == t->eos;
    v->add_space_prefix = 0;
    for (int i = 0; i < p->n_norm; i++)
        v->add_space_prefix |= p->norm[i].kind == KP_NORM_PREPEND;
    for (int i = 0; i < p->n_pre; i++)
        v->add_space_prefix |= p->pre[i].kind == KP_PRE_METASPACE && p->pre[i].prepend != 0;
    return st;
}

static kp_status from_bpe(const kp_tokenizer *t, kp_vocab_export *v)
{
    const kp_bpe_tok *p = t->impl;
    if (!p->bpe.byte_level)
        return from_bpe_spm(t, v);
    if (!(v->pre = pre_name(p)))
        return kp_fail(KP_ERR_UNSUPPORTED, "this tokenizer's pre-tokenizer matches none of llama.cpp's");
    v->model = "gpt2";
    kp_buf tmp;
    kp_buf_init(&tmp, v->alloc);
    kp_status st = KP_OK;
    for (int32_t i = 0; i < t->n_vocab && !st; i++) {
        size_t n;
        const char *s = kp_tokenizer_piece(t, i, &n);
        int ty = t->type[i];
        v->types[i] = ty;
        if (ty == KP_TOKEN_CONTROL || ty == KP_TOKEN_USER_DEFINED || ty == KP_TOKEN_UNKNOWN) {
            st = add_text(v, &v->tokens[i], &v->token_lens[i], s, n);
        } else {
            tmp.len = 0;
            if (!(st = bytelevel_text(&tmp, s, n)))
                st = add_text(v, &v->tokens[i], &v->token_lens[i], tmp.data, tmp.len);
        }
    }
    /* the merges, back in rank order */
    size_t cnt = 0;
    const kp_pairmap *pm = &p->bpe.merges;
    for (size_t i = 0; pm->slots && i <= pm->mask; i++)
        cnt += pm->slots[i].rank != UINT32_MAX;
    merge_ent *e = NULL;
    if (!st && cnt) {
        e = kp_alloc(v->alloc, cnt * sizeof *e);
        v->merges = kp_alloc(v->alloc, cnt * sizeof *v->merges);
        v->merge_lens = kp_alloc(v->alloc, cnt * sizeof *v->merge_lens);
        if (!e || !v->merges || !v->merge_lens) {
            kp_dealloc(v->alloc, (void *)v->merges, cnt * sizeof *v->merges);
            kp_dealloc(v->alloc, v->merge_lens, cnt * sizeof *v->merge_lens);
            v->merges = NULL;
            v->merge_lens = NULL;
            st = KP_ERR_OUT_OF_MEMORY;
        }
    }
    if (!st && cnt) {
        size_t k = 0;
        for (size_t i = 0; i <= pm->mask; i++)
            if (pm->slots[i].rank != UINT32_MAX)
                e[k++] = (merge_ent){pm->slots[i].rank, (int32_t)(pm->slots[i].key >> 32),
                                     (int32_t)(uint32_t)pm->slots[i].key};
        qsort(e, cnt, sizeof *e, by_rank);
        v->n_merges = (int32_t)cnt;
        for (size_t i = 0; i < cnt && !st; i++) {
            size_t na, nb;
            const char *sa = kp_tokenizer_piece(t, e[i].a, &na), *sb = kp_tokenizer_piece(t, e[i].b, &nb);
            tmp.len = 0;
            if (!(st = bytelevel_text(&tmp, sa, na)) && !(st = kp_buf_append(&tmp, " ", 1)) &&
                !(st = bytelevel_text(&tmp, sb, nb)))
                st = add_text(v, &v->merges[i], &v->merge_lens[i], tmp.data, tmp.len);
        }
    }
    kp_dealloc(v->alloc, e, cnt * sizeof *e);
    kp_buf_free(&tmp);
    v->add_bos = p->n_prefix > 0 && p->prefix[0] == t->bos;
    v->add_eos = p->n_suffix > 0 && p->suffix[p->n_suffix - 1] == t->eos;
    return st;
}

kp_status kp_tokenizer_vocab_export(const kp_tokenizer *t, const kp_allocator *a, kp_vocab_export *v)
{
    memset(v, 0, sizeof *v);
    v->alloc = kp_allocator_or_default(a);
    kp_buf_init(&v->blob, v->alloc);
    const char *kind = t->vt ? t->vt->name : "";
    const int l2c = !strcmp(kind, "llama2c"), spm = !strcmp(kind, "spm"), bpe = !strcmp(kind, "bpe");
    if (!l2c && !spm && !bpe)
        return kp_fail(KP_ERR_UNSUPPORTED, "a '%s' tokenizer cannot be written to GGUF", kind);
    const size_t n = (size_t)t->n_vocab;
    v->n = t->n_vocab;
    v->tokens = kp_calloc(v->alloc, n, sizeof *v->tokens);
    v->token_lens = kp_calloc(v->alloc, n, sizeof *v->token_lens);
    v->types = kp_calloc(v->alloc, n, sizeof *v->types);
    const int need_scores = !bpe || !((const kp_bpe_tok *)t->impl)->bpe.byte_level;
    if (need_scores)
        v->scores = kp_calloc(v->alloc, n, sizeof *v->scores);
    if (!v->tokens || !v->token_lens || !v->types || (need_scores && !v->scores))
        return KP_ERR_OUT_OF_MEMORY;
    kp_status st = l2c ? from_llama2c(t, v) : spm ? from_spm(t, v) : from_bpe(t, v);
    if (st)
        return st;
    fix_pointers(v);
    return KP_OK;
}
