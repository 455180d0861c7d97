/* kuiper-quantize: write any model libkuiper loads as a GGUF file of the chosen type.
 *
 *   kuiper-quantize [options] IN OUT TYPE
 *
 * IN is a GGUF file, a Hugging Face model folder, a llama2.c checkpoint (needs --tokenizer) or
 * a KuiperLLama .bin (needs --family unless a config.json lies beside it). TYPE is one of F32
 * F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K Q4_K_M Q5_K_M COPY. Uses only the public
 * API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kuiper/kuiper.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kuiper-quantize [options] IN OUT TYPE\n"
            "\n"
            "Writes the model IN as a GGUF v3 file OUT that llama.cpp and libkuiper load.\n"
            "TYPE: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K Q4_K_M Q5_K_M\n"
            "      (weight matrices; norms and biases stay F32, the output layer gets Q6_K\n"
            "      and the _M mixes give some layers Q6_K, as llama-quantize does)\n"
            "      or COPY (every tensor keeps its type; F32 where GGUF has none)\n"
            "\n"
            "options:\n"
            "  -t, --threads N     threads (default: all CPUs)\n"
            "  --tokenizer FILE    tokenizer for inputs that store none (llama2.c checkpoints)\n"
            "  --family NAME       llama2, llama3 or qwen2, for KuiperLLama .bin inputs\n"
            "  -v, --verbose       say which type each tensor gets\n"
            "  -h, --help          this text\n"
            "  --version           the library version\n");
}

static void log_cb(void *user, kp_log_level level, const char *msg)
{
    (void)user;
    (void)level;
    fprintf(stderr, "%s\n", msg);
}

int main(int argc, char **argv)
{
    kp_quantize_params p;
    kp_quantize_params_init(&p);
    const char *pos[3];
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("kuiper-quantize (libkuiper %s)\n", kp_version());
            return 0;
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 1024) {
                fprintf(stderr, "kuiper-quantize: --threads wants a number from 0 to 1024, not '%s'\n", argv[i]);
                return 1;
            }
            p.n_threads = (int)v;
        } else if (!strcmp(a, "--tokenizer") && i + 1 < argc) {
            p.tokenizer_path = argv[++i];
        } else if (!strcmp(a, "--family") && i + 1 < argc) {
            p.family = argv[++i];
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            p.log = log_cb;
            p.log_level = KP_LOG_INFO;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "kuiper-quantize: unknown option '%s' (or it lacks its value)\n", a);
            usage(stderr);
            return 1;
        } else if (n_pos < 3) {
            pos[n_pos++] = a;
        } else {
            fprintf(stderr, "kuiper-quantize: unexpected argument '%s'\n", a);
            return 1;
        }
    }
    if (n_pos != 3) {
        fprintf(stderr, "kuiper-quantize: expected IN OUT TYPE, got %d argument%s\n", n_pos, n_pos == 1 ? "" : "s");
        usage(stderr);
        return 1;
    }
    p.type = pos[2];
    kp_status st = kp_model_quantize(pos[0], pos[1], &p);
    if (st) {
        fprintf(stderr, "kuiper-quantize: %s\n", kp_last_error());
        return 1;
    }
    return 0;
}
