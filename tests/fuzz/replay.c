/* Stand-in for libFuzzer in ordinary builds: runs every file named on the command line, and
 * every file inside a named folder, through the target once, so the committed corpora are
 * regression tests. Exits non-zero if an argument cannot be read; a failed property aborts.
 * KP_FUZZ_VERBOSE=1 prints each file as it goes. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"
#include "lib/internal.h"

/* Targets without an initializer get this one (a weak definition). */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static int run_file(const char *path)
{
    size_t n = 0;
    char *d = kp_test_slurp(path, &n);
    if (!d) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return 1;
    }
    /* an exact-size copy, so that reading past the input is caught as libFuzzer would */
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, d, n);
    free(d);
    kp_clear_error();
    LLVMFuzzerTestOneInput(copy, n);
    if (getenv("KP_FUZZ_VERBOSE")) /* the last failure the input met, to see how far seeds get */
        fprintf(stderr, "replay: %s (%zu bytes): %s\n", path, n, kp_last_error()[0] ? kp_last_error() : "no error");
    free(copy);
    return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int run_dir(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: cannot open %s\n", dir);
        return 1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap)
            names = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp);
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        bad |= run_file(path);
        ++*count;
        free(names[i]);
    }
    free(names);
    return bad;
}

int main(int argc, char **argv)
{
    LLVMFuzzerInitialize(&argc, &argv);
    int bad = 0, count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s does not exist\n", argv[i]);
            bad = 1;
        } else if (S_ISDIR(st.st_mode)) {
            bad |= run_dir(argv[i], &count);
        } else {
            bad |= run_file(argv[i]);
            count++;
        }
    }
    printf("replayed %d input(s)\n", count);
    return bad;
}
