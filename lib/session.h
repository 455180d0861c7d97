/* kp_session internals: the KV cache, activation buffers and logits of one sequence. */
#ifndef KP_SESSION_H
#define KP_SESSION_H

#include <stdatomic.h>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

/* Tokens evaluated per forward chunk: big enough for GEMM efficiency in prefill, small enough
 * that activations stay in cache-friendly sizes. */
#define KP_BATCH 256
/* Session size when the caller asks for none (documented in kuiper.h). */
#define KP_DEFAULT_CTX 4096

typedef struct kp_acts {
    float *x, *xb, *xb2, *q, *k, *v, *att, *hb, *hb2;
    float *attn_scratch; /* [n_head][scratch_tokens][n_ctx] */
    int32_t scratch_tokens;
    void *work;          /* matmul activation workspace */
    size_t work_size;
    float *logits_dev;   /* [logit_rows][n_vocab] */
    int32_t logit_rows;
} kp_acts;

struct kp_session {
    kp_model *m;
    const kp_allocator *alloc;
    int32_t n_ctx, n_past;
    kp_kv_type kv_type;
    size_t kv_layer_bytes;
    void **k_cache, **v_cache; /* per layer, device */
    kp_acts a;
    float *logits;             /* host: [n_logits][n_vocab] */
    size_t logits_cap_rows;
    int32_t n_logits;
    int32_t *tokens;           /* ids evaluated so far, [n_ctx] */
    atomic_int cancel;
    int in_callback; /* kp_generate is inside on_token: calls that change the session are refused */
    char err[256];
};

/* KP_ERR_BUSY (recorded on the session) while kp_generate is calling back, else KP_OK. */
kp_status kp_session_check_idle(kp_session *s, const char *what);

/* Records a failure on the session and in the thread's last error; returns st. */
kp_status kp_session_fail(kp_session *s, kp_status st);

/* Makes room for `rows` rows of logits on the device (at most KP_BATCH) and on the host. */
kp_status kp_session_reserve_logits(kp_session *s, int32_t rows);

/* Runs the decoder on n ids at positions n_past..; fills s->logits for the rows `flags` asks. */
kp_status kp_decoder_forward(kp_session *s, const int32_t *ids, int32_t n, uint32_t flags);

/* Which logits a group of kp_decoder_forward_groups leaves in its session. */
enum { KP_WANT_NONE = 0, KP_WANT_LAST = 1, KP_WANT_ALL = 2 };

/* One chunk: group i appends the n[i] >= 1 ids ids[i] to session ss[i] (distinct sessions of one
 * model, rows in all <= KP_BATCH, validated and with logits room reserved by the caller). The
 * logits a group wants go to its session's rows from s->n_logits on, which grows by them. */
kp_status kp_decoder_forward_groups(kp_session *const *ss, const int32_t *const *ids, const int32_t *n,
                                    const int8_t *want, int32_t ng);

#endif
