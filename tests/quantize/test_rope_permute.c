/* A Llama whose q/k rows come in Hugging Face's rotate-half order (what a Hugging Face folder
 * loads as) is written with its rows interleaved, as llama.cpp's converter does, because
 * llama.cpp's LLAMA rotates adjacent pairs. Simulated here on kp-llama-small: its q/k rows are
 * put into rotate-half order and the model switched to the rotate-half rope; that model gives
 * the original logits, and its converted file holds the original bytes and gives them too. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../lib/model/model.h"
#include "../../lib/quant/convert.h"
#include "testdata.h"

static const int32_t ids[] = {1, 45, 300, 7, 19, 250, 500, 3};
#define N_IDS (int)(sizeof ids / sizeof ids[0])

static void eval_all(kp_model *m, float *out)
{
    kp_session *s = NULL;
    assert_int_equal(kp_session_new(m, NULL, &s), KP_OK);
    assert_int_equal(kp_session_eval(s, ids, N_IDS, KP_EVAL_LOGITS_ALL), KP_OK);
    const int64_t nv = kp_model_info_get(m, KP_INFO_N_VOCAB);
    for (int i = 0; i < N_IDS; i++)
        memcpy(out + i * nv, kp_session_logits_borrow(s, i), (size_t)nv * sizeof(float));
    kp_session_free(s);
}

static double max_rel(const float *a, const float *b, int rows, int64_t nv)
{
    double worst = 0;
    for (int r = 0; r < rows; r++) {
        double d = 0, mx = 0;
        for (int64_t j = 0; j < nv; j++) {
            d = fmax(d, fabs((double)a[r * nv + j] - b[r * nv + j]));
            mx = fmax(mx, fabs((double)b[r * nv + j]));
        }
        worst = fmax(worst, d / mx);
    }
    return worst;
}

static void test_rotate_half_llama(void **state)
{
    (void)state;
    char path[512];
    if (!kp_test_file(path, sizeof path, "models/gguf/kp-llama-small.gguf"))
        skip();
    kp_model *m = NULL;
    assert_int_equal(kp_model_load(path, NULL, &m), KP_OK);
    const int64_t nv = m->cfg.n_vocab;
    const int hd = m->cfg.head_dim, nl = m->cfg.n_layer;
    float *ref = malloc((size_t)(N_IDS * nv) * sizeof(float)), *got = malloc((size_t)(N_IDS * nv) * sizeof(float));
    assert_non_null(ref);
    assert_non_null(got);
    eval_all(m, ref);

    /* q/k rows into rotate-half order: new row h*hd + half*hd/2 + i = old row h*hd + 2i + half */
    void **saved = calloc((size_t)(2 * nl), sizeof *saved), **copies = calloc((size_t)(2 * nl), sizeof *copies);
    for (int l = 0; l < nl; l++)
        for (int w = 0; w < 2; w++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.attn_%c.weight", l, w ? 'k' : 'q');
            kp_tensor *t = kp_tensor_list_find(&m->tensors, name);
            assert_non_null(t);
            assert_int_equal(t->dtype, KP_DTYPE_F32);
            const int64_t cols = t->ne[0], rows = t->ne[1];
            float *c = malloc((size_t)(cols * rows) * sizeof(float));
            const float *src = t->data;
            for (int64_t r = 0; r < rows; r++) {
                const int64_t h = r / hd, j = r % hd, half = j / (hd / 2), i = j % (hd / 2);
                memcpy(c + r * cols, src + (h * hd + 2 * i + half) * cols, (size_t)cols * sizeof(float));
            }
            saved[2 * l + w] = t->data;
            copies[2 * l + w] = c;
            t->data = c;
        }
    m->cfg.rope_style = KP_ROPE_NEOX;
    eval_all(m, got);
    assert_true(max_rel(got, ref, N_IDS, nv) <= 1e-5); /* the simulation is the same model */

    char out[] = "/tmp/kp-rope-permute-XXXXXX";
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    kp_quantize_params qp;
    kp_quantize_params_init(&qp);
    qp.type = "F32";
    assert_int_equal(kp_quantize_loaded(m, path, out, &qp), KP_OK);

    kp_model *back = NULL;
    assert_int_equal(kp_model_load(out, NULL, &back), KP_OK);
    for (int l = 0; l < nl; l++)
        for (int w = 0; w < 2; w++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.attn_%c.weight", l, w ? 'k' : 'q');
            const kp_tensor *t = kp_model_tensor_borrow(back, name);
            assert_non_null(t);
            assert_memory_equal(t->data, saved[2 * l + w], t->nbytes);
        }
    eval_all(back, got);
    assert_true(max_rel(got, ref, N_IDS, nv) <= 1e-5);
    kp_model_free(back);
    remove(out);

    for (int l = 0; l < nl; l++)
        for (int w = 0; w < 2; w++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.attn_%c.weight", l, w ? 'k' : 'q');
            kp_tensor_list_find(&m->tensors, name)->data = saved[2 * l + w];
            free(copies[2 * l + w]);
        }
    free(saved);
    free(copies);
    free(ref);
    free(got);
    kp_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rotate_half_llama)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
