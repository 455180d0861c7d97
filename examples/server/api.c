/* Requests in, replies out: every field the server reads is checked for type and range here,
 * so the scheduler only ever sees valid jobs. */
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

void ks_err_set(ks_err *e, int status, const char *type, const char *code, const char *param, const char *fmt, ...)
{
    e->status = status;
    e->type = type;
    e->code = code;
    e->param = param;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

static int bad(ks_err *e, const char *param, const char *fmt, ...)
{
    char m[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    ks_err_set(e, 400, "invalid_request_error", NULL, param, "%s", m);
    return -1;
}

/* An optional number in [lo, hi]; 1 if present. */
static int get_num(json_t *o, const char *k, double lo, double hi, double *out, ks_err *e)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return bad(e, k, "'%s' must be a number", k);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return bad(e, k, "'%s' is %g, outside [%g, %g]", k, d, lo, hi);
    *out = d;
    return 1;
}

/* An optional integer >= lo (larger than hi is clipped to hi); 1 if present. */
static int get_int(json_t *o, const char *k, long long lo, long long hi, long long *out, ks_err *e)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return bad(e, k, "'%s' must be an integer", k);
    long long x = json_integer_value(v);
    if (x < lo)
        return bad(e, k, "'%s' is %lld, below the minimum %lld", k, x, lo);
    *out = x > hi ? hi : x;
    return 1;
}

/* message content: a string, or an array of {"type":"text","text":...} parts, into buf */
static int content_text(json_t *c, ks_buf *b, ks_err *e)
{
    if (json_is_string(c))
        return ks_buf_add(b, json_string_value(c), json_string_length(c)) ? bad(e, "messages", "out of memory") : 0;
    if (!json_is_array(c))
        return bad(e, "messages", "a message's 'content' must be a string or an array of text parts");
    size_t i;
    json_t *part;
    json_array_foreach(c, i, part) {
        json_t *t = json_object_get(part, "text");
        if (!json_is_object(part) || !json_is_string(t))
            return bad(e, "messages", "content part %zu is not a text part", i);
        if (ks_buf_add(b, json_string_value(t), json_string_length(t)))
            return bad(e, "messages", "out of memory");
    }
    return 0;
}

static int tokenize(const ks_ctx *c, const char *text, size_t len, uint32_t flags, ks_job *j, ks_err *e)
{
    const kp_tokenizer *t = kp_model_tokenizer_borrow(c->m);
    size_t n = 0;
    kp_status st = kp_tokenize(t, text, len, flags, NULL, 0, &n);
    if (st && st != KP_ERR_BUFFER_TOO_SMALL)
        return bad(e, NULL, "cannot tokenize the prompt: %s", kp_last_error());
    if (n == 0)
        return bad(e, "prompt", "the prompt is empty");
    if (n >= (size_t)c->n_ctx) {
        ks_err_set(e, 400, "invalid_request_error", "context_length_exceeded", NULL,
                   "the prompt is %zu tokens; this server's context per slot is %d", n, c->n_ctx);
        return -1;
    }
    if (!(j->prompt = malloc(n * sizeof *j->prompt)))
        return bad(e, NULL, "out of memory");
    if (kp_tokenize(t, text, len, flags, j->prompt, n, &j->n_prompt))
        return bad(e, NULL, "cannot tokenize the prompt: %s", kp_last_error());
    return 0;
}

static int chat_prompt(const ks_ctx *c, json_t *req, ks_job *j, ks_err *e)
{
    json_t *msgs = json_object_get(req, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return bad(e, "messages", "'messages' must be a non-empty array");
    size_t n = json_array_size(msgs);
    kp_chat_msg *v = calloc(n, sizeof *v);
    ks_buf *texts = calloc(n, sizeof *texts);
    int rc = -1;
    if (!v || !texts) {
        bad(e, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i), *role = json_object_get(m, "role");
        if (!json_is_object(m) || !json_is_string(role)) {
            bad(e, "messages", "message %zu needs a string 'role'", i);
            goto out;
        }
        const char *r = json_string_value(role);
        if (!strcmp(r, "developer"))
            r = "system";
        if (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant")) {
            bad(e, "messages", "message %zu has role '%s'; this server takes system, user and assistant", i, r);
            goto out;
        }
        if (content_text(json_object_get(m, "content"), &texts[i], e))
            goto out;
        if (ks_buf_add(&texts[i], "", 0)) {
            bad(e, NULL, "out of memory");
            goto out;
        }
        if (memchr(texts[i].p, 0, texts[i].len)) {
            bad(e, "messages", "message %zu contains a NUL character", i);
            goto out;
        }
        v[i].role = r;
        v[i].content = texts[i].p;
    }
    size_t len = 0;
    kp_status st = kp_chat_format(c->m, v, n, 1, NULL, 0, &len);
    if (st == KP_ERR_NOT_FOUND || st == KP_ERR_UNSUPPORTED) {
        bad(e, "messages", "this model has no chat template it can render; use /v1/completions");
        goto out;
    }
    if (st && st != KP_ERR_BUFFER_TOO_SMALL) {
        bad(e, "messages", "%s", kp_last_error());
        goto out;
    }
    char *text = malloc(len + 1);
    if (!text) {
        bad(e, NULL, "out of memory");
        goto out;
    }
    if (kp_chat_format(c->m, v, n, 1, text, len + 1, &len)) {
        bad(e, "messages", "%s", kp_last_error());
        free(text);
        goto out;
    }
    /* the template writes the special tokens (and any BOS) as text */
    rc = tokenize(c, text, len, KP_TOKENIZE_PARSE_SPECIAL, j, e);
    free(text);
out:
    for (size_t i = 0; texts && i < n; i++)
        ks_buf_free(&texts[i]);
    free(texts);
    free(v);
    return rc;
}

static int completion_prompt(const ks_ctx *c, json_t *req, ks_job *j, ks_err *e)
{
    json_t *p = json_object_get(req, "prompt");
    if (json_is_array(p) && json_array_size(p) == 1)
        p = json_array_get(p, 0);
    if (!json_is_string(p))
        return bad(e, "prompt", "'prompt' must be a string (or an array of one string)");
    return tokenize(c, json_string_value(p), json_string_length(p), KP_TOKENIZE_ADD_SPECIAL, j, e);
}

static int stops(json_t *req, ks_job *j, ks_err *e)
{
    json_t *s = json_object_get(req, "stop");
    if (!s || json_is_null(s))
        return 0;
    json_t *one[1] = {s};
    size_t n = 1;
    if (json_is_array(s)) {
        n = json_array_size(s);
        if (n > KS_MAX_STOP)
            return bad(e, "stop", "at most %d stop strings", KS_MAX_STOP);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_is_array(s) ? json_array_get(s, i) : one[0];
        if (!json_is_string(v))
            return bad(e, "stop", "'stop' must be a string or an array of strings");
        if (json_string_length(v) == 0)
            continue;
        if (!(j->stop[j->n_stop] = strdup(json_string_value(v))))
            return bad(e, NULL, "out of memory");
        j->n_stop++;
    }
    return 0;
}

ks_job *ks_parse_request(const ks_ctx *c, int chat, const char *body, size_t len, ks_err *e)
{
    json_error_t je;
    json_t *req = json_loadb(body, len, JSON_ALLOW_NUL, &je); /* a prompt may hold NUL bytes */
    if (!req) {
        bad(e, NULL, "malformed JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        return NULL;
    }
    ks_job *j = ks_job_new();
    if (!j) {
        json_decref(req);
        bad(e, NULL, "out of memory");
        return NULL;
    }
    const ks_opts *o = c->o;
    j->chat = chat;
    j->temperature = o->temperature;
    j->top_p = o->top_p;
    j->seed = o->seed;
    long long mt = o->max_tokens, seed = -1, n = 1;
    json_t *v;
    if (!json_is_object(req)) {
        bad(e, NULL, "the request body must be a JSON object");
        goto fail;
    }
    if ((v = json_object_get(req, "model")) && !json_is_string(v) && !json_is_null(v)) {
        bad(e, "model", "'model' must be a string");
        goto fail;
    }
    if ((v = json_object_get(req, "stream")) && !json_is_boolean(v) && !json_is_null(v)) {
        bad(e, "stream", "'stream' must be a boolean");
        goto fail;
    }
    j->stream = json_is_true(v);
    if ((v = json_object_get(req, "ignore_eos")) && !json_is_boolean(v) && !json_is_null(v)) {
        bad(e, "ignore_eos", "'ignore_eos' must be a boolean");
        goto fail;
    }
    j->ignore_eos = json_is_true(v);
    if ((v = json_object_get(req, "stream_options")) && json_is_object(v))
        j->include_usage = json_is_true(json_object_get(v, "include_usage"));
    if (get_int(req, "max_tokens", 1, INT_MAX, &mt, e) < 0 ||
        get_int(req, "max_completion_tokens", 1, INT_MAX, &mt, e) < 0 ||
        get_num(req, "temperature", 0, 2, &j->temperature, e) < 0 || get_num(req, "top_p", 0, 1, &j->top_p, e) < 0 ||
        get_int(req, "n", 1, 1, &n, e) < 0 || stops(req, j, e))
        goto fail;
    if ((v = json_object_get(req, "n")) && json_is_integer(v) && json_integer_value(v) != 1) {
        bad(e, "n", "only n = 1 is supported");
        goto fail;
    }
    int has_seed = get_int(req, "seed", 0, 1LL << 53, &seed, e);
    if (has_seed < 0)
        goto fail;
    if (has_seed)
        j->seed = seed;
    if ((chat ? chat_prompt(c, req, j, e) : completion_prompt(c, req, j, e)))
        goto fail;
    long long room = c->n_ctx - (long long)j->n_prompt;
    j->max_tokens = (int)(mt > room ? room : mt);
    json_decref(req);
    return j;
fail:
    json_decref(req);
    ks_job_free(j);
    return NULL;
}

static char *dump(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

char *ks_error_json(const ks_err *e)
{
    return dump(json_pack("{s:{s:s, s:s, s:s?, s:s?}}", "error", "message", e->msg, "type",
                          e->type ? e->type : "invalid_request_error", "param", e->param, "code", e->code));
}

char *ks_models_json(const ks_ctx *c)
{
    return dump(json_pack("{s:s, s:[{s:s, s:s, s:I, s:s}]}", "object", "list", "data", "id", c->model_name,
                          "object", "model", "created", (json_int_t)0, "owned_by", "kuiper"));
}

char *ks_health_json(int busy, int idle, int queued, long long cancelled, long long served)
{
    return dump(json_pack("{s:s, s:i, s:i, s:i, s:I, s:I}", "status", "ok", "slots_busy", busy, "slots_idle", idle,
                          "queued", queued, "cancelled", (json_int_t)cancelled, "served", (json_int_t)served));
}

const char *ks_finish_name(ks_finish f)
{
    return f == KS_FIN_LENGTH ? "length" : "stop";
}

static json_t *usage(const ks_job *j)
{
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", (int)j->n_prompt, "completion_tokens", j->n_generated,
                     "total_tokens", (int)j->n_prompt + j->n_generated);
}

char *ks_reply_json(const ks_ctx *c, const ks_job *j)
{
    json_t *choice;
    if (j->chat)
        choice = json_pack("{s:i, s:{s:s, s:s%}, s:n, s:s}", "index", 0, "message", "role", "assistant", "content",
                           j->text.p ? j->text.p : "", j->text.len, "logprobs", "finish_reason",
                           ks_finish_name(j->finish));
    else
        choice = json_pack("{s:i, s:s%, s:n, s:s}", "index", 0, "text", j->text.p ? j->text.p : "", j->text.len,
                           "logprobs", "finish_reason", ks_finish_name(j->finish));
    return dump(json_pack("{s:s, s:s, s:I, s:s, s:[o], s:o}", "id", j->id, "object",
                          j->chat ? "chat.completion" : "text_completion", "created", (json_int_t)j->created, "model",
                          c->model_name, "choices", choice, "usage", usage(j)));
}

char *ks_chunk_event(const ks_ctx *c, const ks_job *j, const char *text, size_t len, int first, int finish_chunk,
                     int usage_chunk)
{
    json_t *choices;
    if (usage_chunk) {
        choices = json_array();
    } else if (j->chat) {
        json_t *delta = json_object();
        if (first)
            json_object_set_new(delta, "role", json_string("assistant"));
        if (!finish_chunk)
            json_object_set_new(delta, "content", json_stringn(text ? text : "", len));
        choices = json_pack("[{s:i, s:o, s:n, s:s?}]", "index", 0, "delta", delta, "logprobs", "finish_reason",
                            finish_chunk ? ks_finish_name(j->finish) : NULL);
    } else {
        choices = json_pack("[{s:i, s:s%, s:n, s:s?}]", "index", 0, "text", text ? text : "", len, "logprobs",
                            "finish_reason", finish_chunk ? ks_finish_name(j->finish) : NULL);
    }
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:o}", "id", j->id, "object",
                          j->chat ? "chat.completion.chunk" : "text_completion", "created", (json_int_t)j->created,
                          "model", c->model_name, "choices", choices);
    if (o && usage_chunk)
        json_object_set_new(o, "usage", usage(j));
    char *body = dump(o);
    if (!body)
        return NULL;
    size_t n = strlen(body);
    char *ev = malloc(n + 9);
    if (ev)
        snprintf(ev, n + 9, "data: %s\n\n", body);
    free(body);
    return ev;
}
