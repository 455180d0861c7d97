/* GGUF container parsing. The file is untrusted: the cursor below refuses to read past the end,
 * counts are bounded by what the remaining bytes could hold before anything is allocated, and
 * every size is computed with overflow checks. Arrays grow as entries are actually parsed so a
 * lying count cannot make us allocate more than the file justifies. */
#include <string.h>

#include "gguf.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" read little-endian */
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_NESTING 8
#define GGUF_MAX_NAME 1024 /* tensor names and keys; real ones are under 100 bytes */
/* Kernels load F32/F16 fields and quant blocks in place, so tensor data must be this aligned. */
#define GGUF_MIN_DATA_ALIGN 8

/* ---- ggml tensor types: block geometry for every type that has been written to files, so any
 * well-formed file can be indexed even when we cannot compute with some of its tensors */

typedef struct ggml_type_info {
    const char *name;
    uint32_t blck;   /* elements per block; 0 = id not in use */
    uint32_t size;   /* bytes per block */
    kp_dtype dtype;  /* KP_DTYPE_COUNT: no kernels */
} ggml_type_info;

#define NOK KP_DTYPE_COUNT
static const ggml_type_info ggml_types[] = {
    [0] = {"f32", 1, 4, KP_DTYPE_F32},
    [1] = {"f16", 1, 2, KP_DTYPE_F16},
    [2] = {"q4_0", 32, 18, KP_DTYPE_Q4_0},
    [3] = {"q4_1", 32, 20, KP_DTYPE_Q4_1},
    /* 4, 5: Q4_2 / Q4_3, removed from the format */
    [6] = {"q5_0", 32, 22, KP_DTYPE_Q5_0},
    [7] = {"q5_1", 32, 24, KP_DTYPE_Q5_1},
    [8] = {"q8_0", 32, 34, KP_DTYPE_Q8_0},
    [9] = {"q8_1", 32, 36, NOK},
    [10] = {"q2_K", 256, 84, NOK},
    [11] = {"q3_K", 256, 110, NOK},
    [12] = {"q4_K", 256, 144, KP_DTYPE_Q4_K},
    [13] = {"q5_K", 256, 176, KP_DTYPE_Q5_K},
    [14] = {"q6_K", 256, 210, KP_DTYPE_Q6_K},
    [15] = {"q8_K", 256, 292, NOK},
    [16] = {"iq2_xxs", 256, 66, NOK},
    [17] = {"iq2_xs", 256, 74, NOK},
    [18] = {"iq3_xxs", 256, 98, NOK},
    [19] = {"iq1_s", 256, 50, NOK},
    [20] = {"iq4_nl", 32, 18, NOK},
    [21] = {"iq3_s", 256, 110, NOK},
    [22] = {"iq2_s", 256, 82, NOK},
    [23] = {"iq4_xs", 256, 136, NOK},
    [24] = {"i8", 1, 1, NOK},
    [25] = {"i16", 1, 2, NOK},
    [26] = {"i32", 1, 4, KP_DTYPE_I32},
    [27] = {"i64", 1, 8, NOK},
    [28] = {"f64", 1, 8, NOK},
    [29] = {"iq1_m", 256, 56, NOK},
    [30] = {"bf16", 1, 2, KP_DTYPE_BF16},
    /* 31-33: Q4_0_4_4 / 4_8 / 8_8 and 36-38: IQ4_NL_4_x, repacked layouts no longer in files */
    [34] = {"tq1_0", 256, 54, NOK},
    [35] = {"tq2_0", 256, 66, NOK},
    [39] = {"mxfp4", 32, 17, NOK},
};
#undef NOK
#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

const char *kp_gguf_ggml_type_name(uint32_t t)
{
    return (t < N_GGML_TYPES && ggml_types[t].blck) ? ggml_types[t].name : "unknown";
}

static const char *const vtype_names[KP_GGUF_VTYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};
static const uint8_t vtype_sizes[KP_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *kp_gguf_vtype_name(uint32_t t)
{
    return t < KP_GGUF_VTYPE_COUNT ? vtype_names[t] : "unknown";
}

size_t kp_gguf_vtype_size(uint32_t t) { return t < KP_GGUF_VTYPE_COUNT ? vtype_sizes[t] : 0; }

/* ---- little-endian loads from unaligned bytes */

static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) | ((uint64_t)ld32(p + 4) << 32); }

int kp_gguf_is_gguf(const uint8_t *data, size_t size)
{
    return data && size >= 4 && ld32(data) == GGUF_MAGIC;
}

int kp_gguf_str_eq(kp_gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.n == n && (n == 0 || memcmp(s.p, c, n) == 0);
}

/* ---- cursor */

typedef struct cursor {
    const uint8_t *base;
    size_t size, pos;
} cursor;

static size_t left(const cursor *c) { return c->size - c->pos; }

static kp_status need(const cursor *c, size_t n, const char *what)
{
    if (n > left(c))
        return kp_fail(KP_ERR_FORMAT,
                       "GGUF truncated: %s at offset %zu needs %zu bytes, only %zu left in the file",
                       what, c->pos, n, left(c));
    return KP_OK;
}

static kp_status rd_u32(cursor *c, uint32_t *v, const char *what)
{
    kp_status st = need(c, 4, what);
    if (st)
        return st;
    *v = ld32(c->base + c->pos);
    c->pos += 4;
    return KP_OK;
}

static kp_status rd_u64(cursor *c, uint64_t *v, const char *what)
{
    kp_status st = need(c, 8, what);
    if (st)
        return st;
    *v = ld64(c->base + c->pos);
    c->pos += 8;
    return KP_OK;
}

static kp_status rd_str(cursor *c, kp_gguf_str *s, const char *what)
{
    size_t at = c->pos;
    uint64_t n;
    kp_status st = rd_u64(c, &n, what);
    if (st)
        return st;
    if (n > left(c))
        return kp_fail(KP_ERR_FORMAT,
                       "GGUF: %s at offset %zu has length %llu but only %zu bytes are left in the file",
                       what, at, (unsigned long long)n, left(c));
    s->p = (const char *)c->base + c->pos;
    s->n = (size_t)n;
    c->pos += (size_t)n;
    return KP_OK;
}

/* Validates the elements of an array value and advances past them. */
static kp_status skip_array(cursor *c, kp_gguf_arr *a, int depth, const char *key)
{
    size_t at = c->pos;
    uint32_t et;
    uint64_t n;
    kp_status st = rd_u32(c, &et, "array element type");
    if (!st)
        st = rd_u64(c, &n, "array length");
    if (st)
        return st;
    if (et >= KP_GGUF_VTYPE_COUNT)
        return kp_fail(KP_ERR_FORMAT, "GGUF: key '%.64s': array at offset %zu has unknown element type %u",
                       key, at, et);
    a->type = (kp_gguf_vtype)et;
    a->n = n;
    a->data = c->base + c->pos;
    size_t start = c->pos;
    size_t esz = vtype_sizes[et];
    if (esz) {
        size_t bytes;
        if (n > SIZE_MAX || !kp_mul_ok((size_t)n, esz, &bytes) || bytes > left(c))
            return kp_fail(KP_ERR_FORMAT,
                           "GGUF: key '%.64s': array of %llu %s at offset %zu runs past the end of the file",
                           key, (unsigned long long)n, vtype_names[et], at);
        c->pos += bytes;
    } else if (et == KP_GGUF_STR) {
        if (n > left(c) / 8)
            return kp_fail(KP_ERR_FORMAT,
                           "GGUF: key '%.64s': array of %llu strings at offset %zu cannot fit in the %zu bytes left",
                           key, (unsigned long long)n, at, left(c));
        for (uint64_t i = 0; i < n; i++) {
            kp_gguf_str s;
            if ((st = rd_str(c, &s, "array string")))
                return st;
        }
    } else { /* nested arrays: each needs at least its 12-byte header */
        if (depth >= GGUF_MAX_NESTING)
            return kp_fail(KP_ERR_FORMAT, "GGUF: key '%.64s': arrays nested deeper than %d at offset %zu",
                           key, GGUF_MAX_NESTING, at);
        if (n > left(c) / 12)
            return kp_fail(KP_ERR_FORMAT,
                           "GGUF: key '%.64s': array of %llu arrays at offset %zu cannot fit in the %zu bytes left",
                           key, (unsigned long long)n, at, left(c));
        for (uint64_t i = 0; i < n; i++) {
            kp_gguf_arr inner;
            if ((st = skip_array(c, &inner, depth + 1, key)))
                return st;
        }
    }
    a->size = c->pos - start;
    return KP_OK;
}

static kp_status rd_value(cursor *c, kp_gguf_kv *kv, const char *key)
{
    size_t at = c->pos;
    uint32_t t = kv->type;
    size_t esz = kp_gguf_vtype_size(t);
    if (esz) {
        kp_status st = need(c, esz, "metadata value");
        if (st)
            return st;
        const uint8_t *p = c->base + c->pos;
        switch (t) {
        case KP_GGUF_U8: kv->v.u = p[0]; break;
        case KP_GGUF_I8: kv->v.i = (int8_t)p[0]; break;
        case KP_GGUF_U16: kv->v.u = ld16(p); break;
        case KP_GGUF_I16: kv->v.i = (int16_t)ld16(p); break;
        case KP_GGUF_U32: kv->v.u = ld32(p); break;
        case KP_GGUF_I32: kv->v.i = (int32_t)ld32(p); break;
        case KP_GGUF_U64: kv->v.u = ld64(p); break;
        case KP_GGUF_I64: kv->v.i = (int64_t)ld64(p); break;
        case KP_GGUF_BOOL:
            if (p[0] > 1)
                return kp_fail(KP_ERR_FORMAT, "GGUF: key '%.64s': bool at offset %zu holds %u", key, at,
                               p[0]);
            kv->v.u = p[0];
            break;
        case KP_GGUF_F32: {
            float f;
            memcpy(&f, p, 4); /* the file is little-endian like every host we build for */
            kv->v.f = f;
            break;
        }
        case KP_GGUF_F64: memcpy(&kv->v.f, p, 8); break;
        default: break;
        }
        c->pos += esz;
        return KP_OK;
    }
    if (t == KP_GGUF_STR)
        return rd_str(c, &kv->v.s, "metadata string");
    if (t == KP_GGUF_ARR)
        return skip_array(c, &kv->v.a, 1, key);
    return kp_fail(KP_ERR_FORMAT, "GGUF: key '%.64s' at offset %zu has unknown value type %u", key, at,
                   t);
}

/* ---- hash tables over keys and tensor names (duplicate detection and lookup) */

static uint32_t hash_bytes(const char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

static size_t hash_cap_for(size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 1)
        cap *= 2;
    return cap;
}

static kp_gguf_str kv_key(const kp_gguf *g, size_t i) { return g->kv[i].key; }
static kp_gguf_str tensor_key(const kp_gguf *g, size_t i)
{
    kp_gguf_str s = {g->tensors[i].name, strlen(g->tensors[i].name)};
    return s;
}

typedef kp_gguf_str (*key_of_fn)(const kp_gguf *g, size_t i);

/* Builds the table for n entries; returns the index of the first duplicate as *dup (or SIZE_MAX). */
static kp_status hash_build(kp_gguf *g, size_t n, key_of_fn key_of, uint32_t **table, size_t *cap,
                            size_t *dup)
{
    *dup = SIZE_MAX;
    *cap = hash_cap_for(n);
    *table = kp_calloc(g->alloc, *cap, sizeof **table);
    if (!*table)
        return KP_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; i < n; i++) {
        kp_gguf_str k = key_of(g, i);
        size_t h = hash_bytes(k.p, k.n) & (*cap - 1);
        for (;; h = (h + 1) & (*cap - 1)) {
            uint32_t e = (*table)[h];
            if (!e) {
                (*table)[h] = (uint32_t)(i + 1);
                break;
            }
            kp_gguf_str o = key_of(g, e - 1);
            if (o.n == k.n && memcmp(o.p, k.p, k.n) == 0) {
                *dup = i;
                return KP_OK;
            }
        }
    }
    return KP_OK;
}

static size_t hash_find(const kp_gguf *g, const uint32_t *table, size_t cap, key_of_fn key_of,
                        const char *name)
{
    if (!table)
        return SIZE_MAX;
    size_t n = strlen(name);
    for (size_t h = hash_bytes(name, n) & (cap - 1);; h = (h + 1) & (cap - 1)) {
        uint32_t e = table[h];
        if (!e)
            return SIZE_MAX;
        kp_gguf_str o = key_of(g, e - 1);
        if (o.n == n && memcmp(o.p, name, n) == 0)
            return e - 1;
    }
}

const kp_gguf_kv *kp_gguf_find(const kp_gguf *g, const char *key)
{
    size_t i = hash_find(g, g->kv_hash, g->kv_hash_cap, kv_key, key);
    return i == SIZE_MAX ? NULL : &g->kv[i];
}

const kp_gguf_tensor *kp_gguf_find_tensor(const kp_gguf *g, const char *name)
{
    size_t i = hash_find(g, g->tensor_hash, g->tensor_hash_cap, tensor_key, name);
    return i == SIZE_MAX ? NULL : &g->tensors[i];
}

/* ---- parsing */

static kp_status grow(const kp_allocator *a, void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return KP_OK;
    size_t nc = *cap ? *cap * 2 : 64;
    void *d = kp_realloc(a, *arr, *cap * elem, nc * elem);
    if (!d)
        return KP_ERR_OUT_OF_MEMORY;
    *arr = d;
    *cap = nc;
    return KP_OK;
}

static kp_status parse_kv(kp_gguf *g, cursor *c, uint64_t n_kv)
{
    kp_status st;
    for (uint64_t i = 0; i < n_kv; i++) {
        if ((st = grow(g->alloc, (void **)&g->kv, &g->cap_kv, g->n_kv, sizeof *g->kv)))
            return st;
        kp_gguf_kv *kv = &g->kv[g->n_kv];
        memset(kv, 0, sizeof *kv);
        size_t at = c->pos;
        if ((st = rd_str(c, &kv->key, "metadata key")))
            return st;
        if (kv->key.n == 0 || kv->key.n > GGUF_MAX_NAME)
            return kp_fail(KP_ERR_FORMAT, "GGUF: metadata key #%llu at offset %zu has length %zu",
                           (unsigned long long)i, at, kv->key.n);
        /* a NUL-terminated copy of the key for messages */
        char key[72];
        size_t kn = kv->key.n < 64 ? kv->key.n : 64;
        memcpy(key, kv->key.p, kn);
        key[kn] = 0;
        uint32_t t;
        if ((st = rd_u32(c, &t, "metadata value type")))
            return st;
        kv->type = (kp_gguf_vtype)t;
        if (t >= KP_GGUF_VTYPE_COUNT)
            return kp_fail(KP_ERR_FORMAT, "GGUF: key '%s' at offset %zu has unknown value type %u", key,
                           at, t);
        if ((st = rd_value(c, kv, key)))
            return st;
        g->n_kv++;
    }
    size_t dup;
    if ((st = hash_build(g, g->n_kv, kv_key, &g->kv_hash, &g->kv_hash_cap, &dup)))
        return st;
    if (dup != SIZE_MAX)
        return kp_fail(KP_ERR_FORMAT, "GGUF: duplicate metadata key '%.*s'",
                       (int)(g->kv[dup].key.n < 64 ? g->kv[dup].key.n : 64), g->kv[dup].key.p);
    return KP_OK;
}

static kp_status parse_alignment(kp_gguf *g)
{
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const kp_gguf_kv *kv = kp_gguf_find(g, "general.alignment");
    if (!kv)
        return KP_OK;
    if (kv->type != KP_GGUF_U32)
        return kp_fail(KP_ERR_FORMAT, "GGUF: general.alignment has type %s, expected u32",
                       kp_gguf_vtype_name(kv->type));
    uint64_t al = kv->v.u;
    if (al == 0 || (al & (al - 1)))
        return kp_fail(KP_ERR_FORMAT, "GGUF: general.alignment %llu is not a power of two",
                       (unsigned long long)al);
    g->alignment = (uint32_t)al;
    return KP_OK;
}

static kp_status parse_tensor_infos(kp_gguf *g, cursor *c, uint64_t n_tensors)
{
    kp_status st;
    for (uint64_t i = 0; i < n_tensors; i++) {
        if ((st = grow(g->alloc, (void **)&g->tensors, &g->cap_tensors, g->n_tensors,
                       sizeof *g->tensors)))
            return st;
        kp_gguf_tensor *t = &g->tensors[g->n_tensors];
        memset(t, 0, sizeof *t);
        size_t at = c->pos;
        kp_gguf_str name = {0};
        if ((st = rd_str(c, &name, "tensor name")))
            return st;
        if (name.n == 0 || name.n > GGUF_MAX_NAME)
            return kp_fail(KP_ERR_FORMAT, "GGUF: tensor #%llu at offset %zu has a name of %zu bytes",
                           (unsigned long long)i, at, name.n);
        if (memchr(name.p, 0, name.n))
            return kp_fail(KP_ERR_FORMAT, "GGUF: tensor #%llu at offset %zu has a NUL in its name",
                           (unsigned long long)i, at);
        char *copy = kp_strndup(g->alloc, name.p, name.n);
        if (!copy)
            return KP_ERR_OUT_OF_MEMORY;
        t->name = copy;
        g->n_tensors++; /* owns the name from here on */
        uint32_t nd;
        if ((st = rd_u32(c, &nd, "tensor n_dims")))
            return st;
        if (nd == 0 || nd > KP_MAX_DIMS)
            return kp_fail(KP_ERR_FORMAT, "GGUF: tensor '%.64s' at offset %zu has n_dims %u (1..%d allowed)",
                           t->name, at, nd, KP_MAX_DIMS);
        t->n_dims = (int)nd;
        for (int d = 0; d < KP_MAX_DIMS; d++)
            t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t ne;
            if ((st = rd_u64(c, &ne, "tensor dimension")))
                return st;
            if (ne > (uint64_t)INT64_MAX)
                return kp_fail(KP_ERR_FORMAT, "GGUF: tensor '%.64s' has dimension %u = %llu", t->name, d,
                               (unsigned long long)ne);
            t->ne[d] = (int64_t)ne;
        }
        if ((st = rd_u32(c, &t->ggml_type, "tensor type")) || (st = rd_u64(c, &t->offset, "tensor offset")))
            return st;
    }
    size_t dup;
    if ((st = hash_build(g, g->n_tensors, tensor_key, &g->tensor_hash, &g->tensor_hash_cap, &dup)))
        return st;
    if (dup != SIZE_MAX)
        return kp_fail(KP_ERR_FORMAT, "GGUF: duplicate tensor name '%.64s' (tensor #%zu)",
                       g->tensors[dup].name, dup);
    return KP_OK;
}

/* Sizes each tensor and checks that its bytes lie inside the data section. */
static kp_status place_tensors(kp_gguf *g)
{
    for (size_t i = 0; i < g->n_tensors; i++) {
        kp_gguf_tensor *t = &g->tensors[i];
        uint32_t ty = t->ggml_type;
        if (ty >= N_GGML_TYPES || !ggml_types[ty].blck)
            return kp_fail(KP_ERR_FORMAT, "GGUF: tensor '%.64s' has unknown type %u", t->name, ty);
        const ggml_type_info *ti = &ggml_types[ty];
        t->dtype = ti->dtype;
        if (t->ne[0] % ti->blck)
            return kp_fail(KP_ERR_FORMAT,
                           "GGUF: tensor '%.64s' of type %s has %lld columns, not a multiple of its block size %u",
                           t->name, ti->name, (long long)t->ne[0], ti->blck);
        size_t bytes = (size_t)(t->ne[0] / ti->blck), nel = (size_t)t->ne[0];
        int ok = kp_mul_ok(bytes, ti->size, &bytes);
        for (int d = 1; d < KP_MAX_DIMS && ok; d++)
            ok = kp_mul_ok(bytes, (size_t)t->ne[d], &bytes) && kp_mul_ok(nel, (size_t)t->ne[d], &nel);
        if (!ok || nel > (size_t)INT64_MAX)
            return kp_fail(KP_ERR_FORMAT, "GGUF: tensor '%.64s' shape [%lld, %lld, %lld, %lld] overflows",
                           t->name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                           (long long)t->ne[3]);
        t->nbytes = bytes;
        if (t->offset % g->alignment)
            return kp_fail(KP_ERR_FORMAT, "GGUF: tensor '%.64s' offset %llu is not a multiple of the alignment %u",
                           t->name, (unsigned long long)t->offset, g->alignment);
        size_t start, end;
        if (t->offset > SIZE_MAX || !kp_add_ok(g->data_offset, (size_t)t->offset, &start) ||
            !kp_add_ok(start, bytes, &end) || end > g->file_size)
            return kp_fail(KP_ERR_FORMAT,
                           "GGUF: tensor '%.64s' data (offset %llu + %zu bytes after the data section at %zu) "
                           "runs past the end of the file (%zu bytes)",
                           t->name, (unsigned long long)t->offset, bytes, g->data_offset, g->file_size);
        if (((uintptr_t)(g->file + start) % GGUF_MIN_DATA_ALIGN) && bytes)
            return kp_fail(KP_ERR_UNSUPPORTED, "GGUF: tensor '%.64s' data at file offset %zu is not %d-byte aligned",
                           t->name, start, GGUF_MIN_DATA_ALIGN);
        t->data = g->file + start;
    }
    return KP_OK;
}

kp_status kp_gguf_open(const kp_allocator *a, const uint8_t *data, size_t size, kp_gguf **out)
{
    *out = NULL;
    a = kp_allocator_or_default(a);
    if (!data || size < 4 || ld32(data) != GGUF_MAGIC)
        return kp_fail(KP_ERR_FORMAT, "GGUF: missing 'GGUF' magic at offset 0");
    cursor c = {data, size, 4};
    uint32_t version;
    uint64_t n_tensors, n_kv;
    kp_status st = rd_u32(&c, &version, "header version");
    if (st)
        return st;
    if (version == 1)
        return kp_fail(KP_ERR_UNSUPPORTED, "GGUF: version 1 files are not supported (re-convert to v3)");
    if (version == 0x02000000u || version == 0x03000000u)
        return kp_fail(KP_ERR_UNSUPPORTED, "GGUF: big-endian files are not supported");
    if (version != 2 && version != 3)
        return kp_fail(KP_ERR_UNSUPPORTED, "GGUF: unknown version %u", version);
    if ((st = rd_u64(&c, &n_tensors, "header tensor count")) || (st = rd_u64(&c, &n_kv, "header key count")))
        return st;
    /* smallest possible entries: a key-value is 13 bytes, a tensor info 32 */
    if (n_kv > left(&c) / 13)
        return kp_fail(KP_ERR_FORMAT, "GGUF: header claims %llu metadata entries, more than %zu bytes can hold",
                       (unsigned long long)n_kv, left(&c));
    if (n_tensors > left(&c) / 32)
        return kp_fail(KP_ERR_FORMAT, "GGUF: header claims %llu tensors, more than %zu bytes can hold",
                       (unsigned long long)n_tensors, left(&c));

    kp_gguf *g = kp_calloc(a, 1, sizeof *g);
    if (!g)
        return KP_ERR_OUT_OF_MEMORY;
    g->alloc = a;
    g->file = data;
    g->file_size = size;
    g->version = version;
    if ((st = parse_kv(g, &c, n_kv)) || (st = parse_alignment(g)) ||
        (st = parse_tensor_infos(g, &c, n_tensors)))
        goto fail;
    size_t al = g->alignment, data_off;
    if (!kp_add_ok(c.pos, al - 1, &data_off)) {
        st = kp_fail(KP_ERR_FORMAT, "GGUF: data section offset overflows");
        goto fail;
    }
    data_off -= data_off % al;
    if (data_off > size && g->n_tensors) {
        st = kp_fail(KP_ERR_FORMAT, "GGUF truncated: data section would start at offset %zu, file has %zu bytes",
                     data_off, size);
        goto fail;
    }
    g->data_offset = data_off;
    if ((st = place_tensors(g)))
        goto fail;
    *out = g;
    return KP_OK;
fail:
    kp_gguf_free(g);
    return st;
}

void kp_gguf_free(kp_gguf *g)
{
    if (!g)
        return;
    const kp_allocator *a = g->alloc;
    for (size_t i = 0; i < g->n_tensors; i++)
        kp_dealloc(a, (void *)g->tensors[i].name, strlen(g->tensors[i].name) + 1);
    kp_dealloc(a, g->tensors, g->cap_tensors * sizeof *g->tensors);
    kp_dealloc(a, g->kv, g->cap_kv * sizeof *g->kv);
    kp_dealloc(a, g->kv_hash, g->kv_hash_cap * sizeof *g->kv_hash);
    kp_dealloc(a, g->tensor_hash, g->tensor_hash_cap * sizeof *g->tensor_hash);
    kp_dealloc(a, g, sizeof *g);
}

/* ---- typed getters */

static int is_int_type(uint32_t t)
{
    return t == KP_GGUF_U8 || t == KP_GGUF_I8 || t == KP_GGUF_U16 || t == KP_GGUF_I16 ||
           t == KP_GGUF_U32 || t == KP_GGUF_I32 || t == KP_GGUF_U64 || t == KP_GGUF_I64 ||
           t == KP_GGUF_BOOL;
}

static int is_signed_type(uint32_t t)
{
    return t == KP_GGUF_I8 || t == KP_GGUF_I16 || t == KP_GGUF_I32 || t == KP_GGUF_I64;
}

static kp_status lookup(const kp_gguf *g, const char *key, const kp_gguf_kv **kv)
{
    *kv = kp_gguf_find(g, key);
    if (!*kv)
        return kp_fail(KP_ERR_NOT_FOUND, "GGUF: metadata key '%s' is missing", key);
    return KP_OK;
}

static kp_status wrong_type(const char *key, const kp_gguf_kv *kv, const char *expected)
{
    return kp_fail(KP_ERR_FORMAT, "GGUF: metadata key '%s' has type %s, expected %s", key,
                   kp_gguf_vtype_name(kv->type), expected);
}

kp_status kp_gguf_get_int(const kp_gguf *g, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const kp_gguf_kv *kv;
    kp_status st = lookup(g, key, &kv);
    if (st)
        return st;
    if (!is_int_type(kv->type))
        return wrong_type(key, kv, "an integer");
    int in_range;
    if (is_signed_type(kv->type))
        in_range = kv->v.i >= lo && kv->v.i <= hi;
    else
        in_range = kv->v.u <= (uint64_t)INT64_MAX && (int64_t)kv->v.u >= lo && (int64_t)kv->v.u <= hi;
    if (!in_range) {
        if (is_signed_type(kv->type))
            return kp_fail(KP_ERR_FORMAT, "GGUF: metadata key '%s' = %lld is outside [%lld, %lld]", key,
                           (long long)kv->v.i, (long long)lo, (long long)hi);
        return kp_fail(KP_ERR_FORMAT, "GGUF: metadata key '%s' = %llu is outside [%lld, %lld]", key,
                       (unsigned long long)kv->v.u, (long long)lo, (long long)hi);
    }
    *out = is_signed_type(kv->type) ? kv->v.i : (int64_t)kv->v.u;
    return KP_OK;
}

kp_status kp_gguf_get_float(const kp_gguf *g, const char *key, double *out)
{
    const kp_gguf_kv *kv;
    kp_status st = lookup(g, key, &kv);
    if (st)
        return st;
    if (kv->type == KP_GGUF_F32 || kv->type == KP_GGUF_F64)
        *out = kv->v.f;
    else if (is_signed_type(kv->type))
        *out = (double)kv->v.i;
    else if (is_int_type(kv->type) && kv->type != KP_GGUF_BOOL)
        *out = (double)kv->v.u;
    else
        return wrong_type(key, kv, "a number");
    return KP_OK;
}

kp_status kp_gguf_get_bool(const kp_gguf *g, const char *key, int *out)
{
    const kp_gguf_kv *kv;
    kp_status st = lookup(g, key, &kv);
    if (st)
        return st;
    if (kv->type != KP_GGUF_BOOL)
        return wrong_type(key, kv, "bool");
    *out = kv->v.u != 0;
    return KP_OK;
}

kp_status kp_gguf_get_str(const kp_gguf *g, const char *key, kp_gguf_str *out)
{
    const kp_gguf_kv *kv;
    kp_status st = lookup(g, key, &kv);
    if (st)
        return st;
    if (kv->type != KP_GGUF_STR)
        return wrong_type(key, kv, "string");
    *out = kv->v.s;
    return KP_OK;
}

kp_status kp_gguf_get_arr(const kp_gguf *g, const char *key, kp_gguf_vtype elem, kp_gguf_arr *out)
{
    const kp_gguf_kv *kv;
    kp_status st = lookup(g, key, &kv);
    if (st)
        return st;
    if (kv->type != KP_GGUF_ARR)
        return wrong_type(key, kv, "array");
    if (elem != KP_GGUF_VTYPE_COUNT && kv->v.a.type != elem)
        return kp_fail(KP_ERR_FORMAT, "GGUF: metadata key '%s' is an array of %s, expected %s", key,
                       kp_gguf_vtype_name(kv->v.a.type), kp_gguf_vtype_name(elem));
    *out = kv->v.a;
    return KP_OK;
}

kp_status kp_gguf_get_int_or(const kp_gguf *g, const char *key, int64_t lo, int64_t hi, int64_t def,
                             int64_t *out)
{
    if (!kp_gguf_find(g, key)) {
        *out = def;
        return KP_OK;
    }
    return kp_gguf_get_int(g, key, lo, hi, out);
}

kp_status kp_gguf_get_float_or(const kp_gguf *g, const char *key, double def, double *out)
{
    if (!kp_gguf_find(g, key)) {
        *out = def;
        return KP_OK;
    }
    return kp_gguf_get_float(g, key, out);
}

kp_status kp_gguf_get_bool_or(const kp_gguf *g, const char *key, int def, int *out)
{
    if (!kp_gguf_find(g, key)) {
        *out = def;
        return KP_OK;
    }
    return kp_gguf_get_bool(g, key, out);
}

int64_t kp_gguf_arr_int(const kp_gguf_arr *a, uint64_t i)
{
    const uint8_t *p = a->data + i * kp_gguf_vtype_size(a->type);
    switch (a->type) {
    case KP_GGUF_U8:
    case KP_GGUF_BOOL: return p[0];
    case KP_GGUF_I8: return (int8_t)p[0];
    case KP_GGUF_U16: return ld16(p);
    case KP_GGUF_I16: return (int16_t)ld16(p);
    case KP_GGUF_U32: return ld32(p);
    case KP_GGUF_I32: return (int32_t)ld32(p);
    case KP_GGUF_U64: return (int64_t)ld64(p); /* values above INT64_MAX wrap; callers range-check */
    case KP_GGUF_I64: return (int64_t)ld64(p);
    default: return 0;
    }
}

double kp_gguf_arr_float(const kp_gguf_arr *a, uint64_t i)
{
    if (a->type == KP_GGUF_F32) {
        float f;
        memcpy(&f, a->data + i * 4, 4);
        return f;
    }
    if (a->type == KP_GGUF_F64) {
        double d;
        memcpy(&d, a->data + i * 8, 8);
        return d;
    }
    return (double)kp_gguf_arr_int(a, i);
}

void kp_gguf_arr_strings(const kp_gguf_arr *a, kp_gguf_str *strings)
{
    /* lengths were validated when the file was opened */
    const uint8_t *p = a->data;
    for (uint64_t i = 0; i < a->n; i++) {
        uint64_t n = ld64(p);
        strings[i].p = (const char *)p + 8;
        strings[i].n = (size_t)n;
        p += 8 + n;
    }
}
