/* The plain library path the kuiper-chat tests compare against: prompt text on stdin, tokenized
 * as chat text, evaluated in a fresh session and continued greedily by kp_generate without a
 * sampler (argmax). No conversation handling, no KV reuse.
 *
 *   chat-reference -m MODEL -n MAX_NEW [-c N_CTX] [--threads N] < prompt.txt
 *
 * stdout, one line each: "prompt_ids ID...", then per generated token "step ID GAP HEX" where GAP is
 * the top-1 minus top-2 logit of the distribution it was chosen from and HEX the bytes of its
 * text; bytes reported after the last token are appended to that token's HEX. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kuiper/kuiper.h>

/* One line per generated token: the id, the top-1/top-2 logit gap and the text piece in hex. */
static int on_token(void *user, const kp_token_event *ev)
{
    (void)user;
    if (ev->is_prompt)
        return 0;
    if (ev->id >= 0) {
        float a = -INFINITY, b = -INFINITY;
        for (size_t i = 0; i < ev->n_vocab; i++) {
            if (ev->logits[i] > a) {
                b = a;
                a = ev->logits[i];
            } else if (ev->logits[i] > b) {
                b = ev->logits[i];
            }
        }
        printf("\nstep %d %.6f ", ev->id, (double)(a - b));
    }
    for (size_t i = 0; i < ev->piece_len; i++)
        printf("%02x", (unsigned char)ev->piece[i]);
    return 0;
}

static int fail(const char *what, kp_status st)
{
    fprintf(stderr, "chat-reference: %s: %s (%s)\n", what, kp_last_error(), kp_status_str(st));
    return 1;
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    int max_new = 0, n_ctx = 0, threads = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-m"))
            model = argv[i + 1];
        else if (!strcmp(argv[i], "-n"))
            max_new = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-c"))
            n_ctx = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
    }
    if (!model || max_new <= 0) {
        fprintf(stderr, "usage: chat-reference -m MODEL -n MAX_NEW [-c N_CTX] [--threads N] < prompt.txt\n");
        return 2;
    }
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    while (text && (len += fread(text + len, 1, cap - len, stdin)) == cap)
        text = realloc(text, cap *= 2);
    if (!text)
        return 1;

    kp_model_params mp;
    kp_model_params_init(&mp);
    mp.n_threads = threads;
    kp_model *m = NULL;
    kp_status st = kp_model_load(model, &mp, &m);
    if (st)
        return fail(model, st);
    const kp_tokenizer *t = kp_model_tokenizer_borrow(m);
    /* kuiper.h: chat text that begins with the BOS text gets no second BOS. */
    char bos[128];
    size_t bos_len = 0;
    uint32_t flags = KP_TOKENIZE_PARSE_SPECIAL;
    if (kp_tokenizer_bos(t) < 0 || kp_token_to_piece(t, kp_tokenizer_bos(t), bos, sizeof bos, &bos_len) ||
        !bos_len || len < bos_len || memcmp(text, bos, bos_len) != 0)
        flags |= KP_TOKENIZE_ADD_SPECIAL;
    size_t n = 0;
    kp_tokenize(t, text, len, flags, NULL, 0, &n);
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids || (st = kp_tokenize(t, text, len, flags, ids, n, &n)))
        return fail("tokenizing", st);
    printf("prompt_ids");
    for (size_t i = 0; i < n; i++)
        printf(" %d", ids[i]);

    kp_session_params sp;
    kp_session_params_init(&sp);
    sp.n_ctx = n_ctx;
    kp_session *s = NULL;
    if ((st = kp_session_new(m, &sp, &s)))
        return fail("making a session", st);
    kp_generate_params gp;
    kp_generate_params_init(&gp);
    gp.max_new_tokens = max_new;
    gp.on_token = on_token;
    st = kp_generate(s, ids, n, &gp, NULL);
    if (st)
        return fail("generating", st);
    printf("\n");
    free(ids);
    free(text);
    kp_session_free(s);
    kp_model_free(m);
    return 0;
}
