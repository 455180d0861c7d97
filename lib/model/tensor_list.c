/* A flat list of named tensors; lookups are linear because models have a few hundred at most
 * and binding happens once per load. */
#include <string.h>

#include "model.h"

void kp_tensor_list_init(kp_tensor_list *l, const kp_allocator *a)
{
    l->items = NULL;
    l->n = l->cap = 0;
    l->alloc = kp_allocator_or_default(a);
}

static kp_tensor *drop(kp_tensor_list *l, const kp_tensor *t)
{
    if (t->owned)
        kp_dealloc(l->alloc, t->data, t->nbytes);
    return NULL;
}

kp_tensor *kp_tensor_list_add(kp_tensor_list *l, const kp_tensor *t)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        kp_tensor *d = kp_realloc(l->alloc, l->items, l->cap * sizeof *d, nc * sizeof *d);
        if (!d)
            return drop(l, t);
        l->items = d;
        l->cap = nc;
    }
    const char *src = t->name ? t->name : "";
    char *name = kp_strndup(l->alloc, src, strlen(src));
    if (!name)
        return drop(l, t);
    kp_tensor *dst = &l->items[l->n++];
    *dst = *t;
    dst->name = name;
    return dst;
}

kp_tensor *kp_tensor_list_find(const kp_tensor_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].name, name) == 0)
            return &l->items[i];
    return NULL;
}

void kp_tensor_list_free(kp_tensor_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        kp_dealloc(l->alloc, (void *)l->items[i].name, strlen(l->items[i].name) + 1);
        if (l->items[i].owned)
            kp_dealloc(l->alloc, l->items[i].data, l->items[i].nbytes);
    }
    kp_dealloc(l->alloc, l->items, l->cap * sizeof *l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}
