/* Hugging Face folders and KuiperLLama files through kp_model_load: the shared fixtures agree with
 * transformers' float32 logits, and every way a folder or file can be wrong (truncation, a lying
 * header, data out of bounds or overlapping, a dtype or shape that disagrees with config.json, a
 * missing shard, an index naming a missing tensor, an unknown architecture, no tokenizer, a wrong
 * KuiperLLama family) is a clear status whose message names the problem. Each bad folder is a copy
 * of a fixture, changed in one place, in a temporary directory. */
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
#include "lib/json.h"
#include "fail_alloc.h"
#include "testdata.h"

static char tmp[256];
static char path[2048];

/* ---- files */

static char *slurp(const char *p, size_t *n)
{
    *n = 0;
    char *b = kp_test_slurp(p, n);
    if (!b)
        fail_msg("cannot read %s", p);
    return b;
}

static void spit(const char *dir, const char *name, const void *data, size_t n)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* Copies shared folder `src` (relative to the data dir) into a fresh temporary folder; NULL
 * (with a loud SKIP) when the data is absent. */
static const char *copy_folder(const char *src, const char *const *files)
{
    char from[1024];
    if (!kp_test_file(from, sizeof from, src))
        return NULL;
    snprintf(tmp, sizeof tmp, "/tmp/kp-hf-test-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    for (size_t i = 0; files[i]; i++) {
        char p[2048];
        size_t n;
        snprintf(p, sizeof p, "%s/%s", from, files[i]);
        char *b = slurp(p, &n);
        spit(tmp, files[i], b, n);
        free(b);
    }
    return tmp;
}

static void remove_folder(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static const char *const SMALL_FILES[] = {"config.json", "generation_config.json", "tokenizer.json",
                                          "tokenizer_config.json", "model.safetensors", NULL};
#define SMALL "models/hf/kp-hf-qwen25-f16-small"

/* Replaces the first `find` in file dir/name with `repl` (any length). */
static void edit(const char *dir, const char *name, const char *find, const char *repl)
{
    char p[1024];
    size_t n;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *b = slurp(p, &n);
    char *at = strstr(b, find);
    if (!at)
        fail_msg("'%s' not in %s", find, name);
    size_t head = (size_t)(at - b), fl = strlen(find), rl = strlen(repl);
    char *o = malloc(n - fl + rl);
    memcpy(o, b, head);
    memcpy(o + head, repl, rl);
    memcpy(o + head + rl, at + fl, n - head - fl);
    spit(dir, name, o, n - fl + rl);
    free(o);
    free(b);
}

/* The same for the JSON header of dir/model.safetensors, rewriting its length field. */
static void edit_header(const char *dir, const char *find, const char *repl)
{
    char p[1024];
    size_t n;
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    char *b = slurp(p, &n);
    uint64_t hl = 0;
    memcpy(&hl, b, 8);
    char *h = malloc(hl + 1);
    memcpy(h, b + 8, hl);
    h[hl] = 0;
    char *at = strstr(h, find);
    if (!at)
        fail_msg("'%s' not in the header", find);
    size_t head = (size_t)(at - h), fl = strlen(find), rl = strlen(repl);
    uint64_t nl = hl - fl + rl;
    char *o = malloc(8 + nl + (n - 8 - hl));
    memcpy(o, &nl, 8);
    memcpy(o + 8, h, head);
    memcpy(o + 8 + head, repl, rl);
    memcpy(o + 8 + head + rl, at + fl, hl - head - fl);
    memcpy(o + 8 + nl, b + 8 + hl, n - 8 - hl);
    spit(dir, "model.safetensors", o, 8 + nl + (n - 8 - hl));
    free(o);
    free(h);
    free(b);
}

/* kp_model_load must fail with `want` and a message containing `needle`. */
static void expect_fail(const char *model, const kp_model_params *mp, kp_status want, const char *needle)
{
    kp_model *m = NULL;
    kp_status st = kp_model_load(model, mp, &m);
    if (st != want || !strstr(kp_last_error(), needle))
        fail_msg("%s: got %s \"%s\", want %s with \"%s\"", model, kp_status_str(st), kp_last_error(),
                 kp_status_str(want), needle);
    assert_null(m);
}

/* ---- agreement with transformers */

/* Loads `model`, evaluates the reference's prompt + greedy ids in one batch and compares every
 * stored logits row (all rows for small vocabularies, the last prompt row for large ones). */
static void check_reference(const char *model, const char *family, const char *tokenizer, const char *ref)
{
    char rp[1024], lp[1024];
    if (!kp_test_file(rp, sizeof rp, ref))
        return;
    size_t n;
    char *text = slurp(rp, &n);
    kp_json_doc *doc = NULL;
    assert_int_equal(kp_json_parse(NULL, text, n, ref, &doc), KP_OK);
    const kp_json *r = kp_json_root(doc);
    const kp_json *pids = kp_json_get(r, "prompt_ids"), *gids = kp_json_get(r, "greedy_ids"),
                  *pos = kp_json_get(r, "logits_positions"), *lf = kp_json_get(r, "logits_file");
    int64_t V, P;
    assert_true(kp_json_int(kp_json_get(r, "n_vocab"), 1, 1 << 20, &V));
    assert_true(kp_json_int(kp_json_get(r, "n_prompt"), 1, 1 << 20, &P));
    size_t nt = pids->len + gids->len;
    int32_t *ids = malloc(nt * sizeof *ids);
    for (size_t i = 0; i < nt; i++) {
        int64_t v;
        assert_true(kp_json_int(i < pids->len ? &pids->u.kids[i] : &gids->u.kids[i - pids->len], 0, V - 1, &v));
        ids[i] = (int32_t)v;
    }
    snprintf(lp, sizeof lp, "%.*s", (int)(strrchr(rp, '/') - rp), rp);
    snprintf(lp + strlen(lp), sizeof lp - strlen(lp), "/%.*s", (int)lf->len, lf->u.str);
    float *refl = (float *)slurp(lp, &n);

    kp_model_params mp;
    kp_model_params_init(&mp);
    mp.family = family;
    mp.tokenizer_path = tokenizer;
    mp.n_threads = 1;
    kp_model *m = NULL;
    if (kp_model_load(model, &mp, &m) != KP_OK)
        fail_msg("%s: %s", model, kp_last_error());
    assert_int_equal(kp_model_info_get(m, KP_INFO_N_VOCAB), V);
    kp_session *s = NULL;
    kp_session_params sp;
    kp_session_params_init(&sp);
    sp.n_ctx = 512;
    assert_int_equal(kp_session_new(m, &sp, &s), KP_OK);
    assert_int_equal(kp_session_eval(s, ids, nt, KP_EVAL_LOGITS_ALL), KP_OK);
    double worst = 0;
    for (uint32_t k = 0; k < pos->len; k++) {
        int64_t p;
        assert_true(kp_json_int(&pos->u.kids[k], 0, (int64_t)nt - 1, &p));
        const float *mine = kp_session_logits_borrow(s, (size_t)p), *want = refl + (size_t)k * (size_t)V;
        double big = 0, d = 0;
        for (int64_t v = 0; v < V; v++) {
            big = fmax(big, fabs(want[v]));
            d = fmax(d, fabs(mine[v] - want[v]));
        }
        worst = fmax(worst, d / big);
    }
    fprintf(stderr, "%s %s: %u rows, max |dlogit| / max |logit| = %.2e\n", model, ref, (unsigned)pos->len, worst);
    assert_true(worst <= 1e-4);
    kp_session_free(s);
    kp_model_free(m);
    free(refl);
    free(ids);
    kp_json_free(doc);
    free(text);
}

static void test_reference_folders(void **state)
{
    (void)state;
    static const char *const models[] = {"kp-hf-qwen25-f16-small", "kp-hf-llama-f32-sharded", "kp-hf-llama32-tiny",
                                         "kp-hf-qwen25-tiny", "kp-hf-qwen3-tiny"};
    for (size_t i = 0; i < sizeof models / sizeof *models; i++) {
        char dir[1024], ref[256], rel[256];
        snprintf(rel, sizeof rel, "models/hf/%s", models[i]);
        if (!kp_test_file(dir, sizeof dir, rel))
            return;
        snprintf(ref, sizeof ref, "reference/hf/%s/P2.json", models[i]);
        check_reference(dir, NULL, NULL, ref);
    }
}

static void test_reference_kuiper(void **state)
{
    (void)state;
    static const char *const cases[][4] = {
        {"kp-kuiper-llama-fp32.bin", "llama3", "kp-hf-llama-f32-sharded", "reference/hf/kp-hf-llama-f32-sharded/P3.json"},
        {"kp-kuiper-llama-int8.bin", "llama3", "kp-hf-llama-f32-sharded", "reference/kuiper/kp-kuiper-llama-int8/P1.json"},
        {"kp-kuiper-qwen2-fp32.bin", "qwen2", "kp-hf-qwen25-f16-small", "reference/hf/kp-hf-qwen25-f16-small/P3.json"},
        {"kp-kuiper-qwen2-int8.bin", "qwen2", "kp-hf-qwen25-f16-small", "reference/kuiper/kp-kuiper-qwen2-int8/P2.json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char bin[1024], tok[1024], rel[256];
        snprintf(rel, sizeof rel, "models/kuiper/%s", cases[i][0]);
        if (!kp_test_file(bin, sizeof bin, rel))
            return;
        snprintf(rel, sizeof rel, "models/hf/%s/tokenizer.json", cases[i][2]);
        assert_non_null(kp_test_file(tok, sizeof tok, rel));
        check_reference(bin, cases[i][1], tok, cases[i][3]);
    }
}

/* A file inside the folder (config.json or a safetensors file) stands for the folder; the folder
 * brings its chat template and its end-of-generation ids. */
static void test_folder_paths_and_extras(void **state)
{
    (void)state;
    char dir[1024];
    if (!kp_test_file(dir, sizeof dir, SMALL))
        return;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    kp_model *m = NULL;
    assert_int_equal(kp_model_load(path, NULL, &m), KP_OK);
    assert_string_equal(kp_model_arch_borrow(m), "qwen2");
    const kp_tokenizer *t = kp_model_tokenizer_borrow(m);
    assert_true(kp_tokenizer_is_eog(t, 511)); /* <|im_end|>, config.json's eos_token_id */
    kp_chat_msg msg = {"user", "Hi"};
    char buf[512];
    size_t len;
    assert_int_equal(kp_chat_format(m, &msg, 1, 1, buf, sizeof buf, &len), KP_OK);
    assert_non_null(strstr(buf, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
    kp_model_free(m);
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_int_equal(kp_model_load(path, NULL, &m), KP_OK);
    kp_model_free(m);
}

/* Qwen's embedding has 151936 rows for 151669 tokenizer ids: the tokenizer is padded, and the
 * padding ids decode to nothing. */
static void test_padded_vocabulary(void **state)
{
    (void)state;
    char dir[1024];
    if (!kp_test_file(dir, sizeof dir, "models/hf/kp-hf-qwen25-tiny"))
        return;
    kp_model *m = NULL;
    assert_int_equal(kp_model_load(dir, NULL, &m), KP_OK);
    const kp_tokenizer *t = kp_model_tokenizer_borrow(m);
    assert_int_equal(kp_tokenizer_n_vocab(t), 151936);
    int32_t pad = 151900;
    size_t len = 99;
    char buf[8];
    assert_int_equal(kp_detokenize(t, &pad, 1, buf, sizeof buf, &len), KP_OK);
    assert_int_equal(len, 0);
    kp_model_free(m);
}

/* ---- bad folders */

static void test_truncated_safetensors(void **state)
{
    (void)state;
    const char *dir = copy_folder(SMALL, SMALL_FILES);
    if (!dir)
        return;
    char p[1024];
    size_t n;
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    char *whole = slurp(p, &n);
    int tried = 0;
    /* every byte of the length field and the header's start, then a sweep through the data */
    for (size_t cut = 0; cut < n; cut = cut < 64 ? cut + 1 : cut + n / 97 + 1) {
        spit(dir, "model.safetensors", whole, cut);
        expect_fail(dir, NULL, KP_ERR_FORMAT, "model.safetensors");
        tried++;
    }
    fprintf(stderr, "truncation: %d offsets rejected\n", tried);
    free(whole);
    remove_folder(dir);
}

static void test_lying_headers(void **state)
{
    (void)state;
    static const struct {
        const char *find, *repl, *needle;
        kp_status st;
    } cases[] = {
        {"\"data_offsets\":[0,65536]", "\"data_offsets\":[0,99999999]", "past the file", KP_ERR_FORMAT},
        {"\"data_offsets\":[65536,131072]", "\"data_offsets\":[0,65536]", "overlap", KP_ERR_FORMAT},
        {"\"data_offsets\":[0,65536]", "\"data_offsets\":[0,65534]", "shape and dtype need", KP_ERR_FORMAT},
        {"\"lm_head.weight\":{\"dtype\":\"F16\"", "\"lm_head.weight\":{\"dtype\":\"I16\"", "dtype I16",
         KP_ERR_UNSUPPORTED},
        {"\"lm_head.weight\":{\"dtype\":\"F16\"", "\"lm_head.weight\":{\"dtype\":\"BF16\"", "config.json says",
         KP_ERR_FORMAT},
        {"\"lm_head.weight\":{\"dtype\":\"F16\",\"shape\":[512,64]", "\"lm_head.weight\":{\"dtype\":\"F16\",\"shape\":[256,128]",
         "output.weight", KP_ERR_FORMAT},
        {"\"lm_head.weight\"", "\"lm_head.extra\"", "lm_head.extra", KP_ERR_UNSUPPORTED},
        {"\"model.layers.0.input_layernorm.weight\"", "\"model.layers.9.input_layernorm.weight\"", "layer 9",
         KP_ERR_FORMAT},
        {"{\"__metadata__\"", "[{\"__metadata__\"", "model.safetensors", KP_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *dir = copy_folder(SMALL, SMALL_FILES);
        if (!dir)
            return;
        edit_header(dir, cases[i].find, cases[i].repl);
        expect_fail(dir, NULL, cases[i].st, cases[i].needle);
        remove_folder(dir);
    }
    /* a header length far past the file */
    const char *dir = copy_folder(SMALL, SMALL_FILES);
    char p[1024];
    size_t n;
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    char *b = slurp(p, &n);
    memset(b, 0xff, 8);
    spit(dir, "model.safetensors", b, n);
    expect_fail(dir, NULL, KP_ERR_FORMAT, "header length");
    free(b);
    remove_folder(dir);
}

static void test_bad_config_and_files(void **state)
{
    (void)state;
    static const struct {
        const char *file, *find, *repl, *needle;
        kp_status st;
    } cases[] = {
        {"config.json", "Qwen2ForCausalLM", "MistralForCausalLM", "MistralForCausalLM", KP_ERR_UNSUPPORTED},
        {"config.json", "\"hidden_size\": 64", "\"hidden_size\": 96", "token_embd.weight", KP_ERR_FORMAT},
        {"config.json", "\"num_hidden_layers\": 4", "\"num_hidden_layers\": 5", "blk.4", KP_ERR_FORMAT},
        {"config.json", "\"vocab_size\": 512", "\"vocab_size\": \"512\"", "vocab_size", KP_ERR_FORMAT},
        {"config.json", "\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\"", "gelu", KP_ERR_UNSUPPORTED},
        {"config.json", "\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}", "yarn",
         KP_ERR_UNSUPPORTED},
        {"config.json", "\"tie_word_embeddings\": false", "\"tie_word_embeddings\": false, \"x\": [", "config.json",
         KP_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *dir = copy_folder(SMALL, SMALL_FILES);
        if (!dir)
            return;
        edit(dir, cases[i].file, cases[i].find, cases[i].repl);
        expect_fail(dir, NULL, cases[i].st, cases[i].needle);
        remove_folder(dir);
    }
    static const char *const no_tok[] = {"config.json", "model.safetensors", NULL};
    const char *dir = copy_folder(SMALL, no_tok);
    expect_fail(dir, NULL, KP_ERR_FORMAT, "no tokenizer.json");
    remove_folder(dir);
    static const char *const no_weights[] = {"config.json", "tokenizer.json", NULL};
    dir = copy_folder(SMALL, no_weights);
    expect_fail(dir, NULL, KP_ERR_FORMAT, "model.safetensors");
    remove_folder(dir);
    static const char *const no_config[] = {"model.safetensors", "tokenizer.json", NULL};
    dir = copy_folder(SMALL, no_config);
    expect_fail(dir, NULL, KP_ERR_FORMAT, "no config.json");
    remove_folder(dir);
}

static void test_bad_shards(void **state)
{
    (void)state;
    static const char *const files[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                        "model.safetensors.index.json", "model-00001-of-00003.safetensors",
                                        "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors", NULL};
    static const char *const missing[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                          "model.safetensors.index.json", "model-00001-of-00003.safetensors",
                                          "model-00003-of-00003.safetensors", NULL};
    const char *dir = copy_folder("models/hf/kp-hf-llama-f32-sharded", missing);
    if (!dir)
        return;
    expect_fail(dir, NULL, KP_ERR_FORMAT, "model-00002-of-00003.safetensors");
    remove_folder(dir);
    dir = copy_folder("models/hf/kp-hf-llama-f32-sharded", files);
    edit(dir, "model.safetensors.index.json", "\"weight_map\": {",
         "\"weight_map\": {\n    \"model.layers.0.self_attn.q_norm.weight\": \"model-00001-of-00003.safetensors\",");
    expect_fail(dir, NULL, KP_ERR_FORMAT, "model.layers.0.self_attn.q_norm.weight");
    remove_folder(dir);
    dir = copy_folder("models/hf/kp-hf-llama-f32-sharded", files);
    edit(dir, "model.safetensors.index.json", "\"model-00002-of-00003.safetensors\"", "\"../model-00002-of-00003.safetensors\"");
    expect_fail(dir, NULL, KP_ERR_FORMAT, "bad file name");
    remove_folder(dir);
}

/* Every allocation of a folder load fails in turn: each gives KP_ERR_OUT_OF_MEMORY and frees
 * everything it took. */
static void test_out_of_memory(void **state)
{
    (void)state;
    char dir[1024];
    if (!kp_test_file(dir, sizeof dir, SMALL))
        return;
    fail_alloc c;
    kp_allocator a = fail_alloc_arm(&c, -1);
    kp_model_params mp;
    kp_model_params_init(&mp);
    mp.allocator = &a;
    mp.n_threads = 1;
    kp_model *m = NULL;
    assert_int_equal(kp_model_load(dir, &mp, &m), KP_OK);
    kp_model_free(m);
    assert_int_equal(c.live, 0);
    const long total = c.n;
    long survived = 0;
    for (long k = 0; k < total; k++) {
        a = fail_alloc_arm(&c, k);
        m = NULL;
        kp_status st = kp_model_load(dir, &mp, &m);
        /* PCRE2's JIT is an optimisation the tokenizer does without when it cannot allocate */
        if (st == KP_OK) {
            survived++;
            assert_int_equal(kp_model_info_get(m, KP_INFO_N_VOCAB), 512);
            kp_model_free(m);
            m = NULL;
        } else if (st != KP_ERR_OUT_OF_MEMORY) {
            fail_msg("allocation %ld of %ld: %s (%s)", k, total, kp_status_str(st), kp_last_error());
        }
        assert_null(m);
        if (c.live != 0)
            fail_msg("allocation %ld of %ld failed: %ld blocks leaked", k, total, c.live);
    }
    assert_true(survived <= 16); /* 12 here: one regex's JIT compile */
    fprintf(stderr, "out of memory: %ld allocations failed in turn without a leak (%ld survived, in PCRE2's JIT)\n",
            total, survived);
}

/* ---- KuiperLLama */

static void test_kuiper_bad(void **state)
{
    (void)state;
    char bin[1024];
    if (!kp_test_file(bin, sizeof bin, "models/kuiper/kp-kuiper-qwen2-fp32.bin"))
        return;
    kp_model_params mp;
    kp_model_params_init(&mp);
    mp.family = "llama3"; /* no biases: the size fits neither layout */
    expect_fail(bin, &mp, KP_ERR_FORMAT, "fp32 or");
    mp.family = "mistral";
    expect_fail(bin, &mp, KP_ERR_INVALID_ARG, "llama2, llama3 or qwen2");
    /* truncated copies: each is rejected by the size rule */
    size_t n;
    char *whole = slurp(bin, &n);
    snprintf(tmp, sizeof tmp, "/tmp/kp-hf-test-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    mp.family = "qwen2";
    snprintf(path, sizeof path, "%s/cut.bin", tmp);
    for (size_t cut = 0; cut < n; cut += n / 13 + 1) {
        spit(tmp, "cut.bin", whole, cut);
        kp_model *m = NULL;
        kp_status st = kp_model_load(path, &mp, &m);
        assert_true(st == KP_ERR_FORMAT || st == KP_ERR_IO);
        assert_null(m);
    }
    /* with the source folder's config.json beside it, no family is needed */
    spit(tmp, "model.bin", whole, n);
    char cfg[1024];
    assert_non_null(kp_test_file(cfg, sizeof cfg, SMALL "/config.json"));
    size_t cn;
    char *c = slurp(cfg, &cn);
    spit(tmp, "config.json", c, cn);
    char tok[1024];
    assert_non_null(kp_test_file(tok, sizeof tok, SMALL "/tokenizer.json"));
    snprintf(path, sizeof path, "%s/model.bin", tmp);
    kp_model_params_init(&mp);
    mp.tokenizer_path = tok;
    kp_model *m = NULL;
    if (kp_model_load(path, &mp, &m) != KP_OK)
        fail_msg("%s", kp_last_error());
    assert_string_equal(kp_model_arch_borrow(m), "qwen2");
    assert_non_null(kp_model_tensor_borrow(m, "blk.3.attn_v.bias"));
    kp_model_free(m);
    free(c);
    free(whole);
    remove_folder(tmp);
}

/* Files that are not models say what they are instead of failing as a broken llama2.c header. */
static void test_not_a_model(void **state)
{
    (void)state;
    snprintf(tmp, sizeof tmp, "/tmp/kp-hf-test-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    static const struct {
        const char *data;
        size_t n;
        const char *needle;
    } cases[] = {
#define LIT(s) s, sizeof s - 1
        {LIT("PK\x03\x04 rest of a zip"), "zip archive"},
        {LIT("\x80\x02}q\x00(X\x05"), "pickle"},
        {LIT("{\"version\": \"1.0\"}"), "JSON file"},
        {LIT("Once upon a time there was a model file that was not a model file at all."), "text file"},
        {LIT("\x01\x02\x03\xff\xfe\xfd\x00\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff\x00"
             "\x01\x02\x03\x04\x05\x06"),
         "first bytes 01 02 03 ff"},
#undef LIT
    };
    snprintf(path, sizeof path, "%s/x.bin", tmp);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        spit(tmp, "x.bin", cases[i].data, cases[i].n);
        expect_fail(path, NULL, KP_ERR_FORMAT, cases[i].needle);
    }
    remove_folder(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_folders),
        cmocka_unit_test(test_reference_kuiper),
        cmocka_unit_test(test_folder_paths_and_extras),
        cmocka_unit_test(test_padded_vocabulary),
        cmocka_unit_test(test_truncated_safetensors),
        cmocka_unit_test(test_lying_headers),
        cmocka_unit_test(test_bad_config_and_files),
        cmocka_unit_test(test_bad_shards),
        cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_kuiper_bad),
        cmocka_unit_test(test_not_a_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
