/*
 * The fuzz harnesses: one LLVMFuzzerTestOneInput per file. Each file is
 * linked either with libFuzzer (-Dfuzz=true, clang) or with corpus_driver.c,
 * which feeds every saved input to it in the ordinary builds, so an input
 * that once crashed stays a regression test.
 */
#ifndef PFS_FUZZ_H
#define PFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Split data into at most max NUL-terminated pieces at every '\n' (and
 * every NUL). Returns how many; *out is one malloc'd block holding the
 * pointers and the strings (free it), NULL when out of memory.
 */
size_t fuzz_split_lines(const uint8_t *data, size_t size, size_t max, char ***out);

/* A harness found a broken invariant: say which and abort (the crash). */
void fuzz_fail(const char *what, const char *input) __attribute__((noreturn));

/*
 * Keep every policy plugin of policy_dir() loaded for the whole process.
 * libFuzzer keeps pointers into each instrumented module's coverage
 * counters; a plugin the loader dlclose()s would leave them dangling (a
 * SEGV inside libFuzzer). An extra dlopen() reference makes the loader's
 * dlclose() a no-op. Harnesses that load policies call it once.
 */
void fuzz_policies_pin(void);

#endif /* PFS_FUZZ_H */
