/* The session state file keeps the KV cache position-major (a position's heads side by side),
 * so a file saved through one backend loads through another that lays its cache out otherwise.
 * A head-major cache holds each head's first n_pos positions in one piece: one transfer per
 * head, then a transpose on the host. */
#include <string.h>

#include "kv_rows.h"

static size_t elem_bytes(const kp_kv_shape *s) { return s->type == KP_KV_F16 ? 2 : 4; }

kp_status kp_kv_rows_download(kp_backend *be, void *rows, const void *cache, const kp_kv_shape *shape,
                              int32_t n_pos, void *tmp)
{
    const size_t es = elem_bytes(shape), hb = es * (size_t)shape->head_dim, row = hb * (size_t)shape->n_head_kv;
    if (be->ops->kv_layout == KP_KV_POS_MAJOR)
        return be->ops->download(be, rows, cache, (size_t)n_pos * row);
    for (int32_t h = 0; h < shape->n_head_kv; h++) {
        const char *from = (const char *)cache + kp_kv_index(KP_KV_HEAD_MAJOR, shape, 0, h, 0) * es;
        kp_status st = be->ops->download(be, (char *)tmp + (size_t)h * n_pos * hb, from, (size_t)n_pos * hb);
        if (st)
            return st;
    }
    for (int32_t p = 0; p < n_pos; p++)
        for (int32_t h = 0; h < shape->n_head_kv; h++)
            memcpy((char *)rows + (size_t)p * row + (size_t)h * hb, (char *)tmp + ((size_t)h * n_pos + p) * hb, hb);
    return KP_OK;
}

kp_status kp_kv_rows_upload(kp_backend *be, void *cache, const void *rows, const kp_kv_shape *shape,
                            int32_t n_pos, void *tmp)
{
    const size_t es = elem_bytes(shape), hb = es * (size_t)shape->head_dim, row = hb * (size_t)shape->n_head_kv;
    if (be->ops->kv_layout == KP_KV_POS_MAJOR)
        return be->ops->upload(be, cache, rows, (size_t)n_pos * row);
    for (int32_t p = 0; p < n_pos; p++)
        for (int32_t h = 0; h < shape->n_head_kv; h++)
            memcpy((char *)tmp + ((size_t)h * n_pos + p) * hb, (const char *)rows + (size_t)p * row + (size_t)h * hb, hb);
    for (int32_t h = 0; h < shape->n_head_kv; h++) {
        char *to = (char *)cache + kp_kv_index(KP_KV_HEAD_MAJOR, shape, 0, h, 0) * es;
        kp_status st = be->ops->upload(be, to, (char *)tmp + (size_t)h * n_pos * hb, (size_t)n_pos * hb);
        if (st)
            return st;
    }
    return KP_OK;
}
