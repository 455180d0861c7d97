/* quantize-rows TYPE: reads F32 rows of 256 values from stdin, writes them quantized to TYPE
 * (the library's row quantizers) to stdout, and checks on the way that kp_qdequant reads
 * back values within one quantization step of the input. Exit 1 on any problem. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../backends/cpu/quant/quant.h"
#include "../../lib/quant/quantize.h"
#include "../../lib/tensor.h"

static const struct { const char *name; kp_dtype t; } types[] = {
    {"Q8_0", KP_DTYPE_Q8_0}, {"Q4_0", KP_DTYPE_Q4_0}, {"Q4_1", KP_DTYPE_Q4_1}, {"Q5_0", KP_DTYPE_Q5_0},
    {"Q5_1", KP_DTYPE_Q5_1}, {"Q4_K", KP_DTYPE_Q4_K}, {"Q5_K", KP_DTYPE_Q5_K}, {"Q6_K", KP_DTYPE_Q6_K},
};

int main(int argc, char **argv)
{
    kp_dtype t = KP_DTYPE_COUNT;
    for (size_t i = 0; argc == 2 && i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(argv[1], types[i].name))
            t = types[i].t;
    if (t == KP_DTYPE_COUNT) {
        fprintf(stderr, "usage: quantize-rows Q8_0|Q4_0|Q4_1|Q5_0|Q5_1|Q4_K|Q5_K|Q6_K < f32 > blocks\n");
        return 1;
    }
    float x[256], y[256];
    unsigned char out[256 * 4];
    const size_t rb = kp_dtype_row_bytes(t, 256);
    while (fread(x, sizeof x, 1, stdin) == 1) {
        if (!kp_quantize_row(t, x, 256, out) || fwrite(out, 1, rb, stdout) != rb)
            return 1;
        kp_qdequant(t, out, 256, y);
        /* every value within the block's step (range / levels), plus F16 scale rounding */
        for (int b = 0; b < 256; b += 32) {
            float lo = 0, hi = 0;
            for (int i = b; i < b + 32; i++) {
                lo = fminf(lo, x[i]);
                hi = fmaxf(hi, x[i]);
            }
            const float step = (hi - lo) / (t == KP_DTYPE_Q8_0 ? 127 : t == KP_DTYPE_Q6_K ? 31 : 7);
            for (int i = b; i < b + 32; i++)
                if (!(fabsf(y[i] - x[i]) <= step * 1.01f + 1e-3f * fabsf(x[i]) + 1e-5f)) {
                    fprintf(stderr, "%s: value %d: %g read back as %g (step %g)\n", argv[1], i, x[i], y[i], step);
                    return 1;
                }
        }
    }
    return 0;
}
