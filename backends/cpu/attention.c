/* Causal attention over the KV cache, one head at a time (llama2.c's loop): scores, softmax,
 * weighted sum of values. A head's tokens run in order because they share one scratch row. */
#include "simd.h"

void kp_cpu_attention_heads(const kp_attn_args *a, const kp_cpu_vec *vec, int h0, int h1)
{
    const int hd = a->head_dim, q_dim = a->n_head * hd, kv_dim = a->n_head_kv * hd;
    const int group = a->n_head / a->n_head_kv;
    const int64_t span = (int64_t)a->pos0 + a->n_tok;
    const int f16 = a->kv_type == KP_KV_F16;
    const size_t es = f16 ? 2 : 4;
    for (int h = h0; h < h1; h++) {
        const size_t off = (size_t)(h / group) * (size_t)hd * es; /* this head's kv slice */
        const void *k = (const char *)a->k_cache + off, *v = (const char *)a->v_cache + off;
        float *att = a->scratch + (int64_t)h * span;
        for (int t = 0; t < a->n_tok; t++) {
            const float *q = a->q + (int64_t)t * q_dim + (int64_t)h * hd;
            float *out = a->out + (int64_t)t * q_dim + (int64_t)h * hd;
            const int np = a->pos0 + t + 1;
            vec->scores(att, q, k, kv_dim, np, hd, a->scale, f16);
            kp_cpu_softmax_f32(att, np);
            vec->wsum(out, att, v, kv_dim, np, hd, f16);
        }
    }
}
