/* PCRE2 behind the kp_allocator, plus the Oniguruma-to-PCRE2 class translation. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.h"

#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#include "unicode.h"

struct kp_regex {
    const kp_allocator *a;
    pcre2_general_context *gctx;
    pcre2_code *code;
};

/* PCRE2's free hook gets no size, so each block carries its own in a 16-byte header. */
static void *re_malloc(PCRE2_SIZE n, void *user)
{
    const kp_allocator *a = user;
    size_t *p = kp_alloc(a, n + 16);
    if (!p)
        return NULL;
    p[0] = n + 16;
    return (char *)p + 16;
}

static void re_free(void *ptr, void *user)
{
    if (!ptr)
        return;
    const kp_allocator *a = user;
    size_t *p = (size_t *)(void *)((char *)ptr - 16);
    kp_dealloc(a, p, p[0]);
}

/* White_Space, and its complement, as class bodies usable inside [...]. */
static const char ws_body[] =
    "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";
static const char nws_body[] = "\\x{0}-\\x{8}\\x{E}-\\x{1F}\\x{21}-\\x{84}\\x{86}-\\x{9F}\\x{A1}-\\x{167F}"
                               "\\x{1681}-\\x{1FFF}\\x{200B}-\\x{2027}\\x{202A}-\\x{202E}\\x{2030}-\\x{205E}"
                               "\\x{2060}-\\x{2FFF}\\x{3001}-\\x{10FFFF}";

static kp_status put(kp_buf *b, const char *s) { return kp_buf_append(b, s, strlen(s)); }

static kp_status put_extra(kp_buf *b, unsigned cls)
{
    char tmp[48];
    for (size_t i = 0; i < kp_uc_n_extra; i++) {
        if (kp_uc_extra[i].cls != cls)
            continue;
        snprintf(tmp, sizeof tmp, "\\x{%X}-\\x{%X}", (unsigned)kp_uc_extra[i].lo, (unsigned)kp_uc_extra[i].hi);
        kp_status st = put(b, tmp);
        if (st)
            return st;
    }
    return KP_OK;
}

/* Emits the translation of \p{L}/\p{N}/\P{L}/\P{N}. */
static kp_status put_prop(kp_buf *b, int neg, unsigned cls, int in_class)
{
    const char *name = cls == KP_UC_L ? "\\p{L}" : "\\p{N}";
    kp_status st;
    if (in_class) {
        if ((st = put(b, name)))
            return st;
        return put_extra(b, cls);
    }
    if ((st = put(b, neg ? "[^" : "[")) || (st = put(b, name)) || (st = put_extra(b, cls)))
        return st;
    return put(b, "]");
}

static kp_status translate(const char *p, size_t n, kp_buf *b)
{
    int in_class = 0;
    kp_status st = KP_OK;
    size_t i = 0;
    while (i < n && !st) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char d = p[i + 1];
            if (d == 'p' || d == 'P') {
                /* \pL or \p{Name} */
                size_t j = i + 2, ns = j, ne = j;
                if (j < n && p[j] == '{') {
                    ns = j + 1;
                    ne = ns;
                    while (ne < n && p[ne] != '}')
                        ne++;
                    j = ne < n ? ne + 1 : ne;
                } else if (j < n) {
                    ns = j;
                    ne = j + 1;
                    j = ne;
                }
                unsigned cls = 0;
                size_t nl = ne - ns;
                if ((nl == 1 && p[ns] == 'L') || (nl == 6 && memcmp(p + ns, "Letter", 6) == 0))
                    cls = KP_UC_L;
                else if ((nl == 1 && p[ns] == 'N') || (nl == 6 && memcmp(p + ns, "Number", 6) == 0))
                    cls = KP_UC_N;
                if (cls && !(d == 'P' && in_class))
                    st = put_prop(b, d == 'P', cls, in_class);
                else
                    st = kp_buf_append(b, p + i, j - i);
                i = j;
                continue;
            }
            if (d == 's' || d == 'S') {
                const char *body = d == 's' ? ws_body : nws_body;
                if (in_class)
                    st = put(b, body);
                else if (!(st = put(b, "[")) && !(st = put(b, body)))
                    st = put(b, "]");
                i += 2;
                continue;
            }
            if (d == 'h' || (d == 'H' && !in_class)) {
                st = put(b, in_class ? "0-9a-fA-F" : d == 'h' ? "[0-9a-fA-F]" : "[^0-9a-fA-F]");
                i += 2;
                continue;
            }
            st = kp_buf_append(b, p + i, 2);
            i += 2;
            continue;
        }
        if (c == '[' && !in_class) {
            in_class = 1;
            size_t j = i + 1;
            if (j < n && p[j] == '^')
                j++;
            if (j < n && p[j] == ']') /* a leading ']' is a literal */
                j++;
            st = kp_buf_append(b, p + i, j - i);
            i = j;
            continue;
        }
        if (c == '[' && in_class && i + 1 < n && p[i + 1] == ':') {
            /* POSIX class [:name:] */
            size_t j = i + 2;
            while (j + 1 < n && !(p[j] == ':' && p[j + 1] == ']'))
                j++;
            j = j + 1 < n ? j + 2 : n;
            st = kp_buf_append(b, p + i, j - i);
            i = j;
            continue;
        }
        if (c == ']' && in_class)
            in_class = 0;
        st = kp_buf_append(b, p + i, 1);
        i++;
    }
    return st;
}

void kp_regex_free(kp_regex *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    pcre2_general_context_free(re->gctx);
    kp_dealloc(re->a, re, sizeof *re);
}

kp_status kp_regex_compile(const kp_allocator *a, const char *pat, size_t len, kp_regex **out)
{
    *out = NULL;
    a = kp_allocator_or_default(a);
    kp_regex *re = kp_calloc(a, 1, sizeof *re);
    if (!re)
        return KP_ERR_OUT_OF_MEMORY;
    re->a = a;
    re->gctx = pcre2_general_context_create(re_malloc, re_free, (void *)a);
    if (!re->gctx) {
        kp_regex_free(re);
        return kp_fail(KP_ERR_OUT_OF_MEMORY, "out of memory creating a regex context");
    }
    kp_buf tr;
    kp_buf_init(&tr, a);
    kp_status st = translate(pat, len, &tr);
    if (!st && !tr.data)
        st = kp_buf_append(&tr, "", 0);
    if (st) {
        kp_buf_free(&tr);
        kp_regex_free(re);
        return st;
    }
    pcre2_compile_context *cctx = pcre2_compile_context_create(re->gctx);
    if (!cctx) {
        kp_buf_free(&tr);
        kp_regex_free(re);
        return kp_fail(KP_ERR_OUT_OF_MEMORY, "out of memory creating a regex context");
    }
    int err = 0;
    PCRE2_SIZE eoff = 0;
    re->code = pcre2_compile((PCRE2_SPTR)tr.data, tr.len, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err,
                             &eoff, cctx);
    pcre2_compile_context_free(cctx);
    kp_buf_free(&tr);
    if (!re->code) {
        kp_regex_free(re);
        if (err == 121) /* compile error 21: "failed to get memory" */
            return kp_fail(KP_ERR_OUT_OF_MEMORY, "out of memory compiling a regex");
        re = NULL;
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        /* the offset is in the translated pattern; quote the original for the reader */
        return kp_fail(KP_ERR_FORMAT, "regex /%.*s/ does not compile: %s", (int)(len > 120 ? 120 : len), pat,
                       (const char *)msg);
    }
    /* JIT is an optimisation: if the platform refuses it, the interpreter gives the same results */
    (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
    *out = re;
    return KP_OK;
}

kp_status kp_span_grow(kp_span_vec *v)
{
    size_t nc = v->cap ? v->cap * 2 : 64;
    kp_span *d = kp_realloc(v->alloc, v->data, v->cap * sizeof *d, nc * sizeof *d);
    if (!d)
        return KP_ERR_OUT_OF_MEMORY;
    v->data = d;
    v->cap = nc;
    return KP_OK;
}

void kp_span_vec_free(kp_span_vec *v)
{
    kp_dealloc(v->alloc, v->data, v->cap * sizeof *v->data);
    v->data = NULL;
    v->len = v->cap = 0;
}

kp_status kp_regex_find_all(const kp_regex *re, const char *s, size_t n, kp_span_vec *out)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re->code, re->gctx);
    if (!md)
        return kp_fail(KP_ERR_OUT_OF_MEMORY, "out of memory for regex match data");
    pcre2_match_context *mctx = NULL;
    pcre2_jit_stack *js = NULL;
    kp_status st = KP_OK;
    size_t off = 0;
    while (off <= n) {
        int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, off, 0, md, mctx);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !js) {
            /* long runs of backtracking need more than the default 32 KiB machine stack */
            mctx = pcre2_match_context_create(re->gctx);
            js = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, re->gctx);
            if (!mctx || !js) {
                st = kp_fail(KP_ERR_OUT_OF_MEMORY, "out of memory for the regex JIT stack");
                break;
            }
            pcre2_jit_stack_assign(mctx, NULL, js);
            continue;
        }
        if (rc == PCRE2_ERROR_NOMEMORY) {
            st = kp_fail(KP_ERR_OUT_OF_MEMORY, "out of memory matching a regex");
            break;
        }
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            st = kp_fail(KP_ERR_UNSUPPORTED, "regex match failed at byte %zu: %s", off, (const char *)msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) {
            if (ms >= n)
                break;
            size_t l = 1;
            kp_utf8_decode((const unsigned char *)s + ms, n - ms, &l);
            off = ms + l;
            continue;
        }
        if ((st = kp_span_push(out, ms, me)))
            break;
        off = me;
    }
    pcre2_jit_stack_free(js);
    pcre2_match_context_free(mctx);
    pcre2_match_data_free(md);
    return st;
}
