/* Sessions against misuse and hostile state files, on the real stories260K model: calls that
 * would change a session from inside its own kp_generate callback are refused with
 * KP_ERR_BUSY, state files with a valid checksum but non-finite KV or logits are rejected, and
 * a directory passed as a state file is named as one. */
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

static kp_model *model;

static int setup(void **state)
{
    (void)state;
    char mp[1024], tp[1024];
    if (!kp_test_file(mp, sizeof mp, "models/stories260K/stories260K.bin") ||
        !kp_test_file(tp, sizeof tp, "models/stories260K/tok512.bin"))
        return 0;
    kp_model_params p;
    kp_model_params_init(&p);
    p.tokenizer_path = tp;
    return kp_model_load(mp, &p, &model) ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    kp_model_free(model);
    return 0;
}

static size_t tokenize(const char *text, int32_t *ids)
{
    size_t n = 0;
    assert_int_equal(kp_tokenize(kp_model_tokenizer_borrow(model), text, strlen(text), KP_TOKENIZE_ADD_SPECIAL, ids,
                                 256, &n),
                     KP_OK);
    return n;
}

typedef struct nest {
    kp_session *s;
    const char *state_path;
    int meddle;         /* make the re-entrant calls */
    int32_t ids[64];
    int n;
    int n_busy, n_other; /* nested calls refused with KP_ERR_BUSY and a message, and others */
    int n_past_changed;
} nest;

static void expect_busy(nest *x, kp_status st)
{
    if (st == KP_ERR_BUSY && strstr(kp_last_error(), "callback") && strstr(kp_session_last_error(x->s), "callback"))
        x->n_busy++;
    else
        x->n_other++;
}

static int on_token(void *user, const kp_token_event *ev)
{
    nest *x = user;
    if (ev->is_prompt || ev->id < 0)
        return 0;
    if (x->n < 64)
        x->ids[x->n++] = ev->id;
    if (!x->meddle)
        return 0;
    int32_t before = kp_session_n_past(x->s);
    int32_t one = ev->id;
    kp_generate_params gp;
    kp_generate_params_init(&gp);
    gp.max_new_tokens = 3;
    expect_busy(x, kp_generate(x->s, &one, 1, &gp, NULL));
    expect_busy(x, kp_generate(x->s, NULL, 0, &gp, NULL));
    expect_busy(x, kp_session_eval(x->s, &one, 1, KP_EVAL_LOGITS_LAST));
    expect_busy(x, kp_session_truncate(x->s, 0));
    expect_busy(x, kp_session_load(x->s, x->state_path));
    const int32_t *ones[1] = {&one};
    size_t n_one = 1;
    expect_busy(x, kp_batch_decode(&x->s, &one, 1, KP_EVAL_LOGITS_LAST));
    expect_busy(x, kp_batch_eval(&x->s, ones, &n_one, 1, KP_EVAL_LOGITS_LAST));
    if (kp_session_n_past(x->s) != before)
        x->n_past_changed++;
    return 0;
}

static void reentrant_calls_are_busy(void **state)
{
    (void)state;
    if (!model)
        skip();
    char path[] = "/tmp/kp_guard_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    int32_t a[256];
    size_t na = tokenize("Once upon a time", a);
    kp_session *s;
    assert_int_equal(kp_session_new(model, NULL, &s), KP_OK);
    assert_int_equal(kp_session_eval(s, a, 2, KP_EVAL_LOGITS_LAST), KP_OK);
    assert_int_equal(kp_session_save(s, path), KP_OK); /* a valid state for the nested load */
    assert_int_equal(kp_session_truncate(s, 0), KP_OK);

    nest *plain = calloc(1, sizeof *plain), *meddler = calloc(1, sizeof *meddler);
    kp_generate_params gp;
    kp_generate_params_init(&gp);
    gp.max_new_tokens = 12;
    gp.on_token = on_token;
    plain->s = s;
    gp.user = plain;
    assert_int_equal(kp_generate(s, a, na, &gp, NULL), KP_OK);
    assert_int_equal(plain->n, 12);

    assert_int_equal(kp_session_truncate(s, 0), KP_OK);
    meddler->s = s;
    meddler->state_path = path;
    meddler->meddle = 1;
    gp.user = meddler;
    kp_generate_stats st;
    assert_int_equal(kp_generate(s, a, na, &gp, &st), KP_OK);
    assert_int_equal(st.reason, KP_STOP_MAX_TOKENS);
    /* every nested call was refused, none changed the session, and the outer generation is the
     * one an undisturbed run gives */
    assert_int_equal(meddler->n_busy, 7 * 12);
    assert_int_equal(meddler->n_other, 0);
    assert_int_equal(meddler->n_past_changed, 0);
    assert_int_equal(meddler->n, 12);
    assert_memory_equal(meddler->ids, plain->ids, 12 * sizeof(int32_t));
    assert_int_equal(kp_session_n_past(s), (int32_t)na + 12);
    assert_string_equal(kp_status_str(KP_ERR_BUSY), "KP_ERR_BUSY: the session is in use by kp_generate");

    /* Outside the callback everything works again. */
    assert_int_equal(kp_session_truncate(s, 1), KP_OK);
    assert_int_equal(kp_session_eval(s, a + 1, 1, KP_EVAL_LOGITS_LAST), KP_OK);
    assert_int_equal(kp_session_load(s, path), KP_OK);
    assert_int_equal(kp_session_n_past(s), 2);
    gp.on_token = NULL;
    assert_int_equal(kp_generate(s, NULL, 0, &gp, NULL), KP_OK);
    kp_session_free(s);
    unlink(path);
    free(plain);
    free(meddler);
}

/* FNV-1a 64 over bytes: the state file's checksum, recomputed after an edit. */
static uint64_t fnv1a64(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void write_with_checksum(const char *path, unsigned char *data, size_t n)
{
    uint64_t sum = fnv1a64(0xcbf29ce484222325ull, data, n - 8);
    memcpy(data + n - 8, &sum, 8);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Edits the value at byte `off` of a saved state (f32 or f16 by `half`), re-checksums, loads. */
static kp_status load_edited(kp_session *t, const char *path, const unsigned char *orig, size_t n, size_t off,
                             int half, uint32_t bits)
{
    unsigned char *d = malloc(n);
    memcpy(d, orig, n);
    if (half) {
        uint16_t h = (uint16_t)bits;
        memcpy(d + off, &h, 2);
    } else {
        memcpy(d + off, &bits, 4);
    }
    write_with_checksum(path, d, n);
    free(d);
    return kp_session_load(t, path);
}

static void non_finite_state(kp_kv_type kv)
{
    if (!model)
        skip();
    int half = kv == KP_KV_F16;
    char path[] = "/tmp/kp_guard_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    int32_t a[256];
    size_t na = tokenize("Lily and Tom went to the park", a);
    kp_session_params sp;
    kp_session_params_init(&sp);
    sp.kv_type = kv;
    kp_session *s, *t;
    assert_int_equal(kp_session_new(model, &sp, &s), KP_OK);
    assert_int_equal(kp_session_new(model, &sp, &t), KP_OK);
    assert_int_equal(kp_session_eval(s, a, na, KP_EVAL_LOGITS_LAST), KP_OK);
    assert_int_equal(kp_session_save(s, path), KP_OK);
    size_t n = 0;
    unsigned char *orig = (unsigned char *)kp_test_slurp(path, &n);
    assert_non_null(orig);
    int32_t V = kp_tokenizer_n_vocab(kp_model_tokenizer_borrow(model));
    size_t kv_first = 64 + na * 4, logit_last = n - 8 - 4;
    size_t kv_last = n - 8 - (size_t)V * 4 - (half ? 2 : 4);
    uint32_t one = half ? 0x3c00u : 0x3f800000u, nan = half ? 0x7e00u : 0x7fc00000u;
    uint32_t inf = half ? 0xfc00u : 0xff800000u;

    /* The edit-and-checksum path itself is sound: a finite edit loads. */
    assert_int_equal(load_edited(t, path, orig, n, kv_first, half, one), KP_OK);
    assert_int_equal(kp_session_n_past(t), (int32_t)na);
    assert_int_equal(load_edited(t, path, orig, n, logit_last, 0, 0x3f800000u), KP_OK);
    assert_int_equal(kp_session_truncate(t, 3), KP_OK);

    const struct { size_t off; int half; uint32_t bits; const char *what; } bad[] = {
        {kv_first, half, nan, "KV cache"},
        {kv_last, half, inf, "KV cache"},
        {logit_last, 0, 0x7fc00000u, "logit"},
        {n - 8 - (size_t)V * 4, 0, 0x7f800000u, "logit"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(load_edited(t, path, orig, n, bad[i].off, bad[i].half, bad[i].bits), KP_ERR_FORMAT);
        assert_non_null(strstr(kp_last_error(), "non-finite"));
        assert_non_null(strstr(kp_last_error(), bad[i].what));
        assert_int_equal(kp_session_n_past(t), 3); /* unchanged */
    }
    free(orig);
    unlink(path);
    kp_session_free(s);
    kp_session_free(t);
}

static void non_finite_f32(void **state)
{
    (void)state;
    non_finite_state(KP_KV_F32);
}

static void non_finite_f16(void **state)
{
    (void)state;
    non_finite_state(KP_KV_F16);
}

static void directory_as_state(void **state)
{
    (void)state;
    if (!model)
        skip();
    kp_session *s;
    assert_int_equal(kp_session_new(model, NULL, &s), KP_OK);
    char dir[] = "/tmp/kp_guard_dir_XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(kp_session_load(s, dir), KP_ERR_IO);
    assert_non_null(strstr(kp_last_error(), "is a directory"));
    assert_null(strstr(kp_last_error(), "truncated"));
    assert_non_null(strstr(kp_session_last_error(s), "is a directory"));
    rmdir(dir);
    kp_session_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reentrant_calls_are_busy),
        cmocka_unit_test(non_finite_f32),
        cmocka_unit_test(non_finite_f16),
        cmocka_unit_test(directory_as_state),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
