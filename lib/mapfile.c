/* Whole-file read-only mmap: weights are used in place unless a backend copies them. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "mapfile.h"

kp_status kp_file_map(const char *path, kp_mapped_file *out)
{
    out->data = NULL;
    out->size = 0;
    if (!path)
        return kp_fail(KP_ERR_INVALID_ARG, "file path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kp_fail(KP_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return kp_fail(KP_ERR_IO, "'%s' is not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return KP_OK;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (p == MAP_FAILED)
        return kp_fail(KP_ERR_IO, "cannot map '%s': %s", path, strerror(err));
#ifdef MADV_HUGEPAGE
    /* On a page-cache miss the kernel then reads the file into 2 MiB folios and maps them whole;
     * otherwise our prefaults, a tensor at a time, leave small folios that every later reader of
     * the file streams up to a third slower (docs/cpu-backend.md). Advice only: failure
     * changes nothing. */
    (void)madvise(p, (size_t)st.st_size, MADV_HUGEPAGE);
#endif
    out->data = p;
    out->size = (size_t)st.st_size;
    return KP_OK;
}

void kp_file_unmap(kp_mapped_file *f)
{
    if (f->data)
        munmap((void *)f->data, f->size);
    f->data = NULL;
    f->size = 0;
}

void kp_file_map_release(const void *p, size_t n)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    if (!p || page == 0 || (page & (page - 1)))
        return;
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1), hi = ((uintptr_t)p + n) & ~(page - 1);
    if (hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_DONTNEED); /* advice only: failure changes nothing */
}

void kp_file_map_prefault(const void *p, size_t n)
{
#ifdef MADV_POPULATE_READ
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    if (!p || page == 0 || (page & (page - 1)))
        return;
    uintptr_t lo = (uintptr_t)p & ~(page - 1), hi = ((uintptr_t)p + n + page - 1) & ~(page - 1);
    (void)madvise((void *)lo, hi - lo, MADV_POPULATE_READ); /* older kernels: EINVAL, faults as before */
#else
    (void)p;
    (void)n;
#endif
}
