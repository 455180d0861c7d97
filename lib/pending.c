/* Weak fallbacks for readers still being written in parallel; a real definition elsewhere in
 * the library replaces each one at link time. */
#include "model/model.h"
#include "tokenizer/tokenizer.h"

__attribute__((weak)) kp_status kp_gguf_read_model(kp_model *m)
{
    (void)m;
    return kp_fail(KP_ERR_UNSUPPORTED, "GGUF models are not supported by this build yet");
}

__attribute__((weak)) kp_status kp_gguf_tokenizer_new(const kp_allocator *a, const uint8_t *d, size_t n,
                                                      kp_tokenizer **out)
{
    (void)a, (void)d, (void)n;
    *out = NULL;
    return kp_fail(KP_ERR_UNSUPPORTED, "GGUF tokenizers are not supported by this build yet");
}

__attribute__((weak)) kp_status kp_tokenizer_hf_json_new(const kp_allocator *a, const char *p, kp_tokenizer **out)
{
    (void)a, (void)p;
    *out = NULL;
    return kp_fail(KP_ERR_UNSUPPORTED, "tokenizer.json is not supported by this build yet");
}

__attribute__((weak)) kp_status kp_tokenizer_spm_model_new(const kp_allocator *a, const uint8_t *d, size_t n,
                                                           kp_tokenizer **out)
{
    (void)a, (void)d, (void)n;
    *out = NULL;
    return kp_fail(KP_ERR_UNSUPPORTED, "SentencePiece models are not supported by this build yet");
}
