/* cloud.h -- the pure parts of the HTTP drivers: request signing and
 * response classification, bytes in and bytes out, no network.
 *
 * Internal to providers/: each driver still exports one prov_driver; these
 * functions are declared here so tests/unit/test_http_providers.c can feed
 * them the providers' published examples and garbage answers. */
#ifndef HERALD_CLOUD_H
#define HERALD_CLOUD_H

#include <stddef.h>
#include "providers/provider.h"

typedef struct prov_kv {
    const char *k;
    const char *v;
} prov_kv;

/* ---- Alibaba Cloud Dysmsapi (aliyun.c) ----------------------------------- */

/* Sorts params by name (byte order) and returns the canonical query
 * "k=v&k=v" with names and values percent-encoded (RFC 3986, UTF-8).
 * malloc'd; NULL on OOM. */
char *aliyun_canonical(prov_kv *params, size_t n);
/* StringToSign = METHOD&%2F&pct(canonical); the result is
 * Base64(HMAC-SHA1(secret + "&", StringToSign)) into sig (29 bytes used). */
void aliyun_signature(const char *method, const char *canonical, const char *secret, char sig[64]);
/* The StringToSign itself (malloc'd), for logs at debug and for tests. */
char *aliyun_string_to_sign(const char *method, const char *canonical);
/* Classifies an HTTP answer of SendSms (JSON format) into res: Code "OK"
 * with a BizId is PROV_OK (refs = BizId); the code table is in
 * docs/providers.md; an unreadable 200 is PROV_UNCERTAIN. */
void aliyun_classify(long status, const char *body, long long retry_after_ms, prov_result *res);

/* ---- Tencent Cloud SMS (tencent.c) --------------------------------------- */

/* TC3-HMAC-SHA256 for a POST to "/" with no query and the signed headers
 * content-type;host. `date` gets the UTC date of the timestamp
 * (YYYY-MM-DD), `sig` the lower-case hex signature. */
void tc3_signature(const char *secret_key, const char *service, const char *host,
                   const char *content_type, const char *payload, long long timestamp,
                   char date[11], char sig[65]);
/* Classifies an answer of SendSms for ONE recipient: Response.Error means
 * the whole request failed; otherwise SendStatusSet[0].Code "Ok" is
 * PROV_OK (refs = SerialNo), another code that recipient's failure. */
void tencent_classify(long status, const char *body, long long retry_after_ms, prov_result *res);

/* ---- the generic driver (http.c) ----------------------------------------- */

/* A parsed `http` options group: templates, encodings, tests. */
typedef struct httpgen httpgen;

/* Parses and checks a route's `http` group (already checked against the
 * key table). Returns NULL with "route 'x': http.key: what" in err. */
httpgen *httpgen_new(const char *route, const config_setting_t *opts, char *err, size_t errlen);
void httpgen_free(httpgen *g);                   /* accepts NULL */
/* The request for one message: method, URL, headers (NULL-terminated) and
 * body, all malloc'd into *out; free with httpgen_request_free(). Returns
 * 0, or -1 with the reason in err (a permanent failure of the message). */
typedef struct httpgen_request {
    const char *method;
    char *url;
    char **headers;
    char *body;
} httpgen_request;
int httpgen_build(const httpgen *g, const prov_msg *m, httpgen_request *out, char *err, size_t errlen);
void httpgen_request_free(httpgen_request *rq);
/* Classifies an HTTP answer by the route's success test, id extraction and
 * code map (docs/providers.md). */
void httpgen_classify(const httpgen *g, long status, const char *body, long long retry_after_ms,
                      prov_result *res);

#endif
