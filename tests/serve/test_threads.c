/* The thread-safety contract of kuiper.h, exercised: one model, N sessions driven from N threads
 * at once (each with its own sampler), plus a kp_batch_decode of two more on another thread,
 * must give every session exactly the ids it gives when run alone. Built under ThreadSanitizer in CI, where it also proves the sharing race-free. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "serve_util.h"

#define N_THREADS 4
#define N_GEN 24

typedef struct job {
    kp_model *m;
    int prompt;
    int seeded;          /* 0: greedy; else the sampler's seed */
    int32_t ids[N_GEN];
    int n;
    kp_status st;
} job;

static int on_token(void *user, const kp_token_event *ev)
{
    job *j = user;
    if (!ev->is_prompt && ev->id >= 0 && j->n < N_GEN)
        j->ids[j->n++] = ev->id;
    return 0;
}

static void *run_job(void *arg)
{
    job *j = arg;
    int32_t prompt[64];
    size_t np = su_prompt(j->m, j->prompt, prompt, 64);
    kp_session *s = NULL;
    kp_sampler *smp = NULL;
    kp_session_params sp;
    kp_session_params_init(&sp);
    sp.n_ctx = 128;
    j->n = 0;
    if ((j->st = kp_session_new(j->m, &sp, &s)) != KP_OK)
        return NULL;
    kp_generate_params gp;
    kp_generate_params_init(&gp);
    gp.max_new_tokens = N_GEN;
    gp.on_token = on_token;
    gp.user = j;
    if (j->seeded) {
        if ((j->st = kp_sampler_new(NULL, &smp)) != KP_OK || (j->st = kp_sampler_set(smp, KP_SAMPLER_TEMPERATURE, 0.9)) ||
            (j->st = kp_sampler_set(smp, KP_SAMPLER_TOP_P, 0.95)) ||
            (j->st = kp_sampler_set(smp, KP_SAMPLER_SEED, j->seeded)))
            goto out;
        gp.sampler = smp;
    }
    j->st = np ? kp_generate(s, prompt, np, &gp, NULL) : KP_ERR_INTERNAL;
out:
    kp_sampler_free(smp);
    kp_session_free(s);
    return NULL;
}

/* Greedy decoding of two sessions through kp_batch_decode, on a thread of its own. */
typedef struct batch_job {
    kp_model *m;
    int32_t ids[2][N_GEN];
    kp_status st;
} batch_job;

static int32_t argmax(const float *l, int32_t n)
{
    int32_t b = 0;
    for (int32_t i = 1; i < n; i++)
        if (l[i] > l[b])
            b = i;
    return b;
}

static void *run_batch(void *arg)
{
    batch_job *b = arg;
    kp_session_params sp;
    kp_session_params_init(&sp);
    sp.n_ctx = 128;
    kp_session *ss[2] = {NULL, NULL};
    int32_t V = (int32_t)kp_model_info_get(b->m, KP_INFO_N_VOCAB), prompt[64], feed[2];
    b->st = KP_OK;
    for (int i = 0; i < 2 && !b->st; i++) {
        size_t np = su_prompt(b->m, i, prompt, 64);
        if (!(b->st = kp_session_new(b->m, &sp, &ss[i])))
            b->st = kp_session_eval(ss[i], prompt, np, KP_EVAL_LOGITS_LAST);
    }
    for (int t = 0; t < N_GEN && !b->st; t++) {
        for (int i = 0; i < 2; i++)
            feed[i] = b->ids[i][t] = argmax(kp_session_logits_borrow(ss[i], 0), V);
        b->st = kp_batch_decode(ss, feed, 2, KP_EVAL_LOGITS_LAST);
    }
    kp_session_free(ss[0]);
    kp_session_free(ss[1]);
    return NULL;
}

static void check_model(const char *which)
{
    kp_model *m = su_load(which, 2); /* two pool threads, so the worker pool is shared too */
    if (!m) {
        skip();
        return;
    }
    job alone[2 * N_THREADS], together[2 * N_THREADS];
    for (int i = 0; i < 2 * N_THREADS; i++) {
        alone[i] = (job){.m = m, .prompt = i % N_THREADS, .seeded = i < N_THREADS ? 0 : 1000 + i};
        together[i] = alone[i];
        run_job(&alone[i]);
        assert_int_equal(alone[i].st, KP_OK);
        assert_true(alone[i].n > 0);
    }
    /* greedy threads and seeded threads at once: 2N sessions on one model */
    pthread_t th[2 * N_THREADS], bt;
    batch_job bj = {.m = m};
    assert_int_equal(pthread_create(&bt, NULL, run_batch, &bj), 0); /* and a batch beside them */
    for (int i = 0; i < 2 * N_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, run_job, &together[i]), 0);
    for (int i = 0; i < 2 * N_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_join(bt, NULL);
    assert_int_equal(bj.st, KP_OK);
    for (int i = 0; i < 2; i++) /* the greedy solo runs of prompts 0 and 1, up to where they ended */
        assert_memory_equal(bj.ids[i], alone[i].ids, sizeof(int32_t) * (size_t)alone[i].n);
    int differ_by_seed = 0;
    for (int i = 0; i < 2 * N_THREADS; i++) {
        assert_int_equal(together[i].st, KP_OK);
        assert_int_equal(together[i].n, alone[i].n);
        assert_memory_equal(together[i].ids, alone[i].ids, sizeof(int32_t) * (size_t)alone[i].n);
        if (i >= N_THREADS)
            differ_by_seed |= memcmp(alone[i].ids, alone[i - N_THREADS].ids, sizeof alone[i].ids) != 0;
    }
    assert_true(differ_by_seed); /* the seeded runs really sampled */
    kp_model_free(m);
}

static void test_stories260k(void **state)
{
    (void)state;
    check_model("stories260K");
}

static void test_gguf_q8_0(void **state)
{
    (void)state;
    check_model("kp-llama-small-Q8_0.gguf");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_gguf_q8_0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
