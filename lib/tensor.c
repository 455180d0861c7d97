/* kp_tensor helpers and its read-only public accessors. */
#include <string.h>

#include "internal.h"
#include "tensor.h"

void kp_tensor_init(kp_tensor *t, const char *name, kp_dtype dtype, int ndim, const int64_t *ne,
                    void *data)
{
    memset(t, 0, sizeof *t);
    t->name = name;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < KP_MAX_DIMS; i++)
        t->ne[i] = i < ndim ? ne[i] : 1;
    t->data = data;
    t->device = KP_DEVICE_CPU;
    t->nbytes = kp_dtype_row_bytes(dtype, t->ne[0]) * (size_t)kp_tensor_nrows(t);
}

int64_t kp_tensor_nelems(const kp_tensor *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

int64_t kp_tensor_nrows(const kp_tensor *t) { return t->ne[1] * t->ne[2] * t->ne[3]; }

kp_dtype kp_tensor_dtype(const kp_tensor *t) { return t ? t->dtype : KP_DTYPE_COUNT; }
int kp_tensor_ndim(const kp_tensor *t) { return t ? t->ndim : 0; }
int64_t kp_tensor_dim(const kp_tensor *t, int i)
{
    return (t && i >= 0 && i < KP_MAX_DIMS) ? t->ne[i] : 0;
}
kp_device kp_tensor_device(const kp_tensor *t) { return t ? t->device : KP_DEVICE_CPU; }
