/* GGUF (v2/v3) container reader over a mapped file: header, typed metadata and tensor infos.
 * Every count, length, offset and size is validated against the file before it is used, so
 * the views handed out here (strings, arrays, tensor data) always lie inside the mapping.
 * Strings are views into the file: not NUL-terminated, valid while the mapping lives. */
#ifndef KP_GGUF_H
#define KP_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "../internal.h"
#include "../tensor.h"

/* Metadata value types, numbered as in the file. */
typedef enum kp_gguf_vtype {
    KP_GGUF_U8 = 0,
    KP_GGUF_I8 = 1,
    KP_GGUF_U16 = 2,
    KP_GGUF_I16 = 3,
    KP_GGUF_U32 = 4,
    KP_GGUF_I32 = 5,
    KP_GGUF_F32 = 6,
    KP_GGUF_BOOL = 7,
    KP_GGUF_STR = 8,
    KP_GGUF_ARR = 9,
    KP_GGUF_U64 = 10,
    KP_GGUF_I64 = 11,
    KP_GGUF_F64 = 12,
    KP_GGUF_VTYPE_COUNT
} kp_gguf_vtype;

typedef struct kp_gguf_str {
    const char *p;
    size_t n;
} kp_gguf_str;

/* An array value: `n` elements of `type` starting at `data` and spanning `size` bytes. Elements
 * of fixed-size types are packed little-endian (read them with the accessors below); string and
 * nested-array elements are variable-sized and were validated when the file was opened. */
typedef struct kp_gguf_arr {
    kp_gguf_vtype type;
    uint64_t n;
    const uint8_t *data;
    size_t size;
} kp_gguf_arr;

typedef struct kp_gguf_kv {
    kp_gguf_str key;
    kp_gguf_vtype type;
    union {
        uint64_t u;   /* U8, U16, U32, U64, BOOL */
        int64_t i;    /* I8, I16, I32, I64 */
        double f;     /* F32, F64 */
        kp_gguf_str s;
        kp_gguf_arr a;
    } v;
} kp_gguf_kv;

typedef struct kp_gguf_tensor {
    const char *name;     /* NUL-terminated copy owned by the kp_gguf */
    uint32_t ggml_type;   /* as stored */
    kp_dtype dtype;       /* KP_DTYPE_COUNT when libkuiper has no kernels for ggml_type */
    int n_dims;           /* 1..4 */
    int64_t ne[4];        /* ne[0] contiguous; unused dims are 1 */
    uint64_t offset;      /* from the start of the data section */
    size_t nbytes;
    const uint8_t *data;  /* inside the mapping */
} kp_gguf_tensor;

typedef struct kp_gguf {
    const kp_allocator *alloc;
    const uint8_t *file;
    size_t file_size;
    uint32_t version;
    uint32_t alignment;
    size_t data_offset;
    kp_gguf_kv *kv;
    size_t n_kv, cap_kv;
    kp_gguf_tensor *tensors;
    size_t n_tensors, cap_tensors;
    uint32_t *kv_hash, *tensor_hash; /* open addressing: index + 1, 0 = empty */
    size_t kv_hash_cap, tensor_hash_cap;
} kp_gguf;

/* Parses `size` bytes at `data` (a mapped GGUF file). On success *out owns the index (the file
 * bytes stay the caller's and must outlive it). Errors: KP_ERR_FORMAT for malformed or truncated
 * files, KP_ERR_UNSUPPORTED for GGUF v1, big-endian files and unaligned tensor data, each with a
 * message naming the offset, key or tensor at fault. */
kp_status kp_gguf_open(const kp_allocator *a, const uint8_t *data, size_t size, kp_gguf **out);
void kp_gguf_free(kp_gguf *g);

/* Non-zero if `data` starts with the GGUF magic. */
int kp_gguf_is_gguf(const uint8_t *data, size_t size);

const kp_gguf_kv *kp_gguf_find(const kp_gguf *g, const char *key);
const kp_gguf_tensor *kp_gguf_find_tensor(const kp_gguf *g, const char *name);

/* Name of a value type ("u32", "string", ...) and of a ggml tensor type ("q4_K", ...). */
const char *kp_gguf_vtype_name(uint32_t t);
const char *kp_gguf_ggml_type_name(uint32_t t);

/* Typed getters. Absent key: KP_ERR_NOT_FOUND. Wrong type or out of [lo, hi]: KP_ERR_FORMAT.
 * The message names the key either way. */
/* Any integer type (and BOOL), checked against [lo, hi]. */
kp_status kp_gguf_get_int(const kp_gguf *g, const char *key, int64_t lo, int64_t hi, int64_t *out);
/* F32, F64 or an integer type. */
kp_status kp_gguf_get_float(const kp_gguf *g, const char *key, double *out);
kp_status kp_gguf_get_bool(const kp_gguf *g, const char *key, int *out);
kp_status kp_gguf_get_str(const kp_gguf *g, const char *key, kp_gguf_str *out);
/* An array whose elements have type `elem` (KP_GGUF_VTYPE_COUNT: any element type). */
kp_status kp_gguf_get_arr(const kp_gguf *g, const char *key, kp_gguf_vtype elem, kp_gguf_arr *out);

/* Same, but an absent key yields `def` and KP_OK. */
kp_status kp_gguf_get_int_or(const kp_gguf *g, const char *key, int64_t lo, int64_t hi, int64_t def,
                             int64_t *out);
kp_status kp_gguf_get_float_or(const kp_gguf *g, const char *key, double def, double *out);
kp_status kp_gguf_get_bool_or(const kp_gguf *g, const char *key, int def, int *out);

/* Element `i` (< a->n) of an integer / BOOL array, of an F32/F64 array. */
int64_t kp_gguf_arr_int(const kp_gguf_arr *a, uint64_t i);
double kp_gguf_arr_float(const kp_gguf_arr *a, uint64_t i);
/* Walks a string array once: strings[i] = element i, for i < a->n. */
void kp_gguf_arr_strings(const kp_gguf_arr *a, kp_gguf_str *strings);

/* Byte size of one element of a fixed-size value type, 0 for STR/ARR/unknown. */
size_t kp_gguf_vtype_size(uint32_t t);

/* Compares a file string with a C string. */
int kp_gguf_str_eq(kp_gguf_str s, const char *c);

#endif
