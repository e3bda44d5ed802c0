/* fuzz_callback.c -- what providers post to /v1/inbound/{route}, from any
 * bytes (gateway/callbacks.h): the Alibaba Cloud and Tencent Cloud push
 * bodies (JSON), the generic provider's JSON and form bodies, and an MM7
 * DeliveryReportReq (the callback's own reading, then mm7.c's full one).
 * Byte 0 picks the format. A refused body has an HTTP status and a reason;
 * a read one has items of a known kind, each with what the handler uses;
 * every reply item then goes through the checks before storing (phone
 * normalisation, UTF-8), which give a number or a field and a reason. */
#include "tests/fuzz/fuzz.h"
#include "gateway/callbacks.h"
#include "providers/mm7.h"

static void check_items(const api_cb_parsed *p)
{
    for (size_t i = 0; i < p->n; i++) {
        const api_cb_item *it = &p->items[i];
        FUZZ_ASSERT(it->kind == API_CB_REPLY || it->kind == API_CB_REPORT || it->kind == API_CB_SKIP);
        if (it->kind == API_CB_SKIP)
            FUZZ_ASSERT(it->why[0] != '\0');
        if (it->kind == API_CB_REPORT)
            FUZZ_ASSERT(it->delivered == 0 || it->delivered == 1);
        if (it->kind != API_CB_REPLY)
            continue;
        char num[PHONE_MAX], why[300];
        const char *field = NULL;
        int rc = api_cb_check_inbound(it->phone, it->text, num, &field, why, sizeof why);
        if (rc == 0) {
            FUZZ_ASSERT(num[0] == '+' && strlen(num) < PHONE_MAX);
        } else {
            FUZZ_ASSERT(rc == 1 && field && why[0]);
            FUZZ_ASSERT(strcmp(field, "from") == 0 || strcmp(field, "text") == 0);
        }
    }
}

static void check_refusal(int rc, const api_cb_parsed *p)
{
    if (rc == -2)
        return;                                   /* out of memory */
    if (rc == 0) {
        FUZZ_ASSERT(p->status == 0);
        check_items(p);
        return;
    }
    FUZZ_ASSERT(rc == -1);
    FUZZ_ASSERT(p->status == 400 || p->status == 422);
    FUZZ_ASSERT(p->code != NULL && p->err[0] != '\0');
    FUZZ_ASSERT(p->n == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int depth = (data[0] & 8) ? 3 : 32;
    /* a copy the exact length: ASan sees a read past the body */
    char *body = malloc(size - 1 ? size - 1 : 1);
    FUZZ_ASSERT(body != NULL);
    memcpy(body, data + 1, size - 1);
    size_t len = size - 1;
    api_cb_parsed p;
    int rc;
    switch (data[0] & 7) {
    case 0:
        rc = api_cb_parse_aliyun(body, len, depth, &p);
        check_refusal(rc, &p);
        api_cb_parsed_free(&p);
        break;
    case 1:
        rc = api_cb_parse_tencent(body, len, depth, &p);
        check_refusal(rc, &p);
        if (rc == 0 && p.single)
            FUZZ_ASSERT(p.n == 1);
        api_cb_parsed_free(&p);
        break;
    case 2:
    case 3:
        rc = api_cb_parse_generic(body, len, data[0] & 1, depth, &p);
        check_refusal(rc, &p);
        if (rc == 0)
            FUZZ_ASSERT(p.n == 1 && p.items[0].kind == API_CB_REPLY);
        if (rc == -1 && p.status == 422)
            FUZZ_ASSERT(p.field != NULL);
        api_cb_parsed_free(&p);
        break;
    default: {           /* MM7: the callback reads a NUL-terminated body */
        char *s = fuzz_cstr(data + 1, size - 1);
        api_cb_mm7 m;
        rc = api_cb_parse_mm7(s, &m);
        FUZZ_ASSERT(rc == 0 || rc == -1 || rc == -2);
        FUZZ_ASSERT(strpbrk(m.tid, "<>&\"") == NULL);
        if (rc == 0)
            FUZZ_ASSERT(m.message_id[0] != '\0');
        mm7_dlr d;
        char err[512];
        if (mm7_parse_delivery_report(s, size - 1, &d, err, sizeof err) < 0)
            FUZZ_ASSERT(err[0] != '\0');
        else
            FUZZ_ASSERT(memchr(d.message_id, '\0', sizeof d.message_id) != NULL);
        free(s);
        break;
    }
    }
    free(body);
    return 0;
}
