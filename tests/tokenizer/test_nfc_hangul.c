/* U+11A7 after a Hangul LV syllable: utf8proc's NFC composes the pair as if U+11A7 were a
 * trailing consonant and drops it, so Qwen 3 (NFC normalizer) lost the character. Found by
 * tests/tokenizer/hf_diff.py; the expected ids are Hugging Face tokenizers 0.23.3's. */
#include "tok_util.h"
#include "lib/tokenizer/unicode.h"

static void nfc_keeps_u11a7(void **state)
{
    (void)state;
    static const char *const texts[] = {"\xea\xb0\x80\xe1\x86\xa7x", "\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa7",
                                        "\xe1\x86\xa7", "a\xcc\x81\xe1\x86\xa7\xcc\x81"};
    /* each is already in NFC (U+11A7 composes with nothing), except the last's a + U+0301 */
    static const char *const want[] = {"\xea\xb0\x80\xe1\x86\xa7x", "\xea\xb0\x80\xe1\x86\xa7", "\xe1\x86\xa7",
                                       "\xc3\xa1\xe1\x86\xa7\xcc\x81"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        kp_buf out;
        kp_buf_init(&out, NULL);
        assert_int_equal(kp_unicode_normalize(KP_NF_NFC, texts[i], strlen(texts[i]), &out), KP_OK);
        assert_int_equal(out.len, strlen(want[i]));
        assert_memory_equal(out.data, want[i], out.len);
        kp_buf_free(&out);
    }
}

static void qwen3_keeps_u11a7(void **state)
{
    (void)state;
    char path[1024];
    if (!kp_test_file(path, sizeof path, "tokenizers/qwen3/tokenizer.json"))
        skip();
    kp_tokenizer *t;
    assert_int_equal(kp_tokenizer_load(path, NULL, &t), KP_OK);
    const char text[] = "\xec\x96\xb4\xe1\x86\xa7"; /* U+C5B4 U+11A7 */
    const int32_t want[] = {31079, 124137, 100};
    kp_status st;
    size_t n;
    int32_t *ids = encode(t, text, strlen(text), KP_TOKENIZE_PARSE_SPECIAL, &n, &st);
    assert_int_equal(st, KP_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(ids, want, sizeof want);
    free(ids);
    kp_tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nfc_keeps_u11a7),
        cmocka_unit_test(qwen3_keeps_u11a7),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
