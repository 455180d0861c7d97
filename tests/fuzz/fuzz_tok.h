/* What every tokenizer fuzz target does with a tokenizer that loaded: encode a text in each
 * mode, decode the ids whole, piece by piece and as a stream, and check the invariants the
 * library documents (ids in range, measuring calls agree with filling ones, the stream adds
 * up to the whole decode). */
#ifndef KP_FUZZ_TOK_H
#define KP_FUZZ_TOK_H

#include <kuiper/kuiper.h>

#include "fuzz_util.h"
#include "lib/tokenizer/tokenizer.h"

static inline void kp_fuzz_decode(const kp_tokenizer *t, const int32_t *ids, size_t n)
{
    size_t need = 0;
    kp_status st = kp_detokenize(t, ids, n, NULL, 0, &need);
    KP_FUZZ_CHECK(st == KP_OK || st == KP_ERR_BUFFER_TOO_SMALL || st == KP_ERR_TOKEN_OUT_OF_RANGE);
    if (st == KP_ERR_TOKEN_OUT_OF_RANGE)
        return;
    char *whole = malloc(need + 1);
    size_t len = 0;
    KP_FUZZ_CHECK(kp_detokenize(t, ids, n, whole, need + 1, &len) == KP_OK && len == need);
    kp_detok_stream ds;
    kp_detok_stream_init(&ds);
    kp_buf out;
    kp_buf_init(&out, NULL);
    for (size_t i = 0; i < n; i++) {
        KP_FUZZ_CHECK(kp_detok_stream_push(t, &ds, ids[i], &out) == KP_OK);
        char piece[64];
        size_t pl = 0;
        st = kp_token_to_piece(t, ids[i], piece, sizeof piece, &pl);
        KP_FUZZ_CHECK(st == KP_OK || st == KP_ERR_BUFFER_TOO_SMALL);
    }
    KP_FUZZ_CHECK(kp_detok_stream_flush(&ds, &out) == KP_OK);
    KP_FUZZ_CHECK(out.len == len && (len == 0 || memcmp(out.data, whole, len) == 0));
    kp_buf_free(&out);
    free(whole);
}

static inline void kp_fuzz_use_tokenizer(const kp_tokenizer *t, const char *text, size_t tlen)
{
    static const uint32_t modes[] = {0, KP_TOKENIZE_PARSE_SPECIAL, KP_TOKENIZE_PARSE_SPECIAL | KP_TOKENIZE_ADD_SPECIAL,
                                     KP_TOKENIZE_ADD_SPECIAL};
    int32_t V = kp_tokenizer_n_vocab(t);
    KP_FUZZ_CHECK(V > 0);
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
        size_t need = 0;
        kp_status st = kp_tokenize(t, text, tlen, modes[m], NULL, 0, &need);
        if (st != KP_OK && st != KP_ERR_BUFFER_TOO_SMALL)
            continue; /* refused (e.g. an unknown character with no <unk>): a status is fine */
        int32_t *ids = malloc((need + 1) * sizeof *ids);
        size_t n = 0;
        KP_FUZZ_CHECK(kp_tokenize(t, text, tlen, modes[m], ids, need + 1, &n) == KP_OK && n == need);
        for (size_t i = 0; i < n; i++)
            KP_FUZZ_CHECK(ids[i] >= 0 && ids[i] < V);
        kp_fuzz_decode(t, ids, n);
        free(ids);
    }
    /* decoding ids the text did not produce: every id in turn, taken from the text's bytes */
    size_t n = tlen / 2 < 256 ? tlen / 2 : 256;
    int32_t ids[256];
    for (size_t i = 0; i < n; i++)
        ids[i] = (int32_t)(((uint32_t)(unsigned char)text[2 * i] << 8 | (unsigned char)text[2 * i + 1]) % (uint32_t)V);
    kp_fuzz_decode(t, ids, n);
}

#endif
