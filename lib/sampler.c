/* Sampling: greedy, or temperature + top-p with llama2.c's xorshift* RNG, reproducing its
 * `run -t T -p P -s SEED` choices step for step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "../backends/cpu/kernels.h"

typedef struct prob_index {
    float prob;
    int32_t index;
} prob_index;

struct kp_sampler {
    const kp_allocator *alloc;
    float temperature, top_p;
    uint64_t seed, rng;
    float *probs;
    prob_index *cand;
    size_t cap;
};

static const struct {
    double lo, hi, def;
} bounds[] = {
    [KP_SAMPLER_TEMPERATURE] = {0.0, 100.0, 1.0},
    [KP_SAMPLER_TOP_P] = {0.0, 1.0, 1.0},
    [KP_SAMPLER_SEED] = {0.0, 9007199254740992.0 /* 2^53: every integer exact in a double */, 0x5eed},
};

static uint64_t seed_to_state(uint64_t seed)
{
    return seed ? seed : (uint64_t)time(NULL); /* llama2.c: 0 means "from the clock" */
}

kp_status kp_sampler_bounds(kp_sampler_opt opt, double *lo, double *hi)
{
    kp_clear_error();
    if ((unsigned)opt > KP_SAMPLER_SEED || !lo || !hi)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_sampler_bounds: unknown option %d or NULL output", (int)opt);
    *lo = bounds[opt].lo;
    *hi = bounds[opt].hi;
    return KP_OK;
}

kp_status kp_sampler_new(const kp_allocator *a, kp_sampler **out)
{
    kp_clear_error();
    if (!out)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_sampler_new: out is NULL");
    a = kp_allocator_or_default(a);
    kp_sampler *s = kp_calloc(a, 1, sizeof *s);
    if (!(*out = s))
        return KP_ERR_OUT_OF_MEMORY;
    s->alloc = a;
    s->temperature = (float)bounds[KP_SAMPLER_TEMPERATURE].def;
    s->top_p = (float)bounds[KP_SAMPLER_TOP_P].def;
    s->seed = (uint64_t)bounds[KP_SAMPLER_SEED].def;
    s->rng = seed_to_state(s->seed);
    return KP_OK;
}

void kp_sampler_free(kp_sampler *s)
{
    if (!s)
        return;
    kp_dealloc(s->alloc, s->probs, s->cap * sizeof *s->probs);
    kp_dealloc(s->alloc, s->cand, s->cap * sizeof *s->cand);
    kp_dealloc(s->alloc, s, sizeof *s);
}

kp_status kp_sampler_set(kp_sampler *s, kp_sampler_opt opt, double v)
{
    kp_clear_error();
    if (!s)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_sampler_set: sampler is NULL");
    if ((unsigned)opt > KP_SAMPLER_SEED)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_sampler_set: unknown option %d", (int)opt);
    if (!(v >= bounds[opt].lo && v <= bounds[opt].hi))
        return kp_fail(KP_ERR_INVALID_ARG, "sampler option %d: %g is outside [%g, %g]", (int)opt, v,
                       bounds[opt].lo, bounds[opt].hi);
    switch (opt) {
    case KP_SAMPLER_TEMPERATURE: s->temperature = (float)v; break;
    case KP_SAMPLER_TOP_P: s->top_p = (float)v; break;
    case KP_SAMPLER_SEED:
        if (v != floor(v))
            return kp_fail(KP_ERR_INVALID_ARG, "sampler seed %g is not an integer", v);
        s->seed = (uint64_t)v;
        s->rng = seed_to_state(s->seed);
        break;
    }
    return KP_OK;
}

static uint32_t rng_u32(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

static float rng_f32(uint64_t *state) { return (float)(rng_u32(state) >> 8) / 16777216.0f; }

/* Descending probability; equal ones keep qsort's order, as llama2.c's comparator does. */
static int cmp_prob_desc(const void *a, const void *b)
{
    const prob_index *x = a, *y = b;
    return x->prob > y->prob ? -1 : (x->prob < y->prob ? 1 : 0);
}

static int32_t sample_full(const float *p, size_t n, float coin)
{
    float cdf = 0.0f;
    for (size_t i = 0; i < n; i++) {
        cdf += p[i];
        if (coin < cdf)
            return (int32_t)i;
    }
    return (int32_t)n - 1; /* rounding left the sum below the coin */
}

/* Nucleus sampling over the smallest prefix of the sorted distribution whose mass exceeds
 * top_p; candidates below (1-top_p)/(n-1) cannot be in it and are dropped before sorting. */
static int32_t sample_top_p(kp_sampler *s, const float *p, size_t n, float coin)
{
    const float cutoff = (1.0f - s->top_p) / (float)(n - 1);
    size_t n0 = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] >= cutoff)
            s->cand[n0++] = (prob_index){p[i], (int32_t)i};
    if (n0 == 0) /* top_p below 1/n: only the most likely token can qualify */
        return kp_cpu_argmax_f32(p, (int)n);
    qsort(s->cand, n0, sizeof *s->cand, cmp_prob_desc);
    float cum = 0.0f;
    size_t last = n0 - 1;
    for (size_t i = 0; i < n0; i++) {
        cum += s->cand[i].prob;
        if (cum > s->top_p) {
            last = i;
            break;
        }
    }
    float r = coin * cum, cdf = 0.0f;
    for (size_t i = 0; i <= last; i++) {
        cdf += s->cand[i].prob;
        if (r < cdf)
            return s->cand[i].index;
    }
    return s->cand[last].index;
}

kp_status kp_sampler_sample(kp_sampler *s, const float *logits, size_t n, int32_t *id)
{
    kp_clear_error();
    if (!s || !logits || !id || n == 0 || n > INT32_MAX)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_sampler_sample: NULL argument or bad size %zu", n);
    if (s->temperature == 0.0f) {
        *id = kp_cpu_argmax_f32(logits, (int)n);
        return KP_OK;
    }
    if (n > s->cap) {
        float *p = kp_alloc(s->alloc, n * sizeof *p);
        prob_index *c = p ? kp_alloc(s->alloc, n * sizeof *c) : NULL;
        if (!c) {
            kp_dealloc(s->alloc, p, n * sizeof *p);
            return KP_ERR_OUT_OF_MEMORY;
        }
        kp_dealloc(s->alloc, s->probs, s->cap * sizeof *s->probs);
        kp_dealloc(s->alloc, s->cand, s->cap * sizeof *s->cand);
        s->probs = p;
        s->cand = c;
        s->cap = n;
    }
    for (size_t i = 0; i < n; i++)
        s->probs[i] = logits[i] / s->temperature;
    kp_cpu_softmax_f32(s->probs, (int)n);
    float coin = rng_f32(&s->rng);
    if (s->top_p <= 0.0f || s->top_p >= 1.0f || n == 1)
        *id = sample_full(s->probs, n, coin);
    else
        *id = sample_top_p(s, s->probs, n, coin);
    return KP_OK;
}
