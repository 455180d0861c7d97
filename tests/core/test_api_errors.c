/* Public API misuse and resource failures: NULL handles, out-of-range ids, context overflow,
 * bad options, and the allocator failing at every allocation of a whole load+generate run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <cmocka.h>

#include <kuiper/kuiper.h>

#include "fail_alloc.h"
#include "testdata.h"

static char model_path[1024], tok_path[1024];

static int setup(void **state)
{
    (void)state;
    if (!kp_test_file(model_path, sizeof model_path, "models/stories260K/stories260K.bin") ||
        !kp_test_file(tok_path, sizeof tok_path, "models/stories260K/tok512.bin"))
        model_path[0] = 0;
    return 0;
}

static kp_model *load(const kp_allocator *a, kp_status *st)
{
    kp_model_params p;
    kp_model_params_init(&p);
    p.tokenizer_path = tok_path;
    p.allocator = a;
    p.n_threads = 2;
    kp_model *m = NULL;
    *st = kp_model_load(model_path, &p, &m);
    return m;
}

static void null_handles(void **state)
{
    (void)state;
    kp_model_free(NULL);
    kp_session_free(NULL);
    kp_sampler_free(NULL);
    kp_tokenizer_free(NULL);
    assert_int_equal(kp_model_load(NULL, NULL, NULL), KP_ERR_INVALID_ARG);
    kp_model *m = NULL;
    assert_int_equal(kp_model_load(NULL, NULL, &m), KP_ERR_INVALID_ARG);
    assert_true(strlen(kp_last_error()) > 0);
    kp_session *s = NULL;
    assert_int_equal(kp_session_new(NULL, NULL, &s), KP_ERR_INVALID_ARG);
    assert_null(s);
    assert_int_equal(kp_session_eval(NULL, NULL, 0, 0), KP_ERR_INVALID_ARG);
    assert_null(kp_session_logits_borrow(NULL, 0));
    assert_int_equal(kp_generate(NULL, NULL, 0, NULL, NULL), KP_ERR_INVALID_ARG);
    size_t n;
    int32_t id;
    assert_int_equal(kp_tokenize(NULL, "x", 1, 0, &id, 1, &n), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_sampler_sample(NULL, NULL, 0, &id), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_model_info_get(NULL, KP_INFO_N_VOCAB), -1);
    assert_null(kp_model_tokenizer_borrow(NULL));
    kp_session_cancel(NULL);
    for (int st = 0; st <= KP_ERR_MODEL_MISMATCH + 1; st++)
        assert_non_null(kp_status_str((kp_status)st));
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", KP_VERSION_MAJOR, KP_VERSION_MINOR, KP_VERSION_PATCH);
    assert_string_equal(kp_version(), v);
    assert_int_equal(kp_version_number(), KP_VERSION_NUMBER);
}

static void bad_ids_and_context(void **state)
{
    (void)state;
    if (!model_path[0])
        skip();
    kp_status st;
    kp_model *m = load(NULL, &st);
    assert_int_equal(st, KP_OK);
    kp_session_params sp;
    kp_session_params_init(&sp);
    sp.n_ctx = 16;
    kp_session *s;
    assert_int_equal(kp_session_new(m, &sp, &s), KP_OK);
    assert_int_equal(kp_session_n_ctx(s), 16);
    int32_t ids[20] = {1, 403, 407, 261, 378};
    ids[2] = 512; /* vocab is 512 */
    assert_int_equal(kp_session_eval(s, ids, 5, KP_EVAL_LOGITS_LAST), KP_ERR_TOKEN_OUT_OF_RANGE);
    assert_non_null(strstr(kp_session_last_error(s), "512"));
    ids[2] = -1;
    assert_int_equal(kp_session_eval(s, ids, 5, KP_EVAL_LOGITS_LAST), KP_ERR_TOKEN_OUT_OF_RANGE);
    assert_int_equal(kp_session_n_past(s), 0); /* nothing was evaluated */
    ids[2] = 407;
    for (int i = 5; i < 20; i++)
        ids[i] = 300;
    assert_int_equal(kp_session_eval(s, ids, 17, KP_EVAL_LOGITS_LAST), KP_ERR_CONTEXT_FULL);
    assert_int_equal(kp_session_eval(s, ids, 10, KP_EVAL_LOGITS_LAST), KP_OK);
    assert_int_equal(kp_session_eval(s, ids, 7, KP_EVAL_LOGITS_LAST), KP_ERR_CONTEXT_FULL);
    assert_int_equal(kp_session_n_past(s), 10);
    assert_int_equal(kp_session_eval(s, ids, 1, 0x80), KP_ERR_INVALID_ARG);
    /* Generation stops at the context's end instead of failing. */
    kp_generate_params gp;
    kp_generate_params_init(&gp);
    kp_generate_stats stats;
    assert_int_equal(kp_generate(s, ids, 2, &gp, &stats), KP_OK);
    assert_int_equal(kp_session_n_past(s), 16);
    /* A prompt longer than the context is an error. */
    assert_int_equal(kp_session_truncate(s, 0), KP_OK);
    assert_int_equal(kp_generate(s, ids, 20, &gp, &stats), KP_ERR_CONTEXT_FULL);
    assert_int_equal(kp_session_truncate(s, 5), KP_ERR_INVALID_ARG);
    sp.n_ctx = 100000;
    kp_session *s2 = (kp_session *)(uintptr_t)1;
    assert_int_equal(kp_session_new(m, &sp, &s2), KP_ERR_INVALID_ARG);
    assert_null(s2);
    kp_session_free(s);
    kp_model_free(m);
}

static void sampler_options(void **state)
{
    (void)state;
    kp_sampler *smp;
    assert_int_equal(kp_sampler_new(NULL, &smp), KP_OK);
    double lo, hi;
    assert_int_equal(kp_sampler_bounds(KP_SAMPLER_TOP_P, &lo, &hi), KP_OK);
    assert_true(lo == 0.0 && hi == 1.0);
    assert_int_equal(kp_sampler_set(smp, KP_SAMPLER_TOP_P, 1.5), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_sampler_set(smp, KP_SAMPLER_TEMPERATURE, -1), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_sampler_set(smp, KP_SAMPLER_SEED, 1.5), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_sampler_set(smp, (kp_sampler_opt)99, 1), KP_ERR_INVALID_ARG);
    /* Greedy picks the first maximum. */
    const float lg[5] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
    int32_t id;
    assert_int_equal(kp_sampler_set(smp, KP_SAMPLER_TEMPERATURE, 0), KP_OK);
    assert_int_equal(kp_sampler_sample(smp, lg, 5, &id), KP_OK);
    assert_int_equal(id, 1);
    /* A tiny top-p keeps only the most likely token. */
    assert_int_equal(kp_sampler_set(smp, KP_SAMPLER_TEMPERATURE, 1), KP_OK);
    assert_int_equal(kp_sampler_set(smp, KP_SAMPLER_TOP_P, 0.01), KP_OK);
    const float lg2[4] = {0.0f, 5.0f, 1.0f, 0.5f};
    for (int i = 0; i < 20; i++) {
        assert_int_equal(kp_sampler_sample(smp, lg2, 4, &id), KP_OK);
        assert_int_equal(id, 1);
    }
    kp_sampler_free(smp);
}

/* Load, make a session and sampler, tokenize, generate 8 tokens, free: returns the first error. */
static kp_status full_run(const kp_allocator *a)
{
    kp_status st;
    kp_model *m = load(a, &st);
    if (st)
        return st;
    kp_session *s = NULL;
    kp_sampler *smp = NULL;
    int32_t ids[32];
    size_t n = 0;
    if (!(st = kp_session_new(m, NULL, &s)) && !(st = kp_sampler_new(a, &smp)) &&
        !(st = kp_sampler_set(smp, KP_SAMPLER_SEED, 7)) &&
        !(st = kp_tokenize(kp_model_tokenizer_borrow(m), "Once upon a time", 16, KP_TOKENIZE_ADD_SPECIAL, ids, 32,
                           &n))) {
        kp_generate_params gp;
        kp_generate_params_init(&gp);
        gp.max_new_tokens = 8;
        gp.sampler = smp;
        st = kp_generate(s, ids, n, &gp, NULL);
    }
    kp_sampler_free(smp);
    kp_session_free(s);
    kp_model_free(m);
    return st;
}

static void allocation_failure_everywhere(void **state)
{
    (void)state;
    if (!model_path[0])
        skip();
    fail_alloc f;
    kp_allocator a = fail_alloc_arm(&f, -1);
    assert_int_equal(full_run(&a), KP_OK);
    long total = f.n;
    assert_int_equal(f.live, 0);
    assert_true(total > 10);
    for (long k = 0; k < total; k++) {
        a = fail_alloc_arm(&f, k);
        kp_status st = full_run(&a);
        if (st != KP_ERR_OUT_OF_MEMORY)
            fail_msg("failing allocation %ld of %ld gave %s (%s)", k, total, kp_status_str(st), kp_last_error());
        if (f.live != 0)
            fail_msg("failing allocation %ld leaked %ld blocks (%zu bytes)", k, f.live, f.live_bytes);
    }
    printf("allocation failure injected at each of %ld allocations: all OOM, no leak\n", total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(null_handles),
        cmocka_unit_test(bad_ids_and_context),
        cmocka_unit_test(sampler_options),
        cmocka_unit_test(allocation_failure_everywhere),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
