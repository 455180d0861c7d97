/* The constructors for vocabularies as GGUF stores them (kp_tokenizer_bpe_vocab_new for "gpt2",
 * kp_tokenizer_spm_vocab_new for "llama"). The arrays are built here the way llama.cpp's
 * converter writes them, from tokenizer.json / .model files, and the ids are checked against
 * llama.cpp's own prompt ids in shared/reference/gguf and against the Hugging Face and
 * SentencePiece expectations (which llama.cpp matches for these vocabularies). */
#include "tok_util.h"

#include <utf8proc.h>

#include "lib/tokenizer/spm.h"

typedef struct arrays {
    kp_vocab_arrays v;
    char **tok;
    uint32_t *tok_len;
    int32_t *types;
    float *scores;
    char **mer;
    uint32_t *mer_len;
    kp_json_doc *doc;
    char *text;
} arrays;

static void arrays_free(arrays *a)
{
    for (int32_t i = 0; i < a->v.n; i++)
        free(a->tok[i]);
    for (int32_t i = 0; i < a->v.n_merges; i++)
        free(a->mer[i]);
    free(a->tok);
    free(a->tok_len);
    free(a->types);
    free(a->scores);
    free(a->mer);
    free(a->mer_len);
    kp_json_free(a->doc);
    free(a->text);
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* tokenizer.json -> GGUF-style arrays (tokens as spelled, CONTROL for special added tokens,
 * USER_DEFINED for the others, merges as "a b"). */
static int from_hf_json(const char *rel, arrays *a)
{
    char path[1024];
    memset(a, 0, sizeof *a);
    if (!kp_test_file(path, sizeof path, rel))
        return 0;
    size_t n = 0;
    a->text = kp_test_slurp(path, &n);
    assert_non_null(a->text);
    assert_int_equal(kp_json_parse(NULL, a->text, n, rel, &a->doc), KP_OK);
    const kp_json *r = kp_json_root(a->doc);
    const kp_json *model = kp_json_get(r, "model");
    const kp_json *vocab = kp_json_get(model, "vocab");
    const kp_json *merges = kp_json_get(model, "merges");
    const kp_json *added = kp_json_get(r, "added_tokens");
    int32_t nv = 0;
    for (uint32_t i = 0; i < vocab->len; i++)
        if ((int32_t)vocab->u.kids[i].u.num + 1 > nv)
            nv = (int32_t)vocab->u.kids[i].u.num + 1;
    for (uint32_t i = 0; i < added->len; i++) {
        int32_t id = (int32_t)kp_json_get(&added->u.kids[i], "id")->u.num;
        if (id + 1 > nv)
            nv = id + 1;
    }
    a->v.n = nv;
    a->tok = calloc((size_t)nv, sizeof *a->tok);
    a->tok_len = calloc((size_t)nv, sizeof *a->tok_len);
    a->types = calloc((size_t)nv, sizeof *a->types);
    for (uint32_t i = 0; i < vocab->len; i++) {
        const kp_json *e = &vocab->u.kids[i];
        int32_t id = (int32_t)e->u.num;
        a->tok[id] = dup_n(e->key, e->key_len);
        a->tok_len[id] = e->key_len;
        a->types[id] = KP_TOKEN_NORMAL;
    }
    for (uint32_t i = 0; i < added->len; i++) {
        const kp_json *e = &added->u.kids[i];
        int32_t id = (int32_t)kp_json_get(e, "id")->u.num;
        const kp_json *c = kp_json_get(e, "content");
        free(a->tok[id]);
        a->tok[id] = dup_n(c->u.str, c->len);
        a->tok_len[id] = c->len;
        a->types[id] = kp_json_bool(kp_json_get(e, "special"), 0) ? KP_TOKEN_CONTROL : KP_TOKEN_USER_DEFINED;
    }
    a->v.n_merges = (int32_t)merges->len;
    a->mer = calloc(merges->len, sizeof *a->mer);
    a->mer_len = calloc(merges->len, sizeof *a->mer_len);
    for (uint32_t i = 0; i < merges->len; i++) {
        const kp_json *e = &merges->u.kids[i];
        if (e->type == KP_JSON_STRING) {
            a->mer[i] = dup_n(e->u.str, e->len);
            a->mer_len[i] = e->len;
        } else {
            size_t l0 = e->u.kids[0].len, l1 = e->u.kids[1].len;
            a->mer[i] = malloc(l0 + l1 + 2);
            memcpy(a->mer[i], e->u.kids[0].u.str, l0);
            a->mer[i][l0] = ' ';
            memcpy(a->mer[i] + l0 + 1, e->u.kids[1].u.str, l1);
            a->mer_len[i] = (uint32_t)(l0 + l1 + 1);
        }
    }
    a->v.tokens = (const char *const *)a->tok;
    a->v.token_lens = a->tok_len;
    a->v.types = a->types;
    a->v.merges = (const char *const *)a->mer;
    a->v.merge_lens = a->mer_len;
    a->v.bos = a->v.eos = a->v.eot = a->v.unk = a->v.pad = -1;
    a->v.add_bos = a->v.add_eos = a->v.add_space_prefix = -1;
    return 1;
}

/* llama.cpp's prompt ids for reference/gguf/<model>/P*.json (add_special, parse_special). */
static void check_gguf_refs(const kp_tokenizer *t, const char *model)
{
    for (int p = 1; p <= 3; p++) {
        char rel[256], path[1024];
        snprintf(rel, sizeof rel, "reference/gguf/%s/P%d.json", model, p);
        if (!kp_test_file(path, sizeof path, rel))
            continue;
        size_t n = 0;
        char *js = kp_test_slurp(path, &n);
        kp_json_doc *d;
        assert_int_equal(kp_json_parse(NULL, js, n, rel, &d), KP_OK);
        const kp_json *prompt = kp_json_get(kp_json_root(d), "prompt");
        const kp_json *want = kp_json_get(kp_json_root(d), "prompt_ids");
        size_t nw, ng;
        int32_t *w = ids_of(want, &nw);
        kp_status st;
        int32_t *g = encode(t, prompt->u.str, prompt->len, KP_TOKENIZE_ADD_SPECIAL | KP_TOKENIZE_PARSE_SPECIAL, &ng, &st);
        assert_non_null(g);
        if (!same_ids(g, ng, w, nw)) {
            fprintf(stderr, "  %s differs from llama.cpp\n", rel);
            print_ids("llama.cpp", w, nw);
            print_ids("ours     ", g, ng);
            fail();
        }
        free(w);
        free(g);
        kp_json_free(d);
        free(js);
    }
}

/* 1 if the text is in NFC (by utf8proc directly). */
static int is_nfc(const char *s, size_t n)
{
    char *z = malloc(n + 1);
    memcpy(z, s, n);
    z[n] = 0;
    utf8proc_uint8_t *c = utf8proc_NFC((const utf8proc_uint8_t *)z);
    int same = c && strlen((const char *)c) == n && memcmp(c, s, n) == 0;
    free(c);
    free(z);
    return same;
}

/* Against the Hugging Face expectations: ids (parse special), ids_no_added_tokens (no parse
 * special; USER_DEFINED text is still matched, as non-special added tokens are), and with
 * ADD_SPECIAL the ids after `bos` when bos >= 0. llama.cpp does not run Hugging Face
 * normalizers, so with `nfc_only` the texts that NFC would change are left out. */
static void check_hf(const kp_tokenizer *t, const char *expected_rel, int32_t bos, int nfc_only)
{
    char path[1024];
    if (!kp_test_file(path, sizeof path, expected_rel))
        return;
    tcases cs;
    assert_true(load_cases(path, &cs));
    size_t ok = 0, tot = 0, left_out = 0;
    for (size_t i = 0; i < cs.n; i++) {
        tcase *c = &cs.c[i];
        if (nfc_only && !is_nfc(c->text, c->text_len)) {
            left_out++;
            continue;
        }
        for (int m = 0; m < N_MODES; m++) {
            size_t n;
            kp_status st;
            int32_t *g = encode(t, c->text, c->text_len, mode_flags[m], &n, &st);
            assert_non_null(g);
            const int32_t *w = c->ids[m == MODE_NO_ADDED ? MODE_NO_ADDED : MODE_IDS];
            size_t nw = c->n_ids[m == MODE_NO_ADDED ? MODE_NO_ADDED : MODE_IDS];
            int good;
            if (m == MODE_ADD_SPECIAL && bos >= 0)
                good = n == nw + 1 && g[0] == bos && same_ids(g + 1, n - 1, w, nw);
            else
                good = same_ids(g, n, w, nw);
            tot++;
            if (good)
                ok++;
            else {
                fprintf(stderr, "  MISMATCH %s %s\n", c->id, mode_field[m]);
                print_ids("expected", w, nw);
                print_ids("got     ", g, n);
            }
            free(g);
        }
    }
    fprintf(stderr, "  %s via GGUF-style arrays: %zu/%zu (%zu texts not in NFC left out)\n", expected_rel, ok,
            tot, left_out);
    free_cases(&cs);
    assert_int_equal(ok, tot);
}

static void test_llama3_bpe(void **st)
{
    (void)st;
    arrays a;
    if (!from_hf_json("tokenizers/llama3/tokenizer.json", &a)) {
        skip();
        return;
    }
    /* as in kp-llama3-tiny.gguf */
    a.v.pre = "llama-bpe";
    a.v.bos = 128000;
    a.v.eos = 128009;
    a.v.add_bos = 1;
    kp_tokenizer *t = NULL;
    kp_status s = kp_tokenizer_bpe_vocab_new(NULL, &a.v, &t);
    if (s)
        fprintf(stderr, "%s\n", kp_last_error());
    assert_int_equal(s, KP_OK);
    assert_int_equal(kp_tokenizer_n_vocab(t), 128256);
    assert_true(kp_tokenizer_is_eog(t, 128009));
    assert_true(kp_tokenizer_is_eog(t, 128001)); /* <|end_of_text|> */
    assert_false(kp_tokenizer_is_eog(t, 128000));
    check_gguf_refs(t, "kp-llama3-tiny");
    check_hf(t, "tokenizers/expected/hf-llama3.jsonl", 128000, 0);
    kp_tokenizer_free(t);
    arrays_free(&a);
}

static void test_qwen2_bpe(void **st)
{
    (void)st;
    arrays a;
    if (!from_hf_json("tokenizers/qwen3/tokenizer.json", &a)) {
        skip();
        return;
    }
    /* as in kp-qwen2-tiny.gguf */
    a.v.pre = "qwen2";
    a.v.bos = 151643;
    a.v.eos = 151645;
    a.v.pad = 151643;
    a.v.add_bos = 0;
    kp_tokenizer *t = NULL;
    assert_int_equal(kp_tokenizer_bpe_vocab_new(NULL, &a.v, &t), KP_OK);
    assert_true(kp_tokenizer_is_eog(t, 151645));
    assert_true(kp_tokenizer_is_eog(t, 151643));
    check_gguf_refs(t, "kp-qwen2-tiny");
    check_hf(t, "tokenizers/expected/hf-qwen3.jsonl", -1, 1);
    kp_tokenizer_free(t);
    arrays_free(&a);
}

/* A "llama" vocabulary from a SentencePiece model's pieces, scores and types. */
static kp_tokenizer *spm_arrays(const char *model_rel, int32_t bos, int32_t eos)
{
    char path[1024];
    if (!kp_test_file(path, sizeof path, model_rel))
        return NULL;
    size_t n = 0;
    char *data = kp_test_slurp(path, &n);
    kp_tokenizer *src = NULL;
    assert_int_equal(kp_tokenizer_spm_model_new(NULL, (const uint8_t *)data, n, &src), KP_OK);
    const kp_spm *m = src->impl;
    int32_t nv = src->n_vocab;
    const char **tok = calloc((size_t)nv, sizeof *tok);
    uint32_t *len = calloc((size_t)nv, sizeof *len);
    int32_t *types = calloc((size_t)nv, sizeof *types);
    for (int32_t i = 0; i < nv; i++) {
        size_t l;
        tok[i] = kp_strmap_key(&m->all, i, &l);
        len[i] = (uint32_t)l;
        types[i] = src->type[i];
    }
    kp_vocab_arrays v;
    memset(&v, 0, sizeof v);
    v.n = nv;
    v.tokens = tok;
    v.token_lens = len;
    v.scores = m->score;
    v.types = types;
    v.bos = bos;
    v.eos = eos;
    v.eot = v.unk = v.pad = -1;
    v.add_bos = 1;
    v.add_eos = 0;
    v.add_space_prefix = -1;
    kp_tokenizer *t = NULL;
    assert_int_equal(kp_tokenizer_spm_vocab_new(NULL, &v, &t), KP_OK);
    free(tok);
    free(len);
    free(types);
    kp_tokenizer_free(src);
    free(data);
    return t;
}

static void test_tok512_spm(void **st)
{
    (void)st;
    kp_tokenizer *t = spm_arrays("models/stories260K/tok512.model", 1, 2);
    if (!t) {
        skip();
        return;
    }
    check_gguf_refs(t, "kp-llama-small");
    kp_tokenizer_free(t);
}

/* Llama 2's model does not remove extra whitespace, so llama.cpp's SPM encoding equals
 * SentencePiece's on text without special tokens. */
static void test_llama2_spm(void **st)
{
    (void)st;
    kp_tokenizer *t = spm_arrays("models/llama2-tokenizer/tokenizer.model", 1, 2);
    char path[1024];
    if (!t || !kp_test_file(path, sizeof path, "tokenizers/expected/sentencepiece-llama2.jsonl")) {
        kp_tokenizer_free(t);
        skip();
        return;
    }
    tcases cs;
    assert_true(load_cases(path, &cs));
    size_t ok = 0;
    for (size_t i = 0; i < cs.n; i++) {
        size_t n;
        kp_status s;
        int32_t *g = encode(t, cs.c[i].text, cs.c[i].text_len, 0, &n, &s);
        assert_non_null(g);
        if (same_ids(g, n, cs.c[i].ids[MODE_IDS], cs.c[i].n_ids[MODE_IDS]))
            ok++;
        else {
            fprintf(stderr, "  MISMATCH %s\n", cs.c[i].id);
            print_ids("expected", cs.c[i].ids[MODE_IDS], cs.c[i].n_ids[MODE_IDS]);
            print_ids("got     ", g, n);
        }
        free(g);
    }
    fprintf(stderr, "  sentencepiece-llama2 via GGUF-style arrays: %zu/%zu\n", ok, cs.n);
    assert_int_equal(ok, cs.n);
    /* BOS with ADD_SPECIAL, "<s>" text only with PARSE_SPECIAL */
    size_t n;
    kp_status s;
    int32_t *g = encode(t, "<s>hi", 5, KP_TOKENIZE_ADD_SPECIAL | KP_TOKENIZE_PARSE_SPECIAL, &n, &s);
    assert_non_null(g);
    assert_true(n >= 3 && g[0] == 1 && g[1] == 1);
    free(g);
    free_cases(&cs);
    kp_tokenizer_free(t);
}

static void test_bad_arrays(void **st)
{
    (void)st;
    const char *toks[] = {"a", "b", "ab"};
    uint32_t lens[] = {1, 1, 2};
    const char *mer[] = {"a b", "a q"};
    uint32_t mlen[] = {3, 3};
    kp_vocab_arrays v;
    memset(&v, 0, sizeof v);
    v.n = 3;
    v.tokens = toks;
    v.token_lens = lens;
    v.n_merges = 2;
    v.merges = mer;
    v.merge_lens = mlen;
    v.pre = "gpt2";
    v.bos = v.eos = v.eot = v.unk = v.pad = -1;
    v.add_bos = v.add_eos = v.add_space_prefix = -1;
    kp_tokenizer *t = (kp_tokenizer *)1;
    assert_int_equal(kp_tokenizer_bpe_vocab_new(NULL, &v, &t), KP_ERR_FORMAT);
    assert_null(t);
    assert_non_null(strstr(kp_last_error(), "merges entry 1"));
    v.n_merges = 1;
    v.pre = "no-such-pre";
    assert_int_equal(kp_tokenizer_bpe_vocab_new(NULL, &v, &t), KP_ERR_UNSUPPORTED);
    assert_non_null(strstr(kp_last_error(), "no-such-pre"));
    v.pre = "gpt2";
    assert_int_equal(kp_tokenizer_bpe_vocab_new(NULL, &v, &t), KP_OK);
    size_t n;
    kp_status s;
    int32_t *g = encode(t, "ab", 2, 0, &n, &s);
    assert_non_null(g);
    assert_int_equal(n, 1);
    assert_int_equal(g[0], 2);
    free(g);
    kp_tokenizer_free(t);
    v.n = 0;
    assert_int_equal(kp_tokenizer_spm_vocab_new(NULL, &v, &t), KP_ERR_FORMAT);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama3_bpe), cmocka_unit_test(test_qwen2_bpe),  cmocka_unit_test(test_tok512_spm),
        cmocka_unit_test(test_llama2_spm), cmocka_unit_test(test_bad_arrays),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
