/* kp_batch_eval and kp_batch_decode: tokens of several sessions of one model in shared forward
 * passes. Sessions are laid end to end in chunks of at most KP_BATCH rows; a session's tokens
 * may continue in the next chunk, where its positions go on. */
#include <string.h>

#include "session.h"

/* The call's tokens: per session a pointer and a count (kp_batch_eval), or one token each from
 * a flat array (kp_batch_decode). */
typedef struct batch_in {
    const char *fn;
    kp_session *const *ss;
    const int32_t *const *tok; /* NULL: flat */
    const size_t *cnt;
    const int32_t *flat;
    size_t n;
    int all, last;
} batch_in;

static const int32_t *tokens_of(const batch_in *b, size_t i) { return b->tok ? b->tok[i] : b->flat + i; }
static size_t count_of(const batch_in *b, size_t i) { return b->cnt ? b->cnt[i] : 1; }

static kp_status check(const batch_in *b, uint32_t flags)
{
    if (flags & ~(KP_EVAL_LOGITS_LAST | KP_EVAL_LOGITS_ALL))
        return kp_fail(KP_ERR_INVALID_ARG, "%s: unknown flags 0x%x", b->fn, flags);
    for (size_t i = 0; i < b->n; i++) {
        kp_session *s = b->ss[i];
        if (!s)
            return kp_fail(KP_ERR_INVALID_ARG, "%s: session %zu is NULL", b->fn, i);
        s->err[0] = 0;
        kp_status st = kp_session_check_idle(s, b->fn);
        if (st)
            return st;
        if (s->m != b->ss[0]->m)
            return kp_session_fail(
                s, kp_fail(KP_ERR_INVALID_ARG, "%s: session %zu uses another model than session 0", b->fn, i));
        /* Sessions are few (one per user), so the quadratic scan is cheaper than a hash set. */
        for (size_t j = 0; j < i; j++)
            if (b->ss[j] == s)
                return kp_session_fail(
                    s, kp_fail(KP_ERR_INVALID_ARG, "%s: sessions %zu and %zu are the same", b->fn, j, i));
        const size_t n = count_of(b, i);
        const int32_t *t = tokens_of(b, i);
        if (n && !t)
            return kp_session_fail(s, kp_fail(KP_ERR_INVALID_ARG, "%s: tokens of session %zu are NULL", b->fn, i));
        if (n > (size_t)(s->n_ctx - s->n_past))
            return kp_session_fail(s, kp_fail(KP_ERR_CONTEXT_FULL,
                                              "%s: session %zu holds %d of %d positions; %zu more do not fit",
                                              b->fn, i, s->n_past, s->n_ctx, n));
        for (size_t k = 0; k < n; k++)
            if (t[k] < 0 || t[k] >= s->m->cfg.n_vocab)
                return kp_session_fail(s, kp_fail(KP_ERR_TOKEN_OUT_OF_RANGE,
                                                  "token id %d (%zu of session %zu) is outside [0, %d)", t[k], k, i,
                                                  s->m->cfg.n_vocab));
    }
    return KP_OK;
}

typedef struct chunk {
    kp_session *ss[KP_BATCH];
    const int32_t *ids[KP_BATCH];
    int32_t n[KP_BATCH];
    int8_t want[KP_BATCH];
    int32_t ng, logit_rows;
} chunk;

/* The next chunk from position (*i, *off) of the call; 0 when every token is placed. */
static int next_chunk(const batch_in *b, size_t *i, size_t *off, chunk *c)
{
    int32_t room = KP_BATCH;
    c->ng = c->logit_rows = 0;
    while (*i < b->n && room > 0) {
        const size_t n = count_of(b, *i);
        if (*off == n) {
            ++*i, *off = 0;
            continue;
        }
        const int32_t take = n - *off < (size_t)room ? (int32_t)(n - *off) : room;
        const int ends = *off + (size_t)take == n;
        c->ss[c->ng] = b->ss[*i];
        c->ids[c->ng] = tokens_of(b, *i) + *off;
        c->n[c->ng] = take;
        c->want[c->ng] = b->all ? KP_WANT_ALL : (b->last && ends) ? KP_WANT_LAST : KP_WANT_NONE;
        c->logit_rows += b->all ? take : c->want[c->ng] == KP_WANT_LAST;
        c->ng++;
        room -= take;
        *off += (size_t)take;
    }
    return c->ng > 0;
}

/* `missing`: the name of a NULL array argument, or NULL. */
static kp_status run(const batch_in *b, uint32_t flags, const char *missing)
{
    kp_clear_error();
    if (b->n == 0)
        return KP_OK;
    if (missing)
        return kp_fail(KP_ERR_INVALID_ARG, "%s: %s is NULL", b->fn, missing);
    kp_status st = check(b, flags);
    if (st)
        return st;
    /* Room for every logits row first, so that a failure changes no session. */
    for (size_t k = 0; k < b->n; k++) {
        const size_t n = count_of(b, k);
        const int32_t rows = n == 0 ? 0 : b->all ? (int32_t)n : b->last;
        if (rows && (st = kp_session_reserve_logits(b->ss[k], rows)))
            return kp_session_fail(b->ss[k], st);
    }
    chunk c;
    size_t i = 0, off = 0;
    while (next_chunk(b, &i, &off, &c))
        if (c.logit_rows && (st = kp_session_reserve_logits(c.ss[0], c.logit_rows)))
            return kp_session_fail(c.ss[0], st);
    for (size_t k = 0; k < b->n; k++)
        if (count_of(b, k))
            b->ss[k]->n_logits = 0;
    i = off = 0;
    while (next_chunk(b, &i, &off, &c))
        if ((st = kp_decoder_forward_groups(c.ss, c.ids, c.n, c.want, c.ng)))
            return kp_session_fail(c.ss[0], st);
    return KP_OK;
}

kp_status kp_batch_eval(kp_session *const *sessions, const int32_t *const *tokens, const size_t *n_tokens, size_t n,
                        uint32_t flags)
{
    const int all = (flags & KP_EVAL_LOGITS_ALL) != 0;
    const batch_in b = {"kp_batch_eval", sessions, tokens, n_tokens, NULL, n, all,
                        !all && (flags & KP_EVAL_LOGITS_LAST)};
    return run(&b, flags, !sessions ? "sessions" : !tokens ? "tokens" : !n_tokens ? "n_tokens" : NULL);
}

kp_status kp_batch_decode(kp_session *const *sessions, const int32_t *tokens, size_t n, uint32_t flags)
{
    /* one token per session: LOGITS_LAST and LOGITS_ALL ask for the same row */
    const batch_in b = {"kp_batch_decode", sessions, NULL, NULL, tokens, n, 0,
                        (flags & (KP_EVAL_LOGITS_LAST | KP_EVAL_LOGITS_ALL)) != 0};
    return run(&b, flags, !sessions ? "sessions" : !tokens ? "tokens" : NULL);
}
