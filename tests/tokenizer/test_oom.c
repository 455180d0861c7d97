/* Out-of-memory injection: loading and encoding through an allocator that fails its Nth
 * allocation, for every N. Each run must end in KP_OK or KP_ERR_OUT_OF_MEMORY, leave no output
 * on failure, and give back every byte (the allocator counts them; ASan checks the rest). This
 * also shows that PCRE2 and the JSON reader allocate only through the hooks. */
#include "tok_util.h"

typedef struct counting {
    long allocs, fail_at;
    size_t live;
} counting;

static void *c_alloc(void *user, size_t size, size_t align)
{
    counting *c = user;
    c->allocs++;
    if (c->fail_at && c->allocs == c->fail_at)
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size ? size : 1))
        return NULL;
    c->live += size;
    return p;
}

static void c_free(void *user, void *p, size_t size)
{
    counting *c = user;
    c->live -= size;
    free(p);
}

typedef kp_status (*load_fn)(const kp_allocator *a, const void *arg, kp_tokenizer **t);

static const char *const enc_text = "Hello  world, <s>it's 123 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 \xff!";

/* Runs load (+ encode) with each allocation failing in turn. */
static void sweep(load_fn load, const void *arg, const char *label)
{
    counting c = {0, 0, 0};
    kp_allocator a = {c_alloc, c_free, &c};
    kp_tokenizer *t = NULL;
    assert_int_equal(load(&a, arg, &t), KP_OK);
    long n_load = c.allocs;
    int32_t ids[256];
    size_t n;
    assert_int_equal(kp_tokenize(t, enc_text, strlen(enc_text), KP_TOKENIZE_PARSE_SPECIAL | KP_TOKENIZE_ADD_SPECIAL,
                                 ids, 256, &n),
                     KP_OK);
    long n_total = c.allocs;
    kp_tokenizer_free(t);
    assert_int_equal(c.live, 0);
    size_t n_oom = 0;
    for (long k = 1; k <= n_total; k++) {
        counting f = {0, k, 0};
        kp_allocator fa = {c_alloc, c_free, &f};
        t = (kp_tokenizer *)1;
        kp_status st = load(&fa, arg, &t);
        if (st) {
            if (st != KP_ERR_OUT_OF_MEMORY)
                fprintf(stderr, "  %s: failing allocation %ld gave %s: %s\n", label, k, kp_status_str(st),
                        kp_last_error());
            assert_int_equal(st, KP_ERR_OUT_OF_MEMORY);
            assert_null(t);
            n_oom++;
        } else {
            size_t m;
            st = kp_tokenize(t, enc_text, strlen(enc_text), KP_TOKENIZE_PARSE_SPECIAL | KP_TOKENIZE_ADD_SPECIAL,
                             ids, 256, &m);
            assert_true(st == KP_OK || st == KP_ERR_OUT_OF_MEMORY);
            if (st == KP_OK)
                assert_int_equal(m, n);
            else
                n_oom++;
            kp_tokenizer_free(t);
        }
        assert_int_equal(f.live, 0);
    }
    fprintf(stderr, "  %s: %ld allocations to load, %ld with encode; %zu injected failures reported\n", label,
             n_load, n_total, n_oom);
    assert_true(n_oom > 0);
}

typedef struct blob {
    const char *data;
    size_t len;
} blob;

static kp_status load_hf(const kp_allocator *a, const void *arg, kp_tokenizer **t)
{
    const blob *b = arg;
    return kp_tokenizer_hf_json_from_memory(a, b->data, b->len, NULL, 0, "t.json", t);
}

static kp_status load_spm(const kp_allocator *a, const void *arg, kp_tokenizer **t)
{
    const blob *b = arg;
    return kp_tokenizer_spm_model_new(a, (const uint8_t *)b->data, b->len, t);
}

static void sweep_file(const char *rel, load_fn fn)
{
    char path[1024];
    if (!kp_test_file(path, sizeof path, rel)) {
        skip();
        return;
    }
    blob b;
    b.data = kp_test_slurp(path, &b.len);
    assert_non_null(b.data);
    sweep(fn, &b, rel);
    free((void *)b.data);
}

static void test_hf_spm_style(void **s)
{
    (void)s;
    sweep_file("tokenizers/tok512-sp/tokenizer.json", load_hf);
}

static void test_spm_model(void **s)
{
    (void)s;
    sweep_file("models/stories260K/tok512.model", load_spm);
}

/* A small byte-level tokenizer with the pieces that allocate: a regex pre-tokenizer (PCRE2),
 * NFC, added tokens, a template post-processor. */
static void test_hf_bytelevel(void **s)
{
    (void)s;
    static const char js[] =
        "{\"added_tokens\":[{\"id\":7,\"content\":\"<s>\",\"special\":true}],"
        "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},"
        "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" {2,}\"},\"content\":\" \"}]},"
        "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
        "\"\\\\p{N}{1,2}|[^\\\\s\\\\p{N}]+|\\\\s+\"},\"behavior\":\"Isolated\",\"invert\":false},"
        "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}]},"
        "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\"}},"
        "{\"Sequence\":{\"id\":\"A\"}}],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[7]}}},"
        "\"decoder\":{\"type\":\"ByteLevel\"},"
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"H\":0,\"e\":1,\"l\":2,\"o\":3,\"He\":4,\"ll\":5,\"\\u0120\":6},"
        "\"merges\":[\"H e\",\"l l\"]}}";
    blob b = {js, sizeof js - 1};
    sweep(load_hf, &b, "byte-level mini tokenizer.json");
}

static kp_status load_arrays(const kp_allocator *a, const void *arg, kp_tokenizer **t)
{
    return kp_tokenizer_bpe_vocab_new(a, arg, t);
}

static void test_vocab_arrays(void **s)
{
    (void)s;
    const char *toks[] = {"H", "e", "He", "\xc4\xa0", "<|x|>", "1"};
    uint32_t lens[] = {1, 1, 2, 2, 5, 1};
    int32_t types[] = {1, 1, 1, 1, 3, 1};
    const char *mer[] = {"H e"};
    uint32_t mlen[] = {3};
    kp_vocab_arrays v;
    memset(&v, 0, sizeof v);
    v.n = 6;
    v.tokens = toks;
    v.token_lens = lens;
    v.types = types;
    v.n_merges = 1;
    v.merges = mer;
    v.merge_lens = mlen;
    v.pre = "llama-bpe";
    v.bos = 4;
    v.eos = v.eot = v.unk = v.pad = -1;
    v.add_bos = 1;
    v.add_eos = v.add_space_prefix = -1;
    v.chat_template = "{{ messages }}";
    v.chat_template_len = 14;
    sweep(load_arrays, &v, "GGUF-style arrays");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hf_spm_style),
        cmocka_unit_test(test_spm_model),
        cmocka_unit_test(test_hf_bytelevel),
        cmocka_unit_test(test_vocab_arrays),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
