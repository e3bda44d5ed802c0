/* fuzz_request.c -- what case systems post: a JSON body as the HTTP API
 * and `herald enqueue --batch` read it (depth check, then the request
 * reader), and the form decoder of the API's callbacks. A refusal names
 * the reason; an accepted request has a template and a number. */
#include <jansson.h>

#include "tests/fuzz/fuzz.h"
#include "gateway/api.h"
#include "gateway/service.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    (void)api_json_depth(buf, size);
    char *v = api_form_value(buf, size, "text");
    free(v);
    v = api_form_value(buf, size, "from");
    free(v);
    json_error_t je;
    json_t *j = json_loadb(buf, size, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return 0;
    svc_json_req rq;
    char err[256], field[SVC_FIELD_MAX];
    err[0] = field[0] = '\0';
    if (svc_request_from_json(j, 1796100000000LL, &rq, err, sizeof err, field) == 0) {
        FUZZ_ASSERT(rq.rq.template_name != NULL && rq.rq.to != NULL);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    json_decref(j);
    return 0;
}
