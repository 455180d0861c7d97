/* kp_generate: prompt as one batch, then sample-eval one token at a time, streaming pieces. */
#include <string.h>

#include "session.h"
#include "../backends/cpu/kernels.h"

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
    kp_buf piece;
} gen_state;

/* Decodes `id` into the stream and reports it; returns non-zero if the callback asks to stop. */
static kp_status report(gen_state *g, int32_t id, int is_prompt, const float *logits, int *stop)
{
    g->piece.len = 0;
    kp_status st = kp_detok_stream_push(g->tok, &g->ds, id, &g->piece);
    if (st)
        return st;
    if (g->p->on_token) {
        kp_token_event ev = {id, is_prompt, g->piece.data ? g->piece.data : "", g->piece.len, logits,
                             logits ? (size_t)g->s->m->cfg.n_vocab : 0};
        *stop = g->p->on_token(g->p->user, &ev) != 0;
    }
    return KP_OK;
}

static int is_stop(const kp_session *s, int32_t id)
{
    const kp_tokenizer *t = s->m->tok;
    return kp_tokenizer_is_eog(t, id) || (s->m->cfg.stop_on_bos && id == t->bos);
}

kp_status kp_generate(kp_session *s, const int32_t *prompt, size_t n_prompt, const kp_generate_params *p,
                      kp_generate_stats *stats)
{
    kp_clear_error();
    if (!s)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_generate: session is NULL");
    kp_generate_params dp;
    kp_generate_params_init(&dp);
    if (p) {
        if (p->struct_size < sizeof(size_t) || p->struct_size > sizeof dp)
            return kp_session_fail(s, kp_fail(KP_ERR_INVALID_ARG,
                                              "kp_generate_params.struct_size %zu is not one this library knows",
                                              p->struct_size));
        memcpy(&dp, p, p->struct_size);
    }
    if (dp.max_new_tokens < 0)
        return kp_session_fail(s, kp_fail(KP_ERR_INVALID_ARG, "max_new_tokens %d is negative", dp.max_new_tokens));
    if (n_prompt == 0 && s->n_past == 0)
        return kp_session_fail(s, kp_fail(KP_ERR_INVALID_ARG, "kp_generate: nothing to continue from (empty prompt "
                                                              "and empty session)"));
    kp_generate_stats tmp;
    kp_generate_stats *gs = stats ? stats : &tmp;
    memset(gs, 0, sizeof *gs);
    gs->stop_id = -1;
    gen_state g = {.s = s, .p = &dp, .tok = s->m->tok};
    kp_detok_stream_init(&g.ds);
    g.ds.prev = s->n_past ? s->tokens[s->n_past - 1] : -1;
    kp_buf_init(&g.piece, s->alloc);
    int stop = 0;
    kp_status st = KP_OK;

    double t0 = kp_now();
    if (n_prompt) {
        if ((st = kp_session_eval(s, prompt, n_prompt, KP_EVAL_LOGITS_LAST)))
            goto out;
    } else {
        /* Continue from the session's last token: re-evaluate it to get its logits. */
        int32_t last = s->tokens[s->n_past - 1];
        s->n_past--;
        if ((st = kp_session_eval(s, &last, 1, KP_EVAL_LOGITS_LAST)))
            goto out;
    }
    gs->n_prompt = (int32_t)n_prompt;
    gs->prompt_seconds = kp_now() - t0;
    if (dp.echo_prompt) {
        /* Like llama2.c, the first prompt token (BOS) only primes the decoder's state. */
        for (size_t i = 0; i < n_prompt && !stop; i++) {
            if (i == 0 && g.ds.prev == -1) {
                g.ds.prev = prompt[0];
                continue;
            }
            if ((st = report(&g, prompt[i], 1, NULL, &stop)))
                goto out;
        }
    } else if (n_prompt) {
        g.ds.prev = prompt[n_prompt - 1];
    }
    double t1 = kp_now();
    while (!stop) {
        if (dp.max_new_tokens && gs->n_generated >= dp.max_new_tokens)
            break;
        if (atomic_load(&s->cancel)) {
            atomic_store(&s->cancel, 0);
            st = kp_fail(KP_ERR_CANCELLED, "generation cancelled after %d tokens", gs->n_generated);
            goto out;
        }
        const float *logits = kp_session_logits_borrow(s, 0);
        int32_t id;
        if (dp.sampler)
            st = kp_sampler_sample(dp.sampler, logits, (size_t)s->m->cfg.n_vocab, &id);
        else
            id = kp_cpu_argmax_f32(logits, s->m->cfg.n_vocab);
        if (st)
            goto out;
        if (is_stop(s, id)) {
            gs->stop_id = id;
            break;
        }
        gs->n_generated++;
        if ((st = report(&g, id, 0, logits, &stop)))
            goto out;
        if (stop || s->n_past >= s->n_ctx)
            break;
        if ((st = kp_session_eval(s, &id, 1, KP_EVAL_LOGITS_LAST)))
            goto out;
    }
    gs->generate_seconds = kp_now() - t1;
    /* Bytes of a character the stream never completed still belong to the output. */
    g.piece.len = 0;
    if (!(st = kp_detok_stream_flush(&g.ds, &g.piece)) && g.piece.len && dp.on_token) {
        kp_token_event ev = {-1, 0, g.piece.data, g.piece.len, NULL, 0};
        dp.on_token(dp.user, &ev);
    }
out:
    kp_buf_free(&g.piece);
    return st ? kp_session_fail(s, st) : KP_OK;
}
