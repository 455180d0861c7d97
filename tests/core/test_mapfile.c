/* lib/mapfile.c: a whole file mapped read-only, its errors, and the huge-page advice that lets
 * the kernel read a cold file into 2 MiB folios (docs/cpu-backend.md, "Page cache folios"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/mapfile.h"

#define FILE_BYTES ((size_t)5 << 20) /* spans whole 2 MiB extents */

static uint8_t pattern(size_t i) { return (uint8_t)((i * 131u + (i >> 12)) & 0xff); }

static void write_pattern(char *path)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < FILE_BYTES; i++)
        fputc(pattern(i), f);
    assert_int_equal(fclose(f), 0);
}

static void maps_the_bytes(void **state)
{
    (void)state;
    char path[] = "/tmp/kp_map_XXXXXX";
    write_pattern(path);
    kp_mapped_file m;
    assert_int_equal(kp_file_map(path, &m), KP_OK);
    assert_int_equal(m.size, FILE_BYTES);
    for (size_t i = 0; i < FILE_BYTES; i += 4093)
        assert_int_equal(m.data[i], pattern(i));
    /* both are advice over the mapping: the bytes read afterwards are the file's */
    kp_file_map_prefault(m.data + 100, FILE_BYTES - 200);
    kp_file_map_release(m.data + 4096, 3 * 4096);
    assert_int_equal(m.data[5000], pattern(5000));
    kp_file_unmap(&m);
    assert_null(m.data);
    assert_int_equal(m.size, 0);
    unlink(path);
}

/* The flag the kernel shows for a mapping advised MADV_HUGEPAGE is "hg" in its smaps VmFlags. */
static int mapping_has_flag(const void *addr, const char *flag)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[512];
    int in = 0, found = 0;
    const uintptr_t a = (uintptr_t)addr;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) /* a mapping's first line */
            in = a >= lo && a < hi;
        else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            char needle[8];
            snprintf(needle, sizeof needle, " %s", flag);
            found = strstr(line + 8, needle) != NULL;
            break;
        }
    }
    fclose(f);
    return found;
}

static void advises_huge_pages(void **state)
{
    (void)state;
    char mode[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f) {
        if (!fgets(mode, sizeof mode, f))
            mode[0] = 0;
        fclose(f);
    }
    if (!mode[0] || strstr(mode, "[never]")) {
        print_message("SKIP: transparent huge pages are off or absent here ('%s')\n", mode);
        skip();
    }
    char path[] = "/tmp/kp_map_XXXXXX";
    write_pattern(path);
    kp_mapped_file m;
    assert_int_equal(kp_file_map(path, &m), KP_OK);
    int hg = mapping_has_flag(m.data, "hg");
    kp_file_unmap(&m);
    unlink(path);
    if (hg < 0) {
        print_message("SKIP: /proc/self/smaps is not readable here\n");
        skip();
    }
    assert_int_equal(hg, 1);
}

static void errors(void **state)
{
    (void)state;
    kp_mapped_file m = {(const uint8_t *)"x", 1};
    assert_int_equal(kp_file_map(NULL, &m), KP_ERR_INVALID_ARG);
    assert_null(m.data);
    assert_int_equal(kp_file_map("/nonexistent/kp_no_such_file", &m), KP_ERR_IO);
    assert_int_equal(kp_file_map("/tmp", &m), KP_ERR_IO); /* a directory */
    assert_null(m.data);
    char path[] = "/tmp/kp_map_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(kp_file_map(path, &m), KP_OK); /* empty: nothing to map */
    assert_null(m.data);
    assert_int_equal(m.size, 0);
    kp_file_unmap(&m);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(maps_the_bytes),
        cmocka_unit_test(advises_huge_pages),
        cmocka_unit_test(errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
