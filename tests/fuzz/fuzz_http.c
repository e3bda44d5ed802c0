/* fuzz_http.c -- the generic "http" driver (providers/http.c) on any
 * bytes, both ways:
 *
 *  - the answer classifier: a provider's HTTP status and body through one
 *    of four route configurations (JSON id and error paths, regex id and
 *    error codes, the defaults, and paths taken from the input itself).
 *    Every answer gets a status; a failure a one-line reason naming the
 *    HTTP status; a success only from a success status; a throttled
 *    answer keeps the provider's Retry-After.
 *  - the request builder: the message's text, number, id and variables
 *    from the input, expanded into URL, headers and a form, JSON or query
 *    body. A header never gets a line break; a JSON body built from
 *    params is valid JSON.
 *  - a response header line through the Retry-After reader (curl_util.c):
 *    a wait between 0 and a day, whatever the provider says.
 *
 * Byte 0: bits 0-1 the configuration (3 with bit 7: the header reader);
 * bit 7 the builder, else bits 2-5 the HTTP status and bit 6 whether the
 * answer came with a Retry-After. */
#include <libconfig.h>
#include <jansson.h>

#include "tests/fuzz/fuzz.h"
#include "providers/cloud.h"
#include "providers/curl_util.h"

#define NCONF 4

static const char *const conf_text[NCONF] = {
    /* a JSON provider: result 0 and data.list[0].sid */
    "http = { url = \"https://sms.example.cn/api/send\"; encoding = \"json\";"
    " params = [ \"mobile={{to_national}}\", \"content={{text}}\", \"ref={{id}}\", \"vars:={{params}}\" ];"
    " headers = [ \"Authorization: Bearer 0123\", \"X-Ref: {{id}}\" ];"
    " success_status = \"200-299\"; success_match = \"\\\"result\\\" *: *0\";"
    " id_json = \"data.list[0].sid\"; error_json = \"result\";"
    " throttled_codes = [ \"1008\" ]; permanent_codes = [ \"1003\", \"1004\" ];"
    " transient_codes = [ \"9\" ]; permanent_status = \"400,422\"; };",
    /* a text provider: "ok id=..." or "err=NNN" */
    "http = { url = \"http://gw.example.cn/sms?user=herald&to={{to}}\"; encoding = \"form\";"
    " body = \"text={{text}}&id={{id}}&parts={{parts}}&tpl={{template}}&code={{code}}\";"
    " success_status = \"200,202\"; success_match = \"^ok\"; id_regex = \"id=([0-9A-Za-z]+)\";"
    " error_regex = \"err=([0-9]+)\"; throttled_codes = [ \"429\" ]; permanent_codes = [ \"13\" ];"
    " permanent_status = \"400-499\"; };",
    /* the defaults: any 2xx body is a success */
    "http = { url = \"http://gw.example.cn/q\"; method = \"GET\"; encoding = \"query\";"
    " params = [ \"to={{to}}\", \"t={{text}}\", \"a={{attempt}}\", \"f={{family}}\", \"e={{encoding}}\" ]; };",
    /* JSON paths replaced by the input's first line (below) */
    "http = { url = \"https://x.example.cn/\"; encoding = \"json\";"
    " body = \"{\\\"to\\\":\\\"{{to}}\\\",\\\"text\\\":\\\"{{text}}\\\"}\";"
    " id_json = \"id\"; error_json = \"code\"; permanent_codes = [ \"E1\" ]; };",
};

static config_t cfgs[NCONF];
static httpgen *gens[NCONF];

static void setup(void)
{
    char err[256];
    for (int i = 0; i < NCONF; i++) {
        config_init(&cfgs[i]);
        FUZZ_ASSERT(config_read_string(&cfgs[i], conf_text[i]) == CONFIG_TRUE);
        gens[i] = httpgen_new("fuzz", config_lookup(&cfgs[i], "http"), err, sizeof err);
        if (!gens[i]) {
            fprintf(stderr, "fuzz_http: configuration %d: %s\n", i, err);
            abort();
        }
    }
}

static void check_result(const prov_result *res, long status, long long retry)
{
    FUZZ_ASSERT(memchr(res->error, '\0', sizeof res->error) != NULL);
    FUZZ_ASSERT(memchr(res->refs, '\0', sizeof res->refs) != NULL);
    FUZZ_ASSERT(strchr(res->error, '\n') == NULL && strchr(res->error, '\r') == NULL);
    if (res->status == PROV_OK) {
        FUZZ_ASSERT(status >= 200 && status <= 299);
        FUZZ_ASSERT(res->error[0] == '\0');
    } else {
        FUZZ_ASSERT(strncmp(res->error, "http: HTTP ", 11) == 0);
    }
    if (res->status == PROV_THROTTLED)
        FUZZ_ASSERT(res->retry_after_ms == retry);
    else
        FUZZ_ASSERT(res->retry_after_ms == 0);
    if (status == 429 && res->status != PROV_OK)
        FUZZ_ASSERT(res->status == PROV_THROTTLED);
}

/* A config whose id and error paths are the input's first two lines. */
static void classify_with_paths(const char *in, long status, long long retry)
{
    const char *nl = strchr(in, '\n');
    if (!nl)
        return;
    const char *nl2 = strchr(nl + 1, '\n');
    if (!nl2)
        return;
    char *idp = strndup(in, (size_t)(nl - in));
    char *errp = strndup(nl + 1, (size_t)(nl2 - nl - 1));
    FUZZ_ASSERT(idp && errp);
    config_t c;
    config_init(&c);
    FUZZ_ASSERT(config_read_string(&c, conf_text[3]) == CONFIG_TRUE);
    config_setting_t *g = config_lookup(&c, "http");
    config_setting_set_string(config_setting_get_member(g, "id_json"), idp);
    config_setting_set_string(config_setting_get_member(g, "error_json"), errp);
    char err[256];
    httpgen *h = httpgen_new("fuzz", g, err, sizeof err);
    if (h) {
        prov_result res;
        memset(&res, 0, sizeof res);
        httpgen_classify(h, status, nl2 + 1, retry, &res);
        check_result(&res, status, retry);
        httpgen_free(h);
    }
    config_destroy(&c);
    free(idp);
    free(errp);
}

/* The input split at NUL bytes into the message's fields. */
static void build(const uint8_t *data, size_t size, int conf)
{
    char *in = malloc(size + 8);
    FUZZ_ASSERT(in != NULL);
    memcpy(in, data, size);
    memset(in + size, 0, 8);
    const char *f[5];
    size_t off = 0;
    for (int i = 0; i < 5; i++) {
        f[i] = in + (off <= size ? off : size);
        off += strlen(f[i]) + 1;
    }
    prov_msg m = {
        .id = f[0], .to = f[1], .text = f[2], .encoding = "ucs2", .parts = (int)(size % 5),
        .family = "rights_notice", .template_name = f[3], .provider_code = "SMS_1",
        .vars_json = f[4], .provider_params = (size & 8) ? "n=name,c=case_no" : NULL, .attempt = 1,
    };
    httpgen_request rq;
    char err[256];
    if (httpgen_build(gens[conf], &m, &rq, err, sizeof err) == 0) {
        FUZZ_ASSERT(rq.url && rq.body && rq.headers && rq.method);
        FUZZ_ASSERT(strpbrk(rq.url, " \r\n") == NULL);
        for (char **h = rq.headers; *h; h++)
            FUZZ_ASSERT(strpbrk(*h, "\r\n") == NULL);
        if (conf == 0) {               /* a JSON object built from params */
            json_error_t je;
            json_t *j = json_loads(rq.body, 0, &je);
            FUZZ_ASSERT(json_is_object(j));
            json_decref(j);
        }
        httpgen_request_free(&rq);
    } else {
        FUZZ_ASSERT(err[0] != '\0');
    }
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[16] = { 200, 200, 201, 202, 204, 299, 300, 400,
                                       403, 422, 429, 500, 503, 0, -1, 999 };
    if (size < 1)
        return 0;
    if (!gens[0])
        setup();
    int conf = data[0] & 3;
    if ((data[0] & 0x83) == 0x83) {      /* a response header line: Retry-After */
        long long ms = prov_retry_after_ms((const char *)data + 1, size - 1, 1796100000LL);
        FUZZ_ASSERT(ms >= 0 && ms <= PROV_RETRY_AFTER_MAX_MS);
        return 0;
    }
    if (data[0] & 0x80) {
        build(data + 1, size - 1, conf);
        return 0;
    }
    long status = statuses[(data[0] >> 2) & 15];
    long long retry = (data[0] & 0x40) ? 30000 : 0;
    char *body = fuzz_cstr(data + 1, size - 1);
    if (conf == 3) {
        classify_with_paths(body, status, retry);
    } else {
        prov_result res;
        memset(&res, 0, sizeof res);
        httpgen_classify(gens[conf], status, body, retry, &res);
        check_result(&res, status, retry);
    }
    free(body);
    return 0;
}
