/* Chat templates against Jinja2: every case of expected.json (rendered by render_refs.py from the
 * real templates) and every conversation in shared/reference/chat, through both entry points,
 * plus the error statuses and the buffer protocol. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kuiper/kuiper.h"
#include "../../lib/json.h"
#include "testdata.h"

#ifndef KP_CHAT_TEST_DIR
#define KP_CHAT_TEST_DIR "."
#endif

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    assert_non_null(d);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* A parsed JSON file that keeps its text alive. */
typedef struct jfile {
    char *text;
    kp_json_doc *doc;
} jfile;

static const kp_json *jload(jfile *f, const char *path)
{
    size_t n = 0;
    f->text = kp_test_slurp(path, &n);
    assert_non_null(f->text);
    assert_int_equal(kp_json_parse(NULL, f->text, n, path, &f->doc), KP_OK);
    return kp_json_root(f->doc);
}

static void jclose(jfile *f)
{
    kp_json_free(f->doc);
    free(f->text);
}

/* chat_template of a shared tokenizer_config.json; NULL (loud skip) if the data is absent. */
static char *shared_template(const char *rel)
{
    char path[1024];
    if (!kp_test_file(path, sizeof path, rel))
        return NULL;
    jfile f;
    const kp_json *t = kp_json_get_type(jload(&f, path), "chat_template", KP_JSON_STRING);
    assert_non_null(t);
    char *s = dup_n(t->u.str, t->len);
    jclose(&f);
    return s;
}

typedef struct conv {
    kp_chat_msg *msgs;
    size_t n;
} conv;

static conv read_messages(const kp_json *arr)
{
    assert_non_null(arr);
    assert_int_equal(arr->type, KP_JSON_ARRAY);
    conv c = {calloc(arr->len, sizeof(kp_chat_msg)), arr->len};
    assert_non_null(c.msgs);
    for (size_t i = 0; i < c.n; i++) {
        const kp_json *r = kp_json_get_type(&arr->u.kids[i], "role", KP_JSON_STRING);
        const kp_json *t = kp_json_get_type(&arr->u.kids[i], "content", KP_JSON_STRING);
        assert_non_null(r);
        assert_non_null(t);
        c.msgs[i].role = dup_n(r->u.str, r->len);
        c.msgs[i].content = dup_n(t->u.str, t->len);
    }
    return c;
}

static void free_conv(conv *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free((char *)c->msgs[i].role);
        free((char *)c->msgs[i].content);
    }
    free(c->msgs);
}

/* Renders with the measuring call first, then an exact-size buffer, and compares. */
static int check_render(const char *name, const char *tmpl, const kp_model *m, const conv *c, int add,
                        const char *want, size_t want_len)
{
    size_t need = 0, got = 0;
    kp_status st = m ? kp_chat_format(m, c->msgs, c->n, add, NULL, 0, &need)
                     : kp_chat_format_template(tmpl, c->msgs, c->n, add, NULL, 0, &need);
    if (st != KP_ERR_BUFFER_TOO_SMALL || need != want_len) {
        fprintf(stderr, "%s: measuring gave %s, %zu bytes (want %zu): %s\n", name, kp_status_str(st), need,
                want_len, kp_last_error());
        return 0;
    }
    char *buf = malloc(need + 1);
    assert_non_null(buf);
    st = m ? kp_chat_format(m, c->msgs, c->n, add, buf, need, &got)
           : kp_chat_format_template(tmpl, c->msgs, c->n, add, buf, need, &got);
    int ok = st == KP_OK && got == want_len && memcmp(buf, want, want_len) == 0;
    if (!ok)
        fprintf(stderr, "%s: %s\n  got:  \"%.*s\"\n  want: \"%.*s\"\n", name, kp_status_str(st), (int)got, buf,
                (int)want_len, want);
    free(buf);
    return ok;
}

static void test_expected_json(void **state)
{
    (void)state;
    jfile f;
    const kp_json *cases = kp_json_get_type(jload(&f, KP_CHAT_TEST_DIR "/expected.json"), "cases", KP_JSON_ARRAY);
    assert_non_null(cases);
    assert_true(cases->len > 100);
    size_t bad = 0, ran = 0;
    for (size_t i = 0; i < cases->len; i++) {
        const kp_json *k = &cases->u.kids[i], *w = kp_json_get(k, "template");
        const kp_json *name = kp_json_get_type(k, "name", KP_JSON_STRING);
        const kp_json *want = kp_json_get_type(k, "expected", KP_JSON_STRING);
        const kp_json *sh = kp_json_get_type(w, "shared", KP_JSON_STRING);
        const kp_json *fi = kp_json_get_type(w, "file", KP_JSON_STRING);
        const kp_json *fa = kp_json_get_type(w, "family", KP_JSON_STRING);
        assert_non_null(name);
        assert_non_null(want);
        char *tmpl = NULL, *rel;
        if (sh) {
            rel = dup_n(sh->u.str, sh->len);
            tmpl = shared_template(rel);
            free(rel);
            if (!tmpl)
                continue;
        } else if (fi) {
            char path[1024];
            rel = dup_n(fi->u.str, fi->len);
            snprintf(path, sizeof path, "%s/%s", KP_CHAT_TEST_DIR, rel);
            free(rel);
            tmpl = kp_test_slurp(path, NULL);
            assert_non_null(tmpl);
        } else {
            assert_non_null(fa);
            tmpl = dup_n(fa->u.str, fa->len);
        }
        conv c = read_messages(kp_json_get(k, "messages"));
        char *nm = dup_n(name->u.str, name->len);
        bad += !check_render(nm, tmpl, NULL, &c, kp_json_bool(kp_json_get(k, "add_assistant"), -1) == 1,
                             want->u.str, want->len);
        ran++;
        free(nm);
        free_conv(&c);
        free(tmpl);
    }
    jclose(&f);
    fprintf(stderr, "expected.json: %zu/%zu renderings equal Jinja2\n", ran - bad, ran);
    assert_int_equal(bad, 0);
}

/* shared/reference/chat/<model>.json, through the template of the model's tokenizer_config and,
 * when the GGUF file loads, through the model itself. */
static void check_reference(const char *model, const char *cfg)
{
    char ref_path[1024], rel[256], gguf[1024];
    snprintf(rel, sizeof rel, "reference/chat/%s.json", model);
    if (!kp_test_file(ref_path, sizeof ref_path, rel))
        return;
    jfile f;
    const kp_json *root = jload(&f, ref_path);
    const kp_json *want = kp_json_get_type(root, "jinja2", KP_JSON_STRING);
    assert_non_null(want);
    conv c = read_messages(kp_json_get(root, "messages"));
    snprintf(rel, sizeof rel, "tokenizers/%s/tokenizer_config.json", cfg);
    char *tmpl = shared_template(rel);
    if (tmpl)
        assert_true(check_render(model, tmpl, NULL, &c, 1, want->u.str, want->len));
    free(tmpl);

    snprintf(rel, sizeof rel, "models/gguf/%s.gguf", model);
    if (kp_test_file(gguf, sizeof gguf, rel)) {
        kp_model *m = NULL;
        kp_status st = kp_model_load(gguf, NULL, &m);
        if (st == KP_OK)
            assert_true(check_render(model, NULL, m, &c, 1, want->u.str, want->len));
        else
            fprintf(stderr, "\n*** SKIP: kp_chat_format on %s: the model does not load yet (%s) ***\n\n", model,
                    kp_last_error());
        kp_model_free(m);
    }
    free_conv(&c);
    jclose(&f);
}

static void test_reference_llama3(void **state)
{
    (void)state;
    check_reference("kp-llama3-tiny", "llama3_1");
}

static void test_reference_qwen2(void **state)
{
    (void)state;
    check_reference("kp-qwen2-tiny", "qwen3");
}

static void test_errors(void **state)
{
    (void)state;
    kp_chat_msg ok[2] = {{"user", "hi"}, {"assistant", "hello"}};
    char buf[256];
    size_t len = 99;
    assert_int_equal(kp_chat_format_template("chatml", ok, 0, 1, buf, sizeof buf, &len), KP_ERR_INVALID_ARG);
    assert_non_null(strstr(kp_last_error(), "empty"));
    assert_int_equal(len, 0);
    assert_int_equal(kp_chat_format_template("chatml", NULL, 1, 1, buf, sizeof buf, &len), KP_ERR_INVALID_ARG);
    kp_chat_msg tool[2] = {{"user", "hi"}, {"tool", "42"}};
    assert_int_equal(kp_chat_format_template("llama3", tool, 2, 1, buf, sizeof buf, &len), KP_ERR_INVALID_ARG);
    assert_non_null(strstr(kp_last_error(), "'tool'"));
    kp_chat_msg nul[1] = {{"user", NULL}};
    assert_int_equal(kp_chat_format_template("llama3", nul, 1, 1, buf, sizeof buf, &len), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_chat_format_template("{{ messages }}", ok, 2, 1, buf, sizeof buf, &len),
                     KP_ERR_UNSUPPORTED);
    assert_non_null(strstr(kp_last_error(), "not recognised"));
    assert_int_equal(kp_chat_format_template("gemma", ok, 2, 1, buf, sizeof buf, &len), KP_ERR_UNSUPPORTED);
    assert_int_equal(kp_chat_format_template(NULL, ok, 2, 1, buf, sizeof buf, &len), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_chat_format_template("chatml", ok, 2, 1, buf, sizeof buf, NULL), KP_ERR_INVALID_ARG);
    assert_int_equal(kp_chat_format(NULL, ok, 2, 1, buf, sizeof buf, &len), KP_ERR_INVALID_ARG);
    /* Llama 2's template raises on turns that do not alternate. */
    kp_chat_msg two_users[2] = {{"user", "a"}, {"user", "b"}};
    assert_int_equal(kp_chat_format_template("llama2", two_users, 2, 1, buf, sizeof buf, &len),
                     KP_ERR_INVALID_ARG);
    kp_chat_msg asst_first[1] = {{"assistant", "a"}};
    assert_int_equal(kp_chat_format_template("llama2", asst_first, 1, 1, buf, sizeof buf, &len),
                     KP_ERR_INVALID_ARG);
}

static void test_buffer_protocol(void **state)
{
    (void)state;
    kp_chat_msg ok[1] = {{"user", "hi"}};
    static const char want[] = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n";
    size_t n = sizeof want - 1, len = 0;
    char buf[128];
    memset(buf, 'x', sizeof buf);
    /* One byte short: the size needed, and nothing past cap touched. */
    assert_int_equal(kp_chat_format_template("chatml", ok, 1, 1, buf, n - 1, &len), KP_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(len, n);
    assert_int_equal(buf[n - 1], 'x');
    /* Exact size: no NUL written; one more: NUL-terminated. */
    assert_int_equal(kp_chat_format_template("chatml", ok, 1, 1, buf, n, &len), KP_OK);
    assert_int_equal(len, n);
    assert_memory_equal(buf, want, n);
    assert_int_equal(buf[n], 'x');
    assert_int_equal(kp_chat_format_template("chatml", ok, 1, 1, buf, sizeof buf, &len), KP_OK);
    assert_string_equal(buf, want);
}

static void test_model_without_template(void **state)
{
    (void)state;
    char bin[1024], tok[1024];
    if (!kp_test_file(bin, sizeof bin, "models/stories260K/stories260K.bin") ||
        !kp_test_file(tok, sizeof tok, "models/stories260K/tok512.bin"))
        return;
    kp_model_params p;
    kp_model_params_init(&p);
    p.tokenizer_path = tok;
    kp_model *m = NULL;
    assert_int_equal(kp_model_load(bin, &p, &m), KP_OK);
    kp_chat_msg ok[1] = {{"user", "hi"}};
    char buf[64];
    size_t len = 0;
    assert_int_equal(kp_chat_format(m, ok, 1, 1, buf, sizeof buf, &len), KP_ERR_NOT_FOUND);
    assert_non_null(strstr(kp_last_error(), "no chat template"));
    kp_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expected_json),     cmocka_unit_test(test_reference_llama3),
        cmocka_unit_test(test_reference_qwen2),   cmocka_unit_test(test_errors),
        cmocka_unit_test(test_buffer_protocol),   cmocka_unit_test(test_model_without_template),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
