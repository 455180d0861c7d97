/* ByteLevel add_prefix_space: the pre-tokenizer adds the space by appending a copy of the piece
 * to its own scratch text, which once read freed memory whenever that append grew the buffer
 * (wrong ids in a release build, heap-use-after-free under ASan). The Llama 3 tokenizer.json
 * with add_prefix_space switched on must tokenize T exactly as the unmodified one tokenizes
 * " " + T. Hugging Face adds the space to every piece of the preceding Split that lacks one, so
 * the texts are words between single spaces, where only the first piece lacks one. */
#include <unistd.h>

#include "tok_util.h"

static const char long_text[] =
    "a long tail of words to make the scratch buffer grow well past its first allocation then some more "
    "words and some more and a few more for good measure and then again a few more words until it is long";

static const char *const texts[] = {
    "Hello world this is a test of the prefix space with twelve or more words",
    "Hello world this is a test one two three four five six seven eight nine ten eleven twelve thirteen",
    "word",
    " already starts with a space",
    long_text,
    "ünïcödé wörds ànd 漢字 and emoji 🙂 mixed in with plain ascii text repeated many many many times over",
};

static char tmp_path[64];

static int make_modified(void **state)
{
    (void)state;
    char src[1024];
    if (!kp_test_file(src, sizeof src, "tokenizers/llama3/tokenizer.json"))
        return 0;
    size_t len;
    char *json = kp_test_slurp(src, &len);
    assert_non_null(json);
    /* the pre_tokenizer's ByteLevel is the first add_prefix_space in the file (the
     * post-processor and decoder ones follow and are true already) */
    const char *key = "\"add_prefix_space\": false";
    char *at = strstr(json, key);
    assert_non_null(at);
    assert_true(strstr(json, "\"pre_tokenizer\"") < at && at < strstr(json, "\"post_processor\""));
    snprintf(tmp_path, sizeof tmp_path, "/tmp/kp-prefix-space-XXXXXX.json");
    int fd = mkstemps(tmp_path, 5);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    assert_non_null(f);
    size_t head = (size_t)(at - json);
    fwrite(json, 1, head, f);
    fputs("\"add_prefix_space\": true", f);
    fputs(at + strlen(key), f);
    assert_int_equal(fclose(f), 0);
    free(json);
    return 0;
}

static int remove_modified(void **state)
{
    (void)state;
    if (tmp_path[0])
        unlink(tmp_path);
    return 0;
}

/* Encodes t with `with` and " " + t with `without`; fails on any difference. */
static void check_text(kp_tokenizer *with, kp_tokenizer *without, const char *t)
{
    size_t n = strlen(t);
    char *spaced = malloc(n + 2);
    spaced[0] = ' ';
    memcpy(spaced + 1, t, n + 1);
    /* a piece that starts with a space gets none added */
    const char *want_text = t[0] == ' ' ? t : spaced;
    kp_status st1, st2;
    size_t na, nb;
    int32_t *a = encode(with, t, n, KP_TOKENIZE_PARSE_SPECIAL, &na, &st1);
    int32_t *b = encode(without, want_text, strlen(want_text), KP_TOKENIZE_PARSE_SPECIAL, &nb, &st2);
    assert_int_equal(st1, KP_OK);
    assert_int_equal(st2, KP_OK);
    if (!same_ids(a, na, b, nb)) {
        fprintf(stderr, "text (%zu bytes): '%s'\n", n, t);
        print_ids("add_prefix_space", a, na);
        print_ids("\" \" + text", b, nb);
        fail();
    }
    char *out = malloc(2 * n + 16);
    size_t olen;
    assert_int_equal(kp_detokenize(with, a, na, out, 2 * n + 16, &olen), KP_OK);
    assert_int_equal(olen, strlen(want_text));
    assert_memory_equal(out, want_text, olen);
    free(out);
    free(a);
    free(b);
    free(spaced);
}

static void prefix_space_equals_leading_space(void **state)
{
    (void)state;
    char src[1024];
    if (!tmp_path[0] || !kp_test_file(src, sizeof src, "tokenizers/llama3/tokenizer.json"))
        skip();
    kp_tokenizer *with, *without;
    assert_int_equal(kp_tokenizer_load(tmp_path, NULL, &with), KP_OK);
    assert_int_equal(kp_tokenizer_load(src, NULL, &without), KP_OK);
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        check_text(with, without, texts[i]);
    /* Every length up to 600 bytes, so that the prefix-space copy meets every growth of the
     * scratch buffer (capacities are powers of two from 64): "Hello" then " a" and " bb" words. */
    char buf[640];
    for (size_t len = 8; len <= 600; len++) {
        size_t rest = len - 5, threes = rest % 2, pos = 5;
        memcpy(buf, "Hello", 5);
        for (size_t k = 0; k < threes; k++, pos += 3)
            memcpy(buf + pos, " bb", 3);
        while (pos < len) {
            memcpy(buf + pos, " a", 2);
            pos += 2;
        }
        buf[pos] = 0;
        assert_int_equal(pos, len);
        check_text(with, without, buf);
    }
    kp_tokenizer_free(with);
    kp_tokenizer_free(without);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prefix_space_equals_leading_space),
    };
    return cmocka_run_group_tests(tests, make_modified, remove_modified);
}
