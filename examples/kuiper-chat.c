/* kuiper-chat: chat with a model through its own chat template (public API only).
 *
 *   kuiper-chat -m MODEL                         interactive chat (see /help); plain lines without a TTY
 *   kuiper-chat -m MODEL -p "question"           one answer, then exit
 *   kuiper-chat -m MODEL --json < conv.json      answer a conversation {"messages":[...]}
 *   kuiper-chat -m MODEL --dump-prompt < conv.json   print the formatted prompt, exactly
 *
 * docs/chat.md describes the commands, the KV reuse between turns, Ctrl-C and the state files. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat/conv.h"
#include "chat/engine.h"
#include "chat/input.h"
#include "common/cli.h"
#include "kuiper/kuiper.h"

/* ---- Ctrl-C: during an answer it cancels the answer; anywhere else it ends the program */

static volatile sig_atomic_t g_interrupted;
static kp_session *volatile g_active; /* the session generating right now, or NULL */

static void on_sigint(int sig)
{
    (void)sig;
    g_interrupted = 1;
    kp_session *s = g_active;
    if (s)
        kp_session_cancel(s); /* an atomic store: safe here */
}

static void install_sigint(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* output writes go on after a Ctrl-C */
    sigaction(SIGINT, &sa, NULL);
}

/* ---- options */

typedef struct options {
    const char *model, *tokenizer, *question, *system, *template_name, *family;
    int dump, json, verbose;
    long n_ctx, max_new, threads;
    kp_device device;
    kp_kv_type kv_type;
} options;

static void usage(void)
{
    printf("usage: kuiper-chat -m MODEL [options]            interactive chat\n"
           "       kuiper-chat -m MODEL -p TEXT [options]    one answer to TEXT\n"
           "       kuiper-chat -m MODEL --json < conversation.json\n"
           "       kuiper-chat -m MODEL --dump-prompt < conversation.json\n"
           "conversation.json: {\"messages\":[{\"role\":\"user\",\"content\":\"...\"}, ...]}\n"
           "options:\n"
           "  -m, --model FILE        GGUF, llama2.c checkpoint, KuiperLLama .bin or Hugging Face folder\n"
           "  -z, --tokenizer FILE    tokenizer for files that store none (llama2.c checkpoints)\n"
           "      --family NAME       KuiperLLama .bin files: llama2, llama3 or qwen2\n"
           "  -p, --prompt TEXT       answer TEXT once, then exit\n"
           "      --system TEXT       system message\n"
           "      --template NAME     force a template: chatml, llama3, llama2 (default: the model's)\n"
           "  -t, --temperature T     0 = greedy (default 0.8)\n"
           "      --top-k K           default 40 (0 = off)\n"
           "      --top-p P           default 0.95 (1 = off)\n"
           "      --min-p P           default 0.05 (0 = off)\n"
           "      --repeat-penalty R  default 1 (off)\n"
           "      --frequency-penalty F, --presence-penalty P   default 0 (off)\n"
           "      --penalty-window N  last N tokens the penalties look at (default 64)\n"
           "  -s, --seed S            default 0: from the clock\n"
           "  -n, --n-predict N       at most N tokens per answer (default 1024; 0 = until the context is full)\n"
           "  -c, --ctx-size N        context positions (default 0: min(4096, the model's))\n"
           "      --kv-type TYPE      KV cache type: f32 (default) or f16 (half the memory)\n"
           "      --device DEV        cpu (default) or cuda\n"
           "      --threads N         compute threads (default 0: one per CPU)\n"
           "      --verbose           print prompt and generation speed after each answer (stderr)\n"
           "  -h, --help              this text\n"
           "      --version           the program and library version\n"
           "In the chat, /help lists the commands. Line editing and history: %s.\n",
#ifdef KP_HAVE_LIBEDIT
           "libedit"
#else
           "none (built without libedit)"
#endif
    );
}

enum { OPT_SYSTEM = CLI_LONG_ONLY, OPT_TEMPLATE, OPT_TOP_K, OPT_TOP_P, OPT_MIN_P, OPT_REPEAT, OPT_FREQUENCY,
       OPT_PRESENCE, OPT_WINDOW, OPT_THREADS, OPT_VERBOSE, OPT_JSON, OPT_DUMP, OPT_FAMILY, OPT_DEVICE, OPT_KV_TYPE,
       OPT_VERSION };

static const struct option long_opts[] = {
    {"model", required_argument, NULL, 'm'},
    {"tokenizer", required_argument, NULL, 'z'},
    {"prompt", required_argument, NULL, 'p'},
    {"temperature", required_argument, NULL, 't'},
    {"seed", required_argument, NULL, 's'},
    {"n-predict", required_argument, NULL, 'n'},
    {"ctx-size", required_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    {"system", required_argument, NULL, OPT_SYSTEM},
    {"template", required_argument, NULL, OPT_TEMPLATE},
    {"top-k", required_argument, NULL, OPT_TOP_K},
    {"top-p", required_argument, NULL, OPT_TOP_P},
    {"min-p", required_argument, NULL, OPT_MIN_P},
    {"repeat-penalty", required_argument, NULL, OPT_REPEAT},
    {"frequency-penalty", required_argument, NULL, OPT_FREQUENCY},
    {"presence-penalty", required_argument, NULL, OPT_PRESENCE},
    {"penalty-window", required_argument, NULL, OPT_WINDOW},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"json", no_argument, NULL, OPT_JSON},
    {"dump-prompt", no_argument, NULL, OPT_DUMP},
    {"family", required_argument, NULL, OPT_FAMILY},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"kv-type", required_argument, NULL, OPT_KV_TYPE},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* The sampler setting each sampling option makes (-1: not one). */
static int sampler_opt(int opt)
{
    switch (opt) {
    case 't': return KP_SAMPLER_TEMPERATURE;
    case 's': return KP_SAMPLER_SEED;
    case OPT_TOP_K: return KP_SAMPLER_TOP_K;
    case OPT_TOP_P: return KP_SAMPLER_TOP_P;
    case OPT_MIN_P: return KP_SAMPLER_MIN_P;
    case OPT_REPEAT: return KP_SAMPLER_REPEAT_PENALTY;
    case OPT_FREQUENCY: return KP_SAMPLER_FREQUENCY_PENALTY;
    case OPT_PRESENCE: return KP_SAMPLER_PRESENCE_PENALTY;
    case OPT_WINDOW: return KP_SAMPLER_PENALTY_WINDOW;
    default: return -1;
    }
}

/* Parses argv into `o` and the sampler: 1 to run, 0 when something is wrong (already reported),
 * -1 when --help or --version was answered. */
static int parse_args(int argc, char **argv, options *o, kp_sampler *smp)
{
    cli c = {"kuiper-chat", ":m:z:p:t:s:n:c:h", long_opts, {0}};
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, c.short_opts, long_opts, NULL)) != -1) {
        const char *v = optarg;
        int ok = 1, so = sampler_opt(opt);
        double d;
        if (so >= 0) {
            ok = cli_sampler_value(&c, opt, v, (kp_sampler_opt)so, &d) &&
                 kp_sampler_set(smp, (kp_sampler_opt)so, d) == KP_OK;
        } else {
            switch (opt) {
            case 'h': usage(); return -1;
            case OPT_VERSION: cli_version(&c); return -1;
            case 'm': o->model = v; break;
            case 'z': o->tokenizer = v; break;
            case 'p': o->question = v; break;
            case OPT_SYSTEM: o->system = v; break;
            case OPT_TEMPLATE: o->template_name = v; break;
            case OPT_FAMILY: o->family = v; break;
            case OPT_VERBOSE: o->verbose = 1; break;
            case OPT_JSON: o->json = 1; break;
            case OPT_DUMP: o->dump = 1; break;
            case 'n': ok = cli_integer(&c, opt, v, 0, 2147483647L, &o->max_new); break;
            case 'c': ok = cli_integer(&c, opt, v, 0, 2147483647L, &o->n_ctx); break;
            case OPT_THREADS: ok = cli_integer(&c, opt, v, 0, 1024, &o->threads); break;
            case OPT_DEVICE: ok = cli_device(&c, opt, v, &o->device); break;
            case OPT_KV_TYPE: ok = cli_kv_type(&c, opt, v, &o->kv_type); break;
            default: return cli_getopt_error(&c, opt, argv);
            }
        }
        if (!ok)
            return 0;
    }
    if (optind < argc)
        return cli_error(&c, "unexpected argument '%s' (a question goes after -p; see --help)", argv[optind]);
    if (!o->model)
        return cli_error(&c, "no model given: use -m MODEL (see --help)");
    if (o->dump + o->json + (o->question != NULL) > 1)
        return cli_error(&c, "-p/--prompt, --json and --dump-prompt exclude each other");
    return 1;
}

/* ---- output */

static int g_progress_shown; /* a progress line is on the terminal */

static void clear_progress(void)
{
    if (g_progress_shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        g_progress_shown = 0;
    }
}

/* One line on the terminal, rewritten after each chunk of a long prompt. */
static void print_progress(void *user, int32_t done, int32_t total)
{
    (void)user;
    fprintf(stderr, "\r[reading the prompt: %d/%d tokens]", done, total);
    fflush(stderr);
    g_progress_shown = 1;
}

static void print_piece(void *user, const char *piece, size_t len)
{
    (void)user;
    clear_progress();
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
}

static void print_stats(FILE *f, const chat_engine *e)
{
    const chat_stats *s = &e->last;
    double ps = s->prompt_seconds > 0 ? s->n_prompt / s->prompt_seconds : 0;
    double gs = s->generate_seconds > 0 ? s->n_generated / s->generate_seconds : 0;
    fprintf(f,
            "prompt: %d tokens (%d reused) in %.3f s, %.1f tokens/s | answer: %d tokens in %.3f s, %.1f tokens/s | "
            "context %d/%d\n",
            s->n_prompt, s->n_reused, s->prompt_seconds, ps, s->n_generated, s->generate_seconds, gs,
            kp_session_n_past(e->session), kp_session_n_ctx(e->session));
    fflush(f);
}

/* One answer to `c`, streamed; notes about dropped turns, cuts and Ctrl-C go to stderr.
 * Returns 0, 1 on failure or 130 when Ctrl-C stopped it. */
static int answer(chat_engine *e, chat_conv *c, int verbose)
{
    g_interrupted = 0;
    g_active = e->session;
    int rc = engine_answer(e, c, &g_interrupted);
    g_active = NULL;
    clear_progress();
    g_interrupted = 0; /* a Ctrl-C during the answer was for the answer */
    const chat_stats *s = &e->last;
    if (rc == 0 || s->cancelled)
        printf("\n");
    fflush(stdout);
    if (s->n_dropped)
        fprintf(stderr, "[%zu old message%s dropped to fit the context]\n", s->n_dropped, s->n_dropped > 1 ? "s" : "");
    if (s->cancelled)
        fprintf(stderr, "[stopped]\n");
    else if (rc == 0 && s->context_full)
        fprintf(stderr, "[the context is full: the answer was cut]\n");
    if (rc == 0 && verbose)
        print_stats(stderr, e);
    if (rc != 0 && !s->cancelled)
        fprintf(stderr, "kuiper-chat: %s\n", e->err);
    return s->cancelled ? 130 : rc ? 1 : 0;
}

/* ---- the interactive loop */

static int save_state(chat_engine *e, const chat_conv *c, const char *path)
{
    kp_status st = kp_session_save(e->session, path);
    if (st != KP_OK) {
        fprintf(stderr, "kuiper-chat: saving %s: %s (%s)\n", path, kp_last_error(), kp_status_str(st));
        return -1;
    }
    size_t pl = strlen(path);
    char *side = malloc(pl + 6);
    if (!side)
        return -1;
    memcpy(side, path, pl);
    memcpy(side + pl, ".json", 6);
    FILE *f = fopen(side, "wb");
    int bad_write = !f || conv_write_json(c, f) != 0;
    if (f && fclose(f) != 0)
        bad_write = 1;
    if (bad_write)
        fprintf(stderr, "kuiper-chat: writing %s: %s\n", side, strerror(errno));
    else
        fprintf(stderr, "[saved %s and %s]\n", path, side);
    free(side);
    return bad_write ? -1 : 0;
}

/* The sidecar is read first: a session file whose conversation cannot be read is not loaded,
 * and a failed session load leaves the conversation as it was. */
static int load_state(chat_engine *e, chat_conv *c, const char *path)
{
    size_t pl = strlen(path), len = 0;
    char *side = malloc(pl + 6), err[256];
    if (!side)
        return -1;
    memcpy(side, path, pl);
    memcpy(side + pl, ".json", 6);
    FILE *f = fopen(side, "rb");
    char *text = f ? read_all(f, &len) : NULL;
    if (f)
        fclose(f);
    chat_conv loaded = {0};
    int rc = -1;
    if (!text) {
        fprintf(stderr, "kuiper-chat: reading %s: %s\n", side, f ? "read error" : strerror(errno));
    } else if (conv_parse_json(text, len, &loaded, NULL, err, sizeof err)) {
        fprintf(stderr, "kuiper-chat: %s is not a conversation: %s\n", side, err);
    } else {
        kp_status st = kp_session_load(e->session, path);
        if (st != KP_OK) {
            fprintf(stderr, "kuiper-chat: loading %s: %s (%s)\n", path, kp_last_error(), kp_status_str(st));
        } else {
            conv_move(c, &loaded);
            fprintf(stderr, "[loaded %s: %zu messages, %d positions]\n", path, c->n, kp_session_n_past(e->session));
            rc = 0;
        }
    }
    conv_free(&loaded);
    free(text);
    free(side);
    return rc;
}

static void help(void)
{
    printf("/reset         forget the conversation (the system message stays)\n"
           "/system TEXT   set the system message (no TEXT: remove it)\n"
           "/save FILE     save the session to FILE and the conversation to FILE.json\n"
           "/load FILE     continue a conversation saved with /save\n"
           "/stats         prompt and generation speed of the last answer\n"
           "/quit          leave (so do Ctrl-D and Ctrl-C at the prompt)\n"
           "A line ending in '\\' continues on the next line; '//' at the start sends a literal '/'.\n"
#ifdef KP_HAVE_LIBEDIT
           "At a terminal: arrows, Ctrl-A/Ctrl-E edit the line, Up/Down and Ctrl-R search earlier lines;\n"
           "a pasted block of several lines is one message.\n"
#endif
           "Ctrl-C during an answer stops it; the part already shown stays in the conversation.\n");
}

static int command(chat_engine *e, chat_conv *c, char *cmd, int *quit)
{
    char *arg = cmd + strcspn(cmd, " \t");
    if (*arg)
        *arg++ = '\0';
    arg += strspn(arg, " \t");
    if (!strcmp(cmd, "/quit") || !strcmp(cmd, "/exit")) {
        *quit = 1;
    } else if (!strcmp(cmd, "/help")) {
        help();
    } else if (!strcmp(cmd, "/reset")) {
        conv_clear(c, 1);
        kp_session_truncate(e->session, 0);
        if (e->sampler)
            kp_sampler_reset(e->sampler);
        fprintf(stderr, "[conversation cleared]\n");
    } else if (!strcmp(cmd, "/system")) {
        if (conv_set_system(c, arg))
            return -1;
        fprintf(stderr, *arg ? "[system message set]\n" : "[system message removed]\n");
    } else if (!strcmp(cmd, "/save") || !strcmp(cmd, "/load")) {
        if (!*arg) {
            fprintf(stderr, "kuiper-chat: %s needs a file name\n", cmd);
            return 0;
        }
        if (cmd[1] == 's')
            save_state(e, c, arg);
        else
            load_state(e, c, arg);
    } else if (!strcmp(cmd, "/stats")) {
        print_stats(stdout, e);
    } else {
        fprintf(stderr, "kuiper-chat: unknown command %s (try /help)\n", cmd);
    }
    return 0;
}

static int repl(chat_engine *e, chat_conv *c, const char *model_path, int verbose)
{
    int quit = 0, rc = 0;
    chat_input *in = input_new(&g_interrupted);
    if (!in) {
        fprintf(stderr, "kuiper-chat: cannot set up the terminal input\n");
        return 1;
    }
    if (input_is_tty(in)) {
        const char *base = strrchr(model_path, '/');
        fprintf(stderr, "kuiper-chat: %s (%s, %.1fM parameters), context %d. /help for commands, Ctrl-C stops an "
                        "answer, Ctrl-D quits.\n",
                base ? base + 1 : model_path, kp_model_arch_borrow(e->model),
                (double)kp_model_info_get(e->model, KP_INFO_N_PARAMS) / 1e6, kp_session_n_ctx(e->session));
    }
    while (!quit && rc == 0) {
        char *msg = input_read(in);
        if (!msg) {
            if (input_is_tty(in))
                printf("\n");
            break; /* EOF, or Ctrl-C at the prompt */
        }
        if (msg[0] == '/' && msg[1] != '/') {
            rc = command(e, c, msg, &quit) ? 1 : 0;
        } else if (msg[strspn(msg, " \t\n")]) {
            const char *text = msg[0] == '/' ? msg + 1 : msg;
            if (conv_push(c, "user", text, strlen(text)))
                rc = 1;
            else
                answer(e, c, verbose);
        }
        free(msg);
    }
    input_free(in);
    fflush(stdout);
    return rc;
}

/* ---- main */

static int fail(const char *what, kp_status st)
{
    fprintf(stderr, "kuiper-chat: %s: %s (%s)\n", what, kp_last_error(), kp_status_str(st));
    return 1;
}

/* Reads the conversation document on stdin into `c`. */
static int read_conversation(chat_conv *c, int *add_assistant)
{
    size_t len = 0;
    char err[256];
    char *text = read_all(stdin, &len);
    if (!text) {
        fprintf(stderr, "kuiper-chat: could not read stdin\n");
        return 0;
    }
    int ok = conv_parse_json(text, len, c, add_assistant, err, sizeof err) == 0;
    if (!ok)
        fprintf(stderr, "kuiper-chat: stdin is not a conversation {\"messages\":[{\"role\":...,\"content\":...}]}: %s\n",
                err);
    free(text);
    return ok;
}

static int run(const options *o, kp_model *m, kp_sampler *smp, chat_conv *c, int add_assistant)
{
    int64_t model_ctx = kp_model_info_get(m, KP_INFO_N_CTX);
    if (o->n_ctx > model_ctx) {
        fprintf(stderr, "kuiper-chat: -c/--ctx-size %ld exceeds the model's context of %lld\n", o->n_ctx,
                (long long)model_ctx);
        return 1;
    }
    kp_session_params sp;
    kp_session_params_init(&sp);
    /* The Python bindings' defaults: min(4096, the model's) positions, F32 KV. */
    sp.n_ctx = (int32_t)(o->n_ctx ? o->n_ctx : model_ctx < 4096 ? model_ctx : 4096);
    sp.kv_type = o->kv_type;
    kp_session *s = NULL;
    kp_status st = o->dump ? KP_OK : kp_session_new(m, &sp, &s); /* printing a prompt needs no KV cache */
    if (st != KP_OK)
        return fail("making a session", st);
    chat_engine e;
    engine_init(&e, m, s, smp, (int32_t)o->max_new);
    e.template_name = o->template_name;
    e.on_piece = print_piece;
    if (isatty(STDERR_FILENO))
        e.on_progress = print_progress;
    int rc = 0;
    if (o->dump) {
        long len = engine_render(&e, c, add_assistant);
        if (len < 0) {
            fprintf(stderr, "kuiper-chat: %s\n", e.err);
            rc = 1;
        } else {
            rc = fwrite(e.text, 1, (size_t)len, stdout) == (size_t)len && fflush(stdout) == 0 ? 0 : 1;
        }
    } else if (o->json || o->question) {
        rc = answer(&e, c, o->verbose);
    } else {
        rc = repl(&e, c, o->model, o->verbose);
    }
    engine_free(&e);
    kp_session_free(s);
    return rc;
}

int main(int argc, char **argv)
{
    options o = {0};
    o.max_new = 1024;
    kp_sampler *smp = NULL;
    if (kp_sampler_new(NULL, &smp) != KP_OK)
        return fail("making a sampler", KP_ERR_OUT_OF_MEMORY);
    /* Chat defaults in the style of common chat programs; the seed comes from the clock. */
    kp_sampler_set(smp, KP_SAMPLER_TEMPERATURE, 0.8);
    kp_sampler_set(smp, KP_SAMPLER_TOP_K, 40);
    kp_sampler_set(smp, KP_SAMPLER_TOP_P, 0.95);
    kp_sampler_set(smp, KP_SAMPLER_MIN_P, 0.05);
    kp_sampler_set(smp, KP_SAMPLER_SEED, 0);
    int parsed = parse_args(argc, argv, &o, smp);
    if (parsed <= 0) {
        kp_sampler_free(smp);
        return parsed < 0 ? 0 : 1;
    }
    chat_conv c = {0};
    int add_assistant = 1, rc = 1;
    if ((o.dump || o.json) && !read_conversation(&c, &add_assistant))
        goto out;
    if (o.json)
        add_assistant = 1; /* an answer is what --json is for */
    if (o.system && conv_set_system(&c, o.system))
        goto out;
    if (o.question && conv_push(&c, "user", o.question, strlen(o.question)))
        goto out;
    kp_model_params mp;
    kp_model_params_init(&mp);
    mp.tokenizer_path = o.tokenizer;
    mp.n_threads = (int)o.threads;
    mp.device = o.device;
    mp.family = o.family;
    kp_model *m = NULL;
    kp_status st = kp_model_load(o.model, &mp, &m);
    if (st != KP_OK) {
        rc = fail("cannot load the model", st); /* the library's message names the file */
        goto out;
    }
    install_sigint();
    rc = run(&o, m, smp, &c, add_assistant);
    kp_model_free(m);
out:
    conv_free(&c);
    kp_sampler_free(smp);
    return rc;
}
