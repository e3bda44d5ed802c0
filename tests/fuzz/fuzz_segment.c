/* fuzz_segment.c -- the part counter: any bytes; valid UTF-8 gets a count
 * whose invariants hold (parts >= 1 for non-empty text, units within the
 * parts' capacity), invalid UTF-8 a reason. */
#include "tests/fuzz/fuzz.h"
#include "templates/segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    seg_info si;
    char err[128];
    if (seg_count((const char *)data, size, &si, err, sizeof err) != 0) {
        FUZZ_ASSERT(err[0] != '\0');
        return 0;
    }
    FUZZ_ASSERT(si.parts >= (size ? 1 : 0));
    FUZZ_ASSERT(si.chars >= 0 && si.units >= si.chars / 2);
    if (si.encoding == SEG_GSM7) {
        FUZZ_ASSERT(si.nforcing == 0);
        FUZZ_ASSERT(si.parts <= 1 ? si.units <= 160 : si.units <= si.parts * 153);
    } else {
        FUZZ_ASSERT(si.parts <= 1 ? si.units <= 70 : si.units <= si.parts * 67);
    }
    for (int i = 0; i < si.nforcing && i < SEG_MAX_FORCING; i++)
        FUZZ_ASSERT(memchr(si.forcing[i], '\0', sizeof si.forcing[i]) != NULL);
    return 0;
}
