/*
 * replay: runs inputs through a fuzz target's LLVMFuzzerTestOneInput
 * without libFuzzer, so that the committed corpus is a regression test
 * under any compiler (ctest's fuzz.<target> tests).
 *
 *   fuzz_<target>_replay <file or directory>...
 *
 * A directory runs every regular file in it, in name order; names starting
 * with a dot are skipped. Each input is copied into a buffer of exactly its
 * size so that a sanitizer build catches a read past the end. The program
 * fails when an input makes the target abort, when a path cannot be read,
 * and when there was nothing to run at all (an empty or missing corpus
 * would otherwise pass silently).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Reads a whole file into a buffer of exactly its size; returns 0 or -1. */
static int read_all(const char *path, uint8_t **out, size_t *outlen)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;

    if (f == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 4096;
            uint8_t *p = realloc(data, cap);
            if (p == NULL) {
                fprintf(stderr, "replay: %s: out of memory\n", path);
                goto cleanup;
            }
            data = p;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        fprintf(stderr, "replay: %s: read error\n", path);
        goto cleanup;
    }
    /* Exactly len bytes (at least one so that malloc gives a pointer). */
    *out = malloc(len > 0 ? len : 1);
    if (*out == NULL) {
        fprintf(stderr, "replay: %s: out of memory\n", path);
        goto cleanup;
    }
    if (len > 0)
        memcpy(*out, data, len);
    *outlen = len;
    rc = 0;

cleanup:
    free(data);
    fclose(f);
    return rc;
}

static int run_file(const char *path)
{
    uint8_t *data;
    size_t len;

    if (read_all(path, &data, &len) != 0)
        return -1;
    printf("replay: %s (%zu bytes)\n", path, len);
    fflush(stdout); /* so that the name is shown if the target aborts */
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every regular file of dir in name order; adds to *count. */
static int run_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;

    if (d == NULL) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(names, cap * sizeof *names);
            if (p == NULL)
                goto cleanup;
            names = p;
        }
        size_t len = strlen(dir) + 1 + strlen(e->d_name) + 1;
        names[n] = malloc(len);
        if (names[n] == NULL)
            goto cleanup;
        snprintf(names[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    if (n > 0)
        qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", names[i], strerror(errno));
            goto cleanup;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        if (run_file(names[i]) != 0)
            goto cleanup;
        (*count)++;
    }
    rc = 0;

cleanup:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    size_t count = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s <file or directory>...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        if (S_ISDIR(st.st_mode) ? run_dir(argv[i], &count) != 0 : run_file(argv[i]) != 0)
            return 1;
        if (!S_ISDIR(st.st_mode))
            count++;
    }
    if (count == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    printf("replay: %zu inputs, no failure\n", count);
    return 0;
}
