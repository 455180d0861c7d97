/* Every case of shared/tokenizers/expected/hf-<vocab>.jsonl (Hugging Face tokenizers' output) in
 * all three modes, and decode(encode(x)) == x exactly when the file's "roundtrip" says so; also
 * the SentencePiece library's output for the .model files. */
#include "tok_util.h"

static void check_vocab(const char *tokenizer_rel, const char *expected_rel, int n_modes, int check_roundtrip)
{
    char tpath[1024], epath[1024];
    if (!kp_test_file(tpath, sizeof tpath, tokenizer_rel) || !kp_test_file(epath, sizeof epath, expected_rel)) {
        skip();
        return;
    }
    kp_tokenizer *t = NULL;
    kp_status st = kp_tokenizer_load(tpath, NULL, &t);
    if (st)
        fprintf(stderr, "load %s: %s\n", tpath, kp_last_error());
    assert_int_equal(st, KP_OK);
    tcases cs;
    assert_true(load_cases(epath, &cs));
    assert_true(cs.n > 200);
    size_t ok[N_MODES] = {0}, tot[N_MODES] = {0}, rt_ok = 0, rt_tot = 0;
    for (size_t i = 0; i < cs.n; i++) {
        tcase *c = &cs.c[i];
        int32_t *mine[N_MODES] = {NULL};
        size_t nm[N_MODES] = {0};
        for (int m = 0; m < n_modes; m++) {
            if (!c->has[m])
                continue;
            tot[m]++;
            mine[m] = encode(t, c->text, c->text_len, mode_flags[m], &nm[m], &st);
            if (!mine[m])
                fprintf(stderr, "  %s %s: %s\n", c->id, mode_field[m], kp_last_error());
            if (mine[m] && same_ids(mine[m], nm[m], c->ids[m], c->n_ids[m])) {
                ok[m]++;
            } else {
                fprintf(stderr, "  MISMATCH %s %s\n", c->id, mode_field[m]);
                print_ids("expected", c->ids[m], c->n_ids[m]);
                if (mine[m])
                    print_ids("got     ", mine[m], nm[m]);
            }
        }
        if (check_roundtrip && c->roundtrip >= 0 && mine[MODE_IDS]) {
            rt_tot++;
            size_t cap = c->text_len * 4 + 64, len = 0;
            char *buf = malloc(cap);
            st = kp_detokenize(t, mine[MODE_IDS], nm[MODE_IDS], buf, cap, &len);
            int equal = st == KP_OK && len == c->text_len && memcmp(buf, c->text, len) == 0;
            if (equal == c->roundtrip)
                rt_ok++;
            else
                fprintf(stderr, "  ROUNDTRIP %s: decode %s the text, expected %s (got '%.*s')\n", c->id,
                        equal ? "equals" : "differs from", c->roundtrip ? "equal" : "different",
                        (int)(len > 80 ? 80 : len), buf);
            free(buf);
        }
        for (int m = 0; m < N_MODES; m++)
            free(mine[m]);
    }
    size_t all_ok = 0, all_tot = 0;
    for (int m = 0; m < n_modes; m++) {
        fprintf(stderr, "  %s %s: %zu/%zu\n", tokenizer_rel, mode_field[m], ok[m], tot[m]);
        all_ok += ok[m];
        all_tot += tot[m];
    }
    if (check_roundtrip)
        fprintf(stderr, "  %s roundtrip: %zu/%zu\n", tokenizer_rel, rt_ok, rt_tot);
    free_cases(&cs);
    kp_tokenizer_free(t);
    assert_int_equal(all_ok, all_tot);
    assert_int_equal(rt_ok, rt_tot);
}

static void test_llama3(void **s)
{
    (void)s;
    check_vocab("tokenizers/llama3/tokenizer.json", "tokenizers/expected/hf-llama3.jsonl", N_MODES, 1);
}

static void test_llama3_1(void **s)
{
    (void)s;
    check_vocab("tokenizers/llama3_1/tokenizer.json", "tokenizers/expected/hf-llama3_1.jsonl", N_MODES, 1);
}

static void test_qwen3(void **s)
{
    (void)s;
    check_vocab("tokenizers/qwen3/tokenizer.json", "tokenizers/expected/hf-qwen3.jsonl", N_MODES, 1);
}

static void test_llama2_sp(void **s)
{
    (void)s;
    check_vocab("tokenizers/llama2-sp/tokenizer.json", "tokenizers/expected/hf-llama2-sp.jsonl", N_MODES, 1);
}

static void test_tok512_sp(void **s)
{
    (void)s;
    check_vocab("tokenizers/tok512-sp/tokenizer.json", "tokenizers/expected/hf-tok512-sp.jsonl", N_MODES, 1);
}

/* SentencePiece 0.1.97 encode(text, out_type=int): no BOS, "<s>" in the text is plain text,
 * which is our mode without flags ("ids" field of those files). */
static void check_spm(const char *model_rel, const char *expected_rel)
{
    char mpath[1024], epath[1024];
    if (!kp_test_file(mpath, sizeof mpath, model_rel) || !kp_test_file(epath, sizeof epath, expected_rel)) {
        skip();
        return;
    }
    kp_tokenizer *t = NULL;
    kp_status st = kp_tokenizer_load(mpath, NULL, &t);
    if (st)
        fprintf(stderr, "load %s: %s\n", mpath, kp_last_error());
    assert_int_equal(st, KP_OK);
    tcases cs;
    assert_true(load_cases(epath, &cs));
    size_t ok = 0;
    for (size_t i = 0; i < cs.n; i++) {
        tcase *c = &cs.c[i];
        size_t n;
        int32_t *mine = encode(t, c->text, c->text_len, 0, &n, &st);
        if (mine && same_ids(mine, n, c->ids[MODE_IDS], c->n_ids[MODE_IDS])) {
            ok++;
        } else {
            fprintf(stderr, "  MISMATCH %s\n", c->id);
            print_ids("expected", c->ids[MODE_IDS], c->n_ids[MODE_IDS]);
            if (mine)
                print_ids("got     ", mine, n);
        }
        free(mine);
    }
    fprintf(stderr, "  %s: %zu/%zu\n", model_rel, ok, cs.n);
    assert_int_equal(ok, cs.n);
    assert_true(cs.n > 200);
    free_cases(&cs);
    kp_tokenizer_free(t);
}

static void test_spm_llama2(void **s)
{
    (void)s;
    check_spm("models/llama2-tokenizer/tokenizer.model", "tokenizers/expected/sentencepiece-llama2.jsonl");
}

static void test_spm_tok512(void **s)
{
    (void)s;
    check_spm("models/stories260K/tok512.model", "tokenizers/expected/sentencepiece-tok512.jsonl");
}

/* Long inputs go through a per-call cache of word ids; short ones do not. Encoding the 1 MB
 * benchmark text whole must equal encoding it in line-sized pieces, cut after a newline that is
 * followed by a letter (a place where the Llama 3 / Qwen2 pre-tokenizers split anyway). */
static void check_cache(const char *rel)
{
    char tpath[1024], bpath[1024];
    if (!kp_test_file(tpath, sizeof tpath, rel) || !kp_test_file(bpath, sizeof bpath, "tokenizers/bench_1mb.txt")) {
        skip();
        return;
    }
    kp_tokenizer *t = NULL;
    assert_int_equal(kp_tokenizer_load(tpath, NULL, &t), KP_OK);
    size_t n = 0;
    char *text = kp_test_slurp(bpath, &n);
    assert_non_null(text);
    size_t nw;
    kp_status st;
    int32_t *whole = encode(t, text, n, KP_TOKENIZE_PARSE_SPECIAL, &nw, &st);
    assert_non_null(whole);
    int32_t *parts = malloc((nw + 16) * sizeof *parts);
    size_t np = 0, start = 0, pieces = 0;
    for (size_t i = 0; i <= n; i++) {
        int cut = i == n || (i > start && text[i - 1] == '\n' &&
                             ((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= 'A' && text[i] <= 'Z')));
        if (!cut)
            continue;
        assert_true(i - start < 4096);
        size_t k;
        int32_t *ids = encode(t, text + start, i - start, KP_TOKENIZE_PARSE_SPECIAL, &k, &st);
        assert_non_null(ids);
        assert_true(np + k <= nw + 16);
        memcpy(parts + np, ids, k * sizeof *ids);
        np += k;
        free(ids);
        start = i;
        pieces++;
    }
    fprintf(stderr, "  %s: whole text %zu ids, %zu pieces %zu ids\n", rel, nw, pieces, np);
    assert_true(same_ids(whole, nw, parts, np));
    free(parts);
    free(whole);
    free(text);
    kp_tokenizer_free(t);
}

static void test_cache_llama3(void **s)
{
    (void)s;
    check_cache("tokenizers/llama3/tokenizer.json");
}

static void test_cache_qwen3(void **s)
{
    (void)s;
    check_cache("tokenizers/qwen3/tokenizer.json");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama3),    cmocka_unit_test(test_llama3_1),   cmocka_unit_test(test_qwen3),
        cmocka_unit_test(test_llama2_sp), cmocka_unit_test(test_tok512_sp),  cmocka_unit_test(test_spm_llama2),
        cmocka_unit_test(test_spm_tok512), cmocka_unit_test(test_cache_llama3),  cmocka_unit_test(test_cache_qwen3),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
