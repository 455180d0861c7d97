/* Chat templates: renders a conversation the way a model's Jinja chat template does under
 * Hugging Face's apply_chat_template, without a Jinja interpreter. We recognise the template's
 * family by its markers and reproduce that family's rules; the few per-model differences inside
 * a family (a default system prompt, Qwen3's <think> blocks, Llama 3.1's date header, a base
 * template that always opens the assistant turn) are read from the template text itself.
 *
 * Output goes straight into the caller's buffer while counting the full size, so a too-small
 * buffer costs one pass and no allocation. */
#include <string.h>

#include "internal.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

typedef enum chat_family { FAM_LLAMA3, FAM_CHATML, FAM_LLAMA2 } chat_family;

typedef struct chat_style {
    chat_family fam;
    int gen_always;      /* template opens the assistant turn whatever add_generation_prompt is */
    int llama31_header;  /* Llama 3.1 Instruct: a system block with knowledge/today dates, always */
    int qwen3_think;     /* Qwen3: reasoning split out of assistant turns after the last query */
    const char *def_sys; /* ChatML default system prompt, as Jinja string-literal source text */
    size_t def_sys_len;
    const char *date;    /* Llama 3.1 default date_string literal */
    size_t date_len;
} chat_style;

typedef struct out_buf {
    char *buf;
    size_t cap, len;
} out_buf;

static void put(out_buf *o, const char *s, size_t n)
{
    if (o->len < o->cap && n)
        memcpy(o->buf + o->len, s, o->len + n <= o->cap ? n : o->cap - o->len);
    o->len += n;
}

static void puts_(out_buf *o, const char *s) { put(o, s, strlen(s)); }

/* Writes a Jinja string-literal body with its escapes resolved (\n, \t, \', \", \\): the default
 * prompts sit in the template as literals and are either raw newlines or escaped ones. */
static void put_unescaped(out_buf *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            char c = s[++i];
            char r = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
            put(o, &r, 1);
        } else {
            put(o, s + i, 1);
        }
    }
}

/* Length of the whitespace code point at s[0..n) in Python's str.isspace sense (what Jinja's
 * trim and str.strip() remove), or 0. */
static size_t ws_at(const unsigned char *s, size_t n)
{
    if (s[0] == ' ' || (s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x1f))
        return 1;
    if (n >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0))
        return 2;
    if (n >= 3 && s[0] == 0xe1 && s[1] == 0x9a && s[2] == 0x80) /* U+1680 */
        return 3;
    if (n >= 3 && s[0] == 0xe2 && s[1] == 0x80 &&
        (s[2] <= 0x8a || s[2] == 0xa8 || s[2] == 0xa9 || s[2] == 0xaf)) /* U+2000-200A, 2028/9, 202F */
        return 3;
    if (n >= 3 && s[0] == 0xe2 && s[1] == 0x81 && s[2] == 0x9f) /* U+205F */
        return 3;
    if (n >= 3 && s[0] == 0xe3 && s[1] == 0x80 && s[2] == 0x80) /* U+3000 */
        return 3;
    return 0;
}

/* Length of the whitespace code point ending at s[n-1], or 0. */
static size_t ws_before(const unsigned char *s, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        if ((s[n - k] & 0xc0) == 0x80) /* not the first byte of a code point */
            continue;
        return ws_at(s + n - k, k) == k ? k : 0;
    }
    return 0;
}

/* A string assembled from pieces, so that strip() applies to the concatenation as in Jinja
 * (Llama 2 strips the system block and the user text together). */
typedef struct seg {
    const char *p;
    size_t n;
} seg;

static void put_stripped(out_buf *o, seg *sg, size_t ns, int left, int right)
{
    size_t a = 0, b = ns; /* strip whole empty/whitespace pieces, then within the edge piece */
    if (left)
        for (; a < ns; a++) {
            size_t k;
            while (sg[a].n && (k = ws_at((const unsigned char *)sg[a].p, sg[a].n)) != 0) {
                sg[a].p += k;
                sg[a].n -= k;
            }
            if (sg[a].n)
                break;
        }
    if (right)
        for (; b > a; b--) {
            size_t k;
            while (sg[b - 1].n && (k = ws_before((const unsigned char *)sg[b - 1].p, sg[b - 1].n)) != 0)
                sg[b - 1].n -= k;
            if (sg[b - 1].n)
                break;
        }
    for (size_t i = a; i < b; i++)
        put(o, sg[i].p, sg[i].n);
}

static void put_trim(out_buf *o, const char *s)
{
    seg g = {s, strlen(s)};
    put_stripped(o, &g, 1, 1, 1);
}

static int is_role(const char *r, const char *name) { return strcmp(r, name) == 0; }

/* ---------------------------------------------------------------- families */

static void render_llama3(const chat_style *st, const kp_chat_msg *m, size_t n, int add_asst, out_buf *o)
{
    static const char *bos = "<|begin_of_text|>";
    size_t i = 0;
    puts_(o, bos);
    if (st->llama31_header) {
        /* The 3.1 Instruct template always opens with a system block; a leading system message
         * supplies its text. date_string keeps the template's own default (never the clock). */
        puts_(o, "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: ");
        put(o, st->date, st->date_len);
        puts_(o, "\n\n");
        if (is_role(m[0].role, "system")) {
            put_trim(o, m[0].content);
            i = 1;
        }
        puts_(o, "<|eot_id|>");
    }
    for (; i < n; i++) {
        puts_(o, "<|start_header_id|>");
        puts_(o, m[i].role);
        puts_(o, "<|end_header_id|>\n\n");
        put_trim(o, m[i].content);
        puts_(o, "<|eot_id|>");
    }
    if (add_asst || st->gen_always)
        puts_(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int ends_with(const char *s, const char *p)
{
    size_t a = strlen(s), b = strlen(p);
    return a >= b && memcmp(s + a - b, p, b) == 0;
}

/* First occurrence of `pat` in s[0..n), or NULL. */
static const char *find_n(const char *s, size_t n, const char *pat)
{
    size_t k = strlen(pat);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, pat, k) == 0)
            return s + i;
    return NULL;
}

/* Last occurrence of `pat` in s[0..n), or NULL. */
static const char *rfind_n(const char *s, size_t n, const char *pat)
{
    size_t k = strlen(pat);
    for (size_t i = n; i >= k; i--)
        if (memcmp(s + i - k, pat, k) == 0)
            return s + i - k;
    return NULL;
}

/* Qwen3 assistant turn: mirrors the template's split of "<think>...</think>" reasoning. */
static void render_qwen3_assistant(const char *c, int think_block, out_buf *o)
{
    size_t n = strlen(c);
    const char *content = c, *reason = "";
    size_t content_n = n, reason_n = 0;
    const char *close = find_n(c, n, "</think>");
    if (close) {
        const char *last = rfind_n(c, n, "</think>") + 8; /* split('</think>')[-1].lstrip('\n') */
        content = last;
        content_n = (size_t)(c + n - last);
        while (content_n && *content == '\n') {
            content++;
            content_n--;
        }
        size_t before = (size_t)(close - c); /* split('</think>')[0].rstrip('\n') */
        while (before && c[before - 1] == '\n')
            before--;
        const char *open = rfind_n(c, before, "<think>"); /* .split('<think>')[-1] */
        reason = open ? open + 7 : c;
        reason_n = (size_t)(c + before - reason);
        while (reason_n && *reason == '\n') {
            reason++;
            reason_n--;
        }
    }
    puts_(o, "<|im_start|>assistant\n");
    if (think_block == 2 || (think_block == 1 && reason_n)) {
        while (reason_n && reason[reason_n - 1] == '\n')
            reason_n--;
        puts_(o, "<think>\n");
        put(o, reason, reason_n);
        puts_(o, "\n</think>\n\n");
        while (content_n && *content == '\n') {
            content++;
            content_n--;
        }
    }
    put(o, content, content_n);
}

static void render_chatml(const chat_style *st, const kp_chat_msg *m, size_t n, int add_asst, out_buf *o)
{
    if (st->def_sys && !is_role(m[0].role, "system")) {
        puts_(o, "<|im_start|>system\n");
        put_unescaped(o, st->def_sys, st->def_sys_len);
        puts_(o, "<|im_end|>\n");
    }
    /* Qwen3: the last user turn that is not a wrapped tool response; assistant turns after it
     * get the <think> treatment. Without one, no turn qualifies. */
    size_t last_query = n - 1;
    for (size_t k = n; k-- > 0;)
        if (is_role(m[k].role, "user") &&
            !(starts_with(m[k].content, "<tool_response>") && ends_with(m[k].content, "</tool_response>"))) {
            last_query = k;
            break;
        }
    for (size_t i = 0; i < n; i++) {
        if (st->qwen3_think && is_role(m[i].role, "assistant")) {
            int mode = i > last_query ? (i == n - 1 ? 2 : 1) : 0;
            render_qwen3_assistant(m[i].content, mode, o);
            puts_(o, "<|im_end|>\n");
            continue;
        }
        puts_(o, "<|im_start|>");
        puts_(o, m[i].role);
        puts_(o, "\n");
        puts_(o, m[i].content);
        puts_(o, "<|im_end|>\n");
    }
    if (add_asst)
        puts_(o, "<|im_start|>assistant\n");
}

static kp_status render_llama2(const kp_chat_msg *m, size_t n, out_buf *o)
{
    const char *sys = NULL;
    size_t i = 0;
    if (is_role(m[0].role, "system"))
        sys = m[i++].content;
    for (size_t k = 0; i < n; i++, k++) {
        int user = is_role(m[i].role, "user");
        if (user != (k % 2 == 0))
            return kp_fail(KP_ERR_INVALID_ARG,
                           "chat: llama2 template needs user/assistant turns alternating, starting with user "
                           "(message %zu is '%s')", i, m[i].role);
        if (user) {
            seg g[4];
            size_t ng = 0;
            if (k == 0 && sys) {
                g[ng++] = (seg){"<<SYS>>\n", 8};
                g[ng++] = (seg){sys, strlen(sys)};
                g[ng++] = (seg){"\n<</SYS>>\n\n", 11};
            }
            g[ng++] = (seg){m[i].content, strlen(m[i].content)};
            puts_(o, "<s>[INST] ");
            put_stripped(o, g, ng, 1, 1);
            puts_(o, " [/INST]");
        } else {
            puts_(o, " ");
            put_trim(o, m[i].content);
            puts_(o, " </s>");
        }
    }
    return KP_OK;
}

/* ---------------------------------------------------------------- detection */

/* The ChatML default system prompt: a string literal holding "<|im_start|>system" + newline +
 * text + "<|im_end|>" with no quote in between (Qwen2.5, SmolLM2). Qwen3's template only has
 * "<|im_start|>system\n' + ..." concatenations, so it has none. */
static void find_default_system(const char *t, chat_style *st)
{
    static const char mark[] = "<|im_start|>system";
    for (const char *p = strstr(t, mark); p; p = strstr(p + 1, mark)) {
        const char *q = p + sizeof mark - 1;
        if (*q == '\n')
            q += 1;
        else if (q[0] == '\\' && q[1] == 'n')
            q += 2;
        else
            continue;
        const char *end = strstr(q, "<|im_end|>");
        if (!end)
            return;
        size_t k = 0;
        while (q + k < end && q[k] != '\'' && q[k] != '"')
            k++;
        if (q + k == end && k > 0) {
            st->def_sys = q;
            st->def_sys_len = k;
            return;
        }
    }
}

/* Llama 3.1's default date_string literal: `set date_string = "26 Jul 2024"`. */
static void find_date(const char *t, chat_style *st)
{
    const char *p = strstr(t, "date_string = \"");
    if (!p)
        return;
    p += 15;
    const char *e = strchr(p, '"');
    if (e && e - p < 64) {
        st->date = p;
        st->date_len = (size_t)(e - p);
    }
}

static kp_status detect(const char *t, chat_style *st)
{
    memset(st, 0, sizeof *st);
    st->date = "26 Jul 2024";
    st->date_len = 11;
    if (!strcmp(t, "llama3"))
        st->fam = FAM_LLAMA3;
    else if (!strcmp(t, "chatml"))
        st->fam = FAM_CHATML;
    else if (!strcmp(t, "llama2"))
        st->fam = FAM_LLAMA2;
    else if (strstr(t, "<|start_header_id|>")) {
        st->fam = FAM_LLAMA3;
        st->gen_always = !strstr(t, "add_generation_prompt");
        st->llama31_header = strstr(t, "Cutting Knowledge Date") != NULL;
        if (st->llama31_header)
            find_date(t, st);
    } else if (strstr(t, "<|im_start|>")) {
        st->fam = FAM_CHATML;
        st->qwen3_think = strstr(t, "</think>") != NULL;
        find_default_system(t, st);
    } else if (strstr(t, "[INST]")) {
        st->fam = FAM_LLAMA2;
    } else {
        return kp_fail(KP_ERR_UNSUPPORTED,
                       "chat: template not recognised (no Llama 3, ChatML or Llama 2 markers; %zu bytes "
                       "beginning \"%.40s\"); force a family with \"llama3\", \"chatml\" or \"llama2\"",
                       strlen(t), t);
    }
    return KP_OK;
}

/* ---------------------------------------------------------------- public */

kp_status kp_chat_format_template(const char *tmpl, const kp_chat_msg *msgs, size_t n, int add_assistant,
                                  char *buf, size_t cap, size_t *len)
{
    kp_clear_error();
    if (len)
        *len = 0;
    if (!tmpl || !len || (!buf && cap))
        return kp_fail(KP_ERR_INVALID_ARG, "kp_chat_format_template: NULL argument");
    if (!msgs || n == 0)
        return kp_fail(KP_ERR_INVALID_ARG, "chat: the message list is empty");
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role || !msgs[i].content)
            return kp_fail(KP_ERR_INVALID_ARG, "chat: message %zu has a NULL role or content", i);
        if (!is_role(msgs[i].role, "system") && !is_role(msgs[i].role, "user") &&
            !is_role(msgs[i].role, "assistant"))
            return kp_fail(KP_ERR_INVALID_ARG,
                           "chat: message %zu has role '%.32s'; supported roles are system, user, assistant", i,
                           msgs[i].role);
    }
    chat_style st;
    kp_status s = detect(tmpl, &st);
    if (s)
        return s;
    out_buf o = {buf, cap, 0};
    switch (st.fam) {
    case FAM_LLAMA3: render_llama3(&st, msgs, n, add_assistant, &o); break;
    case FAM_CHATML: render_chatml(&st, msgs, n, add_assistant, &o); break;
    case FAM_LLAMA2:
        if ((s = render_llama2(msgs, n, &o)) != KP_OK)
            return s;
        break;
    }
    *len = o.len;
    if (o.len > cap)
        return kp_fail(KP_ERR_BUFFER_TOO_SMALL, "chat: the prompt needs %zu bytes, the buffer holds %zu", o.len,
                       cap);
    if (o.len < cap)
        buf[o.len] = '\0';
    return KP_OK;
}

kp_status kp_chat_format(const kp_model *m, const kp_chat_msg *msgs, size_t n, int add_assistant, char *buf,
                         size_t cap, size_t *len)
{
    kp_clear_error();
    if (len)
        *len = 0;
    if (!m)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_chat_format: NULL model");
    /* One home for the template: the tokenizer, which GGUF vocabularies, tokenizer_config.json
     * and chat_template.jinja all fill. */
    const char *tmpl = m->tok ? m->tok->chat_template : NULL;
    if (!tmpl)
        return kp_fail(KP_ERR_NOT_FOUND,
                       "chat: the model has no chat template; use kp_chat_format_template with a family name");
    return kp_chat_format_template(tmpl, msgs, n, add_assistant, buf, cap, len);
}
