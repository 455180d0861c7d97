/* Weights go where the backend wants them: once, at load, after binding has checked every
 * shape. The CPU backend keeps the mapped file's pointers except for the matrices it packs for
 * its kernels; a device backend copies each tensor into its own memory, so the decoder only
 * ever passes backend pointers. */
#include "../mapfile.h"
#include "model.h"

static double mib(size_t n) { return (double)n / (1024.0 * 1024.0); }

kp_status kp_model_place(kp_model *m)
{
    kp_backend *be = m->be;
    const kp_backend_ops *op = be->ops;
    if (!op->place_weight)
        return KP_OK;
    size_t need = 0;
    for (size_t i = 0; i < m->tensors.n; i++)
        if (!m->tensors.items[i].placed)
            need += m->tensors.items[i].nbytes;
    if (op->mem_info) {
        size_t free_b = 0, total_b = 0;
        kp_status st = op->mem_info(be, &free_b, &total_b);
        if (st)
            return st;
        if (need > free_b)
            return kp_fail(KP_ERR_OUT_OF_MEMORY,
                           "the model's weights need %zu bytes (%.1f MiB) of %s memory; %zu bytes (%.1f MiB) "
                           "of %zu (%.1f MiB) are free",
                           need, mib(need), op->name, free_b, mib(free_b), total_b, mib(total_b));
    }
    for (size_t i = 0; i < m->tensors.n; i++) {
        kp_tensor *t = &m->tensors.items[i];
        if (t->placed)
            continue;
        t->host_data = t->data;
        t->host_scales = t->scales;
        kp_status st = op->place_weight(be, t);
        if (st) {
            /* the backend took nothing for this one; kp_model_unplace frees the others */
            t->data = t->host_data;
            t->scales = t->host_scales;
            t->device = KP_DEVICE_CPU;
            return st;
        }
        t->placed = 1;
        /* A copy was made of file data (not of a reader's own converted buffer): one copy in memory. */
        if (t->data != t->host_data && !t->owned)
            kp_file_map_release(t->host_data, t->nbytes);
        else if (!t->owned && t->data)
            kp_file_map_prefault(t->data, t->nbytes);
    }
    return KP_OK;
}

void kp_model_unplace(kp_model *m)
{
    if (!m->be)
        return;
    for (size_t i = 0; i < m->tensors.n; i++) {
        kp_tensor *t = &m->tensors.items[i];
        if (!t->placed)
            continue;
        m->be->ops->release_weight(m->be, t);
        t->data = t->host_data;
        t->scales = t->host_scales;
        t->device = KP_DEVICE_CPU;
        t->placed = 0;
    }
}
