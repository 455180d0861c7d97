/* What a file that no reader takes looks like, so the message helps a user who passed the wrong
 * file (a PyTorch checkpoint, a tokenizer, a text file) instead of naming a header field. */
#include <stdio.h>
#include <string.h>

#include "../model/model.h"

#define WE_READ                                                                                              \
    "libkuiper reads GGUF files, Hugging Face model folders (config.json + *.safetensors), llama2.c "       \
    "checkpoints and KuiperLLama .bin files (with a family)"

static int mostly_text(const uint8_t *p, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 && p[i] != '\n' && p[i] != '\r' && p[i] != '\t')
            bad++;
    return bad == 0;
}

kp_status kp_format_not_a_model(const kp_mapped_file *f)
{
    const uint8_t *p = f->data;
    const size_t n = f->size;
    size_t skip = 0;
    while (skip < n && (p[skip] == ' ' || p[skip] == '\n' || p[skip] == '\r' || p[skip] == '\t'))
        skip++;
    if (n == 0)
        return kp_fail(KP_ERR_FORMAT, "the file is empty; " WE_READ);
    if (n >= 4 && !memcmp(p, "PK\x03\x04", 4))
        return kp_fail(KP_ERR_FORMAT, "this is a zip archive (a PyTorch checkpoint?), not a model file we read; "
                                      "convert it to safetensors or GGUF. " WE_READ);
    if (n >= 2 && p[0] == 0x80 && p[1] >= 2 && p[1] <= 5)
        return kp_fail(KP_ERR_FORMAT, "this is a Python pickle (an old PyTorch checkpoint?), not a model file we "
                                      "read. " WE_READ);
    if (skip < n && (p[skip] == '{' || p[skip] == '['))
        return kp_fail(KP_ERR_FORMAT, "this is a JSON file, not a model (for a Hugging Face model, pass its folder). "
                                      WE_READ);
    if (mostly_text(p, n < 512 ? n : 512))
        return kp_fail(KP_ERR_FORMAT, "this is a text file, not a model. " WE_READ);
    return kp_fail(KP_ERR_FORMAT, "not a model file we recognise (first bytes %02x %02x %02x %02x: no GGUF magic, and "
                                  "no plausible llama2.c header). " WE_READ,
                   p[0], n > 1 ? p[1] : 0, n > 2 ? p[2] : 0, n > 3 ? p[3] : 0);
}
