/* Conversation storage and its JSON form. The reader knows just the conversation shape; any
 * other member is skipped as a generic JSON value. */
#include "conv.h"

#include <stdlib.h>
#include <string.h>

int conv_push(chat_conv *c, const char *role, const char *content, size_t len)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        chat_msg *g = realloc(c->msgs, cap * sizeof *g);
        if (!g)
            return -1;
        c->msgs = g;
        c->cap = cap;
    }
    char *r = strdup(role), *t = malloc(len + 1);
    if (!r || !t) {
        free(r);
        free(t);
        return -1;
    }
    memcpy(t, content, len);
    t[len] = '\0';
    c->msgs[c->n++] = (chat_msg){r, t};
    return 0;
}

void conv_remove(chat_conv *c, size_t i, size_t count)
{
    if (i >= c->n)
        return;
    if (count > c->n - i)
        count = c->n - i;
    for (size_t k = i; k < i + count; k++) {
        free(c->msgs[k].role);
        free(c->msgs[k].content);
    }
    memmove(c->msgs + i, c->msgs + i + count, (c->n - i - count) * sizeof *c->msgs);
    c->n -= count;
}

static int has_system(const chat_conv *c) { return c->n > 0 && strcmp(c->msgs[0].role, "system") == 0; }

void conv_clear(chat_conv *c, int keep_system)
{
    size_t from = keep_system && has_system(c) ? 1 : 0;
    conv_remove(c, from, c->n - from);
}

int conv_set_system(chat_conv *c, const char *text)
{
    if (has_system(c))
        conv_remove(c, 0, 1);
    if (!text || !*text)
        return 0;
    /* Push at the end, then rotate it to the front. */
    if (conv_push(c, "system", text, strlen(text)))
        return -1;
    chat_msg m = c->msgs[c->n - 1];
    memmove(c->msgs + 1, c->msgs, (c->n - 1) * sizeof *c->msgs);
    c->msgs[0] = m;
    return 0;
}

const kp_chat_msg *conv_view(chat_conv *c)
{
    if (c->view_cap < c->n || !c->view) {
        size_t cap = c->n > 8 ? c->n : 8;
        kp_chat_msg *g = realloc(c->view, cap * sizeof *g);
        if (!g)
            return NULL;
        c->view = g;
        c->view_cap = cap;
    }
    for (size_t i = 0; i < c->n; i++)
        c->view[i] = (kp_chat_msg){c->msgs[i].role, c->msgs[i].content};
    return c->view;
}

void conv_free(chat_conv *c)
{
    conv_remove(c, 0, c->n);
    free(c->msgs);
    free(c->view);
    memset(c, 0, sizeof *c);
}

void conv_move(chat_conv *to, chat_conv *from)
{
    conv_free(to);
    *to = *from;
    memset(from, 0, sizeof *from);
}

/* ---- reading: strings are decoded over their own source bytes (never longer) in a private
 * copy of the document, then copied into the conversation */

typedef struct jp {
    char *s;
    size_t i, n;
} jp;

static void ws(jp *p)
{
    while (p->i < p->n && strchr(" \t\r\n", p->s[p->i]) && p->s[p->i])
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
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d == 16)
            return 0;
        *v = *v * 16 + d;
    }
    return 1;
}

static char *put_utf8(char *w, unsigned u)
{
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
    return w;
}

/* Parses a string at p->i; returns its decoded start (NUL-terminated, *len bytes: a "\u0000"
 * escape is kept as a byte) or NULL. */
static char *str(jp *p, size_t *len)
{
    if (p->i >= p->n || p->s[p->i] != '"')
        return NULL;
    char *out = p->s + ++p->i, *w = out;
    while (p->i < p->n && p->s[p->i] != '"') {
        char c = p->s[p->i++];
        if ((unsigned char)c < 0x20)
            return NULL; /* raw control characters are not allowed in JSON strings */
        if (c != '\\') {
            *w++ = c;
            continue;
        }
        if (p->i >= p->n)
            return NULL;
        c = p->s[p->i++];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *hit = c ? strchr(from, c) : NULL;
        if (hit) {
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
        w = put_utf8(w, u);
    }
    if (p->i >= p->n)
        return NULL;
    p->i++;
    *w = '\0'; /* w < p->s + p->i: the closing quote's byte at least */
    if (len)
        *len = (size_t)(w - out);
    return out;
}

static int skip_value(jp *p, int depth);

static int skip_container(jp *p, char close, int depth)
{
    p->i++;
    ws(p);
    if (lit(p, close == '}' ? "}" : "]"))
        return 1;
    for (;;) {
        ws(p);
        if (close == '}') {
            if (!str(p, NULL))
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
        return str(p, NULL) != NULL;
    if (c == '{' || c == '[')
        return skip_container(p, c == '{' ? '}' : ']', depth);
    if (lit(p, "true") || lit(p, "false") || lit(p, "null"))
        return 1;
    size_t st = p->i;
    while (p->i < p->n && p->s[p->i] && strchr("+-0123456789.eE", p->s[p->i]))
        p->i++;
    return p->i > st;
}

static const char *parse_message(jp *p, chat_conv *c)
{
    const char *role = NULL, *content = NULL;
    size_t content_len = 0;
    ws(p);
    if (!lit(p, "{"))
        return "a message must be an object";
    ws(p);
    if (!lit(p, "}"))
        for (;;) {
            ws(p);
            char *k = str(p, NULL);
            ws(p);
            if (!k || !lit(p, ":"))
                return "expected a member name and ':' in a message";
            ws(p);
            if (!strcmp(k, "role") || !strcmp(k, "content")) {
                size_t l;
                char *v = str(p, &l);
                if (!v)
                    return "\"role\" and \"content\" must be strings";
                if (k[0] == 'r') {
                    role = v;
                } else {
                    content = v;
                    content_len = l;
                }
            } else if (!skip_value(p, 1)) {
                return "malformed value in a message";
            }
            ws(p);
            if (lit(p, ","))
                continue;
            if (lit(p, "}"))
                break;
            return "expected ',' or '}' in a message";
        }
    if (!role || !content)
        return "every message needs \"role\" and \"content\"";
    if (conv_push(c, role, content, content_len))
        return "out of memory";
    return NULL;
}

static const char *parse_doc(jp *p, chat_conv *c, int *add_assistant)
{
    ws(p);
    if (!lit(p, "{"))
        return "expected a JSON object";
    ws(p);
    if (lit(p, "}"))
        goto end;
    for (;;) {
        ws(p);
        char *k = str(p, NULL);
        ws(p);
        if (!k || !lit(p, ":"))
            return "expected a member name and ':'";
        ws(p);
        if (!strcmp(k, "messages")) {
            if (!lit(p, "["))
                return "\"messages\" must be an array";
            ws(p);
            if (!lit(p, "]"))
                for (;;) {
                    const char *why = parse_message(p, c);
                    if (why)
                        return why;
                    ws(p);
                    if (lit(p, ","))
                        continue;
                    if (lit(p, "]"))
                        break;
                    return "expected ',' or ']' in \"messages\"";
                }
        } else if (!strcmp(k, "add_assistant")) {
            if (lit(p, "true"))
                *add_assistant = 1;
            else if (lit(p, "false"))
                *add_assistant = 0;
            else
                return "\"add_assistant\" must be true or false";
        } else if (!skip_value(p, 1)) {
            return "malformed value";
        }
        ws(p);
        if (lit(p, ","))
            continue;
        if (!lit(p, "}"))
            return "expected ',' or '}'";
        break;
    }
end:
    ws(p);
    return p->i == p->n ? NULL : "text after the JSON object";
}

int conv_parse_json(const char *text, size_t len, chat_conv *out, int *add_assistant, char *err, size_t err_cap)
{
    int aa = 1;
    chat_conv c = {0};
    char *copy = malloc(len + 1);
    const char *why = "out of memory";
    jp p = {copy, 0, len};
    if (copy) {
        memcpy(copy, text, len);
        copy[len] = '\0';
        why = parse_doc(&p, &c, &aa);
    }
    free(copy);
    if (why) {
        snprintf(err, err_cap, "%s (at byte %zu)", why, p.i);
        conv_free(&c);
        conv_free(out);
        return -1;
    }
    conv_move(out, &c);
    if (add_assistant)
        *add_assistant = aa;
    return 0;
}

/* ---- writing */

/* Length of the valid UTF-8 sequence at `q` (1-4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *q)
{
    size_t n = q[0] < 0x80 ? 1 : (q[0] & 0xe0) == 0xc0 ? 2 : (q[0] & 0xf0) == 0xe0 ? 3 : (q[0] & 0xf8) == 0xf0 ? 4 : 0;
    for (size_t k = 1; k < n; k++)
        if ((q[k] & 0xc0) != 0x80)
            return 0;
    if ((n == 2 && q[0] < 0xc2) || (n == 3 && q[0] == 0xe0 && q[1] < 0xa0) ||
        (n == 3 && q[0] == 0xed && q[1] >= 0xa0) || (n == 4 && q[0] == 0xf0 && q[1] < 0x90) ||
        (n == 4 && (q[0] > 0xf4 || (q[0] == 0xf4 && q[1] >= 0x90))))
        return 0; /* overlong, surrogate or beyond U+10FFFF */
    return n;
}

/* A JSON string; bytes that are not UTF-8 (an answer cut inside a character) become U+FFFD,
 * because JSON text must be UTF-8. */
static int put_str(FILE *f, const char *s)
{
    if (fputc('"', f) == EOF)
        return -1;
    for (const unsigned char *q = (const unsigned char *)s; *q;) {
        size_t n = utf8_len(q);
        int rc;
        if (n == 0)
            rc = fputs("\\ufffd", f);
        else if (*q == '"' || *q == '\\')
            rc = fprintf(f, "\\%c", *q);
        else if (*q == '\n')
            rc = fputs("\\n", f);
        else if (*q == '\t')
            rc = fputs("\\t", f);
        else if (*q < 0x20 || *q == 0x7f)
            rc = fprintf(f, "\\u%04x", *q);
        else
            rc = fwrite(q, 1, n, f) == n ? 0 : -1;
        if (rc < 0)
            return -1;
        q += n ? n : 1;
    }
    return fputc('"', f) == EOF ? -1 : 0;
}

int conv_write_json(const chat_conv *c, FILE *f)
{
    int bad = fputs("{\"format\": \"kuiper-chat conversation\", \"version\": 1, \"messages\": [", f) < 0;
    for (size_t i = 0; i < c->n && !bad; i++) {
        bad |= fputs(i ? ",\n  {\"role\": " : "\n  {\"role\": ", f) < 0;
        bad |= put_str(f, c->msgs[i].role) < 0;
        bad |= fputs(", \"content\": ", f) < 0;
        bad |= put_str(f, c->msgs[i].content) < 0;
        bad |= fputc('}', f) == EOF;
    }
    bad |= fputs("\n]}\n", f) < 0;
    return bad ? -1 : 0;
}

char *read_all(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *g = realloc(b, (cap *= 2) + 1);
        if (!g)
            free(b);
        b = g;
    }
    if (!b || ferror(f)) {
        free(b);
        return NULL;
    }
    b[n] = '\0';
    *len = n;
    return b;
}
