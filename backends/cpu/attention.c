/* Causal attention over the KV cache (llama2.c's loop: scores, softmax, weighted sum of
 * values), arranged for the memory system: the query heads that share a KV head (grouped-query
 * attention) are handled together, position block by position block, so each block of K and V
 * is read from memory once and then hit in cache by every head of the group. A head's
 * arithmetic is the same as one head alone (the value sums continue across blocks exactly),
 * so the grouping never changes a result. A head's tokens run in order: they share one scratch
 * row. */
#include "simd.h"

void kp_cpu_attention_heads(const kp_attn_args *a, const kp_cpu_vec *vec, int h0, int h1)
{
    const int hd = a->head_dim, q_dim = a->n_head * hd, kv_dim = a->n_head_kv * hd;
    const int group = a->n_head / a->n_head_kv;
    const int64_t span = (int64_t)a->pos0 + a->n_tok;
    const int f16 = a->kv_type == KP_KV_F16;
    const int64_t es = f16 ? 2 : 4;
    /* positions per block: about 16 KiB of K (or V) for this head, to stay in L1 */
    int pb = (int)(16384 / ((int64_t)hd * es));
    pb = pb < 16 ? 16 : pb;
    for (int hs = h0; hs < h1;) {
        const int kvh = hs / group;
        const int he = (kvh + 1) * group < h1 ? (kvh + 1) * group : h1; /* heads [hs, he) */
        const char *k = (const char *)a->k_cache + (int64_t)kvh * hd * es;
        const char *v = (const char *)a->v_cache + (int64_t)kvh * hd * es;
        for (int t = 0; t < a->n_tok; t++) {
            const int np = a->pos0 + t + 1;
            for (int p0 = 0; p0 < np; p0 += pb) {
                const int len = np - p0 < pb ? np - p0 : pb;
                for (int h = hs; h < he; h++)
                    vec->scores(a->scratch + h * span + p0, a->q + (int64_t)t * q_dim + (int64_t)h * hd,
                                k + (int64_t)p0 * kv_dim * es, kv_dim, len, hd, a->scale, f16);
            }
            for (int h = hs; h < he; h++)
                kp_cpu_softmax_f32(a->scratch + h * span, np);
            for (int p0 = 0; p0 < np; p0 += pb) {
                const int len = np - p0 < pb ? np - p0 : pb;
                for (int h = hs; h < he; h++)
                    vec->wsum(a->out + (int64_t)t * q_dim + (int64_t)h * hd, a->scratch + h * span + p0,
                              v + (int64_t)p0 * kv_dim * es, kv_dim, len, hd, f16, p0 > 0);
            }
        }
        hs = he;
    }
}
