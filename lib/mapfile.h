/* Read-only memory mapping of a whole file. */
#ifndef KP_MAPFILE_H
#define KP_MAPFILE_H

#include <stddef.h>
#include <stdint.h>

#include "kuiper/kuiper.h"

typedef struct kp_mapped_file {
    const uint8_t *data;
    size_t size;
} kp_mapped_file;

/* Maps `path` read-only, advised to use huge pages (mapfile.c says why); an empty file maps
 * to (NULL, 0). */
kp_status kp_file_map(const char *path, kp_mapped_file *out);
void kp_file_unmap(kp_mapped_file *f);
/* Drops the whole pages of [p, p + n), a range of a kp_file_map mapping, from this process's
 * resident memory; a later read faults them back in from the file. For weights a backend has
 * copied: without it the file's pages stay resident beside the copy. */
void kp_file_map_release(const void *p, size_t n);
/* Maps the pages of [p, p + n) in now, reading them from the file if needed: weights used in
 * place are then read in one sequential pass at load, not page fault by page fault in the
 * first prompt (that cost the first prompt of the 110M F32 model ~200 ms). */
void kp_file_map_prefault(const void *p, size_t n);

#endif
