/* Routing, authentication, body limits and the two reply styles: a whole JSON reply, or a
 * server-sent event stream fed as the scheduler publishes text. Every connection has its own
 * thread, so waiting for the scheduler simply blocks that thread; while it waits it watches
 * the socket, and a client that hangs up cancels its job. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http.h"

struct ks_http {
    struct MHD_Daemon *d;
    const ks_ctx *c;
    ks_sched *s;
    atomic_ullong seq;
};

typedef struct req {
    ks_buf body;
    int too_big;
} req;

/* Waits between checks on the client while the scheduler works. */
#define POLL_MS 50

static int client_gone(struct MHD_Connection *con)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return 0;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))
        return 1;
    char c;
    return (p.revents & POLLIN) && recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static enum MHD_Result send_text(struct MHD_Connection *con, int status, char *json)
{
    static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\"}}";
    struct MHD_Response *r = json ? MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE)
                                  : MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(json);
        return MHD_NO;
    }
    if (!json)
        status = 500;
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ok = MHD_queue_response(con, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_error(struct MHD_Connection *con, int status, const char *type, const char *code,
                                  const char *msg)
{
    ks_err e;
    ks_err_set(&e, status, type, code, NULL, "%s", msg);
    return send_text(con, status, ks_error_json(&e));
}

/* ---- streaming */

typedef struct stream {
    ks_http *h;
    ks_job *j;
    struct MHD_Connection *con;
    size_t sent;      /* bytes of the job's text already sent */
    int first_done, finished;
    ks_buf out;
    size_t off;
} stream;

static int add_event(stream *x, char *ev)
{
    int rc = ev ? ks_buf_add(&x->out, ev, strlen(ev)) : -1;
    free(ev);
    return rc;
}

/* Fills x->out with the next events (scheduler lock held); 0 when the stream must wait. */
static int next_events(stream *x)
{
    ks_job *j = x->j;
    const ks_ctx *c = x->h->c;
    if (!x->first_done) {
        x->first_done = 1;
        if (j->chat)
            return add_event(x, ks_chunk_event(c, j, "", 0, 1, 0, 0)) ? -1 : 1;
    }
    if (j->text.len > x->sent) {
        int rc = add_event(x, ks_chunk_event(c, j, j->text.p + x->sent, j->text.len - x->sent, 0, 0, 0));
        x->sent = j->text.len;
        return rc ? -1 : 1;
    }
    if (j->finish == KS_RUNNING)
        return 0;
    x->finished = 1;
    if (j->finish == KS_FIN_ERROR) {
        ks_err e;
        ks_err_set(&e, 500, "server_error", NULL, NULL, "%s", j->error);
        char *js = ks_error_json(&e);
        if (js) {
            ks_buf_add(&x->out, "data: ", 6);
            ks_buf_add(&x->out, js, strlen(js));
            ks_buf_add(&x->out, "\n\n", 2);
        }
        free(js);
    } else if (j->finish != KS_FIN_CANCELLED) {
        if (add_event(x, ks_chunk_event(c, j, "", 0, 0, 1, 0)) ||
            (j->include_usage && add_event(x, ks_chunk_event(c, j, NULL, 0, 0, 0, 1))))
            return -1;
    }
    return ks_buf_add(&x->out, "data: [DONE]\n\n", 14) ? -1 : 1;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *x = cls;
    if (x->off >= x->out.len) {
        x->out.len = x->off = 0;
        if (x->finished)
            return MHD_CONTENT_READER_END_OF_STREAM;
        ks_sched_lock(x->h->s);
        int rc;
        while ((rc = next_events(x)) == 0) {
            if (client_gone(x->con)) {
                ks_sched_unlock(x->h->s);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            ks_sched_wait(x->h->s, x->j, POLL_MS);
        }
        ks_sched_unlock(x->h->s);
        if (rc < 0)
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = x->out.len - x->off < max ? x->out.len - x->off : max;
    memcpy(buf, x->out.p + x->off, n);
    x->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    stream *x = cls;
    ks_sched_release(x->h->s, x->j); /* cancels the job if it is still running */
    ks_buf_free(&x->out);
    free(x);
}

/* ---- requests */

static enum MHD_Result generate(ks_http *h, struct MHD_Connection *con, int chat, req *r)
{
    ks_err e;
    ks_job *j = ks_parse_request(h->c, chat, r->body.p ? r->body.p : "", r->body.len, &e);
    if (!j)
        return send_text(con, e.status, ks_error_json(&e));
    snprintf(j->id, sizeof j->id, "%s-%llu", chat ? "chatcmpl" : "cmpl", (unsigned long long)atomic_fetch_add(&h->seq, 1));
    j->created = (long long)time(NULL);
    j->refs = 1;
    if (ks_sched_submit(h->s, j)) {
        ks_job_free(j);
        return send_error(con, 429, "rate_limit_error", "queue_full", "every slot is busy and the queue is full");
    }
    if (j->stream) {
        stream *x = calloc(1, sizeof *x);
        struct MHD_Response *resp = x ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, x,
                                                                          stream_free)
                                      : NULL;
        if (!resp) {
            free(x);
            ks_sched_release(h->s, j);
            return MHD_NO;
        }
        *x = (stream){.h = h, .j = j, .con = con};
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        enum MHD_Result ok = MHD_queue_response(con, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return ok;
    }
    ks_sched_lock(h->s);
    while (j->finish == KS_RUNNING) {
        if (client_gone(con)) {
            ks_sched_unlock(h->s);
            ks_sched_release(h->s, j);
            return MHD_NO;
        }
        ks_sched_wait(h->s, j, POLL_MS);
    }
    char *body = NULL;
    int status = 200;
    if (j->finish == KS_FIN_ERROR || j->finish == KS_FIN_CANCELLED) { /* cancelled: shutting down */
        status = j->finish == KS_FIN_ERROR ? 500 : 503;
        ks_err_set(&e, status, "server_error", NULL, NULL, "%s",
                   status == 500 ? j->error : "the server is shutting down");
        body = ks_error_json(&e);
    } else {
        body = ks_reply_json(h->c, j);
    }
    ks_sched_unlock(h->s);
    ks_sched_release(h->s, j);
    return send_text(con, status, body);
}

static int authorized(ks_http *h, struct MHD_Connection *con)
{
    const char *key = h->c->o->api_key;
    if (!key)
        return 1;
    const char *a = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization");
    if (!a || strncmp(a, "Bearer ", 7))
        return 0;
    /* compare in time independent of where the first difference is */
    size_t n = strlen(key), m = strlen(a + 7);
    unsigned diff = n != m;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)(key[i] ^ (i < m ? a[7 + i] : 0));
    return diff == 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    ks_http *h = cls;
    req *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) { /* keep reading an oversized body, only to answer it properly */
        if (!r->too_big && r->body.len + *upload_size > h->c->o->max_body) {
            r->too_big = 1;
            ks_buf_free(&r->body);
        }
        if (!r->too_big && ks_buf_add(&r->body, upload, *upload_size))
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (!strcmp(url, "/health")) {
        if (!get)
            return send_error(con, 405, "invalid_request_error", NULL, "use GET for /health");
        int b, i, q;
        long long k, d;
        ks_sched_counts(h->s, &b, &i, &q, &k, &d);
        return send_text(con, 200, ks_health_json(b, i, q, k, d));
    }
    if (strncmp(url, "/v1/", 4))
        return send_error(con, 404, "invalid_request_error", "not_found", "unknown path");
    if (r->too_big) {
        char m[96];
        snprintf(m, sizeof m, "the request body is larger than %zu bytes", h->c->o->max_body);
        return send_error(con, 413, "invalid_request_error", "request_too_large", m);
    }
    if (!authorized(h, con))
        return send_error(con, 401, "invalid_request_error", "invalid_api_key", "missing or wrong API key");
    int chat = !strcmp(url, "/v1/chat/completions");
    if (chat || !strcmp(url, "/v1/completions"))
        return post ? generate(h, con, chat, r)
                    : send_error(con, 405, "invalid_request_error", NULL, "use POST for this path");
    if (!strcmp(url, "/v1/models"))
        return get ? send_text(con, 200, ks_models_json(h->c))
                   : send_error(con, 405, "invalid_request_error", NULL, "use GET for /v1/models");
    return send_error(con, 404, "invalid_request_error", "not_found", "unknown path");
}

static void completed(void *cls, struct MHD_Connection *con, void **con_cls, enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)con;
    (void)why;
    req *r = *con_cls;
    if (r) {
        ks_buf_free(&r->body);
        free(r);
        *con_cls = NULL;
    }
}

int ks_http_start(const ks_ctx *c, ks_sched *s, ks_http **out, int *port_out)
{
    *out = NULL;
    ks_http *h = calloc(1, sizeof *h);
    if (!h)
        return -1;
    h->c = c;
    h->s = s;
    atomic_init(&h->seq, 1);
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr *sa;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    if (inet_pton(AF_INET, c->o->host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)c->o->port);
        sa = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, c->o->host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)c->o->port);
        sa = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        fprintf(stderr, "kuiper-server: --host must be a numeric IPv4 or IPv6 address, not '%s'\n", c->o->host);
        free(h);
        return -1;
    }
    h->d = MHD_start_daemon(flags, (uint16_t)c->o->port, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, sa,
                            MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)256, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
    if (!h->d) {
        fprintf(stderr, "kuiper-server: cannot listen on %s port %d\n", c->o->host, c->o->port);
        free(h);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    *port_out = di ? di->port : c->o->port;
    *out = h;
    return 0;
}

void ks_http_stop(ks_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
