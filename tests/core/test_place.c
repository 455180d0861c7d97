/* The weight-placement seam on the CPU: a backend that places every weight into copies of its
 * own must give bit-identical logits (so placement loses nothing), and altering a placed copy
 * must change them (so the decoder reads the placed pointers, not the reader's host ones).
 * Real models: llama2.c float and int8 (I8G scales), GGUF K-quants and Q8_0 with biases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/model/model.h"
#include "testdata.h"

static const int32_t ids[] = {1, 100, 200, 300, 50, 7, 9};
#define N_IDS 7

/* All rows of logits for ids[], malloc'd. */
static float *logits_of(kp_model *m)
{
    kp_session *s = NULL;
    assert_int_equal(kp_session_new(m, NULL, &s), KP_OK);
    assert_int_equal(kp_session_eval(s, ids, N_IDS, KP_EVAL_LOGITS_ALL), KP_OK);
    size_t V = (size_t)m->cfg.n_vocab;
    float *out = malloc(N_IDS * V * sizeof *out);
    assert_non_null(out);
    for (size_t i = 0; i < N_IDS; i++)
        memcpy(out + i * V, kp_session_logits_borrow(s, i), V * sizeof *out);
    kp_session_free(s);
    return out;
}

static kp_status tiny_mem_info(kp_backend *be, size_t *free_b, size_t *total_b)
{
    (void)be;
    *free_b = 1000;
    *total_b = 4096;
    return KP_OK;
}

static void check_model(const char *rel, const char *tok_rel)
{
    char path[1024], tok[1024];
    if (!kp_test_file(path, sizeof path, rel) || (tok_rel && !kp_test_file(tok, sizeof tok, tok_rel))) {
        skip();
        return;
    }
    kp_model_params p;
    kp_model_params_init(&p);
    p.tokenizer_path = tok_rel ? tok : NULL;
    kp_model *plain = NULL, *placed = NULL;
    assert_int_equal(kp_model_load(path, &p, &plain), KP_OK);
    /* The CPU backend copies small vectors (norms, biases) out of the file, so that the file's
     * pages around its packed matrices can all be dropped (backends/cpu/cpu_backend.c). */
    int n_small = 0;
    for (size_t i = 0; i < plain->tensors.n; i++) {
        const kp_tensor *t = &plain->tensors.items[i];
        if (t->owned || t->dtype == KP_DTYPE_I8G || t->nbytes > 64 * 1024)
            continue;
        assert_ptr_not_equal(t->data, t->host_data);
        assert_memory_equal(t->data, t->host_data, t->nbytes);
        n_small++;
    }
    assert_true(n_small > 0 || plain->output_norm->owned);
    kp_model_unplace(plain); /* the reader's own bytes, as the copying backend below has them */
    float *want = logits_of(plain);
    const size_t V = (size_t)plain->cfg.n_vocab;

    assert_int_equal(kp_model_load(path, &p, &placed), KP_OK);
    /* A backend reporting less free memory than the weights take refuses with the sizes. The
     * CPU backend placed (packed) some weights at load: undo that first. */
    kp_model_unplace(placed);
    kp_backend_cpu_copy_weights(placed->be);
    kp_backend_ops small = *placed->be->ops;
    small.mem_info = tiny_mem_info;
    const kp_backend_ops *copying = placed->be->ops;
    placed->be->ops = &small;
    assert_int_equal(kp_model_place(placed), KP_ERR_OUT_OF_MEMORY);
    assert_non_null(strstr(kp_error_text(), "1000 bytes"));
    placed->be->ops = copying;

    assert_int_equal(kp_model_place(placed), KP_OK);
    for (size_t i = 0; i < placed->tensors.n; i++) {
        const kp_tensor *t = &placed->tensors.items[i];
        assert_true(t->placed);
        assert_ptr_not_equal(t->data, t->host_data);
        if (t->dtype == KP_DTYPE_I8G)
            assert_ptr_not_equal(t->scales, t->host_scales);
    }
    float *got = logits_of(placed);
    assert_memory_equal(got, want, N_IDS * V * sizeof *got);
    free(got);

    /* A zero final norm in the placed copy zeroes every logit: the decoder used the copy. */
    memset(placed->output_norm->data, 0, placed->output_norm->nbytes);
    got = logits_of(placed);
    for (size_t i = 0; i < N_IDS * V; i++)
        assert_true(got[i] == 0.0f);
    free(got);
    free(want);
    kp_model_free(placed); /* releases the copies: ASan's leak check covers it */
    kp_model_free(plain);
}

#define TOK "models/stories260K/tok512.bin"
static void test_stories_f32(void **state) { (void)state; check_model("models/stories260K/stories260K.bin", TOK); }
static void test_stories_i8g(void **state) { (void)state; check_model("models/stories260K/stories260K_q80.bin", TOK); }
static void test_gguf_q4_k(void **state) { (void)state; check_model("models/gguf/kp-llama-small-Q4_K_M.gguf", NULL); }
static void test_gguf_qwen2_q8_0(void **state) { (void)state; check_model("models/gguf/kp-qwen2-tiny-Q8_0.gguf", NULL); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories_f32),
        cmocka_unit_test(test_stories_i8g),
        cmocka_unit_test(test_gguf_q4_k),
        cmocka_unit_test(test_gguf_qwen2_q8_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
