/* End to end on the real stories260K model against llama2.c's own outputs: greedy ids and
 * text, every position's logits, the seeded top-p sample, and the Q8_0 (v2) checkpoint. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <kuiper/kuiper.h>

#include "refs.h"

#define DIR_M "models/stories260K/"
#define DIR_R "reference/stories260K/"

typedef struct collect {
    int32_t ids[2048];
    int n;
    char text[65536];
    size_t len;
} collect;

static int on_token(void *user, const kp_token_event *ev)
{
    collect *c = user;
    if (ev->id >= 0 && c->n < 2048)
        c->ids[c->n++] = ev->id;
    if (c->len + ev->piece_len < sizeof c->text) {
        memcpy(c->text + c->len, ev->piece, ev->piece_len);
        c->len += ev->piece_len;
    }
    return 0;
}

static kp_model *load(const char *model_rel, int threads)
{
    char mp[1024], tp[1024];
    if (!kp_test_file(mp, sizeof mp, model_rel) || !kp_test_file(tp, sizeof tp, DIR_M "tok512.bin"))
        return NULL;
    kp_model_params p;
    kp_model_params_init(&p);
    p.tokenizer_path = tp;
    p.n_threads = threads;
    kp_model *m = NULL;
    kp_status st = kp_model_load(mp, &p, &m);
    if (st)
        fail_msg("load %s: %s (%s)", mp, kp_status_str(st), kp_last_error());
    return m;
}

/* Runs kuiper-generate's flow through the API and returns what it streamed. */
static void generate(kp_model *m, const char *prompt, int n_new, kp_sampler *smp, collect *c)
{
    const kp_tokenizer *tok = kp_model_tokenizer_borrow(m);
    int32_t ids[1024];
    size_t n = 0;
    assert_int_equal(kp_tokenize(tok, prompt, strlen(prompt), KP_TOKENIZE_ADD_SPECIAL, ids, 1024, &n), KP_OK);
    kp_session *s;
    assert_int_equal(kp_session_new(m, NULL, &s), KP_OK);
    kp_generate_params gp;
    kp_generate_params_init(&gp);
    gp.max_new_tokens = n_new;
    gp.sampler = smp;
    gp.on_token = on_token;
    gp.user = c;
    gp.echo_prompt = 1;
    memset(c, 0, sizeof *c);
    c->ids[c->n++] = ids[0]; /* BOS is fed, not echoed */
    kp_generate_stats stats;
    assert_int_equal(kp_generate(s, ids, n, &gp, &stats), KP_OK);
    if (stats.stop_id >= 0) /* llama2.c's id record ends with the BOS that stopped it */
        c->ids[c->n++] = stats.stop_id;
    kp_session_free(s);
}

static void check_greedy(const char *name, int threads)
{
    char path[1024];
    char rel[256];
    snprintf(rel, sizeof rel, DIR_R "%s.ids", name);
    if (!kp_test_file(path, sizeof path, rel))
        skip();
    ref_ids r = {0};
    assert_true(ref_ids_load(path, &r));
    snprintf(rel, sizeof rel, DIR_R "%s.prompt", name);
    assert_non_null(kp_test_file(path, sizeof path, rel));
    char *prompt = kp_test_slurp(path, NULL);
    snprintf(rel, sizeof rel, DIR_R "%s.txt", name);
    assert_non_null(kp_test_file(path, sizeof path, rel));
    size_t tlen = 0;
    char *want = kp_test_slurp(path, &tlen);
    while (tlen && want[tlen - 1] == '\n')
        want[--tlen] = 0;

    kp_model *m = load(DIR_M "stories260K.bin", threads);
    assert_non_null(m);
    kp_sampler *smp;
    assert_int_equal(kp_sampler_new(NULL, &smp), KP_OK);
    assert_int_equal(kp_sampler_set(smp, KP_SAMPLER_TEMPERATURE, 0.0), KP_OK);
    collect *c = calloc(1, sizeof *c);
    generate(m, prompt, r.n_seq - r.n_prompt, smp, c);
    assert_int_equal(c->n, r.n_seq);
    for (int i = 0; i < r.n_seq; i++)
        if (c->ids[i] != r.seq[i])
            fail_msg("%s: id %d is %d, llama2.c has %d", name, i, c->ids[i], r.seq[i]);
    c->text[c->len] = 0;
    assert_string_equal(c->text, want);
    free(c);
    kp_sampler_free(smp);
    kp_model_free(m);
    free(prompt);
    free(want);
}

static void greedy_p0(void **state) { (void)state; check_greedy("greedy_p0", 1); }
static void greedy_p1(void **state) { (void)state; check_greedy("greedy_p1", 2); }
static void greedy_p2(void **state) { (void)state; check_greedy("greedy_p2", 0); }

/* logits_p1.jsonl: one line per position with the token fed and the full logits after it. */
static void logits_every_position(void **state)
{
    (void)state;
    char path[1024];
    if (!kp_test_file(path, sizeof path, DIR_R "logits_p1.jsonl"))
        skip();
    char *txt = kp_test_slurp(path, NULL);
    assert_non_null(txt);
    enum { MAXPOS = 64, V = 512 };
    static float want[MAXPOS][V];
    int32_t tokens[MAXPOS];
    int npos = 0;
    for (char *line = txt; line && *line && npos < MAXPOS; npos++) {
        char *tk = strstr(line, "\"token\":");
        char *lg = strstr(line, "\"logits\": [");
        assert_non_null(tk);
        assert_non_null(lg);
        tokens[npos] = (int32_t)strtol(tk + 8, NULL, 10);
        char *p = lg + strlen("\"logits\": [");
        for (int i = 0; i < V; i++) {
            char *end;
            want[npos][i] = strtof(p, &end);
            assert_true(end != p);
            p = end + 1;
        }
        line = strchr(p, '\n');
        if (line)
            line++;
    }
    free(txt);
    assert_true(npos >= 20);
    kp_model *m = load(DIR_M "stories260K.bin", 2);
    assert_non_null(m);
    kp_session *s;
    /* Once as one batch with every row's logits, once a token at a time. */
    for (int mode = 0; mode < 2; mode++) {
        assert_int_equal(kp_session_new(m, NULL, &s), KP_OK);
        double worst = 0;
        if (mode == 0) {
            assert_int_equal(kp_session_eval(s, tokens, (size_t)npos, KP_EVAL_LOGITS_ALL), KP_OK);
        }
        for (int p = 0; p < npos; p++) {
            const float *got;
            if (mode == 1) {
                assert_int_equal(kp_session_eval(s, &tokens[p], 1, KP_EVAL_LOGITS_LAST), KP_OK);
                got = kp_session_logits_borrow(s, 0);
            } else {
                got = kp_session_logits_borrow(s, (size_t)p);
            }
            assert_non_null(got);
            for (int i = 0; i < V; i++) {
                double d = fabs((double)got[i] - want[p][i]);
                if (d > worst)
                    worst = d;
            }
        }
        printf("logits_p1 mode %s: max |diff| vs llama2.c = %.3g over %d positions\n", mode ? "decode" : "batch",
               worst, npos);
        assert_true(worst <= 1e-4);
        kp_session_free(s);
    }
    kp_model_free(m);
}

static void check_ids(const char *model_rel, const char *ids_rel, const char *prompt, double temp, double top_p,
                      double seed, int threads)
{
    char path[1024];
    if (!kp_test_file(path, sizeof path, ids_rel))
        skip();
    ref_ids r = {0};
    assert_true(ref_ids_load(path, &r));
    kp_model *m = load(model_rel, threads);
    assert_non_null(m);
    kp_sampler *smp;
    assert_int_equal(kp_sampler_new(NULL, &smp), KP_OK);
    assert_int_equal(kp_sampler_set(smp, KP_SAMPLER_TEMPERATURE, temp), KP_OK);
    assert_int_equal(kp_sampler_set(smp, KP_SAMPLER_TOP_P, top_p), KP_OK);
    assert_int_equal(kp_sampler_set(smp, KP_SAMPLER_SEED, seed), KP_OK);
    collect *c = calloc(1, sizeof *c);
    generate(m, prompt, r.n_seq - r.n_prompt, smp, c);
    assert_int_equal(c->n, r.n_seq);
    for (int i = 0; i < r.n_seq; i++)
        if (c->ids[i] != r.seq[i])
            fail_msg("%s: id %d is %d, llama2.c has %d", ids_rel, i, c->ids[i], r.seq[i]);
    free(c);
    kp_sampler_free(smp);
    kp_model_free(m);
}

static void sample_seed42(void **state)
{
    (void)state;
    /* The same draws whatever the thread count. */
    for (int threads = 1; threads <= 3; threads++)
        check_ids(DIR_M "stories260K.bin", DIR_R "sample_t1.0_p0.9_s42.ids", "Once upon a time", 1.0, 0.9, 42,
                  threads);
}

/* runq quantizes every matmul input to int8, so one activation landing on the other side of a
 * rounding boundary (float32 reassociation in the reference build) moves logits by ~0.03. The
 * reference is teacher-forced: at every position our argmax must be llama2.c's next id, except
 * where our own top-1 beats that id by less than 0.05 (a flip of that kind, reported). */
static void q80_greedy(void **state)
{
    (void)state;
    char path[1024];
    if (!kp_test_file(path, sizeof path, DIR_R "q80_greedy_p1.ids"))
        skip();
    ref_ids r = {0};
    assert_true(ref_ids_load(path, &r));
    kp_model *m = load(DIR_M "stories260K_q80.bin", 2);
    assert_non_null(m);
    const kp_tokenizer *tok = kp_model_tokenizer_borrow(m);
    int32_t ids[16];
    size_t n = 0;
    assert_int_equal(kp_tokenize(tok, "Once upon a time", 16, KP_TOKENIZE_ADD_SPECIAL, ids, 16, &n), KP_OK);
    assert_int_equal((int)n, r.n_prompt);
    assert_memory_equal(ids, r.prompt, n * sizeof *ids);
    kp_session *s;
    assert_int_equal(kp_session_new(m, NULL, &s), KP_OK);
    assert_int_equal(kp_session_eval(s, r.seq, (size_t)r.n_seq - 1, KP_EVAL_LOGITS_ALL), KP_OK);
    int exact = 0, near = 0, first_near = -1;
    for (int p = r.n_prompt - 1; p < r.n_seq - 1; p++) {
        const float *lg = kp_session_logits_borrow(s, (size_t)p);
        int best = 0;
        for (int i = 1; i < 512; i++)
            if (lg[i] > lg[best])
                best = i;
        if (best == r.seq[p + 1]) {
            exact++;
            continue;
        }
        float margin = lg[best] - lg[r.seq[p + 1]];
        if (margin >= 0.05f)
            fail_msg("position %d: argmax %d beats llama2.c's %d by %.4f", p, best, r.seq[p + 1], margin);
        if (first_near < 0)
            first_near = p;
        near++;
    }
    printf("q80: %d of %d positions identical to runq; %d near-ties (< 0.05), first at %d\n", exact, exact + near,
           near, first_near);
    assert_true(near <= 2);
    kp_session_free(s);
    kp_model_free(m);
}

/* A prompt of more rows than one chunk of activations (256) in one call: every position's
 * logits equal those of feeding the same ids one call per token. */
static void prompt_longer_than_a_chunk(void **state)
{
    (void)state;
    kp_model *m = load(DIR_M "stories260K.bin", 2);
    if (!m)
        skip();
    enum { N = 300 };
    int32_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = i == 0 ? 1 : 3 + (i * 37) % 500;
    kp_session *all, *one;
    assert_int_equal(kp_session_new(m, NULL, &all), KP_OK);
    assert_int_equal(kp_session_new(m, NULL, &one), KP_OK);
    assert_int_equal(kp_session_eval(all, ids, N, KP_EVAL_LOGITS_ALL), KP_OK);
    double worst = 0;
    for (int p = 0; p < N; p++) {
        assert_int_equal(kp_session_eval(one, &ids[p], 1, KP_EVAL_LOGITS_LAST), KP_OK);
        const float *a = kp_session_logits_borrow(all, (size_t)p), *b = kp_session_logits_borrow(one, 0);
        double mx = 0, d = 0;
        for (int i = 0; i < 512; i++) {
            mx = fmax(mx, fabs(b[i]));
            d = fmax(d, fabs((double)a[i] - b[i]));
        }
        worst = fmax(worst, d / mx);
    }
    printf("%d positions in one call vs one by one: max |difference| / max |logit| = %.2e\n", N, worst);
    assert_true(worst <= 1e-5);
    kp_session_free(all);
    kp_session_free(one);
    kp_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(greedy_p0),     cmocka_unit_test(greedy_p1),     cmocka_unit_test(greedy_p2),
        cmocka_unit_test(logits_every_position), cmocka_unit_test(sample_seed42), cmocka_unit_test(q80_greedy),
        cmocka_unit_test(prompt_longer_than_a_chunk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
