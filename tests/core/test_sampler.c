/* The sampler chain on hand-built logits whose answers follow from the definitions. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <kuiper/kuiper.h>

static kp_sampler *make(double temp)
{
    kp_sampler *s;
    assert_int_equal(kp_sampler_new(NULL, &s), KP_OK);
    assert_int_equal(kp_sampler_set(s, KP_SAMPLER_TEMPERATURE, temp), KP_OK);
    assert_int_equal(kp_sampler_set(s, KP_SAMPLER_SEED, 1234), KP_OK);
    return s;
}

static void set(kp_sampler *s, kp_sampler_opt o, double v) { assert_int_equal(kp_sampler_set(s, o, v), KP_OK); }

/* Draw `n` times and count hits per id. */
static void histogram(kp_sampler *s, const float *lg, int V, int n, int *counts)
{
    memset(counts, 0, (size_t)V * sizeof *counts);
    for (int i = 0; i < n; i++) {
        int32_t id;
        assert_int_equal(kp_sampler_sample(s, lg, (size_t)V, &id), KP_OK);
        assert_true(id >= 0 && id < V);
        counts[id]++;
    }
}

static const float probs5[5] = {0.5f, 0.2f, 0.15f, 0.1f, 0.05f};

static void log_probs(float *lg)
{
    for (int i = 0; i < 5; i++)
        lg[i] = logf(probs5[i]);
}

/* Each id's frequency is within `tol` of p_i / (sum over `keep` of p). */
static void expect_distribution(const int *counts, int n, const int *keep, int nkeep, double tol)
{
    double mass = 0;
    for (int k = 0; k < nkeep; k++)
        mass += probs5[keep[k]];
    int in_set[5] = {0};
    for (int k = 0; k < nkeep; k++) {
        in_set[keep[k]] = 1;
        double f = (double)counts[keep[k]] / n, want = probs5[keep[k]] / mass;
        if (fabs(f - want) > tol)
            fail_msg("id %d drawn %.4f of the time, expected %.4f", keep[k], f, want);
    }
    for (int i = 0; i < 5; i++)
        if (!in_set[i] && counts[i])
            fail_msg("id %d is outside the allowed set but was drawn %d times", i, counts[i]);
}

static void plain_temperature_matches_softmax(void **state)
{
    (void)state;
    float lg[5];
    log_probs(lg);
    kp_sampler *s = make(1.0);
    int c[5], all[5] = {0, 1, 2, 3, 4};
    histogram(s, lg, 5, 40000, c);
    expect_distribution(c, 40000, all, 5, 0.01);
    /* Temperature 0.5 squares the odds: p_i^2 normalised. */
    float half[5];
    for (int i = 0; i < 5; i++)
        half[i] = lg[i] * 0.5f; /* so T=0.5 gives back the original distribution */
    set(s, KP_SAMPLER_TEMPERATURE, 0.5);
    histogram(s, half, 5, 40000, c);
    expect_distribution(c, 40000, all, 5, 0.01);
    kp_sampler_free(s);
}

static void top_k_and_greedy(void **state)
{
    (void)state;
    kp_sampler *s = make(1.0), *g = make(0.0);
    set(s, KP_SAMPLER_TOP_K, 1);
    srand(7);
    for (int trial = 0; trial < 200; trial++) {
        float lg[97];
        for (int i = 0; i < 97; i++)
            lg[i] = (float)rand() / (float)RAND_MAX * 10.0f - 5.0f;
        int32_t a, b;
        assert_int_equal(kp_sampler_sample(s, lg, 97, &a), KP_OK);
        assert_int_equal(kp_sampler_sample(g, lg, 97, &b), KP_OK);
        assert_int_equal(a, b);
    }
    float lg[5];
    log_probs(lg);
    set(s, KP_SAMPLER_TOP_K, 2);
    int c[5], keep[2] = {0, 1};
    histogram(s, lg, 5, 30000, c);
    expect_distribution(c, 30000, keep, 2, 0.012);
    kp_sampler_free(s);
    kp_sampler_free(g);
}

/* The nucleus is the smallest prefix whose mass exceeds p: 0.5+0.2 = 0.7 <= 0.8 < 0.85. */
static void top_p_smallest_set(void **state)
{
    (void)state;
    float lg[5];
    log_probs(lg);
    kp_sampler *s = make(1.0);
    set(s, KP_SAMPLER_TOP_P, 0.8);
    int c[5], keep[3] = {0, 1, 2};
    histogram(s, lg, 5, 40000, c);
    expect_distribution(c, 40000, keep, 3, 0.012);
    /* Through the general chain (top-k on but not limiting) the same set comes out. */
    set(s, KP_SAMPLER_TOP_K, 5);
    set(s, KP_SAMPLER_MIN_P, 0.01);
    histogram(s, lg, 5, 40000, c);
    expect_distribution(c, 40000, keep, 3, 0.012);
    kp_sampler_free(s);
}

/* min_p 0.25 keeps p >= 0.125: ids 0, 1, 2. */
static void min_p_floor(void **state)
{
    (void)state;
    float lg[5];
    log_probs(lg);
    kp_sampler *s = make(1.0);
    set(s, KP_SAMPLER_MIN_P, 0.25);
    int c[5], keep[3] = {0, 1, 2};
    histogram(s, lg, 5, 40000, c);
    expect_distribution(c, 40000, keep, 3, 0.012);
    kp_sampler_free(s);
}

static int32_t greedy_after(kp_sampler *s, const float *lg, int V)
{
    int32_t id;
    assert_int_equal(kp_sampler_sample(s, lg, (size_t)V, &id), KP_OK);
    return id;
}

static void penalties(void **state)
{
    (void)state;
    const float lg[4] = {3.0f, 2.5f, 1.0f, -2.0f};
    kp_sampler *s = make(0.0);
    assert_int_equal(greedy_after(s, lg, 4), 0);
    /* repeat: 3 / 2 = 1.5 < 2.5 */
    set(s, KP_SAMPLER_REPEAT_PENALTY, 2.0);
    assert_int_equal(kp_sampler_accept(s, 0), KP_OK);
    assert_int_equal(greedy_after(s, lg, 4), 1);
    /* a negative logit is multiplied: -2 * 2 stays last */
    set(s, KP_SAMPLER_REPEAT_PENALTY, 1.0);
    kp_sampler_reset(s);
    /* frequency: once 3 - 0.3 = 2.7 > 2.5; three times 3 - 0.9 = 2.1 < 2.5 */
    set(s, KP_SAMPLER_FREQUENCY_PENALTY, 0.3);
    assert_int_equal(kp_sampler_accept(s, 0), KP_OK);
    assert_int_equal(greedy_after(s, lg, 4), 0);
    assert_int_equal(kp_sampler_accept(s, 0), KP_OK);
    assert_int_equal(kp_sampler_accept(s, 0), KP_OK);
    assert_int_equal(greedy_after(s, lg, 4), 1);
    /* presence: 3 - 0.6 = 2.4 < 2.5 whatever the count */
    set(s, KP_SAMPLER_FREQUENCY_PENALTY, 0.0);
    set(s, KP_SAMPLER_PRESENCE_PENALTY, 0.6);
    kp_sampler_reset(s);
    assert_int_equal(kp_sampler_accept(s, 0), KP_OK);
    assert_int_equal(greedy_after(s, lg, 4), 1);
    /* the window forgets: with room for 2, id 0 falls out after two newer tokens */
    set(s, KP_SAMPLER_PENALTY_WINDOW, 2);
    assert_int_equal(kp_sampler_accept(s, 0), KP_OK);
    assert_int_equal(greedy_after(s, lg, 4), 1);
    assert_int_equal(kp_sampler_accept(s, 2), KP_OK);
    assert_int_equal(kp_sampler_accept(s, 3), KP_OK);
    assert_int_equal(greedy_after(s, lg, 4), 0);
    /* ids beyond this vocabulary in the window are ignored */
    assert_int_equal(kp_sampler_accept(s, 1000), KP_OK);
    assert_int_equal(greedy_after(s, lg, 4), 0);
    assert_int_equal(kp_sampler_accept(s, -1), KP_ERR_INVALID_ARG);
    /* the logits passed in are never modified */
    assert_true(lg[0] == 3.0f);
    kp_sampler_free(s);
}

static void seeded_reproducible(void **state)
{
    (void)state;
    float lg[50];
    for (int i = 0; i < 50; i++)
        lg[i] = sinf((float)i) * 3.0f;
    int32_t a[64], b[64], c[64];
    kp_sampler *s = make(0.9);
    set(s, KP_SAMPLER_TOP_P, 0.95);
    for (int i = 0; i < 64; i++)
        assert_int_equal(kp_sampler_sample(s, lg, 50, &a[i]), KP_OK);
    kp_sampler_reset(s);
    for (int i = 0; i < 64; i++)
        assert_int_equal(kp_sampler_sample(s, lg, 50, &b[i]), KP_OK);
    assert_memory_equal(a, b, sizeof a);
    set(s, KP_SAMPLER_SEED, 4321);
    for (int i = 0; i < 64; i++)
        assert_int_equal(kp_sampler_sample(s, lg, 50, &c[i]), KP_OK);
    assert_memory_not_equal(a, c, sizeof a);
    double lo, hi;
    assert_int_equal(kp_sampler_bounds(KP_SAMPLER_TOP_K, &lo, &hi), KP_OK);
    assert_int_equal(kp_sampler_set(s, KP_SAMPLER_TOP_K, 2.5), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_sampler_set(s, KP_SAMPLER_MIN_P, -0.1), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_sampler_set(s, KP_SAMPLER_REPEAT_PENALTY, 0.0), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_sampler_set(s, KP_SAMPLER_PENALTY_WINDOW, 1e6), KP_ERR_INVALID_ARG);
    kp_sampler_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_temperature_matches_softmax),
        cmocka_unit_test(top_k_and_greedy),
        cmocka_unit_test(top_p_smallest_set),
        cmocka_unit_test(min_p_floor),
        cmocka_unit_test(penalties),
        cmocka_unit_test(seeded_reproducible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
