/* Streaming detokenization of random id sequences over real vocabularies (byte-level Llama 3
 * and Qwen 3, byte-fallback Llama 2 and the 512-token SentencePiece and llama2.c ones): the
 * first input byte picks the vocabulary, the rest are 16- or 24-bit ids (reduced modulo a little
 * more than the vocabulary, so out-of-range ids occur too). The stream must add up to
 * kp_detokenize's text and never split a UTF-8 character across two chunks. */
#include "fuzz_tok.h"

static const char *const vocab_files[] = {
    "tokenizers/tok512-sp/tokenizer.json", "models/stories260K/tok512.bin", "models/stories260K/tok512.model",
    "tokenizers/llama2-sp/tokenizer.json", "tokenizers/llama3/tokenizer.json", "tokenizers/qwen3/tokenizer.json",
};
#define N_VOCABS (sizeof vocab_files / sizeof *vocab_files)
static kp_tokenizer *toks[N_VOCABS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    for (size_t i = 0; i < N_VOCABS; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", kp_test_data_dir(), vocab_files[i]);
        if (kp_tokenizer_load(path, NULL, &toks[i]) != KP_OK)
            fprintf(stderr, "fuzz_detok_stream: %s does not load (%s); skipping it\n", path, kp_last_error());
    }
    return 0;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none. */
static size_t seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!k || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    kp_tokenizer *t = toks[data[0] % N_VOCABS];
    if (!t)
        return 0;
    int wide = data[0] & 0x80;
    size_t w = wide ? 3 : 2, n = (size - 1) / w;
    uint32_t V = (uint32_t)kp_tokenizer_n_vocab(t), mod = V + V / 64 + 1;
    int32_t *ids = malloc((n + 1) * sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = data + 1 + i * w;
        uint32_t x = p[0] | (uint32_t)p[1] << 8 | (wide ? (uint32_t)p[2] << 16 : 0);
        ids[i] = (int32_t)(x % mod);
    }
    /* out-of-range ids are refused by kp_detokenize; the stream only gets in-range ones */
    size_t need = 0;
    kp_status st = kp_detokenize(t, ids, n, NULL, 0, &need);
    int any_bad = 0;
    for (size_t i = 0; i < n; i++)
        any_bad |= ids[i] >= (int32_t)V;
    KP_FUZZ_CHECK(any_bad ? st == KP_ERR_TOKEN_OUT_OF_RANGE : (st == KP_OK || st == KP_ERR_BUFFER_TOO_SMALL));
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < (int32_t)V)
            ids[m++] = ids[i];
    kp_fuzz_decode(t, ids, m);
    /* chunk boundaries never fall inside a valid multi-byte character of the final text */
    kp_detok_stream ds;
    kp_detok_stream_init(&ds);
    kp_buf out;
    kp_buf_init(&out, NULL);
    size_t *bounds = malloc((m + 1) * sizeof *bounds);
    for (size_t i = 0; i < m; i++) {
        KP_FUZZ_CHECK(kp_detok_stream_push(t, &ds, ids[i], &out) == KP_OK);
        bounds[i] = out.len;
    }
    KP_FUZZ_CHECK(kp_detok_stream_flush(&ds, &out) == KP_OK);
    unsigned char *inside = calloc(out.len + 1, 1);
    for (size_t j = 0; j < out.len;) {
        size_t k = seq_len((const unsigned char *)out.data + j, out.len - j);
        for (size_t q = 1; q < k; q++)
            inside[j + q] = 1;
        j += k ? k : 1;
    }
    for (size_t i = 0; i < m; i++)
        KP_FUZZ_CHECK(!inside[bounds[i]]);
    free(inside);
    free(bounds);
    kp_buf_free(&out);
    free(ids);
    return 0;
}
