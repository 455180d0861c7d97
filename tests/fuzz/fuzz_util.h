/* Helpers shared by the fuzz targets in this folder. Every target defines
 * LLVMFuzzerTestOneInput (and may define LLVMFuzzerInitialize); it is linked either with
 * libFuzzer (-Dfuzz=true, clang) or with replay.c, which runs files through it as a test.
 * A target reports a finding by crashing (abort(), or a sanitizer report). */
#ifndef KP_FUZZ_UTIL_H
#define KP_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testdata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A failed property: says which and aborts, so both libFuzzer and the replay test see it. */
#define KP_FUZZ_CHECK(cond)                                                                          \
    do {                                                                                             \
        if (!(cond)) {                                                                               \
            fprintf(stderr, "%s:%d: fuzz property failed: %s\n", __FILE__, __LINE__, #cond);        \
            abort();                                                                                 \
        }                                                                                            \
    } while (0)

/* Splits an input into a text to use and a file: a 2-byte little-endian text length, that
 * many bytes of text (clamped to what is there), then the file. */
static inline void kp_fuzz_split(const uint8_t *data, size_t size, const char **text, size_t *tlen,
                                 const uint8_t **file, size_t *flen)
{
    size_t n = size >= 2 ? (size_t)data[0] | (size_t)data[1] << 8 : 0;
    size_t rest = size >= 2 ? size - 2 : 0;
    if (n > rest)
        n = rest;
    *text = (const char *)data + (size >= 2 ? 2 : size);
    *tlen = n;
    *file = data + (size >= 2 ? 2 : size) + n;
    *flen = rest - n;
}

/* Writes `data` to an in-memory file and returns a path that opens it (for APIs that take
 * paths); the same file is reused by every call. NULL if the system has no memfd. */
static inline const char *kp_fuzz_path_for(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("kp-fuzz", 0);
        if (fd < 0)
            return NULL;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        return NULL;
    return path;
}

/* A file of the shared test data, read whole (NUL added); NULL, with a note, if absent. */
static inline char *kp_fuzz_shared(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", kp_test_data_dir(), rel);
    char *d = kp_test_slurp(path, len);
    if (!d)
        fprintf(stderr, "fuzz: %s not found; the parts of the target that need it are off\n", path);
    return d;
}

/* Simple deterministic generator for targets that derive choices from the input. */
static inline uint32_t kp_fuzz_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}

#endif
