/* A conversation that owns its text, read from and written to the JSON shape
 * {"messages":[{"role":"...","content":"..."}, ...]} used by --json, --dump-prompt and the
 * /save sidecar. */
#ifndef KUIPER_CHAT_CONV_H
#define KUIPER_CHAT_CONV_H

#include <stdio.h>

#include "kuiper/kuiper.h"

typedef struct chat_msg {
    char *role;
    char *content;
} chat_msg;

typedef struct chat_conv {
    chat_msg *msgs;
    size_t n, cap;
    kp_chat_msg *view; /* borrowed pointers for kp_chat_format, rebuilt by conv_view */
    size_t view_cap;
} chat_conv;

/* Appends a copy of `role` and of `len` bytes of `content`. 0 on success, -1 out of memory. */
int conv_push(chat_conv *c, const char *role, const char *content, size_t len);
/* Removes `count` messages starting at `i`. */
void conv_remove(chat_conv *c, size_t i, size_t count);
/* Forgets every message but a leading system message when `keep_system` is set. */
void conv_clear(chat_conv *c, int keep_system);
/* Sets the leading system message to `text`, or removes it when `text` is NULL or empty. */
int conv_set_system(chat_conv *c, const char *text);
/* The messages as kp_chat_msg (valid until the conversation changes); NULL out of memory. */
const kp_chat_msg *conv_view(chat_conv *c);
void conv_free(chat_conv *c);
/* Moves `from` into `to` (freeing what `to` held); `from` is left empty. */
void conv_move(chat_conv *to, chat_conv *from);

/* Parses a conversation document. `*add_assistant` (may be NULL) gets its "add_assistant"
 * member, 1 when absent. Members other than "messages" and "add_assistant" are ignored. On
 * failure returns -1 with a one-line reason in `err`; `out` is then empty. */
int conv_parse_json(const char *text, size_t len, chat_conv *out, int *add_assistant, char *err, size_t err_cap);
/* Writes {"format":..., "messages":[...]} with one message per line. 0 on success. */
int conv_write_json(const chat_conv *c, FILE *f);

/* The whole of `f` in a malloc'd buffer (NUL-terminated, *len bytes before it); NULL on failure. */
char *read_all(FILE *f, size_t *len);

#endif
