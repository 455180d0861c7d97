/* kuiper-tokenize: encode or decode text with any tokenizer libkuiper loads.
 *
 *   kuiper-tokenize -m FILE [--add-special] [--no-parse-special] < in.jsonl > out.jsonl
 *   kuiper-tokenize -m FILE -p "some text"          ids of the text, space-separated
 *   kuiper-tokenize -m FILE -d 15339 1917           text of the ids (or ids read from stdin)
 *
 * FILE is a tokenizer.json, a SentencePiece .model, a llama2.c tokenizer.bin (needs --n-vocab)
 * or a GGUF. A stdin line that is a JSON object carries "id" (echoed exactly as written, string
 * or number) and "text"; its output line is {"id":...,"ids":[...]}, in input order. Any other
 * line is text, and gets its ids on one line. Uses only the public API. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kuiper/kuiper.h>

#include "common/cli.h"
#include "common/minijson.h"

static void usage(void)
{
    printf("usage: kuiper-tokenize -m FILE [options] < lines\n"
           "       kuiper-tokenize -m FILE [options] -p TEXT\n"
           "       kuiper-tokenize -m FILE -d [ID ...]\n"
           "Encodes text to token ids, or with -d decodes ids to text.\n"
           "Each stdin line is either a JSON object {\"id\":..., \"text\":\"...\"}, answered with\n"
           "{\"id\":..., \"ids\":[...]}, or plain text, answered with its ids separated by spaces.\n"
           "  -m, --model FILE        tokenizer.json, SentencePiece .model, llama2.c tokenizer.bin or GGUF\n"
           "  -p, --prompt TEXT       encode TEXT instead of reading stdin\n"
           "  -d, --decode            decode: ids from the arguments, else one line of ids per stdin line\n"
           "                          (separated by spaces or commas)\n"
           "Lines starting with '{' are JSON; empty lines are skipped.\n"
           "      --add-special       add BOS/EOS as the tokenizer's post-processor says\n"
           "      --no-parse-special  encode special-token text as ordinary text\n"
           "      --n-vocab N         vocabulary size (llama2.c tokenizer.bin stores none)\n"
           "  -h, --help              this text\n"
           "      --version           the program and library version\n");
}

enum { OPT_ADD_SPECIAL = CLI_LONG_ONLY, OPT_NO_PARSE_SPECIAL, OPT_N_VOCAB, OPT_VERSION };

static const struct option long_opts[] = {
    {"model", required_argument, NULL, 'm'},
    {"prompt", required_argument, NULL, 'p'},
    {"decode", no_argument, NULL, 'd'},
    {"add-special", no_argument, NULL, OPT_ADD_SPECIAL},
    {"no-parse-special", no_argument, NULL, OPT_NO_PARSE_SPECIAL},
    {"n-vocab", required_argument, NULL, OPT_N_VOCAB},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

typedef struct opts {
    const char *model, *prompt;
    uint32_t flags;
    long n_vocab;
    int decode;
} opts;

/* 1: run; 0: a mistake (reported); -1: --help or --version was answered. */
static int parse_args(int argc, char **argv, opts *o)
{
    cli c = {"kuiper-tokenize", ":m:p:dh", long_opts, {0}};
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, c.short_opts, long_opts, NULL)) != -1) {
        switch (opt) {
        case 'h': usage(); return -1;
        case OPT_VERSION: cli_version(&c); return -1;
        case 'm': o->model = optarg; break;
        case 'p': o->prompt = optarg; break;
        case 'd': o->decode = 1; break;
        case OPT_ADD_SPECIAL: o->flags |= KP_TOKENIZE_ADD_SPECIAL; break;
        case OPT_NO_PARSE_SPECIAL: o->flags &= ~KP_TOKENIZE_PARSE_SPECIAL; break;
        case OPT_N_VOCAB:
            if (!cli_integer(&c, opt, optarg, 0, 2147483647L, &o->n_vocab))
                return 0;
            break;
        default: return cli_getopt_error(&c, opt, argv);
        }
    }
    if (!o->model)
        return cli_error(&c, "no tokenizer given: use -m FILE (see --help)");
    if (o->decode && o->prompt)
        return cli_error(&c, "-d/--decode and -p/--prompt exclude each other");
    if (optind < argc && !o->decode)
        return cli_error(&c, "unexpected argument '%s' (text goes after -p; ids after -d)", argv[optind]);
    return 1;
}

/* ---- encoding */

typedef struct encoder {
    const kp_tokenizer *tok;
    uint32_t flags;
    int32_t *ids;
    size_t cap;
} encoder;

/* Encodes into e->ids; returns the count, or -1 with kp_last_error() set. */
static long encode(encoder *e, const char *text, size_t len)
{
    for (;;) {
        size_t n = 0;
        kp_status st = kp_tokenize(e->tok, text, len, e->flags, e->ids, e->cap, &n);
        if (st == KP_OK)
            return (long)n;
        if (st != KP_ERR_BUFFER_TOO_SMALL)
            return -1;
        int32_t *bigger = realloc(e->ids, n * sizeof *bigger);
        if (!bigger)
            return -1;
        e->ids = bigger;
        e->cap = n;
    }
}

/* Why a JSON line could not be used; NULL when it could. Finds "id" (raw span) and "text"
 * (unescaped into text_buf). Keys match by their raw bytes; the reader is lenient because case
 * files come from many writers. */
static const char *parse_line(const char *line, size_t n, const char **id, size_t *id_len, char *text_buf,
                              long *text_len)
{
    mj_cursor c = {line, line + n, 1};
    *id = NULL;
    *text_len = -1;
    mj_ws(&c);
    if (!mj_lit(&c, "{"))
        return "not a JSON object";
    mj_ws(&c);
    if (!mj_lit(&c, "}"))
        for (;;) {
            mj_ws(&c);
            int key = mj_lit(&c, "\"id\"") ? 'i' : mj_lit(&c, "\"text\"") ? 't' : mj_string(&c, NULL) >= 0 ? 0 : -1;
            if (key < 0)
                return "malformed JSON: expected a string key";
            mj_ws(&c);
            if (!mj_lit(&c, ":"))
                return "malformed JSON: expected ':'";
            mj_ws(&c);
            if (key == 'i') {
                const char *vs = c.p;
                if (!mj_skip_value(&c, 0))
                    return "malformed JSON in the value of \"id\"";
                *id = vs;
                *id_len = (size_t)(c.p - vs);
            } else if (key == 't') {
                if ((*text_len = mj_string(&c, text_buf)) < 0)
                    return "\"text\" must be a JSON string";
            } else if (!mj_skip_value(&c, 0)) {
                return "malformed JSON value";
            }
            mj_ws(&c);
            if (mj_lit(&c, ","))
                continue;
            if (mj_lit(&c, "}"))
                break;
            return "malformed JSON: expected ',' or '}'";
        }
    mj_ws(&c);
    if (c.p != c.end)
        return "text after the JSON object";
    if (!*id && *text_len < 0)
        return "the object has neither \"id\" nor \"text\" (expected {\"id\":..., \"text\":\"...\"})";
    if (!*id)
        return "the object has no \"id\" (expected {\"id\":..., \"text\":\"...\"})";
    if (*text_len < 0)
        return "the object has no \"text\" (expected {\"id\":..., \"text\":\"...\"})";
    return NULL;
}

static void print_ids(const int32_t *ids, long n)
{
    for (long i = 0; i < n; i++)
        printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
}

/* Encodes every stdin line; returns the exit status. */
static int encode_lines(encoder *e)
{
    size_t cap_line = 0, lineno = 0;
    char *line = NULL, *text = NULL;
    int rc = 0;
    ssize_t got;
    while ((got = getline(&line, &cap_line, stdin)) >= 0) {
        lineno++;
        size_t n = (size_t)got;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (!n)
            continue; /* as JSON-lines readers do */
        size_t lead = strspn(line, " \t");
        if (lead >= n || line[lead] != '{') {
            /* Plain text, encoded as it is. */
            long k = encode(e, line, n);
            if (k < 0) {
                fprintf(stderr, "kuiper-tokenize: line %zu: %s\n", lineno, kp_last_error());
                rc = 1;
                printf("\n");
            } else {
                print_ids(e->ids, k);
            }
            continue;
        }
        char *nt = realloc(text, n + 1);
        if (!nt) {
            rc = 1;
            break;
        }
        text = nt;
        const char *id = NULL;
        size_t id_len = 0;
        long text_len = 0;
        const char *why = parse_line(line, n, &id, &id_len, text, &text_len);
        if (why) {
            fprintf(stderr, "kuiper-tokenize: line %zu: %s: %.*s%s\n", lineno, why, (int)(n > 80 ? 80 : n), line,
                    n > 80 ? "..." : "");
            rc = 1;
            continue;
        }
        long k = encode(e, text, (size_t)text_len);
        printf("{\"id\":%.*s,", (int)id_len, id);
        if (k < 0) {
            printf("\"error\":");
            mj_put_string(stdout, kp_last_error());
            printf("}\n");
            rc = 1;
            continue;
        }
        printf("\"ids\":[");
        for (long i = 0; i < k; i++)
            printf(i ? ",%d" : "%d", e->ids[i]);
        printf("]}\n");
    }
    free(line);
    free(text);
    return rc;
}

/* ---- decoding */

/* Appends the ids written in `s` (decimal, separated by spaces, commas or brackets) to *ids.
 * Returns 0, or -1 with `bad` pointing at what is not an id. */
static int parse_ids(const char *s, int32_t **ids, size_t *n, size_t *cap, const char **bad)
{
    for (;;) {
        s += strspn(s, " \t\r\n,[]");
        if (!*s)
            return 0;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX || !strchr(" \t\r\n,[]", *end)) {
            *bad = s;
            return -1;
        }
        if (*n == *cap) {
            size_t c2 = *cap ? *cap * 2 : 64;
            int32_t *g = realloc(*ids, c2 * sizeof *g);
            if (!g) {
                *bad = "(out of memory)";
                return -1;
            }
            *ids = g;
            *cap = c2;
        }
        (*ids)[(*n)++] = (int32_t)v;
        s = end;
    }
}

/* Writes the text of ids[0..n) and a line break; 0 or -1 (reported). */
static int decode_print(const kp_tokenizer *tok, const int32_t *ids, size_t n, char **buf, size_t *cap)
{
    size_t len = 0;
    kp_status st = kp_detokenize(tok, ids, n, *buf, *cap, &len);
    if (st == KP_ERR_BUFFER_TOO_SMALL) {
        char *g = realloc(*buf, len + 1);
        if (!g) {
            fprintf(stderr, "kuiper-tokenize: out of memory\n");
            return -1;
        }
        *buf = g;
        *cap = len + 1;
        st = kp_detokenize(tok, ids, n, *buf, *cap, &len);
    }
    if (st != KP_OK) {
        fprintf(stderr, "kuiper-tokenize: %s\n", kp_last_error());
        return -1;
    }
    fwrite(*buf, 1, len, stdout);
    putchar('\n');
    return 0;
}

static int decode_main(const kp_tokenizer *tok, int argc, char **argv)
{
    size_t n = 0, cap = 64, text_cap = 256;
    int32_t *ids = malloc(cap * sizeof *ids);
    char *text = malloc(text_cap), *line = NULL;
    const char *bad = NULL;
    int rc = 0;
    if (!ids || !text) {
        fprintf(stderr, "kuiper-tokenize: out of memory\n");
        rc = 1;
    } else if (optind < argc) {
        for (int i = optind; i < argc && !rc; i++)
            if (parse_ids(argv[i], &ids, &n, &cap, &bad)) {
                fprintf(stderr, "kuiper-tokenize: -d/--decode: '%s' is not a token id\n", bad);
                rc = 1;
            }
        if (!rc && decode_print(tok, ids, n, &text, &text_cap))
            rc = 1;
    } else {
        size_t line_cap = 0, lineno = 0;
        while (getline(&line, &line_cap, stdin) >= 0) {
            lineno++;
            n = 0;
            if (parse_ids(line, &ids, &n, &cap, &bad)) {
                fprintf(stderr, "kuiper-tokenize: line %zu: '%.*s' is not a token id\n", lineno,
                        (int)strcspn(bad, " \t\r\n,[]"), bad);
                printf("\n");
                rc = 1;
            } else if (decode_print(tok, ids, n, &text, &text_cap)) {
                printf("\n");
                rc = 1;
            }
        }
    }
    free(line);
    free(text);
    free(ids);
    return rc;
}

int main(int argc, char **argv)
{
    opts o = {NULL, NULL, KP_TOKENIZE_PARSE_SPECIAL, 0, 0};
    int parsed = parse_args(argc, argv, &o);
    if (parsed <= 0)
        return parsed < 0 ? 0 : 1;
    kp_tokenizer_params tp;
    kp_tokenizer_params_init(&tp);
    tp.n_vocab = (int32_t)o.n_vocab;
    kp_tokenizer *tok = NULL;
    kp_status st = kp_tokenizer_load(o.model, &tp, &tok);
    if (st) {
        fprintf(stderr, "kuiper-tokenize: %s\n", kp_last_error());
        return 1;
    }
    int rc;
    if (o.decode) {
        rc = decode_main(tok, argc, argv);
    } else {
        encoder e = {tok, o.flags, malloc(1024 * sizeof(int32_t)), 1024};
        if (!e.ids) {
            fprintf(stderr, "kuiper-tokenize: out of memory\n");
            rc = 1;
        } else if (o.prompt) {
            long k = encode(&e, o.prompt, strlen(o.prompt));
            if (k >= 0)
                print_ids(e.ids, k);
            else
                fprintf(stderr, "kuiper-tokenize: %s\n", kp_last_error());
            rc = k < 0;
        } else {
            rc = encode_lines(&e);
        }
        free(e.ids);
    }
    kp_tokenizer_free(tok);
    return fflush(stdout) == 0 ? rc : 1;
}
