/* A tiny GGUF writer for tests: builds files byte by byte so tests can also write the broken
 * ones a real writer never would. Plain malloc: this is test code, not the library. */
#ifndef KP_TEST_GGUF_WRITER_H
#define KP_TEST_GGUF_WRITER_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct tbuf {
    uint8_t *p;
    size_t n, cap;
} tbuf;

static inline void tb_put(tbuf *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->n + n)
            nc *= 2;
        b->p = realloc(b->p, nc);
        b->cap = nc;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static inline void tb_u8(tbuf *b, uint8_t v) { tb_put(b, &v, 1); }
static inline void tb_u32(tbuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    tb_put(b, x, 4);
}
static inline void tb_u64(tbuf *b, uint64_t v)
{
    tb_u32(b, (uint32_t)v);
    tb_u32(b, (uint32_t)(v >> 32));
}
static inline void tb_f32(tbuf *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    tb_u32(b, u);
}
static inline void tb_str(tbuf *b, const char *s)
{
    tb_u64(b, strlen(s));
    tb_put(b, s, strlen(s));
}
static inline void tb_pad(tbuf *b, size_t align)
{
    while (b->n % align)
        tb_u8(b, 0);
}
static inline void tb_free(tbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Header: magic, version, tensor count, key count. */
static inline void tb_header(tbuf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    tb_put(b, "GGUF", 4);
    tb_u32(b, version);
    tb_u64(b, n_tensors);
    tb_u64(b, n_kv);
}

static inline void tb_kv_u32(tbuf *b, const char *key, uint32_t v)
{
    tb_str(b, key);
    tb_u32(b, 4);
    tb_u32(b, v);
}
static inline void tb_kv_f32(tbuf *b, const char *key, float v)
{
    tb_str(b, key);
    tb_u32(b, 6);
    tb_f32(b, v);
}
static inline void tb_kv_str(tbuf *b, const char *key, const char *v)
{
    tb_str(b, key);
    tb_u32(b, 8);
    tb_str(b, v);
}
static inline void tb_kv_bool(tbuf *b, const char *key, int v)
{
    tb_str(b, key);
    tb_u32(b, 7);
    tb_u8(b, (uint8_t)(v != 0));
}

/* A tensor info; writes min(n_dims, 5) dims from `ne` so lying counts can be tested. */
static inline void tb_tensor(tbuf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                             uint64_t offset)
{
    tb_str(b, name);
    tb_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims && i < 5; i++)
        tb_u64(b, ne[i]);
    tb_u32(b, type);
    tb_u64(b, offset);
}

#endif
