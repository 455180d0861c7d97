/* Pieces of the llama2.c reader that the KuiperLLama reader (a llama2.c descendant) shares: a
 * bounds-checked cursor over the mapped file and the header sanity check. */
#ifndef KP_FORMAT_LLAMA2C_H
#define KP_FORMAT_LLAMA2C_H

#include "../model/model.h"

typedef struct l2c_cursor {
    const uint8_t *base;
    size_t size, off;
    const char *path_hint;
} l2c_cursor;

/* The seven int32 fields llama2.c's v0 header starts with. */
typedef struct l2c_hparams {
    int32_t dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len;
} l2c_hparams;

/* Positive, mutually consistent and not absurd; `version` only labels the message. */
kp_status kp_l2c_check_hparams(const l2c_hparams *h, int version);
/* Takes `nbytes` at the cursor, failing with `what` named if the file is too short. */
kp_status kp_l2c_take(l2c_cursor *c, size_t nbytes, const char *what, const uint8_t **out);
/* Adds the next ne0 x ne1 floats as tensor `name`. */
kp_status kp_l2c_add_f32(kp_model *m, l2c_cursor *c, const char *name, int64_t ne0, int64_t ne1);
/* v2: int8 values then one float scale per `gs` flattened elements; rows must be whole groups. */
kp_status kp_l2c_add_i8g(kp_model *m, l2c_cursor *c, const char *name, int64_t ne0, int64_t ne1, int32_t gs);

#endif
