/* GGUF v3 writer: metadata and tensor infos are collected in memory, then the header goes out
 * in one piece and the tensor data is streamed after it in the order the tensors were
 * declared, each aligned to 32 bytes (GGUF's default alignment). Little-endian only. */
#ifndef KP_GGUF_WRITE_H
#define KP_GGUF_WRITE_H

#include <stdio.h>

#include "gguf.h"

typedef struct kp_gguf_writer {
    const kp_allocator *alloc;
    kp_buf kv, info;
    uint64_t n_kv, n_tensors;
    uint64_t data_size;   /* bytes of tensor data declared so far, padding included */
    uint64_t written;     /* bytes of tensor data streamed so far */
    kp_status err;        /* first failure; later calls do nothing and return it */
} kp_gguf_writer;

void kp_gguf_writer_init(kp_gguf_writer *w, const kp_allocator *a);
void kp_gguf_writer_free(kp_gguf_writer *w);

/* Metadata. Keys and strings are copied. A failed call (out of memory) is remembered and
 * returned by every later call, so callers may check once at the end. */
kp_status kp_gguf_w_str(kp_gguf_writer *w, const char *key, const char *s, size_t n);
kp_status kp_gguf_w_cstr(kp_gguf_writer *w, const char *key, const char *s);
kp_status kp_gguf_w_u32(kp_gguf_writer *w, const char *key, uint32_t v);
kp_status kp_gguf_w_i32(kp_gguf_writer *w, const char *key, int32_t v);
kp_status kp_gguf_w_f32(kp_gguf_writer *w, const char *key, float v);
kp_status kp_gguf_w_bool(kp_gguf_writer *w, const char *key, int v);
/* A scalar of any fixed-size type (U8..I64, F32, F64, BOOL) from the little-endian bytes at v. */
kp_status kp_gguf_w_scalar(kp_gguf_writer *w, const char *key, kp_gguf_vtype t, const void *v);
/* An array of n fixed-size elements packed at `data` (little-endian). */
kp_status kp_gguf_w_arr(kp_gguf_writer *w, const char *key, kp_gguf_vtype elem, uint64_t n, const void *data);
/* An array of n strings (lens[i] bytes at s[i]). */
kp_status kp_gguf_w_arr_str(kp_gguf_writer *w, const char *key, uint64_t n, const char *const *s,
                            const uint32_t *lens);

/* ggml's type number for a dtype the writer can store; UINT32_MAX for others. */
uint32_t kp_gguf_ggml_type_of(kp_dtype t);

/* Declares the next tensor: `nbytes` of data of ggml type `type`, dims ne[0..ndim). */
kp_status kp_gguf_w_tensor(kp_gguf_writer *w, const char *name, kp_dtype type, int ndim, const int64_t *ne,
                           size_t nbytes);

/* Writes magic, counts, metadata, tensor infos and the padding before the data section. */
kp_status kp_gguf_w_header(kp_gguf_writer *w, FILE *f);
/* Streams tensor data (a tensor may arrive in several pieces); kp_gguf_w_pad after each
 * tensor aligns the next one. */
kp_status kp_gguf_w_data(kp_gguf_writer *w, FILE *f, const void *p, size_t n);
kp_status kp_gguf_w_pad(kp_gguf_writer *w, FILE *f);

#endif
