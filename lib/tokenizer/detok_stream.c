/* Streaming detokenization: pieces are concatenated, the decoder's leading-space rule is
 * applied, and an incomplete UTF-8 sequence is held back until the token that completes it. */
#include <string.h>

#include "tokenizer.h"

void kp_detok_stream_init(kp_detok_stream *st)
{
    st->prev = -1;
    st->n_pend = 0;
}

/* Length of the UTF-8 sequence a lead byte announces; 1 for ASCII and for bytes that can
 * never start a valid sequence (they are passed through as they are). */
static int utf8_need(unsigned char b)
{
    if (b >= 0xC2 && b <= 0xDF)
        return 2;
    if (b >= 0xE0 && b <= 0xEF)
        return 3;
    if (b >= 0xF0 && b <= 0xF4)
        return 4;
    return 1;
}

static int is_cont(unsigned char b) { return (b & 0xC0) == 0x80; }

/* Emits the complete prefix of `p` and keeps a trailing incomplete sequence in st->pend. */
static kp_status emit(kp_detok_stream *st, const unsigned char *p, size_t n, kp_buf *out)
{
    size_t i = 0, start = 0;
    while (i < n) {
        int need = utf8_need(p[i]);
        if (need == 1) {
            i++;
            continue;
        }
        size_t have = 1;
        while (have < (size_t)need && i + have < n && is_cont(p[i + have]))
            have++;
        if (have == (size_t)need) {
            i += have;
        } else if (i + have == n) { /* ran out of input mid-sequence: wait for more */
            break;
        } else {
            i += have; /* malformed: pass the bytes through, decoding cannot fix them */
        }
    }
    kp_status s = kp_buf_append(out, p + start, i);
    if (s)
        return s;
    st->n_pend = (int)(n - i);
    memcpy(st->pend, p + i, n - i);
    return KP_OK;
}

kp_status kp_detok_stream_push(const kp_tokenizer *t, kp_detok_stream *st, int32_t id, kp_buf *out)
{
    size_t len;
    const char *piece = kp_tokenizer_piece(t, id, &len);
    if (!piece)
        return kp_fail(KP_ERR_TOKEN_OUT_OF_RANGE, "token id %d is outside [0, %d)", id, t->n_vocab);
    if (t->type[id] == KP_TOKEN_CONTROL && !t->render_control)
        len = 0;
    int32_t prev = st->prev;
    st->prev = id;
    /* Hugging Face's Strip/Metaspace decoders drop the space at the very start of the text only;
     * llama2.c and SentencePiece drop it after BOS as well. */
    int strip = t->strip_leading_space ? prev == -1
                                       : t->strip_space_after_bos && (prev == -1 || prev == t->bos);
    if (strip && len && piece[0] == ' ') {
        piece++;
        len--;
    }
    if (!len)
        return KP_OK;
    if (st->n_pend == 0)
        return emit(st, (const unsigned char *)piece, len, out);
    unsigned char tmp[64];
    if (len + (size_t)st->n_pend <= sizeof tmp) {
        memcpy(tmp, st->pend, (size_t)st->n_pend);
        memcpy(tmp + st->n_pend, piece, len);
        return emit(st, tmp, len + (size_t)st->n_pend, out);
    }
    kp_buf joined;
    kp_buf_init(&joined, t->alloc);
    kp_status s = kp_buf_append(&joined, st->pend, (size_t)st->n_pend);
    if (!s)
        s = kp_buf_append(&joined, piece, len);
    if (!s)
        s = emit(st, (const unsigned char *)joined.data, joined.len, out);
    kp_buf_free(&joined);
    return s;
}

kp_status kp_detok_stream_flush(kp_detok_stream *st, kp_buf *out)
{
    kp_status s = kp_buf_append(out, st->pend, (size_t)st->n_pend);
    st->n_pend = 0;
    return s;
}
