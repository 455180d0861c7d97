/* The contract between libkuiper and libkuiper-cuda.so, the CUDA backend built as a separate
 * module. libkuiper never links the CUDA runtime: it dlopen()s the module on the first request
 * for a CUDA backend, so one built libkuiper runs on machines without CUDA. The module exports
 * one function returning a table; `abi` guards against a module from another libkuiper build.
 *
 * The module cannot call libkuiper's hidden functions (kp_fail among them), so it reports a
 * failure as a status plus text it keeps per backend; cuda_backend.c turns that into kp_fail. */
#ifndef KP_CUDA_MODULE_H
#define KP_CUDA_MODULE_H

#include <stddef.h>

#include "../backend.h"

#define KP_CUDA_MODULE_FILE "libkuiper-cuda.so"
#define KP_CUDA_MODULE_ENTRY "kp_cuda_module_get"
/* Bump on any change of kp_cuda_module_api's layout or meaning, or of kp_backend_ops, kp_tensor
 * or kp_attn_args (the module is compiled against them). */
#define KP_CUDA_MODULE_ABI 2

typedef struct kp_cuda_module_api {
    int abi; /* KP_CUDA_MODULE_ABI of the module's build */
    /* Number of usable CUDA devices; 0 with the runtime's reason written to why[cap] when the
     * driver or a device is missing. Never aborts. */
    int (*device_count)(char *why, size_t cap);
    /* A backend on the current device with its own stream and memory pool. On failure the
     * status and why[cap]; `a` only allocates host-side bookkeeping. */
    kp_status (*backend_new)(const kp_allocator *a, kp_backend **out, char *why, size_t cap);
    /* Text for the last non-OK status an op of this backend returned (or recorded, for the
     * void ops: those failures stick until the next sync or download returns them). */
    const char *(*error_text)(kp_backend *be);
    /* Tests: the n-th device allocation from now (0 = the next) fails as if the device were
     * full, in every backend of the process; -1 switches this off. */
    void (*fail_alloc_after)(long n);
    /* Tests: gives every cached, unused buffer of this backend back to the device. */
    void (*trim)(kp_backend *be);
} kp_cuda_module_api;

typedef const kp_cuda_module_api *(*kp_cuda_module_entry_fn)(void);

#endif
