/* curl_util.h -- what the HTTP drivers (http.c, aliyun.c, tencent.c) share:
 * one libcurl multi handle per route driven by its own thread, so a route
 * keeps many requests in flight and reuses its connections; the options
 * every HTTP route has; and the small pure helpers the signing schemes
 * need (percent-encoding, HMAC, SHA-256, Base64).
 *
 * Threads: prov_http_do() is called from the gateway's worker threads, many
 * at a time. It hands the request to the route's multi thread and waits for
 * its answer (bounded by the request's timeout), so a slow provider holds a
 * worker but never the other requests of the route. */
#ifndef HERALD_CURL_UTIL_H
#define HERALD_CURL_UTIL_H

#include <stddef.h>
#include "providers/provider.h"

/* The options of every HTTP route, appended to each driver's key table. */
#define PROV_HTTP_COMMON_KEYS                                                          \
    { "connect_timeout_ms", CFG_INT, "5000", 100, 600000, NULL,                        \
      "TCP+TLS connect timeout; the whole request is bounded by the route's send_timeout_ms" }, \
    { "max_in_flight", CFG_INT, "16", 1, 1024, NULL,                                   \
      "requests this route keeps in flight at once (curl multi)" },                    \
    { "verify_tls", CFG_BOOL, "true", 0, 0, NULL,                                      \
      "verify the provider's TLS certificate and host name (never turn off in production)" }, \
    { "ca_file", CFG_STR, "", 0, 0, NULL, "CA bundle to verify with (\"\" = the system's)" }, \
    { "proxy", CFG_STR, "", 0, 0, NULL,                                                \
      "proxy URL, e.g. \"http://10.0.0.1:3128\" (\"\" = none; the environment is ignored)" }

typedef struct prov_http_opts {
    long connect_timeout_ms;
    long timeout_ms;          /* default per request: the route's send_timeout_ms */
    int max_in_flight;
    int verify_tls;
    const char *ca_file;      /* "" or NULL = system */
    const char *proxy;        /* "" or NULL = none */
} prov_http_opts;

/* Reads PROV_HTTP_COMMON_KEYS from a checked options group (`keys` is the
 * driver's table that contains them). Strings point into the config. */
void prov_http_opts_read(const config_setting_t *opts, const cfg_key *keys,
                         long timeout_ms, prov_http_opts *o);

typedef struct prov_curl prov_curl;

/* Starts the route's multi thread. Returns NULL with the reason in err.
 * Strings in `o` are copied. */
prov_curl *prov_http_create(const char *route, const prov_http_opts *o,
                            char *err, size_t errlen);
/* Stops the thread; call after the last prov_http_do() returned. NULL ok. */
void prov_http_destroy(prov_curl *h);
/* Requests in flight now (for health). */
int prov_http_in_flight(prov_curl *h);

typedef struct prov_http_req {
    const char *method;               /* "GET" or "POST" */
    const char *url;
    const char *const *headers;       /* "Name: value", NULL-terminated, or NULL */
    const char *body;                 /* POST body, or NULL */
    size_t body_len;
} prov_http_req;

typedef struct prov_http_resp {
    int transport_ok;                 /* 1: an HTTP answer came back */
    long status;                      /* HTTP status when transport_ok */
    char *body;                       /* malloc'd, NUL-terminated; free with _resp_free */
    size_t len;
    long long retry_after_ms;         /* from Retry-After (seconds or a date); 0 = none */
    int request_sent;                 /* the request left (its answer may be lost) */
    int timed_out;
    char error[PROV_ERR_MAX];         /* curl's reason when !transport_ok */
} prov_http_resp;

/* Sends one request and waits for the answer. Returns 0 when an HTTP answer
 * came back (any status), -1 on a transport failure (rs->error says what,
 * rs->request_sent whether the provider may have got it). Caller frees rs
 * with prov_http_resp_free() in both cases. */
int prov_http_do(prov_curl *h, const prov_http_req *rq, prov_http_resp *rs);
void prov_http_resp_free(prov_http_resp *rs);

/* Fills `res` for a transport failure: PROV_TRANSIENT when the request
 * never left (connect refused, DNS, TLS), PROV_UNCERTAIN when it left and
 * the answer was lost (timeout, reset): the lane's policy decides, because
 * the providers' send APIs are not idempotent. */
void prov_http_transport_failure(const prov_http_resp *rs, const char *who, prov_result *res);

/* ---- pure helpers (unit-tested) ---------------------------------------- */

/* A response header line as curl hands it over ("Retry-After: 120\r\n",
 * seconds or an HTTP date): how long the provider asks us to wait, in ms
 * from `now`; 0 for another header or one that says nothing usable. At
 * most PROV_RETRY_AFTER_MAX_MS: a bigger figure (or "99999999999999999999")
 * is taken as a day, so that adding it to a clock cannot overflow. */
#define PROV_RETRY_AFTER_MAX_MS (86400LL * 1000)
long long prov_retry_after_ms(const char *line, size_t len, long long now);

/* RFC 3986 percent-encoding of UTF-8: A-Z a-z 0-9 - _ . ~ kept, every other
 * byte %XY uppercase (space is %20). Returns malloc'd text, NULL on OOM. */
char *prov_pct_encode(const char *s, size_t len);
/* application/x-www-form-urlencoded: like the above, space as '+'. */
char *prov_form_encode(const char *s);

/* Base64 (standard alphabet, padded) of len bytes into out (size >= 4*((len+2)/3)+1). */
void prov_base64(const unsigned char *in, size_t len, char *out);
/* Lower-case hex of len bytes into out (size >= 2*len+1). */
void prov_hex(const unsigned char *in, size_t len, char *out);
/* HMAC-SHA1 / HMAC-SHA256 into out (20 / 32 bytes). */
void prov_hmac_sha1(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char out[20]);
void prov_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char out[32]);
/* SHA-256 as lower-case hex (65 bytes with the NUL). */
void prov_sha256_hex(const void *msg, size_t len, char out[65]);

/* The provider template's parameters as a JSON object text: each
 * "param=var" of `map` takes the value of var from vars_json; with map NULL
 * or empty, the variables as they are. With as_list, a JSON array of the
 * values in the map's order (Tencent's positional TemplateParamSet; without
 * a map, in the order of the variables' names). Returns malloc'd text, or
 * NULL with the reason in err (vars_json not an object, a mapped variable
 * missing). */
char *prov_template_params(const char *vars_json, const char *map, int as_list,
                           char *err, size_t errlen);

/* "+8613800138000" -> "13800138000": a mainland number without its country
 * code, as the Chinese providers want it; other numbers unchanged. */
const char *prov_national(const char *e164);

/* Copies at most 60 printable bytes of a provider's text into a one-line
 * detail (providers echo numbers rarely, but never in full: digits runs
 * longer than 6 are cut to "…"). */
void prov_detail_clean(const char *in, char *out, size_t outlen);

#endif
