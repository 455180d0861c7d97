/* A small strict JSON reader (RFC 8259) that builds an immutable tree.
 *
 * Written here rather than taken from cJSON or similar because every allocation must go through
 * the caller's kp_allocator, and those libraries route memory through process-global hooks.
 * Nodes and unescaped strings live in an arena owned by the document; strings without escapes
 * point straight into the source text, so the source must outlive the document. */
#ifndef KP_JSON_H
#define KP_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

typedef enum kp_json_type {
    KP_JSON_NULL = 0,
    KP_JSON_FALSE,
    KP_JSON_TRUE,
    KP_JSON_NUMBER,
    KP_JSON_STRING,
    KP_JSON_ARRAY,
    KP_JSON_OBJECT
} kp_json_type;

typedef struct kp_json kp_json;
struct kp_json {
    const char *key;   /* member name when the parent is an object, else NULL */
    union {
        const char *str;     /* KP_JSON_STRING: `len` bytes, UTF-8, may hold NUL */
        const kp_json *kids; /* KP_JSON_ARRAY / KP_JSON_OBJECT: `len` children in order */
        double num;          /* KP_JSON_NUMBER */
    } u;
    uint32_t key_len;
    uint32_t len : 28; /* strings over 256 MiB and containers over 2^28 members are refused */
    uint32_t type : 4; /* kp_json_type */
};

typedef struct kp_json_doc kp_json_doc;

/* Parses `len` bytes of `text`. `what` names the source in error messages ("tokenizer.json"),
 * which give the line and column of the first problem. The whole input must be one value
 * (surrounding whitespace allowed). Strings must be valid UTF-8; \u escapes with lone
 * surrogates are rejected. Nesting deeper than 512 levels is refused. */
kp_status kp_json_parse(const kp_allocator *a, const char *text, size_t len, const char *what,
                        kp_json_doc **out);
void kp_json_free(kp_json_doc *d);
const kp_json *kp_json_root(const kp_json_doc *d);

/* The first member named `key` of object `obj`; NULL when `obj` is NULL, not an object, or has
 * no such member. */
const kp_json *kp_json_get(const kp_json *obj, const char *key);
/* `obj[key]` if it has type `type`, else NULL. */
const kp_json *kp_json_get_type(const kp_json *obj, const char *key, kp_json_type type);
/* Non-zero if `v` is a string equal to the NUL-terminated `s`. */
int kp_json_str_eq(const kp_json *v, const char *s);
/* Non-zero if `v` is a number holding an integer in [lo, hi]; stores it in *out. */
int kp_json_int(const kp_json *v, int64_t lo, int64_t hi, int64_t *out);
/* 1 for true, 0 for false, `dflt` for anything else (absent, null). */
int kp_json_bool(const kp_json *v, int dflt);

#endif
