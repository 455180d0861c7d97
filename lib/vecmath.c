/* Softmax and argmax over float rows (see vecmath.h). */
#include "vecmath.h"

#include <math.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

void kp_softmax_f32(float *x, int n)
{
    if (n <= 0)
        return;
    float max = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > max)
            max = x[i];
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (int i = 0; i < n; i++)
        x[i] /= sum;
}

/* The scan's answer is the first position equal to the largest non-NaN value, so it is found
 * in two passes without a branch per element: the maximum (its order does not matter), then
 * the first match. Greedy decoding calls this once per token and session on a whole
 * vocabulary; as a scan it was a percent of a batched decode step, in the serial part. */
int32_t kp_argmax_f32(const float *x, int n)
{
    if (n <= 1 || x[0] != x[0])
        return 0;
    int i = 0;
    float m = x[0];
#ifdef __SSE2__
    __m128 mv = _mm_set1_ps(x[0]);
    for (; i + 4 <= n; i += 4)
        mv = _mm_max_ps(_mm_loadu_ps(x + i), mv); /* a NaN lane of the load keeps mv */
    float lanes[4];
    _mm_storeu_ps(lanes, mv);
    for (int k = 0; k < 4; k++)
        if (lanes[k] > m)
            m = lanes[k];
#endif
    for (; i < n; i++)
        if (x[i] > m)
            m = x[i];
    i = 0;
#ifdef __SSE2__
    const __m128 target = _mm_set1_ps(m);
    for (; i + 4 <= n; i += 4) {
        const int hit = _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(x + i), target));
        if (hit)
            return i + __builtin_ctz((unsigned)hit);
    }
#endif
    for (; i < n; i++)
        if (x[i] == m)
            return i;
    return 0; /* not reached: m is one of the values */
}
