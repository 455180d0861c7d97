/* Sessions on the real stories260K model: multi-turn KV reuse, save/restore, stop strings,
 * cancellation from another thread, and the context policies. */
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <kuiper/kuiper.h>

#include "testdata.h"

static kp_model *model, *model_q80;

static int setup(void **state)
{
    (void)state;
    char mp[1024], qp[1024], tp[1024];
    if (!kp_test_file(mp, sizeof mp, "models/stories260K/stories260K.bin") ||
        !kp_test_file(qp, sizeof qp, "models/stories260K/stories260K_q80.bin") ||
        !kp_test_file(tp, sizeof tp, "models/stories260K/tok512.bin"))
        return 0;
    kp_model_params p;
    kp_model_params_init(&p);
    p.tokenizer_path = tp;
    if (kp_model_load(mp, &p, &model) || kp_model_load(qp, &p, &model_q80))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kp_model_free(model);
    kp_model_free(model_q80);
    return 0;
}

typedef struct rec {
    int32_t ids[1024];
    int n;
    char text[8192];
    size_t len;
    int cancel_at;
    pthread_t *thread;
    sem_t *go;
} rec;

static int on_token(void *user, const kp_token_event *ev)
{
    rec *r = user;
    if (ev->id >= 0 && !ev->is_prompt && r->n < 1024)
        r->ids[r->n++] = ev->id;
    if (r->len + ev->piece_len < sizeof r->text) {
        memcpy(r->text + r->len, ev->piece, ev->piece_len);
        r->len += ev->piece_len;
        r->text[r->len] = 0;
    }
    if (r->thread && r->n == r->cancel_at) { /* let another thread cancel; wait until it has */
        sem_post(r->go);
        pthread_join(*r->thread, NULL);
    }
    return 0;
}

static kp_status gen(kp_session *s, const int32_t *prompt, size_t n, int max_new, rec *r, kp_generate_stats *st)
{
    kp_generate_params gp;
    kp_generate_params_init(&gp);
    gp.max_new_tokens = max_new;
    gp.on_token = on_token;
    gp.user = r;
    return kp_generate(s, prompt, n, &gp, st);
}

static size_t tokenize(const char *text, int32_t *ids, int bos)
{
    size_t n = 0;
    assert_int_equal(kp_tokenize(kp_model_tokenizer_borrow(model), text, strlen(text),
                                 bos ? KP_TOKENIZE_ADD_SPECIAL : 0, ids, 256, &n),
                     KP_OK);
    return n;
}

/* Turn 2 after turn 1 in one session gives what evaluating everything from scratch gives. */
static void multi_turn_reuse(void **state)
{
    (void)state;
    if (!model)
        skip();
    int32_t a[256], b[256], all[1024];
    size_t na = tokenize("Once upon a time", a, 1), nb = tokenize("The dog said", b, 0);
    kp_session *s;
    assert_int_equal(kp_session_new(model, NULL, &s), KP_OK);
    rec *r1 = calloc(1, sizeof *r1), *r2 = calloc(1, sizeof *r2), *r3 = calloc(1, sizeof *r3);
    assert_int_equal(gen(s, a, na, 20, r1, NULL), KP_OK);
    int32_t after1 = kp_session_n_past(s);
    assert_int_equal(after1, (int32_t)na + 20); /* every generated token is in the cache */
    assert_int_equal(gen(s, b, nb, 20, r2, NULL), KP_OK);
    assert_int_equal(kp_session_n_past(s), after1 + (int32_t)nb + 20);
    /* From scratch: the whole conversation as one prompt. */
    size_t n = 0;
    memcpy(all, a, na * 4), n += na;
    memcpy(all + n, r1->ids, 20 * 4), n += 20;
    memcpy(all + n, b, nb * 4), n += nb;
    kp_session *fresh;
    assert_int_equal(kp_session_new(model, NULL, &fresh), KP_OK);
    assert_int_equal(gen(fresh, all, n, 20, r3, NULL), KP_OK);
    assert_int_equal(r2->n, 20);
    assert_memory_equal(r2->ids, r3->ids, 20 * sizeof(int32_t));
    /* The session's token record is the conversation. */
    assert_memory_equal(kp_session_tokens_borrow(s), all, n * sizeof(int32_t));
    kp_session_free(s);
    kp_session_free(fresh);
    free(r1), free(r2), free(r3);
}

static void save_restore(void **state)
{
    (void)state;
    if (!model)
        skip();
    char path[] = "/tmp/kp_state_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    int32_t a[256];
    size_t na = tokenize("Lily and Tom went to the park", a, 1);
    kp_session *s, *t;
    assert_int_equal(kp_session_new(model, NULL, &s), KP_OK);
    rec *r = calloc(1, sizeof *r), *want = calloc(1, sizeof *want), *got = calloc(1, sizeof *got);
    assert_int_equal(gen(s, a, na, 10, r, NULL), KP_OK);
    assert_int_equal(kp_session_save(s, path), KP_OK);
    assert_int_equal(gen(s, NULL, 0, 30, want, NULL), KP_OK);
    assert_int_equal(kp_session_new(model, NULL, &t), KP_OK);
    assert_int_equal(kp_session_load(t, path), KP_OK);
    assert_int_equal(kp_session_n_past(t), (int32_t)na + 10);
    assert_int_equal(gen(t, NULL, 0, 30, got, NULL), KP_OK);
    assert_int_equal(got->n, 30);
    assert_memory_equal(got->ids, want->ids, 30 * sizeof(int32_t));
    assert_string_equal(got->text, want->text);

    /* Rejections leave the session as it was. */
    int32_t before = kp_session_n_past(t);
    kp_session *q;
    assert_int_equal(kp_session_new(model_q80, NULL, &q), KP_OK);
    assert_int_equal(kp_session_load(q, path), KP_ERR_MODEL_MISMATCH);
    assert_int_equal(kp_session_n_past(q), 0);
    kp_session_free(q);
    kp_session_params sp;
    kp_session_params_init(&sp);
    sp.n_ctx = 8;
    assert_int_equal(kp_session_new(model, &sp, &q), KP_OK);
    assert_int_equal(kp_session_load(q, path), KP_ERR_CONTEXT_FULL);
    kp_session_free(q);
    sp.n_ctx = 0;
    sp.kv_type = KP_KV_F16;
    assert_int_equal(kp_session_new(model, &sp, &q), KP_OK);
    assert_int_equal(kp_session_load(q, path), KP_ERR_INVALID_ARG);
    kp_session_free(q);
    size_t n = 0;
    char *data = kp_test_slurp(path, &n);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n - 5, f); /* truncated */
    fclose(f);
    assert_int_equal(kp_session_load(t, path), KP_ERR_FORMAT);
    data[n / 2] ^= 0x40; /* corrupt one bit in the KV cache */
    f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
    assert_int_equal(kp_session_load(t, path), KP_ERR_FORMAT);
    assert_int_equal(kp_session_load(t, "/nonexistent/state"), KP_ERR_IO);
    assert_int_equal(kp_session_n_past(t), before);
    free(data);
    unlink(path);
    kp_session_free(s);
    kp_session_free(t);
    free(r), free(want), free(got);
}

static void stop_strings(void **state)
{
    (void)state;
    if (!model)
        skip();
    int32_t a[256];
    size_t na = tokenize("Once upon a time", a, 1);
    kp_session *s;
    assert_int_equal(kp_session_new(model, NULL, &s), KP_OK);
    rec *r = calloc(1, sizeof *r), *full = calloc(1, sizeof *full);
    assert_int_equal(gen(s, a, na, 60, full, NULL), KP_OK);
    const char *stops[] = {"zebra", "named Li"};
    kp_generate_params gp;
    kp_generate_params_init(&gp);
    gp.on_token = on_token;
    gp.user = r;
    gp.stop_strings = stops;
    gp.n_stop_strings = 2;
    kp_generate_stats st;
    assert_int_equal(kp_session_truncate(s, 0), KP_OK);
    assert_int_equal(kp_generate(s, a, na, &gp, &st), KP_OK);
    assert_int_equal(st.reason, KP_STOP_STRING);
    assert_int_equal(st.stop_string, 1);
    /* What was reported is the unrestricted text up to the stop string. */
    const char *cut = strstr(full->text, "named Li");
    assert_non_null(cut);
    assert_int_equal(r->len, (size_t)(cut - full->text));
    assert_memory_equal(r->text, full->text, r->len);
    kp_session_free(s);
    free(r), free(full);
}

typedef struct canceller {
    kp_session *s;
    sem_t go;
} canceller;

static void *cancel_thread(void *arg)
{
    canceller *c = arg;
    sem_wait(&c->go);
    kp_session_cancel(c->s);
    return NULL;
}

static void cancel_from_other_thread(void **state)
{
    (void)state;
    if (!model)
        skip();
    int32_t a[256];
    size_t na = tokenize("Once upon a time", a, 1);
    kp_session *s;
    assert_int_equal(kp_session_new(model, NULL, &s), KP_OK);
    canceller c;
    c.s = s;
    assert_int_equal(sem_init(&c.go, 0, 0), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cancel_thread, &c), 0);
    rec *r = calloc(1, sizeof *r);
    r->thread = &th;
    r->go = &c.go;
    r->cancel_at = 5;
    assert_int_equal(gen(s, a, na, 0, r, NULL), KP_ERR_CANCELLED);
    assert_int_equal(r->n, 5);
    assert_int_equal(kp_session_n_past(s), (int32_t)na + 5);
    /* The request was consumed: the session goes on. */
    rec *more = calloc(1, sizeof *more);
    assert_int_equal(gen(s, NULL, 0, 3, more, NULL), KP_OK);
    assert_int_equal(more->n, 3);
    sem_destroy(&c.go);
    kp_session_free(s);
    free(r), free(more);
}

static void context_policies(void **state)
{
    (void)state;
    if (!model)
        skip();
    int32_t a[256];
    size_t na = tokenize("Once upon a time", a, 1);
    kp_session_params sp;
    kp_session_params_init(&sp);
    sp.n_ctx = 48;
    kp_session *s;
    assert_int_equal(kp_session_new(model, &sp, &s), KP_OK);
    rec *r = calloc(1, sizeof *r);
    kp_generate_stats st;
    assert_int_equal(gen(s, a, na, 100, r, &st), KP_ERR_CONTEXT_FULL);
    assert_int_equal(st.reason, KP_STOP_CONTEXT);
    assert_int_equal(kp_session_n_past(s), 48);
    assert_int_equal(kp_session_truncate(s, 0), KP_OK);
    kp_generate_params gp;
    kp_generate_params_init(&gp);
    gp.max_new_tokens = 150;
    gp.context_policy = KP_CONTEXT_SLIDE;
    gp.n_keep = (int32_t)na;
    memset(r, 0, sizeof *r);
    gp.on_token = on_token;
    gp.user = r;
    assert_int_equal(kp_generate(s, a, na, &gp, &st), KP_OK);
    assert_true(st.reason == KP_STOP_MAX_TOKENS || st.reason == KP_STOP_EOG);
    assert_true(kp_session_n_past(s) <= 48);
    /* The kept prefix is the prompt. */
    assert_memory_equal(kp_session_tokens_borrow(s), a, na * sizeof(int32_t));
    printf("slide: %d tokens generated in a 48-position context\n", st.n_generated);
    assert_true(st.n_generated > 48);
    kp_session_free(s);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(multi_turn_reuse), cmocka_unit_test(save_restore),
        cmocka_unit_test(stop_strings),     cmocka_unit_test(cancel_from_other_thread),
        cmocka_unit_test(context_policies),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
