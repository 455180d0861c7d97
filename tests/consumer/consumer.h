/* What both consumer programs check, written once: the C one includes it as C, the C++ one
 * compiles the same text as C++, so the public header is exercised from both languages. Only
 * the public header is used: this file stands for a third-party program. */
#ifndef KP_CONSUMER_H
#define KP_CONSUMER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kuiper/kuiper.h>

#define KP_CONSUMER_PROMPT "Once upon a time"
#define KP_CONSUMER_NEW_TOKENS 24

typedef struct consumer_text {
    char buf[4096];
    size_t len;
    int overflow;
} consumer_text;

static int consumer_on_token(void *user, const kp_token_event *ev)
{
    consumer_text *t = (consumer_text *)user;
    if (ev->piece_len > sizeof t->buf - 1 - t->len) {
        t->overflow = 1;
        return 1;
    }
    memcpy(t->buf + t->len, ev->piece, ev->piece_len);
    t->len += ev->piece_len;
    t->buf[t->len] = 0;
    return 0;
}

static int consumer_fail(const char *what)
{
    fprintf(stderr, "consumer: %s: %s\n", what, kp_last_error());
    return 1;
}

/* argv: MODEL TOKENIZER [REFERENCE_TEXT]. Greedy output must begin with the prompt and, when the
 * llama2.c reference text is given, be a prefix of it (greedy decoding is deterministic). */
static int consumer_main(int argc, char **argv, const char *lang)
{
    if (strcmp(kp_version(), "") == 0 || kp_version_number() != KP_VERSION_NUMBER) {
        fprintf(stderr, "consumer: header says %d, library says %d (%s)\n", KP_VERSION_NUMBER,
                kp_version_number(), kp_version());
        return 1;
    }
    printf("%s consumer: libkuiper %s\n", lang, kp_version());
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL TOKENIZER [REFERENCE_TEXT]\n", argv[0]);
        return 1;
    }

    kp_model_params mp;
    kp_model_params_init(&mp);
    mp.tokenizer_path = argv[2];
    mp.n_threads = 1;
    kp_model *m = NULL;
    if (kp_model_load(argv[1], &mp, &m) != KP_OK)
        return consumer_fail("kp_model_load");

    int rc = 1;
    kp_session *s = NULL;
    int32_t ids[64];
    size_t n_ids = 0;
    const kp_tokenizer *tok = kp_model_tokenizer_borrow(m);
    if (kp_tokenize(tok, KP_CONSUMER_PROMPT, strlen(KP_CONSUMER_PROMPT), KP_TOKENIZE_ADD_SPECIAL, ids,
                    sizeof ids / sizeof ids[0], &n_ids) != KP_OK) {
        consumer_fail("kp_tokenize");
        goto done;
    }
    if (kp_session_new(m, NULL, &s) != KP_OK) {
        consumer_fail("kp_session_new");
        goto done;
    }

    {
        consumer_text text;
        text.len = 0;
        text.overflow = 0;
        text.buf[0] = 0;
        kp_generate_params gp;
        kp_generate_params_init(&gp);
        gp.max_new_tokens = KP_CONSUMER_NEW_TOKENS;
        gp.sampler = NULL; /* greedy */
        gp.on_token = consumer_on_token;
        gp.user = &text;
        gp.echo_prompt = 1;
        kp_generate_stats stats;
        if (kp_generate(s, ids, n_ids, &gp, &stats) != KP_OK) {
            consumer_fail("kp_generate");
            goto done;
        }
        printf("%s consumer: %d prompt + %d generated tokens: %s\n", lang, stats.n_prompt,
               stats.n_generated, text.buf);
        if (text.overflow || stats.n_generated < 1) {
            fprintf(stderr, "consumer: nothing sensible was generated\n");
            goto done;
        }
        if (strncmp(text.buf, KP_CONSUMER_PROMPT, strlen(KP_CONSUMER_PROMPT)) != 0 ||
            text.len <= strlen(KP_CONSUMER_PROMPT)) {
            fprintf(stderr, "consumer: the text does not continue the prompt\n");
            goto done;
        }
        if (argc > 3) {
            FILE *f = fopen(argv[3], "rb");
            char ref[sizeof text.buf];
            size_t n = f ? fread(ref, 1, sizeof ref, f) : 0;
            if (f)
                fclose(f);
            if (n < text.len || memcmp(ref, text.buf, text.len) != 0) {
                fprintf(stderr, "consumer: greedy text is not a prefix of %s\n", argv[3]);
                goto done;
            }
        }
    }
    rc = 0;
done:
    kp_session_free(s);
    kp_model_free(m);
    return rc;
}

#endif
