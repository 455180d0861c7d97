/* kuiper-generate: load a model, tokenize a prompt, generate text and stream it to stdout.
 * For llama2.c checkpoints the output is byte-identical to llama2.c's `run` with the same
 * prompt and settings. Timing and diagnostics go to stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kuiper/kuiper.h>

typedef struct opts {
    const char *model, *tokenizer, *family, *prompt, *prompt_ids, *logits_path;
    long n_new;
    double temperature, top_p, seed;
    int threads, ids, seed_set, cuda;
} opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kuiper-generate -m MODEL [-z TOKENIZER] [-p PROMPT] [-n NEW_TOKENS] [-t TEMPERATURE]\n"
            "                       [--top-p P] [-s SEED] [--threads N] [--ids] [--prompt-ids 1,2,3]\n"
            "                       [--logits FILE] [--device cpu|cuda]\n"
            "  -n 0 (default) generates until an end token or the context is full.\n");
}

static int die(const char *what, const char *detail)
{
    fprintf(stderr, "kuiper-generate: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return 1;
}

static int parse_num(const char *s, double *out)
{
    char *end;
    errno = 0;
    *out = strtod(s, &end);
    return errno == 0 && end != s && *end == 0;
}

static int parse_args(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->temperature = 1.0;
    o->top_p = 0.9;
    o->prompt = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--ids")) {
            o->ids = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "kuiper-generate: option %s needs a value\n", a);
            return 0;
        }
        const char *v = argv[++i];
        double d;
        if (!strcmp(a, "-m"))
            o->model = v;
        else if (!strcmp(a, "-z"))
            o->tokenizer = v;
        else if (!strcmp(a, "--family"))
            o->family = v;
        else if (!strcmp(a, "-p"))
            o->prompt = v;
        else if (!strcmp(a, "--prompt-ids"))
            o->prompt_ids = v;
        else if (!strcmp(a, "--logits"))
            o->logits_path = v;
        else if (!strcmp(a, "-n") && parse_num(v, &d) && d >= 0 && d <= 1e9 && d == (long)d)
            o->n_new = (long)d;
        else if (!strcmp(a, "-t") && parse_num(v, &d))
            o->temperature = d;
        else if (!strcmp(a, "--top-p") && parse_num(v, &d))
            o->top_p = d;
        else if (!strcmp(a, "-s") && parse_num(v, &d)) {
            o->seed = d;
            o->seed_set = 1;
        } else if (!strcmp(a, "--threads") && parse_num(v, &d) && d >= 0 && d <= 1024 && d == (int)d)
            o->threads = (int)d;
        else if (!strcmp(a, "--device") && (!strcmp(v, "cpu") || !strcmp(v, "cuda")))
            o->cuda = !strcmp(v, "cuda");
        else {
            fprintf(stderr, "kuiper-generate: bad option or value: %s %s\n", a, v);
            return 0;
        }
    }
    if (!o->model) {
        fprintf(stderr, "kuiper-generate: -m MODEL is required\n");
        return 0;
    }
    return 1;
}

/* "1,2,3" -> ids; returns the count or -1 on a malformed list. */
static long parse_ids(const char *s, int32_t **out)
{
    size_t cap = 16, n = 0;
    int32_t *v = malloc(cap * sizeof *v);
    while (v && *s) {
        char *end;
        errno = 0;
        long x = strtol(s, &end, 10);
        if (end == s || errno || x < 0 || x > INT32_MAX || (*end && *end != ',')) {
            free(v);
            return -1;
        }
        if (n == cap && !(v = realloc(v, (cap *= 2) * sizeof *v)))
            return -1;
        v[n++] = (int32_t)x;
        s = *end ? end + 1 : end;
    }
    *out = v;
    return v ? (long)n : -1;
}

typedef struct out_ctx {
    int ids;
    FILE *logits;
    int logits_err;
} out_ctx;

static int on_token(void *user, const kp_token_event *ev)
{
    out_ctx *o = user;
    if (o->logits && ev->logits && !ev->is_prompt &&
        fwrite(ev->logits, sizeof(float), ev->n_vocab, o->logits) != ev->n_vocab)
        o->logits_err = 1;
    if (o->ids) {
        if (ev->id >= 0 && !ev->is_prompt)
            printf(" %d", ev->id);
    } else if (ev->piece_len) {
        fwrite(ev->piece, 1, ev->piece_len, stdout);
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    if (!parse_args(argc, argv, &o)) {
        usage(stderr);
        return 1;
    }
    kp_model_params mp;
    kp_model_params_init(&mp);
    mp.tokenizer_path = o.tokenizer;
    mp.family = o.family;
    mp.n_threads = o.threads;
    mp.device = o.cuda ? KP_DEVICE_CUDA : KP_DEVICE_CPU;
    kp_model *m = NULL;
    kp_status st = kp_model_load(o.model, &mp, &m);
    if (st)
        return die("cannot load model", kp_last_error());

    int32_t *prompt = NULL;
    long n_prompt;
    const kp_tokenizer *tok = kp_model_tokenizer_borrow(m);
    if (o.prompt_ids) {
        n_prompt = parse_ids(o.prompt_ids, &prompt);
        if (n_prompt <= 0) {
            kp_model_free(m);
            return die("bad --prompt-ids list", o.prompt_ids);
        }
    } else {
        size_t len = strlen(o.prompt), n = 0, cap = len + 8;
        prompt = malloc(cap * sizeof *prompt);
        st = prompt ? kp_tokenize(tok, o.prompt, len, KP_TOKENIZE_ADD_SPECIAL | KP_TOKENIZE_PARSE_SPECIAL,
                                  prompt, cap, &n)
                    : KP_ERR_OUT_OF_MEMORY;
        if (st == KP_ERR_BUFFER_TOO_SMALL && (prompt = realloc(prompt, n * sizeof *prompt)))
            st = kp_tokenize(tok, o.prompt, len, KP_TOKENIZE_ADD_SPECIAL | KP_TOKENIZE_PARSE_SPECIAL, prompt, n, &n);
        if (st) {
            free(prompt);
            kp_model_free(m);
            return die("cannot tokenize the prompt", kp_last_error());
        }
        n_prompt = (long)n;
    }

    kp_sampler *sampler = NULL;
    if ((st = kp_sampler_new(NULL, &sampler)) || (st = kp_sampler_set(sampler, KP_SAMPLER_TEMPERATURE, o.temperature)) ||
        (st = kp_sampler_set(sampler, KP_SAMPLER_TOP_P, o.top_p)) ||
        (o.seed_set && (st = kp_sampler_set(sampler, KP_SAMPLER_SEED, o.seed)))) {
        fprintf(stderr, "kuiper-generate: bad sampling option: %s\n", kp_last_error());
        kp_sampler_free(sampler);
        free(prompt);
        kp_model_free(m);
        return 1;
    }

    out_ctx oc = {o.ids, NULL, 0};
    if (o.logits_path && !(oc.logits = fopen(o.logits_path, "wb"))) {
        kp_sampler_free(sampler);
        free(prompt);
        kp_model_free(m);
        return die("cannot write logits file", o.logits_path);
    }
    kp_session *s = NULL;
    int rc = 0;
    if ((st = kp_session_new(m, NULL, &s))) {
        rc = die("cannot create a session", kp_last_error());
        goto done;
    }
    if (o.ids)
        for (long i = 0; i < n_prompt; i++)
            printf(i ? " %d" : "%d", prompt[i]);
    kp_generate_params gp;
    kp_generate_params_init(&gp);
    gp.max_new_tokens = (int32_t)o.n_new;
    gp.sampler = sampler;
    gp.on_token = on_token;
    gp.user = &oc;
    gp.echo_prompt = !o.ids;
    kp_generate_stats stats;
    st = kp_generate(s, prompt, (size_t)n_prompt, &gp, &stats);
    if (!st && stats.stop_id >= 0) {
        /* The end token is part of the id record (as in llama2.c's), not of the text. */
        if (o.ids)
            printf(" %d", stats.stop_id);
        const float *last = kp_session_logits_borrow(s, 0);
        size_t nv = (size_t)kp_model_info_get(m, KP_INFO_N_VOCAB);
        if (oc.logits && last && fwrite(last, sizeof(float), nv, oc.logits) != nv)
            oc.logits_err = 1;
    }
    printf("\n");
    fflush(stdout);
    if (st) {
        rc = die("generation failed", kp_last_error());
        goto done;
    }
    if (oc.logits_err) {
        rc = die("cannot write logits file", o.logits_path);
        goto done;
    }
    fprintf(stderr, "prompt: %d tokens, %.1f tok/s; generated: %d tokens, %.1f tok/s\n", stats.n_prompt,
            stats.prompt_seconds > 0 ? stats.n_prompt / stats.prompt_seconds : 0.0, stats.n_generated,
            stats.generate_seconds > 0 ? stats.n_generated / stats.generate_seconds : 0.0);
done:
    if (oc.logits && fclose(oc.logits) != 0 && !rc)
        rc = die("cannot write logits file", o.logits_path);
    kp_session_free(s);
    kp_sampler_free(sampler);
    free(prompt);
    kp_model_free(m);
    return rc;
}
