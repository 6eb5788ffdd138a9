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

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
