/* fuzz_cloud.c -- what cloud SMS providers answer, from any bytes: the
 * Alibaba Cloud and Tencent Cloud response classifiers (the first byte
 * picks the provider and the HTTP status). Every answer gets a status; a
 * failure gets a one-line reason; a success never comes from a body that
 * is not the provider's success shape with an id. */
#include "tests/fuzz/fuzz.h"
#include "providers/cloud.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const long statuses[] = { 200, 200, 200, 400, 403, 429, 500, 503 };
    long status = statuses[data[0] & 7];
    char *body = fuzz_cstr(data + 1, size - 1);
    prov_result res;
    memset(&res, 0, sizeof res);
    if (data[0] & 8)
        tencent_classify(status, body, (data[0] & 16) ? 2000 : 0, &res);
    else
        aliyun_classify(status, body, (data[0] & 16) ? 2000 : 0, &res);
    FUZZ_ASSERT(memchr(res.error, '\0', sizeof res.error) != NULL);
    FUZZ_ASSERT(memchr(res.refs, '\0', sizeof res.refs) != NULL);
    FUZZ_ASSERT(strchr(res.error, '\n') == NULL);
    if (res.status == PROV_OK)
        FUZZ_ASSERT(status == 200);
    free(body);
    return 0;
}
