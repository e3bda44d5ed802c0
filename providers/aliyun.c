/* aliyun.c -- the "aliyun" driver: Alibaba Cloud SMS (Dysmsapi), action
 * SendSms, API version 2017-05-25, RPC-style signature (HMAC-SHA1).
 *
 *   routes = ( { name = "aliyun"; driver = "aliyun";
 *                families = [ "rights_notice", "case_stage" ];
 *                aliyun = { access_key_id = "LTAI..."; access_key_secret = "...";
 *                           sign_name = "某市人民检察院"; }; } );
 *
 * Aliyun sends only approved templates: the message's template must carry
 * `provider_code` (TemplateCode) and, when its parameter names differ from
 * Herald's variables, `provider_params`. OutId is Herald's message id, so a
 * delivery receipt can be matched later.
 *
 * Signing (https://help.aliyun.com/document_detail/101343.html): sort the
 * parameters, percent-encode names and values (RFC 3986), StringToSign =
 * METHOD&%2F&pct(canonical query), Signature = Base64(HMAC-SHA1(secret+"&",
 * StringToSign)). tests/unit/test_http_providers.c reproduces the published
 * example.
 *
 * SendSms is not idempotent: a request whose answer was lost is reported
 * PROV_UNCERTAIN and the lane's reclaim policy decides, never this file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>

#include "gateway/log.h"
#include "gateway/phone.h"
#include "providers/cloud.h"
#include "providers/curl_util.h"

typedef struct aliyun {
    prov_curl *http;
    char *endpoint, *key_id, *secret, *sign_name, *region, *method;
} aliyun;

static const cfg_key aliyun_keys[] = {
    { "access_key_id", CFG_STR, NULL, 0, 0, NULL, "AccessKey ID of the RAM user allowed to call SendSms" },
    { "access_key_secret", CFG_STR, NULL, 0, 0, NULL, "its AccessKey secret (never logged)" },
    { "sign_name", CFG_STR, NULL, 0, 0, NULL, "the approved SignName, e.g. \"某市人民检察院\"" },
    { "endpoint", CFG_STR, "https://dysmsapi.aliyuncs.com/", 0, 0, NULL, "API endpoint URL" },
    { "region_id", CFG_STR, "cn-hangzhou", 0, 0, NULL, "RegionId parameter" },
    { "method", CFG_STR, "POST", 0, 0, NULL, "GET (parameters in the URL) or POST (form body)" },
    PROV_HTTP_COMMON_KEYS,
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* ---- signing (pure) ------------------------------------------------------ */

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const prov_kv *)a)->k, ((const prov_kv *)b)->k);
}

char *aliyun_canonical(prov_kv *params, size_t n)
{
    qsort(params, n, sizeof *params, kv_cmp);
    size_t cap = 1, len = 0;
    char **enc = calloc(2 * n + 1, sizeof *enc);
    if (!enc)
        return NULL;
    char *out = NULL;
    for (size_t i = 0; i < n; i++) {
        enc[2 * i] = prov_pct_encode(params[i].k, strlen(params[i].k));
        enc[2 * i + 1] = prov_pct_encode(params[i].v, strlen(params[i].v));
        if (!enc[2 * i] || !enc[2 * i + 1])
            goto done;
        cap += strlen(enc[2 * i]) + strlen(enc[2 * i + 1]) + 2;
    }
    out = malloc(cap);
    if (!out)
        goto done;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s=%s", i ? "&" : "", enc[2 * i], enc[2 * i + 1]);
done:
    for (size_t i = 0; i < 2 * n; i++)
        free(enc[i]);
    free(enc);
    return out;
}

char *aliyun_string_to_sign(const char *method, const char *canonical)
{
    char *q = prov_pct_encode(canonical, strlen(canonical));
    if (!q)
        return NULL;
    size_t len = strlen(method) + strlen(q) + 8;
    char *s = malloc(len);
    if (s)
        snprintf(s, len, "%s&%%2F&%s", method, q);
    free(q);
    return s;
}

void aliyun_signature(const char *method, const char *canonical, const char *secret, char sig[64])
{
    sig[0] = '\0';
    char *sts = aliyun_string_to_sign(method, canonical);
    size_t klen = strlen(secret) + 2;
    char *key = malloc(klen);
    if (sts && key) {
        snprintf(key, klen, "%s&", secret);
        unsigned char mac[20];
        prov_hmac_sha1(key, strlen(key), sts, strlen(sts), mac);
        prov_base64(mac, sizeof mac, sig);
    }
    free(key);
    free(sts);
}

/* ---- classification (pure) ---------------------------------------------- */

/* Codes of SendSms (https://help.aliyun.com/document_detail/101346.html).
 * Number- and content-level refusals are permanent: another route would be
 * refused the same. Account-level ones (keys, balance, signature approval)
 * are transient for the message: the route is broken, not the message, so
 * it fails over and the route's breaker opens. docs/providers.md has it. */
static const struct { const char *code; prov_status st; } codes[] = {
    { "isv.BUSINESS_LIMIT_CONTROL", PROV_THROTTLED },   /* per-number frequency */
    { "isv.DAY_LIMIT_CONTROL", PROV_THROTTLED },
    { "Throttling", PROV_THROTTLED },
    { "Throttling.User", PROV_THROTTLED },
    { "Throttling.Api", PROV_THROTTLED },
    { "isv.MOBILE_NUMBER_ILLEGAL", PROV_PERMANENT },
    { "isv.MOBILE_COUNT_OVER_LIMIT", PROV_PERMANENT },
    { "isv.TEMPLATE_MISSING_PARAMETERS", PROV_PERMANENT },
    { "isv.INVALID_PARAMETERS", PROV_PERMANENT },
    { "isv.INVALID_JSON_PARAM", PROV_PERMANENT },
    { "isv.PARAM_LENGTH_LIMIT", PROV_PERMANENT },
    { "isv.PARAM_NOT_SUPPORT_URL", PROV_PERMANENT },
    { "isv.BLACK_KEY_CONTROL_LIMIT", PROV_PERMANENT },
    { "isv.SMS_TEMPLATE_ILLEGAL", PROV_PERMANENT },
    { "isv.EXTEND_CODE_ERROR", PROV_PERMANENT },
    { "isv.DOMESTIC_NUMBER_NOT_SUPPORTED", PROV_PERMANENT },
    { "isv.DENY_IP_RANGE", PROV_TRANSIENT },
    { "isv.SMS_SIGNATURE_ILLEGAL", PROV_TRANSIENT },
    { "isv.SMS_SIGN_ILLEGAL", PROV_TRANSIENT },
    { "isv.AMOUNT_NOT_ENOUGH", PROV_TRANSIENT },
    { "isv.OUT_OF_SERVICE", PROV_TRANSIENT },
    { "isv.ACCOUNT_NOT_EXISTS", PROV_TRANSIENT },
    { "isv.ACCOUNT_ABNORMAL", PROV_TRANSIENT },
    { "isv.PRODUCT_UN_SUBSCRIPT", PROV_TRANSIENT },
    { "isv.PRODUCT_UNSUBSCRIBE", PROV_TRANSIENT },
    { "isp.RAM_PERMISSION_DENY", PROV_TRANSIENT },
    { "isp.SYSTEM_ERROR", PROV_TRANSIENT },
    { "SignatureDoesNotMatch", PROV_TRANSIENT },
    { "InvalidAccessKeyId.NotFound", PROV_TRANSIENT },
    /* our nonces are random per request: "used" means this very request
     * reached Aliyun before (a resend by the HTTP layer): perhaps sent */
    { "SignatureNonceUsed", PROV_UNCERTAIN },
    { "InvalidTimeStamp.Expired", PROV_TRANSIENT },
    { NULL, PROV_TRANSIENT }
};

static void aliyun_classify_body(long status, const char *body, long long retry_after_ms, prov_result *res)
{
    char clean[120];
    res->refs[0] = '\0';
    res->retry_after_ms = 0;
    json_error_t je;
    json_t *root = body && *body ? json_loads(body, 0, &je) : NULL;
    const char *code = json_is_object(root) ? json_string_value(json_object_get(root, "Code")) : NULL;
    if (!code) {
        /* No answer we can read. A 200 means the request was processed and
         * the message perhaps sent: the lane's policy decides. */
        if (status == 429) {
            res->status = PROV_THROTTLED;
            res->retry_after_ms = retry_after_ms;
        } else {
            res->status = status >= 200 && status < 300 ? PROV_UNCERTAIN : PROV_TRANSIENT;
        }
        prov_detail_clean(body, clean, 48);
        snprintf(res->error, sizeof res->error, "aliyun: HTTP %ld with an unreadable answer: %s", status, clean);
        json_decref(root);
        return;
    }
    const char *biz = json_string_value(json_object_get(root, "BizId"));
    const char *msg = json_string_value(json_object_get(root, "Message"));
    if (strcmp(code, "OK") == 0) {
        if (biz && *biz) {
            res->status = PROV_OK;
            snprintf(res->refs, sizeof res->refs, "%s", biz);
            res->error[0] = '\0';
        } else {
            res->status = PROV_UNCERTAIN;
            snprintf(res->error, sizeof res->error, "aliyun: Code OK without a BizId");
        }
        json_decref(root);
        return;
    }
    prov_status st = PROV_TRANSIENT;
    int i;
    for (i = 0; codes[i].code; i++)
        if (strcmp(codes[i].code, code) == 0)
            break;
    st = codes[i].st;
    if (!codes[i].code && status == 429)
        st = PROV_THROTTLED;
    res->status = st;
    if (st == PROV_THROTTLED)
        res->retry_after_ms = retry_after_ms;
    prov_detail_clean(msg, clean, sizeof clean);
    char ccode[64];
    prov_detail_clean(code, ccode, sizeof ccode);
    snprintf(res->error, sizeof res->error, "aliyun: %s: %s (HTTP %ld)", ccode, clean, status);
    json_decref(root);
}

/* ---- the driver ----------------------------------------------------------- */

static void aliyun_free(aliyun *a)
{
    if (!a)
        return;
    prov_http_destroy(a->http);
    free(a->endpoint);
    free(a->key_id);
    free(a->secret);
    free(a->sign_name);
    free(a->region);
    free(a->method);
    free(a);
}

static int aliyun_open(prov_route *r, const config_setting_t *opts, char *err, size_t errlen)
{
    if (prov_check_options(r, opts, aliyun_keys, err, errlen) < 0)
        return -1;
    const char *method = cfg_str(opts, aliyun_keys, "method");
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
        snprintf(err, errlen, "route '%s': aliyun.method: '%s' is not GET or POST", r->name, method);
        return -1;
    }
    const char *ep = cfg_str(opts, aliyun_keys, "endpoint");
    if (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0) {
        snprintf(err, errlen, "route '%s': aliyun.endpoint: '%s' is not an http(s) URL", r->name, ep);
        return -1;
    }
    aliyun *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "route '%s': out of memory", r->name);
        return -1;
    }
    a->endpoint = strdup(ep);
    a->key_id = strdup(cfg_str(opts, aliyun_keys, "access_key_id"));
    a->secret = strdup(cfg_str(opts, aliyun_keys, "access_key_secret"));
    a->sign_name = strdup(cfg_str(opts, aliyun_keys, "sign_name"));
    a->region = strdup(cfg_str(opts, aliyun_keys, "region_id"));
    a->method = strdup(method);
    if (!a->endpoint || !a->key_id || !a->secret || !a->sign_name || !a->region || !a->method) {
        snprintf(err, errlen, "route '%s': out of memory", r->name);
        aliyun_free(a);
        return -1;
    }
    prov_http_opts ho;
    prov_http_opts_read(opts, aliyun_keys, r->send_timeout_ms, &ho);
    a->http = prov_http_create(r->name, &ho, err, errlen);
    if (!a->http) {
        aliyun_free(a);
        return -1;
    }
    r->priv = a;
    return 0;
}

static void nonce(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (unsigned char)((ts.tv_nsec >> (i % 4 * 8)) ^ (long)i * 131);
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    char hex[33];
    prov_hex(b, 16, hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static int aliyun_send(prov_route *r, const prov_msg *m, prov_result *res)
{
    aliyun *a = r->priv;
    memset(res, 0, sizeof *res);
    if (!m->provider_code || !*m->provider_code) {
        res->status = PROV_PERMANENT;
        snprintf(res->error, sizeof res->error, "aliyun: template '%s' has no provider_code; "
                 "Aliyun sends approved templates only", m->template_name ? m->template_name : "?");
        return 0;
    }
    char perr[200];
    char *tparams = prov_template_params(m->vars_json, m->provider_params, 0, perr, sizeof perr);
    if (!tparams) {
        res->status = PROV_PERMANENT;
        snprintf(res->error, sizeof res->error, "aliyun: %s", perr);
        return 0;
    }
    /* mainland numbers go without +86; others as 00<country code><number> */
    char phone[PHONE_MAX + 2];
    if (strncmp(m->to, "+86", 3) == 0)
        snprintf(phone, sizeof phone, "%s", m->to + 3);
    else
        snprintf(phone, sizeof phone, "00%s", m->to[0] == '+' ? m->to + 1 : m->to);
    char ts[32], nc[37];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    nonce(nc);
    prov_kv p[] = {
        { "AccessKeyId", a->key_id }, { "Action", "SendSms" }, { "Format", "JSON" },
        { "OutId", m->id }, { "PhoneNumbers", phone }, { "RegionId", a->region },
        { "SignName", a->sign_name }, { "SignatureMethod", "HMAC-SHA1" },
        { "SignatureNonce", nc }, { "SignatureVersion", "1.0" },
        { "TemplateCode", m->provider_code }, { "TemplateParam", tparams },
        { "Timestamp", ts }, { "Version", "2017-05-25" },
    };
    char *canon = aliyun_canonical(p, sizeof p / sizeof p[0]);
    char *query = NULL, *url = NULL;
    if (!canon)
        goto oom;
    char sig[64], *esig;
    aliyun_signature(a->method, canon, a->secret, sig);
    esig = prov_pct_encode(sig, strlen(sig));
    if (!esig)
        goto oom;
    size_t qlen = strlen(esig) + strlen(canon) + 16;
    query = malloc(qlen);
    if (!query) {
        free(esig);
        goto oom;
    }
    snprintf(query, qlen, "Signature=%s&%s", esig, canon);
    free(esig);

    prov_http_req rq = { .method = a->method, .url = a->endpoint };
    static const char *const form_hdrs[] = {
        "Content-Type: application/x-www-form-urlencoded; charset=utf-8", "Accept: application/json", NULL };
    static const char *const get_hdrs[] = { "Accept: application/json", NULL };
    if (strcmp(a->method, "GET") == 0) {
        size_t ulen = strlen(a->endpoint) + strlen(query) + 2;
        url = malloc(ulen);
        if (!url)
            goto oom;
        snprintf(url, ulen, "%s%s%s", a->endpoint, strchr(a->endpoint, '?') ? "&" : "?", query);
        rq.url = url;
        rq.headers = get_hdrs;
    } else {
        rq.body = query;
        rq.body_len = strlen(query);
        rq.headers = form_hdrs;
    }
    prov_http_resp rs;
    if (prov_http_do(a->http, &rq, &rs) < 0) {
        prov_http_transport_failure(&rs, "aliyun", res);
    } else {
        aliyun_classify(rs.status, rs.body, rs.retry_after_ms, res);
        if (res->status == PROV_OK)
            res->parts_sent = m->parts > 0 ? m->parts : 1;
    }
    prov_http_resp_free(&rs);
    free(url);
    free(query);
    free(canon);
    free(tparams);
    return 0;
oom:
    free(url);
    free(query);
    free(canon);
    free(tparams);
    res->status = PROV_TRANSIENT;
    snprintf(res->error, sizeof res->error, "aliyun: out of memory");
    return 0;
}

static void aliyun_health(prov_route *r, prov_health *h)
{
    aliyun *a = r->priv;
    h->up = 1;
    h->signal_percent = -1;
    snprintf(h->state, sizeof h->state, "%d in flight", prov_http_in_flight(a->http));
}

static void aliyun_close(prov_route *r)
{
    aliyun_free(r->priv);
    r->priv = NULL;
}

const prov_driver prov_aliyun = {
    .name = "aliyun",
    .caps = PROV_CAP_SMS | PROV_CAP_PROVIDER_TEMPLATES,
    .keys = aliyun_keys,
    .open = aliyun_open,
    .send = aliyun_send,
    .poll_inbound = NULL,
    .health = aliyun_health,
    .close = aliyun_close,
};

void aliyun_classify(long status, const char *body, long long retry_after_ms, prov_result *res)
{
    aliyun_classify_body(status, body, retry_after_ms, res);
    /* The provider answers success with HTTP 200 only: a success body
     * under another status came from something in between, and the message
     * may or may not have gone out. */
    if (res->status == PROV_OK && (status < 200 || status > 299)) {
        res->status = PROV_UNCERTAIN;
        snprintf(res->error, sizeof res->error, "HTTP %ld with a success body", status);
    }
    prov_oneline(res->error);      /* a provider's text may hold newlines */
}
