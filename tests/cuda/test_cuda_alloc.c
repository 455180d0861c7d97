/* Allocation-failure injection on the CUDA device allocator: the k-th device allocation of a
 * model load, session creation and evaluation fails, for every k until one run needs no
 * failing allocation. Each failure must come back as KP_ERR_OUT_OF_MEMORY, and after freeing
 * everything the device's free memory (cudaMemGetInfo, read through a backend kept alive for
 * the whole test) must be what it was before: nothing leaked. */
#include <stdint.h>

#include "cuda_test.h"
#include "testdata.h"

int main(void)
{
    int bad = 0;
    kp_backend *probe = cuda_backend_or_skip("tests/cuda allocation failures", &bad);
    if (!probe)
        return bad ? 1 : CUDA_SKIP;
    char mp[1024], tp[1024];
    if (!kp_test_file(mp, sizeof mp, "models/stories260K/stories260K.bin") ||
        !kp_test_file(tp, sizeof tp, "models/stories260K/tok512.bin")) {
        probe->ops->destroy(probe);
        return CUDA_SKIP;
    }
    kp_model_params p;
    kp_model_params_init(&p);
    p.tokenizer_path = tp;
    p.device = KP_DEVICE_CUDA;
    const int32_t ids[] = {1, 400, 32, 100, 7, 9, 300};
    /* one clean run first, so the CUDA context and cuBLAS's own one-time state exist */
    kp_model *m = NULL;
    kp_session *s = NULL;
    if (kp_model_load(mp, &p, &m) || kp_session_new(m, NULL, &s) || kp_session_eval(s, ids, 7, KP_EVAL_LOGITS_ALL)) {
        printf("FAIL: clean run: %s\n", kp_error_text());
        return 1;
    }
    kp_session_free(s);
    kp_model_free(m);
    size_t before = 0, total = 0, after = 0;
    if (probe->ops->mem_info(probe, &before, &total)) {
        printf("FAIL: mem_info: %s\n", kp_error_text());
        return 1;
    }
    int failures = 0, injected = 0;
    for (long k = 0; k < 10000; k++) {
        kp_backend_cuda_test_fail_alloc(k);
        m = NULL;
        s = NULL;
        const char *stage = "load";
        kp_status st = kp_model_load(mp, &p, &m);
        if (!st) {
            stage = "session_new";
            st = kp_session_new(m, NULL, &s);
        }
        if (!st) {
            stage = "eval";
            st = kp_session_eval(s, ids, 7, KP_EVAL_LOGITS_ALL);
        }
        if (!st) {
            stage = "eval of one more token";
            st = kp_session_eval(s, ids, 1, KP_EVAL_LOGITS_LAST);
        }
        kp_session_free(s);
        kp_model_free(m);
        kp_backend_cuda_test_fail_alloc(-1);
        probe->ops->mem_info(probe, &after, &total);
        if (st == KP_OK) {
            printf("allocation %ld: no failure left to inject; %d injected\n", k, injected);
            break;
        }
        injected++;
        int ok = st == KP_ERR_OUT_OF_MEMORY && after == before;
        if (!ok || k < 3)
            printf("%-4s allocation %ld fails in %s: status %d (%s); free %zu before, %zu after\n", ok ? "ok" : "FAIL",
                   k, stage, (int)st, kp_error_text(), before, after);
        failures += !ok;
    }
    if (injected < 3) {
        printf("FAIL: only %d injected failures were reached\n", injected);
        failures++;
    }
    probe->ops->destroy(probe);
    printf("%d failure%s\n", failures, failures == 1 ? "" : "s");
    return failures ? 1 : 0;
}
