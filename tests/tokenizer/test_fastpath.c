/* The hand-written pre-tokenizer matchers against PCRE2 running the same patterns: identical
 * match lists on every corpus string, on the 1 MB benchmark text, and on random strings built
 * from the characters where the patterns are delicate (apostrophes and contractions, U+017F,
 * \s edge cases like U+0085/U+180E/U+FEFF, letters and digits of many scripts including
 * Unicode 15-16 additions, combining marks, emoji, NUL, and invalid UTF-8). */
#include "tok_util.h"

#include "lib/tokenizer/pretok.h"

static const char *const atoms[] = {
    "a", "b", "Z", "x", "s", "S", "t", "T", "re", "RE", "ve", "m", "ll", "LL", "d", "D", "'", "'", "'s", "'T",
    "'re", "'Ve", "'ll", "'d", "\xC5\xBF", /* U+017F long s */
    "0", "7", "42", "123", "9999", " ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\x0B", "\x0C",
    "\xC2\xA0",         /* NBSP */
    "\xC2\x85",         /* NEL */
    "\xE1\xA0\x8E",     /* U+180E */
    "\xEF\xBB\xBF",     /* U+FEFF */
    "\xE2\x80\x82",     /* EN SPACE */
    "\xE3\x80\x80",     /* IDEOGRAPHIC SPACE */
    "\xE2\x80\xA8",     /* LINE SEPARATOR */
    "!", "?", ".", ",", "-", "_", "(", ")", "\"", "#", "$", "%", "<|", "|>", "/", "\\",
    "\xC3\xA9",         /* é */
    "\xD0\xB6",         /* ж */
    "\xE4\xB8\xAD",     /* 中 */
    "\xED\x95\x9C",     /* 한 */
    "\xD9\xA3",         /* ARABIC-INDIC THREE */
    "\xC2\xB2",         /* superscript two */
    "\xE2\x91\xA0",     /* circled one */
    "\xE2\x85\xAB",     /* ROMAN NUMERAL TWELVE */
    "\xEF\xBC\x91",     /* FULLWIDTH ONE */
    "\xCC\x81",         /* combining acute */
    "\xF0\x9F\x98\x80", /* emoji */
    "\xE2\x80\x8D",     /* ZWJ */
    "\xF0\x91\xBC\x84", /* U+11F04 Kawi letter (Unicode 15) */
    "\xF0\xAE\xAF\xB0", /* U+2EBF0 CJK ext. I (Unicode 15.1) */
    "\xF0\x90\xB5\x90", /* U+10D50 Garay (Unicode 16) */
    "\xF0\x90\xB5\x80", /* U+10D40 Garay digit (Unicode 16) */
    "\xF0\x9E\x93\xB0", /* U+1E4F0 Nag Mundari digit (Unicode 15) */
    "\xF4\x8F\xBF\xBF", /* U+10FFFF */
    "\xEE\x80\x80",     /* private use */
    "\xFF",             /* invalid bytes */
    "\x80", "\xE4\xB8", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80",
};

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void dump(const char *s, size_t n)
{
    fprintf(stderr, "    text: \"");
    for (size_t i = 0; i < n && i < 200; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '\\')
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02X", c);
    }
    fprintf(stderr, "\"\n");
}

typedef struct pat {
    kp_fast_kind kind;
    int fold;
    kp_regex *re;
} pat;

/* Returns 1 if the fast path and the regex agree on s. */
static int agree(const pat *p, const char *s, size_t n)
{
    kp_span_vec a = {NULL, 0, 0, kp_allocator_default()}, b = {NULL, 0, 0, kp_allocator_default()};
    assert_int_equal(kp_fast_find_all(p->kind, p->fold, s, n, &a), KP_OK);
    assert_int_equal(kp_regex_find_all(p->re, s, n, &b), KP_OK);
    int same = a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len * sizeof *a.data) == 0);
    if (!same) {
        fprintf(stderr, "  DIFFERENT (kind %d, fold %d):\n", (int)p->kind, p->fold);
        dump(s, n);
        size_t k = 0;
        while (k < a.len && k < b.len && a.data[k].start == b.data[k].start && a.data[k].end == b.data[k].end)
            k++;
        fprintf(stderr, "    first difference at match %zu: fast [%zu,%zu) regex [%zu,%zu)\n", k,
                k < a.len ? a.data[k].start : 0, k < a.len ? a.data[k].end : 0, k < b.len ? b.data[k].start : 0,
                k < b.len ? b.data[k].end : 0);
    }
    kp_span_vec_free(&a);
    kp_span_vec_free(&b);
    return same;
}

static void compile_all(pat *ps)
{
    const kp_fast_kind kinds[5] = {KP_FAST_LLAMA3, KP_FAST_LLAMA3, KP_FAST_QWEN2, KP_FAST_QWEN2, KP_FAST_GPT2};
    const int folds[5] = {1, 0, 1, 0, 0};
    for (int i = 0; i < 5; i++) {
        ps[i].kind = kinds[i];
        ps[i].fold = folds[i];
        const char *src = kp_fast_pattern(kinds[i], folds[i]);
        assert_non_null(src);
        int fold = -1;
        assert_int_equal(kp_fast_detect(src, strlen(src), &fold), kinds[i]);
        assert_int_equal(fold, folds[i]);
        assert_int_equal(kp_regex_compile(NULL, src, strlen(src), &ps[i].re), KP_OK);
    }
}

static void free_all(pat *ps)
{
    for (int i = 0; i < 5; i++)
        kp_regex_free(ps[i].re);
}

static void test_corpus(void **st)
{
    (void)st;
    char path[1024];
    if (!kp_test_file(path, sizeof path, "tokenizers/expected/corpus.jsonl")) {
        skip();
        return;
    }
    tcases cs;
    assert_true(load_cases(path, &cs));
    pat ps[5];
    compile_all(ps);
    size_t bad = 0;
    for (size_t i = 0; i < cs.n; i++)
        for (int k = 0; k < 5; k++)
            bad += !agree(&ps[k], cs.c[i].text, cs.c[i].text_len);
    fprintf(stderr, "  corpus: %zu strings x 5 patterns, %zu differences\n", cs.n, bad);
    free_all(ps);
    free_cases(&cs);
    assert_int_equal(bad, 0);
}

static void test_bench_text(void **st)
{
    (void)st;
    char path[1024];
    if (!kp_test_file(path, sizeof path, "tokenizers/bench_1mb.txt")) {
        skip();
        return;
    }
    size_t n = 0;
    char *text = kp_test_slurp(path, &n);
    assert_non_null(text);
    pat ps[5];
    compile_all(ps);
    size_t bad = 0;
    for (int k = 0; k < 5; k++)
        bad += !agree(&ps[k], text, n);
    free_all(ps);
    free(text);
    assert_int_equal(bad, 0);
}

static void test_random(void **st)
{
    (void)st;
    pat ps[5];
    compile_all(ps);
    const size_t n_atoms = sizeof atoms / sizeof atoms[0];
    char buf[512];
    size_t bad = 0, runs = 30000;
    for (size_t r = 0; r < runs && bad < 10; r++) {
        size_t len = 0, parts = 1 + next_rand() % 24;
        for (size_t j = 0; j < parts; j++) {
            const char *a = atoms[next_rand() % n_atoms];
            size_t al = strlen(a);
            if (len + al >= sizeof buf)
                break;
            memcpy(buf + len, a, al);
            len += al;
        }
        if (next_rand() % 16 == 0 && len < sizeof buf - 1)
            buf[len++] = 0; /* NUL is an ordinary byte */
        for (int k = 0; k < 5; k++)
            bad += !agree(&ps[k], buf, len);
    }
    fprintf(stderr, "  random: %zu strings x 5 patterns, %zu differences\n", runs, bad);
    free_all(ps);
    assert_int_equal(bad, 0);
}

/* Random bytes, for robustness against anything the atoms miss. */
static void test_random_bytes(void **st)
{
    (void)st;
    pat ps[5];
    compile_all(ps);
    char buf[64];
    size_t bad = 0;
    for (int r = 0; r < 20000 && bad < 10; r++) {
        size_t len = next_rand() % sizeof buf;
        for (size_t i = 0; i < len; i++) {
            uint64_t x = next_rand();
            /* bias towards ASCII and lead bytes so that valid sequences occur too */
            buf[i] = (char)(x % 4 == 0 ? 0x20 + (x >> 8) % 0x60 : (x >> 8) & 0xFF);
        }
        for (int k = 0; k < 5; k++)
            bad += !agree(&ps[k], buf, len);
    }
    free_all(ps);
    assert_int_equal(bad, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_bench_text),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_random_bytes),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
