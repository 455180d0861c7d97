/* Readers for the llama2.c reference files in shared/reference/stories260K. */
#ifndef KP_TEST_REFS_H
#define KP_TEST_REFS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testdata.h"

/* Parses "prompt_ids(N): a b c\nsequence_ids: ..." into the prompt and full sequence. */
typedef struct ref_ids {
    int32_t prompt[1024], seq[1024];
    int n_prompt, n_seq;
} ref_ids;

static int parse_list(const char *p, int32_t *out, int cap)
{
    int n = 0;
    while (*p && *p != '\n' && n < cap) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        out[n++] = (int32_t)v;
        p = end;
    }
    return n;
}

static inline int ref_ids_load(const char *path, ref_ids *r)
{
    char *txt = kp_test_slurp(path, NULL);
    if (!txt)
        return 0;
    const char *a = strchr(txt, ':');
    const char *b = strstr(txt, "sequence_ids:");
    if (!a || !b) {
        free(txt);
        return 0;
    }
    r->n_prompt = parse_list(a + 1, r->prompt, 1024);
    r->n_seq = parse_list(b + strlen("sequence_ids:"), r->seq, 1024);
    free(txt);
    return 1;
}

#endif
