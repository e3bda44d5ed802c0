/* fuzz_phone.c -- phone normalisation: any bytes (the first one picks
 * whether international numbers are allowed). An accepted number is
 * canonical: "+" and digits only, and normalising it again gives itself;
 * its mask never shows the middle digits. */
#include "tests/fuzz/fuzz.h"
#include "gateway/phone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int intl = data[0] & 1;
    char *in = fuzz_cstr(data + 1, size - 1);
    char out[PHONE_MAX], again[PHONE_MAX], err[160];
    if (phone_normalize(in, intl, out, err, sizeof err) == 0) {
        FUZZ_ASSERT(out[0] == '+');
        for (const char *p = out + 1; *p; p++)
            FUZZ_ASSERT(*p >= '0' && *p <= '9');
        FUZZ_ASSERT(phone_normalize(out, intl, again, err, sizeof err) == 0);
        FUZZ_ASSERT(strcmp(out, again) == 0);
        char masked[PHONE_MAX];
        phone_mask(out, masked);
        FUZZ_ASSERT(strstr(masked, "****") != NULL);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    free(in);
    return 0;
}
