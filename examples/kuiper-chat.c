/* kuiper-chat: chat with a model through its own chat template (public API only).
 *
 *   kuiper-chat -m MODEL --dump-prompt < conversation.json   print the formatted prompt, exactly
 *   kuiper-chat -m MODEL -p "question" [-n N]                 one greedy answer, streamed
 *
 * conversation.json: {"messages":[{"role":"user","content":"..."}, ...], "add_assistant":true}
 * The interactive REPL is not written yet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kuiper/kuiper.h"

/* ---- a minimal JSON reader for the conversation file: just what it needs, strings decoded in place */

typedef struct jp {
    char *s;
    size_t i, n;
} jp;

static void ws(jp *p)
{
    while (p->i < p->n && strchr(" \t\r\n", p->s[p->i]))
        p->i++;
}

static int lit(jp *p, const char *w)
{
    size_t k = strlen(w);
    if (p->n - p->i < k || memcmp(p->s + p->i, w, k) != 0)
        return 0;
    p->i += k;
    return 1;
}

static int hex4(jp *p, unsigned *v)
{
    *v = 0;
    for (int k = 0; k < 4; k++, p->i++) {
        if (p->i >= p->n)
            return 0;
        char c = p->s[p->i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16u;
        if (d == 16)
            return 0;
        *v = *v * 16 + d;
    }
    return 1;
}

/* Parses a string at p->i, decoding it over its own source bytes (the result is never longer)
 * and NUL-terminating it; returns its start or NULL. */
static char *str(jp *p)
{
    if (p->i >= p->n || p->s[p->i] != '"')
        return NULL;
    char *out = p->s + ++p->i, *w = out;
    while (p->i < p->n && p->s[p->i] != '"') {
        char c = p->s[p->i++];
        if (c != '\\') {
            *w++ = c;
            continue;
        }
        if (p->i >= p->n)
            return NULL;
        c = p->s[p->i++];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *hit = strchr(from, c);
        if (c && hit) {
            *w++ = to[hit - from];
            continue;
        }
        unsigned u, lo;
        if (c != 'u' || !hex4(p, &u))
            return NULL;
        if (u >= 0xd800 && u < 0xdc00) {
            if (!lit(p, "\\u") || !hex4(p, &lo) || lo < 0xdc00 || lo > 0xdfff)
                return NULL;
            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        } else if (u >= 0xdc00 && u < 0xe000) {
            return NULL;
        }
        if (u < 0x80) {
            *w++ = (char)u;
        } else if (u < 0x800) {
            *w++ = (char)(0xc0 | (u >> 6));
            *w++ = (char)(0x80 | (u & 0x3f));
        } else if (u < 0x10000) {
            *w++ = (char)(0xe0 | (u >> 12));
            *w++ = (char)(0x80 | ((u >> 6) & 0x3f));
            *w++ = (char)(0x80 | (u & 0x3f));
        } else {
            *w++ = (char)(0xf0 | (u >> 18));
            *w++ = (char)(0x80 | ((u >> 12) & 0x3f));
            *w++ = (char)(0x80 | ((u >> 6) & 0x3f));
            *w++ = (char)(0x80 | (u & 0x3f));
        }
    }
    if (p->i >= p->n)
        return NULL;
    p->i++;
    *w = '\0'; /* w < p->s + p->i: the closing quote's byte at least */
    return out;
}

static int skip_value(jp *p, int depth);

static int skip_container(jp *p, char close, int depth)
{
    p->i++;
    ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        return 1;
    }
    for (;;) {
        if (close == '}') {
            if (!str(p))
                return 0;
            ws(p);
            if (!lit(p, ":"))
                return 0;
        }
        if (!skip_value(p, depth + 1))
            return 0;
        ws(p);
        if (lit(p, ","))
            continue;
        return lit(p, close == '}' ? "}" : "]");
    }
}

static int skip_value(jp *p, int depth)
{
    ws(p);
    if (depth > 64 || p->i >= p->n)
        return 0;
    char c = p->s[p->i];
    if (c == '"')
        return str(p) != NULL;
    if (c == '{' || c == '[')
        return skip_container(p, c == '{' ? '}' : ']', depth);
    if (lit(p, "true") || lit(p, "false") || lit(p, "null"))
        return 1;
    size_t st = p->i;
    while (p->i < p->n && strchr("+-0123456789.eE", p->s[p->i]))
        p->i++;
    return p->i > st;
}

typedef struct conversation {
    kp_chat_msg *msgs;
    size_t n, cap;
    int add_assistant;
} conversation;

static int parse_message(jp *p, conversation *c)
{
    kp_chat_msg m = {NULL, NULL};
    ws(p);
    if (!lit(p, "{"))
        return 0;
    ws(p);
    if (!lit(p, "}"))
        for (;;) {
            ws(p);
            char *k = str(p);
            ws(p);
            if (!k || !lit(p, ":"))
                return 0;
            ws(p);
            if (!strcmp(k, "role") || !strcmp(k, "content")) {
                char *v = str(p);
                if (!v)
                    return 0;
                *(k[0] == 'r' ? &m.role : &m.content) = v;
            } else if (!skip_value(p, 1)) {
                return 0;
            }
            ws(p);
            if (lit(p, ","))
                continue;
            if (lit(p, "}"))
                break;
            return 0;
        }
    if (!m.role || !m.content)
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        kp_chat_msg *g = realloc(c->msgs, cap * sizeof *g);
        if (!g)
            return 0;
        c->msgs = g;
        c->cap = cap;
    }
    c->msgs[c->n++] = m;
    return 1;
}

/* {"messages":[...], "add_assistant": bool}; other members are ignored. */
static int parse_conversation(char *text, size_t len, conversation *c)
{
    jp p = {text, 0, len};
    c->add_assistant = 1;
    ws(&p);
    if (!lit(&p, "{"))
        return 0;
    ws(&p);
    if (lit(&p, "}"))
        return 1;
    for (;;) {
        ws(&p);
        char *k = str(&p);
        ws(&p);
        if (!k || !lit(&p, ":"))
            return 0;
        ws(&p);
        if (!strcmp(k, "messages")) {
            if (!lit(&p, "["))
                return 0;
            ws(&p);
            if (!lit(&p, "]"))
                for (;;) {
                    if (!parse_message(&p, c))
                        return 0;
                    ws(&p);
                    if (lit(&p, ","))
                        continue;
                    if (lit(&p, "]"))
                        break;
                    return 0;
                }
        } else if (!strcmp(k, "add_assistant")) {
            if (lit(&p, "true"))
                c->add_assistant = 1;
            else if (lit(&p, "false"))
                c->add_assistant = 0;
            else
                return 0;
        } else if (!skip_value(&p, 1)) {
            return 0;
        }
        ws(&p);
        if (lit(&p, ","))
            continue;
        if (!lit(&p, "}"))
            return 0;
        ws(&p);
        return p.i == p.n;
    }
}

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *g = realloc(b, cap *= 2);
        if (!g)
            free(b);
        b = g;
    }
    *len = n;
    return b;
}

/* ---- the program */

static int fail(const char *what, kp_status st)
{
    fprintf(stderr, "kuiper-chat: %s: %s (%s)\n", what, kp_last_error(), kp_status_str(st));
    return 1;
}

static char *format(const kp_model *m, const conversation *c, size_t *len)
{
    kp_status st = kp_chat_format(m, c->msgs, c->n, c->add_assistant, NULL, 0, len);
    char *buf = st == KP_ERR_BUFFER_TOO_SMALL ? malloc(*len + 1) : NULL;
    if (st == KP_ERR_BUFFER_TOO_SMALL && buf)
        st = kp_chat_format(m, c->msgs, c->n, c->add_assistant, buf, *len + 1, len);
    if (st != KP_OK) {
        if (st != KP_ERR_BUFFER_TOO_SMALL)
            fail("formatting the conversation", st);
        free(buf);
        return NULL;
    }
    return buf;
}

static int print_piece(void *user, const kp_token_event *ev)
{
    (void)user;
    if (!ev->is_prompt && ev->piece_len) {
        fwrite(ev->piece, 1, ev->piece_len, stdout);
        fflush(stdout);
    }
    return 0;
}

/* One greedy answer to `prompt` (already formatted). The chat text carries its own BOS text for
 * the Llama families, so BOS is added only when it does not. */
static int answer(kp_model *m, const char *prompt, size_t len, int max_new)
{
    const kp_tokenizer *t = kp_model_tokenizer_borrow(m);
    uint32_t flags = KP_TOKENIZE_PARSE_SPECIAL;
    char bos[256];
    size_t bos_len = 0;
    int32_t bos_id = kp_tokenizer_bos(t);
    if (bos_id < 0 || kp_token_to_piece(t, bos_id, bos, sizeof bos, &bos_len) != KP_OK || bos_len == 0 ||
        len < bos_len || memcmp(prompt, bos, bos_len) != 0)
        flags |= KP_TOKENIZE_ADD_SPECIAL;
    size_t n = 0;
    kp_status st = kp_tokenize(t, prompt, len, flags, NULL, 0, &n);
    int32_t *ids = st == KP_ERR_BUFFER_TOO_SMALL || st == KP_OK ? malloc((n ? n : 1) * sizeof *ids) : NULL;
    if (!ids)
        return fail("tokenizing the prompt", st);
    if ((st = kp_tokenize(t, prompt, len, flags, ids, n, &n)) != KP_OK) {
        free(ids);
        return fail("tokenizing the prompt", st);
    }
    kp_session *s = NULL;
    if ((st = kp_session_new(m, NULL, &s)) != KP_OK) {
        free(ids);
        return fail("making a session", st);
    }
    kp_generate_params gp;
    kp_generate_params_init(&gp);
    gp.max_new_tokens = max_new;
    gp.on_token = print_piece;
    st = kp_generate(s, ids, n, &gp, NULL);
    printf("\n");
    free(ids);
    int rc = st == KP_OK ? 0 : fail("generating", st);
    kp_session_free(s);
    return rc;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: kuiper-chat -m MODEL [-z TOKENIZER] [-t THREADS] (--dump-prompt < conversation.json | -p TEXT "
            "[-s SYSTEM] [-n MAX_NEW])\n");
}

int main(int argc, char **argv)
{
    const char *model = NULL, *tok = NULL, *question = NULL, *system = NULL;
    int dump = 0, threads = 0, max_new = 256;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--dump-prompt"))
            dump = 1;
        else if (v && !strcmp(a, "-m"))
            model = argv[++i];
        else if (v && !strcmp(a, "-z"))
            tok = argv[++i];
        else if (v && !strcmp(a, "-p"))
            question = argv[++i];
        else if (v && !strcmp(a, "-s"))
            system = argv[++i];
        else if (v && !strcmp(a, "-t"))
            threads = atoi(argv[++i]);
        else if (v && !strcmp(a, "-n"))
            max_new = atoi(argv[++i]);
        else {
            usage();
            return 2;
        }
    }
    if (!model || dump == !!question) {
        usage();
        return 2;
    }
    conversation c = {NULL, 0, 0, 1};
    char *text = NULL;
    if (dump) {
        size_t len = 0;
        text = read_all(stdin, &len);
        if (!text || !parse_conversation(text, len, &c)) {
            fprintf(stderr, "kuiper-chat: stdin is not a conversation: expected {\"messages\":[{\"role\":..., "
                            "\"content\":...}], \"add_assistant\":true}\n");
            free(c.msgs);
            free(text);
            return 1;
        }
    } else {
        c.msgs = calloc(2, sizeof *c.msgs);
        if (!c.msgs)
            return 1;
        if (system)
            c.msgs[c.n++] = (kp_chat_msg){"system", system};
        c.msgs[c.n++] = (kp_chat_msg){"user", question};
    }
    kp_model_params mp;
    kp_model_params_init(&mp);
    mp.tokenizer_path = tok;
    mp.n_threads = threads;
    kp_model *m = NULL;
    kp_status st = kp_model_load(model, &mp, &m);
    int rc = 1;
    if (st != KP_OK) {
        rc = fail(model, st);
    } else {
        size_t len = 0;
        char *prompt = format(m, &c, &len);
        if (prompt && dump)
            rc = fwrite(prompt, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
        else if (prompt)
            rc = answer(m, prompt, len, max_new);
        free(prompt);
    }
    kp_model_free(m);
    free(c.msgs);
    free(text);
    return rc;
}
