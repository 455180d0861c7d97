/* Sampling. With only temperature, top-p and seed set this is llama2.c's sampler, draw for
 * draw (xorshift* coin, its top-p cut). The other options extend it as one chain: penalties
 * over a window of accepted tokens, temperature, softmax, top-k, min-p, top-p, one draw. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "vecmath.h"

typedef struct prob_index {
    float prob;
    int32_t index;
} prob_index;

#define N_OPTS (KP_SAMPLER_PENALTY_WINDOW + 1)

struct kp_sampler {
    const kp_allocator *alloc;
    double opt[N_OPTS];
    uint64_t rng;
    float *probs;       /* [cap] working copy of the logits / probabilities */
    prob_index *cand;   /* [cap] */
    int32_t *counts;    /* [cap] occurrences in the window, zero between calls */
    size_t cap;
    int32_t *window;    /* ring of the last `win_cap` accepted ids */
    size_t win_cap, win_len, win_pos;
};

static const struct {
    double lo, hi, def;
    int integer;
} bounds[N_OPTS] = {
    [KP_SAMPLER_TEMPERATURE] = {0.0, 100.0, 1.0, 0},
    [KP_SAMPLER_TOP_P] = {0.0, 1.0, 1.0, 0},
    [KP_SAMPLER_SEED] = {0.0, 9007199254740992.0 /* 2^53: every integer exact */, 0x5eed, 1},
    [KP_SAMPLER_TOP_K] = {0.0, 2147483647.0, 0.0, 1},
    [KP_SAMPLER_MIN_P] = {0.0, 1.0, 0.0, 0},
    [KP_SAMPLER_REPEAT_PENALTY] = {0.01, 100.0, 1.0, 0},
    [KP_SAMPLER_FREQUENCY_PENALTY] = {-100.0, 100.0, 0.0, 0},
    [KP_SAMPLER_PRESENCE_PENALTY] = {-100.0, 100.0, 0.0, 0},
    [KP_SAMPLER_PENALTY_WINDOW] = {0.0, 65536.0, 64.0, 1},
};

static uint64_t seed_to_state(double seed)
{
    return seed != 0.0 ? (uint64_t)seed : (uint64_t)time(NULL); /* llama2.c: 0 means the clock */
}

kp_status kp_sampler_bounds(kp_sampler_opt opt, double *lo, double *hi)
{
    kp_clear_error();
    if ((unsigned)opt >= N_OPTS || !lo || !hi)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_sampler_bounds: unknown option %d or NULL output", (int)opt);
    *lo = bounds[opt].lo;
    *hi = bounds[opt].hi;
    return KP_OK;
}

static kp_status resize_window(kp_sampler *s, size_t cap)
{
    int32_t *w = NULL;
    if (cap && !(w = kp_alloc(s->alloc, cap * sizeof *w)))
        return KP_ERR_OUT_OF_MEMORY;
    kp_dealloc(s->alloc, s->window, s->win_cap * sizeof *s->window);
    s->window = w;
    s->win_cap = cap;
    s->win_len = s->win_pos = 0;
    return KP_OK;
}

kp_status kp_sampler_new(const kp_allocator *a, kp_sampler **out)
{
    kp_clear_error();
    if (!out)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_sampler_new: out is NULL");
    a = kp_allocator_or_default(a);
    kp_sampler *s = kp_calloc(a, 1, sizeof *s);
    if (!s)
        return KP_ERR_OUT_OF_MEMORY;
    s->alloc = a;
    for (int i = 0; i < N_OPTS; i++)
        s->opt[i] = bounds[i].def;
    s->rng = seed_to_state(s->opt[KP_SAMPLER_SEED]);
    if (resize_window(s, (size_t)s->opt[KP_SAMPLER_PENALTY_WINDOW])) {
        kp_sampler_free(s);
        return KP_ERR_OUT_OF_MEMORY;
    }
    *out = s;
    return KP_OK;
}

void kp_sampler_free(kp_sampler *s)
{
    if (!s)
        return;
    kp_dealloc(s->alloc, s->probs, s->cap * sizeof *s->probs);
    kp_dealloc(s->alloc, s->cand, s->cap * sizeof *s->cand);
    kp_dealloc(s->alloc, s->counts, s->cap * sizeof *s->counts);
    kp_dealloc(s->alloc, s->window, s->win_cap * sizeof *s->window);
    kp_dealloc(s->alloc, s, sizeof *s);
}

kp_status kp_sampler_set(kp_sampler *s, kp_sampler_opt opt, double v)
{
    kp_clear_error();
    if (!s)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_sampler_set: sampler is NULL");
    if ((unsigned)opt >= N_OPTS)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_sampler_set: unknown option %d", (int)opt);
    if (!(v >= bounds[opt].lo && v <= bounds[opt].hi))
        return kp_fail(KP_ERR_INVALID_ARG, "sampler option %d: %g is outside [%g, %g]", (int)opt, v,
                       bounds[opt].lo, bounds[opt].hi);
    if (bounds[opt].integer && v != floor(v))
        return kp_fail(KP_ERR_INVALID_ARG, "sampler option %d: %g is not an integer", (int)opt, v);
    if (opt == KP_SAMPLER_PENALTY_WINDOW && resize_window(s, (size_t)v))
        return KP_ERR_OUT_OF_MEMORY;
    s->opt[opt] = v;
    if (opt == KP_SAMPLER_SEED)
        s->rng = seed_to_state(v);
    return KP_OK;
}

kp_status kp_sampler_accept(kp_sampler *s, int32_t id)
{
    kp_clear_error();
    if (!s || id < 0)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_sampler_accept: NULL sampler or negative id %d", id);
    if (!s->win_cap)
        return KP_OK;
    s->window[s->win_pos] = id;
    s->win_pos = (s->win_pos + 1) % s->win_cap;
    if (s->win_len < s->win_cap)
        s->win_len++;
    return KP_OK;
}

void kp_sampler_reset(kp_sampler *s)
{
    if (!s)
        return;
    s->win_len = s->win_pos = 0;
    s->rng = seed_to_state(s->opt[KP_SAMPLER_SEED]);
}

static uint32_t rng_u32(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (uint32_t)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

static float rng_f32(uint64_t *state) { return (float)(rng_u32(state) >> 8) / 16777216.0f; }

/* Descending probability, ties by ascending id so the order never depends on qsort. */
static int cmp_prob_desc(const void *a, const void *b)
{
    const prob_index *x = a, *y = b;
    if (x->prob != y->prob)
        return x->prob > y->prob ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
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

/* Draw from the sorted candidates cand[0..n0), cut after the running mass first exceeds
 * top_p (all of them when top_p is off). */
static int32_t draw_sorted(const prob_index *cand, size_t n0, float top_p, float coin)
{
    float cum = 0.0f;
    size_t last = n0 - 1;
    for (size_t i = 0; i < n0; i++) {
        cum += cand[i].prob;
        if (top_p > 0.0f && top_p < 1.0f && cum > top_p) {
            last = i;
            break;
        }
    }
    float r = coin * cum, cdf = 0.0f;
    for (size_t i = 0; i <= last; i++) {
        cdf += cand[i].prob;
        if (r < cdf)
            return cand[i].index;
    }
    return cand[last].index;
}

/* llama2.c's nucleus sampling: candidates below (1-top_p)/(n-1) cannot be in the nucleus and
 * are dropped before sorting. */
static int32_t sample_top_p_l2c(kp_sampler *s, const float *p, size_t n, float top_p, float coin)
{
    const float cutoff = (1.0f - top_p) / (float)(n - 1);
    size_t n0 = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] >= cutoff)
            s->cand[n0++] = (prob_index){p[i], (int32_t)i};
    if (n0 == 0) /* top_p below 1/n: only the most likely token can qualify */
        return kp_argmax_f32(p, (int)n);
    qsort(s->cand, n0, sizeof *s->cand, cmp_prob_desc);
    return draw_sorted(s->cand, n0, top_p, coin);
}

static int penalties_on(const kp_sampler *s)
{
    return s->win_len && ((float)s->opt[KP_SAMPLER_REPEAT_PENALTY] != 1.0f ||
                          (float)s->opt[KP_SAMPLER_FREQUENCY_PENALTY] != 0.0f ||
                          (float)s->opt[KP_SAMPLER_PRESENCE_PENALTY] != 0.0f);
}

static void apply_penalties(kp_sampler *s, float *x, size_t n)
{
    const float rep = (float)s->opt[KP_SAMPLER_REPEAT_PENALTY];
    const float freq = (float)s->opt[KP_SAMPLER_FREQUENCY_PENALTY];
    const float pres = (float)s->opt[KP_SAMPLER_PRESENCE_PENALTY];
    if (!penalties_on(s))
        return;
    for (size_t i = 0; i < s->win_len; i++)
        if ((size_t)s->window[i] < n)
            s->counts[s->window[i]]++;
    for (size_t i = 0; i < s->win_len; i++) {
        int32_t id = s->window[i];
        if ((size_t)id >= n || !s->counts[id])
            continue; /* out of this vocabulary, or already penalised */
        float v = x[id];
        v = v > 0.0f ? v / rep : v * rep;
        x[id] = v - (float)s->counts[id] * freq - pres;
        s->counts[id] = 0;
    }
}

static kp_status reserve(kp_sampler *s, size_t n)
{
    if (n <= s->cap)
        return KP_OK;
    float *p = kp_alloc(s->alloc, n * sizeof *p);
    prob_index *c = p ? kp_alloc(s->alloc, n * sizeof *c) : NULL;
    int32_t *k = c ? kp_calloc(s->alloc, n, sizeof *k) : NULL;
    if (!k) {
        kp_dealloc(s->alloc, p, n * sizeof *p);
        kp_dealloc(s->alloc, c, n * sizeof *c);
        return KP_ERR_OUT_OF_MEMORY;
    }
    kp_dealloc(s->alloc, s->probs, s->cap * sizeof *s->probs);
    kp_dealloc(s->alloc, s->cand, s->cap * sizeof *s->cand);
    kp_dealloc(s->alloc, s->counts, s->cap * sizeof *s->counts);
    s->probs = p;
    s->cand = c;
    s->counts = k;
    s->cap = n;
    return KP_OK;
}

kp_status kp_sampler_sample(kp_sampler *s, const float *logits, size_t n, int32_t *id)
{
    kp_clear_error();
    if (!s || !logits || !id || n == 0 || n > INT32_MAX)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_sampler_sample: NULL argument or bad size %zu", n);
    kp_status st = reserve(s, n);
    if (st)
        return st;
    const float temp = (float)s->opt[KP_SAMPLER_TEMPERATURE];
    const float top_p = (float)s->opt[KP_SAMPLER_TOP_P];
    const float min_p = (float)s->opt[KP_SAMPLER_MIN_P];
    const size_t top_k = (size_t)s->opt[KP_SAMPLER_TOP_K];
    const int greedy = temp == 0.0f || top_k == 1;
    if (greedy && !penalties_on(s)) { /* no copy of the vocabulary's logits to change */
        *id = kp_argmax_f32(logits, (int)n);
        return KP_OK;
    }
    memcpy(s->probs, logits, n * sizeof *logits);
    apply_penalties(s, s->probs, n);
    if (greedy) {
        *id = kp_argmax_f32(s->probs, (int)n);
        return KP_OK;
    }
    for (size_t i = 0; i < n; i++)
        s->probs[i] /= temp;
    kp_softmax_f32(s->probs, (int)n);
    float coin = rng_f32(&s->rng);
    if ((top_k == 0 || top_k >= n) && min_p == 0.0f) { /* llama2.c's own paths */
        if (top_p <= 0.0f || top_p >= 1.0f || n == 1)
            *id = sample_full(s->probs, n, coin);
        else
            *id = sample_top_p_l2c(s, s->probs, n, top_p, coin);
        return KP_OK;
    }
    /* General chain: sort, keep the top k, drop those under min_p * max, renormalise, top-p. */
    for (size_t i = 0; i < n; i++)
        s->cand[i] = (prob_index){s->probs[i], (int32_t)i};
    qsort(s->cand, n, sizeof *s->cand, cmp_prob_desc);
    size_t n0 = (top_k && top_k < n) ? top_k : n;
    const float floor_p = min_p * s->cand[0].prob;
    while (n0 > 1 && s->cand[n0 - 1].prob < floor_p)
        n0--;
    float sum = 0.0f;
    for (size_t i = 0; i < n0; i++)
        sum += s->cand[i].prob;
    for (size_t i = 0; i < n0; i++)
        s->cand[i].prob /= sum;
    *id = draw_sorted(s->cand, n0, top_p, coin);
    return KP_OK;
}
