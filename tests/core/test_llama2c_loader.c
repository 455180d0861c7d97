/* llama2.c checkpoint loading: v1 and v2 files this test writes itself from the v0 original,
 * and hostile files (truncated at many offsets, absurd headers, bad versions and groups). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <kuiper/kuiper.h>

#include "testdata.h"

#define MODEL "models/stories260K/stories260K.bin"
#define TOK "models/stories260K/tok512.bin"

static char tok_path[1024];

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static kp_status try_load(const char *path, kp_model **m)
{
    kp_model_params p;
    kp_model_params_init(&p);
    p.tokenizer_path = tok_path;
    p.n_threads = 1;
    return kp_model_load(path, &p, m);
}

/* Logits after feeding a fixed 6-token prompt, for comparing two files of the same weights. */
static void logits_of(const char *path, float *out)
{
    kp_model *m = NULL;
    kp_status st = try_load(path, &m);
    if (st)
        fail_msg("load %s: %s", path, kp_last_error());
    kp_session *s;
    assert_int_equal(kp_session_new(m, NULL, &s), KP_OK);
    const int32_t ids[6] = {1, 403, 407, 261, 378, 432};
    assert_int_equal(kp_session_eval(s, ids, 6, KP_EVAL_LOGITS_LAST), KP_OK);
    memcpy(out, kp_session_logits_borrow(s, 0), 512 * sizeof(float));
    kp_session_free(s);
    kp_model_free(m);
}

typedef struct hdr {
    int32_t dim, hidden, layers, heads, kv_heads, vocab, seq_len;
} hdr;

/* Section pointers of the v0 file (see docs/formats.md). */
typedef struct v0 {
    hdr h;
    const float *emb, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3, *rms_final;
} v0;

static void parse_v0(const char *data, v0 *v)
{
    memcpy(&v->h, data, sizeof v->h);
    const hdr *h = &v->h;
    int kv = h->dim / h->heads * h->kv_heads;
    const float *p = (const float *)(const void *)(data + 28);
    v->emb = p, p += (size_t)h->vocab * h->dim;
    v->rms_att = p, p += (size_t)h->layers * h->dim;
    v->wq = p, p += (size_t)h->layers * h->dim * h->dim;
    v->wk = p, p += (size_t)h->layers * h->dim * kv;
    v->wv = p, p += (size_t)h->layers * h->dim * kv;
    v->wo = p, p += (size_t)h->layers * h->dim * h->dim;
    v->rms_ffn = p, p += (size_t)h->layers * h->dim;
    v->w1 = p, p += (size_t)h->layers * h->dim * h->hidden;
    v->w2 = p, p += (size_t)h->layers * h->dim * h->hidden;
    v->w3 = p, p += (size_t)h->layers * h->dim * h->hidden;
    v->rms_final = p;
}

static void put(FILE *f, const void *p, size_t n) { assert_int_equal(fwrite(p, 1, n, f), n); }

static void put_header(FILE *f, const hdr *h, int version, int gs)
{
    unsigned char b[256] = {0};
    uint32_t magic = 0x616b3432;
    memcpy(b, &magic, 4);
    memcpy(b + 4, &version, 4);
    memcpy(b + 8, h, 28);
    b[36] = 1; /* shared classifier */
    if (version == 2)
        memcpy(b + 37, &gs, 4);
    put(f, b, 256);
}

/* Quantizes like llama2.c's exporter: scale = max|w|/127, q = round half to even (torch). */
static void put_q80(FILE *f, const float *w, size_t n, int gs)
{
    int8_t *q = malloc(n);
    float *s = malloc(n / (size_t)gs * sizeof *s);
    for (size_t g = 0; g < n / (size_t)gs; g++) {
        float mx = 0;
        for (int i = 0; i < gs; i++)
            mx = fmaxf(mx, fabsf(w[g * gs + i]));
        s[g] = mx / 127.0f;
        for (int i = 0; i < gs; i++)
            q[g * gs + i] = (int8_t)(s[g] ? rintf(w[g * gs + i] / s[g]) : 0);
    }
    put(f, q, n);
    put(f, s, n / (size_t)gs * sizeof *s);
    free(q);
    free(s);
}

static void write_v12(const char *path, const v0 *v, int version, int gs)
{
    const hdr *h = &v->h;
    int kv = h->dim / h->heads * h->kv_heads;
    size_t L = (size_t)h->layers, D = (size_t)h->dim, H = (size_t)h->hidden;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    put_header(f, h, version, gs);
    put(f, v->rms_att, L * D * 4);
    put(f, v->rms_ffn, L * D * 4);
    put(f, v->rms_final, D * 4);
    struct {
        const float *base;
        size_t per_layer;
    } mats[] = {{v->wq, D * D}, {v->wk, D * kv}, {v->wv, D * kv}, {v->wo, D * D},
                {v->w1, D * H}, {v->w2, D * H},  {v->w3, D * H}};
    if (version == 1) {
        put(f, v->emb, (size_t)h->vocab * D * 4);
        for (size_t i = 0; i < 7; i++)
            put(f, mats[i].base, L * mats[i].per_layer * 4);
    } else {
        put_q80(f, v->emb, (size_t)h->vocab * D, gs);
        for (size_t i = 0; i < 7; i++)
            for (size_t l = 0; l < L; l++)
                put_q80(f, mats[i].base + l * mats[i].per_layer, mats[i].per_layer, gs);
    }
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    (void)state;
    if (!kp_test_file(tok_path, sizeof tok_path, TOK))
        tok_path[0] = 0;
    return 0;
}

/* v1 holds the same floats in another order: the logits must be bit-identical to v0's. */
static void v1_written_here_matches_v0(void **state)
{
    (void)state;
    char path[1024];
    if (!tok_path[0] || !kp_test_file(path, sizeof path, MODEL))
        skip();
    size_t n = 0;
    char *data = kp_test_slurp(path, &n);
    v0 v;
    parse_v0(data, &v);
    char tmp[] = "/tmp/kp_v1_XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    close(fd);
    write_v12(tmp, &v, 1, 0);
    static float a[512], b[512];
    logits_of(path, a);
    logits_of(tmp, b);
    assert_memory_equal(a, b, sizeof a);
    unlink(tmp);
    free(data);
}

/* Our v2 writer, following the format notes, reproduces llama2.c's exporter byte for byte. */
static void v2_written_here_equals_exporter(void **state)
{
    (void)state;
    char path[1024], q80[1024];
    if (!tok_path[0] || !kp_test_file(path, sizeof path, MODEL) ||
        !kp_test_file(q80, sizeof q80, "models/stories260K/stories260K_q80.bin"))
        skip();
    size_t n = 0, nq = 0;
    char *data = kp_test_slurp(path, &n);
    char *want = kp_test_slurp(q80, &nq);
    v0 v;
    parse_v0(data, &v);
    char tmp[] = "/tmp/kp_v2_XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    close(fd);
    write_v12(tmp, &v, 2, 4);
    size_t ng = 0;
    char *got = kp_test_slurp(tmp, &ng);
    assert_int_equal(ng, nq);
    assert_memory_equal(got, want, nq);
    /* And it loads: quantized logits stay close to the float ones. */
    static float a[512], b[512];
    logits_of(path, a);
    logits_of(tmp, b);
    float worst = 0;
    for (int i = 0; i < 512; i++)
        worst = fmaxf(worst, fabsf(a[i] - b[i]));
    printf("v2 (group 4) vs fp32 logits: max |diff| %.4f\n", worst);
    assert_true(worst < 0.5f);
    unlink(tmp);
    free(got);
    free(want);
    free(data);
}

static void expect_fail(const char *path, const char *what)
{
    kp_model *m = (kp_model *)(uintptr_t)1;
    kp_status st = try_load(path, &m);
    if (st == KP_OK)
        fail_msg("%s: loaded", what);
    assert_null(m);
    assert_true(strlen(kp_last_error()) > 0);
    assert_true(st == KP_ERR_FORMAT || st == KP_ERR_UNSUPPORTED || st == KP_ERR_IO);
}

static void check_truncations(const char *rel, size_t step)
{
    char path[1024];
    if (!tok_path[0] || !kp_test_file(path, sizeof path, rel))
        skip();
    size_t n = 0;
    char *data = kp_test_slurp(path, &n);
    char tmp[] = "/tmp/kp_trunc_XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    close(fd);
    int tried = 0;
    for (size_t cut = 0; cut < n; cut = cut < 300 ? cut + 1 : cut + step) {
        write_file(tmp, data, cut);
        char what[64];
        snprintf(what, sizeof what, "%s cut at %zu", rel, cut);
        expect_fail(tmp, what);
        tried++;
    }
    write_file(tmp, data, n - 1);
    expect_fail(tmp, "last byte cut");
    printf("%s: %d truncations rejected\n", rel, tried + 1);
    unlink(tmp);
    free(data);
}

static void truncated_v0(void **state)
{
    (void)state;
    check_truncations(MODEL, 4099);
}

static void truncated_v2(void **state)
{
    (void)state;
    check_truncations("models/stories260K/stories260K_q80.bin", 2053);
}

static void hostile_headers(void **state)
{
    (void)state;
    char path[1024];
    if (!tok_path[0] || !kp_test_file(path, sizeof path, MODEL))
        skip();
    size_t n = 0;
    char *data = kp_test_slurp(path, &n);
    char tmp[] = "/tmp/kp_hdr_XXXXXX";
    int fd = mkstemp(tmp);
    assert_true(fd >= 0);
    close(fd);
    const hdr good;
    memcpy((void *)&good, data, sizeof good);
    hdr bad[] = {
        {-64, 172, 5, 8, 4, 512, 512},      {64, 172, 5, 8, 4, 512, -1},
        {64, 172, 5, 8, 3, 512, 512},       {64, 172, 5, 7, 7, 512, 512},
        {1 << 30, 172, 5, 8, 4, 512, 512},  {64, 172, 0x7fffffff, 8, 4, 512, 512},
        {64, 172, 5, 8, 4, INT32_MIN, 512}, {64, 172, 5, 8, 4, 0, 512},
        {64, 0x7fffffff, 5, 8, 4, 512, 0x7fffffff},
        {64, 172, 5, 8, 4, 511, 512}, /* consistent, but the file is then the wrong size */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memcpy(data, &bad[i], sizeof bad[i]);
        write_file(tmp, data, n);
        char what[64];
        snprintf(what, sizeof what, "bad header %zu", i);
        if (i == 9) {
            /* vocab 511 loads as a file (it is long enough) but the 512-token tokenizer does not fit */
            kp_model *m = NULL;
            assert_int_equal(try_load(tmp, &m), KP_ERR_TOKENIZER_MISMATCH);
            assert_null(m);
            continue;
        }
        expect_fail(tmp, what);
    }
    /* v1/v2 headers: unknown version, group size that does not divide, zero group size. */
    v0 v;
    memcpy(data, &good, sizeof good);
    parse_v0(data, &v);
    write_v12(tmp, &v, 2, 4);
    size_t nq = 0;
    char *q = kp_test_slurp(tmp, &nq);
    int32_t val = 3;
    memcpy(q + 4, &val, 4);
    write_file(tmp, q, nq);
    kp_model *m = NULL;
    assert_int_equal(try_load(tmp, &m), KP_ERR_UNSUPPORTED);
    val = 2;
    memcpy(q + 4, &val, 4);
    int32_t gs[] = {0, -4, 5, 128};
    for (size_t i = 0; i < 4; i++) {
        memcpy(q + 37, &gs[i], 4);
        write_file(tmp, q, nq);
        expect_fail(tmp, "bad group size");
    }
    free(q);
    unlink(tmp);
    free(data);
}

static void missing_and_mismatched_files(void **state)
{
    (void)state;
    char path[1024], big_tok[1024];
    if (!tok_path[0] || !kp_test_file(path, sizeof path, MODEL) ||
        !kp_test_file(big_tok, sizeof big_tok, "models/llama2-tokenizer/tokenizer.bin"))
        skip();
    kp_model *m = NULL;
    assert_int_equal(try_load("/nonexistent/model.bin", &m), KP_ERR_IO);
    assert_non_null(strstr(kp_last_error(), "/nonexistent/model.bin"));
    kp_model_params p;
    kp_model_params_init(&p);
    p.tokenizer_path = big_tok;
    assert_int_equal(kp_model_load(path, &p, &m), KP_ERR_TOKENIZER_MISMATCH);
    assert_null(m);
    printf("mismatch message: %s\n", kp_last_error());
    p.tokenizer_path = NULL; /* llama2.c files store no tokenizer */
    assert_int_equal(kp_model_load(path, &p, &m), KP_ERR_INVALID_ARG);
    p.struct_size = 3;
    assert_int_equal(kp_model_load(path, &p, &m), KP_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(v1_written_here_matches_v0), cmocka_unit_test(v2_written_here_equals_exporter),
        cmocka_unit_test(truncated_v0),               cmocka_unit_test(truncated_v2),
        cmocka_unit_test(hostile_headers),            cmocka_unit_test(missing_and_mismatched_files),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
