/* fuzz.h -- shared by the libFuzzer harnesses in tests/fuzz/.
 *
 * Each fuzz_*.c defines LLVMFuzzerTestOneInput(): it feeds the bytes to one
 * parser of Herald's and checks what the parser promises (no crash, no
 * leak, no undefined behaviour under ASan and UBSan, and the invariants
 * named in each harness). `make fuzz` runs each for FUZZ_SECONDS; `make
 * test` runs each for a few seconds from the seed corpus in
 * tests/fuzz/corpus/<name>/. */
#ifndef HERALD_FUZZ_H
#define HERALD_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A NUL-terminated copy of the input (parsers that take C strings). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* An invariant broken: crash, so libFuzzer saves the input. */
#define FUZZ_ASSERT(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
