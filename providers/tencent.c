/* tencent.c -- the "tencent" driver: Tencent Cloud SMS, action SendSms,
 * API version 2021-01-11, signed with TC3-HMAC-SHA256.
 *
 *   routes = ( { name = "tencent"; driver = "tencent";
 *                families = [ "rights_notice", "case_stage" ];
 *                tencent = { secret_id = "AKID..."; secret_key = "...";
 *                            sdk_app_id = "1400000000"; sign_name = "某市人民检察院"; }; } );
 *
 * Like Aliyun, Tencent sends approved templates only: TemplateId is the
 * template's provider_code, TemplateParamSet the values of its
 * provider_params in order. SessionContext carries Herald's message id.
 *
 * Signing (https://cloud.tencent.com/document/api/382/52072): canonical
 * request POST / "" with the signed headers content-type;host and the
 * payload's SHA-256; StringToSign = "TC3-HMAC-SHA256\n" timestamp "\n"
 * date/service/tc3_request "\n" SHA-256(canonical request), where date is
 * the UTC date of the timestamp (not Beijing's); the key is derived
 * HMAC("TC3"+SecretKey, date) -> service -> "tc3_request".
 *
 * One request carries one number, so a per-number failure inside an HTTP
 * 200 (SendStatusSet[0].Code other than "Ok") is this message's failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "gateway/log.h"
#include "providers/cloud.h"
#include "providers/curl_util.h"

typedef struct tencent {
    prov_curl *http;
    char *endpoint, *host, *secret_id, *secret_key, *app_id, *sign_name, *region;
} tencent;

static const cfg_key tencent_keys[] = {
    { "secret_id", CFG_STR, NULL, 0, 0, NULL, "SecretId of the API key" },
    { "secret_key", CFG_STR, NULL, 0, 0, NULL, "its SecretKey (never logged)" },
    { "sdk_app_id", CFG_STR, NULL, 0, 0, NULL, "SmsSdkAppId of the SMS application" },
    { "sign_name", CFG_STR, NULL, 0, 0, NULL, "the approved SignName" },
    { "endpoint", CFG_STR, "https://sms.tencentcloudapi.com/", 0, 0, NULL, "API endpoint URL" },
    { "host", CFG_STR, "", 0, 0, NULL, "Host that is signed (\"\" = the endpoint's host)" },
    { "region", CFG_STR, "ap-guangzhou", 0, 0, NULL, "X-TC-Region header" },
    PROV_HTTP_COMMON_KEYS,
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* ---- signing (pure) ------------------------------------------------------ */

void tc3_signature(const char *secret_key, const char *service, const char *host,
                   const char *content_type, const char *payload, long long timestamp,
                   char date[11], char sig[65])
{
    time_t t = (time_t)timestamp;
    struct tm tm;
    gmtime_r(&t, &tm);                 /* the UTC date: Beijing's may be a day later */
    strftime(date, 11, "%Y-%m-%d", &tm);

    char payload_hash[65], canon_hash[65];
    prov_sha256_hex(payload, strlen(payload), payload_hash);
    size_t clen = strlen(content_type) + strlen(host) + 200;
    char *canon = malloc(clen);
    size_t slen = strlen(service) + 200;
    char *sts = malloc(slen);
    size_t klen = strlen(secret_key) + 4;
    char *key = malloc(klen);
    sig[0] = '\0';
    if (canon && sts && key) {
        snprintf(canon, clen, "POST\n/\n\ncontent-type:%s\nhost:%s\n\ncontent-type;host\n%s",
                 content_type, host, payload_hash);
        prov_sha256_hex(canon, strlen(canon), canon_hash);
        snprintf(sts, slen, "TC3-HMAC-SHA256\n%lld\n%s/%s/tc3_request\n%s",
                 timestamp, date, service, canon_hash);
        snprintf(key, klen, "TC3%s", secret_key);
        unsigned char k1[32], k2[32], k3[32], s[32];
        prov_hmac_sha256(key, strlen(key), date, strlen(date), k1);
        prov_hmac_sha256(k1, 32, service, strlen(service), k2);
        prov_hmac_sha256(k2, 32, "tc3_request", 11, k3);
        prov_hmac_sha256(k3, 32, sts, strlen(sts), s);
        prov_hex(s, 32, sig);
    }
    free(canon);
    free(sts);
    free(key);
}

/* ---- classification (pure) ---------------------------------------------- */

/* Error codes (https://cloud.tencent.com/document/api/382/55981), by prefix
 * so a new code of a known family lands in its class. Number- and
 * content-level refusals are permanent; account-level ones are transient
 * (the route is broken, not the message: fail over). */
static const struct { const char *prefix; prov_status st; } codes[] = {
    { "LimitExceeded.", PROV_THROTTLED },          /* per-number and app frequency limits */
    { "RequestLimitExceeded", PROV_THROTTLED },
    { "InvalidParameterValue.IncorrectPhoneNumber", PROV_PERMANENT },
    { "InvalidParameterValue.ContentLengthLimit", PROV_PERMANENT },
    { "InvalidParameterValue.TemplateParameterFormatError", PROV_PERMANENT },
    { "InvalidParameterValue.TemplateParameterLengthLimit", PROV_PERMANENT },
    { "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter", PROV_PERMANENT },
    { "InvalidParameterValue.InvalidTemplateFormat", PROV_PERMANENT },
    { "FailedOperation.TemplateIncorrectOrUnapproved", PROV_PERMANENT },
    { "FailedOperation.ContainSensitiveWord", PROV_PERMANENT },
    { "FailedOperation.PhoneNumberInBlacklist", PROV_PERMANENT },
    { "FailedOperation.PhoneNumberParseFail", PROV_PERMANENT },
    { "FailedOperation.JsonParseFail", PROV_PERMANENT },
    { "UnsupportedOperation.", PROV_PERMANENT },
    { "MissingParameter", PROV_PERMANENT },
    { "FailedOperation.SignatureIncorrectOrUnapproved", PROV_TRANSIENT },
    { "FailedOperation.InsufficientBalanceInSmsPackage", PROV_TRANSIENT },
    { "AuthFailure", PROV_TRANSIENT },
    { "InternalError", PROV_TRANSIENT },
    { NULL, PROV_TRANSIENT }
};

static prov_status code_status(const char *code)
{
    int i;
    for (i = 0; codes[i].prefix; i++)
        if (strncmp(code, codes[i].prefix, strlen(codes[i].prefix)) == 0)
            break;
    return codes[i].st;
}

static void tencent_classify_body(long status, const char *body, long long retry_after_ms, prov_result *res)
{
    char c1[64], c2[120];
    res->refs[0] = '\0';
    res->retry_after_ms = 0;
    json_error_t je;
    json_t *root = body && *body ? json_loads(body, 0, &je) : NULL;
    json_t *resp = json_is_object(root) ? json_object_get(root, "Response") : NULL;
    json_t *error = json_object_get(resp, "Error");
    json_t *set = json_object_get(resp, "SendStatusSet");
    json_t *first = json_array_get(set, 0);
    if (json_is_object(error)) {
        const char *code = json_string_value(json_object_get(error, "Code"));
        const char *msg = json_string_value(json_object_get(error, "Message"));
        res->status = code ? code_status(code) : PROV_TRANSIENT;
        prov_detail_clean(code ? code : "?", c1, sizeof c1);
        prov_detail_clean(msg, c2, sizeof c2);
        snprintf(res->error, sizeof res->error, "tencent: %s: %s (HTTP %ld)", c1, c2, status);
    } else if (json_is_object(first)) {
        const char *code = json_string_value(json_object_get(first, "Code"));
        const char *serial = json_string_value(json_object_get(first, "SerialNo"));
        const char *msg = json_string_value(json_object_get(first, "Message"));
        if (code && strcmp(code, "Ok") == 0 && serial && *serial) {
            res->status = PROV_OK;
            snprintf(res->refs, sizeof res->refs, "%s", serial);
            res->error[0] = '\0';
        } else if (code && strcmp(code, "Ok") != 0) {
            res->status = code_status(code);
            prov_detail_clean(code, c1, sizeof c1);
            prov_detail_clean(msg, c2, sizeof c2);
            snprintf(res->error, sizeof res->error, "tencent: recipient refused: %s: %s", c1, c2);
        } else {
            res->status = PROV_UNCERTAIN;
            snprintf(res->error, sizeof res->error, "tencent: SendStatusSet without Code Ok and SerialNo");
        }
    } else if (status == 429) {
        res->status = PROV_THROTTLED;
        snprintf(res->error, sizeof res->error, "tencent: HTTP 429");
    } else {
        res->status = status >= 200 && status < 300 ? PROV_UNCERTAIN : PROV_TRANSIENT;
        prov_detail_clean(body, c2, 48);
        snprintf(res->error, sizeof res->error, "tencent: HTTP %ld with an unreadable answer: %s", status, c2);
    }
    if (res->status == PROV_THROTTLED)
        res->retry_after_ms = retry_after_ms;
    json_decref(root);
}

/* ---- the driver ----------------------------------------------------------- */

static void tencent_free(tencent *t)
{
    if (!t)
        return;
    prov_http_destroy(t->http);
    free(t->endpoint);
    free(t->host);
    free(t->secret_id);
    free(t->secret_key);
    free(t->app_id);
    free(t->sign_name);
    free(t->region);
    free(t);
}

/* "https://a.b:8080/x" -> "a.b:8080" */
static char *host_of(const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    char *h = malloc(n + 1);
    if (h) {
        memcpy(h, p, n);
        h[n] = '\0';
    }
    return h;
}

static int tencent_open(prov_route *r, const config_setting_t *opts, char *err, size_t errlen)
{
    if (prov_check_options(r, opts, tencent_keys, err, errlen) < 0)
        return -1;
    const char *ep = cfg_str(opts, tencent_keys, "endpoint");
    if (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0) {
        snprintf(err, errlen, "route '%s': tencent.endpoint: '%s' is not an http(s) URL", r->name, ep);
        return -1;
    }
    tencent *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "route '%s': out of memory", r->name);
        return -1;
    }
    const char *host = cfg_str(opts, tencent_keys, "host");
    t->endpoint = strdup(ep);
    t->host = *host ? strdup(host) : host_of(ep);
    t->secret_id = strdup(cfg_str(opts, tencent_keys, "secret_id"));
    t->secret_key = strdup(cfg_str(opts, tencent_keys, "secret_key"));
    t->app_id = strdup(cfg_str(opts, tencent_keys, "sdk_app_id"));
    t->sign_name = strdup(cfg_str(opts, tencent_keys, "sign_name"));
    t->region = strdup(cfg_str(opts, tencent_keys, "region"));
    if (!t->endpoint || !t->host || !t->secret_id || !t->secret_key || !t->app_id
        || !t->sign_name || !t->region) {
        snprintf(err, errlen, "route '%s': out of memory", r->name);
        tencent_free(t);
        return -1;
    }
    prov_http_opts ho;
    prov_http_opts_read(opts, tencent_keys, r->send_timeout_ms, &ho);
    t->http = prov_http_create(r->name, &ho, err, errlen);
    if (!t->http) {
        tencent_free(t);
        return -1;
    }
    r->priv = t;
    return 0;
}

static int tencent_send(prov_route *r, const prov_msg *m, prov_result *res)
{
    tencent *t = r->priv;
    memset(res, 0, sizeof *res);
    if (!m->provider_code || !*m->provider_code) {
        res->status = PROV_PERMANENT;
        snprintf(res->error, sizeof res->error, "tencent: template '%s' has no provider_code; "
                 "Tencent sends approved templates only", m->template_name ? m->template_name : "?");
        return 0;
    }
    char perr[200];
    char *plist = prov_template_params(m->vars_json, m->provider_params, 1, perr, sizeof perr);
    if (!plist) {
        res->status = PROV_PERMANENT;
        snprintf(res->error, sizeof res->error, "tencent: %s", perr);
        return 0;
    }
    json_error_t je;
    json_t *params = json_loads(plist, 0, &je);
    free(plist);
    /* TemplateParamSet is an array of strings */
    json_t *pset = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(params, i, v) {
        if (json_is_string(v))
            json_array_append(pset, v);
        else {
            char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            json_array_append_new(pset, json_string(s ? s : ""));
            free(s);
        }
    }
    json_decref(params);
    json_t *body = json_pack("{s:[s], s:s, s:s, s:s, s:o, s:s}",
                             "PhoneNumberSet", m->to, "SmsSdkAppId", t->app_id,
                             "SignName", t->sign_name, "TemplateId", m->provider_code,
                             "TemplateParamSet", pset, "SessionContext", m->id);
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!payload) {
        res->status = PROV_TRANSIENT;
        snprintf(res->error, sizeof res->error, "tencent: cannot build the request");
        return 0;
    }
    static const char ctype[] = "application/json; charset=utf-8";
    long long ts = (long long)time(NULL);
    char date[11], sig[65];
    tc3_signature(t->secret_key, "sms", t->host, ctype, payload, ts, date, sig);
    char auth[512], h_ts[64], h_region[96], h_host[300];
    snprintf(auth, sizeof auth, "Authorization: TC3-HMAC-SHA256 Credential=%s/%s/sms/tc3_request, "
             "SignedHeaders=content-type;host, Signature=%s", t->secret_id, date, sig);
    snprintf(h_ts, sizeof h_ts, "X-TC-Timestamp: %lld", ts);
    snprintf(h_region, sizeof h_region, "X-TC-Region: %s", t->region);
    snprintf(h_host, sizeof h_host, "Host: %s", t->host);
    const char *hdrs[] = {
        auth, "Content-Type: application/json; charset=utf-8", h_host,
        "X-TC-Action: SendSms", "X-TC-Version: 2021-01-11", h_ts, h_region, NULL
    };
    prov_http_req rq = { .method = "POST", .url = t->endpoint, .headers = hdrs,
                         .body = payload, .body_len = strlen(payload) };
    prov_http_resp rs;
    if (prov_http_do(t->http, &rq, &rs) < 0) {
        prov_http_transport_failure(&rs, "tencent", res);
    } else {
        tencent_classify(rs.status, rs.body, rs.retry_after_ms, res);
        if (res->status == PROV_OK)
            res->parts_sent = m->parts > 0 ? m->parts : 1;
    }
    prov_http_resp_free(&rs);
    free(payload);
    return 0;
}

static void tencent_health(prov_route *r, prov_health *h)
{
    tencent *t = r->priv;
    h->up = 1;
    h->signal_percent = -1;
    snprintf(h->state, sizeof h->state, "%d in flight", prov_http_in_flight(t->http));
}

static void tencent_close(prov_route *r)
{
    tencent_free(r->priv);
    r->priv = NULL;
}

const prov_driver prov_tencent = {
    .name = "tencent",
    .caps = PROV_CAP_SMS | PROV_CAP_PROVIDER_TEMPLATES,
    .keys = tencent_keys,
    .open = tencent_open,
    .send = tencent_send,
    .poll_inbound = NULL,
    .health = tencent_health,
    .close = tencent_close,
};

void tencent_classify(long status, const char *body, long long retry_after_ms, prov_result *res)
{
    tencent_classify_body(status, body, retry_after_ms, res);
    /* The provider answers success with HTTP 200 only: a success body
     * under another status came from something in between, and the message
     * may or may not have gone out. */
    if (res->status == PROV_OK && (status < 200 || status > 299)) {
        res->status = PROV_UNCERTAIN;
        snprintf(res->error, sizeof res->error, "HTTP %ld with a success body", status);
    }
    prov_oneline(res->error);      /* a provider's text may hold newlines */
}
