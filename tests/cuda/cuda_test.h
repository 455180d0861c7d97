/* Helpers for the CUDA tests: a CUDA backend or a loud skip (exit 77, meson's skip code), and
 * device buffers filled from and read back to the host through the backend's own ops. */
#ifndef KP_CUDA_TEST_H
#define KP_CUDA_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "lib/internal.h"

#define CUDA_SKIP 77

/* The CUDA backend, or NULL after a loud SKIP line. Without a device the status must be
 * KP_ERR_UNSUPPORTED with "no CUDA device" in the message: that much is checked everywhere. */
static inline kp_backend *cuda_backend_or_skip(const char *test, int *bad)
{
    kp_backend *be = NULL;
    kp_status st = kp_backend_cuda_new(NULL, &be);
    if (st == KP_OK)
        return be;
    if (st != KP_ERR_UNSUPPORTED || !strstr(kp_error_text(), "no CUDA device")) {
        fprintf(stderr, "FAIL: %s: kp_backend_cuda_new gave %d (%s), not KP_ERR_UNSUPPORTED \"no CUDA device\"\n",
                test, (int)st, kp_error_text());
        *bad = 1;
        return NULL;
    }
    fprintf(stderr, "\n*** SKIP: %s needs a CUDA GPU: %s ***\n\n", test, kp_error_text());
    return NULL;
}

static inline void *dev_from(kp_backend *be, const void *host, size_t n)
{
    void *d = be->ops->buf_alloc(be, n ? n : 1);
    if (!d || (n && be->ops->upload(be, d, host, n) != KP_OK)) {
        fprintf(stderr, "test: device buffer of %zu bytes: %s\n", n, kp_error_text());
        abort();
    }
    return d;
}

static inline void to_host(kp_backend *be, void *host, const void *dev, size_t n)
{
    if (be->ops->sync(be) != KP_OK || be->ops->download(be, host, dev, n) != KP_OK) {
        fprintf(stderr, "test: download of %zu bytes: %s\n", n, kp_error_text());
        abort();
    }
}

#endif
