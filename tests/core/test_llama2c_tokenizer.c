/* llama2.c tokenizer.bin: prompt ids as llama2.c's own encode() gives them (FORMATS doc table,
 * checked there against run.c), for the 512-token and the 32000-token vocabularies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <kuiper/kuiper.h>

#include "testdata.h"

typedef struct tcase {
    const char *text;
    int32_t ids[16];
    int n;
} tcase;

static const tcase tok512_cases[] = {
    {"", {1}, 1},
    {"Once upon a time", {1, 403, 407, 261, 378}, 5},
    {"The little dog", {1, 291, 376, 400, 428}, 5},
    {"Lily and Tom went to the park", {1, 317, 269, 274, 287, 263, 377, 267, 265, 282, 295, 433}, 12},
    {"Zzz 123 !!", {1, 410, 469, 451, 451, 410, 475, 479, 472, 410, 443, 443}, 12},
};

static const tcase llama2_cases[] = {
    {"", {1}, 1},
    {"Once upon a time", {1, 9038, 2501, 263, 931}, 5},
    {"The little dog", {1, 450, 2217, 11203}, 4},
    {"Lily and Tom went to the park", {1, 365, 2354, 322, 4335, 3512, 304, 278, 14089}, 9},
    {"Zzz 123 !!", {1, 796, 5617, 29871, 29896, 29906, 29941, 21443}, 8},
};

static void run_cases(const char *rel, int32_t n_vocab, const tcase *cases, size_t n_cases)
{
    char path[1024];
    if (!kp_test_file(path, sizeof path, rel))
        skip();
    kp_tokenizer_params p;
    kp_tokenizer_params_init(&p);
    p.n_vocab = n_vocab;
    kp_tokenizer *t;
    assert_int_equal(kp_tokenizer_load(path, &p, &t), KP_OK);
    assert_int_equal(kp_tokenizer_n_vocab(t), n_vocab);
    for (size_t c = 0; c < n_cases; c++) {
        int32_t ids[64];
        size_t n;
        const char *text = cases[c].text;
        assert_int_equal(kp_tokenize(t, text, strlen(text), KP_TOKENIZE_ADD_SPECIAL, ids, 64, &n), KP_OK);
        assert_int_equal((int)n, cases[c].n);
        assert_memory_equal(ids, cases[c].ids, n * sizeof *ids);
        /* Decoding drops the dummy-prefix space after BOS and gives the text back. */
        char buf[256];
        size_t len;
        assert_int_equal(kp_detokenize(t, ids, n, buf, sizeof buf, &len), KP_OK);
        /* BOS renders as llama2.c's stored "\n<s>\n"; compare what follows it. */
        size_t skip_bos = 0;
        assert_true(len >= strlen(text));
        skip_bos = len - strlen(text);
        assert_memory_equal(buf + skip_bos, text, strlen(text));
        /* A too-small buffer reports the size needed. */
        size_t need;
        if (n > 1) {
            assert_int_equal(kp_tokenize(t, text, strlen(text), KP_TOKENIZE_ADD_SPECIAL, ids, 1, &need),
                             KP_ERR_BUFFER_TOO_SMALL);
            assert_int_equal(need, n);
        }
    }
    kp_tokenizer_free(t);
}

static void tok512(void **state)
{
    (void)state;
    run_cases("models/stories260K/tok512.bin", 512, tok512_cases, sizeof tok512_cases / sizeof *tok512_cases);
}

static void llama2_32000(void **state)
{
    (void)state;
    run_cases("models/llama2-tokenizer/tokenizer.bin", 32000, llama2_cases,
              sizeof llama2_cases / sizeof *llama2_cases);
}

/* Without a count the loader walks the whole file; bytes >= 0x80 fall back to <0xXX> ids. */
static void byte_fallback_and_count(void **state)
{
    (void)state;
    char path[1024];
    if (!kp_test_file(path, sizeof path, "models/stories260K/tok512.bin"))
        skip();
    kp_tokenizer *t;
    assert_int_equal(kp_tokenizer_load(path, NULL, &t), KP_OK);
    assert_int_equal(kp_tokenizer_n_vocab(t), 512);
    const char text[] = "\xe4\xbd\xa0\x00!"; /* U+4F60, a NUL byte, '!' */
    int32_t ids[16];
    size_t n;
    assert_int_equal(kp_tokenize(t, text, 5, 0, ids, 16, &n), KP_OK);
    /* dummy prefix " ", three byte tokens, NUL as byte 0 (id 3), then '!' */
    assert_true(n >= 5);
    assert_int_equal(ids[1], 0xe4 + 3);
    assert_int_equal(ids[2], 0xbd + 3);
    assert_int_equal(ids[3], 0xa0 + 3);
    assert_int_equal(ids[4], 3);
    char piece[8];
    size_t len;
    assert_int_equal(kp_token_to_piece(t, 0xe4 + 3, piece, sizeof piece, &len), KP_OK);
    assert_int_equal(len, 1);
    assert_int_equal((unsigned char)piece[0], 0xe4);
    assert_int_equal(kp_token_to_piece(t, 512, piece, sizeof piece, &len), KP_ERR_TOKEN_OUT_OF_RANGE);
    char out[32];
    assert_int_equal(kp_detokenize(t, ids, n, out, sizeof out, &len), KP_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(out, text, 5);
    kp_tokenizer_free(t);
}

static void write_tmp(char *path, const char *data, size_t n)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    close(fd);
}

/* File type detection without extensions: a tokenizer.bin whose longest token is 10 bytes begins
 * with the byte that also starts a SentencePiece protobuf. */
static void detection_without_extension(void **state)
{
    (void)state;
    char bin[1024], spm[1024];
    if (!kp_test_file(bin, sizeof bin, "models/stories260K/tok512.bin") ||
        !kp_test_file(spm, sizeof spm, "models/stories260K/tok512.model"))
        skip();
    size_t n = 0, m = 0;
    char *b = kp_test_slurp(bin, &n), *p = kp_test_slurp(spm, &m);
    int32_t ten = 10;
    memcpy(b, &ten, 4);
    char tb[] = "/tmp/kp_tokbin_XXXXXX", tp[] = "/tmp/kp_tokspm_XXXXXX";
    write_tmp(tb, b, n);
    write_tmp(tp, p, m);
    const char *paths[2] = {tb, tp};
    for (int i = 0; i < 2; i++) {
        kp_tokenizer *t;
        assert_int_equal(kp_tokenizer_load(paths[i], NULL, &t), KP_OK);
        assert_int_equal(kp_tokenizer_n_vocab(t), 512);
        int32_t ids[16];
        size_t k = 0;
        assert_int_equal(kp_tokenize(t, "Once upon a time", 16, 0, ids, 16, &k), KP_OK);
        const int32_t want[4] = {403, 407, 261, 378};
        assert_int_equal(k, 4);
        assert_memory_equal(ids, want, sizeof want);
        kp_tokenizer_free(t);
    }
    unlink(tb);
    unlink(tp);
    free(b);
    free(p);
}

/* Writes a tokenizer.bin of `n` pieces (score 1 for "ab", 0 otherwise) to a temporary file. */
static void write_small_vocab(char *path, const char *const *pieces, int n)
{
    char data[256];
    size_t off = 0;
    int32_t max_len = 5;
    memcpy(data, &max_len, 4);
    off = 4;
    for (int i = 0; i < n; i++) {
        float score = strcmp(pieces[i], "ab") == 0 ? 1.0f : 0.0f;
        int32_t len = (int32_t)strlen(pieces[i]);
        memcpy(data + off, &score, 4);
        memcpy(data + off + 4, &len, 4);
        memcpy(data + off + 8, pieces[i], (size_t)len);
        off += 8 + (size_t)len;
    }
    write_tmp(path, data, off);
}

static void expect_ids(kp_tokenizer *t, const char *text, const int32_t *want, size_t n_want)
{
    int32_t ids[64];
    size_t n;
    assert_int_equal(kp_tokenize(t, text, strlen(text), KP_TOKENIZE_ADD_SPECIAL, ids, 64, &n), KP_OK);
    for (size_t i = 0; i < n; i++)
        assert_in_range(ids[i], 0, kp_tokenizer_n_vocab(t) - 1);
    assert_int_equal(n, n_want);
    assert_memory_equal(ids, want, n * sizeof *ids);
    char out[256];
    size_t len;
    assert_int_equal(kp_detokenize(t, ids, n, out, sizeof out, &len), KP_OK);
}

/* Vocabularies of fewer than 259 pieces have no room for every <0xXX> id (byte + 3): a byte
 * whose id would lie outside the vocabulary becomes <unk> (0). Before, the encoder emitted
 * byte + 3 and read the piece table past its end (heap-buffer-overflow under ASan). */
static void small_vocabulary(void **state)
{
    (void)state;
    static const char *const eight[] = {"<unk>", "<s>", "</s>", " ", "a", "b", "ab", "c"};
    static const char *const one[] = {"<unk>"};
    char p8[] = "/tmp/kp_tok8_XXXXXX", p1[] = "/tmp/kp_tok1_XXXXXX";
    write_small_vocab(p8, eight, 8);
    write_small_vocab(p1, one, 1);
    kp_tokenizer_params tp;
    kp_tokenizer_params_init(&tp);
    tp.n_vocab = 8;
    kp_tokenizer *t;
    assert_int_equal(kp_tokenizer_load(p8, &tp, &t), KP_OK);
    const int32_t zzz8[] = {1, 3, 0, 0, 0, 3, 0, 0, 0, 0, 0}; /* BOS, dummy " ", z z z, " ", hello */
    expect_ids(t, "zzz hello", zzz8, 11);
    const int32_t abc8[] = {1, 3, 6, 3, 7, 3, 4}; /* pieces the vocabulary has still merge */
    expect_ids(t, "ab c a", abc8, 7);
    kp_tokenizer_free(t);
    tp.n_vocab = 1;
    assert_int_equal(kp_tokenizer_load(p1, &tp, &t), KP_OK);
    const int32_t zzz1[] = {0, 0, 0, 0, 0, 0, 0, 0, 0}; /* no BOS, no " ": every byte is <unk> */
    expect_ids(t, "zzz hello", zzz1, 9);
    kp_tokenizer_free(t);
    unlink(p8);
    unlink(p1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tok512),
        cmocka_unit_test(llama2_32000),
        cmocka_unit_test(byte_fallback_and_count),
        cmocka_unit_test(detection_without_extension),
        cmocka_unit_test(small_vocabulary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
