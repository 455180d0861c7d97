/* Where the shared test data lives, and loud skipping when it does not. */
#ifndef KP_TESTDATA_H
#define KP_TESTDATA_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#ifndef KP_DEFAULT_TEST_DATA
#define KP_DEFAULT_TEST_DATA "../shared"
#endif

/* The shared data folder: $KP_TEST_DATA, else the build-time default (../shared beside the
 * source tree). */
static inline const char *kp_test_data_dir(void)
{
    const char *d = getenv("KP_TEST_DATA");
    return (d && *d) ? d : KP_DEFAULT_TEST_DATA;
}

/* Joins the data dir and `rel` into `buf`; returns buf if the file exists, else prints a loud
 * SKIP line to stderr and returns NULL. */
static inline const char *kp_test_file(char *buf, size_t cap, const char *rel)
{
    struct stat st;
    snprintf(buf, cap, "%s/%s", kp_test_data_dir(), rel);
    if (stat(buf, &st) != 0) {
        fprintf(stderr,
                "\n*** SKIP: test data '%s' not found (set KP_TEST_DATA to the shared/ folder) ***\n\n",
                buf);
        return NULL;
    }
    return buf;
}

/* Reads a whole file into a malloc'd buffer (NUL added); NULL on failure. */
static inline char *kp_test_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        if (len)
            *len = (size_t)n;
    }
    return b;
}

#endif
