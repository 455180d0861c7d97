/* kp_model_load on GGUF files this test writes: a tiny valid Llama loads and runs, and each
 * way a model file can be wrong (architecture, missing key, missing or mis-shaped tensor,
 * unsupported tensor type, vocabulary size) is a clear status whose message names the problem;
 * allocation failure at every step of a GGUF load leaks nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kuiper/kuiper.h"
#include "gguf_writer.h"
#include "fail_alloc.h"

enum { E = 32, HD = 16, NH = 2, NKV = 1, FF = 64, V = 8, CTX = 16 };
enum { T_F32 = 0, T_Q2_K = 10, T_Q8_0 = 8 };

typedef struct opts {
    const char *arch;        /* NULL: "llama" */
    const char *drop_tensor; /* leave this tensor out */
    const char *bad_shape;   /* give this tensor one row too many */
    const char *q2k_tensor;  /* declare this tensor as q2_K */
    int drop_embd_key;       /* omit <arch>.embedding_length */
    int vocab_tokens;        /* 0: V */
    int q8_matrices;         /* store the layer matrices as Q8_0 */
    int extra_q2k;           /* add a 256-column q2_K tensor "blk.0.extra.weight" */
} opts;

typedef struct tdesc {
    const char *name;
    int nd;
    uint64_t ne[2];
} tdesc;

static const tdesc tensors[] = {
    {"token_embd.weight", 2, {E, V}},
    {"output_norm.weight", 1, {E, 1}},
    {"blk.0.attn_norm.weight", 1, {E, 1}},
    {"blk.0.attn_q.weight", 2, {E, NH * HD}},
    {"blk.0.attn_k.weight", 2, {E, NKV * HD}},
    {"blk.0.attn_v.weight", 2, {E, NKV * HD}},
    {"blk.0.attn_output.weight", 2, {NH * HD, E}},
    {"blk.0.ffn_norm.weight", 1, {E, 1}},
    {"blk.0.ffn_gate.weight", 2, {E, FF}},
    {"blk.0.ffn_up.weight", 2, {E, FF}},
    {"blk.0.ffn_down.weight", 2, {FF, E}},
};
#define NT (sizeof tensors / sizeof tensors[0])

static uint32_t lcg = 12345;
static float frand(void)
{
    lcg = lcg * 1103515245u + 12345u;
    return ((float)((lcg >> 9) & 0xffff) / 65536.f - 0.5f) * 0.5f;
}

static int is_norm(const char *n) { return strstr(n, "norm") != NULL; }
static int is_layer_matrix(const char *n) { return strncmp(n, "blk.", 4) == 0 && !is_norm(n); }

/* Writes the file to a temp path and returns it (static buffer). */
static const char *write_model(const opts *o)
{
    tbuf b = {0};
    const char *arch = o->arch ? o->arch : "llama";
    int n_tensors = 0;
    for (size_t i = 0; i < NT; i++)
        n_tensors += !(o->drop_tensor && !strcmp(o->drop_tensor, tensors[i].name));
    int nv = o->vocab_tokens ? o->vocab_tokens : V;
    tb_header(&b, 3, (uint64_t)n_tensors + (o->extra_q2k ? 1 : 0), o->drop_embd_key ? 14 : 15);
    char key[96];
    tb_kv_str(&b, "general.architecture", arch);
#define AKEY(suffix) (snprintf(key, sizeof key, "%s." suffix, arch), key)
    if (!o->drop_embd_key)
        tb_kv_u32(&b, AKEY("embedding_length"), E);
    tb_kv_u32(&b, AKEY("block_count"), 1);
    tb_kv_u32(&b, AKEY("feed_forward_length"), FF);
    tb_kv_u32(&b, AKEY("attention.head_count"), NH);
    tb_kv_u32(&b, AKEY("attention.head_count_kv"), NKV);
    tb_kv_u32(&b, AKEY("context_length"), CTX);
    tb_kv_f32(&b, AKEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    tb_kv_f32(&b, AKEY("rope.freq_base"), 10000.f);
    tb_kv_str(&b, "tokenizer.ggml.model", "llama");
    static const char *toks[V] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81" "a", "\xe2\x96\x81" "b", "a", "b", "c"};
    tb_str(&b, "tokenizer.ggml.tokens"), tb_u32(&b, 9), tb_u32(&b, 8), tb_u64(&b, (uint64_t)nv);
    for (int i = 0; i < nv; i++)
        tb_str(&b, toks[i % V]);
    tb_str(&b, "tokenizer.ggml.scores"), tb_u32(&b, 9), tb_u32(&b, 6), tb_u64(&b, (uint64_t)nv);
    for (int i = 0; i < nv; i++)
        tb_f32(&b, -(float)i);
    tb_str(&b, "tokenizer.ggml.token_type"), tb_u32(&b, 9), tb_u32(&b, 5), tb_u64(&b, (uint64_t)nv);
    for (int i = 0; i < nv; i++)
        tb_u32(&b, i == 0 ? 2 : i < 3 ? 3 : 1);
    tb_kv_u32(&b, "tokenizer.ggml.bos_token_id", 1);
    tb_kv_u32(&b, "tokenizer.ggml.eos_token_id", 2);
#undef AKEY
    /* tensor infos, then the data, each piece padded to 32 */
    size_t sizes[NT];
    uint32_t types[NT];
    uint64_t off = 0;
    for (size_t i = 0; i < NT; i++) {
        const tdesc *t = &tensors[i];
        uint64_t ne[2] = {t->ne[0], t->ne[1]};
        if (o->bad_shape && !strcmp(o->bad_shape, t->name))
            ne[1] += 1;
        types[i] = (o->q8_matrices && is_layer_matrix(t->name)) ? T_Q8_0 : T_F32;
        if (o->q2k_tensor && !strcmp(o->q2k_tensor, t->name))
            types[i] = T_Q2_K;
        sizes[i] = types[i] == T_Q8_0 ? (size_t)(ne[0] / 32 * 34 * ne[1])
                   : types[i] == T_Q2_K ? (size_t)((ne[0] + 255) / 256 * 84 * ne[1])
                                        : (size_t)(ne[0] * ne[1] * 4);
        if (o->drop_tensor && !strcmp(o->drop_tensor, t->name))
            continue;
        tb_tensor(&b, t->name, (uint32_t)t->nd, ne, types[i], off);
        off += (sizes[i] + 31) & ~(size_t)31;
    }
    if (o->extra_q2k) {
        uint64_t ne[2] = {256, 1};
        tb_tensor(&b, "blk.0.extra.weight", 2, ne, T_Q2_K, off);
    }
    tb_pad(&b, 32);
    for (size_t i = 0; i < NT; i++) {
        if (o->drop_tensor && !strcmp(o->drop_tensor, tensors[i].name))
            continue;
        if (types[i] == T_Q8_0) {
            for (size_t blk = 0; blk < sizes[i] / 34; blk++) {
                tb_u8(&b, 0x00), tb_u8(&b, 0x20); /* f16 0.0078125 */
                for (int j = 0; j < 32; j++)
                    tb_u8(&b, (uint8_t)(int8_t)(frand() * 100));
            }
        } else if (types[i] == T_F32) {
            for (size_t k = 0; k < sizes[i] / 4; k++)
                tb_f32(&b, is_norm(tensors[i].name) ? 1.0f + frand() * 0.1f : frand());
        } else {
            for (size_t k = 0; k < sizes[i]; k++)
                tb_u8(&b, 0);
        }
        tb_pad(&b, 32);
    }
    for (int i = 0; o->extra_q2k && i < 84; i++)
        tb_u8(&b, 0);
    static char path[256];
    snprintf(path, sizeof path, "/tmp/kp_test_gguf_load_%d.gguf", (int)getpid());
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.p, 1, b.n, f), b.n);
    fclose(f);
    tb_free(&b);
    return path;
}

static void expect_load_fail(const opts *o, kp_status want, const char *needle)
{
    const char *path = write_model(o);
    kp_model *m = (kp_model *)(uintptr_t)1;
    kp_status st = kp_model_load(path, NULL, &m);
    unlink(path);
    if (st != want)
        fail_msg("status %s, want %s: %s", kp_status_str(st), kp_status_str(want), kp_last_error());
    assert_null(m);
    if (!strstr(kp_last_error(), needle))
        fail_msg("message '%s' does not name '%s'", kp_last_error(), needle);
}

static void run_tiny(const opts *o)
{
    const char *path = write_model(o);
    kp_model_params p;
    kp_model_params_init(&p);
    p.n_threads = 1;
    kp_model *m = NULL;
    kp_status st = kp_model_load(path, &p, &m);
    unlink(path);
    if (st)
        fail_msg("load: %s", kp_last_error());
    assert_int_equal(kp_model_info_get(m, KP_INFO_N_VOCAB), V);
    assert_int_equal(kp_model_info_get(m, KP_INFO_N_CTX), CTX);
    assert_string_equal(kp_model_arch_borrow(m), "llama");
    kp_session *s = NULL;
    assert_int_equal(kp_session_new(m, NULL, &s), KP_OK);
    int32_t ids[3] = {1, 3, 4};
    assert_int_equal(kp_session_eval(s, ids, 3, KP_EVAL_LOGITS_LAST), KP_OK);
    const float *lg = kp_session_logits_borrow(s, 0);
    assert_non_null(lg);
    for (int i = 0; i < V; i++)
        assert_true(isfinite(lg[i]));
    const kp_tokenizer *t = kp_model_tokenizer_borrow(m);
    char piece[16];
    size_t len;
    assert_int_equal(kp_token_to_piece(t, 3, piece, sizeof piece, &len), KP_OK);
    assert_int_equal(len, 2);
    assert_memory_equal(piece, " a", 2);
    kp_session_free(s);
    kp_model_free(m);
}

static void test_tiny_valid(void **state)
{
    (void)state;
    opts o = {0};
    run_tiny(&o);
    o.q8_matrices = 1;
    run_tiny(&o);
}

static void test_bad_models(void **state)
{
    (void)state;
    opts o;
    memset(&o, 0, sizeof o), o.arch = "gptneox";
    expect_load_fail(&o, KP_ERR_UNSUPPORTED, "gptneox");
    memset(&o, 0, sizeof o), o.drop_embd_key = 1;
    expect_load_fail(&o, KP_ERR_FORMAT, "llama.embedding_length");
    memset(&o, 0, sizeof o), o.drop_tensor = "blk.0.ffn_up.weight";
    expect_load_fail(&o, KP_ERR_FORMAT, "blk.0.ffn_up.weight");
    memset(&o, 0, sizeof o), o.drop_tensor = "token_embd.weight";
    expect_load_fail(&o, KP_ERR_FORMAT, "token_embd.weight");
    memset(&o, 0, sizeof o), o.bad_shape = "blk.0.attn_k.weight";
    expect_load_fail(&o, KP_ERR_FORMAT, "blk.0.attn_k.weight");
    memset(&o, 0, sizeof o), o.q2k_tensor = "blk.0.ffn_gate.weight";
    expect_load_fail(&o, KP_ERR_FORMAT, "blk.0.ffn_gate.weight"); /* 32 columns: not a whole q2_K block */
    memset(&o, 0, sizeof o), o.vocab_tokens = V + 1;
    expect_load_fail(&o, KP_ERR_TOKENIZER_MISMATCH, "9 tokens");
}

/* A tensor of a known but unsupported type is refused by name. */
static void test_unsupported_type(void **state)
{
    (void)state;
    opts o = {0};
    o.extra_q2k = 1;
    expect_load_fail(&o, KP_ERR_UNSUPPORTED, "'blk.0.extra.weight' has type q2_K");
}

/* ---- OOM at every allocation of a GGUF load */

static void test_oom_every_step(void **state)
{
    (void)state;
    opts o = {0};
    const char *path = write_model(&o);
    for (long k = 0;; k++) {
        fail_alloc c;
        kp_allocator a = fail_alloc_arm(&c, k);
        kp_model_params p;
        kp_model_params_init(&p);
        p.allocator = &a;
        p.n_threads = 1;
        kp_model *m = NULL;
        kp_status st = kp_model_load(path, &p, &m);
        if (st == KP_OK) {
            kp_model_free(m);
            assert_int_equal(c.live, 0);
            assert_true(k > 5);
            break;
        }
        if (st != KP_ERR_OUT_OF_MEMORY)
            fail_msg("failing allocation %ld: %s", k, kp_last_error());
        assert_null(m);
        if (c.live != 0)
            fail_msg("failing allocation %ld leaks %ld blocks", k, c.live);
    }
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_valid),
        cmocka_unit_test(test_bad_models),
        cmocka_unit_test(test_unsupported_type),
        cmocka_unit_test(test_oom_every_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
