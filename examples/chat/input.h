/* kuiper-chat's input: one message at a time from a terminal (with line editing and history
 * through libedit when it was found at build time) or from a pipe. A Ctrl-C at the prompt is
 * never lost: SIGINT stays blocked except while waiting for input, and the wait unblocks it
 * atomically (pselect), so the flag the handler raises is seen before any read that could block. */
#ifndef KUIPER_CHAT_INPUT_H
#define KUIPER_CHAT_INPUT_H

#include <signal.h>

typedef struct chat_input chat_input;

/* Reads standard input; `interrupted` is the flag the SIGINT handler raises. Prompts are shown
 * only when standard input is a terminal. NULL out of memory. */
chat_input *input_new(volatile sig_atomic_t *interrupted);
void input_free(chat_input *in);
/* 1 when standard input is a terminal. */
int input_is_tty(const chat_input *in);
/* "libedit" or "plain": what reads a terminal (for the banner). */
const char *input_kind(const chat_input *in);

/* The next message (malloc'd, UTF-8): a line without its line break, where a line ending in '\'
 * continues on the next one (the backslash becomes a line break) and a multi-line paste on a
 * terminal is one message. NULL at the end of input, on Ctrl-C, or out of memory. */
char *input_read(chat_input *in);

#endif
