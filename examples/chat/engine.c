/* Multi-turn chat with KV reuse. Every turn renders the whole conversation, because only the
 * template knows how earlier turns look once closed (an answer gains its end-of-turn text, some
 * templates change earlier turns when a new one arrives); the session's tokens are then compared
 * with the new ones and only the part after their longest common prefix is evaluated. The
 * answer's tokens are usually reused too, unless the tokenizer spells its text differently from
 * the way it was sampled, in which case the prefix simply ends earlier. */
#include "engine.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int lib_err(chat_engine *e, const char *what, kp_status st)
{
    snprintf(e->err, sizeof e->err, "%s: %s (%s)", what, kp_last_error(), kp_status_str(st));
    return -1;
}

void engine_init(chat_engine *e, kp_model *m, kp_session *s, kp_sampler *sampler, int32_t max_new)
{
    memset(e, 0, sizeof *e);
    e->model = m;
    e->session = s;
    e->sampler = sampler;
    e->max_new = max_new;
    const kp_tokenizer *t = kp_model_tokenizer_borrow(m);
    int32_t bos = kp_tokenizer_bos(t);
    if (bos < 0 || kp_token_to_piece(t, bos, e->bos, sizeof e->bos, &e->bos_len) != KP_OK)
        e->bos_len = 0;
}

void engine_free(chat_engine *e)
{
    free(e->text);
    free(e->ids);
    free(e->answer);
    memset(e, 0, sizeof *e);
}

long engine_render(chat_engine *e, chat_conv *c, int add_assistant)
{
    const kp_chat_msg *v = conv_view(c);
    if (!v && c->n) {
        snprintf(e->err, sizeof e->err, "out of memory");
        return -1;
    }
    for (;;) {
        size_t len = 0;
        kp_status st = e->template_name ? kp_chat_format_template(e->template_name, v, c->n, add_assistant, e->text,
                                                                  e->text_cap, &len)
                                        : kp_chat_format(e->model, v, c->n, add_assistant, e->text, e->text_cap, &len);
        if (st == KP_OK)
            return (long)len;
        if (st != KP_ERR_BUFFER_TOO_SMALL)
            return lib_err(e, "formatting the conversation", st);
        char *g = realloc(e->text, len + 1);
        if (!g) {
            snprintf(e->err, sizeof e->err, "out of memory");
            return -1;
        }
        e->text = g;
        e->text_cap = len + 1;
    }
}

long engine_tokenize(chat_engine *e, const char *text, size_t len)
{
    const kp_tokenizer *t = kp_model_tokenizer_borrow(e->model);
    uint32_t flags = KP_TOKENIZE_PARSE_SPECIAL;
    if (!e->bos_len || len < e->bos_len || memcmp(text, e->bos, e->bos_len) != 0)
        flags |= KP_TOKENIZE_ADD_SPECIAL;
    for (;;) {
        size_t n = 0;
        kp_status st = kp_tokenize(t, text, len, flags, e->ids, e->ids_cap, &n);
        if (st == KP_OK)
            return (long)n;
        if (st != KP_ERR_BUFFER_TOO_SMALL)
            return lib_err(e, "tokenizing the conversation", st);
        int32_t *g = realloc(e->ids, n * sizeof *g);
        if (!g) {
            snprintf(e->err, sizeof e->err, "out of memory");
            return -1;
        }
        e->ids = g;
        e->ids_cap = n;
    }
}

/* Renders and tokenizes `c`, dropping its oldest turns until the prompt leaves room for an
 * answer. Returns the token count or -1. */
static long fit(chat_engine *e, chat_conv *c)
{
    int32_t n_ctx = kp_session_n_ctx(e->session);
    /* Room for an answer: -n, but at most half the context; a quarter of it for unbounded answers. */
    int32_t reserve = e->max_new > 0 ? (e->max_new < n_ctx / 2 ? e->max_new : n_ctx / 2) : n_ctx / 4;
    if (reserve < 1)
        reserve = 1;
    for (;;) {
        long len = engine_render(e, c, 1);
        long n = len < 0 ? -1 : engine_tokenize(e, e->text, (size_t)len);
        if (n < 0)
            return -1;
        if (n == 0) {
            snprintf(e->err, sizeof e->err, "the conversation renders to no tokens");
            return -1;
        }
        if (n + reserve <= n_ctx)
            return n;
        size_t first = c->n && !strcmp(c->msgs[0].role, "system") ? 1 : 0;
        if (c->n - first <= 1) {
            if (n < n_ctx)
                return n; /* nothing left to drop: a short answer is still an answer */
            snprintf(e->err, sizeof e->err, "the message takes %ld tokens with the template; the context holds %d "
                     "(use -c to enlarge it)", n, n_ctx);
            return -1;
        }
        /* Drop the oldest message, then up to the next user message, so that the conversation
         * still starts with a question. */
        size_t k = 1;
        while (first + k < c->n - 1 && strcmp(c->msgs[first + k].role, "user") != 0)
            k++;
        conv_remove(c, first, k);
        e->last.n_dropped += k;
    }
}

/* The library evaluates a prompt in batches of this many positions (see kp_session_cancel), so
 * feeding a long prompt in pieces of this size, starting where a single call would, gives the
 * same batches and the same numbers as one call, with a chance to report progress between them. */
#define PROMPT_CHUNK 256

/* Evaluates the first `head` of `todo` prompt tokens starting at e->ids[keep] in PROMPT_CHUNK
 * pieces, reporting progress after each, and records them in the sampler's penalty window as
 * kp_generate would have. */
static kp_status eval_head(chat_engine *e, int32_t keep, size_t head, size_t todo)
{
    kp_status st = KP_OK;
    for (size_t done = 0; done < head && st == KP_OK;) {
        size_t k = head - done < PROMPT_CHUNK ? head - done : PROMPT_CHUNK;
        st = kp_session_eval(e->session, e->ids + keep + done, k, KP_EVAL_LOGITS_NONE);
        if (st == KP_OK) {
            done += k;
            e->on_progress(e->user, (int32_t)done, (int32_t)todo);
        }
    }
    for (size_t i = 0; st == KP_OK && e->sampler && i < head; i++)
        st = kp_sampler_accept(e->sampler, e->ids[keep + i]);
    return st;
}

typedef struct turn {
    chat_engine *e;
    double t_first;
    int oom;
} turn;

static int on_token(void *user, const kp_token_event *ev)
{
    turn *t = user;
    chat_engine *e = t->e;
    if (ev->is_prompt)
        return 0;
    if (t->t_first == 0)
        t->t_first = now();
    if (!ev->piece_len)
        return 0;
    if (e->answer_len + ev->piece_len + 1 > e->answer_cap) {
        size_t cap = (e->answer_cap ? e->answer_cap * 2 : 4096) + ev->piece_len;
        char *g = realloc(e->answer, cap);
        if (!g) {
            t->oom = 1;
            return 1;
        }
        e->answer = g;
        e->answer_cap = cap;
    }
    memcpy(e->answer + e->answer_len, ev->piece, ev->piece_len);
    e->answer_len += ev->piece_len;
    if (e->on_piece)
        e->on_piece(e->user, ev->piece, ev->piece_len);
    return 0;
}

int engine_answer(chat_engine *e, chat_conv *c, volatile sig_atomic_t *interrupted)
{
    memset(&e->last, 0, sizeof e->last);
    e->err[0] = '\0';
    long n = fit(e, c);
    if (n < 0) {
        conv_remove(c, c->n - 1, 1);
        return -1;
    }
    kp_status st = KP_OK;
    kp_generate_stats gs = {0};
    turn t = {e, 0, 0};
    double t0 = 0, head_seconds = 0;
    int32_t keep = 0;
    /* A Ctrl-C that came just as the previous answer ended may have left a cancel request that
     * nothing consumed; it stops this call at once, before any text: run it again then. */
    for (int attempt = 0; attempt < 2; attempt++) {
        const int32_t *held = kp_session_tokens_borrow(e->session);
        int32_t n_held = kp_session_n_past(e->session), lcp = 0;
        while (lcp < n_held && lcp < n && held[lcp] == e->ids[lcp])
            lcp++;
        /* At least the last prompt token is evaluated again: its logits start the answer. */
        keep = lcp < n ? lcp : (int32_t)n - 1;
        if ((st = kp_session_truncate(e->session, keep)))
            return lib_err(e, "truncating the session", st);
        kp_generate_params gp;
        kp_generate_params_init(&gp);
        gp.max_new_tokens = e->max_new;
        gp.sampler = e->sampler;
        gp.on_token = on_token;
        gp.user = &t;
        e->answer_len = 0;
        t.t_first = 0;
        t0 = now();
        /* A long prompt is evaluated here but for its last chunk, whose logits start the answer. */
        size_t todo = (size_t)n - (size_t)keep;
        size_t head = e->on_progress && todo > PROMPT_CHUNK ? (todo - 1) / PROMPT_CHUNK * PROMPT_CHUNK : 0;
        st = eval_head(e, keep, head, todo);
        head_seconds = now() - t0;
        if (st == KP_OK)
            st = kp_generate(e->session, e->ids + keep + head, todo - head, &gp, &gs);
        if (!(st == KP_ERR_CANCELLED && !*interrupted && e->answer_len == 0))
            break;
    }
    double t_end = now();
    chat_stats *ls = &e->last;
    ls->n_reused = keep;
    ls->n_prompt = (int32_t)n - keep;
    ls->n_generated = gs.n_generated;
    ls->reason = gs.reason;
    if (st == KP_OK) {
        ls->prompt_seconds = head_seconds + gs.prompt_seconds;
        ls->generate_seconds = gs.generate_seconds;
    } else {
        double tf = t.t_first ? t.t_first : t_end;
        ls->prompt_seconds = tf - t0;
        ls->generate_seconds = t_end - tf;
    }
    ls->cancelled = st == KP_ERR_CANCELLED;
    ls->context_full = st == KP_ERR_CONTEXT_FULL || gs.reason == KP_STOP_CONTEXT;
    if (t.oom) {
        snprintf(e->err, sizeof e->err, "out of memory");
        conv_remove(c, c->n - 1, 1);
        return -1;
    }
    if (st != KP_OK && !(ls->cancelled || ls->context_full)) {
        lib_err(e, "generating", st);
        conv_remove(c, c->n - 1, 1);
        return -1;
    }
    if (st != KP_OK && e->answer_len == 0) {
        /* Stopped before it said anything: the question is taken back. */
        if (ls->cancelled)
            snprintf(e->err, sizeof e->err, "cancelled");
        else
            lib_err(e, "generating", st);
        conv_remove(c, c->n - 1, 1);
        return -1;
    }
    if (conv_push(c, "assistant", e->answer ? e->answer : "", e->answer_len)) {
        snprintf(e->err, sizeof e->err, "out of memory");
        conv_remove(c, c->n - 1, 1);
        return -1;
    }
    return 0;
}
