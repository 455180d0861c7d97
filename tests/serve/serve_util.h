/* Shared by the serve tests: the fixture models, prompts and a single-session reference run. */
#ifndef KP_SERVE_UTIL_H
#define KP_SERVE_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <kuiper/kuiper.h>

#include "testdata.h"

#define SU_MAX_GEN 64

static const char *const su_prompts[8] = {
    "Once upon a time", "The cat sat on", "Lily went to the park and", "One day a little",
    "Tom had a big red", "The sun was", "Sara and Ben", "A bird",
};

/* stories260K (llama2.c, needs tok512.bin) or a GGUF fixture by file name; NULL when the data
 * is missing (a loud SKIP is printed). */
static inline kp_model *su_load(const char *which, int n_threads)
{
    char mp[1024], tp[1024];
    kp_model_params p;
    kp_model_params_init(&p);
    p.n_threads = n_threads;
    if (!strcmp(which, "stories260K")) {
        if (!kp_test_file(mp, sizeof mp, "models/stories260K/stories260K.bin") ||
            !kp_test_file(tp, sizeof tp, "models/stories260K/tok512.bin"))
            return NULL;
        p.tokenizer_path = tp;
    } else {
        char rel[256];
        snprintf(rel, sizeof rel, "models/gguf/%s", which);
        if (!kp_test_file(mp, sizeof mp, rel))
            return NULL;
    }
    kp_model *m = NULL;
    if (kp_model_load(mp, &p, &m) != KP_OK) {
        fprintf(stderr, "loading %s: %s\n", which, kp_last_error());
        return NULL;
    }
    return m;
}

/* Prompt i as ids with BOS; returns the count. */
static inline size_t su_prompt(const kp_model *m, int i, int32_t *ids, size_t cap)
{
    size_t n = 0;
    const char *t = su_prompts[i % 8];
    if (kp_tokenize(kp_model_tokenizer_borrow(m), t, strlen(t), KP_TOKENIZE_ADD_SPECIAL, ids, cap, &n) != KP_OK)
        return 0;
    return n;
}

#endif
