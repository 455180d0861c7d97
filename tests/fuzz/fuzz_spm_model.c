/* SentencePiece ModelProto .model files (lib/tokenizer/spm_model.c): input = text to encode +
 * the file (see kp_fuzz_split). */
#include "fuzz_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text;
    const uint8_t *file;
    size_t tlen, flen;
    kp_fuzz_split(data, size, &text, &tlen, &file, &flen);
    kp_tokenizer *t = NULL;
    if (kp_tokenizer_spm_model_new(NULL, file, flen, &t) == KP_OK) {
        kp_fuzz_use_tokenizer(t, text, tlen);
        kp_tokenizer_free(t);
    } else {
        KP_FUZZ_CHECK(t == NULL);
    }
    return 0;
}
