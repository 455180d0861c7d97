/* One chat turn on a session that lives across turns: render the whole conversation, keep the
 * longest prefix of tokens the session already holds, evaluate only the rest, stream the answer. */
#ifndef KUIPER_CHAT_ENGINE_H
#define KUIPER_CHAT_ENGINE_H

#include <signal.h>

#include "conv.h"

typedef struct chat_stats {
    int32_t n_reused;    /* prompt positions kept from the previous turn */
    int32_t n_prompt;    /* prompt positions evaluated for this answer */
    int32_t n_generated;
    double prompt_seconds, generate_seconds;
    size_t n_dropped;    /* old messages dropped so the conversation fits the context */
    kp_stop_reason reason;
    int cancelled;       /* Ctrl-C stopped the answer */
    int context_full;    /* the answer filled the context and was cut */
} chat_stats;

/* Receives each printable piece of the answer as it is generated. */
typedef void (*chat_piece_fn)(void *user, const char *piece, size_t len);
/* Told how much of a long prompt has been evaluated: `done` of `total` positions. */
typedef void (*chat_progress_fn)(void *user, int32_t done, int32_t total);

typedef struct chat_engine {
    kp_model *model;
    kp_session *session;
    kp_sampler *sampler; /* NULL: greedy */
    int32_t max_new;     /* 0: until the context is full */
    const char *template_name; /* NULL: the model's own template; else as kp_chat_format_template */
    char bos[128];       /* BOS text: a prompt beginning with it gets no second BOS */
    size_t bos_len;
    char *text;          /* rendered prompt */
    size_t text_cap;
    int32_t *ids;
    size_t ids_cap;
    char *answer;        /* the answer being generated */
    size_t answer_len, answer_cap;
    chat_piece_fn on_piece;
    chat_progress_fn on_progress; /* NULL: a long prompt goes to kp_generate in one call */
    void *user;
    chat_stats last;
    char err[1024];
} chat_engine;

/* Borrows model, session and sampler. */
void engine_init(chat_engine *e, kp_model *m, kp_session *s, kp_sampler *sampler, int32_t max_new);
void engine_free(chat_engine *e);

/* Renders `c` with the model's template into e->text; returns the length or -1 (e->err says why). */
long engine_render(chat_engine *e, chat_conv *c, int add_assistant);
/* Tokenizes `len` bytes of text as chat text (special tokens parsed, BOS added only when the
 * text does not already begin with it) into e->ids; returns the count or -1. */
long engine_tokenize(chat_engine *e, const char *text, size_t len);

/* Answers the conversation `c` (its last message is the user's): appends the assistant's answer
 * to `c` and streams it through on_piece. Oldest turns are dropped from `c` (never a leading
 * system message, never the last message) when the conversation does not fit the context.
 * `interrupted` is the flag the SIGINT handler raises; the caller points that handler's
 * kp_session_cancel at e->session during the call.
 * Returns 0 when an answer (maybe cut by Ctrl-C, max tokens or the context) was added, -1 on
 * failure with e->err set and `c` as it was apart from dropped turns; a question cancelled
 * before any text came is removed from `c` and counts as a failure with e->last.cancelled set. */
int engine_answer(chat_engine *e, chat_conv *c, volatile sig_atomic_t *interrupted);

#endif
