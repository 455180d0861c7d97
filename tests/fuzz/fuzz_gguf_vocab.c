/* Vocabularies stored in GGUF files (tokenizer.ggml.*, both the "llama" and the "gpt2" kind):
 * input = text to encode + the GGUF file (see kp_fuzz_split). */
#include "fuzz_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text;
    const uint8_t *file;
    size_t tlen, flen;
    kp_fuzz_split(data, size, &text, &tlen, &file, &flen);
    /* an aligned private copy, as a mapping would be */
    uint8_t *buf = malloc(flen ? flen : 1);
    memcpy(buf, file, flen);
    kp_tokenizer *t = NULL;
    if (kp_gguf_tokenizer_new(NULL, buf, flen, &t) == KP_OK) {
        kp_fuzz_use_tokenizer(t, text, tlen);
        kp_tokenizer_free(t);
    } else {
        KP_FUZZ_CHECK(t == NULL);
    }
    free(buf);
    return 0;
}
