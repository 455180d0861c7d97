/* kp_batch_decode: the next token of several sessions of one model in one forward pass. */
#include <string.h>

#include "session.h"

static kp_status check(kp_session *const *ss, const int32_t *tokens, size_t n, uint32_t flags)
{
    if (!ss || !tokens)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_batch_decode: %s is NULL", ss ? "tokens" : "sessions");
    if (flags & ~(KP_EVAL_LOGITS_LAST | KP_EVAL_LOGITS_ALL))
        return kp_fail(KP_ERR_INVALID_ARG, "kp_batch_decode: unknown flags 0x%x", flags);
    for (size_t i = 0; i < n; i++) {
        kp_session *s = ss[i];
        if (!s)
            return kp_fail(KP_ERR_INVALID_ARG, "kp_batch_decode: session %zu is NULL", i);
        s->err[0] = 0;
        if (s->m != ss[0]->m)
            return kp_session_fail(s, kp_fail(KP_ERR_INVALID_ARG,
                                              "kp_batch_decode: session %zu uses another model than session 0", i));
        /* Sessions are few (one per user), so the quadratic scan is cheaper than a hash set. */
        for (size_t j = 0; j < i; j++)
            if (ss[j] == s)
                return kp_session_fail(s, kp_fail(KP_ERR_INVALID_ARG,
                                                  "kp_batch_decode: sessions %zu and %zu are the same", j, i));
        if (s->n_past >= s->n_ctx)
            return kp_session_fail(s, kp_fail(KP_ERR_CONTEXT_FULL,
                                              "kp_batch_decode: session %zu holds its whole context of %d", i,
                                              s->n_ctx));
        if (tokens[i] < 0 || tokens[i] >= s->m->cfg.n_vocab)
            return kp_session_fail(s, kp_fail(KP_ERR_TOKEN_OUT_OF_RANGE, "token id %d of session %zu is outside [0, %d)",
                                              tokens[i], i, s->m->cfg.n_vocab));
    }
    return KP_OK;
}

kp_status kp_batch_decode(kp_session *const *sessions, const int32_t *tokens, size_t n, uint32_t flags)
{
    kp_clear_error();
    if (n == 0)
        return KP_OK;
    kp_status st = check(sessions, tokens, n, flags);
    if (st)
        return st;
    int want = (flags & (KP_EVAL_LOGITS_LAST | KP_EVAL_LOGITS_ALL)) != 0;
    /* Room for every chunk's logits first, so that a failure changes no session. */
    for (size_t c = 0; c < n; c += KP_BATCH) {
        int32_t nb = n - c < KP_BATCH ? (int32_t)(n - c) : KP_BATCH;
        if (want && (st = kp_session_reserve_logits(sessions[c], nb)))
            return kp_session_fail(sessions[c], st);
    }
    for (size_t c = 0; c < n; c += KP_BATCH) {
        int32_t nb = n - c < KP_BATCH ? (int32_t)(n - c) : KP_BATCH;
        if ((st = kp_decoder_forward_batch(sessions + c, tokens + c, nb, want)))
            return kp_session_fail(sessions[c], st);
    }
    return KP_OK;
}
