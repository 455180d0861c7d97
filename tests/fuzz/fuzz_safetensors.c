/* safetensors, the header parser on its own and then a whole Hugging Face folder load: the input
 * is the folder's model.safetensors beside a fixed tiny Qwen2 config.json (hidden 8, one layer,
 * vocabulary 512) and the 512-id tokenizer of ../shared/models/hf/kp-hf-qwen25-f16-small. A
 * folder that loads also runs a two-token forward pass. Seeds: make_seeds.py. */
#include <kuiper/kuiper.h>

#include "fuzz_util.h"
#include "lib/format/safetensors.h"

/* Kept in step with make_seeds.py's safetensors_seeds(). */
static const char CONFIG[] =
    "{\"architectures\": [\"Qwen2ForCausalLM\"], \"hidden_size\": 8, \"intermediate_size\": 16,"
    " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 1,"
    " \"vocab_size\": 512, \"max_position_embeddings\": 64, \"rms_norm_eps\": 1e-06,"
    " \"rope_theta\": 1000000.0, \"tie_word_embeddings\": true, \"torch_dtype\": \"float16\"}";

static char dir[64], model_path[128];

static int put(const char *name, const void *data, size_t n)
{
    char p[160];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f)
        return 0;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return fclose(f) == 0 && w == n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "/tmp/kp-fuzz-safetensors-XXXXXX");
    size_t n = 0;
    char *tok = kp_fuzz_shared("models/hf/kp-hf-qwen25-f16-small/tokenizer.json", &n);
    if (!mkdtemp(dir) || !tok || !put("tokenizer.json", tok, n) || !put("config.json", CONFIG, sizeof CONFIG - 1))
        dir[0] = 0; /* the folder part is off; the header parser is still fuzzed */
    free(tok);
    snprintf(model_path, sizeof model_path, "%s", dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kp_safetensors *st = NULL;
    if (kp_safetensors_open(NULL, data, size, "model.safetensors", &st) == KP_OK) {
        for (size_t i = 0; i < st->n; i++) {
            const kp_st_tensor *t = &st->tensors[i];
            KP_FUZZ_CHECK((const uint8_t *)t->data >= data && t->nbytes <= size &&
                          (const uint8_t *)t->data - data <= (ptrdiff_t)(size - t->nbytes));
            KP_FUZZ_CHECK(kp_safetensors_find(st, t->name) != NULL);
        }
        kp_safetensors_free(st);
    } else {
        KP_FUZZ_CHECK(st == NULL);
    }
    if (!dir[0] || !put("model.safetensors", data, size))
        return 0;
    kp_model_params p;
    kp_model_params_init(&p);
    p.n_threads = 1;
    kp_model *m = NULL;
    if (kp_model_load(model_path, &p, &m) != KP_OK) {
        KP_FUZZ_CHECK(m == NULL);
        return 0;
    }
    kp_session_params sp;
    kp_session_params_init(&sp);
    sp.n_ctx = 4;
    kp_session *s = NULL;
    if (kp_session_new(m, &sp, &s) == KP_OK) {
        int32_t ids[2] = {1, 511};
        KP_FUZZ_CHECK(kp_session_eval(s, ids, 2, KP_EVAL_LOGITS_LAST) == KP_OK);
        kp_session_free(s);
    }
    kp_model_free(m);
    return 0;
}
