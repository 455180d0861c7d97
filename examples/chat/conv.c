/* Conversation storage and its JSON form. The reader knows just the conversation shape; any
 * other member is skipped as a generic JSON value. */
#include "conv.h"

#include "../common/minijson.h"

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

/* ---- reading: strings are decoded over their own source bytes in a private copy of the
 * document, then copied into the conversation, so no parsed string needs freeing */

static char *str(mj_cursor *p, size_t *len)
{
    char *out = (char *)p->p; /* the private copy, which is writable */
    long n = mj_string(p, out);
    if (n < 0)
        return NULL;
    if (len)
        *len = (size_t)n;
    return out;
}

static const char *parse_message(mj_cursor *p, chat_conv *c)
{
    const char *role = NULL, *content = NULL;
    size_t content_len = 0;
    mj_ws(p);
    if (!mj_lit(p, "{"))
        return "a message must be an object";
    mj_ws(p);
    if (!mj_lit(p, "}"))
        for (;;) {
            mj_ws(p);
            char *k = str(p, NULL);
            mj_ws(p);
            if (!k || !mj_lit(p, ":"))
                return "expected a member name and ':' in a message";
            mj_ws(p);
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
            } else if (!mj_skip_value(p, 1)) {
                return "malformed value in a message";
            }
            mj_ws(p);
            if (mj_lit(p, ","))
                continue;
            if (mj_lit(p, "}"))
                break;
            return "expected ',' or '}' in a message";
        }
    if (!role || !content)
        return "every message needs \"role\" and \"content\"";
    if (conv_push(c, role, content, content_len))
        return "out of memory";
    return NULL;
}

static const char *parse_doc(mj_cursor *p, chat_conv *c, int *add_assistant)
{
    mj_ws(p);
    if (!mj_lit(p, "{"))
        return "expected a JSON object";
    mj_ws(p);
    if (mj_lit(p, "}"))
        goto end;
    for (;;) {
        mj_ws(p);
        char *k = str(p, NULL);
        mj_ws(p);
        if (!k || !mj_lit(p, ":"))
            return "expected a member name and ':'";
        mj_ws(p);
        if (!strcmp(k, "messages")) {
            if (!mj_lit(p, "["))
                return "\"messages\" must be an array";
            mj_ws(p);
            if (!mj_lit(p, "]"))
                for (;;) {
                    const char *why = parse_message(p, c);
                    if (why)
                        return why;
                    mj_ws(p);
                    if (mj_lit(p, ","))
                        continue;
                    if (mj_lit(p, "]"))
                        break;
                    return "expected ',' or ']' in \"messages\"";
                }
        } else if (!strcmp(k, "add_assistant")) {
            if (mj_lit(p, "true"))
                *add_assistant = 1;
            else if (mj_lit(p, "false"))
                *add_assistant = 0;
            else
                return "\"add_assistant\" must be true or false";
        } else if (!mj_skip_value(p, 1)) {
            return "malformed value";
        }
        mj_ws(p);
        if (mj_lit(p, ","))
            continue;
        if (!mj_lit(p, "}"))
            return "expected ',' or '}'";
        break;
    }
end:
    mj_ws(p);
    return p->p == p->end ? NULL : "text after the JSON object";
}

int conv_parse_json(const char *text, size_t len, chat_conv *out, int *add_assistant, char *err, size_t err_cap)
{
    int aa = 1;
    chat_conv c = {0};
    char *copy = malloc(len + 1);
    const char *why = "out of memory";
    size_t at = 0;
    if (copy) {
        memcpy(copy, text, len);
        copy[len] = '\0';
        mj_cursor p = {copy, copy + len, 0};
        why = parse_doc(&p, &c, &aa);
        at = len - (size_t)(p.end - p.p); /* from the end: gcc 12 -O1 warns wrongly about p.p - copy */
        free(copy);
    }
    if (why) {
        snprintf(err, err_cap, "%s (at byte %zu)", why, at);
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

int conv_write_json(const chat_conv *c, FILE *f)
{
    int bad = fputs("{\"format\": \"kuiper-chat conversation\", \"version\": 1, \"messages\": [", f) < 0;
    for (size_t i = 0; i < c->n && !bad; i++) {
        bad |= fputs(i ? ",\n  {\"role\": " : "\n  {\"role\": ", f) < 0;
        bad |= mj_put_string(f, c->msgs[i].role) < 0;
        bad |= fputs(", \"content\": ", f) < 0;
        bad |= mj_put_string(f, c->msgs[i].content) < 0;
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
