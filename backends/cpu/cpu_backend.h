/* CPU-backend knobs beyond the generic vtable, for benchmarks and tests. */
#ifndef KP_CPU_BACKEND_H
#define KP_CPU_BACKEND_H

#include "../backend.h"

/* Float matmuls with at least `min_tokens` rows go to OpenBLAS sgemm (when built with it);
 * 0 turns BLAS off so the backend's own kernel always runs; a negative value restores the
 * default (16 tokens at AVX-512, 8 below). be must be a CPU backend. */
void kp_cpu_backend_set_blas_min_tokens(kp_backend *be, int min_tokens);

#endif
