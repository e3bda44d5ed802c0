/* test_http_providers.c -- the pure parts of the HTTP drivers: the two
 * published signature examples (Alibaba Cloud RPC, Tencent Cloud TC3),
 * percent-encoding, provider template parameters, the generic driver's
 * request building, and the classification of answers, garbage included.
 * No network: bytes in, results out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/cloud.h"
#include "providers/curl_util.h"
#include "tests/unit/test.h"

static prov_result classify_aliyun(long status, const char *body, long long ra)
{
    prov_result r;
    memset(&r, 0x5a, sizeof r);       /* the classifier must set what it reports */
    r.refs[0] = r.error[0] = '\0';
    aliyun_classify(status, body, ra, &r);
    return r;
}

static prov_result classify_tencent(long status, const char *body, long long ra)
{
    prov_result r;
    memset(&r, 0, sizeof r);
    tencent_classify(status, body, ra, &r);
    return r;
}

static void test_aliyun_published_example(void)
{
    /* https://help.aliyun.com/document_detail/101343.html: the example
     * request, signed with AccessKeySecret "testSecret" */
    prov_kv p[] = {
        { "Version", "2017-05-25" }, { "Timestamp", "2017-07-12T02:42:19Z" },
        { "TemplateParam", "{\"customer\":\"test\"}" }, { "TemplateCode", "SMS_71390007" },
        { "SignatureVersion", "1.0" }, { "SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466" },
        { "SignatureMethod", "HMAC-SHA1" }, { "SignName", "阿里云短信测试专用" },
        { "RegionId", "cn-hangzhou" }, { "PhoneNumbers", "15300000001" }, { "OutId", "123" },
        { "Format", "XML" }, { "Action", "SendSms" }, { "AccessKeyId", "testId" },
    };
    char *canon = aliyun_canonical(p, sizeof p / sizeof p[0]);
    CHECK_STR(canon,
              "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001"
              "&RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B"
              "%E8%AF%95%E4%B8%93%E7%94%A8&SignatureMethod=HMAC-SHA1"
              "&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0"
              "&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D"
              "&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25");
    char *sts = aliyun_string_to_sign("GET", canon);
    CHECK(sts && strncmp(sts, "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms", 47) == 0);
    char sig[64];
    aliyun_signature("GET", canon, "testSecret", sig);
    CHECK_STR(sig, "zJDF+Lrzhj/ThnlvIToysFRq6t4=");
    /* the method is signed: POST gives another signature */
    aliyun_signature("POST", canon, "testSecret", sig);
    CHECK(strcmp(sig, "zJDF+Lrzhj/ThnlvIToysFRq6t4=") != 0);
    free(sts);
    free(canon);
}

static void test_tencent_published_example(void)
{
    /* https://cloud.tencent.com/document/api/213/30654 (signature v3): the
     * asterisks in the keys are literal */
    char date[11], sig[65];
    tc3_signature("Gu5t9xGARNpq86cd98joQYCN3*******", "cvm", "cvm.tencentcloudapi.com",
                  "application/json; charset=utf-8",
                  "{\"Limit\": 1, \"Filters\": [{\"Values\": [\"\\u672a\\u547d\\u540d\"], \"Name\": \"instance-name\"}]}",
                  1551113065, date, sig);
    CHECK_STR(sig, "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c");
    /* 1551113065 is 2019-02-25 16:44:25 UTC, 2019-02-26 00:44:25 in Beijing:
     * the date signed is the UTC one, whatever the process's time zone */
    CHECK_STR(date, "2019-02-25");
    setenv("TZ", "Asia/Shanghai", 1);
    tc3_signature("Gu5t9xGARNpq86cd98joQYCN3*******", "cvm", "cvm.tencentcloudapi.com",
                  "application/json; charset=utf-8",
                  "{\"Limit\": 1, \"Filters\": [{\"Values\": [\"\\u672a\\u547d\\u540d\"], \"Name\": \"instance-name\"}]}",
                  1551113065, date, sig);
    CHECK_STR(date, "2019-02-25");
    CHECK_STR(sig, "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c");
    unsetenv("TZ");
}

static void test_encoding(void)
{
    char *s = prov_pct_encode("a b~*+/é", strlen("a b~*+/é"));
    CHECK_STR(s, "a%20b~%2A%2B%2F%C3%A9");
    free(s);
    s = prov_form_encode("a b&c=d");
    CHECK_STR(s, "a+b%26c%3Dd");
    free(s);
    char b[16];
    prov_base64((const unsigned char *)"ab", 2, b);
    CHECK_STR(b, "YWI=");
    CHECK_STR(prov_national("+8613800138000"), "13800138000");
    CHECK_STR(prov_national("+85291234567"), "+85291234567");
    char d[128];
    prov_detail_clean("bad number 13800138000\n here", d, sizeof d);
    CHECK(strstr(d, "13800138000") == NULL);
    CHECK(strchr(d, '\n') == NULL);
}

static void test_template_params(void)
{
    char err[200];
    const char *vars = "{\"name\":\"张三\",\"case_no\":\"某检刑诉〔2026〕1号\",\"phone\":\"0571-1\"}";
    char *p = prov_template_params(vars, "customer=name, case=case_no", 0, err, sizeof err);
    CHECK_STR(p, "{\"case\":\"某检刑诉〔2026〕1号\",\"customer\":\"张三\"}");
    free(p);
    p = prov_template_params(vars, NULL, 0, err, sizeof err);
    CHECK_STR(p, "{\"case_no\":\"某检刑诉〔2026〕1号\",\"name\":\"张三\",\"phone\":\"0571-1\"}");
    free(p);
    /* Tencent: positional, in the map's order */
    p = prov_template_params(vars, "1=phone, 2=name", 1, err, sizeof err);
    CHECK_STR(p, "[\"0571-1\",\"张三\"]");
    free(p);
    p = prov_template_params(vars, "x=missing", 0, err, sizeof err);
    CHECK(p == NULL);
    CHECK_HAS(err, "missing");
    p = prov_template_params("[1,2]", NULL, 0, err, sizeof err);
    CHECK(p == NULL);
    CHECK_HAS(err, "not a JSON object");
}

static void test_aliyun_classify(void)
{
    prov_result r = classify_aliyun(200, "{\"Message\":\"OK\",\"RequestId\":\"x\",\"BizId\":\"9006197469364984^0\",\"Code\":\"OK\"}", 0);
    CHECK_INT(r.status, PROV_OK);
    CHECK_STR(r.refs, "9006197469364984^0");
    r = classify_aliyun(200, "{\"Code\":\"isv.BUSINESS_LIMIT_CONTROL\",\"Message\":\"触发分钟级流控\"}", 0);
    CHECK_INT(r.status, PROV_THROTTLED);
    CHECK_HAS(r.error, "isv.BUSINESS_LIMIT_CONTROL");
    r = classify_aliyun(200, "{\"Code\":\"isv.MOBILE_NUMBER_ILLEGAL\",\"Message\":\"非法手机号\"}", 0);
    CHECK_INT(r.status, PROV_PERMANENT);
    r = classify_aliyun(200, "{\"Code\":\"isp.SYSTEM_ERROR\",\"Message\":\"x\"}", 0);
    CHECK_INT(r.status, PROV_TRANSIENT);
    r = classify_aliyun(400, "{\"Code\":\"SignatureDoesNotMatch\",\"Message\":\"x\"}", 0);
    CHECK_INT(r.status, PROV_TRANSIENT);
    /* a nonce is used once: "used" means our own request was resent */
    r = classify_aliyun(400, "{\"Code\":\"SignatureNonceUsed\",\"Message\":\"x\"}", 0);
    CHECK_INT(r.status, PROV_UNCERTAIN);
    r = classify_aliyun(200, "{\"Code\":\"isv.SOMETHING_NEW\"}", 0);
    CHECK_INT(r.status, PROV_TRANSIENT);
    r = classify_aliyun(200, "{\"Code\":\"OK\"}", 0);       /* no BizId */
    CHECK_INT(r.status, PROV_UNCERTAIN);
    /* garbage: a 200 we cannot read perhaps sent the message */
    r = classify_aliyun(200, "<html>502 \x01\xff", 0);
    CHECK_INT(r.status, PROV_UNCERTAIN);
    r = classify_aliyun(200, "", 0);
    CHECK_INT(r.status, PROV_UNCERTAIN);
    r = classify_aliyun(200, "{\"Code\":12}", 0);
    CHECK_INT(r.status, PROV_UNCERTAIN);
    r = classify_aliyun(503, "service unavailable", 0);
    CHECK_INT(r.status, PROV_TRANSIENT);
    r = classify_aliyun(429, "slow down", 7000);
    CHECK_INT(r.status, PROV_THROTTLED);
    CHECK_INT(r.retry_after_ms, 7000);
    r = classify_aliyun(200, "[1,2,3]", 0);
    CHECK_INT(r.status, PROV_UNCERTAIN);
}

static void test_tencent_classify(void)
{
    prov_result r = classify_tencent(200, "{\"Response\":{\"SendStatusSet\":[{\"SerialNo\":\"5000:1045710669157053657849499619\","
                                     "\"PhoneNumber\":\"+8613800138000\",\"Fee\":1,\"SessionContext\":\"x\",\"Code\":\"Ok\","
                                     "\"Message\":\"send success\",\"IsoCode\":\"CN\"}],\"RequestId\":\"a\"}}", 0);
    CHECK_INT(r.status, PROV_OK);
    CHECK_STR(r.refs, "5000:1045710669157053657849499619");
    r = classify_tencent(200, "{\"Response\":{\"SendStatusSet\":[{\"SerialNo\":\"\",\"Code\":"
                         "\"InvalidParameterValue.IncorrectPhoneNumber\",\"Message\":\"bad\"}],\"RequestId\":\"a\"}}", 0);
    CHECK_INT(r.status, PROV_PERMANENT);
    CHECK_HAS(r.error, "recipient refused");
    r = classify_tencent(200, "{\"Response\":{\"SendStatusSet\":[{\"Code\":\"LimitExceeded.PhoneNumberThirtySecondLimit\"}]}}", 0);
    CHECK_INT(r.status, PROV_THROTTLED);
    r = classify_tencent(200, "{\"Response\":{\"Error\":{\"Code\":\"AuthFailure.SignatureFailure\",\"Message\":\"x\"},\"RequestId\":\"a\"}}", 0);
    CHECK_INT(r.status, PROV_TRANSIENT);
    r = classify_tencent(200, "{\"Response\":{\"Error\":{\"Code\":\"RequestLimitExceeded\",\"Message\":\"x\"}}}", 4000);
    CHECK_INT(r.status, PROV_THROTTLED);
    CHECK_INT(r.retry_after_ms, 4000);
    r = classify_tencent(200, "{\"Response\":{\"Error\":{\"Code\":\"UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber\"}}}", 0);
    CHECK_INT(r.status, PROV_PERMANENT);
    r = classify_tencent(200, "not json at all", 0);
    CHECK_INT(r.status, PROV_UNCERTAIN);
    r = classify_tencent(200, "{\"Response\":{\"SendStatusSet\":[]}}", 0);
    CHECK_INT(r.status, PROV_UNCERTAIN);
    r = classify_tencent(502, "<html>", 0);
    CHECK_INT(r.status, PROV_TRANSIENT);
    r = classify_tencent(429, "", 2000);
    CHECK_INT(r.status, PROV_THROTTLED);
}

static config_setting_t *opts_from(config_t *cfg, const char *text)
{
    config_init(cfg);
    if (config_read_string(cfg, text) != CONFIG_TRUE) {
        fprintf(stderr, "config: %s at line %d\n", config_error_text(cfg), config_error_line(cfg));
        return NULL;
    }
    return config_lookup(cfg, "opts");
}

static prov_msg sample_msg(void)
{
    prov_msg m = {
        .id = "01abc", .to = "+8613800138000", .text = "【某院】张三：您好 & 100%", .encoding = "ucs2",
        .parts = 2, .family = "rights_notice", .template_name = "rights_notice_suspect",
        .provider_code = "SMS_1", .vars_json = "{\"name\":\"张三\",\"case_no\":\"1号\"}",
        .provider_params = "n=name", .attempt = 1,
    };
    return m;
}

static void test_http_build(void)
{
    config_t cfg;
    char err[300];
    prov_msg m = sample_msg();
    httpgen_request rq;

    config_setting_t *o = opts_from(&cfg,
        "opts = { url = \"http://127.0.0.1:1/send?u=herald&to={{to}}\"; method = \"POST\"; encoding = \"form\";"
        " params = [ \"mobile={{to_national}}\", \"msg={{text}}\", \"ref={{id}}\", \"n={{parts}}\" ];"
        " headers = [ \"X-Ref: {{id}}\" ]; };");
    httpgen *g = httpgen_new("t", o, err, sizeof err);
    CHECK(g != NULL);
    CHECK_INT(httpgen_build(g, &m, &rq, err, sizeof err), 0);
    CHECK_STR(rq.url, "http://127.0.0.1:1/send?u=herald&to=%2B8613800138000");
    CHECK_STR(rq.body, "mobile=13800138000&msg=%E3%80%90%E6%9F%90%E9%99%A2%E3%80%91%E5%BC%A0%E4%B8%89"
                       "%EF%BC%9A%E6%82%A8%E5%A5%BD+%26+100%25&ref=01abc&n=2");
    CHECK_STR(rq.headers[0], "X-Ref: 01abc");
    CHECK_HAS(rq.headers[1], "application/x-www-form-urlencoded");
    CHECK(rq.headers[2] == NULL);
    httpgen_request_free(&rq);
    httpgen_free(g);
    config_destroy(&cfg);

    o = opts_from(&cfg,
        "opts = { url = \"http://127.0.0.1:1/json\"; encoding = \"json\";"
        " params = [ \"to={{to}}\", \"text={{text}}\", \"vars:={{params}}\", \"parts:={{parts}}\" ]; };");
    g = httpgen_new("t", o, err, sizeof err);
    CHECK(g != NULL);
    CHECK_INT(httpgen_build(g, &m, &rq, err, sizeof err), 0);
    CHECK_STR(rq.body, "{\"parts\":2,\"text\":\"【某院】张三：您好 & 100%\",\"to\":\"+8613800138000\",\"vars\":{\"n\":\"张三\"}}");
    CHECK_HAS(rq.headers[0], "application/json");
    httpgen_request_free(&rq);
    httpgen_free(g);
    config_destroy(&cfg);

    o = opts_from(&cfg, "opts = { url = \"http://x/?a=1\"; method = \"GET\"; encoding = \"query\";"
                  " params = [ \"to={{to}}\", \"t={{text}}\" ]; };");
    g = httpgen_new("t", o, err, sizeof err);
    CHECK(g != NULL);
    CHECK_INT(httpgen_build(g, &m, &rq, err, sizeof err), 0);
    CHECK_HAS(rq.url, "http://x/?a=1&to=%2B8613800138000&t=%E3%80%90");
    CHECK(rq.headers[0] == NULL);
    httpgen_request_free(&rq);
    httpgen_free(g);
    config_destroy(&cfg);

    /* a whole-body template: values JSON-escaped inside the template's quotes */
    o = opts_from(&cfg, "opts = { url = \"http://x/\"; encoding = \"json\";"
                  " body = \"{\\\"msg\\\":{\\\"to\\\":\\\"{{to}}\\\",\\\"c\\\":\\\"{{text}}\\\"},\\\"n\\\":{{parts}}}\"; };");
    g = httpgen_new("t", o, err, sizeof err);
    CHECK(g != NULL);
    prov_msg q = sample_msg();
    q.text = "say \"hi\"\n张三";
    CHECK_INT(httpgen_build(g, &q, &rq, err, sizeof err), 0);
    CHECK_STR(rq.body, "{\"msg\":{\"to\":\"+8613800138000\",\"c\":\"say \\\"hi\\\"\\n张三\"},\"n\":2}");
    httpgen_request_free(&rq);
    httpgen_free(g);
    config_destroy(&cfg);
    o = opts_from(&cfg, "opts = { url = \"http://x/\"; body = \"a={{text}}&b=1\"; };");
    g = httpgen_new("t", o, err, sizeof err);
    CHECK(g != NULL);
    CHECK_INT(httpgen_build(g, &q, &rq, err, sizeof err), 0);
    CHECK_STR(rq.body, "a=say+%22hi%22%0A%E5%BC%A0%E4%B8%89&b=1");
    httpgen_request_free(&rq);
    httpgen_free(g);
    config_destroy(&cfg);
    o = opts_from(&cfg, "opts = { url = \"http://x/\"; body = \"a\"; params = [ \"b=c\" ]; };");
    CHECK(httpgen_new("t", o, err, sizeof err) == NULL);
    CHECK_HAS(err, "give one, not both");
    config_destroy(&cfg);

    /* mistakes in the options are refused with the key named */
    o = opts_from(&cfg, "opts = { url = \"http://x/{{too}}\"; };");
    CHECK(httpgen_new("t", o, err, sizeof err) == NULL);
    CHECK_HAS(err, "http.url: unknown field '{{too}}'");
    config_destroy(&cfg);
    o = opts_from(&cfg, "opts = { url = \"ftp://x/\"; };");
    CHECK(httpgen_new("t", o, err, sizeof err) == NULL);
    CHECK_HAS(err, "is not an http(s) URL");
    config_destroy(&cfg);
    o = opts_from(&cfg, "opts = { url = \"http://x/\"; success_match = \"(\"; };");
    CHECK(httpgen_new("t", o, err, sizeof err) == NULL);
    CHECK_HAS(err, "http.success_match: bad regular expression");
    config_destroy(&cfg);
    o = opts_from(&cfg, "opts = { url = \"http://x/\"; method = \"GET\"; encoding = \"form\"; };");
    CHECK(httpgen_new("t", o, err, sizeof err) == NULL);
    CHECK_HAS(err, "encoding = \"query\"");
    config_destroy(&cfg);
    o = opts_from(&cfg, "opts = { url = \"http://x/\"; success_status = \"2xx\"; };");
    CHECK(httpgen_new("t", o, err, sizeof err) == NULL);
    CHECK_HAS(err, "http.success_status");
    config_destroy(&cfg);
    o = opts_from(&cfg, "opts = { url = \"http://x/\"; params = [ \"novalue\" ]; };");
    CHECK(httpgen_new("t", o, err, sizeof err) == NULL);
    CHECK_HAS(err, "is not name=template");
    config_destroy(&cfg);
}

static void test_http_classify(void)
{
    config_t cfg;
    char err[300];
    config_setting_t *o = opts_from(&cfg,
        "opts = { url = \"http://x/\"; success_match = \"\\\"result\\\": *0[,}]\"; id_json = \"data.list[0].sid\";"
        " error_json = \"result\"; throttled_codes = [ \"1008\" ]; permanent_codes = [ \"1003\" ];"
        " transient_codes = [ \"1500\" ]; permanent_status = \"400,422\"; };");
    httpgen *g = httpgen_new("t", o, err, sizeof err);
    CHECK(g != NULL);
    if (!g) {
        config_destroy(&cfg);
        return;
    }
    prov_result r;
    httpgen_classify(g, 200, "{\"result\": 0, \"data\":{\"list\":[{\"sid\":\"S-9\"}]}}", 0, &r);
    CHECK_INT(r.status, PROV_OK);
    CHECK_STR(r.refs, "S-9");
    httpgen_classify(g, 200, "{\"result\":1008}", 3000, &r);
    CHECK_INT(r.status, PROV_THROTTLED);
    CHECK_INT(r.retry_after_ms, 3000);
    httpgen_classify(g, 200, "{\"result\":1003,\"msg\":\"bad number\"}", 0, &r);
    CHECK_INT(r.status, PROV_PERMANENT);
    CHECK_HAS(r.error, "code 1003");
    httpgen_classify(g, 200, "{\"result\":1500}", 0, &r);
    CHECK_INT(r.status, PROV_TRANSIENT);
    httpgen_classify(g, 200, "{\"result\":7777}", 0, &r);   /* unknown code */
    CHECK_INT(r.status, PROV_TRANSIENT);
    httpgen_classify(g, 200, "<html>gateway error", 0, &r);  /* garbage 200 */
    CHECK_INT(r.status, PROV_UNCERTAIN);
    httpgen_classify(g, 422, "nope", 0, &r);
    CHECK_INT(r.status, PROV_PERMANENT);
    httpgen_classify(g, 503, "", 0, &r);
    CHECK_INT(r.status, PROV_TRANSIENT);
    httpgen_classify(g, 429, "", 9000, &r);
    CHECK_INT(r.status, PROV_THROTTLED);
    CHECK_INT(r.retry_after_ms, 9000);
    httpgen_free(g);
    config_destroy(&cfg);

    o = opts_from(&cfg, "opts = { url = \"http://x/\"; success_status = \"200\"; success_match = \"^OK\";"
                  " id_regex = \"^OK id=([0-9]+)\"; error_regex = \"^ERR ([0-9]+)\"; permanent_codes = [ \"12\" ]; };");
    g = httpgen_new("t", o, err, sizeof err);
    CHECK(g != NULL);
    httpgen_classify(g, 200, "OK id=4711", 0, &r);
    CHECK_INT(r.status, PROV_OK);
    CHECK_STR(r.refs, "4711");
    httpgen_classify(g, 200, "ERR 12 bad number", 0, &r);
    CHECK_INT(r.status, PROV_PERMANENT);
    httpgen_classify(g, 202, "OK id=1", 0, &r);              /* not in success_status */
    CHECK_INT(r.status, PROV_TRANSIENT);
    httpgen_free(g);
    config_destroy(&cfg);
}

/* Retry-After as curl hands the header line over: seconds, an HTTP date,
 * a figure too big for a clock (capped at a day), other headers. */
static void test_retry_after(void)
{
    const char *h = "Retry-After: 120\r\n";
    CHECK(prov_retry_after_ms(h, strlen(h), 0) == 120000);
    h = "retry-after:\t 3 \r\n";
    CHECK(prov_retry_after_ms(h, strlen(h), 0) == 3000);
    h = "Retry-After: Wed, 21 Oct 2026 07:28:00 GMT\r\n";     /* 1792567680 */
    CHECK(prov_retry_after_ms(h, strlen(h), 1792567680LL - 30) == 30000);
    CHECK(prov_retry_after_ms(h, strlen(h), 1792567680LL + 30) == 0);   /* past */
    h = "Retry-After: 99999999999999999999\r\n";
    CHECK(prov_retry_after_ms(h, strlen(h), 0) == PROV_RETRY_AFTER_MAX_MS);
    h = "Retry-After: -5\r\n";
    CHECK(prov_retry_after_ms(h, strlen(h), 0) == 0);
    h = "Retry-After: soon\r\n";
    CHECK(prov_retry_after_ms(h, strlen(h), 0) == 0);
    h = "Content-Type: text/plain\r\n";
    CHECK(prov_retry_after_ms(h, strlen(h), 0) == 0);
}

int main(void)
{
    test_aliyun_published_example();
    test_tencent_published_example();
    test_encoding();
    test_template_params();
    test_aliyun_classify();
    test_tencent_classify();
    test_http_build();
    test_http_classify();
    test_retry_after();
    return TEST_REPORT();
}
