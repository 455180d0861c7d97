/* llama2.c checkpoints, v0 (bare header), v1 (fp32) and v2 (int8 groups), through
 * kp_model_load; a file that loads (with the 512-token tokenizer.bin, when its vocabulary is
 * 512) also runs a two-token forward pass on its weights. */
#include <kuiper/kuiper.h>

#include "fuzz_util.h"

static char tok_path[1024];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(tok_path, sizeof tok_path, "%s/models/stories260K/tok512.bin", kp_test_data_dir());
    if (access(tok_path, R_OK) != 0) {
        fprintf(stderr, "fuzz_llama2c: %s not found; models will not get past the tokenizer\n", tok_path);
        tok_path[0] = 0;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = kp_fuzz_path_for(data, size);
    if (!path)
        return 0;
    kp_model_params p;
    kp_model_params_init(&p);
    p.n_threads = 1;
    p.tokenizer_path = tok_path[0] ? tok_path : NULL;
    kp_model *m = NULL;
    if (kp_model_load(path, &p, &m) != KP_OK) {
        KP_FUZZ_CHECK(m == NULL);
        return 0;
    }
    int32_t V = (int32_t)kp_model_info_get(m, KP_INFO_N_VOCAB);
    KP_FUZZ_CHECK(V > 0 && kp_tokenizer_n_vocab(kp_model_tokenizer_borrow(m)) == V);
    kp_session_params sp;
    kp_session_params_init(&sp);
    sp.n_ctx = 4;
    kp_session *s = NULL;
    if (kp_session_new(m, &sp, &s) == KP_OK) {
        int32_t ids[2] = {1 % V, V - 1};
        KP_FUZZ_CHECK(kp_session_eval(s, ids, 2, KP_EVAL_LOGITS_LAST) == KP_OK);
        KP_FUZZ_CHECK(kp_session_logits_borrow(s, 0) != NULL);
        kp_session_free(s);
    }
    kp_model_free(m);
    return 0;
}
