/* Causal attention over the KV cache (llama2.c's loop: scores, softmax, weighted sum of
 * values), arranged for the memory system: the query heads that share a KV head (grouped-query
 * attention) are handled together, position block by position block, so each block of K and V
 * is read from memory once and then hit in cache by every head of the group. A prompt's tokens
 * are handled the same way, as many at a time as the caller's scratch has rows per head (8 from
 * a session): one token at a time, each token of a long prompt streamed all of K and V from
 * L2/L3 again (at 2048 positions a head's K and V are 1 MiB at F32), and that traffic, not
 * arithmetic, bounded prompt attention. Every (token, head) row gets the same kernel calls on
 * the same position blocks as alone (the value sums continue across blocks exactly), so tiling
 * and grouping never change a result. */
#include "simd.h"

void kp_cpu_attention_heads(const kp_attn_args *a, const kp_cpu_vec *vec, int h0, int h1)
{
    const int hd = a->head_dim, q_dim = a->n_head * hd;
    const int group = a->n_head / a->n_head_kv;
    const int64_t span = (int64_t)a->pos0 + a->n_tok;
    const int f16 = a->kv_type == KP_KV_F16;
    const int64_t es = f16 ? 2 : 4;
    const int tq = a->scratch_tokens > 1 ? a->scratch_tokens : 1;
    /* positions per block: about 16 KiB of K (or V) for this head, to stay in L1 */
    int pb = (int)(16384 / ((int64_t)hd * es));
    pb = pb < 16 ? 16 : pb;
    for (int hs = h0; hs < h1;) {
        const int kvh = hs / group;
        const int he = (kvh + 1) * group < h1 ? (kvh + 1) * group : h1; /* heads [hs, he) */
        /* the cache is head-major: this head's positions are rows of hd values */
        const char *k = (const char *)a->k_cache + (int64_t)kvh * a->n_ctx * hd * es;
        const char *v = (const char *)a->v_cache + (int64_t)kvh * a->n_ctx * hd * es;
#define ROW(t, h) (a->scratch + ((int64_t)(h) * tq + ((t) - t0)) * span)
        for (int t0 = 0; t0 < a->n_tok; t0 += tq) {
            const int t1 = t0 + tq < a->n_tok ? t0 + tq : a->n_tok;
            const int np_max = a->pos0 + t1;
            for (int p0 = 0; p0 < np_max; p0 += pb)
                for (int t = t0; t < t1; t++) {
                    const int np = a->pos0 + t + 1, len = np - p0 < pb ? np - p0 : pb;
                    for (int h = hs; h < he && len > 0; h++)
                        vec->scores(ROW(t, h) + p0, a->q + (int64_t)t * q_dim + (int64_t)h * hd,
                                    k + (int64_t)p0 * hd * es, hd, len, hd, a->scale, f16);
                }
            for (int t = t0; t < t1; t++)
                for (int h = hs; h < he; h++)
                    vec->softmax(ROW(t, h), a->pos0 + t + 1);
            for (int p0 = 0; p0 < np_max; p0 += pb)
                for (int t = t0; t < t1; t++) {
                    const int np = a->pos0 + t + 1, len = np - p0 < pb ? np - p0 : pb;
                    for (int h = hs; h < he && len > 0; h++)
                        vec->wsum(a->out + (int64_t)t * q_dim + (int64_t)h * hd, ROW(t, h) + p0,
                                  v + (int64_t)p0 * hd * es, hd, len, hd, f16, p0 > 0);
                }
        }
#undef ROW
        hs = he;
    }
}
