/* Fuzz target for the GGUF reader and the vocabulary/config code behind it.
 *
 * libFuzzer: clang -fsanitize=fuzzer,address,undefined -DKP_LIBFUZZER ... fuzz_gguf.c libkuiper.a
 * Otherwise (the meson build): a replay tool, `fuzz_gguf FILE...`, which runs each file through
 * the same code and exits 0 unless a check fails. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/format/gguf.h"
#include "lib/format/gguf_vocab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an aligned private copy, as a mapping would be */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    kp_gguf *g = NULL;
    if (kp_gguf_open(NULL, buf, size, &g) == KP_OK) {
        for (size_t i = 0; i < g->n_tensors; i++) {
            const kp_gguf_tensor *t = &g->tensors[i];
            if (t->data < buf || t->data + t->nbytes > buf + size)
                abort();
            volatile uint8_t sink = t->nbytes ? t->data[t->nbytes - 1] : 0;
            (void)sink;
        }
        for (size_t i = 0; i < g->n_kv; i++)
            if (g->kv[i].type == KP_GGUF_ARR && g->kv[i].v.a.type == KP_GGUF_STR && g->kv[i].v.a.n < (1u << 20)) {
                kp_gguf_str *s = malloc(sizeof *s * (size_t)(g->kv[i].v.a.n + 1));
                if (s) {
                    kp_gguf_arr_strings(&g->kv[i].v.a, s);
                    free(s);
                }
            }
        kp_gguf_vocab v;
        if (kp_gguf_vocab_read(NULL, g, &v) == KP_OK)
            kp_gguf_vocab_free(&v);
        kp_gguf_free(g);
    }
    free(buf);
    return 0;
}

#ifndef KP_LIBFUZZER
int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) { /* shared test data may be absent: say so loudly, fail nothing */
            fprintf(stderr, "\n*** SKIP: %s not found ***\n\n", argv[i]);
            continue;
        }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *d = malloc(n > 0 ? (size_t)n : 1);
        if (!d || fread(d, 1, (size_t)n, f) != (size_t)n) {
            fclose(f);
            return 1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(d, (size_t)n);
        free(d);
    }
    return 0;
}
#endif
