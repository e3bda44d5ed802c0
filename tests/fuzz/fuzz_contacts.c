/* fuzz_contacts.c -- what the office hands the survey and the bulletins,
 * from any bytes. Byte 0, bits 0-1:
 *   0  a POST /v1/contacts body: one contact or {"contacts":[...]}, each
 *      read (api_contact_from_json) and checked (survey_contact_check),
 *      the same checks `herald contacts add` and the CSV import use;
 *   1  a `herald contacts import` CSV file: each line split
 *      (survey_csv_split), the first as the header, the others as
 *      contacts in the column order phone,role,case_no,department,
 *      prosecutor,date, checked;
 *   2  an image of POST /v1/bulletins: Base64 decoded (api_b64_decode),
 *      then probed as the bulletin does (mms_image_probe).
 * Bit 2: international numbers allowed. A refused contact names the field;
 * an accepted one has a canonical number and a real date; fields stay
 * inside their line; decoded bytes fit the Base64 they came from. */
#include <jansson.h>

#include "tests/fuzz/fuzz.h"
#include "gateway/api.h"
#include "gateway/survey.h"
#include "queue/survey.h"
#include "templates/mms.h"

static void check_contact(const gw_config *cfg, const survey_contact_in *in)
{
    queue_contact c;
    char phone[PHONE_MAX], err[300];
    err[0] = '\0';
    if (survey_contact_check(cfg, in, &c, phone, err, sizeof err) == 0) {
        FUZZ_ASSERT(phone[0] == '+' && c.phone == phone);
        FUZZ_ASSERT(c.date >= 20000101 && c.date <= 29991231);
        FUZZ_ASSERT(c.role && c.case_no && c.department && c.prosecutor);
        FUZZ_ASSERT(strlen(c.case_no) <= 100 && !strchr(c.case_no, '|'));
    } else {
        static const char *const fields[] = { "phone:", "role:", "case_no:", "department:",
                                              "prosecutor:", "date:" };
        int named = 0;
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
            named |= strncmp(err, fields[i], strlen(fields[i])) == 0;
        FUZZ_ASSERT(named);
    }
}

static void json_contacts(const gw_config *cfg, const char *buf, size_t len)
{
    if (api_json_depth(buf, len) > 32)
        return;
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(j)) {
        json_decref(j);
        return;
    }
    json_t *list = json_object_get(j, "contacts");
    size_t n = json_is_array(list) ? json_array_size(list) : 1;
    for (size_t i = 0; i < n && i < 1000; i++) {
        const json_t *c = json_is_array(list) ? json_array_get(list, i) : j;
        if (!json_is_object(c))
            continue;
        survey_contact_in in;
        int unknown = 0;
        const char *bad = api_contact_from_json(c, &in, &unknown);
        if (bad) {
            FUZZ_ASSERT(*bad || unknown);
            continue;
        }
        check_contact(cfg, &in);
    }
    json_decref(j);
}

static void csv_contacts(const gw_config *cfg, const char *text, size_t len)
{
    char *copy = fuzz_cstr((const uint8_t *)text, len);
    int lineno = 0;
    for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        size_t ll = strlen(l);
        char *f[32];
        int n = survey_csv_split(l, f, 32);
        FUZZ_ASSERT(n >= -1 && n <= 32);
        for (int i = 0; i < n; i++)
            FUZZ_ASSERT(f[i] >= l && f[i] + strlen(f[i]) <= l + ll);
        if (lineno++ == 0 || n < 0)
            continue;                            /* the header */
        const char *col[6] = { 0 };
        for (int i = 0; i < n && i < 6; i++)
            col[i] = f[i];
        survey_contact_in in = { col[0], col[1], col[2], col[3], col[4], col[5] };
        check_contact(cfg, &in);
    }
    free(copy);
}

static void image(const char *b64, size_t len)
{
    char *s = fuzz_cstr((const uint8_t *)b64, len);
    size_t n = 0;
    unsigned char *bytes = api_b64_decode(s, &n);
    if (bytes) {
        FUZZ_ASSERT(n <= strlen(s) / 4 * 3 + 3);
        mms_img_type t;
        int w, h;
        char err[200];
        if (mms_image_probe(bytes, n, &t, &w, &h, err, sizeof err) != 0)
            FUZZ_ASSERT(err[0] != '\0');
        free(bytes);
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    gw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.allow_international = (data[0] & 4) != 0;
    const char *buf = (const char *)data + 1;
    switch (data[0] & 3) {
    case 0:
        json_contacts(&cfg, buf, size - 1);
        break;
    case 1:
        csv_contacts(&cfg, buf, size - 1);
        break;
    default:
        image(buf, size - 1);
        break;
    }
    return 0;
}
