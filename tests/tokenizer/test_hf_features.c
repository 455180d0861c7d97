/* Features of tokenizer.json that the shared vocabularies do not use, against Hugging Face
 * tokenizers' own output (hf_features.json, written by gen_hf_features.py): Metaspace, unk with
 * fuse_unk, lstrip/rstrip/single_word and normalized added tokens, NFKC/NFD/Lowercase/Replace/
 * Strip normalizers, every Split behaviour, ByteLevel with its regex and prefix space, Roberta and
 * suffix post-processors, ignore_merges. Decoding is checked where the table-driven decoder can
 * express Hugging Face's (Metaspace/ByteLevel pieces, one leading space stripped). */
#include "tok_util.h"

#ifndef KP_TOK_TEST_SRC
#define KP_TOK_TEST_SRC "."
#endif

static void run_one(const kp_json *spec, const char *name)
{
    const kp_json *js = kp_json_get_type(spec, "json", KP_JSON_STRING);
    const kp_json *cases = kp_json_get_type(spec, "cases", KP_JSON_ARRAY);
    assert_non_null(js);
    assert_non_null(cases);
    kp_tokenizer *t = NULL;
    kp_status st = kp_tokenizer_hf_json_from_memory(NULL, js->u.str, js->len, NULL, 0, name, &t);
    if (st)
        fprintf(stderr, "%s\n", kp_last_error());
    assert_int_equal(st, KP_OK);
    static const char *const fields[3] = {"ids", "ids_add_special", "ids_no_special"};
    size_t bad = 0, total = 0;
    for (uint32_t i = 0; i < cases->len; i++) {
        const kp_json *c = &cases->u.kids[i];
        const kp_json *text = kp_json_get_type(c, "text", KP_JSON_STRING);
        for (int m = 0; m < 3; m++) {
            size_t nw, ng;
            int32_t *w = ids_of(kp_json_get_type(c, fields[m], KP_JSON_ARRAY), &nw);
            int32_t *g = encode(t, text->u.str, text->len, mode_flags[m], &ng, &st);
            total++;
            if (!g || !same_ids(g, ng, w, nw)) {
                bad++;
                fprintf(stderr, "  %s \"%.*s\" %s:\n", name, (int)text->len, text->u.str, fields[m]);
                print_ids("Hugging Face", w, nw);
                if (g)
                    print_ids("libkuiper   ", g, ng);
            }
            free(w);
            free(g);
        }
    }
    fprintf(stderr, "  %s: %zu/%zu\n", name, total - bad, total);
    kp_tokenizer_free(t);
    assert_int_equal(bad, 0);
}

static void test_features(void **s)
{
    (void)s;
    size_t n = 0;
    char *buf = kp_test_slurp(KP_TOK_TEST_SRC "/hf_features.json", &n);
    assert_non_null(buf);
    kp_json_doc *d;
    assert_int_equal(kp_json_parse(NULL, buf, n, "hf_features.json", &d), KP_OK);
    run_one(kp_json_get(kp_json_root(d), "t1"), "t1 (Metaspace, unk, lstrip/rstrip/single_word)");
    run_one(kp_json_get(kp_json_root(d), "t2"), "t2 (byte-level, Split behaviours)");
    kp_json_free(d);
    free(buf);
}

/* The decoded text, for the t2 cases (ByteLevel decoder, no stripping). */
static void test_decode_bytelevel(void **s)
{
    (void)s;
    size_t n = 0;
    char *buf = kp_test_slurp(KP_TOK_TEST_SRC "/hf_features.json", &n);
    assert_non_null(buf);
    kp_json_doc *d;
    assert_int_equal(kp_json_parse(NULL, buf, n, "hf_features.json", &d), KP_OK);
    const kp_json *spec = kp_json_get(kp_json_root(d), "t2");
    const kp_json *js = kp_json_get_type(spec, "json", KP_JSON_STRING);
    const kp_json *cases = kp_json_get_type(spec, "cases", KP_JSON_ARRAY);
    kp_tokenizer *t = NULL;
    assert_int_equal(kp_tokenizer_hf_json_from_memory(NULL, js->u.str, js->len, NULL, 0, "t2", &t), KP_OK);
    for (uint32_t i = 0; i < cases->len; i++) {
        const kp_json *c = &cases->u.kids[i];
        const kp_json *want = kp_json_get_type(c, "decoded", KP_JSON_STRING);
        size_t nw;
        int32_t *w = ids_of(kp_json_get_type(c, "ids", KP_JSON_ARRAY), &nw);
        char out[256];
        size_t len;
        assert_int_equal(kp_detokenize(t, w, nw, out, sizeof out, &len), KP_OK);
        if (len != want->len || memcmp(out, want->u.str, len) != 0) {
            fprintf(stderr, "  decode: want \"%.*s\" got \"%.*s\"\n", (int)want->len, want->u.str, (int)len, out);
            fail();
        }
        free(w);
    }
    kp_tokenizer_free(t);
    kp_json_free(d);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_features),
        cmocka_unit_test(test_decode_bytelevel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
