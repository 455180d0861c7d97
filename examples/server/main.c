/* kuiper-server: the OpenAI HTTP API over one model, several requests at once.
 *   kuiper-server -m MODEL [--host 127.0.0.1] [--port 8080] [-np SLOTS] [-c CTX_PER_SLOT] ...
 * Requests wait in a queue when every slot is busy; a full queue answers 429. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kuiper-server -m MODEL [options]\n"
            "  -m, --model PATH        model file or folder (GGUF, Hugging Face, llama2.c, KuiperLLama)\n"
            "  -z, --tokenizer PATH    tokenizer for llama2.c checkpoints\n"
            "      --host ADDR         numeric address to listen on (default 127.0.0.1)\n"
            "      --port N            port (default 8080; 0 picks a free one)\n"
            "  -np, --parallel N       slots: requests generated at once (default 4, at most 64)\n"
            "  -c, --ctx-size N        context positions per slot (default: the model's, at most 4096)\n"
            "      --kv-type TYPE      KV cache type: f16 (default: half the memory of f32, and a\n"
            "                          batched step reads every slot's cache) or f32\n"
            "      --threads N         compute threads (default: one per CPU)\n"
            "      --api-key KEY       require 'Authorization: Bearer KEY' on /v1/ paths\n"
            "      --alias NAME        model name reported by /v1/models (default: the file name)\n"
            "      --queue N           requests that may wait for a slot (default 64; more get 429)\n"
            "      --max-body BYTES    largest request body (default 1048576; larger get 413)\n"
            "  -t, --temp T            default temperature (default 0.8)\n"
            "      --top-p P           default top-p (default 0.95)\n"
            "  -s, --seed N            default seed (default: from the clock)\n"
            "  -n, --max-tokens N      default max_tokens (default 256)\n");
}

static int num(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end || !(d >= lo && d <= hi))
        return 0;
    *out = d;
    return 1;
}

static int parse(int argc, char **argv, ks_opts *o)
{
    *o = (ks_opts){.host = "127.0.0.1", .port = 8080, .parallel = 4, .queue = 64, .max_body = 1u << 20,
                   .temperature = 0.8, .top_p = 0.95, .seed = -1, .max_tokens = 256, .kv_type = KP_KV_F16};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "kuiper-server: %s needs a value (or is unknown; see --help)\n", a);
            return 0;
        }
        const char *v = argv[++i];
        double d = 0;
#define NUM(lo, hi) (num(v, lo, hi, &d) || (fprintf(stderr, "kuiper-server: bad value '%s' for %s\n", v, a), 0))
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            o->model_path = v;
        else if (!strcmp(a, "-z") || !strcmp(a, "--tokenizer"))
            o->tokenizer = v;
        else if (!strcmp(a, "--host"))
            o->host = v;
        else if (!strcmp(a, "--api-key"))
            o->api_key = v;
        else if (!strcmp(a, "--alias"))
            o->alias = v;
        else if (!strcmp(a, "--port") && NUM(0, 65535))
            o->port = (int)d;
        else if ((!strcmp(a, "-np") || !strcmp(a, "--parallel")) && NUM(1, 64))
            o->parallel = (int)d;
        else if ((!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) && NUM(0, 1 << 20))
            o->n_ctx = (int)d;
        else if (!strcmp(a, "--kv-type")) {
            if (strcmp(v, "f16") && strcmp(v, "f32")) {
                fprintf(stderr, "kuiper-server: --kv-type '%s' must be f16 or f32\n", v);
                return 0;
            }
            o->kv_type = strcmp(v, "f16") ? KP_KV_F32 : KP_KV_F16;
        }
        else if (!strcmp(a, "--threads") && NUM(0, 1024))
            o->threads = (int)d;
        else if (!strcmp(a, "--queue") && NUM(0, 1 << 20))
            o->queue = (int)d;
        else if (!strcmp(a, "--max-body") && NUM(1024, 1 << 30))
            o->max_body = (size_t)d;
        else if ((!strcmp(a, "-t") || !strcmp(a, "--temp")) && NUM(0, 2))
            o->temperature = d;
        else if (!strcmp(a, "--top-p") && NUM(0, 1))
            o->top_p = d;
        else if ((!strcmp(a, "-s") || !strcmp(a, "--seed")) && NUM(0, 9007199254740992.0))
            o->seed = (long long)d;
        else if ((!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) && NUM(1, 1 << 30))
            o->max_tokens = (int)d;
        else {
            if (d == 0)
                fprintf(stderr, "kuiper-server: unknown option %s (see --help)\n", a);
            return 0;
        }
#undef NUM
    }
    if (!o->model_path) {
        usage(stderr);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    ks_opts o;
    if (!parse(argc, argv, &o))
        return 2;
    /* every thread started from here on leaves these signals to sigwait below */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    kp_model_params mp;
    kp_model_params_init(&mp);
    mp.tokenizer_path = o.tokenizer;
    mp.n_threads = o.threads;
    kp_model *m = NULL;
    if (kp_model_load(o.model_path, &mp, &m)) {
        fprintf(stderr, "kuiper-server: %s\n", kp_last_error());
        return 1;
    }
    const char *name = o.alias;
    if (!name) {
        const char *slash = strrchr(o.model_path, '/');
        name = slash && slash[1] ? slash + 1 : o.model_path;
    }
    ks_sched *s = NULL;
    ks_http *h = NULL;
    int port = 0, rc = 1;
    if (ks_sched_new(m, &o, &s)) {
        fprintf(stderr, "kuiper-server: cannot make %d slots of %d positions: %s\n", o.parallel, o.n_ctx,
                kp_last_error());
        goto out;
    }
    ks_ctx c = {.m = m, .o = &o, .model_name = name, .n_ctx = ks_sched_n_ctx(s)};
    if (ks_http_start(&c, s, &h, &port))
        goto out;
    fprintf(stderr, "kuiper-server: %s, %d slots of %d positions, listening on http://%s:%d\n", name, o.parallel,
            c.n_ctx, o.host, port);
    fflush(stderr);
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "kuiper-server: signal %d, stopping\n", sig);
    ks_sched_cancel_all(s);
    /* let the cancelled requests be answered (503) before the connections close */
    for (int i = 0; i < 100; i++) {
        int b, idle, q;
        long long k, d;
        ks_sched_counts(s, &b, &idle, &q, &k, &d);
        if (!b && !q)
            break;
        nanosleep(&(struct timespec){0, 20000000L}, NULL);
    }
    nanosleep(&(struct timespec){0, 100000000L}, NULL); /* the handlers poll every 50 ms */
    rc = 0;
out:
    ks_http_stop(h);
    ks_sched_free(s);
    kp_model_free(m);
    return rc;
}
