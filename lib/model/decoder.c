/* The one decoder: Llama 2/3, Qwen2/3 and relatives differ only in kp_model_config flags.
 * Every op goes through the backend vtable; shapes are noted as [rows][cols] per token. */
#include <math.h>
#include <string.h>

#include "../session.h"

/* One chunk of at most KP_BATCH tokens at positions pos .. pos+nb-1. */
static void forward_layers(kp_session *s, const int32_t *ids, int32_t nb, int32_t pos)
{
    const kp_model *m = s->m;
    const kp_model_config *c = &m->cfg;
    const kp_backend_ops *op = m->be->ops;
    kp_backend *be = m->be;
    kp_acts *a = &s->a;
    const int E = c->n_embd, F = c->n_ff, hd = c->head_dim;
    const int q_dim = c->n_head * hd, kv_dim = c->n_head_kv * hd;
    const float *ff = m->rope_freqs ? (const float *)m->rope_freqs->data : NULL;

    op->embedding(be, a->x, m->tok_embd, ids, nb); /* x: [nb][E] */
    for (int l = 0; l < c->n_layer; l++) {
        const kp_layer_weights *w = &m->layers[l];
        op->rmsnorm(be, a->xb, a->x, w->attn_norm->data, nb, E, c->rms_eps);
        op->matmul(be, a->q, w->wq, a->xb, nb, a->work); /* q: [nb][q_dim] */
        op->matmul(be, a->k, w->wk, a->xb, nb, a->work); /* k, v: [nb][kv_dim] */
        op->matmul(be, a->v, w->wv, a->xb, nb, a->work);
        if (c->qkv_bias) {
            op->add_row(be, a->q, w->bq->data, nb, q_dim);
            op->add_row(be, a->k, w->bk->data, nb, kv_dim);
            op->add_row(be, a->v, w->bv->data, nb, kv_dim);
        }
        if (c->qk_norm) { /* each head's row of head_dim is normalised on its own */
            op->rmsnorm(be, a->q, a->q, w->q_norm->data, nb * c->n_head, hd, c->rms_eps);
            op->rmsnorm(be, a->k, a->k, w->k_norm->data, nb * c->n_head_kv, hd, c->rms_eps);
        }
        op->rope(be, a->q, nb, c->n_head, hd, pos, c->rope_theta, ff, c->rope_style);
        op->rope(be, a->k, nb, c->n_head_kv, hd, pos, c->rope_theta, ff, c->rope_style);
        op->kv_store(be, s->k_cache[l], s->kv_type, a->k, pos, nb, kv_dim);
        op->kv_store(be, s->v_cache[l], s->kv_type, a->v, pos, nb, kv_dim);
        kp_attn_args aa = {
            .out = a->att, .q = a->q, .k_cache = s->k_cache[l], .v_cache = s->v_cache[l],
            .kv_type = s->kv_type, .pos0 = pos, .n_tok = nb, .n_head = c->n_head,
            .n_head_kv = c->n_head_kv, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd),
            .scratch = a->attn_scratch,
        };
        op->attention(be, &aa);                              /* att: [nb][q_dim] */
        op->matmul(be, a->xb2, w->wo, a->att, nb, a->work); /* xb2: [nb][E] */
        op->add(be, a->x, a->xb2, (size_t)nb * E);
        op->rmsnorm(be, a->xb, a->x, w->ffn_norm->data, nb, E, c->rms_eps);
        op->matmul(be, a->hb, w->w_gate, a->xb, nb, a->work); /* hb, hb2: [nb][F] */
        op->matmul(be, a->hb2, w->w_up, a->xb, nb, a->work);
        op->swiglu(be, a->hb, a->hb, a->hb2, nb, F);
        op->matmul(be, a->xb2, w->w_down, a->hb, nb, a->work);
        op->add(be, a->x, a->xb2, (size_t)nb * E);
    }
}

/* Final norm and classifier for rows [r0, r0+nr) of the chunk, into host rows from `dst_row`. */
static kp_status forward_logits(kp_session *s, int32_t r0, int32_t nr, int32_t dst_row)
{
    const kp_model *m = s->m;
    const kp_backend_ops *op = m->be->ops;
    kp_acts *a = &s->a;
    const int E = m->cfg.n_embd;
    const size_t V = (size_t)m->cfg.n_vocab;
    op->rmsnorm(m->be, a->xb, a->x + (size_t)r0 * E, m->output_norm->data, nr, E, m->cfg.rms_eps);
    op->matmul(m->be, a->logits_dev, m->output, a->xb, nr, a->work);
    return op->download(m->be, s->logits + (size_t)dst_row * V, a->logits_dev, (size_t)nr * V * sizeof(float));
}

kp_status kp_decoder_forward(kp_session *s, const int32_t *ids, int32_t n, uint32_t flags)
{
    int all = (flags & KP_EVAL_LOGITS_ALL) != 0;
    int last = !all && (flags & KP_EVAL_LOGITS_LAST);
    s->n_logits = 0;
    for (int32_t done = 0; done < n;) {
        /* Cancel between chunks only: a token already reported to the user is always stored. */
        if (done > 0 && atomic_load_explicit(&s->cancel, memory_order_relaxed))
            return KP_ERR_CANCELLED;
        int32_t nb = n - done < KP_BATCH ? n - done : KP_BATCH;
        forward_layers(s, ids + done, nb, s->n_past);
        kp_status st = KP_OK;
        if (all)
            st = forward_logits(s, 0, nb, done);
        else if (last && done + nb == n)
            st = forward_logits(s, nb - 1, 1, 0);
        if (st)
            return st;
        memcpy(s->tokens + s->n_past, ids + done, (size_t)nb * sizeof *ids);
        s->n_past += nb;
        done += nb;
    }
    s->n_logits = all ? n : (last ? 1 : 0);
    return s->m->be->ops->sync(s->m->be);
}
