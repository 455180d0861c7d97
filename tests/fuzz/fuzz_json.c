/* The JSON reader (lib/json.c): whatever parses is valid UTF-8 in every string, and writing the
 * tree back out and parsing that gives the same tree. */
#include <math.h>

#include "fuzz_util.h"
#include "lib/json.h"

static int valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!k || k > n - i)
            return 0;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
        if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F) || (c == 0xF0 && s[i + 1] < 0x90) ||
            (c == 0xF4 && s[i + 1] > 0x8F))
            return 0;
        i += k;
    }
    return 1;
}

static void put_str(kp_buf *o, const char *s, size_t n)
{
    kp_buf_append(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\' || c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            kp_buf_append(o, esc, 6);
        } else {
            kp_buf_append(o, s + i, 1);
        }
    }
    kp_buf_append(o, "\"", 1);
}

/* Writes v as JSON; returns 0 if it holds a number that has no JSON spelling. */
static int put(kp_buf *o, const kp_json *v)
{
    char num[40];
    int ok = 1;
    switch (v->type) {
    case KP_JSON_NULL: kp_buf_append(o, "null", 4); break;
    case KP_JSON_FALSE: kp_buf_append(o, "false", 5); break;
    case KP_JSON_TRUE: kp_buf_append(o, "true", 4); break;
    case KP_JSON_NUMBER:
        if (!isfinite(v->u.num))
            return 0;
        kp_buf_append(o, num, (size_t)snprintf(num, sizeof num, "%.17g", v->u.num));
        break;
    case KP_JSON_STRING:
        KP_FUZZ_CHECK(valid_utf8((const unsigned char *)v->u.str, v->len));
        put_str(o, v->u.str, v->len);
        break;
    case KP_JSON_ARRAY:
    case KP_JSON_OBJECT:
        kp_buf_append(o, v->type == KP_JSON_ARRAY ? "[" : "{", 1);
        for (uint32_t i = 0; i < v->len && ok; i++) {
            const kp_json *k = &v->u.kids[i];
            if (i)
                kp_buf_append(o, ",", 1);
            if (v->type == KP_JSON_OBJECT) {
                KP_FUZZ_CHECK(k->key && valid_utf8((const unsigned char *)k->key, k->key_len));
                put_str(o, k->key, k->key_len);
                kp_buf_append(o, ":", 1);
                /* lookups by key find the first member of that name */
                if (k->key_len < 256 && memchr(k->key, 0, k->key_len) == NULL) {
                    char key[256];
                    memcpy(key, k->key, k->key_len);
                    key[k->key_len] = 0;
                    const kp_json *f = kp_json_get(v, key);
                    KP_FUZZ_CHECK(f && f <= k && f->key_len == k->key_len && memcmp(f->key, k->key, k->key_len) == 0);
                }
            }
            ok = put(o, k);
        }
        kp_buf_append(o, v->type == KP_JSON_ARRAY ? "]" : "}", 1);
        break;
    default: KP_FUZZ_CHECK(!"unknown JSON type");
    }
    return ok;
}

static int same(const kp_json *a, const kp_json *b)
{
    if (a->type != b->type || a->len != b->len || a->key_len != b->key_len)
        return 0;
    if (a->key_len && memcmp(a->key, b->key, a->key_len) != 0)
        return 0;
    switch (a->type) {
    case KP_JSON_NUMBER: /* lib/json.c documents rounding that may differ from strtod in the last bits */
        return a->u.num == b->u.num || fabs(a->u.num - b->u.num) <= 1e-14 * fabs(a->u.num) ||
               fabs(a->u.num - b->u.num) < 1e-300;
    case KP_JSON_STRING: return memcmp(a->u.str, b->u.str, a->len) == 0;
    case KP_JSON_ARRAY:
    case KP_JSON_OBJECT:
        for (uint32_t i = 0; i < a->len; i++)
            if (!same(&a->u.kids[i], &b->u.kids[i]))
                return 0;
        return 1;
    default: return 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kp_json_doc *d = NULL;
    if (kp_json_parse(NULL, (const char *)data, size, "fuzz.json", &d) != KP_OK)
        return 0;
    kp_buf o;
    kp_buf_init(&o, NULL);
    if (put(&o, kp_json_root(d))) {
        kp_json_doc *e = NULL;
        KP_FUZZ_CHECK(kp_json_parse(NULL, o.data, o.len, "rewritten.json", &e) == KP_OK);
        KP_FUZZ_CHECK(same(kp_json_root(d), kp_json_root(e)));
        kp_json_free(e);
    }
    kp_buf_free(&o);
    kp_json_free(d);
    return 0;
}
