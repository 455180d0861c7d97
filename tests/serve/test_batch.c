/* kp_batch_decode (and kp_batch_eval, below) against kp_session_eval: sessions with different prompts (so different
 * positions) decode together, and every step's logits and greedy id must equal the same session
 * run alone. The batch is teacher-forced with the solo run's ids, so every step compares the
 * same input; sessions leave the batch at different steps, so its make-up changes as it runs.
 *   F32 weights: every id equal, logits within 1e-5 of the row's largest |logit|;
 *   F16/quantized weights: the same logits bound, ids equal wherever the solo run's top-1/top-2
 *   gap is at least 1e-3 (a near-tie may flip with rounding, as tests/gguf treats them). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "serve_util.h"

#define MAX_SESS 270
#define CHUNK 256 /* rows per chunk of activations: KP_BATCH in lib/session.h */
#define STEPS 12
#define LOGIT_TOL 1e-5
#define TIE_GAP 1e-3

typedef struct solo {
    int32_t ids[STEPS];      /* greedy id after the prompt and after each fed id */
    float *logits;           /* [STEPS][V] */
    float gap[STEPS];        /* top-1 minus top-2 */
} solo;

static int32_t argmax(const float *l, int32_t V, float *gap)
{
    int32_t b = 0;
    float second = -INFINITY;
    for (int32_t i = 1; i < V; i++) {
        if (l[i] > l[b]) {
            second = l[b];
            b = i;
        } else if (l[i] > second) {
            second = l[i];
        }
    }
    if (gap)
        *gap = l[b] - second;
    return b;
}

static kp_session *new_session(kp_model *m)
{
    kp_session_params sp;
    kp_session_params_init(&sp);
    sp.n_ctx = 64;
    kp_session *s = NULL;
    assert_int_equal(kp_session_new(m, &sp, &s), KP_OK);
    return s;
}

/* Session i's solo run: prompt i, then STEPS greedy tokens fed one at a time. */
static void run_solo(kp_model *m, int i, int steps, solo *o)
{
    int32_t V = (int32_t)kp_model_info_get(m, KP_INFO_N_VOCAB), prompt[64];
    size_t np = su_prompt(m, i, prompt, 64);
    assert_true(np > 0);
    kp_session *s = new_session(m);
    assert_int_equal(kp_session_eval(s, prompt, np, KP_EVAL_LOGITS_LAST), KP_OK);
    for (int t = 0; t < steps; t++) {
        const float *l = kp_session_logits_borrow(s, 0);
        memcpy(o->logits + (size_t)t * V, l, (size_t)V * sizeof *l);
        o->ids[t] = argmax(l, V, &o->gap[t]);
        if (t + 1 < steps)
            assert_int_equal(kp_session_eval(s, &o->ids[t], 1, KP_EVAL_LOGITS_LAST), KP_OK);
    }
    kp_session_free(s);
}

/* n sessions together; session i runs steps_of(i) steps. Returns the largest logit error seen
 * relative to its row's largest |logit|. */
static double run_batch(kp_model *m, int n, int exact_ids, int short_steps)
{
    int32_t V = (int32_t)kp_model_info_get(m, KP_INFO_N_VOCAB);
    static solo o[MAX_SESS];
    static kp_session *ss[MAX_SESS];
    int steps[MAX_SESS];
    for (int i = 0; i < n; i++) {
        steps[i] = short_steps ? 2 + i % 3 : STEPS - i % 4; /* leave the batch at different steps */
        o[i].logits = malloc(sizeof(float) * (size_t)V * STEPS);
        assert_non_null(o[i].logits);
        run_solo(m, i, steps[i], &o[i]);
        int32_t prompt[64];
        size_t np = su_prompt(m, i, prompt, 64);
        ss[i] = new_session(m);
        assert_int_equal(kp_session_eval(ss[i], prompt, np, KP_EVAL_LOGITS_LAST), KP_OK);
    }
    double worst = 0;
    int ties = 0;
    for (int t = 0;; t++) {
        kp_session *active[MAX_SESS];
        int32_t feed[MAX_SESS];
        int na = 0;
        for (int i = 0; i < n; i++) {
            if (t >= steps[i])
                continue;
            const float *l = kp_session_logits_borrow(ss[i], 0), *r = o[i].logits + (size_t)t * V;
            assert_non_null(l);
            float mx = 0;
            for (int32_t v = 0; v < V; v++)
                mx = fmaxf(mx, fabsf(r[v]));
            for (int32_t v = 0; v < V; v++) {
                double e = fabs((double)l[v] - r[v]) / (mx > 1 ? mx : 1);
                if (e > worst)
                    worst = e;
            }
            int32_t id = argmax(l, V, NULL);
            if (exact_ids || o[i].gap[t] >= TIE_GAP)
                assert_int_equal(id, o[i].ids[t]);
            else
                ties++;
            if (t + 1 < steps[i]) {
                active[na] = ss[i];
                feed[na++] = o[i].ids[t];
            }
        }
        if (na == 0)
            break;
        int32_t before = kp_session_n_past(active[0]);
        assert_int_equal(kp_batch_decode(active, feed, (size_t)na, KP_EVAL_LOGITS_LAST), KP_OK);
        assert_int_equal(kp_session_n_past(active[0]), before + 1);
        assert_int_equal(kp_session_tokens_borrow(active[0])[before], feed[0]);
    }
    for (int i = 0; i < n; i++) {
        kp_session_free(ss[i]);
        free(o[i].logits);
    }
    printf("  %d sessions: max logit error %.3g of the row's max |logit|, %d near-ties skipped\n", n, worst, ties);
    return worst;
}

static void check_model(const char *which, int exact_ids)
{
    kp_model *m = su_load(which, 2);
    if (!m) {
        skip();
        return;
    }
    printf("%s\n", which);
    const int ns[] = {1, 2, 4, 8};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
        assert_true(run_batch(m, ns[k], exact_ids, 0) <= LOGIT_TOL);
    kp_model_free(m);
}

static void test_stories260k(void **state) { (void)state; check_model("stories260K", 1); }
static void test_llama_small_f32(void **state) { (void)state; check_model("kp-llama-small.gguf", 1); }
static void test_llama_small_q8_0(void **state) { (void)state; check_model("kp-llama-small-Q8_0.gguf", 0); }
static void test_qwen2_f16(void **state) { (void)state; check_model("kp-qwen2-tiny.gguf", 0); }

/* More sessions than one chunk of activations holds: the call splits them. */
static void test_more_than_a_chunk(void **state)
{
    (void)state;
    kp_model *m = su_load("stories260K", 2);
    if (!m) {
        skip();
        return;
    }
    assert_true(run_batch(m, CHUNK + 6, 1, 1) <= LOGIT_TOL);
    kp_model_free(m);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    kp_model *m = su_load("stories260K", 1), *m2 = su_load("stories260K", 1);
    if (!m || !m2) {
        kp_model_free(m);
        skip();
        return;
    }
    kp_session *a = new_session(m), *b = new_session(m), *c = new_session(m2);
    int32_t ids[3] = {1, 2, 3};
    kp_session *same[2] = {a, a}, *mixed[2] = {a, c}, *withnull[2] = {a, NULL}, *ok[2] = {a, b};
    assert_int_equal(kp_batch_decode(NULL, ids, 1, 0), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_batch_decode(ok, NULL, 2, 0), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_batch_decode(ok, ids, 2, 0x80), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_batch_decode(same, ids, 2, 0), KP_ERR_INVALID_ARG);
    assert_non_null(strstr(kp_last_error(), "same"));
    assert_int_equal(kp_batch_decode(mixed, ids, 2, 0), KP_ERR_INVALID_ARG);
    assert_non_null(strstr(kp_session_last_error(c), "another model"));
    assert_int_equal(kp_batch_decode(withnull, ids, 2, 0), KP_ERR_INVALID_ARG);
    int32_t bad[2] = {1, 512};
    assert_int_equal(kp_batch_decode(ok, bad, 2, 0), KP_ERR_TOKEN_OUT_OF_RANGE);
    assert_int_equal(kp_session_n_past(a), 0); /* nothing changed by a failed call */
    assert_int_equal(kp_batch_decode(ok, ids, 0, 0), KP_OK);
    /* a full session fails the whole call before any session moves */
    int32_t fill[64];
    for (int i = 0; i < 64; i++)
        fill[i] = 1 + i;
    assert_int_equal(kp_session_eval(b, fill, 64, KP_EVAL_LOGITS_NONE), KP_OK);
    assert_int_equal(kp_batch_decode(ok, ids, 2, KP_EVAL_LOGITS_LAST), KP_ERR_CONTEXT_FULL);
    assert_int_equal(kp_session_n_past(a), 0);
    assert_int_equal(kp_session_n_past(b), 64);
    /* without logits the cache still fills and no logits row is left behind */
    assert_int_equal(kp_batch_decode(ok, ids, 1, KP_EVAL_LOGITS_NONE), KP_OK);
    assert_int_equal(kp_session_n_past(a), 1);
    assert_null(kp_session_logits_borrow(a, 0));
    kp_session_free(a);
    kp_session_free(b);
    kp_session_free(c);
    kp_model_free(m);
    kp_model_free(m2);
}

/* kp_batch_eval: prompts of different lengths (none, short, longer than a chunk) in shared
 * passes, with running sessions' single tokens beside them, against kp_session_eval alone. */
static double max_rel_err(const float *l, const float *r, int32_t V)
{
    float mx = 0;
    for (int32_t v = 0; v < V; v++)
        mx = fmaxf(mx, fabsf(r[v]));
    double worst = 0;
    for (int32_t v = 0; v < V; v++) {
        double e = fabs((double)l[v] - r[v]) / (mx > 1 ? mx : 1);
        worst = e > worst ? e : worst;
    }
    return worst;
}

static void eval_case(kp_model *m, uint32_t flags)
{
    enum { NS = 5, CTX = 512 };
    const int32_t V = (int32_t)kp_model_info_get(m, KP_INFO_N_VOCAB);
    const size_t lens[NS] = {7, 0, CHUNK + 44, 1, 3}; /* session 2 spans two chunks */
    static int32_t toks[NS][CHUNK + 44];
    uint64_t x = 12345;
    for (int i = 0; i < NS; i++)
        for (size_t k = 0; k < lens[i]; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            toks[i][k] = 1 + (int32_t)((x >> 33) % (uint64_t)(V - 1));
        }
    kp_session_params sp;
    kp_session_params_init(&sp);
    sp.n_ctx = CTX;
    kp_session *bs[NS], *solo[NS];
    const int32_t *tp[NS];
    const int32_t warm = 5; /* sessions 0, 3 and 4 already hold a few positions */
    for (int i = 0; i < NS; i++) {
        assert_int_equal(kp_session_new(m, &sp, &bs[i]), KP_OK);
        assert_int_equal(kp_session_new(m, &sp, &solo[i]), KP_OK);
        if (i == 0 || i >= 3) {
            int32_t w[5] = {1, 2 + i, 3, 4, 5};
            assert_int_equal(kp_session_eval(bs[i], w, (size_t)warm, KP_EVAL_LOGITS_LAST), KP_OK);
            assert_int_equal(kp_session_eval(solo[i], w, (size_t)warm, KP_EVAL_LOGITS_LAST), KP_OK);
        }
        tp[i] = toks[i];
    }
    assert_int_equal(kp_batch_eval(bs, tp, lens, NS, flags), KP_OK);
    double worst = 0;
    for (int i = 0; i < NS; i++) {
        const int32_t before = kp_session_n_past(solo[i]);
        assert_int_equal(kp_session_n_past(bs[i]), before + (int32_t)lens[i]);
        if (!lens[i]) { /* untouched: the warm-up logits are still there */
            assert_int_equal(kp_session_n_past(bs[i]), 0);
            continue;
        }
        assert_memory_equal(kp_session_tokens_borrow(bs[i]) + before, toks[i], lens[i] * sizeof(int32_t));
        assert_int_equal(kp_session_eval(solo[i], toks[i], lens[i], flags), KP_OK);
        const size_t rows = flags & KP_EVAL_LOGITS_ALL ? lens[i] : 1;
        for (size_t r = 0; r < rows; r++) {
            const float *l = kp_session_logits_borrow(bs[i], r), *ref = kp_session_logits_borrow(solo[i], r);
            assert_non_null(l);
            assert_non_null(ref);
            double e = max_rel_err(l, ref, V);
            worst = e > worst ? e : worst;
            assert_int_equal(argmax(l, V, NULL), argmax(ref, V, NULL)); /* F32: the same id */
        }
        assert_null(kp_session_logits_borrow(bs[i], rows));
    }
    printf("  kp_batch_eval %s: max logit error %.3g of the row's max |logit|\n",
           flags & KP_EVAL_LOGITS_ALL ? "LOGITS_ALL" : "LOGITS_LAST", worst);
    assert_true(worst <= LOGIT_TOL);
    /* the sessions go on from there together, one token each */
    int32_t next[NS] = {7, 8, 9, 10, 11};
    assert_int_equal(kp_batch_decode(bs, next, NS, KP_EVAL_LOGITS_LAST), KP_OK);
    for (int i = 0; i < NS; i++) {
        assert_int_equal(kp_session_eval(solo[i], &next[i], 1, KP_EVAL_LOGITS_LAST), KP_OK);
        assert_true(max_rel_err(kp_session_logits_borrow(bs[i], 0), kp_session_logits_borrow(solo[i], 0), V) <=
                    LOGIT_TOL);
        kp_session_free(bs[i]);
        kp_session_free(solo[i]);
    }
}

static void test_batch_eval(void **state)
{
    (void)state;
    kp_model *m = su_load("stories260K", 2);
    if (!m) {
        skip();
        return;
    }
    eval_case(m, KP_EVAL_LOGITS_LAST);
    eval_case(m, KP_EVAL_LOGITS_ALL);
    kp_model_free(m);
}

static void test_batch_eval_bad(void **state)
{
    (void)state;
    kp_model *m = su_load("stories260K", 1);
    if (!m) {
        skip();
        return;
    }
    kp_session *a = new_session(m), *b = new_session(m); /* 64 positions each */
    int32_t ids[65];
    for (int i = 0; i < 65; i++)
        ids[i] = 1 + i;
    kp_session *ss[2] = {a, b};
    const int32_t *tp[2] = {ids, ids}, *withnull[2] = {ids, NULL};
    size_t fits[2] = {3, 64}, over[2] = {3, 65};
    assert_int_equal(kp_batch_eval(ss, NULL, fits, 2, 0), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_batch_eval(ss, tp, NULL, 2, 0), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_batch_eval(ss, withnull, fits, 2, 0), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_batch_eval(ss, tp, over, 2, KP_EVAL_LOGITS_LAST), KP_ERR_CONTEXT_FULL);
    assert_non_null(strstr(kp_session_last_error(b), "do not fit"));
    int32_t bad[2] = {1, 512};
    const int32_t *tb[2] = {ids, bad};
    size_t two[2] = {1, 2};
    assert_int_equal(kp_batch_eval(ss, tb, two, 2, 0), KP_ERR_TOKEN_OUT_OF_RANGE);
    assert_int_equal(kp_session_n_past(a), 0); /* failed calls changed nothing */
    assert_int_equal(kp_session_n_past(b), 0);
    withnull[1] = NULL;
    size_t none[2] = {2, 0}; /* a NULL array with no tokens is fine */
    assert_int_equal(kp_batch_eval(ss, withnull, none, 2, KP_EVAL_LOGITS_LAST), KP_OK);
    assert_int_equal(kp_session_n_past(a), 2);
    assert_int_equal(kp_batch_eval(ss, tp, fits, 0, 0), KP_OK);
    kp_session_free(a);
    kp_session_free(b);
    kp_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories260k),     cmocka_unit_test(test_llama_small_f32),
        cmocka_unit_test(test_llama_small_q8_0), cmocka_unit_test(test_qwen2_f16),
        cmocka_unit_test(test_more_than_a_chunk), cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_batch_eval),        cmocka_unit_test(test_batch_eval_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
