/* Float-row math shared by sampling, generation and the CPU backend's scalar attention; it lives
 * in the library so that neither the sampler nor the decoder reaches into a backend. */
#ifndef KP_VECMATH_H
#define KP_VECMATH_H

#include <stdint.h>

/* In place: subtract the max, expf, sum in float in order, divide each by the sum (llama2.c's
 * softmax, the reference every vector softmax matches bit for bit). */
void kp_softmax_f32(float *x, int n);
/* Index of the largest value, as the scan `if (x[i] > x[best]) best = i` finds it: the first
 * one wins ties (+0 and -0 tie), NaNs never win, and a NaN at 0 gives 0. 0 when n <= 0. */
int32_t kp_argmax_f32(const float *x, int n);

#endif
