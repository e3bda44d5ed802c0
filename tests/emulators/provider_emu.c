/* provider_emu.c -- a stand-in for the HTTP SMS providers, on 127.0.0.1.
 *
 *   provider_emu --port-file F --record F.jsonl [--max-runtime S]
 *                [--aliyun-id ID --aliyun-secret S]
 *                [--tencent-id ID --tencent-key K --tencent-app APPID]
 *                [--http-token T]
 *
 * Endpoints (what the real provider would check is checked here too):
 *   /aliyun/   Dysmsapi SendSms, GET query or POST form: the required
 *              parameters, Action/Version/SignatureMethod values, a fresh
 *              Timestamp, an unused SignatureNonce, TemplateParam a JSON
 *              object, and the RPC signature recomputed from what arrived
 *              (SignatureDoesNotMatch otherwise).
 *   /tencent/  SendSms 2021-01-11, POST JSON: the X-TC-* headers, the
 *              TC3-HMAC-SHA256 Authorization recomputed from the body and
 *              the signed headers, the required fields of the payload.
 *   /http/send the generic driver's target: Bearer token, form or JSON
 *              fields to, text, ref. Answers {"result":0,"data":{"msgid":..}}.
 *   /http2/send the same, a second target with its own mode (a stand-in
 *              for a second kind of route, e.g. a modem pool behind HTTP).
 *   /control?target=aliyun|tencent|http|http2&mode=M[&count=N][&retry_after=S][&delay_ms=D]
 *              how the next N requests (default: all) of target are
 *              answered: ok, throttle (HTTP 429 + Retry-After and the
 *              provider's throttle code), permanent (an invalid-number code),
 *              transient (a system-error code), garbage (HTTP 200 with an
 *              unreadable body), 5xx (HTTP 503), hang (no answer for 30 s),
 *              reset (the connection is closed without an answer).
 *              delay_ms slows every answer (benchmarks).
 *   /stats     {"aliyun":{"accepted":n,"rejected":n},...}
 * Every accepted message is one JSON line in the record file:
 *   {"provider","at" (ms),"to","id","sign_name","template","params","ref"}
 * and every refused request one line with "rejected": the reason.
 * The free port it bound is written to --port-file once it listens. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

enum { T_ALIYUN, T_TENCENT, T_HTTP, T_HTTP2, T_COUNT };
static const char *const tnames[T_COUNT] = { "aliyun", "tencent", "http", "http2" };

typedef struct target {
    char mode[16];
    int count;                  /* requests left in this mode; -1 = forever */
    int retry_after;
    int delay_ms;
    long accepted, rejected;
} target;

static struct {
    pthread_mutex_t mu;
    target t[T_COUNT];
    FILE *record;
    const char *ali_id, *ali_secret;
    const char *tc_id, *tc_key, *tc_app;
    const char *http_token;
    long seq;
    char **nonces;
    size_t nnonces, capnonces;
    volatile sig_atomic_t stop;
} E = { .mu = PTHREAD_MUTEX_INITIALIZER };

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Takes the mode for this request and counts it down. */
static void take_mode(int t, char mode[16], int *retry_after, int *delay_ms)
{
    pthread_mutex_lock(&E.mu);
    target *x = &E.t[t];
    snprintf(mode, 16, "%s", x->count == 0 ? "ok" : x->mode);
    if (x->count > 0)
        x->count--;
    *retry_after = x->retry_after;
    *delay_ms = x->delay_ms;
    pthread_mutex_unlock(&E.mu);
}

static void record(json_t *line)
{
    char *s = json_dumps(line, JSON_COMPACT);
    pthread_mutex_lock(&E.mu);
    if (s && E.record) {
        fprintf(E.record, "%s\n", s);
        fflush(E.record);
    }
    pthread_mutex_unlock(&E.mu);
    free(s);
    json_decref(line);
}

static void count(int t, int accepted)
{
    pthread_mutex_lock(&E.mu);
    if (accepted)
        E.t[t].accepted++;
    else
        E.t[t].rejected++;
    pthread_mutex_unlock(&E.mu);
}

static void reject(int t, const char *why)
{
    count(t, 0);
    record(json_pack("{s:s, s:I, s:s}", "provider", tnames[t], "at", (json_int_t)now_ms(), "rejected", why));
}

/* ---- crypto, written here again on purpose: an independent check ---- */

static void b64(const unsigned char *in, int len, char *out) { EVP_EncodeBlock((unsigned char *)out, in, len); }

static void hexs(const unsigned char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
}

static char *pct(const char *s)
{
    char *o = malloc(strlen(s) * 3 + 1), *p = o;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')
            || *c == '-' || *c == '_' || *c == '.' || *c == '~')
            *p++ = (char)*c;
        else
            p += sprintf(p, "%%%02X", *c);
    }
    *p = '\0';
    return o;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static char *pct_decode(const char *s, size_t n)
{
    char *o = malloc(n + 1), *p = o;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            *p++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            *p++ = s[i] == '+' ? ' ' : s[i];
        }
    }
    *p = '\0';
    return o;
}

/* ---- requests ---------------------------------------------------------- */

typedef struct req {
    char *body;
    size_t len;
} req;

typedef struct kv { char *k, *v; } kv;

static int kv_cmp(const void *a, const void *b) { return strcmp(((const kv *)a)->k, ((const kv *)b)->k); }

/* "a=1&b=2" into kvs (decoded); returns the count. */
static int parse_form(const char *s, kv *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        size_t l = strcspn(s, "&");
        const char *eq = memchr(s, '=', l);
        if (eq) {
            out[n].k = pct_decode(s, (size_t)(eq - s));
            out[n].v = pct_decode(eq + 1, l - (size_t)(eq - s) - 1);
            n++;
        }
        s += l;
        if (*s == '&')
            s++;
    }
    return n;
}

static const char *kv_get(kv *k, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(k[i].k, name) == 0)
            return k[i].v;
    return NULL;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *ctype,
                              const char *body, int retry_after)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                             MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", ctype);
    if (retry_after > 0) {
        char ra[32];
        snprintf(ra, sizeof ra, "%d", retry_after);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static void sleep_ms(int ms)
{
    for (int waited = 0; waited < ms && !E.stop; waited += 20) {
        struct timespec ts = { 0, 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

/* Applies a failure mode; returns 1 when it answered (or must close), with
 * *close_conn set for "reset". Bodies are the provider's own shape. */
static int failure(struct MHD_Connection *c, int t, const char *mode, int retry_after,
                   enum MHD_Result *rc)
{
    static const char *const throttle[T_COUNT] = {
        "{\"Code\":\"isv.BUSINESS_LIMIT_CONTROL\",\"Message\":\"触发分钟级流控Permits:1\",\"RequestId\":\"emu\"}",
        "{\"Response\":{\"Error\":{\"Code\":\"RequestLimitExceeded\",\"Message\":\"请求的次数超过了频率限制\"},\"RequestId\":\"emu\"}}",
        "{\"result\":1008,\"msg\":\"too fast\"}",
        "{\"result\":1008,\"msg\":\"too fast\"}" };
    static const char *const perm[T_COUNT] = {
        "{\"Code\":\"isv.MOBILE_NUMBER_ILLEGAL\",\"Message\":\"非法手机号\",\"RequestId\":\"emu\"}",
        NULL,                               /* per-number, inside a 200: built below */
        "{\"result\":1003,\"msg\":\"bad number\"}",
        "{\"result\":1003,\"msg\":\"bad number\"}" };
    static const char *const trans[T_COUNT] = {
        "{\"Code\":\"isp.SYSTEM_ERROR\",\"Message\":\"系统错误\",\"RequestId\":\"emu\"}",
        "{\"Response\":{\"Error\":{\"Code\":\"InternalError.Timeout\",\"Message\":\"超时\"},\"RequestId\":\"emu\"}}",
        "{\"result\":1500,\"msg\":\"busy\"}",
        "{\"result\":1500,\"msg\":\"busy\"}" };
    if (strcmp(mode, "ok") == 0)
        return 0;
    reject(t, mode);
    if (strcmp(mode, "throttle") == 0) {
        *rc = answer(c, t == T_ALIYUN ? 200 : 429, "application/json", throttle[t], retry_after);
    } else if (strcmp(mode, "permanent") == 0) {
        if (t == T_TENCENT)
            *rc = answer(c, 200, "application/json",
                         "{\"Response\":{\"SendStatusSet\":[{\"SerialNo\":\"\",\"PhoneNumber\":\"\",\"Fee\":0,"
                         "\"SessionContext\":\"\",\"Code\":\"InvalidParameterValue.IncorrectPhoneNumber\","
                         "\"Message\":\"手机号格式错误\",\"IsoCode\":\"\"}],\"RequestId\":\"emu\"}}", 0);
        else
            *rc = answer(c, t >= T_HTTP ? 400 : 200, "application/json", perm[t], 0);
    } else if (strcmp(mode, "transient") == 0) {
        *rc = answer(c, 200, "application/json", trans[t], 0);
    } else if (strcmp(mode, "garbage") == 0) {
        *rc = answer(c, 200, "text/html", "<html><body>502 Bad Gateway \x01\xff", 0);
    } else if (strcmp(mode, "5xx") == 0) {
        *rc = answer(c, 503, "text/plain", "service unavailable", 0);
    } else if (strcmp(mode, "hang") == 0) {
        sleep_ms(30000);
        *rc = MHD_NO;
    } else {                                /* reset */
        *rc = MHD_NO;
    }
    return 1;
}

static void accepted(int t, const char *to, const char *id, const char *sign, const char *tpl,
                     json_t *params, char *ref, size_t reflen)
{
    pthread_mutex_lock(&E.mu);
    long n = ++E.seq;
    E.t[t].accepted++;
    pthread_mutex_unlock(&E.mu);
    snprintf(ref, reflen, "%s-%ld", tnames[t], n);
    record(json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:O, s:s}", "provider", tnames[t],
                     "at", (json_int_t)now_ms(), "to", to ? to : "", "id", id ? id : "",
                     "sign_name", sign ? sign : "", "template", tpl ? tpl : "",
                     "params", params ? params : json_null(), "ref", ref));
}

static int nonce_used(const char *nonce)
{
    pthread_mutex_lock(&E.mu);
    for (size_t i = 0; i < E.nnonces; i++)
        if (strcmp(E.nonces[i], nonce) == 0) {
            pthread_mutex_unlock(&E.mu);
            return 1;
        }
    if (E.nnonces == E.capnonces) {
        E.capnonces = E.capnonces ? E.capnonces * 2 : 256;
        E.nonces = realloc(E.nonces, E.capnonces * sizeof *E.nonces);
    }
    E.nonces[E.nnonces++] = strdup(nonce);
    pthread_mutex_unlock(&E.mu);
    return 0;
}

static enum MHD_Result aliyun(struct MHD_Connection *c, const char *method, const char *url_query,
                              const req *rq)
{
    kv k[64];
    int n = parse_form(strcmp(method, "GET") == 0 ? url_query : (rq->body ? rq->body : ""), k, 64);
    enum MHD_Result rc = MHD_YES;
    char why[256] = "";
    static const char *const need[] = {
        "AccessKeyId", "Action", "Format", "OutId", "PhoneNumbers", "RegionId", "SignName",
        "SignatureMethod", "SignatureNonce", "SignatureVersion", "TemplateCode", "TemplateParam",
        "Timestamp", "Version", "Signature", NULL };
    for (const char *const *p = need; *p && !why[0]; p++)
        if (!kv_get(k, n, *p) || !*kv_get(k, n, *p))
            snprintf(why, sizeof why, "MissingParameter %s", *p);
    json_t *tparams = NULL;
    if (!why[0]) {
        if (strcmp(kv_get(k, n, "Action"), "SendSms") != 0 || strcmp(kv_get(k, n, "Version"), "2017-05-25") != 0
            || strcmp(kv_get(k, n, "SignatureMethod"), "HMAC-SHA1") != 0
            || strcmp(kv_get(k, n, "SignatureVersion"), "1.0") != 0)
            snprintf(why, sizeof why, "InvalidParameter Action/Version/SignatureMethod/SignatureVersion");
        else if (strcmp(kv_get(k, n, "AccessKeyId"), E.ali_id) != 0)
            snprintf(why, sizeof why, "InvalidAccessKeyId.NotFound");
        else if (!(tparams = json_loads(kv_get(k, n, "TemplateParam"), 0, NULL)) || !json_is_object(tparams))
            snprintf(why, sizeof why, "isv.INVALID_JSON_PARAM");
    }
    if (!why[0]) {
        struct tm tm = { 0 };
        const char *ts = kv_get(k, n, "Timestamp");
        char *end = strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        if (!end || *end || llabs((long long)timegm(&tm) - (long long)time(NULL)) > 900)
            snprintf(why, sizeof why, "InvalidTimeStamp.Expired");
    }
    if (!why[0]) {
        /* the signature over every parameter but Signature itself */
        kv s[64];
        int m = 0;
        for (int i = 0; i < n; i++)
            if (strcmp(k[i].k, "Signature") != 0)
                s[m++] = k[i];
        qsort(s, (size_t)m, sizeof *s, kv_cmp);
        size_t cap = 16;
        for (int i = 0; i < m; i++)
            cap += strlen(s[i].k) * 3 + strlen(s[i].v) * 3 + 2;
        char *canon = malloc(cap);
        canon[0] = '\0';
        for (int i = 0; i < m; i++) {
            char *ek = pct(s[i].k), *ev = pct(s[i].v);
            strcat(canon, i ? "&" : "");
            strcat(canon, ek);
            strcat(canon, "=");
            strcat(canon, ev);
            free(ek);
            free(ev);
        }
        char *ec = pct(canon);
        char *sts = malloc(strlen(ec) + 16);
        sprintf(sts, "%s&%%2F&%s", method, ec);
        char key[256];
        snprintf(key, sizeof key, "%s&", E.ali_secret);
        unsigned char mac[20];
        unsigned int ml = 20;
        HMAC(EVP_sha1(), key, (int)strlen(key), (unsigned char *)sts, strlen(sts), mac, &ml);
        char sig[64];
        b64(mac, 20, sig);
        if (strcmp(sig, kv_get(k, n, "Signature")) != 0)
            snprintf(why, sizeof why, "SignatureDoesNotMatch");
        else if (nonce_used(kv_get(k, n, "SignatureNonce")))
            snprintf(why, sizeof why, "SignatureNonceUsed");
        free(canon);
        free(ec);
        free(sts);
    }
    if (why[0]) {
        reject(T_ALIYUN, why);
        char body[400];
        char code[64];
        sscanf(why, "%63s", code);
        snprintf(body, sizeof body, "{\"Code\":\"%s\",\"Message\":\"%s\",\"RequestId\":\"emu\"}", code, why);
        rc = answer(c, 400, "application/json", body, 0);
    } else {
        char mode[16];
        int ra, delay;
        take_mode(T_ALIYUN, mode, &ra, &delay);
        sleep_ms(delay);
        if (!failure(c, T_ALIYUN, mode, ra, &rc)) {
            char ref[64], body[256];
            accepted(T_ALIYUN, kv_get(k, n, "PhoneNumbers"), kv_get(k, n, "OutId"), kv_get(k, n, "SignName"),
                     kv_get(k, n, "TemplateCode"), tparams, ref, sizeof ref);
            snprintf(body, sizeof body, "{\"Message\":\"OK\",\"RequestId\":\"emu\",\"BizId\":\"%s\",\"Code\":\"OK\"}", ref);
            rc = answer(c, 200, "application/json", body, 0);
        }
    }
    json_decref(tparams);
    for (int i = 0; i < n; i++) {
        free(k[i].k);
        free(k[i].v);
    }
    return rc;
}

static enum MHD_Result tencent(struct MHD_Connection *c, const char *method, const req *rq)
{
    char why[256] = "";
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *action = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-TC-Action");
    const char *version = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-TC-Version");
    const char *tss = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-TC-Timestamp");
    const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    const char *body = rq->body ? rq->body : "";
    json_t *root = NULL;
    enum MHD_Result rc = MHD_YES;
    if (strcmp(method, "POST") != 0)
        snprintf(why, sizeof why, "UnsupportedProtocol POST only");
    else if (!auth || !action || !version || !tss || !ctype || !host)
        snprintf(why, sizeof why, "MissingParameter a header of Authorization, X-TC-Action, X-TC-Version, X-TC-Timestamp, Content-Type, Host");
    else if (strcmp(action, "SendSms") != 0 || strcmp(version, "2021-01-11") != 0)
        snprintf(why, sizeof why, "InvalidAction");
    else if (llabs(atoll(tss) - (long long)time(NULL)) > 300)
        snprintf(why, sizeof why, "AuthFailure.SignatureExpire");
    if (!why[0]) {
        long long ts = atoll(tss);
        time_t tt = (time_t)ts;
        struct tm tm;
        gmtime_r(&tt, &tm);
        char date[16];
        strftime(date, sizeof date, "%Y-%m-%d", &tm);
        unsigned char h[32];
        char ph[65], ch[65];
        SHA256((const unsigned char *)body, rq->len, h);
        hexs(h, 32, ph);
        char *canon = malloc(strlen(ctype) + strlen(host) + 200);
        sprintf(canon, "POST\n/\n\ncontent-type:%s\nhost:%s\n\ncontent-type;host\n%s", ctype, host, ph);
        SHA256((unsigned char *)canon, strlen(canon), h);
        hexs(h, 32, ch);
        char sts[300];
        snprintf(sts, sizeof sts, "TC3-HMAC-SHA256\n%lld\n%s/sms/tc3_request\n%s", ts, date, ch);
        char key[200];
        snprintf(key, sizeof key, "TC3%s", E.tc_key);
        unsigned char k1[32], k2[32], k3[32], s[32];
        unsigned int l = 32;
        HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)date, strlen(date), k1, &l);
        HMAC(EVP_sha256(), k1, 32, (const unsigned char *)"sms", 3, k2, &l);
        HMAC(EVP_sha256(), k2, 32, (const unsigned char *)"tc3_request", 11, k3, &l);
        HMAC(EVP_sha256(), k3, 32, (unsigned char *)sts, strlen(sts), s, &l);
        char sig[65];
        hexs(s, 32, sig);
        char expect[600];
        snprintf(expect, sizeof expect, "TC3-HMAC-SHA256 Credential=%s/%s/sms/tc3_request, "
                 "SignedHeaders=content-type;host, Signature=%s", E.tc_id, date, sig);
        free(canon);
        if (strcmp(expect, auth) != 0)
            snprintf(why, sizeof why, "AuthFailure.SignatureFailure");
    }
    const char *to = NULL, *ctx = NULL, *sign = NULL, *tpl = NULL;
    json_t *pset = NULL;
    if (!why[0]) {
        root = json_loads(body, 0, NULL);
        json_t *ps = json_object_get(root, "PhoneNumberSet");
        to = json_string_value(json_array_get(ps, 0));
        ctx = json_string_value(json_object_get(root, "SessionContext"));
        sign = json_string_value(json_object_get(root, "SignName"));
        tpl = json_string_value(json_object_get(root, "TemplateId"));
        pset = json_object_get(root, "TemplateParamSet");
        const char *app = json_string_value(json_object_get(root, "SmsSdkAppId"));
        if (!root)
            snprintf(why, sizeof why, "FailedOperation.JsonParseFail");
        else if (!to || json_array_size(ps) != 1 || strncmp(to, "+", 1) != 0 || !sign || !tpl || !app
                 || !json_is_array(pset))
            snprintf(why, sizeof why, "MissingParameter PhoneNumberSet/SignName/TemplateId/SmsSdkAppId/TemplateParamSet");
        else if (strcmp(app, E.tc_app) != 0)
            snprintf(why, sizeof why, "FailedOperation.SmsSdkAppIdVerifyFail");
        for (size_t i = 0; !why[0] && i < json_array_size(pset); i++)
            if (!json_is_string(json_array_get(pset, i)))
                snprintf(why, sizeof why, "InvalidParameterValue.TemplateParameterFormatError");
    }
    if (why[0]) {
        reject(T_TENCENT, why);
        char code[80], out[400];
        sscanf(why, "%79s", code);
        snprintf(out, sizeof out, "{\"Response\":{\"Error\":{\"Code\":\"%s\",\"Message\":\"%s\"},\"RequestId\":\"emu\"}}",
                 code, why);
        rc = answer(c, 200, "application/json", out, 0);
    } else {
        char mode[16];
        int ra, delay;
        take_mode(T_TENCENT, mode, &ra, &delay);
        sleep_ms(delay);
        if (!failure(c, T_TENCENT, mode, ra, &rc)) {
            char ref[64], out[600];
            accepted(T_TENCENT, to, ctx, sign, tpl, pset, ref, sizeof ref);
            snprintf(out, sizeof out, "{\"Response\":{\"SendStatusSet\":[{\"SerialNo\":\"%s\",\"PhoneNumber\":\"%s\","
                     "\"Fee\":1,\"SessionContext\":\"%s\",\"Code\":\"Ok\",\"Message\":\"send success\",\"IsoCode\":\"CN\"}],"
                     "\"RequestId\":\"emu\"}}", ref, to, ctx ? ctx : "");
            rc = answer(c, 200, "application/json", out, 0);
        }
    }
    json_decref(root);
    return rc;
}

static enum MHD_Result http_generic(struct MHD_Connection *c, const req *rq, int T)
{
    char why[200] = "";
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    char want[200];
    snprintf(want, sizeof want, "Bearer %s", E.http_token ? E.http_token : "");
    kv k[32];
    int n = 0;
    json_t *root = NULL;
    const char *to = NULL, *text = NULL, *ref = NULL;
    if (!auth || strcmp(auth, want) != 0) {
        snprintf(why, sizeof why, "bad token");
    } else if (ctype && strncmp(ctype, "application/json", 16) == 0) {
        root = json_loads(rq->body ? rq->body : "", 0, NULL);
        to = json_string_value(json_object_get(root, "to"));
        text = json_string_value(json_object_get(root, "text"));
        ref = json_string_value(json_object_get(root, "ref"));
    } else {
        n = parse_form(rq->body ? rq->body : "", k, 32);
        to = kv_get(k, n, "to");
        text = kv_get(k, n, "text");
        ref = kv_get(k, n, "ref");
    }
    if (!why[0] && (!to || !*to || !text || !*text || !ref || !*ref))
        snprintf(why, sizeof why, "missing to, text or ref");
    enum MHD_Result rc = MHD_YES;
    if (why[0]) {
        reject(T, why);
        char out[300];
        snprintf(out, sizeof out, "{\"result\":%d,\"msg\":\"%s\"}", strcmp(why, "bad token") == 0 ? 1001 : 1002, why);
        rc = answer(c, strcmp(why, "bad token") == 0 ? 401 : 400, "application/json", out, 0);
    } else {
        char mode[16];
        int ra, delay;
        take_mode(T, mode, &ra, &delay);
        sleep_ms(delay);
        if (!failure(c, T, mode, ra, &rc)) {
            char id[64], out[200];
            json_t *tx = json_pack("{s:s}", "text", text);
            accepted(T, to, ref, "", "", tx, id, sizeof id);
            json_decref(tx);
            snprintf(out, sizeof out, "{\"result\":0,\"data\":{\"msgid\":\"%s\"}}", id);
            rc = answer(c, 200, "application/json", out, 0);
        }
    }
    json_decref(root);
    for (int i = 0; i < n; i++) {
        free(k[i].k);
        free(k[i].v);
    }
    return rc;
}

static enum MHD_Result control(struct MHD_Connection *c)
{
    const char *tg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "target");
    const char *mode = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mode");
    const char *cnt = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "count");
    const char *ra = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "retry_after");
    const char *dl = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "delay_ms");
    static const char *const modes[] = { "ok", "throttle", "permanent", "transient", "garbage", "5xx",
                                         "hang", "reset", NULL };
    int t = -1, ok = 0;
    for (int i = 0; tg && i < T_COUNT; i++)
        if (strcmp(tg, tnames[i]) == 0)
            t = i;
    for (int i = 0; mode && modes[i]; i++)
        if (strcmp(mode, modes[i]) == 0)
            ok = 1;
    if (t < 0 || (mode && !ok))
        return answer(c, 400, "text/plain", "target=aliyun|tencent|http|http2 mode=ok|throttle|permanent|transient|garbage|5xx|hang|reset\n", 0);
    pthread_mutex_lock(&E.mu);
    if (mode) {
        snprintf(E.t[t].mode, sizeof E.t[t].mode, "%s", mode);
        E.t[t].count = cnt ? atoi(cnt) : -1;
    }
    if (ra)
        E.t[t].retry_after = atoi(ra);
    if (dl)
        E.t[t].delay_ms = atoi(dl);
    pthread_mutex_unlock(&E.mu);
    return answer(c, 200, "text/plain", "ok\n", 0);
}

static enum MHD_Result stats(struct MHD_Connection *c)
{
    json_t *o = json_object();
    pthread_mutex_lock(&E.mu);
    for (int i = 0; i < T_COUNT; i++)
        json_object_set_new(o, tnames[i], json_pack("{s:I, s:I}", "accepted", (json_int_t)E.t[i].accepted,
                                                    "rejected", (json_int_t)E.t[i].rejected));
    pthread_mutex_unlock(&E.mu);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    enum MHD_Result rc = answer(c, 200, "application/json", s, 0);
    free(s);
    return rc;
}

/* The raw query string of the request, for the signature check. */
static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    char **q = cls;
    char *ek = pct(key), *ev = pct(value ? value : "");
    size_t need = (*q ? strlen(*q) : 0) + strlen(ek) + strlen(ev) + 3;
    char *n = realloc(*q, need);
    if (n) {
        if (!*q)
            n[0] = '\0';
        if (n[0])
            strcat(n, "&");
        strcat(n, ek);
        strcat(n, "=");
        strcat(n, ev);
        *q = n;
    }
    free(ek);
    free(ev);
    return MHD_YES;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **ctx)
{
    (void)cls;
    (void)version;
    req *rq = *ctx;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        *ctx = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        char *b = realloc(rq->body, rq->len + *upload_size + 1);
        if (!b)
            return MHD_NO;
        memcpy(b + rq->len, upload, *upload_size);
        rq->body = b;
        rq->len += *upload_size;
        b[rq->len] = '\0';
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/control") == 0)
        return control(c);
    if (strcmp(url, "/stats") == 0)
        return stats(c);
    if (strncmp(url, "/aliyun", 7) == 0) {
        /* MHD decodes the query for us; re-encode it the RFC 3986 way
         * (decoding then verifying is what the real service does too) */
        char *q = NULL;
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
        enum MHD_Result rc = aliyun(c, method, q ? q : "", rq);
        free(q);
        return rc;
    }
    if (strncmp(url, "/tencent", 8) == 0)
        return tencent(c, method, rq);
    if (strcmp(url, "/http/send") == 0)
        return http_generic(c, rq, T_HTTP);
    if (strcmp(url, "/http2/send") == 0)
        return http_generic(c, rq, T_HTTP2);
    return answer(c, 404, "text/plain", "no such endpoint\n", 0);
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    req *rq = *ctx;
    if (rq) {
        free(rq->body);
        free(rq);
    }
    *ctx = NULL;
}

static void on_signal(int s) { (void)s; E.stop = 1; }

int main(int argc, char **argv)
{
    const char *port_file = NULL, *record_file = NULL;
    int max_runtime = 600;
    E.ali_id = "testId";
    E.ali_secret = "testSecret";
    E.tc_id = "AKIDtest";
    E.tc_key = "tcSecretKey";
    E.tc_app = "1400000000";
    E.http_token = "token";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (!strcmp(o, "--port-file")) port_file = v;
        else if (!strcmp(o, "--record")) record_file = v;
        else if (!strcmp(o, "--max-runtime")) max_runtime = atoi(v);
        else if (!strcmp(o, "--aliyun-id")) E.ali_id = v;
        else if (!strcmp(o, "--aliyun-secret")) E.ali_secret = v;
        else if (!strcmp(o, "--tencent-id")) E.tc_id = v;
        else if (!strcmp(o, "--tencent-key")) E.tc_key = v;
        else if (!strcmp(o, "--tencent-app")) E.tc_app = v;
        else if (!strcmp(o, "--http-token")) E.http_token = v;
        else {
            fprintf(stderr, "provider_emu: unknown option %s\n", o);
            return 2;
        }
    }
    if (!port_file || !record_file) {
        fprintf(stderr, "usage: provider_emu --port-file F --record F [--max-runtime S] [...]\n");
        return 2;
    }
    for (int i = 0; i < T_COUNT; i++) {
        snprintf(E.t[i].mode, sizeof E.t[i].mode, "ok");
        E.t[i].count = -1;
    }
    E.record = fopen(record_file, "a");
    if (!E.record) {
        fprintf(stderr, "provider_emu: %s: %s\n", record_file, strerror(errno));
        return 1;
    }
    struct sockaddr_in sa = { 0 };
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
        0, NULL, NULL, handler, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
        MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "provider_emu: cannot listen on 127.0.0.1\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
    FILE *pf = fopen(tmp, "w");
    if (!pf || fprintf(pf, "%u\n", (unsigned)info->port) < 0 || fclose(pf) != 0 || rename(tmp, port_file) != 0) {
        fprintf(stderr, "provider_emu: cannot write %s\n", port_file);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    for (int t = 0; t < max_runtime * 10 && !E.stop; t++) {
        struct timespec ts = { 0, 100 * 1000000L };
        nanosleep(&ts, NULL);
    }
    E.stop = 1;
    MHD_stop_daemon(d);
    fclose(E.record);
    for (size_t i = 0; i < E.nnonces; i++)
        free(E.nonces[i]);
    free(E.nonces);
    return 0;
}
