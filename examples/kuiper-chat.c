/* kuiper-chat: chat with a model through its own chat template (public API only).
 *
 *   kuiper-chat -m MODEL                         interactive chat (see /help); plain lines without a TTY
 *   kuiper-chat -m MODEL -p "question"           one answer, then exit
 *   kuiper-chat -m MODEL --json < conv.json      answer a conversation {"messages":[...]}
 *   kuiper-chat -m MODEL --dump-prompt < conv.json   print the formatted prompt, exactly
 *
 * docs/chat.md describes the commands, the KV reuse between turns, Ctrl-C and the state files. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "chat/conv.h"
#include "chat/engine.h"
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
    const char *model, *tokenizer, *question, *system, *template_name;
    int dump, json, verbose, threads, cuda;
    long n_ctx, max_new;
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kuiper-chat -m MODEL [options]            interactive chat\n"
            "       kuiper-chat -m MODEL -p TEXT [options]    one answer to TEXT\n"
            "       kuiper-chat -m MODEL --json < conversation.json\n"
            "       kuiper-chat -m MODEL --dump-prompt < conversation.json\n"
            "conversation.json: {\"messages\":[{\"role\":\"user\",\"content\":\"...\"}, ...]}\n"
            "options:\n"
            "  -z FILE              tokenizer file (llama2.c checkpoints)\n"
            "  --system TEXT        system message\n"
            "  --template NAME      force a template: chatml, llama3, llama2 (default: the model's)\n"
            "  -t, --temperature T  0 = greedy (default 0.8)\n"
            "  --top-k K            default 40 (0 = off)\n"
            "  --top-p P            default 0.95 (1 = off)\n"
            "  --min-p P            default 0.05 (0 = off)\n"
            "  --repeat-penalty R   default 1 (off)\n"
            "  --frequency-penalty F, --presence-penalty P   default 0 (off)\n"
            "  --penalty-window N   last N tokens the penalties look at (default 64)\n"
            "  -s, --seed S         default 0: from the clock\n"
            "  -n N                 at most N tokens per answer (default 1024; 0 = until the context is full)\n"
            "  -c N                 context positions (default min(4096, the model's))\n"
            "  --threads N          compute threads (default 0: one per CPU)\n"
            "  --device cpu|cuda    where the model runs (default cpu)\n"
            "  --verbose            print prompt and generation speed after each answer (stderr)\n");
}

static int bad(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "kuiper-chat: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    return 1;
}

static int parse_num(const char *s, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *s && !*end && errno == 0 && isfinite(*v);
}

static int parse_long(const char *opt, const char *s, long lo, long hi, long *v)
{
    double d;
    if (!parse_num(s, &d) || d != floor(d) || d < (double)lo || d > (double)hi) {
        fprintf(stderr, "kuiper-chat: %s '%s' must be an integer in [%ld, %ld]\n", opt, s, lo, hi);
        return 0;
    }
    *v = (long)d;
    return 1;
}

static const struct {
    const char *names[2];
    kp_sampler_opt opt;
    int integer;
} sampler_flags[] = {
    {{"-t", "--temperature"}, KP_SAMPLER_TEMPERATURE, 0},
    {{"--top-p", NULL}, KP_SAMPLER_TOP_P, 0},
    {{"--top-k", NULL}, KP_SAMPLER_TOP_K, 1},
    {{"--min-p", NULL}, KP_SAMPLER_MIN_P, 0},
    {{"--repeat-penalty", NULL}, KP_SAMPLER_REPEAT_PENALTY, 0},
    {{"--frequency-penalty", NULL}, KP_SAMPLER_FREQUENCY_PENALTY, 0},
    {{"--presence-penalty", NULL}, KP_SAMPLER_PRESENCE_PENALTY, 0},
    {{"--penalty-window", NULL}, KP_SAMPLER_PENALTY_WINDOW, 1},
    {{"-s", "--seed"}, KP_SAMPLER_SEED, 1},
};

/* Sets one sampler option, explaining a rejected value on one line. */
static int set_sampler(kp_sampler *smp, const char *flag, kp_sampler_opt opt, int integer, const char *val)
{
    double v, lo = 0, hi = 0;
    kp_sampler_bounds(opt, &lo, &hi);
    if (!parse_num(val, &v) || kp_sampler_set(smp, opt, v) != KP_OK) {
        fprintf(stderr, "kuiper-chat: %s '%s' must be %s in [%g, %g]\n", flag, val, integer ? "an integer" : "a number",
                lo, hi);
        return 0;
    }
    return 1;
}

/* Parses argv into `o` and the sampler; 0 when something is wrong (already reported). */
static int parse_args(int argc, char **argv, options *o, kp_sampler *smp)
{
    static const char *const with_value[] = {"-m", "-z", "-p", "--system", "--template", "-n", "-c", "--threads", "--device"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--dump-prompt")) {
            o->dump = 1;
            continue;
        }
        if (!strcmp(a, "--json")) {
            o->json = 1;
            continue;
        }
        if (!strcmp(a, "--verbose")) {
            o->verbose = 1;
            continue;
        }
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
            known |= !strcmp(a, with_value[k]);
        size_t sf = 0;
        for (; sf < sizeof sampler_flags / sizeof *sampler_flags; sf++)
            if (!strcmp(a, sampler_flags[sf].names[0]) ||
                (sampler_flags[sf].names[1] && !strcmp(a, sampler_flags[sf].names[1])))
                break;
        int is_sampler = sf < sizeof sampler_flags / sizeof *sampler_flags;
        if (!known && !is_sampler)
            return !bad("unknown option '%s'%s (see --help)", a, "");
        if (i + 1 >= argc)
            return !bad("option %s needs a value%s", a, "");
        const char *v = argv[++i];
        long n;
        if (is_sampler) {
            if (!set_sampler(smp, a, sampler_flags[sf].opt, sampler_flags[sf].integer, v))
                return 0;
        } else if (!strcmp(a, "-m")) {
            o->model = v;
        } else if (!strcmp(a, "-z")) {
            o->tokenizer = v;
        } else if (!strcmp(a, "-p")) {
            o->question = v;
        } else if (!strcmp(a, "--system")) {
            o->system = v;
        } else if (!strcmp(a, "--template")) {
            o->template_name = v;
        } else if (!strcmp(a, "-n")) {
            if (!parse_long(a, v, 0, 2147483647L, &o->max_new))
                return 0;
        } else if (!strcmp(a, "-c")) {
            if (!parse_long(a, v, 0, 2147483647L, &o->n_ctx))
                return 0;
        } else if (!strcmp(a, "--threads")) {
            if (!parse_long(a, v, 0, 1024, &n))
                return 0;
            o->threads = (int)n;
        } else if (!strcmp(a, "--device")) {
            if (strcmp(v, "cpu") && strcmp(v, "cuda"))
                return !bad("--device takes cpu or cuda, not '%s'%s", v, "");
            o->cuda = !strcmp(v, "cuda");
        }
    }
    if (!o->model)
        return !bad("no model given: use -m MODEL (see --help)%s%s", "", "");
    if (o->dump + o->json + (o->question != NULL) > 1)
        return !bad("-p, --json and --dump-prompt exclude each other%s%s", "", "");
    return 1;
}

/* ---- output */

static void print_piece(void *user, const char *piece, size_t len)
{
    (void)user;
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
           "Ctrl-C during an answer stops it; the part already shown stays in the conversation.\n");
}

/* Input is read with read(2) rather than stdio so that a Ctrl-C at the prompt is never lost:
 * SIGINT stays blocked except inside pselect, which unblocks it and waits in one step, so a
 * signal that comes before the wait interrupts the wait instead of being handled just before a
 * read that would then block. */
typedef struct line_reader {
    char *buf;
    size_t len, cap;
    int eof;
} line_reader;

/* The next line without its line break (malloc'd); NULL at the end of input or on Ctrl-C. */
static char *next_line(line_reader *r)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &old);
    char *line = NULL;
    while (!g_interrupted) {
        char *nl = r->len ? memchr(r->buf, '\n', r->len) : NULL;
        if (nl || (r->eof && r->len)) {
            size_t n = nl ? (size_t)(nl - r->buf) : r->len, used = nl ? n + 1 : n;
            if ((line = malloc(n + 1)) != NULL) {
                memcpy(line, r->buf, n);
                line[n] = '\0';
            }
            memmove(r->buf, r->buf + used, r->len - used);
            r->len -= used;
            break;
        }
        if (r->eof)
            break;
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(STDIN_FILENO, &fds);
        if (pselect(STDIN_FILENO + 1, &fds, NULL, NULL, NULL, &old) < 0) {
            if (errno != EINTR)
                r->eof = 1;
            continue;
        }
        if (r->cap - r->len < 4096) {
            char *g = realloc(r->buf, r->cap * 2 + 4096);
            if (!g) {
                r->eof = 1;
                continue;
            }
            r->buf = g;
            r->cap = r->cap * 2 + 4096;
        }
        ssize_t k = read(STDIN_FILENO, r->buf + r->len, r->cap - r->len);
        if (k > 0)
            r->len += (size_t)k;
        else if (k == 0 || (errno != EINTR && errno != EAGAIN))
            r->eof = 1;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return line;
}

/* Reads one message; lines ending in a backslash continue it. NULL at EOF or Ctrl-C. */
static char *read_message(int tty, line_reader *r)
{
    char *msg = NULL;
    size_t len = 0;
    for (;;) {
        char *line = next_line(r);
        if (!line) {
            free(msg);
            return NULL;
        }
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        int more = n > 0 && line[n - 1] == '\\';
        if (more)
            line[n - 1] = '\n'; /* the backslash becomes the line break it escapes */
        char *g = realloc(msg, len + n + 1);
        if (!g) {
            free(line);
            free(msg);
            return NULL;
        }
        msg = g;
        memcpy(msg + len, line, n);
        len += n;
        msg[len] = '\0';
        free(line);
        if (!more)
            return msg;
        if (tty) {
            printf("... ");
            fflush(stdout);
        }
    }
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
    int tty = isatty(STDIN_FILENO), quit = 0, rc = 0;
    if (tty) {
        const char *base = strrchr(model_path, '/');
        fprintf(stderr, "kuiper-chat: %s (%s, %.1fM parameters), context %d. /help for commands, Ctrl-C stops an "
                        "answer, Ctrl-D quits.\n",
                base ? base + 1 : model_path, kp_model_arch_borrow(e->model),
                (double)kp_model_info_get(e->model, KP_INFO_N_PARAMS) / 1e6, kp_session_n_ctx(e->session));
    }
    line_reader lr = {0};
    while (!quit && rc == 0) {
        if (tty) {
            printf("> ");
            fflush(stdout);
        }
        char *msg = read_message(tty, &lr);
        if (!msg) {
            if (tty)
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
    free(lr.buf);
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
        fprintf(stderr, "kuiper-chat: -c %ld exceeds the model's context of %lld\n", o->n_ctx, (long long)model_ctx);
        return 1;
    }
    kp_session_params sp;
    kp_session_params_init(&sp);
    sp.n_ctx = (int32_t)(o->n_ctx ? o->n_ctx : model_ctx < 4096 ? model_ctx : 4096);
    kp_session *s = NULL;
    kp_status st = o->dump ? KP_OK : kp_session_new(m, &sp, &s); /* printing a prompt needs no KV cache */
    if (st != KP_OK)
        return fail("making a session", st);
    chat_engine e;
    engine_init(&e, m, s, smp, (int32_t)o->max_new);
    e.template_name = o->template_name;
    e.on_piece = print_piece;
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
    if (!parse_args(argc, argv, &o, smp)) {
        kp_sampler_free(smp);
        return 1;
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
    mp.n_threads = o.threads;
    mp.device = o.cuda ? KP_DEVICE_CUDA : KP_DEVICE_CPU;
    kp_model *m = NULL;
    kp_status st = kp_model_load(o.model, &mp, &m);
    if (st != KP_OK) {
        rc = fail(o.model, st);
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
