/* test_api.c -- the parts of the HTTP API that need no server: reading a
 * message from JSON with the field at fault named, the field of svc_prepare
 * errors, JSON depth, form decoding, the api config group, and that every
 * route the server answers is documented in docs/api.md and
 * docs/openapi.yaml (and nothing documented is missing). Runs from the
 * repository root (tests/run.sh cds there). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "gateway/api.h"
#include "gateway/callbacks.h"
#include "gateway/service.h"
#include "tests/unit/test.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    if (b)
        b[n] = '\0';
    fclose(f);
    return b;
}

/* from_json(text) -> the field named by svc_request_from_json, or "ok" */
static const char *from_json(const char *text, char *err, size_t errlen)
{
    static char field[SVC_FIELD_MAX];
    json_t *j = json_loads(text, 0, NULL);
    svc_json_req r;
    int rc = svc_request_from_json(j, 1000000, &r, err, errlen, field);
    json_decref(j);
    return rc == 0 ? "ok" : field;
}

static void test_from_json(void)
{
    char err[256];
    CHECK_STR(from_json("{\"template\":\"t\",\"to\":\"1\"}", err, sizeof err), "ok");
    CHECK_STR(from_json("{\"to\":\"1\"}", err, sizeof err), "template");
    CHECK_HAS(err, "template is required");
    CHECK_STR(from_json("{\"template\":\"t\"}", err, sizeof err), "to");
    CHECK_STR(from_json("{\"template\":5,\"to\":\"1\"}", err, sizeof err), "template");
    CHECK_HAS(err, "must be a string");
    CHECK_STR(from_json("{\"template\":\"t\",\"to\":\"1\",\"tmplate\":1}", err, sizeof err), "tmplate");
    CHECK_HAS(err, "unknown field 'tmplate'");
    CHECK_STR(from_json("{\"template\":\"t\",\"to\":\"1\",\"vars\":[]}", err, sizeof err), "vars");
    CHECK_STR(from_json("{\"template\":\"t\",\"to\":\"1\",\"vars\":{\"a\":1}}", err, sizeof err), "vars.a");
    CHECK_STR(from_json("{\"template\":\"t\",\"to\":\"1\",\"send_at\":\"soon\"}", err, sizeof err), "send_at");
    CHECK_STR(from_json("{\"template\":\"t\",\"to\":\"1\",\"send_at\":true}", err, sizeof err), "send_at");
    CHECK_STR(from_json("{\"template\":\"t\",\"to\":\"1\",\"key\":[]}", err, sizeof err), "key");
    CHECK_STR(from_json("[1]", err, sizeof err), "");

    json_t *j = json_loads("{\"template\":\"t\",\"to\":\"1\",\"vars\":{\"a\":\"x\",\"b\":\"y\"},"
                           "\"key\":\"k\",\"send_at\":\"+60s\"}", 0, NULL);
    svc_json_req r;
    char field[SVC_FIELD_MAX];
    CHECK_INT(svc_request_from_json(j, 1000000, &r, err, sizeof err, field), 0);
    CHECK_INT(r.rq.nvars, 2);
    CHECK_STR(r.rq.key, "k");
    CHECK_INT(r.rq.send_at_ms, 1060000);
    CHECK(r.rq.vars == r.vars);
    json_decref(j);
}

/* svc_prepare names the field a front end should point at. */
static void test_prepare_fields(void)
{
    char err[512];
    catalog *cat = catalog_load_dir("templates/shipped", err, sizeof err);
    CHECK(cat != NULL);
    if (!cat)
        return;
    catalog_opts co = { "【XX市人民检察院】", "回TD退订" };
    static const struct { const char *json, *field; } cases[] = {
        { "{\"template\":\"nope\",\"to\":\"13800138000\"}", "template" },
        { "{\"template\":\"evaluation_survey\",\"to\":\"123\",\"vars\":{\"period\":\"x\"}}", "to" },
        { "{\"template\":\"evaluation_survey\",\"to\":\"13800138000\",\"vars\":{}}", "vars.period" },
        { "{\"template\":\"evaluation_survey\",\"to\":\"13800138000\",\"vars\":{\"period\":\"x\",\"nmae\":\"y\"}}", "vars.nmae" },
        { "{\"template\":\"evaluation_survey\",\"to\":\"13800138000\",\"vars\":{\"period\":\"x\"},\"key\":\"auto:x\"}", "key" },
        { "{\"template\":\"evaluation_survey\",\"to\":\"13800138000\",\"vars\":{\"period\":\"x\"}}", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = json_loads(cases[i].json, 0, NULL);
        svc_json_req r;
        char field[SVC_FIELD_MAX];
        svc_message m;
        CHECK_INT(svc_request_from_json(j, svc_now_ms(), &r, err, sizeof err, field), 0);
        int rc = svc_prepare(cat, &co, 0, &r.rq, svc_now_ms(), &m, err, sizeof err);
        CHECK_INT(rc, cases[i].field[0] ? -1 : 0);
        CHECK_STR(m.err_field, cases[i].field);
        svc_message_free(&m);
        json_decref(j);
    }
    catalog_free(cat);
}

static void test_depth_and_form(void)
{
    CHECK_INT(api_json_depth("{}", 2), 1);
    CHECK_INT(api_json_depth("{\"a\":[[1],{\"b\":2}]}", 19), 3);
    CHECK_INT(api_json_depth("{\"a\":\"[[[[{{{\"}", 15), 1);       /* brackets in strings */
    CHECK_INT(api_json_depth("{\"a\":\"\\\"[[[\"}", 13), 1);          /* escaped quote */
    CHECK_INT(api_json_depth("1", 1), 0);

    const char *f = "from=%2B8613800138000&to=1069&text=%E6%BB%A1%E6%84%8F+1121&empty=";
    char *v = api_form_value(f, strlen(f), "from");
    CHECK_STR(v, "+8613800138000");
    free(v);
    v = api_form_value(f, strlen(f), "text");
    CHECK_STR(v, "满意 1121");
    free(v);
    v = api_form_value(f, strlen(f), "empty");
    CHECK_STR(v, "");
    free(v);
    CHECK(api_form_value(f, strlen(f), "fro") == NULL);
    CHECK(api_form_value(f, strlen(f), "missing") == NULL);
}

/* The provider callback bodies (gateway/callbacks.c): items of each kind,
 * the refusals, and the checks before a reply is stored. */
static void test_callbacks(void)
{
    api_cb_parsed p;
    const char *ali = "[{\"phone_number\":\"13900000011\",\"content\":\"1121\"},"
                      "{\"phone_number\":\"13900000012\",\"success\":false,\"err_code\":\"MK:0001\",\"biz_id\":\"9\"},"
                      "7]";
    CHECK_INT(api_cb_parse_aliyun(ali, strlen(ali), 32, &p), 0);
    CHECK_INT((int)p.n, 3);
    CHECK_INT(p.items[0].kind, API_CB_REPLY);
    CHECK_STR(p.items[0].phone, "13900000011");
    CHECK_STR(p.items[0].text, "1121");
    CHECK_INT(p.items[1].kind, API_CB_REPORT);
    CHECK_INT(p.items[1].delivered, 0);
    CHECK_STR(p.items[1].ref, "9");
    CHECK_STR(p.items[1].code, "MK:0001");
    CHECK_INT(p.items[2].kind, API_CB_SKIP);
    CHECK_INT((int)p.items[2].index, 2);
    api_cb_parsed_free(&p);
    CHECK_INT(api_cb_parse_aliyun("{}", 2, 32, &p), -1);
    CHECK_INT(p.status, 400);
    CHECK_HAS(p.err, "JSON array");
    api_cb_parsed_free(&p);
    CHECK_INT(api_cb_parse_aliyun("[[[]]]", 6, 2, &p), -1);
    CHECK_HAS(p.err, "too deep");
    api_cb_parsed_free(&p);

    const char *tx = "{\"mobile\":\"13900000012\",\"nationcode\":\"86\",\"text\":\"不满意\"}";
    CHECK_INT(api_cb_parse_tencent(tx, strlen(tx), 32, &p), 0);
    CHECK_INT(p.single, 1);
    CHECK_STR(p.items[0].phone, "+8613900000012");
    api_cb_parsed_free(&p);
    tx = "[{\"mobile\":\"13900000013\",\"nationcode\":\"86\",\"report_status\":\"SUCCESS\",\"sid\":\"s1\"},{\"mobile\":\"1\"}]";
    CHECK_INT(api_cb_parse_tencent(tx, strlen(tx), 32, &p), 0);
    CHECK_INT(p.single, 0);
    CHECK_INT(p.items[0].kind, API_CB_REPORT);
    CHECK_INT(p.items[0].delivered, 1);
    CHECK_INT(p.items[1].kind, API_CB_SKIP);
    api_cb_parsed_free(&p);
    CHECK_INT(api_cb_parse_tencent("", 0, 32, &p), -1);
    CHECK_HAS(p.err, "empty");
    api_cb_parsed_free(&p);

    const char *g = "{\"from\":\"+8613900000008\",\"bad\":\"x\"}";
    CHECK_INT(api_cb_parse_generic(g, strlen(g), 0, 32, &p), -1);
    CHECK_INT(p.status, 422);
    CHECK_STR(p.field, "bad");
    api_cb_parsed_free(&p);
    g = "from=13900000009&text=%E6%BB%A1%E6%84%8F+1";
    CHECK_INT(api_cb_parse_generic(g, strlen(g), 1, 32, &p), 0);
    CHECK_STR(p.items[0].text, "满意 1");
    char num[PHONE_MAX], why[200];
    const char *field = NULL;
    CHECK_INT(api_cb_check_inbound(p.items[0].phone, p.items[0].text, num, &field, why, sizeof why), 0);
    CHECK_STR(num, "+8613900000009");
    CHECK_INT(api_cb_check_inbound("12", "x", num, &field, why, sizeof why), 1);
    CHECK_STR(field, "from");
    CHECK_INT(api_cb_check_inbound("13900000009", "\xff", num, &field, why, sizeof why), 1);
    CHECK_STR(field, "text");
    api_cb_parsed_free(&p);

    api_cb_mm7 m;
    CHECK_INT(api_cb_parse_mm7("<m:TransactionID>a<b</m:TransactionID><x/>", &m), -1);
    CHECK_INT(api_cb_parse_mm7("<e:TransactionID>t&1\"</e:TransactionID><DeliveryReportReq><MessageID>m1</MessageID>"
                               "<Recipient><Number>139</Number></Recipient><MMStatus>Expired</MMStatus>", &m), 0);
    CHECK_STR(m.tid, "t_1_");
    CHECK_STR(m.message_id, "m1");
    CHECK_STR(m.number, "139");
    CHECK_STR(m.status, "Expired");
    CHECK_INT(api_cb_parse_mm7("<DeliveryReportReq><MMStatus>Expired</MMStatus>", &m), -2);
}

/* Loads a config text; returns api_config_parse's result. The strings of ac
 * point into the freed config: only its numbers may be checked. */
static int load_api(const char *api_group, api_config *ac, char *err, size_t errlen)
{
    char path[] = "/tmp/herald-test-api-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -2;
    FILE *f = fdopen(fd, "w");
    fprintf(f, "routes = ( { name = \"r1\"; driver = \"sink\"; } );\n%s\n", api_group);
    fclose(f);
    gw_config c;
    int rc = gw_config_load(&c, path, err, errlen);
    if (rc == 0) {
        rc = api_config_parse(&c, ac, err, errlen);
        gw_config_free(&c);
    }
    unlink(path);
    return rc;
}

static void test_config(void)
{
    char err[512];
    api_config ac;
    CHECK_INT(load_api("", &ac, err, sizeof err), 0);
    CHECK_INT(ac.enabled, 0);
    CHECK_STR(ac.listen, "127.0.0.1");
    CHECK_INT(ac.port, 8088);
    CHECK_INT(ac.max_body_bytes, 1048576);

    CHECK_INT(load_api("api = { enabled = true; };", &ac, err, sizeof err), -1);
    CHECK_HAS(err, "api.tokens: the API is enabled but has no token");
    CHECK_INT(load_api("api = { enabled = true; admin_token_file = \"/tmp/x\"; };", &ac, err, sizeof err), 0);
    CHECK_INT(load_api("api = { listen = \"localhost\"; };", &ac, err, sizeof err), -1);
    CHECK_HAS(err, "api.listen: 'localhost' is not an IPv4 or IPv6 address");
    CHECK_INT(load_api("api = { listen = \"::1\"; };", &ac, err, sizeof err), 0);
    CHECK_INT(load_api("api = { tokens = ( { name = \"a\"; token = \"short\"; scopes = [\"send\"]; } ); };",
                       &ac, err, sizeof err), -1);
    CHECK_HAS(err, "api.tokens.[0].token: too short");
    CHECK_INT(load_api("api = { tokens = ( { name = \"a\"; token = \"0123456789abcdef\"; scopes = [\"sned\"]; } ); };",
                       &ac, err, sizeof err), -1);
    CHECK_HAS(err, "api.tokens.[0].scopes: unknown scope 'sned'");
    CHECK_INT(load_api("api = { tokens = ( { name = \"a\"; token = \"0123456789abcdef\"; scopes = [\"send\"]; },"
                       " { name = \"b\"; token = \"0123456789abcdef\"; scopes = [\"read\"]; } ); };",
                       &ac, err, sizeof err), -1);
    CHECK_HAS(err, "api.tokens.[1].token: the same token as api.tokens.[0]");
    CHECK_INT(load_api("api = { tokens = ( { name = \"a\"; token = \"0123456789abcdef\"; scopes = [\"admin\"];"
                       " rate_per_minute = 60; } ); };", &ac, err, sizeof err), 0);
    CHECK_INT(ac.ntokens, 1);
    CHECK_INT(ac.tokens[0].scopes & (API_SCOPE_SEND | API_SCOPE_READ | API_SCOPE_CONTACTS | API_SCOPE_BULLETIN),
              API_SCOPE_SEND | API_SCOPE_READ | API_SCOPE_CONTACTS | API_SCOPE_BULLETIN);
    CHECK_INT(ac.tokens[0].rate_per_minute, 60);
    CHECK_INT(load_api("api = { tokens = ( { name = \"a\"; token = \"0123456789abcdef\"; } ); };",
                       &ac, err, sizeof err), -1);
    CHECK_HAS(err, "scopes: required key is missing");
    CHECK_INT(load_api("api = { callbacks = ( { route = \"r2\"; secret = \"0123456789abcdef\"; } ); };",
                       &ac, err, sizeof err), -1);
    CHECK_HAS(err, "api.callbacks.[0].route: no route is named 'r2'");
    CHECK_INT(load_api("api = { callbacks = ( { route = \"r1\"; secret = \"0123456789abcdef\"; format = \"smpp\"; } ); };",
                       &ac, err, sizeof err), -1);
    CHECK_HAS(err, "api.callbacks.[0].format: 'smpp' is not a known format");
    CHECK_INT(load_api("api = { callbacks = ( { route = \"r1\"; secret = \"0123456789abcdef\"; } ); };",
                       &ac, err, sizeof err), 0);
    CHECK_INT(ac.ncallbacks, 1);
    CHECK_STR(ac.callbacks[0].format, "generic");
    CHECK_INT(load_api("api = { kannel = { enabled = true; username = \"u\"; }; };", &ac, err, sizeof err), -1);
    CHECK_HAS(err, "api.kannel.password: required when api.kannel.enabled is true");
    CHECK_INT(load_api("api = { kannel = { enabled = true; username = \"u\"; password = \"p\"; template = \"t\"; }; };",
                       &ac, err, sizeof err), 0);
    CHECK_INT(ac.kannel_enabled, 1);
    CHECK_INT(load_api("api = { port = 70000; };", &ac, err, sizeof err), -1);
    CHECK_HAS(err, "api.port: 70000 is out of range");
}

/* Does openapi.yaml list `method` under `path`? (path lines are indented
 * two spaces, methods four.) */
static int openapi_has(const char *yaml, const char *method, const char *path)
{
    char want[300], m[16];
    snprintf(want, sizeof want, "\n  %s:\n", path);
    const char *p = strstr(yaml, want);
    if (!p)
        return 0;
    p += strlen(want);
    size_t i;
    for (i = 0; method[i] && i < sizeof m - 1; i++)
        m[i] = (char)(method[i] - 'A' + 'a');
    m[i] = '\0';
    snprintf(want, sizeof want, "    %s:", m);
    for (const char *line = p; *line; ) {
        if (strncmp(line, "  /", 3) == 0 || (line[0] != ' ' && line[0] != '\n'))
            return 0;                 /* the next path or section */
        if (strncmp(line, want, strlen(want)) == 0)
            return 1;
        const char *nl = strchr(line, '\n');
        if (!nl)
            break;
        line = nl + 1;
    }
    return 0;
}

static void test_routes_documented(void)
{
    char *md = slurp("docs/api.md");
    char *yaml = slurp("docs/openapi.yaml");
    CHECK(md != NULL);
    CHECK(yaml != NULL);
    if (!md || !yaml) {
        free(md);
        free(yaml);
        return;
    }
    size_t n;
    const api_route_info *rt = api_route_table(&n);
    CHECK(n >= 9);
    for (size_t i = 0; i < n; i++) {
        char h[300];
        snprintf(h, sizeof h, "\n### %s %s\n", rt[i].method, rt[i].path);
        /* the query form shares its path with the body form */
        if (strcmp(rt[i].path, "/v1/messages") == 0 && strcmp(rt[i].method, "GET") == 0)
            snprintf(h, sizeof h, "\n### GET /v1/messages?key=K\n");
        if (!strstr(md, h)) {
            fprintf(stderr, "  route %s %s is not documented in docs/api.md\n", rt[i].method, rt[i].path);
            CHECK(0);
        } else {
            CHECK(1);
        }
        if (!openapi_has(yaml, rt[i].method, rt[i].path)) {
            fprintf(stderr, "  route %s %s is not in docs/openapi.yaml\n", rt[i].method, rt[i].path);
            CHECK(0);
        } else {
            CHECK(1);
        }
    }
    /* every endpoint heading in docs/api.md is a route the server answers */
    for (const char *p = strstr(md, "\n### "); p; p = strstr(p + 1, "\n### ")) {
        char method[16], path[256];
        if (sscanf(p + 5, "%15s %255[^\n?]", method, path) != 2 || path[0] != '/')
            continue;
        int found = 0;
        for (size_t i = 0; i < n; i++)
            found |= strcmp(rt[i].method, method) == 0 && strcmp(rt[i].path, path) == 0;
        if (!found)
            fprintf(stderr, "  docs/api.md documents %s %s, which the server does not answer\n", method, path);
        CHECK(found);
    }
    free(md);
    free(yaml);
}

int main(void)
{
    test_from_json();
    test_prepare_fields();
    test_depth_and_form();
    test_callbacks();
    test_config();
    test_routes_documented();
    return TEST_REPORT();
}
