/* kuiper-server's shared types: a job is one HTTP request's generation, handed from the
 * connection thread that parsed it to the scheduler thread that runs it in a slot. */
#ifndef KS_SERVER_H
#define KS_SERVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <kuiper/kuiper.h>

#define KS_MAX_STOP 4

typedef struct ks_opts {
    const char *model_path, *tokenizer, *host, *api_key, *alias;
    int port, parallel, n_ctx, threads, queue;
    size_t max_body;
    double temperature, top_p;
    long long seed; /* -1: from the clock */
    int max_tokens; /* default when a request gives none */
    kp_kv_type kv_type;
} ks_opts;

typedef struct ks_buf {
    char *p;
    size_t len, cap;
} ks_buf;

int ks_buf_add(ks_buf *b, const char *s, size_t n);
/* Room for n bytes and a NUL. */
int ks_buf_reserve(ks_buf *b, size_t n);
void ks_buf_free(ks_buf *b);

typedef enum ks_finish { KS_RUNNING = 0, KS_FIN_STOP, KS_FIN_LENGTH, KS_FIN_CANCELLED, KS_FIN_ERROR } ks_finish;

typedef struct ks_job {
    /* the request, fixed once queued */
    int chat, stream, include_usage;
    int ignore_eos;       /* llama.cpp's extension: run to max_tokens (benchmarks, tests) */
    int32_t *prompt;
    size_t n_prompt;
    int max_tokens;
    double temperature, top_p;
    long long seed;
    char *stop[KS_MAX_STOP];
    size_t n_stop;
    char id[40];
    long long created;
    /* progress, under the scheduler's lock */
    ks_buf text;          /* final text so far (never taken back) */
    int n_generated;
    ks_finish finish;
    char error[160];
    int cancel;           /* the client went away */
    int refs;             /* the connection and the scheduler */
    pthread_cond_t cv;    /* signalled on new text and at the end */
    struct ks_job *next;  /* queue link */
} ks_job;

typedef struct ks_sched ks_sched;

/* Starts the scheduler thread with opts->parallel slots of opts->n_ctx positions. */
int ks_sched_new(kp_model *m, const ks_opts *o, ks_sched **out);
void ks_sched_free(ks_sched *s);
/* Queues a job (taking one reference for the scheduler): 0, or -1 when the queue is full. */
int ks_sched_submit(ks_sched *s, ks_job *j);
/* Waits up to `ms` for the job to change; returns with the lock held as on entry. */
void ks_sched_lock(ks_sched *s);
void ks_sched_unlock(ks_sched *s);
void ks_sched_wait(ks_sched *s, ks_job *j, int ms);
/* Marks the job cancelled (its slot is freed at the next step) and drops the caller's reference. */
void ks_sched_release(ks_sched *s, ks_job *j);
/* Cancels every queued and running job (shutdown): their connections end promptly. */
void ks_sched_cancel_all(ks_sched *s);
void ks_sched_counts(ks_sched *s, int *busy, int *idle, int *queued, long long *cancelled, long long *served);
int32_t ks_sched_n_ctx(const ks_sched *s);

ks_job *ks_job_new(void);
void ks_job_free(ks_job *j);

/* ---- text: what the model's ids read as, for streaming */

/* The longest prefix of `s` (n bytes) that ends on a character boundary, with invalid bytes
 * replaced by U+FFFD, into `out` (cleared first); `final` also completes a cut-off tail. */
int ks_utf8_clean(const char *s, size_t n, int final, ks_buf *out);
/* Where the text stops: the index of the first stop string found (at *at), or -1, with *safe the
 * length that can be sent without risking a stop string split across later text. */
int ks_stop_scan(const char *t, size_t n, char *const *stop, size_t n_stop, size_t *at, size_t *safe);

#endif
