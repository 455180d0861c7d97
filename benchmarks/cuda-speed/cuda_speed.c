/* Decode and prefill speed of one model on a device, through the public API only: a 512-token
 * prompt in one kp_session_eval (prefill), then single-token evals (decode). Prints one line:
 *   MODEL DEVICE prefill_tok_s decode_tok_s weight_bytes
 * A benchmark, not a test: it asserts nothing beyond the calls succeeding.
 *
 * usage: cuda-speed MODEL TOKENIZER [cpu|cuda] [PROMPT_TOKENS] [DECODE_TOKENS] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <kuiper/kuiper.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int fail(const char *what, kp_status st)
{
    fprintf(stderr, "cuda-speed: %s: %s (%s)\n", what, kp_status_str(st), kp_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: cuda-speed MODEL TOKENIZER [cpu|cuda] [PROMPT_TOKENS] [DECODE_TOKENS]\n");
        return 2;
    }
    const int cuda = argc > 3 && !strcmp(argv[3], "cuda");
    const int n_prompt = argc > 4 ? atoi(argv[4]) : 512, n_dec = argc > 5 ? atoi(argv[5]) : 128;
    kp_model_params mp;
    kp_model_params_init(&mp);
    mp.tokenizer_path = argv[2];
    mp.device = cuda ? KP_DEVICE_CUDA : KP_DEVICE_CPU;
    kp_model *m = NULL;
    kp_status st = kp_model_load(argv[1], &mp, &m);
    if (st)
        return fail("load", st);
    kp_session_params sp;
    kp_session_params_init(&sp);
    sp.n_ctx = n_prompt + n_dec + 8;
    int32_t *ids = malloc((size_t)n_prompt * sizeof *ids);
    for (int i = 0; i < n_prompt; i++)
        ids[i] = 1 + (int32_t)((i * 7919u) % 500u); /* any ids below the vocabulary size */
    double best_pre = 0, best_dec = 0;
    for (int rep = 0; rep < 3; rep++) { /* the first is the warm-up */
        kp_session *s = NULL;
        if ((st = kp_session_new(m, &sp, &s)))
            return fail("session", st);
        double t0 = now();
        if ((st = kp_session_eval(s, ids, (size_t)n_prompt, KP_EVAL_LOGITS_LAST)))
            return fail("prefill", st);
        double t1 = now();
        for (int i = 0; i < n_dec; i++) {
            int32_t id = ids[i % n_prompt];
            if ((st = kp_session_eval(s, &id, 1, KP_EVAL_LOGITS_LAST)))
                return fail("decode", st);
        }
        double t2 = now();
        kp_session_free(s);
        if (rep == 0)
            continue;
        double pre = n_prompt / (t1 - t0), dec = n_dec / (t2 - t1);
        best_pre = pre > best_pre ? pre : best_pre;
        best_dec = dec > best_dec ? dec : best_dec;
    }
    struct stat sb;
    long long bytes = stat(argv[1], &sb) == 0 ? (long long)sb.st_size : 0;
    printf("%s %s %.1f %.1f %lld\n", argv[1], cuda ? "cuda" : "cpu", best_pre, best_dec, bytes);
    free(ids);
    kp_model_free(m);
    return 0;
}
