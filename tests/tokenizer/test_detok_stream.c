/* Streaming detokenization never splits a UTF-8 character across emitted chunks, and the chunks
 * add up to what kp_detokenize gives for the whole sequence. Runs the corpus through byte-level
 * (Llama 3, Qwen) and byte-fallback (Llama 2) vocabularies, where multi-byte characters are
 * spread over several tokens, and random id sequences. */
#include "tok_util.h"

/* Length of the valid UTF-8 sequence at s[0..n), 0 if none (an independent check). */
static size_t seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!k || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (k == 3 && ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F)))
        return 0;
    if (k == 4 && ((c == 0xF0 && s[1] < 0x90) || (c == 0xF4 && s[1] > 0x8F)))
        return 0;
    return k;
}

/* Marks in `inside` the positions that fall strictly inside a valid multi-byte sequence. */
static void mark_inside(const char *s, size_t n, unsigned char *inside)
{
    memset(inside, 0, n + 1);
    for (size_t i = 0; i < n;) {
        size_t k = seq_len((const unsigned char *)s + i, n - i);
        if (k > 1)
            for (size_t j = 1; j < k; j++)
                inside[i + j] = 1;
        i += k ? k : 1;
    }
}

/* Streams ids, checks every chunk boundary; returns 0 on a violation. */
static int stream_ok(const kp_tokenizer *t, const int32_t *ids, size_t n, const char *label)
{
    kp_detok_stream ds;
    kp_detok_stream_init(&ds);
    kp_buf out;
    kp_buf_init(&out, NULL);
    size_t *bounds = malloc((n + 2) * sizeof *bounds);
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(kp_detok_stream_push(t, &ds, ids[i], &out), KP_OK);
        bounds[nb++] = out.len;
    }
    assert_int_equal(kp_detok_stream_flush(&ds, &out), KP_OK);
    size_t cap = out.len + 64, len = 0;
    char *whole = malloc(cap);
    assert_int_equal(kp_detokenize(t, ids, n, whole, cap, &len), KP_OK);
    int ok = len == out.len && memcmp(whole, out.data ? out.data : "", len) == 0;
    if (!ok)
        fprintf(stderr, "  %s: streamed text differs from kp_detokenize\n", label);
    unsigned char *inside = malloc(out.len + 1);
    mark_inside(out.data ? out.data : "", out.len, inside);
    for (size_t b = 0; b < nb && ok; b++) {
        if (bounds[b] < out.len && inside[bounds[b]]) {
            fprintf(stderr, "  %s: a chunk ends inside a character (after token %zu, byte %zu)\n", label, b,
                    bounds[b]);
            ok = 0;
        }
    }
    free(inside);
    free(whole);
    free(bounds);
    kp_buf_free(&out);
    return ok;
}

static kp_tokenizer *load_rel(const char *rel)
{
    char path[1024];
    if (!kp_test_file(path, sizeof path, rel))
        return NULL;
    kp_tokenizer *t = NULL;
    assert_int_equal(kp_tokenizer_load(path, NULL, &t), KP_OK);
    return t;
}

static void check_corpus(const char *rel)
{
    char cpath[1024];
    kp_tokenizer *t = load_rel(rel);
    if (!t || !kp_test_file(cpath, sizeof cpath, "tokenizers/expected/corpus.jsonl")) {
        kp_tokenizer_free(t);
        skip();
        return;
    }
    tcases cs;
    assert_true(load_cases(cpath, &cs));
    size_t bad = 0, multi = 0;
    for (size_t i = 0; i < cs.n; i++) {
        size_t n;
        kp_status st;
        int32_t *ids = encode(t, cs.c[i].text, cs.c[i].text_len, KP_TOKENIZE_PARSE_SPECIAL, &n, &st);
        assert_non_null(ids);
        for (size_t k = 0; k < cs.c[i].text_len; k++)
            if ((unsigned char)cs.c[i].text[k] >= 0x80) {
                multi++;
                break;
            }
        bad += !stream_ok(t, ids, n, cs.c[i].id);
        free(ids);
    }
    fprintf(stderr, "  %s: %zu texts (%zu with multi-byte characters), %zu bad\n", rel, cs.n, multi, bad);
    free_cases(&cs);
    kp_tokenizer_free(t);
    assert_int_equal(bad, 0);
}

static void test_llama3(void **s)
{
    (void)s;
    check_corpus("tokenizers/llama3/tokenizer.json");
}
static void test_qwen3(void **s)
{
    (void)s;
    check_corpus("tokenizers/qwen3/tokenizer.json");
}
static void test_llama2_sp(void **s)
{
    (void)s;
    check_corpus("tokenizers/llama2-sp/tokenizer.json");
}
static void test_llama2_model(void **s)
{
    (void)s;
    check_corpus("models/llama2-tokenizer/tokenizer.model");
}

/* Random ids: single-byte tokens of all kinds mixed with whole words. */
static void test_random_ids(void **s)
{
    (void)s;
    kp_tokenizer *t = load_rel("tokenizers/llama3/tokenizer.json");
    if (!t) {
        skip();
        return;
    }
    uint64_t x = 0xDEADBEEFCAFEull;
    size_t bad = 0;
    for (int r = 0; r < 2000; r++) {
        int32_t ids[24];
        size_t n = 1 + (size_t)(r % 24);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            /* ids below 256 are the single bytes of this vocabulary */
            ids[i] = (int32_t)(x % 4 ? x % 256 : x % 128000);
        }
        char label[32];
        snprintf(label, sizeof label, "random #%d", r);
        bad += !stream_ok(t, ids, n, label);
    }
    kp_tokenizer_free(t);
    assert_int_equal(bad, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama3),       cmocka_unit_test(test_qwen3),      cmocka_unit_test(test_llama2_sp),
        cmocka_unit_test(test_llama2_model), cmocka_unit_test(test_random_ids),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
