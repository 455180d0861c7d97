/* Malformed tokenizer files and awkward input text: each gives a clear status and message (never
 * a crash), and the documented behaviour for invalid UTF-8 and NUL bytes holds. */
#include "tok_util.h"

static void expect_fail(kp_status got, kp_status want, const char *needle)
{
    if (got != want)
        fprintf(stderr, "status %d (%s), wanted %d; message: %s\n", got, kp_status_str(got), want, kp_last_error());
    assert_int_equal(got, want);
    assert_true(kp_last_error()[0] != 0);
    if (needle && !strstr(kp_last_error(), needle)) {
        fprintf(stderr, "message '%s' lacks '%s'\n", kp_last_error(), needle);
        fail();
    }
}

static kp_status load_json(const char *s, size_t n, kp_tokenizer **t)
{
    *t = (kp_tokenizer *)1;
    kp_status st = kp_tokenizer_hf_json_from_memory(NULL, s, n, NULL, 0, "t.json", t);
    if (st)
        assert_null(*t);
    return st;
}

/* A tiny valid byte-level BPE tokenizer.json; %s slots: merges, pre_tokenizer, added tokens. */
static char *mini_json(const char *merges, const char *pre, const char *added, const char *model_type)
{
    char *b = malloc(8192);
    snprintf(b, 8192,
             "{\"version\":\"1.0\",\"added_tokens\":[%s],\"normalizer\":null,\"pre_tokenizer\":%s,"
             "\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"},"
             "\"model\":{\"type\":\"%s\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"\\u0120\":3,\"\\u0120ab\":4},"
             "\"merges\":[%s]}}",
             added, pre, model_type, merges);
    return b;
}

static const char *const bl_pre = "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}";

static void test_mini_ok(void **st)
{
    (void)st;
    char *j = mini_json("\"a b\", \"\\u0120 ab\"", bl_pre, "{\"id\":5,\"content\":\"<x>\",\"special\":true}", "BPE");
    kp_tokenizer *t;
    assert_int_equal(load_json(j, strlen(j), &t), KP_OK);
    size_t n;
    kp_status s;
    int32_t *ids = encode(t, "ab ab<x>", 8, KP_TOKENIZE_PARSE_SPECIAL, &n, &s);
    assert_non_null(ids);
    static const int32_t want[] = {2, 4, 5};
    assert_true(same_ids(ids, n, want, 3));
    free(ids);
    kp_tokenizer_free(t);
    free(j);
}

static void test_truncated_json(void **st)
{
    (void)st;
    char path[1024];
    if (!kp_test_file(path, sizeof path, "tokenizers/tok512-sp/tokenizer.json")) {
        skip();
        return;
    }
    size_t n = 0;
    char *full = kp_test_slurp(path, &n);
    assert_non_null(full);
    kp_tokenizer *t;
    assert_int_equal(load_json(full, n, &t), KP_OK);
    kp_tokenizer_free(t);
    size_t tried = 0;
    for (size_t cut = 0; cut < n; cut += (cut < 64 || cut > n - 64) ? 1 : 37) {
        /* trailing whitespace after the closing brace would still be complete */
        size_t k = cut;
        kp_status s = load_json(full, k, &t);
        expect_fail(s, KP_ERR_FORMAT, "t.json");
        tried++;
    }
    fprintf(stderr, "  %zu truncations, all KP_ERR_FORMAT\n", tried);
    free(full);
}

static void test_invalid_json(void **st)
{
    (void)st;
    kp_tokenizer *t;
    static const char *const bad[] = {
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0,}, \"merges\": []}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0} \"merges\": []}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a\\qb\"]}}",
        "[1, 2, 3]",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0.5}, \"merges\": []}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": [], \"merges\": []}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}",
        "{\"nomodel\": 1}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\xff\": 0}, \"merges\": []}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_fail(load_json(bad[i], strlen(bad[i]), &t), KP_ERR_FORMAT, "t.json");
}

static void test_bad_merges(void **st)
{
    (void)st;
    kp_tokenizer *t;
    char *j = mini_json("\"a b\", \"a zz\"", bl_pre, "", "BPE");
    expect_fail(load_json(j, strlen(j), &t), KP_ERR_FORMAT, "merges entry 1");
    free(j);
    j = mini_json("\"b a\"", bl_pre, "", "BPE"); /* "ba" is no token */
    expect_fail(load_json(j, strlen(j), &t), KP_ERR_FORMAT, "not in the vocabulary");
    free(j);
    j = mini_json("\"ab\"", bl_pre, "", "BPE");
    expect_fail(load_json(j, strlen(j), &t), KP_ERR_FORMAT, "merges entry 0");
    free(j);
    j = mini_json("[\"a\", \"b\"], 7", bl_pre, "", "BPE");
    expect_fail(load_json(j, strlen(j), &t), KP_ERR_FORMAT, "merges entry 1");
    free(j);
}

static void test_bad_regex(void **st)
{
    (void)st;
    kp_tokenizer *t;
    char *j = mini_json("\"a b\"",
                        "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(a|b\"},\"behavior\":\"Isolated\",\"invert\":false}",
                        "", "BPE");
    expect_fail(load_json(j, strlen(j), &t), KP_ERR_FORMAT, "does not compile");
    free(j);
    j = mini_json("\"a b\"",
                  "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[\\\\p{Bogus}]\"},\"behavior\":\"Isolated\"}", "", "BPE");
    expect_fail(load_json(j, strlen(j), &t), KP_ERR_FORMAT, "regex");
    free(j);
}

static void test_unsupported(void **st)
{
    (void)st;
    kp_tokenizer *t;
    char *j = mini_json("\"a b\"", bl_pre, "", "WordPiece");
    expect_fail(load_json(j, strlen(j), &t), KP_ERR_UNSUPPORTED, "WordPiece");
    free(j);
    j = mini_json("\"a b\"", "{\"type\":\"BertPreTokenizer\"}", "", "BPE");
    expect_fail(load_json(j, strlen(j), &t), KP_ERR_UNSUPPORTED, "BertPreTokenizer");
    free(j);
}

static void test_truncated_protobuf(void **st)
{
    (void)st;
    char path[1024];
    if (!kp_test_file(path, sizeof path, "models/stories260K/tok512.model")) {
        skip();
        return;
    }
    size_t n = 0;
    char *full = kp_test_slurp(path, &n);
    assert_non_null(full);
    kp_tokenizer *t = NULL;
    const uint8_t *d = (const uint8_t *)full;
    assert_int_equal(kp_tokenizer_spm_model_new(NULL, d, n, &t), KP_OK);
    kp_tokenizer_free(t);
    /* cutting the last few bytes lands inside the last field (the normalizer spec) */
    for (size_t k = 1; k <= 8; k++) {
        t = (kp_tokenizer *)1;
        expect_fail(kp_tokenizer_spm_model_new(NULL, d, n - k, &t), KP_ERR_FORMAT, "truncated");
        assert_null(t);
    }
    /* anywhere: an error or (at a field boundary) a shorter but valid model, never a crash */
    size_t errors = 0;
    for (size_t cut = 0; cut < n; cut += 7) {
        t = NULL;
        kp_status s = kp_tokenizer_spm_model_new(NULL, d, cut, &t);
        if (s) {
            assert_true(s == KP_ERR_FORMAT || s == KP_ERR_UNSUPPORTED);
            assert_null(t);
            errors++;
        }
        kp_tokenizer_free(t);
    }
    assert_true(errors > 0);
    /* garbage */
    uint8_t junk[300];
    uint64_t x = 88172645463325252ull;
    for (int r = 0; r < 200; r++) {
        for (size_t i = 0; i < sizeof junk; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            junk[i] = (uint8_t)x;
        }
        t = NULL;
        kp_status s = kp_tokenizer_spm_model_new(NULL, junk, (size_t)(x % sizeof junk), &t);
        if (s)
            assert_null(t);
        kp_tokenizer_free(t);
    }
    free(full);
}

static kp_tokenizer *load_rel(const char *rel)
{
    char path[1024];
    if (!kp_test_file(path, sizeof path, rel))
        return NULL;
    kp_tokenizer *t = NULL;
    if (kp_tokenizer_load(path, NULL, &t))
        fprintf(stderr, "%s\n", kp_last_error());
    assert_non_null(t);
    return t;
}

/* Byte-level vocabularies encode the raw bytes; ids from the vocabulary in tokenizer.json:
 * "a" 64, "b" 65, "ÿ" (byte 0xFF) 187. */
static void test_invalid_utf8_bytelevel(void **st)
{
    (void)st;
    kp_tokenizer *t = load_rel("tokenizers/llama3/tokenizer.json");
    if (!t) {
        skip();
        return;
    }
    size_t n;
    kp_status s;
    int32_t *ids = encode(t, "a\xff" "b", 3, KP_TOKENIZE_PARSE_SPECIAL, &n, &s);
    static const int32_t want[] = {64, 187, 65};
    assert_non_null(ids);
    assert_true(same_ids(ids, n, want, 3));
    free(ids);
    /* any bytes at all come back from decode unchanged */
    uint64_t x = 0x1234567;
    for (int r = 0; r < 300; r++) {
        char buf[48];
        size_t len = (size_t)(r % 48);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = (char)x;
        }
        ids = encode(t, buf, len, 0, &n, &s);
        assert_non_null(ids);
        char out[256];
        size_t olen;
        assert_int_equal(kp_detokenize(t, ids, n, out, sizeof out, &olen), KP_OK);
        assert_int_equal(olen, len);
        assert_memory_equal(out, buf, len);
        free(ids);
    }
    kp_tokenizer_free(t);
}

/* Other vocabularies see U+FFFD in place of each invalid byte. */
static void check_fffd(const char *rel)
{
    kp_tokenizer *t = load_rel(rel);
    if (!t) {
        skip();
        return;
    }
    static const char *const pairs[][2] = {
        {"a\xff" "b", "a\xef\xbf\xbd" "b"},
        {"\x80\x80 x", "\xef\xbf\xbd\xef\xbf\xbd x"},
        {"\xe4\xb8 \xe4\xb8\xad", "\xef\xbf\xbd\xef\xbf\xbd \xe4\xb8\xad"},
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        size_t na, nb;
        kp_status s;
        int32_t *a = encode(t, pairs[i][0], strlen(pairs[i][0]), KP_TOKENIZE_PARSE_SPECIAL, &na, &s);
        int32_t *b = encode(t, pairs[i][1], strlen(pairs[i][1]), KP_TOKENIZE_PARSE_SPECIAL, &nb, &s);
        assert_non_null(a);
        assert_non_null(b);
        if (!same_ids(a, na, b, nb)) {
            print_ids("invalid", a, na);
            print_ids("U+FFFD ", b, nb);
            fail();
        }
        free(a);
        free(b);
    }
    kp_tokenizer_free(t);
}

static void test_invalid_utf8_spm(void **st)
{
    (void)st;
    check_fffd("models/llama2-tokenizer/tokenizer.model");
    check_fffd("tokenizers/llama2-sp/tokenizer.json");
}

/* NUL is an ordinary byte. Expected ids: Hugging Face tokenizers 0.23.3 on the same files. */
static void test_nul_bytes(void **st)
{
    (void)st;
    static const struct {
        const char *rel;
        int32_t want[4];
        size_t n;
    } cases[] = {
        {"tokenizers/llama3/tokenizer.json", {64, 188, 65}, 3},
        {"tokenizers/qwen3/tokenizer.json", {64, 188, 65}, 3},
        {"tokenizers/llama2-sp/tokenizer.json", {263, 3, 29890}, 3},
        {"models/llama2-tokenizer/tokenizer.model", {263, 3, 29890}, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kp_tokenizer *t = load_rel(cases[i].rel);
        if (!t)
            continue;
        size_t n;
        kp_status s;
        int32_t *ids = encode(t, "a\0b", 3, 0, &n, &s);
        assert_non_null(ids);
        if (!same_ids(ids, n, cases[i].want, cases[i].n)) {
            fprintf(stderr, "  %s\n", cases[i].rel);
            print_ids("got", ids, n);
            fail();
        }
        free(ids);
        kp_tokenizer_free(t);
    }
}

static void test_buffer_too_small(void **st)
{
    (void)st;
    kp_tokenizer *t = load_rel("tokenizers/qwen3/tokenizer.json");
    if (!t) {
        skip();
        return;
    }
    const char *s = "The quick brown fox jumps over the lazy dog.";
    int32_t ids[64];
    size_t n = 0;
    assert_int_equal(kp_tokenize(t, s, strlen(s), 0, ids, 64, &n), KP_OK);
    size_t need = n;
    assert_true(need > 3);
    n = 0;
    assert_int_equal(kp_tokenize(t, s, strlen(s), 0, ids, 3, &n), KP_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, need);
    n = 7;
    assert_int_equal(kp_tokenize(t, s, strlen(s), 0, NULL, 0, &n), KP_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, need);
    assert_int_equal(kp_tokenize(t, "", 0, 0, NULL, 0, &n), KP_OK);
    assert_int_equal(n, 0);
    kp_tokenizer_free(t);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mini_ok),
        cmocka_unit_test(test_truncated_json),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_bad_merges),
        cmocka_unit_test(test_bad_regex),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_truncated_protobuf),
        cmocka_unit_test(test_invalid_utf8_bytelevel),
        cmocka_unit_test(test_invalid_utf8_spm),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_buffer_too_small),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
