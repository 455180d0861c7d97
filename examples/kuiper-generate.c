/* kuiper-generate: load a model, tokenize a prompt, generate text and stream it to stdout.
 * For llama2.c checkpoints the output is byte-identical to llama2.c's `run` with the same
 * prompt and settings. Timing and diagnostics go to stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kuiper/kuiper.h>

#include "common/cli.h"

typedef struct opts {
    const char *model, *tokenizer, *prompt, *prompt_ids, *logits_path, *family;
    long n_new, threads, n_ctx;
    double temperature, top_p, seed;
    int ids, seed_set;
    kp_device device;
    kp_kv_type kv_type;
} opts;

static void usage(void)
{
    printf("usage: kuiper-generate -m MODEL [options]\n"
           "Continues PROMPT with MODEL and streams the text to stdout (timing goes to stderr).\n"
           "  -m, --model FILE        GGUF, llama2.c checkpoint, KuiperLLama .bin or Hugging Face folder\n"
           "  -z, --tokenizer FILE    tokenizer for files that store none (llama2.c tokenizer.bin, ...)\n"
           "      --family NAME       KuiperLLama .bin files: llama2, llama3 or qwen2\n"
           "  -p, --prompt TEXT       text to continue (default: empty)\n"
           "      --prompt-ids LIST   token ids to continue instead, e.g. 1,2,3\n"
           "  -n, --n-predict N       tokens to generate; 0 (default) = until an end token or a full context\n"
           "  -t, --temperature T     0 = greedy (default 1)\n"
           "      --top-p P           nucleus sampling (default 0.9)\n"
           "  -s, --seed S            random seed (default: the library's fixed seed)\n"
           "  -c, --ctx-size N        context positions (default 0: min(4096, the model's))\n"
           "      --kv-type TYPE      KV cache type: f32 (default) or f16\n"
           "      --device DEV        cpu (default) or cuda\n"
           "      --threads N         compute threads (default 0: one per CPU)\n"
           "      --ids               print token ids instead of text\n"
           "      --logits FILE       write each generated step's logits (float32) to FILE\n"
           "  -h, --help              this text\n"
           "      --version           the program and library version\n");
}

static int die(const char *what, const char *detail)
{
    fprintf(stderr, "kuiper-generate: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return 1;
}

enum { OPT_TOP_P = CLI_LONG_ONLY, OPT_THREADS, OPT_IDS, OPT_PROMPT_IDS, OPT_LOGITS, OPT_FAMILY, OPT_DEVICE,
       OPT_KV_TYPE, OPT_VERSION };

static const struct option long_opts[] = {
    {"model", required_argument, NULL, 'm'},        {"tokenizer", required_argument, NULL, 'z'},
    {"prompt", required_argument, NULL, 'p'},       {"n-predict", required_argument, NULL, 'n'},
    {"temperature", required_argument, NULL, 't'},  {"seed", required_argument, NULL, 's'},
    {"ctx-size", required_argument, NULL, 'c'},     {"top-p", required_argument, NULL, OPT_TOP_P},
    {"threads", required_argument, NULL, OPT_THREADS}, {"ids", no_argument, NULL, OPT_IDS},
    {"prompt-ids", required_argument, NULL, OPT_PROMPT_IDS}, {"logits", required_argument, NULL, OPT_LOGITS},
    {"family", required_argument, NULL, OPT_FAMILY}, {"device", required_argument, NULL, OPT_DEVICE},
    {"kv-type", required_argument, NULL, OPT_KV_TYPE}, {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},    {NULL, 0, NULL, 0},
};

/* 1: run; 0: a mistake (reported); -1: --help or --version was answered. */
static int parse_args(int argc, char **argv, opts *o)
{
    cli c = {"kuiper-generate", ":m:z:p:n:t:s:c:h", long_opts, {0}};
    memset(o, 0, sizeof *o);
    o->temperature = 1.0;
    o->top_p = 0.9;
    o->prompt = "";
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, c.short_opts, long_opts, NULL)) != -1) {
        const char *v = optarg;
        int ok = 1;
        switch (opt) {
        case 'h': usage(); return -1;
        case OPT_VERSION: cli_version(&c); return -1;
        case 'm': o->model = v; break;
        case 'z': o->tokenizer = v; break;
        case 'p': o->prompt = v; break;
        case OPT_PROMPT_IDS: o->prompt_ids = v; break;
        case OPT_LOGITS: o->logits_path = v; break;
        case OPT_FAMILY: o->family = v; break;
        case OPT_IDS: o->ids = 1; break;
        case 'n': ok = cli_integer(&c, opt, v, 0, 1000000000L, &o->n_new); break;
        case 'c': ok = cli_integer(&c, opt, v, 0, 2147483647L, &o->n_ctx); break;
        case OPT_THREADS: ok = cli_integer(&c, opt, v, 0, 1024, &o->threads); break;
        case 't': ok = cli_sampler_value(&c, opt, v, KP_SAMPLER_TEMPERATURE, &o->temperature); break;
        case OPT_TOP_P: ok = cli_sampler_value(&c, opt, v, KP_SAMPLER_TOP_P, &o->top_p); break;
        case 's':
            ok = cli_sampler_value(&c, opt, v, KP_SAMPLER_SEED, &o->seed);
            o->seed_set = 1;
            break;
        case OPT_DEVICE: ok = cli_device(&c, opt, v, &o->device); break;
        case OPT_KV_TYPE: ok = cli_kv_type(&c, opt, v, &o->kv_type); break;
        default: return cli_getopt_error(&c, opt, argv);
        }
        if (!ok)
            return 0;
    }
    if (optind < argc)
        return cli_error(&c, "unexpected argument '%s' (the prompt goes after -p; see --help)", argv[optind]);
    if (!o->model)
        return cli_error(&c, "no model given: use -m MODEL (see --help)");
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
    int parsed = parse_args(argc, argv, &o);
    if (parsed <= 0)
        return parsed < 0 ? 0 : 1;
    kp_model_params mp;
    kp_model_params_init(&mp);
    mp.tokenizer_path = o.tokenizer;
    mp.n_threads = (int)o.threads;
    mp.device = o.device;
    mp.family = o.family;
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
    int64_t model_ctx = kp_model_info_get(m, KP_INFO_N_CTX);
    if (o.n_ctx > model_ctx) {
        fprintf(stderr, "kuiper-generate: -c/--ctx-size %ld exceeds the model's context of %lld\n", o.n_ctx,
                (long long)model_ctx);
        rc = 1;
        goto done;
    }
    kp_session_params sp;
    kp_session_params_init(&sp);
    sp.n_ctx = (int32_t)o.n_ctx; /* 0: min(4096, the model's), as in the Python bindings */
    sp.kv_type = o.kv_type;
    if ((st = kp_session_new(m, &sp, &s))) {
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
