/* The OpenAI request and response shapes, with jansson. */
#ifndef KS_API_H
#define KS_API_H

#include "server.h"

typedef struct ks_err {
    int status;
    const char *type, *code, *param;
    char msg[256];
} ks_err;

typedef struct ks_ctx {
    kp_model *m;
    const ks_opts *o;
    const char *model_name;
    int32_t n_ctx;
} ks_ctx;

/* Turns a request body into a job (chat: /v1/chat/completions, else /v1/completions).
 * NULL with *e filled (status 400) for anything the API does not accept. */
ks_job *ks_parse_request(const ks_ctx *c, int chat, const char *body, size_t len, ks_err *e);

void ks_err_set(ks_err *e, int status, const char *type, const char *code, const char *param, const char *fmt, ...);
/* Newly allocated JSON texts; NULL when out of memory. */
char *ks_error_json(const ks_err *e);
char *ks_models_json(const ks_ctx *c);
char *ks_health_json(int busy, int idle, int queued, long long cancelled, long long served);
/* The non-streamed reply of a finished job. */
char *ks_reply_json(const ks_ctx *c, const ks_job *j);
/* One server-sent event: text delta (may be empty), the first chunk (with the role) or the last
 * (finish set), or the usage chunk; ends with the blank line. */
char *ks_chunk_event(const ks_ctx *c, const ks_job *j, const char *text, size_t len, int first, int finish_chunk,
                     int usage_chunk);
const char *ks_finish_name(ks_finish f);

#endif
