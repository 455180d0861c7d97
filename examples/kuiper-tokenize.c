/* kuiper-tokenize: encode JSON lines with any tokenizer libkuiper loads.
 *
 *   kuiper-tokenize -m FILE [--add-special] [--no-parse-special] [--n-vocab N] < in.jsonl > out.jsonl
 *
 * FILE is a tokenizer.json, a SentencePiece .model, a llama2.c tokenizer.bin (needs --n-vocab)
 * or a GGUF. Each input line is an object with "id" (echoed exactly as written, string or
 * number) and "text"; each output line is {"id":...,"ids":[...]}, in input order. Uses only the
 * public API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kuiper/kuiper.h>

static void usage(void)
{
    fprintf(stderr, "usage: kuiper-tokenize -m FILE [--add-special] [--no-parse-special] [--n-vocab N]"
                    " < cases.jsonl\n");
}

/* ---- a tiny reader for one JSON object per line */

typedef struct cursor {
    const char *p, *end;
} cursor;

static void ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
        c->p++;
}

static int skip_string(cursor *c)
{
    if (c->p >= c->end || *c->p != '"')
        return 0;
    for (c->p++; c->p < c->end; c->p++) {
        if (*c->p == '\\')
            c->p++;
        else if (*c->p == '"') {
            c->p++;
            return 1;
        }
    }
    return 0;
}

static int skip_value(cursor *c, int depth)
{
    ws(c);
    if (c->p >= c->end || depth > 64)
        return 0;
    char ch = *c->p;
    if (ch == '"')
        return skip_string(c);
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        c->p++;
        ws(c);
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 1;
        }
        for (;;) {
            if (ch == '{') {
                ws(c);
                if (!skip_string(c))
                    return 0;
                ws(c);
                if (c->p >= c->end || *c->p++ != ':')
                    return 0;
            }
            if (!skip_value(c, depth + 1))
                return 0;
            ws(c);
            if (c->p >= c->end)
                return 0;
            if (*c->p == ',') {
                c->p++;
                continue;
            }
            if (*c->p == close) {
                c->p++;
                return 1;
            }
            return 0;
        }
    }
    /* number or literal */
    const char *s = c->p;
    while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ']' && *c->p != ' ' && *c->p != '\t' &&
           *c->p != '\r' && *c->p != '\n')
        c->p++;
    return c->p > s;
}

static int hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        *v <<= 4;
        if (ch >= '0' && ch <= '9')
            *v |= (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            *v |= (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            *v |= (unsigned)(ch - 'A' + 10);
        else
            return 0;
    }
    return 1;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Unescapes the string at c->p into out (capacity >= its escaped length); lone surrogates
 * become U+FFFD. Returns the length or -1. */
static long read_string(cursor *c, char *out)
{
    if (c->p >= c->end || *c->p != '"')
        return -1;
    c->p++;
    long o = 0;
    while (c->p < c->end) {
        char ch = *c->p++;
        if (ch == '"')
            return o;
        if (ch != '\\') {
            out[o++] = ch;
            continue;
        }
        if (c->p >= c->end)
            return -1;
        char e = *c->p++;
        switch (e) {
        case '"': out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; break;
        case '/': out[o++] = '/'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (c->end - c->p < 4 || !hex4(c->p, &cp))
                return -1;
            c->p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u' &&
                hex4(c->p + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                c->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            o += (long)put_utf8(out + o, cp);
            break;
        }
        default: return -1;
        }
    }
    return -1;
}

/* Finds "id" (raw span) and "text" (unescaped into text_buf) in one line. */
static int parse_line(const char *line, size_t n, const char **id, size_t *id_len, char *text_buf, long *text_len)
{
    cursor c = {line, line + n};
    *id = NULL;
    *text_len = -1;
    ws(&c);
    if (c.p >= c.end || *c.p++ != '{')
        return 0;
    ws(&c);
    if (c.p < c.end && *c.p == '}')
        return 0;
    for (;;) {
        ws(&c);
        const char *ks = c.p;
        if (!skip_string(&c))
            return 0;
        size_t kl = (size_t)(c.p - ks);
        ws(&c);
        if (c.p >= c.end || *c.p++ != ':')
            return 0;
        ws(&c);
        if (kl == 4 && memcmp(ks, "\"id\"", 4) == 0) {
            const char *vs = c.p;
            if (!skip_value(&c, 0))
                return 0;
            *id = vs;
            *id_len = (size_t)(c.p - vs);
        } else if (kl == 6 && memcmp(ks, "\"text\"", 6) == 0) {
            if ((*text_len = read_string(&c, text_buf)) < 0)
                return 0;
        } else if (!skip_value(&c, 0)) {
            return 0;
        }
        ws(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        if (c.p < c.end && *c.p == '}')
            break;
        return 0;
    }
    return *id != NULL && *text_len >= 0;
}

static void put_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    uint32_t flags = KP_TOKENIZE_PARSE_SPECIAL;
    int32_t n_vocab = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--add-special"))
            flags |= KP_TOKENIZE_ADD_SPECIAL;
        else if (!strcmp(argv[i], "--no-parse-special"))
            flags &= ~KP_TOKENIZE_PARSE_SPECIAL;
        else if (!strcmp(argv[i], "--n-vocab") && i + 1 < argc)
            n_vocab = (int32_t)atoi(argv[++i]);
        else {
            usage();
            return 2;
        }
    }
    if (!model) {
        usage();
        return 2;
    }
    kp_tokenizer_params tp;
    kp_tokenizer_params_init(&tp);
    tp.n_vocab = n_vocab;
    kp_tokenizer *tok = NULL;
    kp_status st = kp_tokenizer_load(model, &tp, &tok);
    if (st) {
        fprintf(stderr, "kuiper-tokenize: %s\n", kp_last_error());
        return 1;
    }
    size_t cap_line = 0, cap_ids = 1024;
    char *line = NULL, *text = NULL;
    int32_t *ids = malloc(cap_ids * sizeof *ids);
    int rc = 0;
    ssize_t got;
    while (ids && (got = getline(&line, &cap_line, stdin)) >= 0) {
        size_t n = (size_t)got;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (!n)
            continue;
        char *nt = realloc(text, n + 1);
        if (!nt) {
            rc = 1;
            break;
        }
        text = nt;
        const char *id = NULL;
        size_t id_len = 0;
        long text_len = 0;
        if (!parse_line(line, n, &id, &id_len, text, &text_len)) {
            fprintf(stderr, "kuiper-tokenize: cannot read line: %.*s\n", (int)(n > 80 ? 80 : n), line);
            rc = 1;
            continue;
        }
        size_t n_ids = 0;
        st = kp_tokenize(tok, text, (size_t)text_len, flags, ids, cap_ids, &n_ids);
        if (st == KP_ERR_BUFFER_TOO_SMALL) {
            int32_t *bigger = realloc(ids, n_ids * sizeof *ids);
            if (!bigger) {
                rc = 1;
                break;
            }
            ids = bigger;
            cap_ids = n_ids;
            st = kp_tokenize(tok, text, (size_t)text_len, flags, ids, cap_ids, &n_ids);
        }
        printf("{\"id\":%.*s,", (int)id_len, id);
        if (st) {
            printf("\"error\":");
            put_json_string(kp_last_error());
            printf("}\n");
            rc = 1;
            continue;
        }
        printf("\"ids\":[");
        for (size_t i = 0; i < n_ids; i++)
            printf(i ? ",%d" : "%d", ids[i]);
        printf("]}\n");
    }
    free(line);
    free(text);
    free(ids);
    kp_tokenizer_free(tok);
    return rc;
}
