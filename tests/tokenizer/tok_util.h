/* Shared helpers for the tokenizer tests: reading the expected JSON-lines files in
 * shared/tokenizers/expected (with lib/json.c, itself covered by test_json.c). */
#ifndef KP_TOK_TEST_UTIL_H
#define KP_TOK_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "lib/tokenizer/tokenizer.h"
#include "testdata.h"

enum { MODE_IDS = 0, MODE_ADD_SPECIAL = 1, MODE_NO_ADDED = 2, N_MODES = 3 };

static const char *const mode_field[N_MODES] = {"ids", "ids_add_special", "ids_no_added_tokens"};
static const uint32_t mode_flags[N_MODES] = {KP_TOKENIZE_PARSE_SPECIAL,
                                             KP_TOKENIZE_PARSE_SPECIAL | KP_TOKENIZE_ADD_SPECIAL, 0};

typedef struct tcase {
    char id[96];
    char *text;
    size_t text_len;
    int32_t *ids[N_MODES];
    size_t n_ids[N_MODES];
    int has[N_MODES];
    int roundtrip; /* -1 when absent */
} tcase;

typedef struct tcases {
    tcase *c;
    size_t n;
} tcases;

static inline int32_t *ids_of(const kp_json *arr, size_t *n)
{
    *n = arr->len;
    int32_t *v = malloc((arr->len + 1) * sizeof *v);
    for (uint32_t i = 0; i < arr->len; i++)
        v[i] = (int32_t)arr->u.kids[i].u.num;
    return v;
}

/* Reads a JSON-lines file of {"id","text",[ids fields],"roundtrip"}; NULL-free on failure. */
static inline int load_cases(const char *path, tcases *out)
{
    memset(out, 0, sizeof *out);
    size_t len;
    char *buf = kp_test_slurp(path, &len);
    if (!buf)
        return 0;
    size_t cap = 256;
    out->c = calloc(cap, sizeof *out->c);
    for (char *line = buf, *end = buf + len; line < end;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if (ll) {
            kp_json_doc *d;
            if (kp_json_parse(NULL, line, ll, path, &d) != KP_OK) {
                fprintf(stderr, "%s\n", kp_last_error());
                free(buf);
                return 0;
            }
            const kp_json *r = kp_json_root(d);
            if (out->n == cap) {
                cap *= 2;
                out->c = realloc(out->c, cap * sizeof *out->c);
            }
            tcase *c = &out->c[out->n++];
            memset(c, 0, sizeof *c);
            const kp_json *id = kp_json_get_type(r, "id", KP_JSON_STRING);
            const kp_json *text = kp_json_get_type(r, "text", KP_JSON_STRING);
            snprintf(c->id, sizeof c->id, "%.*s", id ? (int)id->len : 0, id ? id->u.str : "");
            c->text_len = text ? text->len : 0;
            c->text = malloc(c->text_len + 1);
            if (c->text_len)
                memcpy(c->text, text->u.str, c->text_len);
            c->text[c->text_len] = 0;
            for (int m = 0; m < N_MODES; m++) {
                const kp_json *a = kp_json_get_type(r, mode_field[m], KP_JSON_ARRAY);
                if (a) {
                    c->ids[m] = ids_of(a, &c->n_ids[m]);
                    c->has[m] = 1;
                }
            }
            const kp_json *rt = kp_json_get(r, "roundtrip");
            c->roundtrip = rt && rt->type == KP_JSON_TRUE ? 1 : rt && rt->type == KP_JSON_FALSE ? 0 : -1;
            kp_json_free(d);
        }
        line += ll + 1;
    }
    free(buf);
    return 1;
}

static inline void free_cases(tcases *cs)
{
    for (size_t i = 0; i < cs->n; i++) {
        free(cs->c[i].text);
        for (int m = 0; m < N_MODES; m++)
            free(cs->c[i].ids[m]);
    }
    free(cs->c);
    memset(cs, 0, sizeof *cs);
}

/* Encodes through the public API; returns malloc'd ids (count in *n) or NULL with the status. */
static inline int32_t *encode(const kp_tokenizer *t, const char *s, size_t len, uint32_t flags, size_t *n, kp_status *st)
{
    size_t cap = len + 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    *st = kp_tokenize(t, s, len, flags, ids, cap, n);
    if (*st == KP_ERR_BUFFER_TOO_SMALL) {
        cap = *n;
        ids = realloc(ids, cap * sizeof *ids);
        *st = kp_tokenize(t, s, len, flags, ids, cap, n);
    }
    if (*st) {
        free(ids);
        return NULL;
    }
    return ids;
}

static inline void print_ids(const char *label, const int32_t *v, size_t n)
{
    fprintf(stderr, "    %s [", label);
    for (size_t i = 0; i < n && i < 40; i++)
        fprintf(stderr, i ? ",%d" : "%d", v[i]);
    fprintf(stderr, n > 40 ? ",...] (%zu)\n" : "]\n", n);
}

static inline int same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

#endif
