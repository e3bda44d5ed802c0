/* fuzz_mm7.c -- what an MMSC sends back, from any bytes: SubmitRsp /
 * SOAP Fault / RSErrorRsp parsing, and the DeliveryReportReq handler,
 * which must always produce an answer to send (and a usable report only
 * when it says so). The first byte picks the parser. */
#include "tests/fuzz/fuzz.h"
#include "providers/mm7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char err[256];
    if (data[0] & 1) {
        mm7_rsp r;
        if (mm7_parse_submit_rsp(body, len, &r, err, sizeof err) == 0) {
            FUZZ_ASSERT(r.status_code != 0 || r.fault);
            (void)mm7_classify(r.status_code);
        } else {
            FUZZ_ASSERT(err[0] != '\0');
        }
        return 0;
    }
    mm7_dlr dlr;
    char *rsp = NULL;
    size_t rsplen = 0;
    int http = 0;
    int rc = mm7_handle_delivery_report(body, len, "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4",
                                        "6.8.0", &dlr, &rsp, &rsplen, &http, err, sizeof err);
    FUZZ_ASSERT(rsp != NULL && rsplen > 0);             /* always an answer */
    FUZZ_ASSERT(http == 200 || http == 400);
    if (rc == 0) {
        int final, ok;
        (void)mm7_status_name(dlr.mm_status, &final, &ok);
        FUZZ_ASSERT(memchr(dlr.transaction_id, '\0', sizeof dlr.transaction_id) != NULL);
    }
    free(rsp);
    return 0;
}
