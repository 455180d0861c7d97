/* kp_model_quantize through the public API: statuses and messages for bad requests, an
 * existing output left alone on failure, no temporary file left behind, every allocation
 * failure of a conversion handled (with nothing leaked), and the written file loads and runs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <kuiper/kuiper.h>

#include "fail_alloc.h"
#include "testdata.h"

static char stories[512], tok512[512], small[512], dir[256];

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void out_path(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", dir, name); }

static void no_partial_files(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q kp-partial", dir);
    assert_int_not_equal(system(cmd), 0);
}

static void test_bad_requests(void **state)
{
    (void)state;
    char out[512];
    out_path(out, sizeof out, "bad.gguf");
    kp_quantize_params p;
    kp_quantize_params_init(&p);
    p.tokenizer_path = tok512;

    p.type = "Q3_K";
    assert_int_equal(kp_model_quantize(stories, out, &p), KP_ERR_INVALID_ARG);
    assert_non_null(strstr(kp_last_error(), "'Q3_K'"));
    p.type = NULL;
    assert_int_equal(kp_model_quantize(stories, out, &p), KP_ERR_INVALID_ARG);
    p.type = "q8_0"; /* names are case-insensitive */

    assert_int_equal(kp_model_quantize(NULL, out, &p), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_model_quantize(stories, NULL, &p), KP_ERR_INVALID_ARG);
    kp_quantize_params bad = p;
    bad.struct_size = 0;
    assert_int_equal(kp_model_quantize(stories, out, &bad), KP_ERR_INVALID_ARG);
    bad.struct_size = sizeof bad + 64;
    assert_int_equal(kp_model_quantize(stories, out, &bad), KP_ERR_INVALID_ARG);
    bad = p;
    bad.n_threads = -1;
    assert_int_equal(kp_model_quantize(stories, out, &bad), KP_ERR_INVALID_ARG);

    char missing[512];
    out_path(missing, sizeof missing, "no-such-model.bin");
    assert_int_equal(kp_model_quantize(missing, out, &p), KP_ERR_IO);
    assert_non_null(strstr(kp_last_error(), "no-such-model.bin"));

    assert_int_equal(kp_model_quantize(stories, "/nonexistent-dir/x.gguf", &p), KP_ERR_IO);
    assert_non_null(strstr(kp_last_error(), "/nonexistent-dir/x.gguf"));

    bad = p;
    bad.tokenizer_path = NULL; /* llama2.c checkpoints store no tokenizer */
    assert_int_equal(kp_model_quantize(stories, out, &bad), KP_ERR_INVALID_ARG);
    assert_non_null(strstr(kp_last_error(), "tokenizer"));

    assert_false(exists(out));
    no_partial_files();
}

static void test_existing_output_kept_on_failure(void **state)
{
    (void)state;
    char out[512], missing[512];
    out_path(out, sizeof out, "keep.gguf");
    out_path(missing, sizeof missing, "missing.gguf");
    FILE *f = fopen(out, "w");
    assert_non_null(f);
    fputs("precious", f);
    fclose(f);
    kp_quantize_params p;
    kp_quantize_params_init(&p);
    assert_int_equal(kp_model_quantize(missing, out, &p), KP_ERR_IO);
    p.type = "nope";
    assert_int_equal(kp_model_quantize(small, out, &p), KP_ERR_INVALID_ARG);
    char buf[32] = {0};
    f = fopen(out, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "precious");
    no_partial_files();
}

/* Fails each allocation of a conversion in turn: the call reports it, frees everything and
 * leaves no file; the run with no failure then succeeds. */
static void test_every_allocation_failure(void **state)
{
    (void)state;
    char out[512];
    out_path(out, sizeof out, "oom.gguf");
    fail_alloc fa;
    long k;
    for (k = 0;; k++) {
        kp_allocator a = fail_alloc_arm(&fa, k);
        kp_quantize_params p;
        kp_quantize_params_init(&p);
        p.allocator = &a;
        p.tokenizer_path = tok512;
        p.type = "Q4_K_M";
        p.n_threads = 2;
        kp_status st = kp_model_quantize(stories, out, &p);
        assert_int_equal(fa.live, 0);
        if (fa.n <= k) { /* nothing was refused: the conversion is complete */
            assert_int_equal(st, KP_OK);
            break;
        }
        assert_int_equal(st, KP_ERR_OUT_OF_MEMORY);
        assert_false(exists(out));
        assert_true(kp_last_error()[0] != 0);
    }
    assert_true(k > 10);
    no_partial_files();
    remove(out);
}

static void test_written_file_runs(void **state)
{
    (void)state;
    static const char *types[] = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0",
                                  "Q5_1", "Q4_K", "Q5_K", "Q6_K", "Q4_K_M", "Q5_K_M", "COPY"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char out[512];
        out_path(out, sizeof out, "run.gguf");
        kp_quantize_params p;
        kp_quantize_params_init(&p);
        p.type = types[i];
        p.n_threads = 2;
        assert_int_equal(kp_model_quantize(small, out, &p), KP_OK);
        kp_model *m = NULL;
        assert_int_equal(kp_model_load(out, NULL, &m), KP_OK);
        assert_int_equal(kp_model_info_get(m, KP_INFO_N_VOCAB), 512);
        kp_session *s = NULL;
        assert_int_equal(kp_session_new(m, NULL, &s), KP_OK);
        int32_t ids[4] = {1, 100, 200, 300};
        assert_int_equal(kp_session_eval(s, ids, 4, KP_EVAL_LOGITS_LAST), KP_OK);
        const float *l = kp_session_logits_borrow(s, 0);
        assert_non_null(l);
        for (int j = 0; j < 512; j++)
            assert_true(isfinite(l[j]));
        kp_session_free(s);
        kp_model_free(m);
        remove(out);
    }
}

int main(void)
{
    if (!kp_test_file(stories, sizeof stories, "models/stories260K/stories260K.bin") ||
        !kp_test_file(tok512, sizeof tok512, "models/stories260K/tok512.bin") ||
        !kp_test_file(small, sizeof small, "models/gguf/kp-llama-small.gguf"))
        return 77;
    snprintf(dir, sizeof dir, "/tmp/kp-quantize-test-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_existing_output_kept_on_failure),
        cmocka_unit_test(test_every_allocation_failure),
        cmocka_unit_test(test_written_file_runs),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(dir);
    return rc;
}
