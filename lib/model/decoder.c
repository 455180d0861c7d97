/* The one decoder: Llama 2/3, Qwen2/3 and relatives differ only in kp_model_config flags.
 * Every op goes through the backend vtable; shapes are noted as [rows][cols] per token.
 *
 * A forward chunk is nb rows of activations split into groups, each group a run of consecutive
 * positions of one session: one group for kp_session_eval, a group per session for
 * kp_batch_eval and kp_batch_decode. Weight matmuls see all nb rows; rope, the KV store and
 * attention run per group, against that group's own cache. */
#include <math.h>
#include <string.h>

#include "../session.h"

typedef struct row_group {
    kp_session *s;
    int32_t row, n, pos; /* rows row .. row+n-1 of the chunk sit at positions pos .. pos+n-1 */
} row_group;

/* Rope and cache the group's new rows; the attention call for them goes to *out. */
static void attend_prep(kp_backend *be, const kp_backend_ops *op, const kp_model_config *c, kp_acts *a, int l,
                        const row_group *g, kp_attn_args *out)
{
    const int hd = c->head_dim, q_dim = c->n_head * hd, kv_dim = c->n_head_kv * hd;
    kp_session *s = g->s;
    float *q = a->q + (size_t)g->row * q_dim, *k = a->k + (size_t)g->row * kv_dim;
    const float *ff = s->m->rope_freqs ? (const float *)s->m->rope_freqs->data : NULL;
    op->rope(be, q, g->n, c->n_head, hd, g->pos, c->rope_theta, ff, c->rope_style);
    op->rope(be, k, g->n, c->n_head_kv, hd, g->pos, c->rope_theta, ff, c->rope_style);
    const kp_kv_shape shape = {s->kv_type, s->n_ctx, c->n_head_kv, hd};
    op->kv_store(be, s->k_cache[l], &shape, k, g->pos, g->n);
    op->kv_store(be, s->v_cache[l], &shape, a->v + (size_t)g->row * kv_dim, g->pos, g->n);
    *out = (kp_attn_args){
        .out = a->att + (size_t)g->row * q_dim, .q = q, .k_cache = s->k_cache[l], .v_cache = s->v_cache[l],
        .kv_type = s->kv_type, .n_ctx = s->n_ctx, .pos0 = g->pos, .n_tok = g->n, .n_head = c->n_head,
        .n_head_kv = c->n_head_kv, .head_dim = hd, .scale = 1.0f / sqrtf((float)hd),
        .scratch = s->a.attn_scratch, .scratch_tokens = s->a.scratch_tokens, /* for the session's context */
    };
}

/* One chunk of nb <= KP_BATCH rows in the activation buffers `a`. */
static void forward_layers(const kp_model *m, kp_acts *a, const int32_t *ids, int32_t nb, const row_group *g,
                           int32_t ng)
{
    const kp_model_config *c = &m->cfg;
    const kp_backend_ops *op = m->be->ops;
    kp_backend *be = m->be;
    const int E = c->n_embd, F = c->n_ff, hd = c->head_dim;
    const int q_dim = c->n_head * hd, kv_dim = c->n_head_kv * hd;

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
        kp_attn_args aa[KP_BATCH];
        for (int32_t i = 0; i < ng; i++)
            attend_prep(be, op, c, a, l, &g[i], &aa[i]);
        if (op->attention_batch) /* att rows of each group: [n][q_dim] */
            op->attention_batch(be, aa, ng);
        else
            for (int32_t i = 0; i < ng; i++)
                op->attention(be, &aa[i]);
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

/* Final norm and classifier for the k rows rows[0..k-1] of the chunk, left in order in
 * a->logits_dev. A run of consecutive rows is normalised in one call. */
static void forward_logits(const kp_model *m, kp_acts *a, const int32_t *rows, int32_t k)
{
    const kp_backend_ops *op = m->be->ops;
    const int E = m->cfg.n_embd;
    for (int32_t j = 0; j < k;) {
        int32_t e = j + 1;
        while (e < k && rows[e] == rows[e - 1] + 1)
            e++;
        op->rmsnorm(m->be, a->xb + (size_t)j * E, a->x + (size_t)rows[j] * E, m->output_norm->data, e - j, E,
                    m->cfg.rms_eps);
        j = e;
    }
    op->matmul(m->be, a->logits_dev, m->output, a->xb, k, a->work);
}

/* rows r0 .. r0+nr-1 */
static void forward_logits_run(const kp_model *m, kp_acts *a, int32_t r0, int32_t nr)
{
    int32_t rows[KP_BATCH];
    for (int32_t j = 0; j < nr; j++)
        rows[j] = r0 + j;
    forward_logits(m, a, rows, nr);
}

kp_status kp_decoder_forward(kp_session *s, const int32_t *ids, int32_t n, uint32_t flags)
{
    const kp_model *m = s->m;
    const size_t V = (size_t)m->cfg.n_vocab;
    int all = (flags & KP_EVAL_LOGITS_ALL) != 0;
    int last = !all && (flags & KP_EVAL_LOGITS_LAST);
    s->n_logits = 0;
    for (int32_t done = 0; done < n;) {
        /* Cancel between chunks only: a token already reported to the user is always stored. */
        if (done > 0 && atomic_load_explicit(&s->cancel, memory_order_relaxed))
            return KP_ERR_CANCELLED;
        int32_t nb = n - done < KP_BATCH ? n - done : KP_BATCH;
        row_group g = {s, 0, nb, s->n_past};
        forward_layers(m, &s->a, ids + done, nb, &g, 1);
        kp_status st = KP_OK;
        if (all) {
            forward_logits_run(m, &s->a, 0, nb);
            st = m->be->ops->download(m->be, s->logits + (size_t)done * V, s->a.logits_dev, (size_t)nb * V * 4);
        } else if (last && done + nb == n) {
            forward_logits_run(m, &s->a, nb - 1, 1);
            st = m->be->ops->download(m->be, s->logits, s->a.logits_dev, V * 4);
        }
        if (st)
            return st;
        memcpy(s->tokens + s->n_past, ids + done, (size_t)nb * sizeof *ids);
        s->n_past += nb;
        done += nb;
    }
    s->n_logits = all ? n : (last ? 1 : 0);
    return m->be->ops->sync(m->be);
}

kp_status kp_decoder_forward_groups(kp_session *const *ss, const int32_t *const *ids, const int32_t *n,
                                    const int8_t *want, int32_t ng)
{
    const kp_model *m = ss[0]->m;
    const size_t V = (size_t)m->cfg.n_vocab;
    row_group g[KP_BATCH] = {{0}};
    int32_t chunk_ids[KP_BATCH] = {0}, rows[KP_BATCH], nb = 0, k = 0; /* zeroed: gcc -O2 cannot see ng >= 1 */
    /* The first session's buffers hold the chunk: they are sized for KP_BATCH rows and the
     * caller owns every session of the call. */
    kp_acts *a = &ss[0]->a;
    for (int32_t i = 0; i < ng; i++) {
        g[i] = (row_group){ss[i], nb, n[i], ss[i]->n_past};
        memcpy(chunk_ids + nb, ids[i], (size_t)n[i] * sizeof *ids[i]);
        for (int32_t r = want[i] == KP_WANT_LAST ? n[i] - 1 : 0; want[i] && r < n[i]; r++)
            rows[k++] = nb + r;
        nb += n[i];
    }
    forward_layers(m, a, chunk_ids, nb, g, ng);
    if (k) {
        forward_logits(m, a, rows, k);
        k = 0;
        for (int32_t i = 0; i < ng; i++) {
            const int32_t nr = want[i] == KP_WANT_ALL ? n[i] : want[i] == KP_WANT_LAST;
            if (!nr)
                continue;
            kp_status st = m->be->ops->download(m->be, ss[i]->logits + (size_t)ss[i]->n_logits * V,
                                                a->logits_dev + (size_t)k * V, (size_t)nr * V * 4);
            if (st)
                return st;
            ss[i]->n_logits += nr;
            k += nr;
        }
    }
    for (int32_t i = 0; i < ng; i++) {
        memcpy(ss[i]->tokens + ss[i]->n_past, ids[i], (size_t)n[i] * sizeof *ids[i]);
        ss[i]->n_past += n[i];
    }
    return m->be->ops->sync(m->be);
}
