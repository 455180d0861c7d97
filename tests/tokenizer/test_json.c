/* lib/json.c: values, escapes, strictness, error positions, and that every byte it allocates
 * goes through the caller's allocator and comes back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"

typedef struct counting {
    size_t live_bytes, allocs, frees;
    long fail_at; /* fail the Nth allocation (1-based); 0: never */
} counting;

static void *c_alloc(void *user, size_t size, size_t align)
{
    counting *c = user;
    if (c->fail_at && (long)(c->allocs + 1) == c->fail_at) {
        c->allocs++;
        return NULL;
    }
    void *p = NULL;
    if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size ? size : 1))
        return NULL;
    c->allocs++;
    c->live_bytes += size;
    return p;
}

static void c_free(void *user, void *p, size_t size)
{
    counting *c = user;
    c->frees++;
    c->live_bytes -= size;
    free(p);
}

static kp_json_doc *parse_ok(const char *s)
{
    kp_json_doc *d = NULL;
    kp_status st = kp_json_parse(NULL, s, strlen(s), "t.json", &d);
    if (st)
        fprintf(stderr, "unexpected error: %s\n", kp_last_error());
    assert_int_equal(st, KP_OK);
    return d;
}

static void expect_error(const char *s, size_t n, const char *needle)
{
    kp_json_doc *d = (kp_json_doc *)1;
    kp_status st = kp_json_parse(NULL, s, n, "t.json", &d);
    if (st != KP_ERR_FORMAT)
        fprintf(stderr, "accepted: %.*s\n", (int)n, s);
    assert_int_equal(st, KP_ERR_FORMAT);
    assert_null(d);
    if (needle && !strstr(kp_last_error(), needle)) {
        fprintf(stderr, "message '%s' lacks '%s'\n", kp_last_error(), needle);
        fail();
    }
}

static void test_values(void **st)
{
    (void)st;
    kp_json_doc *d = parse_ok(" {\"a\": [1, -2.5, 3e2, 0, -0, 1E-3, 12345678901234567],"
                              " \"b\": {\"c\": null, \"d\": true, \"e\": false}, \"s\": \"x\", \"a\": 7} ");
    const kp_json *r = kp_json_root(d);
    assert_int_equal(r->type, KP_JSON_OBJECT);
    assert_int_equal(r->len, 4);
    const kp_json *a = kp_json_get_type(r, "a", KP_JSON_ARRAY); /* the first of duplicate keys */
    assert_non_null(a);
    assert_int_equal(a->len, 7);
    assert_true(a->u.kids[0].u.num == 1.0);
    assert_true(a->u.kids[1].u.num == -2.5);
    assert_true(a->u.kids[2].u.num == 300.0);
    assert_true(a->u.kids[4].u.num == 0.0);
    assert_true(fabs(a->u.kids[5].u.num - 1e-3) < 1e-18);
    assert_true(a->u.kids[6].u.num == 12345678901234567.0);
    int64_t v;
    assert_true(kp_json_int(&a->u.kids[0], 0, 10, &v) && v == 1);
    assert_false(kp_json_int(&a->u.kids[1], -10, 10, &v));
    const kp_json *b = kp_json_get_type(r, "b", KP_JSON_OBJECT);
    assert_int_equal(kp_json_get(b, "c")->type, KP_JSON_NULL);
    assert_int_equal(kp_json_bool(kp_json_get(b, "d"), 0), 1);
    assert_int_equal(kp_json_bool(kp_json_get(b, "e"), 1), 0);
    assert_int_equal(kp_json_bool(kp_json_get(b, "zz"), 5), 5);
    assert_true(kp_json_str_eq(kp_json_get(r, "s"), "x"));
    assert_null(kp_json_get(a, "x")); /* not an object */
    kp_json_free(d);
    d = parse_ok("[]");
    assert_int_equal(kp_json_root(d)->len, 0);
    kp_json_free(d);
    d = parse_ok("\"top\"");
    assert_true(kp_json_str_eq(kp_json_root(d), "top"));
    kp_json_free(d);
}

static void test_escapes(void **st)
{
    (void)st;
    const char *src = "[\"q\\\"b\\\\s\\/n\\n\\t\\r\\b\\f\", \"\\u00e9\\u4e2d\", \"\\ud83d\\ude00\", \"a\\u0000b\","
                      " \"\xc3\xa9\xe2\x96\x81\"]";
    kp_json_doc *d = parse_ok(src);
    const kp_json *r = kp_json_root(d);
    assert_int_equal(r->u.kids[0].len, 12);
    assert_memory_equal(r->u.kids[0].u.str, "q\"b\\s/n\n\t\r\b\f", 12);
    assert_int_equal(r->u.kids[1].len, 5);
    assert_memory_equal(r->u.kids[1].u.str, "\xc3\xa9\xe4\xb8\xad", 5);
    assert_int_equal(r->u.kids[2].len, 4);
    assert_memory_equal(r->u.kids[2].u.str, "\xf0\x9f\x98\x80", 4);
    assert_int_equal(r->u.kids[3].len, 3); /* NUL is an ordinary byte */
    assert_memory_equal(r->u.kids[3].u.str, "a\0b", 3);
    assert_int_equal(r->u.kids[4].len, 5);
    kp_json_free(d);
}

static void test_strictness(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "",           " ",           "[1,]",        "{\"a\":1,}",   "[1 2]",         "{\"a\" 1}",
        "{a:1}",      "[01]",        "[1.]",        "[.5]",         "[1e]",          "[-]",
        "[+1]",       "[NaN]",       "[Infinity]",  "[tru]",        "[nul]",         "['x']",
        "[\"\\x\"]",  "[\"\\u12\"]", "[\"\\ud800\"]", "[\"\\udc00\"]", "[\"a",         "[1] 2",
        "// c\n[1]",  "[1]/*c*/",    "{\"a\":1",    "]",            "[\"\t\"]",      "[\"\\ud800\\u0041\"]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_error(bad[i], strlen(bad[i]), NULL);
    /* invalid UTF-8 inside and outside strings */
    expect_error("[\"\xff\"]", 5, "UTF-8");
    expect_error("[\"\xc0\xaf\"]", 6, "UTF-8");
    expect_error("[\"\xed\xa0\x80\"]", 7, "UTF-8");
    expect_error("[\"\xe4\xb8\"]", 6, "UTF-8");
    /* a raw NUL byte is a control character */
    expect_error("[\"a\0b\"]", 7, "control");
    /* nesting limit */
    char deep[1200];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 10);
    expect_error(deep, 1010, "nesting");
}

static void test_error_position(void **st)
{
    (void)st;
    const char *s = "{\n  \"a\": 1,\n  \"b\": [1, 2,, 3]\n}";
    expect_error(s, strlen(s), "line 3, column 14");
    expect_error("[1, 2", 5, "ends early");
    const char *u = "{\"a\": \"ok\",\n \"b\": \"\\q\"}";
    expect_error(u, strlen(u), "line 2");
}

/* Every allocation goes through the hooks and is returned, also when one fails midway. */
static void test_allocator(void **st)
{
    (void)st;
    char src[4096];
    size_t n = 0;
    n += (size_t)snprintf(src + n, sizeof src - n, "{\"v\": {");
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(src + n, sizeof src - n, "%s\"t\\u00e9%d\": %d", i ? ", " : "", i, i);
    n += (size_t)snprintf(src + n, sizeof src - n, "}, \"m\": [[1], [2, [3]]]}");
    counting c = {0, 0, 0, 0};
    kp_allocator a = {c_alloc, c_free, &c};
    kp_json_doc *d = NULL;
    assert_int_equal(kp_json_parse(&a, src, n, "t.json", &d), KP_OK);
    assert_int_equal(kp_json_get_type(kp_json_root(d), "v", KP_JSON_OBJECT)->len, 200);
    kp_json_free(d);
    assert_int_equal(c.live_bytes, 0);
    assert_int_equal(c.allocs, c.frees);
    size_t total = c.allocs;
    assert_true(total > 0);
    for (size_t k = 1; k <= total; k++) {
        counting f = {0, 0, 0, (long)k};
        kp_allocator fa = {c_alloc, c_free, &f};
        d = NULL;
        kp_status s = kp_json_parse(&fa, src, n, "t.json", &d);
        assert_int_equal(s, KP_ERR_OUT_OF_MEMORY);
        assert_null(d);
        assert_int_equal(f.live_bytes, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),         cmocka_unit_test(test_escapes),   cmocka_unit_test(test_strictness),
        cmocka_unit_test(test_error_position), cmocka_unit_test(test_allocator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
