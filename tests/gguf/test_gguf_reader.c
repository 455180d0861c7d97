/* GGUF container reader: every fixture's metadata and tensor table as the data README states
 * them, and hostile files (truncated at every offset, bad offsets, unknown types, absurd
 * lengths, n_dims > 4, duplicates, random corruption, allocation failure at every step). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/format/gguf.h"
#include "lib/mapfile.h"
#include "testdata.h"
#include "gguf_writer.h"
#include "fail_alloc.h"

/* ---------------------------------------------------------------- fixtures */

typedef struct opened {
    kp_mapped_file f;
    kp_gguf *g;
} opened;

static int open_fixture(opened *o, const char *rel)
{
    char path[1024];
    if (!kp_test_file(path, sizeof path, rel))
        return 0;
    assert_int_equal(kp_file_map(path, &o->f), KP_OK);
    kp_status st = kp_gguf_open(NULL, o->f.data, o->f.size, &o->g);
    if (st)
        fprintf(stderr, "%s: %s\n", rel, kp_last_error());
    assert_int_equal(st, KP_OK);
    return 1;
}

static void close_fixture(opened *o)
{
    kp_gguf_free(o->g);
    kp_file_unmap(&o->f);
}

static int64_t get_int(const kp_gguf *g, const char *key)
{
    int64_t v = -12345;
    assert_int_equal(kp_gguf_get_int(g, key, INT64_MIN, INT64_MAX, &v), KP_OK);
    return v;
}

static double get_float(const kp_gguf *g, const char *key)
{
    double v = 0;
    assert_int_equal(kp_gguf_get_float(g, key, &v), KP_OK);
    return v;
}

static void assert_str(const kp_gguf *g, const char *key, const char *want)
{
    kp_gguf_str s;
    assert_int_equal(kp_gguf_get_str(g, key, &s), KP_OK);
    if (!kp_gguf_str_eq(s, want))
        fail_msg("%s = '%.*s', want '%s'", key, (int)s.n, s.p, want);
}

/* counts[ggml type] over all tensors */
static void count_types(const kp_gguf *g, int *counts, int n)
{
    memset(counts, 0, sizeof(int) * (size_t)n);
    for (size_t i = 0; i < g->n_tensors; i++) {
        assert_true(g->tensors[i].ggml_type < (uint32_t)n);
        counts[g->tensors[i].ggml_type]++;
    }
}

/* Every tensor lies inside the file, after the metadata, without overlapping another. */
static void check_layout(const kp_gguf *g)
{
    for (size_t i = 0; i < g->n_tensors; i++) {
        const kp_gguf_tensor *t = &g->tensors[i];
        assert_true(t->data >= g->file + g->data_offset);
        assert_true(t->data + t->nbytes <= g->file + g->file_size);
        assert_ptr_equal(kp_gguf_find_tensor(g, t->name), t);
        for (size_t j = i + 1; j < g->n_tensors; j++) {
            const kp_gguf_tensor *u = &g->tensors[j];
            assert_true(t->data + t->nbytes <= u->data || u->data + u->nbytes <= t->data);
        }
    }
}

enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q4_1 = 3, T_Q5_0 = 6, T_Q8_0 = 8, T_Q4_K = 12, T_Q6_K = 14 };

static void test_llama3_tiny(void **state)
{
    (void)state;
    opened o;
    if (!open_fixture(&o, "models/gguf/kp-llama3-tiny.gguf"))
        skip();
    const kp_gguf *g = o.g;
    assert_int_equal(g->version, 3);
    assert_int_equal(g->n_kv, 25);
    assert_int_equal(g->n_tensors, 40);
    assert_int_equal(g->alignment, 32);
    assert_str(g, "general.architecture", "llama");
    assert_str(g, "tokenizer.ggml.model", "gpt2");
    assert_str(g, "tokenizer.ggml.pre", "llama-bpe");
    assert_int_equal(get_int(g, "llama.context_length"), 2048);
    assert_int_equal(get_int(g, "llama.embedding_length"), 48);
    assert_int_equal(get_int(g, "llama.block_count"), 4);
    assert_int_equal(get_int(g, "llama.feed_forward_length"), 768);
    assert_int_equal(get_int(g, "llama.attention.head_count"), 8);
    assert_int_equal(get_int(g, "llama.attention.head_count_kv"), 2);
    assert_int_equal(get_int(g, "llama.attention.key_length"), 32);
    assert_int_equal(get_int(g, "llama.vocab_size"), 128256);
    assert_int_equal(get_int(g, "tokenizer.ggml.bos_token_id"), 128000);
    assert_int_equal(get_int(g, "tokenizer.ggml.eos_token_id"), 128009);
    assert_int_equal(get_int(g, "tokenizer.ggml.eot_token_id"), 128009);
    assert_true(get_float(g, "llama.rope.freq_base") == 500000.0);
    assert_true(fabs(get_float(g, "llama.attention.layer_norm_rms_epsilon") - 1e-5) < 1e-11);
    int add_bos = 0;
    assert_int_equal(kp_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos), KP_OK);
    assert_true(add_bos);

    kp_gguf_arr toks, merges, types;
    assert_int_equal(kp_gguf_get_arr(g, "tokenizer.ggml.tokens", KP_GGUF_STR, &toks), KP_OK);
    assert_int_equal(toks.n, 128256);
    assert_int_equal(kp_gguf_get_arr(g, "tokenizer.ggml.merges", KP_GGUF_STR, &merges), KP_OK);
    assert_int_equal(merges.n, 280147);
    assert_int_equal(kp_gguf_get_arr(g, "tokenizer.ggml.token_type", KP_GGUF_I32, &types), KP_OK);
    assert_int_equal(types.n, 128256);
    kp_gguf_str *s = malloc(sizeof *s * toks.n);
    kp_gguf_arr_strings(&toks, s);
    assert_true(kp_gguf_str_eq(s[0], "!"));
    assert_true(kp_gguf_str_eq(s[128000], "<|begin_of_text|>"));
    assert_true(kp_gguf_str_eq(s[128009], "<|eot_id|>"));
    assert_int_equal(kp_gguf_arr_int(&types, 128000), 3); /* CONTROL */
    assert_int_equal(kp_gguf_arr_int(&types, 0), 1);
    free(s);
    kp_gguf_str tmpl;
    assert_int_equal(kp_gguf_get_str(g, "tokenizer.chat_template", &tmpl), KP_OK);
    assert_int_equal(tmpl.n, 389);

    int c[40];
    count_types(g, c, 40);
    assert_int_equal(c[T_F16], 2);
    assert_int_equal(c[T_F32], 38);
    const kp_gguf_tensor *t = kp_gguf_find_tensor(g, "token_embd.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, KP_DTYPE_F16);
    assert_int_equal(t->ne[0], 48);
    assert_int_equal(t->ne[1], 128256);
    assert_int_equal(t->nbytes, 48 * 128256 * 2);
    t = kp_gguf_find_tensor(g, "blk.3.attn_q.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 48);
    assert_int_equal(t->ne[1], 256);
    /* rope_freqs = [1, 1, 2.4422596, 8 x 13] (Llama 3.1 rule, README) */
    t = kp_gguf_find_tensor(g, "rope_freqs.weight");
    assert_non_null(t);
    assert_int_equal(t->n_dims, 1);
    assert_int_equal(t->ne[0], 16);
    float f[16];
    memcpy(f, t->data, sizeof f);
    assert_true(f[0] == 1.0f && f[1] == 1.0f);
    assert_true(fabsf(f[2] - 2.4422596f) < 1e-6f);
    for (int i = 3; i < 16; i++)
        assert_true(f[i] == 8.0f);
    assert_null(kp_gguf_find_tensor(g, "blk.4.attn_q.weight"));
    check_layout(g);
    close_fixture(&o);
}

static void test_qwen2_tiny(void **state)
{
    (void)state;
    static const char *files[] = {"models/gguf/kp-qwen2-tiny.gguf", "models/gguf/kp-qwen2-tiny-Q8_0.gguf"};
    for (int k = 0; k < 2; k++) {
        opened o;
        if (!open_fixture(&o, files[k]))
            skip();
        const kp_gguf *g = o.g;
        assert_str(g, "general.architecture", "qwen2");
        assert_str(g, "tokenizer.ggml.pre", "qwen2");
        assert_int_equal(get_int(g, "qwen2.embedding_length"), 64);
        assert_int_equal(get_int(g, "qwen2.attention.head_count"), 4);
        assert_int_equal(get_int(g, "qwen2.attention.head_count_kv"), 2);
        assert_int_equal(get_int(g, "qwen2.feed_forward_length"), 192);
        assert_true(get_float(g, "qwen2.rope.freq_base") == 1e6);
        assert_true(fabs(get_float(g, "qwen2.attention.layer_norm_rms_epsilon") - 1e-6) < 1e-12);
        assert_int_equal(get_int(g, "tokenizer.ggml.eos_token_id"), 151645);
        assert_int_equal(get_int(g, "tokenizer.ggml.bos_token_id"), 151643);
        assert_int_equal(get_int(g, "tokenizer.ggml.padding_token_id"), 151643);
        int add_bos = 1;
        assert_int_equal(kp_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos), KP_OK);
        assert_false(add_bos);
        kp_gguf_arr toks, merges;
        assert_int_equal(kp_gguf_get_arr(g, "tokenizer.ggml.tokens", KP_GGUF_STR, &toks), KP_OK);
        assert_int_equal(toks.n, 151669);
        assert_int_equal(kp_gguf_get_arr(g, "tokenizer.ggml.merges", KP_GGUF_STR, &merges), KP_OK);
        assert_int_equal(merges.n, 151387);
        assert_null(kp_gguf_find_tensor(g, "output.weight")); /* tied */
        assert_non_null(kp_gguf_find_tensor(g, "blk.2.attn_q.bias"));
        int c[40];
        count_types(g, c, 40);
        if (k == 0) {
            assert_int_equal(c[T_F16], 1);
            assert_int_equal(c[T_F32], (int)g->n_tensors - 1);
        } else {
            assert_int_equal(c[T_Q8_0], 29);
            assert_int_equal(c[T_F32], 21);
            assert_int_equal(g->n_tensors, 50);
            assert_int_equal(kp_gguf_find_tensor(g, "token_embd.weight")->dtype, KP_DTYPE_Q8_0);
        }
        check_layout(g);
        close_fixture(&o);
    }
}

static void test_llama_small_family(void **state)
{
    (void)state;
    /* README table: file, then counts of (type, n) pairs; every file has 9 F32 tensors except
     * the unquantized one (all 38 F32). */
    static const struct {
        const char *file;
        int ftype[3], n[3];
    } cases[] = {
        {"kp-llama-small.gguf", {T_F32, -1, -1}, {38, 0, 0}},
        {"kp-llama-small-Q8_0.gguf", {T_Q8_0, T_F32, -1}, {29, 9, 0}},
        {"kp-llama-small-Q4_0.gguf", {T_Q4_0, T_Q6_K, T_F32}, {28, 1, 9}},
        {"kp-llama-small-Q4_1.gguf", {T_Q4_1, T_Q6_K, T_F32}, {28, 1, 9}},
        {"kp-llama-small-Q5_0.gguf", {T_Q5_0, T_Q6_K, T_F32}, {28, 1, 9}},
        {"kp-llama-small-Q6_K.gguf", {T_Q6_K, T_F32, -1}, {29, 9, 0}},
        {"kp-llama-small-Q4_K_M.gguf", {T_Q4_K, T_Q6_K, T_F32}, {24, 5, 9}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char rel[256];
        snprintf(rel, sizeof rel, "models/gguf/%s", cases[k].file);
        opened o;
        if (!open_fixture(&o, rel))
            skip();
        const kp_gguf *g = o.g;
        assert_str(g, "general.architecture", "llama");
        assert_str(g, "tokenizer.ggml.model", "llama");
        assert_int_equal(get_int(g, "llama.embedding_length"), 256);
        assert_int_equal(get_int(g, "llama.context_length"), 2048);
        assert_int_equal(get_int(g, "llama.attention.head_count_kv"), 4);
        assert_true(get_float(g, "llama.rope.freq_base") == 10000.0);
        kp_gguf_arr scores;
        assert_int_equal(kp_gguf_get_arr(g, "tokenizer.ggml.scores", KP_GGUF_F32, &scores), KP_OK);
        assert_int_equal(scores.n, 512);
        int c[40], total = 0;
        count_types(g, c, 40);
        for (int j = 0; j < 3; j++) {
            if (cases[k].ftype[j] < 0)
                continue;
            if (c[cases[k].ftype[j]] != cases[k].n[j])
                fail_msg("%s: %d tensors of type %s, want %d", cases[k].file, c[cases[k].ftype[j]],
                         kp_gguf_ggml_type_name((uint32_t)cases[k].ftype[j]), cases[k].n[j]);
            total += cases[k].n[j];
        }
        assert_int_equal(total, (int)g->n_tensors);
        assert_null(kp_gguf_find_tensor(g, "output.weight"));
        if (k == 6) { /* Q4_K_M puts Q6_K on the embeddings and on blk.2/3 attn_v, ffn_down */
            assert_int_equal(kp_gguf_find_tensor(g, "blk.2.attn_v.weight")->dtype, KP_DTYPE_Q6_K);
            assert_int_equal(kp_gguf_find_tensor(g, "blk.3.ffn_down.weight")->dtype, KP_DTYPE_Q6_K);
            assert_int_equal(kp_gguf_find_tensor(g, "blk.1.ffn_down.weight")->dtype, KP_DTYPE_Q4_K);
        }
        check_layout(g);
        close_fixture(&o);
    }
}

static void test_stories260k(void **state)
{
    (void)state;
    opened o;
    if (!open_fixture(&o, "models/stories260K/stories260K.gguf"))
        skip();
    const kp_gguf *g = o.g;
    assert_int_equal(g->n_tensors, 48);
    assert_int_equal(g->n_kv, 19);
    assert_int_equal(get_int(g, "llama.context_length"), 128);
    assert_int_equal(get_int(g, "llama.embedding_length"), 64);
    assert_int_equal(get_int(g, "llama.feed_forward_length"), 172);
    assert_int_equal(get_int(g, "llama.block_count"), 5);
    assert_int_equal(get_int(g, "tokenizer.ggml.seperator_token_id"), 4294967295LL);
    assert_null(kp_gguf_find(g, "llama.rope.freq_base"));
    double theta = 0;
    assert_int_equal(kp_gguf_get_float_or(g, "llama.rope.freq_base", 10000.0, &theta), KP_OK);
    assert_true(theta == 10000.0);
    int64_t v = 0;
    assert_int_equal(kp_gguf_get_int(g, "tokenizer.ggml.padding_token_id", -1, INT32_MAX, &v), KP_ERR_FORMAT);
    assert_non_null(strstr(kp_last_error(), "tokenizer.ggml.padding_token_id"));
    assert_int_equal(kp_gguf_get_int(g, "no.such.key", 0, 1, &v), KP_ERR_NOT_FOUND);
    assert_non_null(strstr(kp_last_error(), "no.such.key"));
    kp_gguf_str s;
    assert_int_equal(kp_gguf_get_str(g, "llama.block_count", &s), KP_ERR_FORMAT);
    int c[40];
    count_types(g, c, 40);
    assert_int_equal(c[T_F32], 48);
    const kp_gguf_tensor *t = kp_gguf_find_tensor(g, "blk.4.ffn_down.weight");
    assert_non_null(t);
    assert_int_equal(t->ne[0], 172);
    assert_int_equal(t->ne[1], 64);
    check_layout(g);
    close_fixture(&o);
}

/* ---------------------------------------------------------------- hand-made files */

typedef struct fault {
    int version;           /* 0: 3 */
    uint32_t n_dims_b;     /* 0: 1 */
    uint32_t type_b;       /* 0: Q8_0 */
    uint64_t offset_b;     /* 0: the right one */
    const char *name_b;    /* NULL: "b" */
    uint64_t key_len;      /* 0: the real length of the first key */
    uint64_t n_tensors;    /* 0: 2 */
    uint32_t alignment;    /* 0: 32 */
    int dup_key;
    int nest_depth;        /* depth of the nested array value (default 2) */
} fault;

/* A valid file ends exactly at the end of the last tensor's data, so every truncation breaks it. */
static void build(tbuf *b, const fault *f)
{
    memset(b, 0, sizeof *b);
    int n_kv = 17 + (f->dup_key ? 1 : 0);
    tb_header(b, f->version ? (uint32_t)f->version : 3, f->n_tensors ? f->n_tensors : 2, (uint64_t)n_kv);
    if (f->key_len) {
        tb_u64(b, f->key_len);
        tb_put(b, "general.architecture", 20);
    } else {
        tb_str(b, "general.architecture");
    }
    tb_u32(b, 8);
    tb_str(b, "llama");
    tb_kv_u32(b, "general.alignment", f->alignment ? f->alignment : 32);
    tb_str(b, "t.u8"), tb_u32(b, 0), tb_u8(b, 200);
    tb_str(b, "t.i8"), tb_u32(b, 1), tb_u8(b, 0x80);
    tb_str(b, "t.u16"), tb_u32(b, 2), tb_u8(b, 0x34), tb_u8(b, 0x12);
    tb_str(b, "t.i16"), tb_u32(b, 3), tb_u8(b, 0xfe), tb_u8(b, 0xff);
    tb_kv_u32(b, "t.u32", 4000000000u);
    tb_str(b, "t.i32"), tb_u32(b, 5), tb_u32(b, (uint32_t)-7);
    tb_kv_f32(b, "t.f32", 0.25f);
    tb_kv_bool(b, "t.bool", 1);
    tb_str(b, "t.u64"), tb_u32(b, 10), tb_u64(b, 1ull << 40);
    tb_str(b, "t.i64"), tb_u32(b, 11), tb_u64(b, (uint64_t)-5);
    double d = -1.5;
    uint64_t du;
    memcpy(&du, &d, 8);
    tb_str(b, "t.f64"), tb_u32(b, 12), tb_u64(b, du);
    tb_kv_str(b, "t.str", "héllo");
    tb_str(b, "t.strs"), tb_u32(b, 9), tb_u32(b, 8), tb_u64(b, 3);
    tb_str(b, "a"), tb_str(b, ""), tb_str(b, "ccc");
    tb_str(b, "t.ints"), tb_u32(b, 9), tb_u32(b, 5), tb_u64(b, 3);
    tb_u32(b, 1), tb_u32(b, (uint32_t)-2), tb_u32(b, 3);
    /* nested: array of arrays ... of u8 */
    int depth = f->nest_depth ? f->nest_depth : 2;
    tb_str(b, "t.nested"), tb_u32(b, 9);
    for (int i = 1; i < depth; i++)
        tb_u32(b, 9), tb_u64(b, 1);
    tb_u32(b, 0), tb_u64(b, 2), tb_u8(b, 7), tb_u8(b, 9);
    if (f->dup_key)
        tb_kv_u32(b, "t.u32", 1);

    uint64_t ne_a[2] = {4, 2};
    uint64_t ne_b[5] = {32, 1, 1, 1, 1};
    tb_tensor(b, "a", 2, ne_a, 0, 0);
    tb_tensor(b, f->name_b ? f->name_b : "b", f->n_dims_b ? f->n_dims_b : 1, ne_b,
              f->type_b ? f->type_b : T_Q8_0, f->offset_b ? f->offset_b : 32);
    tb_pad(b, f->alignment ? f->alignment : 32);
    for (int i = 0; i < 8; i++)
        tb_f32(b, (float)i);
    tb_pad(b, 32);
    tb_u8(b, 0x00), tb_u8(b, 0x3c); /* f16 1.0 */
    for (int i = 0; i < 32; i++)
        tb_u8(b, (uint8_t)(i - 16));
}

static kp_status open_buf(const tbuf *b, kp_gguf **g)
{
    return kp_gguf_open(NULL, b->p, b->n, g);
}

static void test_handmade_valid(void **state)
{
    (void)state;
    fault f = {0};
    tbuf b;
    build(&b, &f);
    kp_gguf *g = NULL;
    assert_int_equal(open_buf(&b, &g), KP_OK);
    assert_int_equal(g->n_kv, 17);
    assert_int_equal(g->n_tensors, 2);
    assert_int_equal(get_int(g, "t.u8"), 200);
    assert_int_equal(get_int(g, "t.i8"), -128);
    assert_int_equal(get_int(g, "t.u16"), 0x1234);
    assert_int_equal(get_int(g, "t.i16"), -2);
    assert_int_equal(get_int(g, "t.u32"), 4000000000LL);
    assert_int_equal(get_int(g, "t.i32"), -7);
    assert_int_equal(get_int(g, "t.u64"), 1LL << 40);
    assert_int_equal(get_int(g, "t.i64"), -5);
    assert_true(get_float(g, "t.f32") == 0.25);
    assert_true(get_float(g, "t.f64") == -1.5);
    int bv = 0;
    assert_int_equal(kp_gguf_get_bool(g, "t.bool", &bv), KP_OK);
    assert_true(bv);
    assert_str(g, "t.str", "héllo");
    int64_t v;
    assert_int_equal(kp_gguf_get_int(g, "t.u32", 0, INT32_MAX, &v), KP_ERR_FORMAT);
    assert_non_null(strstr(kp_last_error(), "t.u32"));
    assert_int_equal(kp_gguf_get_int_or(g, "t.absent", 0, 9, 7, &v), KP_OK);
    assert_int_equal(v, 7);
    kp_gguf_arr a;
    assert_int_equal(kp_gguf_get_arr(g, "t.strs", KP_GGUF_STR, &a), KP_OK);
    kp_gguf_str s[3];
    kp_gguf_arr_strings(&a, s);
    assert_true(kp_gguf_str_eq(s[0], "a") && kp_gguf_str_eq(s[1], "") && kp_gguf_str_eq(s[2], "ccc"));
    assert_int_equal(kp_gguf_get_arr(g, "t.strs", KP_GGUF_I32, &a), KP_ERR_FORMAT);
    assert_int_equal(kp_gguf_get_arr(g, "t.ints", KP_GGUF_I32, &a), KP_OK);
    assert_int_equal(kp_gguf_arr_int(&a, 1), -2);
    assert_int_equal(kp_gguf_get_arr(g, "t.nested", KP_GGUF_ARR, &a), KP_OK);
    assert_int_equal(a.n, 1);
    const kp_gguf_tensor *t = kp_gguf_find_tensor(g, "b");
    assert_non_null(t);
    assert_int_equal(t->dtype, KP_DTYPE_Q8_0);
    assert_int_equal(t->nbytes, 34);
    assert_true(t->data + 34 == b.p + b.n);
    t = kp_gguf_find_tensor(g, "a");
    assert_int_equal(t->nbytes, 32);
    float x;
    memcpy(&x, t->data + 4 * 5, 4);
    assert_true(x == 5.0f);
    kp_gguf_free(g);
    tb_free(&b);
}

/* Opens a broken file and checks the status and that the message mentions `needle`. */
static void expect_fail(const fault *f, kp_status want, const char *needle)
{
    tbuf b;
    build(&b, f);
    kp_gguf *g = (kp_gguf *)(uintptr_t)1;
    kp_status st = open_buf(&b, &g);
    if (st != want)
        fail_msg("status %d (%s), want %d; message: %s", st, kp_status_str(st), want, kp_last_error());
    assert_null(g);
    if (needle && !strstr(kp_last_error(), needle))
        fail_msg("message '%s' does not mention '%s'", kp_last_error(), needle);
    tb_free(&b);
}

static void test_truncated_everywhere(void **state)
{
    (void)state;
    fault f = {0};
    tbuf b;
    build(&b, &f);
    for (size_t n = 0; n < b.n; n++) {
        kp_gguf *g = (kp_gguf *)(uintptr_t)1;
        kp_status st = kp_gguf_open(NULL, b.p, n, &g);
        if (st != KP_ERR_FORMAT)
            fail_msg("truncated at %zu: status %d: %s", n, st, kp_last_error());
        assert_null(g);
        assert_true(strlen(kp_last_error()) > 0);
    }
    tb_free(&b);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    fault f;
    memset(&f, 0, sizeof f), f.offset_b = 1u << 20;
    expect_fail(&f, KP_ERR_FORMAT, "'b'");
    memset(&f, 0, sizeof f), f.offset_b = UINT64_MAX - 31;
    expect_fail(&f, KP_ERR_FORMAT, "past the end");
    memset(&f, 0, sizeof f), f.offset_b = 48; /* not a multiple of the alignment */
    expect_fail(&f, KP_ERR_FORMAT, "alignment");
    memset(&f, 0, sizeof f), f.type_b = 77;
    expect_fail(&f, KP_ERR_FORMAT, "unknown type 77");
    memset(&f, 0, sizeof f), f.type_b = 4; /* removed Q4_2 */
    expect_fail(&f, KP_ERR_FORMAT, "unknown type 4");
    memset(&f, 0, sizeof f), f.key_len = 1ull << 62;
    expect_fail(&f, KP_ERR_FORMAT, "length");
    memset(&f, 0, sizeof f), f.key_len = UINT64_MAX;
    expect_fail(&f, KP_ERR_FORMAT, "length");
    memset(&f, 0, sizeof f), f.n_dims_b = 5;
    expect_fail(&f, KP_ERR_FORMAT, "n_dims 5");
    memset(&f, 0, sizeof f), f.n_dims_b = 0xffffffffu;
    expect_fail(&f, KP_ERR_FORMAT, "n_dims");
    memset(&f, 0, sizeof f), f.name_b = "a";
    expect_fail(&f, KP_ERR_FORMAT, "duplicate tensor name 'a'");
    memset(&f, 0, sizeof f), f.dup_key = 1;
    expect_fail(&f, KP_ERR_FORMAT, "duplicate metadata key 't.u32'");
    memset(&f, 0, sizeof f), f.n_tensors = 1ull << 60;
    expect_fail(&f, KP_ERR_FORMAT, "tensors");
    memset(&f, 0, sizeof f), f.n_tensors = 3; /* one more info than written: runs into the data */
    expect_fail(&f, KP_ERR_FORMAT, NULL);
    memset(&f, 0, sizeof f), f.alignment = 24;
    expect_fail(&f, KP_ERR_FORMAT, "power of two");
    memset(&f, 0, sizeof f), f.version = 1;
    expect_fail(&f, KP_ERR_UNSUPPORTED, "version 1");
    memset(&f, 0, sizeof f), f.version = 0x03000000;
    expect_fail(&f, KP_ERR_UNSUPPORTED, "big-endian");
    memset(&f, 0, sizeof f), f.version = 99;
    expect_fail(&f, KP_ERR_UNSUPPORTED, "version 99");
    memset(&f, 0, sizeof f), f.nest_depth = 9;
    expect_fail(&f, KP_ERR_FORMAT, "nested");
    memset(&f, 0, sizeof f), f.nest_depth = 8;
    tbuf b;
    build(&b, &f);
    kp_gguf *g = NULL;
    assert_int_equal(open_buf(&b, &g), KP_OK);
    kp_gguf_free(g);
    tb_free(&b);
    /* not GGUF at all */
    kp_gguf *g2 = NULL;
    assert_int_equal(kp_gguf_open(NULL, (const uint8_t *)"GGML\3\0\0\0", 8, &g2), KP_ERR_FORMAT);
    assert_int_equal(kp_gguf_open(NULL, NULL, 0, &g2), KP_ERR_FORMAT);
}

/* A tensor whose columns are not a whole number of blocks, and a shape whose byte size overflows. */
static void test_bad_shapes(void **state)
{
    (void)state;
    tbuf b = {0};
    tb_header(&b, 3, 1, 0);
    uint64_t ne[2] = {33, 1};
    tb_tensor(&b, "w", 2, ne, T_Q8_0, 0);
    tb_pad(&b, 32);
    for (int i = 0; i < 64; i++)
        tb_u8(&b, 0);
    kp_gguf *g = NULL;
    assert_int_equal(open_buf(&b, &g), KP_ERR_FORMAT);
    assert_non_null(strstr(kp_last_error(), "block size"));
    tb_free(&b);

    tb_header(&b, 3, 1, 0);
    uint64_t big[4] = {1ull << 32, 1ull << 32, 1ull << 20, 1};
    tb_tensor(&b, "w", 4, big, T_F32, 0);
    tb_pad(&b, 32);
    assert_int_equal(open_buf(&b, &g), KP_ERR_FORMAT);
    assert_non_null(strstr(kp_last_error(), "overflows"));
    tb_free(&b);

    /* a dimension above INT64_MAX */
    tb_header(&b, 3, 1, 0);
    uint64_t neg[1] = {1ull << 63};
    tb_tensor(&b, "w", 1, neg, T_F32, 0);
    tb_pad(&b, 32);
    assert_int_equal(open_buf(&b, &g), KP_ERR_FORMAT);
    tb_free(&b);

    /* alignment 4 puts data at 4-byte boundaries: refused for kernels' sake, not a crash */
    tb_header(&b, 3, 1, 1);
    tb_kv_u32(&b, "general.alignment", 4);
    uint64_t one[1] = {1};
    tb_tensor(&b, "w", 1, one, T_F32, 0);
    tb_pad(&b, 4);
    assert_int_equal(b.n % 8, 4); /* 24 header + 33 key + 33 info, padded to 92 */
    tb_u32(&b, 0);
    assert_int_equal(open_buf(&b, &g), KP_ERR_UNSUPPORTED);
    assert_non_null(strstr(kp_last_error(), "aligned"));
    tb_free(&b);

    /* zero tensors and zero keys: a valid, empty index */
    tb_header(&b, 2, 0, 0);
    assert_int_equal(open_buf(&b, &g), KP_OK);
    assert_int_equal(g->n_tensors, 0);
    kp_gguf_free(g);
    tb_free(&b);
}

/* Random corruption: many mutated copies of the valid file must open or fail cleanly. */
static void test_random_corruption(void **state)
{
    (void)state;
    fault f = {0};
    tbuf b;
    build(&b, &f);
    uint8_t *m = malloc(b.n);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int n_ok = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(m, b.p, b.n);
        int flips = 1 + (int)(iter % 4);
        for (int k = 0; k < flips; k++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            size_t pos = (size_t)(rng % b.n);
            uint8_t val = (uint8_t)(rng >> 32);
            /* favour the header and metadata, where the structure is */
            if (iter & 1)
                pos %= 400;
            m[pos] = (iter & 2) ? val : (uint8_t)(m[pos] ^ (1u << ((rng >> 40) & 7)));
        }
        kp_gguf *g = NULL;
        kp_status st = kp_gguf_open(NULL, m, b.n, &g);
        if (st == KP_OK) {
            n_ok++;
            for (size_t i = 0; i < g->n_tensors; i++)
                assert_true(g->tensors[i].data + g->tensors[i].nbytes <= m + b.n);
            kp_gguf_free(g);
        } else {
            assert_null(g);
        }
    }
    assert_true(n_ok > 0); /* flips inside the tensor data keep the file valid */
    free(m);
    tb_free(&b);
}

/* ---- allocation failure at every step: no leak, clean status */

static void test_oom_every_step(void **state)
{
    (void)state;
    fault f = {0};
    tbuf b;
    build(&b, &f);
    for (long k = 0;; k++) {
        fail_alloc c;
        kp_allocator a = fail_alloc_arm(&c, k);
        kp_gguf *g = NULL;
        kp_status st = kp_gguf_open(&a, b.p, b.n, &g);
        if (st == KP_OK) {
            kp_gguf_free(g);
            assert_int_equal(c.live, 0);
            assert_true(k > 3);
            break;
        }
        assert_int_equal(st, KP_ERR_OUT_OF_MEMORY);
        assert_null(g);
        assert_int_equal(c.live, 0);
    }
    tb_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama3_tiny),
        cmocka_unit_test(test_qwen2_tiny),
        cmocka_unit_test(test_llama_small_family),
        cmocka_unit_test(test_stories260k),
        cmocka_unit_test(test_handmade_valid),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_random_corruption),
        cmocka_unit_test(test_oom_every_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
