/* Status text, the thread-local detailed message, and the log callback. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define KP_ERR_CAP 512

static _Thread_local char err_text[KP_ERR_CAP];

const char *kp_status_str(kp_status st)
{
    switch (st) {
    case KP_OK: return "KP_OK: success";
    case KP_ERR_INVALID_ARG: return "KP_ERR_INVALID_ARG: invalid argument";
    case KP_ERR_OUT_OF_MEMORY: return "KP_ERR_OUT_OF_MEMORY: out of memory";
    case KP_ERR_IO: return "KP_ERR_IO: file could not be read";
    case KP_ERR_FORMAT: return "KP_ERR_FORMAT: malformed file";
    case KP_ERR_UNSUPPORTED: return "KP_ERR_UNSUPPORTED: not supported";
    case KP_ERR_BUFFER_TOO_SMALL: return "KP_ERR_BUFFER_TOO_SMALL: output buffer too small";
    case KP_ERR_TOKEN_OUT_OF_RANGE: return "KP_ERR_TOKEN_OUT_OF_RANGE: token id out of range";
    case KP_ERR_CONTEXT_FULL: return "KP_ERR_CONTEXT_FULL: context is full";
    case KP_ERR_TOKENIZER_MISMATCH: return "KP_ERR_TOKENIZER_MISMATCH: tokenizer does not fit the model";
    case KP_ERR_CANCELLED: return "KP_ERR_CANCELLED: cancelled";
    case KP_ERR_INTERNAL: return "KP_ERR_INTERNAL: internal error";
    case KP_ERR_NOT_FOUND: return "KP_ERR_NOT_FOUND: not found";
    case KP_ERR_MODEL_MISMATCH: return "KP_ERR_MODEL_MISMATCH: made with another model";
    case KP_ERR_BUSY: return "KP_ERR_BUSY: the session is in use by kp_generate";
    }
    return "KP_ERR_UNKNOWN: unknown status";
}

const char *kp_last_error(void) { return err_text; }
const char *kp_error_text(void) { return err_text; }
void kp_clear_error(void) { err_text[0] = 0; }

kp_status kp_vfail(kp_status st, const char *fmt, va_list ap)
{
    vsnprintf(err_text, sizeof err_text, fmt, ap);
    return st;
}

kp_status kp_fail(kp_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kp_vfail(st, fmt, ap);
    va_end(ap);
    return st;
}

void kp_log(const kp_logger *lg, kp_log_level level, const char *fmt, ...)
{
    if (!lg || !lg->fn || level > lg->level)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lg->fn(lg->user, level, msg);
}

double kp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
