/* fuzz_mms.c -- image probing (JPEG, PNG, GIF headers from anywhere) and
 * the UTF-8 check the composer relies on: any bytes, a type and sane
 * dimensions or a reason. */
#include "tests/fuzz/fuzz.h"
#include "templates/mms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mms_img_type t;
    int w = -1, h = -1;
    char err[200];
    if (mms_image_probe(data, size, &t, &w, &h, err, sizeof err) == 0) {
        FUZZ_ASSERT(w >= 0 && h >= 0);
        FUZZ_ASSERT(mms_img_mime(t) != NULL && mms_img_ext(t) != NULL);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    (void)mms_utf8_valid((const char *)data, size);
    return 0;
}
