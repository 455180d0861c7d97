/* kp_generate: prompt as one batch, then sample and evaluate one token at a time, streaming
 * whole UTF-8 text, with stop tokens, stop strings and a context policy. */
#include <string.h>

#include "session.h"
#include "vecmath.h"

void kp_generate_params_init(kp_generate_params *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
}

typedef struct gen_state {
    kp_session *s;
    const kp_generate_params *p;
    const kp_tokenizer *tok;
    kp_detok_stream ds;
    kp_buf piece; /* text decoded for the current token */
    kp_buf hold;  /* decoded text not yet reported (a possible stop-string prefix) */
    kp_generate_stats *stats;
} gen_state;

static int emit(gen_state *g, int32_t id, int is_prompt, const char *text, size_t len, const float *logits)
{
    if (!g->p->on_token)
        return 0;
    kp_token_event ev = {id, is_prompt, text ? text : "", len, logits,
                         logits ? (size_t)g->s->m->cfg.n_vocab : 0};
    g->s->in_callback = 1;
    int stop = g->p->on_token(g->p->user, &ev) != 0;
    g->s->in_callback = 0;
    return stop;
}

/* Length of the longest suffix of `t` that is a proper prefix of some stop string. */
static size_t stop_prefix_tail(const gen_state *g, const char *t, size_t n)
{
    size_t best = 0;
    for (size_t k = 0; k < g->p->n_stop_strings; k++) {
        const char *ss = g->p->stop_strings[k];
        size_t sl = strlen(ss);
        for (size_t l = sl > n + 1 ? n : sl - 1; l > best; l--)
            if (memcmp(t + n - l, ss, l) == 0) {
                best = l;
                break;
            }
    }
    return best;
}

/* Decodes `id` and reports what can be reported. Sets *stop when a stop string or the
 * callback ends generation. */
static kp_status report(gen_state *g, int32_t id, int is_prompt, const float *logits, int *stop)
{
    g->piece.len = 0;
    kp_status st = kp_detok_stream_push(g->tok, &g->ds, id, &g->piece);
    if (st)
        return st;
    if (is_prompt || g->p->n_stop_strings == 0) {
        *stop = emit(g, id, is_prompt, g->piece.data, g->piece.len, logits);
        if (*stop)
            g->stats->reason = KP_STOP_CALLBACK;
        return KP_OK;
    }
    if ((st = kp_buf_append(&g->hold, g->piece.data, g->piece.len)))
        return st;
    const char *h = g->hold.data ? g->hold.data : "";
    size_t cut = g->hold.len;
    int32_t which = -1;
    for (size_t k = 0; k < g->p->n_stop_strings; k++) {
        const char *ss = g->p->stop_strings[k];
        size_t sl = strlen(ss);
        for (size_t i = 0; sl && i + sl <= g->hold.len && i < cut; i++)
            if (memcmp(h + i, ss, sl) == 0) {
                cut = i;
                which = (int32_t)k;
                break;
            }
    }
    if (which >= 0) {
        emit(g, id, 0, h, cut, logits);
        g->stats->reason = KP_STOP_STRING;
        g->stats->stop_string = which;
        g->hold.len = 0;
        *stop = 1;
        return KP_OK;
    }
    size_t keep = stop_prefix_tail(g, h, g->hold.len);
    size_t out = g->hold.len - keep;
    *stop = emit(g, id, 0, h, out, logits);
    if (*stop)
        g->stats->reason = KP_STOP_CALLBACK;
    memmove(g->hold.data, h + out, keep);
    g->hold.len = keep;
    return KP_OK;
}

static int is_stop_token(const kp_session *s, int32_t id)
{
    const kp_tokenizer *t = s->m->tok;
    return kp_tokenizer_is_eog(t, id) || (s->m->cfg.stop_on_bos && id == t->bos);
}

/* KP_CONTEXT_SLIDE: keep [0, n_keep) and the newer half of the rest, re-evaluated in place. */
static kp_status slide(kp_session *s, int32_t n_keep)
{
    if (n_keep < 0)
        n_keep = 0;
    if (n_keep > s->n_past - 2)
        n_keep = s->n_past - 2 > 0 ? s->n_past - 2 : 0;
    int32_t rest = s->n_past - n_keep, discard = rest / 2 > 0 ? rest / 2 : 1;
    int32_t n_tail = rest - discard;
    int32_t *tail = kp_alloc(s->alloc, (size_t)(n_tail > 0 ? n_tail : 1) * sizeof *tail);
    if (!tail)
        return KP_ERR_OUT_OF_MEMORY;
    memcpy(tail, s->tokens + n_keep + discard, (size_t)n_tail * sizeof *tail);
    kp_status st = kp_session_truncate(s, n_keep);
    if (!st && n_tail)
        st = kp_session_eval(s, tail, (size_t)n_tail, KP_EVAL_LOGITS_NONE);
    kp_dealloc(s->alloc, tail, (size_t)(n_tail > 0 ? n_tail : 1) * sizeof *tail);
    return st;
}

static kp_status run(gen_state *g, const int32_t *prompt, size_t n_prompt)
{
    kp_session *s = g->s;
    const kp_generate_params *p = g->p;
    kp_generate_stats *gs = g->stats;
    const int32_t V = s->m->cfg.n_vocab;
    kp_status st;
    int stop = 0;

    double t0 = kp_now();
    if (n_prompt) {
        if ((st = kp_session_eval(s, prompt, n_prompt, KP_EVAL_LOGITS_LAST)))
            return st;
    } else if (!kp_session_logits_borrow(s, 0)) {
        /* Continue from the session's last token: evaluate it again for its logits. */
        int32_t last = s->tokens[s->n_past - 1];
        s->n_past--;
        if ((st = kp_session_eval(s, &last, 1, KP_EVAL_LOGITS_LAST)))
            return st;
    }
    gs->n_prompt = (int32_t)n_prompt;
    gs->prompt_seconds = kp_now() - t0;
    for (size_t i = 0; p->sampler && i < n_prompt; i++)
        if ((st = kp_sampler_accept(p->sampler, prompt[i])))
            return st;
    if (p->echo_prompt) {
        /* Like llama2.c, a leading BOS only primes the decoder's state. */
        for (size_t i = 0; i < n_prompt && !stop; i++) {
            if (i == 0 && g->ds.prev == -1 && prompt[0] == g->tok->bos) {
                g->ds.prev = prompt[0];
                continue;
            }
            if ((st = report(g, prompt[i], 1, NULL, &stop)))
                return st;
        }
    } else if (n_prompt) {
        g->ds.prev = prompt[n_prompt - 1];
    }
    double t1 = kp_now();
    while (!stop) {
        if (p->max_new_tokens && gs->n_generated >= p->max_new_tokens) {
            gs->reason = KP_STOP_MAX_TOKENS;
            break;
        }
        if (atomic_exchange(&s->cancel, 0))
            return kp_fail(KP_ERR_CANCELLED, "generation cancelled after %d tokens", gs->n_generated);
        const float *logits = kp_session_logits_borrow(s, 0);
        int32_t id;
        if (p->sampler) {
            if ((st = kp_sampler_sample(p->sampler, logits, (size_t)V, &id)) ||
                (st = kp_sampler_accept(p->sampler, id)))
                return st;
        } else {
            id = kp_argmax_f32(logits, V);
        }
        if (is_stop_token(s, id)) {
            gs->stop_id = id;
            gs->reason = KP_STOP_EOG;
            break;
        }
        gs->n_generated++;
        if ((st = report(g, id, 0, logits, &stop)))
            return st;
        if (stop)
            break;
        if (s->n_past >= s->n_ctx) {
            if (p->context_policy == KP_CONTEXT_SLIDE) {
                if ((st = slide(s, p->n_keep)))
                    return st;
            } else {
                gs->reason = KP_STOP_CONTEXT;
                if (p->max_new_tokens)
                    return kp_fail(KP_ERR_CONTEXT_FULL, "the context of %d positions filled after %d new tokens",
                                   s->n_ctx, gs->n_generated);
                break;
            }
        }
        if ((st = kp_session_eval(s, &id, 1, KP_EVAL_LOGITS_LAST)))
            return st;
    }
    gs->generate_seconds = kp_now() - t1;
    if (gs->reason == KP_STOP_STRING)
        return KP_OK;
    /* Whatever is still held (a partial stop string, bytes of an unfinished character)
     * belongs to the output. */
    if ((st = kp_detok_stream_flush(&g->ds, &g->hold)))
        return st;
    if (g->hold.len)
        emit(g, -1, 0, g->hold.data, g->hold.len, NULL);
    return KP_OK;
}

kp_status kp_generate(kp_session *s, const int32_t *prompt, size_t n_prompt, const kp_generate_params *p,
                      kp_generate_stats *stats)
{
    kp_clear_error();
    if (!s)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_generate: session is NULL");
    s->err[0] = 0;
    if (kp_session_check_idle(s, "kp_generate"))
        return KP_ERR_BUSY;
    kp_generate_params dp;
    kp_generate_params_init(&dp);
    if (p) {
        if (p->struct_size < sizeof(size_t) || p->struct_size > sizeof dp)
            return kp_session_fail(s, kp_fail(KP_ERR_INVALID_ARG,
                                              "kp_generate_params.struct_size %zu is not one this library knows",
                                              p->struct_size));
        memcpy(&dp, p, p->struct_size);
    }
    if (dp.max_new_tokens < 0 || (n_prompt && !prompt) || (dp.n_stop_strings && !dp.stop_strings) ||
        (dp.context_policy != KP_CONTEXT_ERROR && dp.context_policy != KP_CONTEXT_SLIDE))
        return kp_session_fail(s, kp_fail(KP_ERR_INVALID_ARG, "kp_generate: bad parameters (max_new_tokens %d, "
                                                              "policy %d)",
                                          dp.max_new_tokens, (int)dp.context_policy));
    for (size_t k = 0; k < dp.n_stop_strings; k++)
        if (!dp.stop_strings[k] || !dp.stop_strings[k][0])
            return kp_session_fail(s, kp_fail(KP_ERR_INVALID_ARG, "stop string %zu is NULL or empty", k));
    if (n_prompt == 0 && s->n_past == 0)
        return kp_session_fail(s, kp_fail(KP_ERR_INVALID_ARG, "kp_generate: nothing to continue from (empty prompt "
                                                              "and empty session)"));
    kp_generate_stats tmp;
    gen_state g = {.s = s, .p = &dp, .tok = s->m->tok, .stats = stats ? stats : &tmp};
    memset(g.stats, 0, sizeof *g.stats);
    g.stats->stop_id = -1;
    g.stats->stop_string = -1;
    kp_detok_stream_init(&g.ds);
    g.ds.prev = s->n_past ? s->tokens[s->n_past - 1] : -1;
    kp_buf_init(&g.piece, s->alloc);
    kp_buf_init(&g.hold, s->alloc);
    kp_status st = run(&g, prompt, n_prompt);
    kp_buf_free(&g.piece);
    kp_buf_free(&g.hold);
    return st ? kp_session_fail(s, st) : KP_OK;
}
