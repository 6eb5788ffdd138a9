/*
 * fuzz.h: what the fuzz targets and the corpus replayer share.
 *
 * Each fuzz_<target>.c defines LLVMFuzzerTestOneInput. Built with clang and
 * -fsanitize=fuzzer it is a libFuzzer target; built with replay.c (any
 * compiler) it is a program that runs every file of a corpus directory
 * through the same function, which is how ctest replays the committed
 * corpus. A target must not keep state between calls, and a broken
 * invariant aborts through FUZZ_CHECK so that both drivers report it.
 */
#ifndef PGPULSE_FUZZ_H
#define PGPULSE_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* An error message of a YAML input named name is "name:<line>:<column>:
 * <message>" on one line of printable bytes. */
static inline void fuzz_check_positioned(const char *err, const char *name)
{
    size_t pre = strlen(name);
    FUZZ_CHECK(strncmp(err, name, pre) == 0 && err[pre] == ':');
    const char *p = err + pre + 1;
    FUZZ_CHECK(*p >= '1' && *p <= '9');
    while (*p >= '0' && *p <= '9')
        p++;
    FUZZ_CHECK(*p++ == ':');
    FUZZ_CHECK(*p >= '1' && *p <= '9');
    while (*p >= '0' && *p <= '9')
        p++;
    FUZZ_CHECK(p[0] == ':' && p[1] == ' ' && p[2] != '\0');
    for (p = err; *p != '\0'; p++)
        FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
}

/* Names lib/selfmetrics.c emits: no catalog metric may be one. */
static inline bool fuzz_reserved_name(const char *name)
{
    return strcmp(name, "pg_up") == 0 || strncmp(name, "pg_exporter_", 12) == 0 ||
           strncmp(name, "pgpulse_", 8) == 0 || strncmp(name, "process_", 8) == 0;
}

#endif
