/* The CUDA backend's entry point. Kernels are a later milestone; for now this loads the CUDA
 * module (libkuiper-cuda.so, see module.h) and reports whether a device exists, so callers get
 * KP_ERR_UNSUPPORTED with a reason instead of a crash or a missing-library error at load time. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../backend.h"
#include "../../lib/internal.h"
#include "module.h"

#ifdef KP_HAVE_CUDA
/* Appends one reason to the list of places tried (truncated, never overflowing). */
static void note(char *tried, size_t cap, const char *path, const char *why)
{
    size_t len = strlen(tried);
    if (len < cap)
        snprintf(tried + len, cap - len, "%s%.300s%s%.300s", len ? "; " : "", path ? path : "",
                 path ? ": " : "", why ? why : "not loadable");
}

/* The module from $KP_CUDA_MODULE when set (the build tree's tests use it), else beside the
 * libkuiper that holds this function, else wherever the dynamic loader finds it. The handle is
 * never closed: a CUDA runtime does not survive being unloaded and loaded again. */
static const kp_cuda_module_api *load_module(char *tried, size_t cap)
{
    char paths[3][1024];
    int n = 0;
    const char *env = getenv("KP_CUDA_MODULE");
    if (env && *env)
        snprintf(paths[n++], sizeof paths[0], "%s", env);
    Dl_info info;
    if (dladdr((void *)kp_backend_cuda_new, &info) && info.dli_fname && strchr(info.dli_fname, '/')) {
        const char *slash = strrchr(info.dli_fname, '/');
        int dir = (int)(slash - info.dli_fname);
        if ((size_t)dir + sizeof "/" KP_CUDA_MODULE_FILE <= sizeof paths[0])
            snprintf(paths[n++], sizeof paths[0], "%.*s/%s", dir, info.dli_fname, KP_CUDA_MODULE_FILE);
    }
    snprintf(paths[n++], sizeof paths[0], "%s", KP_CUDA_MODULE_FILE);
    tried[0] = '\0';
    for (int i = 0; i < n; i++) {
        void *h = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            note(tried, cap, NULL, dlerror()); /* dlerror() names the file */
            continue;
        }
        kp_cuda_module_entry_fn entry;
        void *sym = dlsym(h, KP_CUDA_MODULE_ENTRY);
        memcpy(&entry, &sym, sizeof entry); /* ISO C has no object-to-function pointer cast */
        const kp_cuda_module_api *api = sym ? entry() : NULL;
        if (api && api->abi == KP_CUDA_MODULE_ABI)
            return api;
        note(tried, cap, paths[i], api ? "built for another libkuiper (module ABI differs)"
                                       : "no " KP_CUDA_MODULE_ENTRY " symbol");
        dlclose(h);
    }
    return NULL;
}
#endif

kp_status kp_backend_cuda_new(const kp_allocator *a, kp_backend **out)
{
    (void)a;
    *out = NULL;
#ifdef KP_HAVE_CUDA
    char tried[1024];
    const kp_cuda_module_api *api = load_module(tried, sizeof tried);
    if (!api)
        return kp_fail(KP_ERR_UNSUPPORTED, "no CUDA device: the CUDA module " KP_CUDA_MODULE_FILE
                       " could not be loaded (%s)", tried);
    char why[256] = "";
    int n = api->device_count(why, sizeof why);
    if (n <= 0)
        return kp_fail(KP_ERR_UNSUPPORTED, "no CUDA device (%s)", why[0] ? why : "none reported");
    return kp_fail(KP_ERR_UNSUPPORTED, "the CUDA backend has no kernels yet (%d device%s found)", n,
                   n == 1 ? "" : "s");
#else
    return kp_fail(KP_ERR_UNSUPPORTED,
                   "no CUDA device: libkuiper was built without CUDA (-Dcuda=disabled or no nvcc)");
#endif
}
