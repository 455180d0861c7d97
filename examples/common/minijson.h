/* A small JSON reader and string writer shared by the example programs, which may use only the
 * public API and so cannot reach the library's own parser. */
#ifndef KUIPER_EXAMPLES_MINIJSON_H
#define KUIPER_EXAMPLES_MINIJSON_H

#include <stdio.h>

/* A position in a length-delimited buffer (it need not be NUL-terminated). `lenient` is for
 * input from tools that are not careful writers: strings may then hold raw control bytes and
 * unpaired surrogate escapes (read as U+FFFD), and a scalar may be any bare word. */
typedef struct mj_cursor {
    const char *p, *end;
    int lenient;
} mj_cursor;

void mj_ws(mj_cursor *c);
/* Consumes the exact bytes of `w` when they come next; 1 if they did. */
int mj_lit(mj_cursor *c, const char *w);
/* Reads the string at the cursor, decoding into `out` (NULL: only skip it) and NUL-terminating
 * it. The decoded form is never longer than its source, so `out` may point into a writable copy
 * of the buffer at the string's own position. Returns the decoded length ("\u0000" is kept as a
 * byte) or -1. */
long mj_string(mj_cursor *c, char *out);
/* Skips one value of any kind; `depth` counts the containers around it, at most 64. */
int mj_skip_value(mj_cursor *c, int depth);
/* Writes `s` as a JSON string. Bytes that are not UTF-8 become \ufffd, as JSON text must be
 * UTF-8. 0 on success, -1 on a write error. */
int mj_put_string(FILE *f, const char *s);

#endif
