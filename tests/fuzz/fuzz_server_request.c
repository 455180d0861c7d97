/* kuiper-server's request handling without the HTTP layer: the first input byte picks the
 * endpoint (chat or completions), the rest is the request body, parsed against the Qwen2 fixture
 * (ChatML template, byte-level vocabulary) as the server does; a request that parses gets its
 * reply, stream chunks and usage chunk rendered, and an error its error body. */
#include <kuiper/kuiper.h>

#include "fuzz_util.h"
#include "../../examples/server/api.h"

static kp_model *model;
static ks_opts opts;
static ks_ctx ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char path[1024];
    snprintf(path, sizeof path, "%s/models/gguf/kp-qwen2-tiny.gguf", kp_test_data_dir());
    kp_model_params mp;
    kp_model_params_init(&mp);
    mp.n_threads = 1;
    if (kp_model_load(path, &mp, &model) != KP_OK) {
        fprintf(stderr, "fuzz_server_request: %s: %s; requests will not get past the model\n", path, kp_last_error());
        model = NULL;
    }
    opts = (ks_opts){.temperature = 0.8, .top_p = 0.95, .seed = -1, .max_tokens = 16, .parallel = 1};
    ctx = (ks_ctx){model, &opts, "kp-qwen2-tiny", 256};
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!model || size < 1)
        return 0;
    ks_err e;
    memset(&e, 0, sizeof e);
    ks_job *j = ks_parse_request(&ctx, data[0] & 1, (const char *)data + 1, size - 1, &e);
    if (!j) {
        KP_FUZZ_CHECK(e.status >= 400 && e.status < 600 && e.msg[0]);
        free(ks_error_json(&e));
        return 0;
    }
    KP_FUZZ_CHECK(j->n_prompt > 0 && j->n_prompt <= (size_t)ctx.n_ctx && j->max_tokens >= 0);
    KP_FUZZ_CHECK(j->n_stop <= KS_MAX_STOP);
    for (size_t i = 0; i < j->n_prompt; i++)
        KP_FUZZ_CHECK(j->prompt[i] >= 0 && j->prompt[i] < kp_model_info_get(model, KP_INFO_N_VOCAB));
    j->finish = KS_FIN_STOP;
    free(ks_reply_json(&ctx, j));
    free(ks_chunk_event(&ctx, j, "hi", 2, 1, 0, 0));
    free(ks_chunk_event(&ctx, j, "", 0, 0, 1, 0));
    free(ks_chunk_event(&ctx, j, "", 0, 0, 0, 1));
    ks_job_free(j);
    return 0;
}
