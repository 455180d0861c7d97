/* The contract between libkuiper and libkuiper-cuda.so, the CUDA backend built as a separate
 * module. libkuiper never links the CUDA runtime: it dlopen()s the module on the first request
 * for a CUDA backend, so one built libkuiper runs on machines without CUDA. The module exports
 * one function returning a table; `abi` guards against a module from another libkuiper build. */
#ifndef KP_CUDA_MODULE_H
#define KP_CUDA_MODULE_H

#include <stddef.h>

#define KP_CUDA_MODULE_FILE "libkuiper-cuda.so"
#define KP_CUDA_MODULE_ENTRY "kp_cuda_module_get"
/* Bump on any change of kp_cuda_module_api's layout or meaning. */
#define KP_CUDA_MODULE_ABI 1

typedef struct kp_cuda_module_api {
    int abi; /* KP_CUDA_MODULE_ABI of the module's build */
    /* Number of usable CUDA devices; 0 with the runtime's reason written to why[cap] when the
     * driver or a device is missing. Never aborts. */
    int (*device_count)(char *why, size_t cap);
} kp_cuda_module_api;

typedef const kp_cuda_module_api *(*kp_cuda_module_entry_fn)(void);

#endif
