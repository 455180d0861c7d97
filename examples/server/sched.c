/* kuiper-server's scheduler: one thread owns every slot (a session and a sampler). Each step it
 * admits queued jobs into free slots, samples one token for every running slot, and evaluates
 * those tokens and the new jobs' prompts with one kp_batch_eval, so one pass over the weights
 * serves every stream and a new request does not stall the others for a pass of its own.
 * Connection threads only queue jobs and read their text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

typedef struct slot {
    kp_session *s;
    kp_sampler *smp;
    ks_job *job;       /* NULL: free */
    int32_t *ids;      /* [0]: the prompt's last id, then the generated ids */
    size_t n_ids;
    ks_buf raw, clean; /* scratch for the decoded text */
    int pending;       /* logits are waiting to be sampled */
    int fresh;         /* admitted, its prompt goes into the next batch */
} slot;

struct ks_sched {
    kp_model *m;
    const kp_tokenizer *tok;
    ks_opts o;
    slot *slots;
    pthread_mutex_t mu;
    pthread_cond_t work; /* new job or shutdown */
    ks_job *head, *tail;
    int n_queued, stop;
    long long n_cancelled; /* jobs whose client went away: /health reports it */
    long long n_served;    /* jobs that ended with a reply */
    pthread_t thread;
    int started;
    unsigned long long seq;
};

ks_job *ks_job_new(void)
{
    ks_job *j = calloc(1, sizeof *j);
    if (j && pthread_cond_init(&j->cv, NULL)) {
        free(j);
        return NULL;
    }
    return j;
}

void ks_job_free(ks_job *j)
{
    if (!j)
        return;
    free(j->prompt);
    for (size_t i = 0; i < j->n_stop; i++)
        free(j->stop[i]);
    ks_buf_free(&j->text);
    pthread_cond_destroy(&j->cv);
    free(j);
}

static void unref(ks_job *j)
{
    if (--j->refs == 0)
        ks_job_free(j);
}

void ks_sched_lock(ks_sched *s) { pthread_mutex_lock(&s->mu); }
void ks_sched_unlock(ks_sched *s) { pthread_mutex_unlock(&s->mu); }

void ks_sched_wait(ks_sched *s, ks_job *j, int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_nsec += (long)ms * 1000000L;
    t.tv_sec += t.tv_nsec / 1000000000L;
    t.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&j->cv, &s->mu, &t);
}

int ks_sched_submit(ks_sched *s, ks_job *j)
{
    pthread_mutex_lock(&s->mu);
    int busy = 0;
    for (int i = 0; i < s->o.parallel; i++)
        busy += s->slots[i].job != NULL;
    if (busy + s->n_queued >= s->o.parallel + s->o.queue) { /* `queue` counts waiting beyond free slots */
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    j->refs++;
    j->next = NULL;
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    s->n_queued++;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void ks_sched_release(ks_sched *s, ks_job *j)
{
    pthread_mutex_lock(&s->mu);
    if (j->finish == KS_RUNNING)
        j->cancel = 1;
    pthread_cond_signal(&s->work);
    unref(j);
    pthread_mutex_unlock(&s->mu);
}

void ks_sched_cancel_all(ks_sched *s)
{
    pthread_mutex_lock(&s->mu);
    for (ks_job *j = s->head; j; j = j->next)
        j->cancel = 1;
    for (int i = 0; i < s->o.parallel; i++)
        if (s->slots[i].job)
            s->slots[i].job->cancel = 1;
    pthread_cond_signal(&s->work);
    pthread_mutex_unlock(&s->mu);
}

void ks_sched_counts(ks_sched *s, int *busy, int *idle, int *queued, long long *cancelled, long long *served)
{
    pthread_mutex_lock(&s->mu);
    int b = 0;
    for (int i = 0; i < s->o.parallel; i++)
        b += s->slots[i].job != NULL;
    *busy = b;
    *idle = s->o.parallel - b;
    *queued = s->n_queued;
    *cancelled = s->n_cancelled;
    *served = s->n_served;
    pthread_mutex_unlock(&s->mu);
}

int32_t ks_sched_n_ctx(const ks_sched *s) { return s->o.n_ctx; }

/* Ends the slot's job (under the lock). */
static void finish(ks_sched *s, slot *sl, ks_finish why, const char *err)
{
    ks_job *j = sl->job;
    j->finish = why;
    s->n_cancelled += why == KS_FIN_CANCELLED;
    s->n_served += why == KS_FIN_STOP || why == KS_FIN_LENGTH;
    if (err)
        snprintf(j->error, sizeof j->error, "%s", err);
    pthread_cond_broadcast(&j->cv);
    unref(j);
    sl->job = NULL;
    sl->pending = sl->fresh = 0;
}

/* Readies a newly admitted job's slot; its prompt is evaluated with the next batch. The lock is
 * not held. Returns an error message or NULL. */
static const char *start(ks_sched *s, slot *sl, ks_job *j)
{
    kp_sampler_reset(sl->smp);
    long long seed = j->seed >= 0 ? j->seed : (long long)(time(NULL) ^ (long long)++s->seq * 7919);
    if (kp_sampler_set(sl->smp, KP_SAMPLER_TEMPERATURE, j->temperature) ||
        kp_sampler_set(sl->smp, KP_SAMPLER_TOP_P, j->top_p) ||
        kp_sampler_set(sl->smp, KP_SAMPLER_SEED, (double)(seed ? seed : 1)))
        return kp_last_error();
    /* A fresh cache for every request: replies never depend on what the slot served before. */
    kp_session_truncate(sl->s, 0);
    for (size_t i = 0; i < j->n_prompt; i++)
        kp_sampler_accept(sl->smp, j->prompt[i]);
    sl->ids[0] = j->prompt[j->n_prompt - 1];
    sl->n_ids = 1;
    sl->fresh = 1;
    return NULL;
}

/* Decoded text of the generated ids: the prompt's last id is decoded with them so that a
 * leading space is kept, then its own text is cut off. */
static int decode(ks_sched *s, slot *sl, int final)
{
    size_t need = 0, head = 0;
    char one[256];
    if (kp_detokenize(s->tok, sl->ids, 1, one, sizeof one, &head) && head > sizeof one)
        head = 0;
    kp_status st = kp_detokenize(s->tok, sl->ids, sl->n_ids, sl->raw.p, sl->raw.cap, &need);
    if (st == KP_ERR_BUFFER_TOO_SMALL) {
        if (ks_buf_reserve(&sl->raw, need))
            return -1;
        st = kp_detokenize(s->tok, sl->ids, sl->n_ids, sl->raw.p, sl->raw.cap, &need);
    }
    if (st)
        return -1;
    if (head > need || memcmp(sl->raw.p, one, head))
        head = 0;
    return ks_utf8_clean(sl->raw.p + head, need - head, final, &sl->clean);
}

/* Samples the slot's next token and publishes its text (under the lock). Returns 1 if the slot
 * goes on, with *next the id to feed. */
static int step(ks_sched *s, slot *sl, int32_t *next)
{
    ks_job *j = sl->job;
    if (j->cancel) {
        finish(s, sl, KS_FIN_CANCELLED, NULL);
        return 0;
    }
    int32_t V = kp_tokenizer_n_vocab(s->tok), id = -1;
    const float *l = kp_session_logits_borrow(sl->s, 0);
    if (!l || kp_sampler_sample(sl->smp, l, (size_t)V, &id)) {
        finish(s, sl, KS_FIN_ERROR, kp_last_error());
        return 0;
    }
    /* llama2.c models end a story with BOS; other models never mean anything else by it */
    int eog = !j->ignore_eos && (kp_tokenizer_is_eog(s->tok, id) || id == kp_tokenizer_bos(s->tok));
    if (!eog) {
        kp_sampler_accept(sl->smp, id);
        sl->ids[sl->n_ids++] = id;
        j->n_generated++;
    }
    int full = kp_session_n_past(sl->s) >= kp_session_n_ctx(sl->s);
    int length = j->n_generated >= j->max_tokens || full;
    int last = eog || length;
    if (decode(s, sl, last)) {
        finish(s, sl, KS_FIN_ERROR, "cannot decode the generated text");
        return 0;
    }
    size_t at, safe;
    int hit = ks_stop_scan(sl->clean.p, sl->clean.len, j->stop, j->n_stop, &at, &safe);
    size_t upto = hit >= 0 ? at : (last ? sl->clean.len : safe);
    if (upto > j->text.len && ks_buf_add(&j->text, sl->clean.p + j->text.len, upto - j->text.len)) {
        finish(s, sl, KS_FIN_ERROR, "out of memory");
        return 0;
    }
    if (hit >= 0 || eog) {
        finish(s, sl, KS_FIN_STOP, NULL);
        return 0;
    }
    if (length) {
        finish(s, sl, KS_FIN_LENGTH, NULL);
        return 0;
    }
    pthread_cond_broadcast(&j->cv);
    *next = id;
    return 1;
}

static void *run(void *arg)
{
    ks_sched *s = arg;
    const int P = s->o.parallel;
    kp_session **batch = calloc((size_t)P, sizeof *batch);
    slot **owner = calloc((size_t)P, sizeof *owner);
    int32_t *feed = calloc((size_t)P, sizeof *feed);
    const int32_t **toks = calloc((size_t)P, sizeof *toks);
    size_t *counts = calloc((size_t)P, sizeof *counts);
    if (!batch || !owner || !feed || !toks || !counts)
        abort(); /* a few pointers at start-up: nothing sensible to serve without them */
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        /* drop cancelled jobs from the queue, fill free slots from it */
        int admitted[64], n_adm = 0;
        for (int i = 0; i < P && s->head; i++) {
            if (s->slots[i].job)
                continue;
            ks_job *j = s->head;
            s->head = j->next;
            if (!s->head)
                s->tail = NULL;
            s->n_queued--;
            if (j->cancel) {
                j->finish = KS_FIN_CANCELLED;
                s->n_cancelled++;
                pthread_cond_broadcast(&j->cv);
                unref(j);
                i--;
                continue;
            }
            s->slots[i].job = j;
            if (n_adm < 64)
                admitted[n_adm++] = i;
        }
        int busy = 0;
        for (int i = 0; i < P; i++)
            busy += s->slots[i].job != NULL;
        if (!busy) {
            pthread_cond_wait(&s->work, &s->mu);
            continue;
        }
        /* outside the lock: the job's request fields are fixed once queued */
        for (int k = 0; k < n_adm; k++) {
            slot *sl = &s->slots[admitted[k]];
            ks_job *j = sl->job;
            pthread_mutex_unlock(&s->mu);
            const char *err = start(s, sl, j);
            char msg[160];
            if (err)
                snprintf(msg, sizeof msg, "%s", err);
            pthread_mutex_lock(&s->mu);
            if (err)
                finish(s, sl, KS_FIN_ERROR, msg);
        }
        int n = 0;
        for (int i = 0; i < P; i++) {
            slot *sl = &s->slots[i];
            if (sl->job && sl->pending && step(s, sl, &feed[n])) {
                toks[n] = &feed[n];
                counts[n] = 1;
                batch[n] = sl->s;
                owner[n++] = sl;
            }
        }
        for (int i = 0; i < P; i++) { /* new prompts ride along */
            slot *sl = &s->slots[i];
            if (sl->job && sl->fresh) {
                toks[n] = sl->job->prompt;
                counts[n] = sl->job->n_prompt;
                batch[n] = sl->s;
                owner[n++] = sl;
            }
        }
        if (!n)
            continue;
        pthread_mutex_unlock(&s->mu);
        kp_status st = kp_batch_eval(batch, toks, counts, (size_t)n, KP_EVAL_LOGITS_LAST);
        char msg[160];
        if (st)
            snprintf(msg, sizeof msg, "%s", kp_last_error());
        pthread_mutex_lock(&s->mu);
        for (int k = 0; k < n; k++) {
            slot *sl = owner[k];
            if (!sl->job)
                continue;
            if (st) {
                finish(s, sl, KS_FIN_ERROR, msg);
            } else {
                sl->fresh = 0;
                sl->pending = 1;
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    free(batch);
    free(owner);
    free(feed);
    free(toks);
    free(counts);
    return NULL;
}

int ks_sched_new(kp_model *m, const ks_opts *o, ks_sched **out)
{
    *out = NULL;
    ks_sched *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->m = m;
    s->tok = kp_model_tokenizer_borrow(m);
    s->o = *o;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    s->slots = calloc((size_t)o->parallel, sizeof *s->slots);
    if (!s->slots)
        goto fail;
    kp_session_params sp;
    kp_session_params_init(&sp);
    sp.n_ctx = o->n_ctx;
    sp.kv_type = o->kv_type;
    for (int i = 0; i < o->parallel; i++) {
        slot *sl = &s->slots[i];
        if (kp_session_new(m, &sp, &sl->s) || kp_sampler_new(NULL, &sl->smp) ||
            !(sl->ids = calloc((size_t)kp_session_n_ctx(sl->s) + 1, sizeof *sl->ids)) ||
            ks_buf_add(&sl->raw, "", 0) || ks_buf_add(&sl->clean, "", 0))
            goto fail;
    }
    s->o.n_ctx = kp_session_n_ctx(s->slots[0].s);
    if (pthread_create(&s->thread, NULL, run, s))
        goto fail;
    s->started = 1;
    *out = s;
    return 0;
fail:
    ks_sched_free(s);
    return -1;
}

void ks_sched_free(ks_sched *s)
{
    if (!s)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_signal(&s->work);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    for (int i = 0; s->slots && i < s->o.parallel; i++) {
        slot *sl = &s->slots[i];
        if (sl->job)
            finish(s, sl, KS_FIN_CANCELLED, NULL);
        kp_session_free(sl->s);
        kp_sampler_free(sl->smp);
        free(sl->ids);
        ks_buf_free(&sl->raw);
        ks_buf_free(&sl->clean);
    }
    while (s->head) {
        ks_job *j = s->head;
        s->head = j->next;
        j->finish = KS_FIN_CANCELLED;
        pthread_cond_broadcast(&j->cv);
        unref(j);
    }
    free(s->slots);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
