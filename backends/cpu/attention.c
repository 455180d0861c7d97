/* Causal attention over the KV cache, one head at a time (llama2.c's loop): scores, softmax,
 * weighted sum of values. A head's tokens run in order because they share one scratch row. */
#include <string.h>

#include "simd.h"

void kp_cpu_attention_heads(const kp_attn_args *a, const kp_cpu_vec *v, int h0, int h1)
{
    const int hd = a->head_dim, q_dim = a->n_head * hd, kv_dim = a->n_head_kv * hd;
    const int group = a->n_head / a->n_head_kv;
    const int64_t span = (int64_t)a->pos0 + a->n_tok;
    const int f16 = a->kv_type == KP_KV_F16;
    for (int h = h0; h < h1; h++) {
        const int kvh = h / group;
        float *att = a->scratch + (int64_t)h * span;
        for (int t = 0; t < a->n_tok; t++) {
            const float *q = a->q + (int64_t)t * q_dim + (int64_t)h * hd;
            float *out = a->out + (int64_t)t * q_dim + (int64_t)h * hd;
            const int np = a->pos0 + t + 1;
            for (int p = 0; p < np; p++) {
                const int64_t off = (int64_t)p * kv_dim + (int64_t)kvh * hd;
                float s = f16 ? v->dot_f16(q, (const uint16_t *)a->k_cache + off, hd)
                              : v->dot_f32(q, (const float *)a->k_cache + off, hd);
                att[p] = s * a->scale;
            }
            kp_cpu_softmax_f32(att, np);
            memset(out, 0, (size_t)hd * sizeof(float));
            for (int p = 0; p < np; p++) {
                const int64_t off = (int64_t)p * kv_dim + (int64_t)kvh * hd;
                if (f16)
                    v->axpy_f16(out, att[p], (const uint16_t *)a->v_cache + off, hd);
                else
                    v->axpy_f32(out, att[p], (const float *)a->v_cache + off, hd);
            }
        }
    }
}
