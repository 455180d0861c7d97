/* Helpers for the CPU-op tests: a seeded generator, independent half/bfloat decoders, and
 * loud skips for SIMD levels the CPU lacks. Header-only; every test is its own program. */
#ifndef KP_OPS_TEST_H
#define KP_OPS_TEST_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/cpu/cpu_features.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/wtype.h"
#include "lib/vecmath.h"

/* splitmix64: deterministic across platforms, so a failure reproduces from its seed. */
typedef struct test_rng {
    uint64_t s;
} test_rng;

static inline uint64_t rng_u64(test_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static inline float rng_unif(test_rng *r)
{
    return (float)((double)(rng_u64(r) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

/* Standard normal (Box-Muller). */
static inline float rng_gauss(test_rng *r)
{
    double u1 = ((double)(rng_u64(r) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(rng_u64(r) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* Integer in [lo, hi]. */
static inline int rng_int(test_rng *r, int lo, int hi)
{
    return lo + (int)(rng_u64(r) % (uint64_t)(hi - lo + 1));
}

static inline void fill_gauss(test_rng *r, float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = rng_gauss(r) * scale;
}

/* IEEE half decoded with ldexp: written from the format definition, independently of
 * lib/dtype.c. */
static inline double ref_half(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v;
    if (e == 0)
        v = ldexp((double)m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp((double)(m | 0x400), e - 25);
    return s ? -v : v;
}

static inline double ref_bf16(uint16_t h)
{
    int s = h >> 15, e = (h >> 7) & 0xff, m = h & 0x7f;
    double v;
    if (e == 0)
        v = ldexp((double)m, -133);
    else if (e == 255)
        v = m ? NAN : INFINITY;
    else
        v = ldexp((double)(m | 0x80), e - 134);
    return s ? -v : v;
}

static inline void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "test: out of memory (%zu bytes)\n", n);
        abort();
    }
    return p;
}

/* Non-zero if the CPU runs `l`; otherwise prints a loud SKIP naming the test. */
static inline int have_isa(kp_isa l, const char *what)
{
    if (kp_cpu_isa_detected() >= l)
        return 1;
    fprintf(stderr, "\n*** SKIP: %s at %s: this CPU supports only %s ***\n\n", what,
            kp_isa_name(l), kp_isa_name(kp_cpu_isa_detected()));
    return 0;
}

static inline kp_backend *new_backend(int n_threads)
{
    kp_backend *be = NULL;
    if (kp_backend_cpu_new(NULL, n_threads, &be) != KP_OK || !be) {
        fprintf(stderr, "test: kp_backend_cpu_new(%d) failed\n", n_threads);
        abort();
    }
    return be;
}

#endif
