/* safetensors: an 8-byte little-endian header length, a JSON header naming every tensor's dtype,
 * shape and byte range, then the data. Views borrow the caller's bytes (a mapped file). */
#ifndef KP_SAFETENSORS_H
#define KP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../internal.h"
#include "../tensor.h"

typedef struct kp_st_tensor {
    const char *name;     /* NUL-terminated copy owned by the kp_safetensors */
    kp_dtype dtype;       /* KP_DTYPE_COUNT for a dtype we do not read */
    char dtype_name[8];   /* as written in the header ("BF16", "I64", ...) */
    int ndim;             /* 0..4 */
    int64_t shape[4];     /* outermost first, as in the file */
    const void *data;
    size_t nbytes;
} kp_st_tensor;

typedef struct kp_safetensors {
    const kp_allocator *alloc;
    kp_st_tensor *tensors;
    size_t n;
    char *names;          /* every name, back to back */
    size_t names_size;
} kp_safetensors;

/* Parses the header of `size` bytes at `data` and checks every tensor against the file: known
 * sizes, ranges inside the data area, no overlap, shape consistent with byte count. `what`
 * names the file in messages. Tensors with other dtypes are listed (dtype KP_DTYPE_COUNT), so the
 * caller can name the one it cannot use. */
kp_status kp_safetensors_open(const kp_allocator *a, const uint8_t *data, size_t size, const char *what,
                              kp_safetensors **out);
void kp_safetensors_free(kp_safetensors *st);
const kp_st_tensor *kp_safetensors_find(const kp_safetensors *st, const char *name);

#endif
