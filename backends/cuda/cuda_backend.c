/* The CUDA backend's entry point in libkuiper: loads the CUDA module (libkuiper-cuda.so, see
 * module.h), asks it for a backend, and wraps the ops that return a status so that the module's
 * text reaches kp_fail. Without the module or a device, KP_ERR_UNSUPPORTED with the reason. */
#include <dlfcn.h>
#include <pthread.h>
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

static const kp_cuda_module_api *g_api;
static kp_backend_ops g_ops; /* the module's ops with the status-returning ones wrapped */
static pthread_mutex_t g_load_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_tried[1024];

static kp_status failed(kp_backend *be, kp_status st)
{
    return st ? kp_fail(st, "%s", g_api->error_text(be)) : KP_OK;
}

/* The module's own ops, reached through the table the backend was created with. */
typedef struct wrapped {
    const kp_backend_ops *mod;
} wrapped;
static wrapped g_mod;

static kp_status w_upload(kp_backend *be, void *dst, const void *src, size_t n)
{
    return failed(be, g_mod.mod->upload(be, dst, src, n));
}
static kp_status w_download(kp_backend *be, void *dst, const void *src, size_t n)
{
    return failed(be, g_mod.mod->download(be, dst, src, n));
}
static kp_status w_sync(kp_backend *be) { return failed(be, g_mod.mod->sync(be)); }
static kp_status w_place(kp_backend *be, kp_tensor *t) { return failed(be, g_mod.mod->place_weight(be, t)); }
static kp_status w_mem_info(kp_backend *be, size_t *f, size_t *t)
{
    return failed(be, g_mod.mod->mem_info(be, f, t));
}

/* A module that loaded stays loaded; a failed attempt is made again on the next request, so a
 * module installed (or KP_CUDA_MODULE set) later is found without restarting the process. */
static kp_status api_get(void)
{
    char tried[sizeof g_tried];
    pthread_mutex_lock(&g_load_mu);
    if (!g_api)
        g_api = load_module(g_tried, sizeof g_tried);
    const int ok = g_api != NULL;
    memcpy(tried, g_tried, sizeof tried);
    pthread_mutex_unlock(&g_load_mu);
    if (!ok)
        return kp_fail(KP_ERR_UNSUPPORTED, "no CUDA device: the CUDA module " KP_CUDA_MODULE_FILE
                       " could not be loaded (%s)", tried);
    return KP_OK;
}
#endif

kp_status kp_backend_cuda_new(const kp_allocator *a, kp_backend **out)
{
    (void)a;
    *out = NULL;
#ifdef KP_HAVE_CUDA
    kp_status st = api_get();
    if (st)
        return st;
    char why[512] = "";
    int n = g_api->device_count(why, sizeof why);
    if (n <= 0)
        return kp_fail(KP_ERR_UNSUPPORTED, "no CUDA device (%s)", why[0] ? why : "none reported");
    kp_backend *be = NULL;
    st = g_api->backend_new(kp_allocator_or_default(a), &be, why, sizeof why);
    if (st)
        return kp_fail(st, "%s", why[0] ? why : "the CUDA backend could not be created");
    /* Every backend of the module shares one ops table, so one wrapped copy serves all. */
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);
    if (!g_mod.mod) {
        g_ops = *be->ops;
        g_ops.upload = w_upload;
        g_ops.download = w_download;
        g_ops.sync = w_sync;
        g_ops.place_weight = w_place;
        g_ops.mem_info = w_mem_info;
        g_mod.mod = be->ops;
    }
    pthread_mutex_unlock(&mu);
    be->ops = &g_ops;
    *out = be;
    return KP_OK;
#else
    return kp_fail(KP_ERR_UNSUPPORTED,
                   "no CUDA device: libkuiper was built without CUDA (-Dcuda=disabled or no nvcc)");
#endif
}

kp_status kp_backend_cuda_test_fail_alloc(long n)
{
#ifdef KP_HAVE_CUDA
    kp_status st = api_get();
    if (st)
        return st;
    g_api->fail_alloc_after(n);
    return KP_OK;
#else
    (void)n;
    return kp_fail(KP_ERR_UNSUPPORTED, "no CUDA device: libkuiper was built without CUDA");
#endif
}

void kp_backend_cuda_test_trim(kp_backend *be)
{
#ifdef KP_HAVE_CUDA
    if (g_api && be && be->device == KP_DEVICE_CUDA)
        g_api->trim(be);
#else
    (void)be;
#endif
}
