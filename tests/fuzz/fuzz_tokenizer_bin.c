/* llama2.c tokenizer.bin (lib/tokenizer/llama2c.c): input = text to encode + the file (see
 * kp_fuzz_split); the entry count is taken from the file, or, when the first text byte is 0x01,
 * forced to a size derived from the input, as a model's vocabulary size would be. */
#include "fuzz_tok.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text;
    const uint8_t *file;
    size_t tlen, flen;
    kp_fuzz_split(data, size, &text, &tlen, &file, &flen);
    int32_t n_vocab = 0;
    if (tlen >= 2 && text[0] == 1)
        n_vocab = 1 + (unsigned char)text[1];
    kp_tokenizer *t = NULL;
    if (kp_tokenizer_llama2c_new(NULL, file, flen, n_vocab, &t) == KP_OK) {
        kp_fuzz_use_tokenizer(t, text, tlen);
        kp_tokenizer_free(t);
    } else {
        KP_FUZZ_CHECK(t == NULL);
    }
    return 0;
}
