/* The vocabulary a GGUF file gets (kp_tokenizer_vocab_export) rebuilds, through the GGUF
 * vocabulary constructors, a tokenizer that encodes like the original: for tokenizer.json
 * files (as Hugging Face folders carry), SentencePiece models, llama2.c tokenizer.bin files and
 * GGUF vocabularies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../lib/tokenizer/pipeline.h"
#include "../../lib/tokenizer/spm.h"
#include "../../lib/tokenizer/tokenizer.h"
#include "testdata.h"

static const char *texts[] = {
    "Once upon a time, there was a little girl.",
    "Hello, world! 12345 67 numbers\nnew line\ttab  double  space",
    "naïve café — “quotes” 日本語の文章 🙂 ÅÄÖ",
    "  leading spaces and trailing  ",
    "<s> text </s> <|im_start|>user\nhi<|im_end|> <|begin_of_text|><|eot_id|>",
    "don't I'LL we've 1,000,000.50 $x+y=z; a->b && c || d",
    "\n\n\n   \t  x",
    "",
};

static void check_one(const char *rel, int32_t n_vocab)
{
    char path[512];
    if (!kp_test_file(path, sizeof path, rel))
        return;
    kp_tokenizer_params tp;
    kp_tokenizer_params_init(&tp);
    tp.n_vocab = n_vocab;
    kp_tokenizer *a = NULL, *b = NULL;
    assert_int_equal(kp_tokenizer_load(path, &tp, &a), KP_OK);
    kp_vocab_export v;
    kp_status st = kp_tokenizer_vocab_export(a, NULL, &v);
    if (st)
        fail_msg("%s: %s", rel, kp_last_error());
    kp_vocab_arrays va = {0};
    va.n = v.n;
    va.tokens = v.tokens;
    va.token_lens = v.token_lens;
    va.scores = v.scores;
    va.types = v.types;
    va.n_merges = v.n_merges;
    va.merges = v.merges;
    va.merge_lens = v.merge_lens;
    va.pre = v.pre;
    va.bos = a->bos;
    va.eos = a->eos;
    va.eot = a->eot;
    va.unk = a->unk;
    va.pad = a->pad;
    va.add_bos = v.add_bos;
    va.add_eos = v.add_eos;
    va.add_space_prefix = v.add_space_prefix;
    st = !strcmp(v.model, "gpt2") ? kp_tokenizer_bpe_vocab_new(NULL, &va, &b) : kp_tokenizer_spm_vocab_new(NULL, &va, &b);
    if (st)
        fail_msg("%s: rebuilding: %s", rel, kp_last_error());
    kp_vocab_export_free(&v);
    assert_int_equal(b->n_vocab, a->n_vocab);
    int sentencepiece = !strcmp(a->vt->name, "spm") && ((const kp_spm *)a->impl)->mode == KP_SPM_SENTENCEPIECE;
    if (!strcmp(a->vt->name, "bpe")) { /* a tokenizer.json normalizer that folds whitespace */
        const kp_bpe_tok *p = a->impl;
        for (int k = 0; k < p->n_norm; k++)
            sentencepiece |= p->norm[k].kind == KP_NORM_REPLACE && p->norm[k].re != NULL;
    }
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        for (int f = 0; f < 4; f++) {
            const uint32_t flags = (f & 1 ? KP_TOKENIZE_ADD_SPECIAL : 0) | (f & 2 ? KP_TOKENIZE_PARSE_SPECIAL : 0);
            if ((flags & KP_TOKENIZE_PARSE_SPECIAL) && !strcmp(a->vt->name, "llama2c"))
                continue; /* llama2.c's tokenizer has no special tokens to parse */
            if (sentencepiece && (strstr(texts[i], "  ") || strchr(texts[i], '\n')))
                continue; /* SentencePiece's normalizer folds whitespace runs; llama.cpp's does not */
            int32_t ia[512], ib[512];
            size_t na = 0, nb = 0;
            assert_int_equal(kp_tokenize(a, texts[i], strlen(texts[i]), flags, ia, 512, &na), KP_OK);
            assert_int_equal(kp_tokenize(b, texts[i], strlen(texts[i]), flags, ib, 512, &nb), KP_OK);
            if (na != nb || memcmp(ia, ib, na * sizeof *ia))
                fail_msg("%s: text %zu flags %u: %zu ids vs %zu after the round trip", rel, i, flags, na, nb);
        }
    }
    for (int32_t id = 0; id < a->n_vocab; id++) {
        size_t la, lb;
        const char *pa = kp_tokenizer_piece(a, id, &la), *pb = kp_tokenizer_piece(b, id, &lb);
        if (a->type[id] == KP_TOKEN_NORMAL && (la != lb || memcmp(pa, pb, la)))
            fail_msg("%s: piece of %d differs", rel, id);
    }
    kp_tokenizer_free(a);
    kp_tokenizer_free(b);
}

static void test_llama3_json(void **s) { (void)s; check_one("tokenizers/llama3/tokenizer.json", 0); }
static void test_llama3_1_json(void **s) { (void)s; check_one("tokenizers/llama3_1/tokenizer.json", 0); }
static void test_qwen3_json(void **s) { (void)s; check_one("tokenizers/qwen3/tokenizer.json", 0); }
static void test_hf_llama32(void **s) { (void)s; check_one("models/hf/kp-hf-llama32-tiny/tokenizer.json", 0); }
static void test_hf_qwen25(void **s) { (void)s; check_one("models/hf/kp-hf-qwen25-tiny/tokenizer.json", 0); }
static void test_llama2_json(void **s) { (void)s; check_one("tokenizers/llama2-sp/tokenizer.json", 0); }
static void test_tok512_json(void **s) { (void)s; check_one("tokenizers/tok512-sp/tokenizer.json", 0); }
static void test_spm_model(void **s) { (void)s; check_one("models/stories260K/tok512.model", 0); }
static void test_llama2c_bin(void **s) { (void)s; check_one("models/stories260K/tok512.bin", 512); }
static void test_gguf_llama(void **s) { (void)s; check_one("models/stories260K/stories260K.gguf", 0); }
static void test_gguf_gpt2(void **s) { (void)s; check_one("models/gguf/kp-llama3-tiny.gguf", 0); }
static void test_gguf_qwen2(void **s) { (void)s; check_one("models/gguf/kp-qwen2-tiny.gguf", 0); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama3_json), cmocka_unit_test(test_llama3_1_json), cmocka_unit_test(test_qwen3_json),
        cmocka_unit_test(test_hf_llama32),  cmocka_unit_test(test_hf_qwen25),     cmocka_unit_test(test_spm_model),
        cmocka_unit_test(test_llama2c_bin), cmocka_unit_test(test_gguf_llama),    cmocka_unit_test(test_gguf_gpt2),
        cmocka_unit_test(test_gguf_qwen2),  cmocka_unit_test(test_llama2_json),   cmocka_unit_test(test_tok512_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
