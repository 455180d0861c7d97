/* safetensors reader. The header is untrusted JSON: every number is range-checked before it is
 * used in arithmetic, and tensors are checked against each other for overlap. */
#include <stdlib.h>
#include <string.h>

#include "../json.h"
#include "safetensors.h"

/* Larger headers exist only in hostile files; real ones are a few hundred KiB at most. */
#define MAX_HEADER (100u << 20)

static const struct {
    const char *name;
    kp_dtype dtype;
    size_t size;
} DTYPES[] = {
    {"F32", KP_DTYPE_F32, 4},   {"F16", KP_DTYPE_F16, 2},     {"BF16", KP_DTYPE_BF16, 2},
    {"F64", KP_DTYPE_COUNT, 8}, {"I64", KP_DTYPE_COUNT, 8},   {"I32", KP_DTYPE_COUNT, 4},
    {"I16", KP_DTYPE_COUNT, 2}, {"I8", KP_DTYPE_COUNT, 1},    {"U8", KP_DTYPE_COUNT, 1},
    {"BOOL", KP_DTYPE_COUNT, 1}, {"U16", KP_DTYPE_COUNT, 2},  {"U32", KP_DTYPE_COUNT, 4},
    {"U64", KP_DTYPE_COUNT, 8}, {"F8_E4M3", KP_DTYPE_COUNT, 1}, {"F8_E5M2", KP_DTYPE_COUNT, 1},
};

void kp_safetensors_free(kp_safetensors *st)
{
    if (!st)
        return;
    kp_dealloc(st->alloc, st->tensors, st->n * sizeof *st->tensors);
    kp_dealloc(st->alloc, st->names, st->names_size);
    kp_dealloc(st->alloc, st, sizeof *st);
}

const kp_st_tensor *kp_safetensors_find(const kp_safetensors *st, const char *name)
{
    for (size_t i = 0; i < st->n; i++)
        if (strcmp(st->tensors[i].name, name) == 0)
            return &st->tensors[i];
    return NULL;
}

/* Member names point into the source text and are not NUL-terminated. */
static int is_metadata(const kp_json *e)
{
    return e->key_len == 12 && memcmp(e->key, "__metadata__", 12) == 0;
}

static int listed(const kp_safetensors *s, const char *name, size_t k)
{
    for (size_t i = 0; i < k; i++)
        if (strcmp(s->tensors[i].name, name) == 0)
            return 1;
    return 0;
}

static int by_offset(const void *a, const void *b)
{
    const kp_st_tensor *x = *(const kp_st_tensor *const *)a, *y = *(const kp_st_tensor *const *)b;
    uintptr_t px = (uintptr_t)x->data, py = (uintptr_t)y->data;
    return px < py ? -1 : px > py;
}

/* One header entry into t; `base`/`avail` are the data area. */
static kp_status read_entry(const kp_json *e, const uint8_t *base, size_t avail, const char *what,
                            kp_st_tensor *t)
{
    const char *nm = t->name;
    if (e->type != KP_JSON_OBJECT)
        return kp_fail(KP_ERR_FORMAT, "%s: header entry '%.80s' is not an object", what, nm);
    const kp_json *dt = kp_json_get_type(e, "dtype", KP_JSON_STRING);
    const kp_json *shape = kp_json_get_type(e, "shape", KP_JSON_ARRAY);
    const kp_json *offs = kp_json_get_type(e, "data_offsets", KP_JSON_ARRAY);
    if (!dt || !shape || !offs || offs->len != 2)
        return kp_fail(KP_ERR_FORMAT, "%s: tensor '%.80s' needs \"dtype\", \"shape\" and two \"data_offsets\"",
                       what, nm);
    size_t esize = 0;
    t->dtype = KP_DTYPE_COUNT;
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (kp_json_str_eq(dt, DTYPES[i].name)) {
            t->dtype = DTYPES[i].dtype;
            esize = DTYPES[i].size;
            memcpy(t->dtype_name, DTYPES[i].name, strlen(DTYPES[i].name) + 1);
        }
    if (!esize)
        return kp_fail(KP_ERR_FORMAT, "%s: tensor '%.80s' has an unknown dtype '%.16s'", what, nm, dt->u.str);
    if (shape->len > 4)
        return kp_fail(KP_ERR_UNSUPPORTED, "%s: tensor '%.80s' has %u dimensions (at most 4 are supported)", what,
                       nm, (unsigned)shape->len);
    t->ndim = (int)shape->len;
    size_t count = 1;
    for (int d = 0; d < 4; d++) {
        int64_t v = 1;
        if (d < t->ndim && !kp_json_int(&shape->u.kids[d], 0, INT64_C(1) << 40, &v))
            return kp_fail(KP_ERR_FORMAT, "%s: tensor '%.80s' has a bad dimension %d", what, nm, d);
        t->shape[d] = v;
        if (!kp_mul_ok(count, (size_t)v, &count))
            return kp_fail(KP_ERR_FORMAT, "%s: tensor '%.80s' has an absurd shape", what, nm);
    }
    int64_t b, en;
    if (!kp_json_int(&offs->u.kids[0], 0, INT64_MAX, &b) || !kp_json_int(&offs->u.kids[1], 0, INT64_MAX, &en) ||
        b > en)
        return kp_fail(KP_ERR_FORMAT, "%s: tensor '%.80s' has bad data_offsets", what, nm);
    if ((uint64_t)en > avail)
        return kp_fail(KP_ERR_FORMAT, "%s: tensor '%.80s' ends at data byte %lld, past the file's %zu data bytes",
                       what, nm, (long long)en, avail);
    size_t need;
    if (!kp_mul_ok(count, esize, &need) || need != (size_t)(en - b))
        return kp_fail(KP_ERR_FORMAT, "%s: tensor '%.80s' has %lld bytes, its shape and dtype need %zu", what, nm,
                       (long long)(en - b), need);
    t->data = base + b;
    t->nbytes = need;
    return KP_OK;
}

kp_status kp_safetensors_open(const kp_allocator *a, const uint8_t *data, size_t size, const char *what,
                              kp_safetensors **out)
{
    *out = NULL;
    a = kp_allocator_or_default(a);
    if (size < 8)
        return kp_fail(KP_ERR_FORMAT, "%s: %zu bytes is too short for a safetensors file", what, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | data[i];
    if (hlen < 2 || hlen > MAX_HEADER || hlen > size - 8)
        return kp_fail(KP_ERR_FORMAT, "%s: header length %llu does not fit the file's %zu bytes (or exceeds %u MiB)",
                       what, (unsigned long long)hlen, size, MAX_HEADER >> 20);
    kp_json_doc *doc = NULL;
    kp_status st = kp_json_parse(a, (const char *)data + 8, (size_t)hlen, what, &doc);
    if (st)
        return st;
    const kp_json *root = kp_json_root(doc);
    kp_safetensors *s = NULL;
    const kp_st_tensor **order = NULL;
    size_t n = 0, names = 0;
    if (root->type != KP_JSON_OBJECT) {
        st = kp_fail(KP_ERR_FORMAT, "%s: the header is not a JSON object", what);
        goto done;
    }
    for (uint32_t i = 0; i < root->len; i++)
        if (!is_metadata(&root->u.kids[i])) {
            n++;
            names += root->u.kids[i].key_len + 1;
        }
    s = kp_calloc(a, 1, sizeof *s);
    if (!s) {
        st = KP_ERR_OUT_OF_MEMORY;
        goto done;
    }
    s->alloc = a;
    s->tensors = kp_calloc(a, n ? n : 1, sizeof *s->tensors);
    s->n = n;
    s->names = kp_alloc(a, names ? names : 1);
    s->names_size = names ? names : 1;
    order = kp_alloc(a, (n ? n : 1) * sizeof *order);
    if (!s->tensors || !s->names || !order) {
        st = KP_ERR_OUT_OF_MEMORY;
        goto done;
    }
    const uint8_t *base = data + 8 + hlen;
    const size_t avail = size - 8 - (size_t)hlen;
    size_t k = 0, off = 0;
    for (uint32_t i = 0; i < root->len; i++) {
        const kp_json *e = &root->u.kids[i];
        if (is_metadata(e))
            continue;
        kp_st_tensor *t = &s->tensors[k];
        if (memchr(e->key, 0, e->key_len)) {
            st = kp_fail(KP_ERR_FORMAT, "%s: a tensor name contains a NUL byte", what);
            goto done;
        }
        memcpy(s->names + off, e->key, e->key_len);
        s->names[off + e->key_len] = 0;
        t->name = s->names + off;
        off += e->key_len + 1;
        if ((st = read_entry(e, base, avail, what, t)))
            goto done;
        if (listed(s, t->name, k)) {
            st = kp_fail(KP_ERR_FORMAT, "%s: tensor '%.80s' is listed twice", what, t->name);
            goto done;
        }
        order[k++] = t;
    }
    qsort(order, n, sizeof *order, by_offset);
    for (size_t i = 1; i < n; i++)
        if ((const uint8_t *)order[i - 1]->data + order[i - 1]->nbytes > (const uint8_t *)order[i]->data) {
            st = kp_fail(KP_ERR_FORMAT, "%s: tensors '%.80s' and '%.80s' overlap", what, order[i - 1]->name,
                         order[i]->name);
            goto done;
        }
done:
    kp_dealloc(a, order, (n ? n : 1) * sizeof *order);
    kp_json_free(doc);
    if (st) {
        kp_safetensors_free(s);
        return st;
    }
    *out = s;
    return KP_OK;
}
