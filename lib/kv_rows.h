/* A layer's K or V cache as position-major rows, whatever the backend's layout. */
#ifndef KP_KV_ROWS_H
#define KP_KV_ROWS_H

#include "../backends/backend.h"

/* Copies positions 0 .. n_pos-1 of `cache` (device, in be's kv_layout) into host `rows`
 * [n_pos][n_head_kv*head_dim] of the shape's type. `tmp` (host, caller-owned) holds as many
 * bytes as `rows`; a position-major backend does not touch it. */
kp_status kp_kv_rows_download(kp_backend *be, void *rows, const void *cache, const kp_kv_shape *shape,
                              int32_t n_pos, void *tmp);

/* The reverse: host `rows` into positions 0 .. n_pos-1 of `cache`; `tmp` as above. */
kp_status kp_kv_rows_upload(kp_backend *be, void *cache, const void *rows, const kp_kv_shape *shape,
                            int32_t n_pos, void *tmp);

#endif
