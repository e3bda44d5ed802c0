/* fuzz_bulletin.c -- a POST /v1/bulletins body from any bytes: read and
 * checked as the API does (api_bulletin_from_json: title, lists, subject,
 * send_at, slides with text and Base64 images), then composed into the
 * MMS as bulletin_issue_send would (mms_compose: the SMIL, the multipart
 * body, the boundary) and measured against the size budget. A refusal
 * names a field and says why; a composed issue has its SMIL first, every
 * part within the body, and a boundary no part contains. */
#include <jansson.h>

#include "tests/fuzz/fuzz.h"
#include "gateway/api.h"
#include "templates/mms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    if (api_json_depth(buf, size) > 32)
        return 0;
    json_error_t je;
    json_t *j = json_loadb(buf, size, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return 0;
    }
    api_bulletin_body b;
    char err[4096];
    err[0] = '\0';
    if (api_bulletin_from_json(j, 1796100000000LL, &b, err, sizeof err) < 0) {
        FUZZ_ASSERT(b.field != NULL && err[0] != '\0');
    } else {
        FUZZ_ASSERT(b.title && *b.title && b.nlists >= 1 && b.nlists <= 16);
        FUZZ_ASSERT(b.is.nslides >= 1 && b.is.nslides <= MMS_MAX_SLIDES);
        mms_issue is = b.is;
        is.subject = b.subject;
        for (int i = 0; i < is.nslides; i++)
            if (!is.slides[i].dur_s)
                is.slides[i].dur_s = 8;
        mms_composed mc;
        if (mms_compose(&is, "18f1c2a3b4d", &mc, err, sizeof err) == 0) {
            FUZZ_ASSERT(mc.body && mc.len > 0 && mc.smil && mc.content_type[0]);
            FUZZ_ASSERT(mc.nparts >= 2 && mc.nparts <= MMS_MAX_PARTS);
            const char *bd = strstr(mc.content_type, "boundary=");
            FUZZ_ASSERT(bd != NULL);
            for (int i = 0; i < mc.nparts; i++)
                FUZZ_ASSERT(mc.parts[i].size <= mc.len);
            char rep[2048];
            if (mms_check_budget(&mc, 307200, rep, sizeof rep) != 0)
                FUZZ_ASSERT(rep[0] != '\0');
            mms_composed_free(&mc);
        } else {
            FUZZ_ASSERT(err[0] != '\0');
        }
    }
    api_bulletin_body_free(&b);
    json_decref(j);
    return 0;
}
