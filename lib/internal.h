/* Internal helpers shared by every part of the library: allocation through the user's hooks,
 * error reporting, logging. Nothing here is exported. */
#ifndef KP_INTERNAL_H
#define KP_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "kuiper/kuiper.h"

#if defined(__GNUC__)
#define KP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define KP_UNUSED __attribute__((unused))
#else
#define KP_PRINTF(a, b)
#define KP_UNUSED
#endif

/* ---- allocation: every host allocation goes through a kp_allocator (never NULL here) */

/* The default allocator (malloc/posix_memalign); static. */
const kp_allocator *kp_allocator_default(void);
/* `a` or the default when NULL. */
const kp_allocator *kp_allocator_or_default(const kp_allocator *a);

/* 64-byte aligned, uninitialised; NULL on failure (and sets KP_ERR_OUT_OF_MEMORY's message). */
void *kp_alloc(const kp_allocator *a, size_t size);
/* Zeroed. */
void *kp_calloc(const kp_allocator *a, size_t count, size_t size);
void kp_dealloc(const kp_allocator *a, void *p, size_t size);
/* Grows or shrinks to `new_size`, copying min(old,new) bytes; on failure `p` is untouched. */
void *kp_realloc(const kp_allocator *a, void *p, size_t old_size, size_t new_size);
/* Copies `len` bytes and adds a NUL; free with kp_dealloc(a, s, len + 1). */
char *kp_strndup(const kp_allocator *a, const char *s, size_t len);

/* Overflow-checked size arithmetic: return 0 on overflow. */
int kp_mul_ok(size_t a, size_t b, size_t *out);
int kp_add_ok(size_t a, size_t b, size_t *out);

/* ---- errors: a thread-local message behind kp_last_error() */

/* Records the message for kp_last_error() and returns `st`, so callers write
 * `return kp_fail(KP_ERR_FORMAT, "tensor '%s' ...", name);`. */
kp_status kp_fail(kp_status st, const char *fmt, ...) KP_PRINTF(2, 3);
kp_status kp_vfail(kp_status st, const char *fmt, va_list ap);
/* Clears the thread's message (called at the start of each public entry point). */
void kp_clear_error(void);
/* Current thread message. */
const char *kp_error_text(void);

/* ---- logging */

typedef struct kp_logger {
    kp_log_fn fn;
    void *user;
    kp_log_level level;
} kp_logger;

void kp_log(const kp_logger *lg, kp_log_level level, const char *fmt, ...) KP_PRINTF(3, 4);

/* ---- growable arrays used by readers and tokenizers */

typedef struct kp_ivec {
    int32_t *data;
    size_t len, cap;
    const kp_allocator *alloc;
} kp_ivec;

void kp_ivec_init(kp_ivec *v, const kp_allocator *a);
kp_status kp_ivec_push(kp_ivec *v, int32_t x);
kp_status kp_ivec_reserve(kp_ivec *v, size_t cap);
void kp_ivec_free(kp_ivec *v);

typedef struct kp_buf {
    char *data;
    size_t len, cap;
    const kp_allocator *alloc;
} kp_buf;

void kp_buf_init(kp_buf *b, const kp_allocator *a);
/* `p` must not point into b's own data: growing may move it. Use kp_buf_append_own for that. */
kp_status kp_buf_append(kp_buf *b, const void *p, size_t n);
/* Appends a copy of b's own bytes [off, off + n), which stay valid across the growth. */
kp_status kp_buf_append_own(kp_buf *b, size_t off, size_t n);
void kp_buf_free(kp_buf *b);

/* FNV-1a over bytes, continuing from `h` (start with KP_FNV64_INIT): fingerprints and checksums
 * of saved state, where speed matters less than being simple and stable across versions. */
#define KP_FNV64_INIT 0xcbf29ce484222325ull
static inline uint64_t kp_fnv1a64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Monotonic clock in seconds. */
double kp_now(void);

#endif
