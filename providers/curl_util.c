/* curl_util.c -- the libcurl plumbing of the HTTP drivers (see curl_util.h).
 *
 * One prov_curl per route: a curl multi handle, a thread that drives it,
 * and a queue of requests handed over by worker threads. A worker builds
 * its easy handle, queues it and waits on a condition variable; the thread
 * adds queued handles while fewer than max_in_flight are running, so the
 * multi handle's connection cache is shared by every request of the route
 * (keep-alive, one TLS handshake per connection, not per message). */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "gateway/log.h"
#include "providers/curl_util.h"

#define MAX_BODY (1L << 20)   /* a provider's answer is small; more is garbage */

typedef struct job {
    CURL *easy;
    const char *body;           /* POST body handed to curl by read_body() */
    size_t body_len, body_off;
    struct curl_slist *hdrs;
    prov_http_resp *rs;
    char errbuf[CURL_ERROR_SIZE];
    CURLcode rc;
    int done;
    struct job *next;
} job;

struct prov_curl {
    char route[64];
    prov_http_opts o;
    char *ca_file, *proxy;
    CURLM *multi;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* a job finished */
    job *head, *tail;           /* waiting to be added to the multi handle */
    int in_flight;              /* added and not finished */
    int stop;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void prov_http_opts_read(const config_setting_t *opts, const cfg_key *keys,
                         long timeout_ms, prov_http_opts *o)
{
    o->connect_timeout_ms = (long)cfg_int(opts, keys, "connect_timeout_ms");
    o->timeout_ms = timeout_ms;
    o->max_in_flight = (int)cfg_int(opts, keys, "max_in_flight");
    o->verify_tls = cfg_bool(opts, keys, "verify_tls");
    o->ca_file = cfg_str(opts, keys, "ca_file");
    o->proxy = cfg_str(opts, keys, "proxy");
}

/* Moves queued jobs into the multi handle while there is room. */
static void add_waiting(prov_curl *h)
{
    pthread_mutex_lock(&h->mu);
    while (h->head && h->in_flight < h->o.max_in_flight) {
        job *j = h->head;
        h->head = j->next;
        if (!h->head)
            h->tail = NULL;
        CURLMcode mc = curl_multi_add_handle(h->multi, j->easy);
        if (mc != CURLM_OK) {
            j->rc = CURLE_FAILED_INIT;
            snprintf(j->errbuf, sizeof j->errbuf, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
            j->done = 1;
            pthread_cond_broadcast(&h->cv);
            continue;
        }
        h->in_flight++;
    }
    pthread_mutex_unlock(&h->mu);
}

static void *multi_main(void *arg)
{
    prov_curl *h = arg;
    for (;;) {
        pthread_mutex_lock(&h->mu);
        int stop = h->stop;
        pthread_mutex_unlock(&h->mu);
        if (stop)
            break;
        add_waiting(h);
        int running = 0;
        curl_multi_perform(h->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(h->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            job *j = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
            CURLcode rc = m->data.result;
            curl_multi_remove_handle(h->multi, m->easy_handle);
            pthread_mutex_lock(&h->mu);
            j->rc = rc;
            j->done = 1;
            h->in_flight--;
            pthread_cond_broadcast(&h->cv);
            pthread_mutex_unlock(&h->mu);
        }
        /* Sleeps until a socket is ready, a timer is due, or a worker
         * queued a request (curl_multi_wakeup); 1 s bounds stop latency. */
        curl_multi_poll(h->multi, NULL, 0, 1000, NULL);
    }
    return NULL;
}

prov_curl *prov_http_create(const char *route, const prov_http_opts *o, char *err, size_t errlen)
{
    pthread_once(&global_once, global_init);
    prov_curl *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "route '%s': out of memory", route);
        return NULL;
    }
    snprintf(h->route, sizeof h->route, "%s", route);
    h->o = *o;
    h->ca_file = o->ca_file && *o->ca_file ? strdup(o->ca_file) : NULL;
    h->proxy = o->proxy && *o->proxy ? strdup(o->proxy) : NULL;
    h->multi = curl_multi_init();
    if (!h->multi) {
        snprintf(err, errlen, "route '%s': curl_multi_init failed", route);
        goto fail;
    }
    /* keep as many connections as requests in flight */
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)o->max_in_flight);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (pthread_create(&h->thread, NULL, multi_main, h) != 0) {
        snprintf(err, errlen, "route '%s': cannot start its HTTP thread", route);
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        goto fail;
    }
    return h;
fail:
    if (h->multi)
        curl_multi_cleanup(h->multi);
    free(h->ca_file);
    free(h->proxy);
    free(h);
    return NULL;
}

void prov_http_destroy(prov_curl *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_mutex_unlock(&h->mu);
    curl_multi_wakeup(h->multi);
    pthread_join(h->thread, NULL);
    curl_multi_cleanup(h->multi);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h->ca_file);
    free(h->proxy);
    free(h);
}

int prov_http_in_flight(prov_curl *h)
{
    pthread_mutex_lock(&h->mu);
    int n = h->in_flight;
    for (job *j = h->head; j; j = j->next)
        n++;
    pthread_mutex_unlock(&h->mu);
    return n;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    prov_http_resp *rs = ud;
    size_t add = size * n;
    if (rs->len + add > MAX_BODY)
        return 0;                       /* aborts the transfer: CURLE_WRITE_ERROR */
    char *b = realloc(rs->body, rs->len + add + 1);
    if (!b)
        return 0;
    memcpy(b + rs->len, p, add);
    rs->body = b;
    rs->len += add;
    b[rs->len] = '\0';
    return add;
}

long long prov_retry_after_ms(const char *p, size_t len, long long now)
{
    static const char name[] = "retry-after:";
    if (!(len > sizeof name - 1 && len < 200 && strncasecmp(p, name, sizeof name - 1) == 0))
        return 0;
    char v[200];
    memcpy(v, p + sizeof name - 1, len - (sizeof name - 1));
    v[len - (sizeof name - 1)] = '\0';
    char *s = v;
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
        *--e = '\0';
    char *end;
    long long secs = -1;
    long n = strtol(s, &end, 10);
    if (end != s && *end == '\0') {
        secs = n;
    } else {
        time_t t = curl_getdate(s, NULL);
        if (t != (time_t)-1 && (long long)t > now)
            secs = (long long)t - now;
    }
    if (secs <= 0)
        return 0;
    return secs > PROV_RETRY_AFTER_MAX_MS / 1000 ? PROV_RETRY_AFTER_MAX_MS : secs * 1000;
}

/* Retry-After: delta-seconds or an HTTP date. */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    prov_http_resp *rs = ud;
    size_t len = size * n;
    long long ms = prov_retry_after_ms(p, len, (long long)time(NULL));
    if (ms > 0)
        rs->retry_after_ms = ms;
    return len;
}

static size_t read_body(char *buf, size_t size, size_t n, void *ud)
{
    job *j = ud;
    size_t left = j->body_len - j->body_off, want = size * n;
    if (want > left)
        want = left;
    memcpy(buf, j->body + j->body_off, want);
    j->body_off += want;
    return want;
}

/* libcurl sends a request again, once, when a kept-alive connection dies
 * before any answer. The providers' send APIs are not idempotent, so the
 * body cannot be rewound: that resend fails (CURLE_SEND_FAIL_REWIND) and
 * the message is reported perhaps-sent for the lane's policy to decide. */
static int no_rewind(void *ud, curl_off_t offset, int origin)
{
    job *j = ud;
    if (offset == 0 && origin == SEEK_SET && j->body_off == 0)
        return CURL_SEEKFUNC_OK;            /* nothing sent yet */
    return CURL_SEEKFUNC_CANTSEEK;
}

int prov_http_do(prov_curl *h, const prov_http_req *rq, prov_http_resp *rs)
{
    memset(rs, 0, sizeof *rs);
    job j;
    memset(&j, 0, sizeof j);
    j.rs = rs;
    j.easy = curl_easy_init();
    if (!j.easy) {
        snprintf(rs->error, sizeof rs->error, "curl_easy_init failed");
        return -1;
    }
    CURL *e = j.easy;
    curl_easy_setopt(e, CURLOPT_URL, rq->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)&j);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j.errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->o.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, h->o.timeout_ms);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, h->o.verify_tls ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, h->o.verify_tls ? 2L : 0L);
    if (h->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
    /* "" disables the proxy environment variables: the route says */
    curl_easy_setopt(e, CURLOPT_PROXY, h->proxy ? h->proxy : "");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, rs);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, rs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "herald/1");
    for (const char *const *hd = rq->headers; hd && *hd; hd++) {
        struct curl_slist *n = curl_slist_append(j.hdrs, *hd);
        if (n)
            j.hdrs = n;
    }
    /* no "Expect: 100-continue" round trip for small bodies */
    struct curl_slist *n = curl_slist_append(j.hdrs, "Expect:");
    if (n)
        j.hdrs = n;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j.hdrs);
    if (strcmp(rq->method, "POST") == 0) {
        j.body = rq->body ? rq->body : "";
        j.body_len = rq->body ? rq->body_len : 0;
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j.body_len);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_body);
        curl_easy_setopt(e, CURLOPT_READDATA, &j);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, no_rewind);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, &j);
    } else if (strcmp(rq->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);
        if (rq->body) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)rq->body_len);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq->body);
        }
    }

    pthread_mutex_lock(&h->mu);
    if (h->tail)
        h->tail->next = &j;
    else
        h->head = &j;
    h->tail = &j;
    pthread_mutex_unlock(&h->mu);
    curl_multi_wakeup(h->multi);
    pthread_mutex_lock(&h->mu);
    while (!j.done)
        pthread_cond_wait(&h->cv, &h->mu);   /* bounded by CURLOPT_TIMEOUT_MS */
    pthread_mutex_unlock(&h->mu);

    int ret = 0;
    if (j.rc == CURLE_OK) {
        rs->transport_ok = 1;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &rs->status);
        if (!rs->body)
            rs->body = strdup("");
    } else {
        ret = -1;
        curl_off_t pre = 0;
        long reqsize = 0;
        curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &pre);
        curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &reqsize);
        rs->request_sent = reqsize > 0 || pre > 0;
        rs->timed_out = j.rc == CURLE_OPERATION_TIMEDOUT;
        snprintf(rs->error, sizeof rs->error, "%.60s%s%.150s", curl_easy_strerror(j.rc),
                 j.errbuf[0] ? ": " : "", j.errbuf);
        /* a connect failure never reached the provider */
        if (j.rc == CURLE_COULDNT_CONNECT || j.rc == CURLE_COULDNT_RESOLVE_HOST
            || j.rc == CURLE_COULDNT_RESOLVE_PROXY || j.rc == CURLE_SSL_CONNECT_ERROR
            || j.rc == CURLE_PEER_FAILED_VERIFICATION)
            rs->request_sent = 0;
    }
    curl_easy_cleanup(e);
    curl_slist_free_all(j.hdrs);
    return ret;
}

void prov_http_resp_free(prov_http_resp *rs)
{
    if (!rs)
        return;
    free(rs->body);
    rs->body = NULL;
    rs->len = 0;
}

void prov_http_transport_failure(const prov_http_resp *rs, const char *who, prov_result *res)
{
    res->status = rs->request_sent ? PROV_UNCERTAIN : PROV_TRANSIENT;
    snprintf(res->error, sizeof res->error, "%.20s: %.180s%s", who, rs->error,
             rs->request_sent ? " (the request had left: perhaps sent)" : "");
}

/* ---- pure helpers -------------------------------------------------------- */

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
        || c == '-' || c == '_' || c == '.' || c == '~';
}

static char *encode(const char *s, size_t len, int plus)
{
    static const char hexd[] = "0123456789ABCDEF";
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c)) {
            *o++ = (char)c;
        } else if (c == ' ' && plus) {
            *o++ = '+';
        } else {
            *o++ = '%';
            *o++ = hexd[c >> 4];
            *o++ = hexd[c & 15];
        }
    }
    *o = '\0';
    return out;
}

char *prov_pct_encode(const char *s, size_t len) { return encode(s, len, 0); }
char *prov_form_encode(const char *s) { return encode(s, strlen(s), 1); }

void prov_base64(const unsigned char *in, size_t len, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

void prov_hex(const unsigned char *in, size_t len, char *out)
{
    static const char hexd[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hexd[in[i] >> 4];
        out[2 * i + 1] = hexd[in[i] & 15];
    }
    out[2 * len] = '\0';
}

void prov_hmac_sha1(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char out[20])
{
    unsigned int n = 20;
    HMAC(EVP_sha1(), key, (int)klen, msg, mlen, out, &n);
}

void prov_hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &n);
}

void prov_sha256_hex(const void *msg, size_t len, char out[65])
{
    unsigned char d[32];
    SHA256(msg, len, d);
    prov_hex(d, 32, out);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

char *prov_template_params(const char *vars_json, const char *map, int as_list,
                           char *err, size_t errlen)
{
    json_error_t je;
    json_t *vars = json_loads(vars_json && *vars_json ? vars_json : "{}", 0, &je);
    if (!vars || !json_is_object(vars)) {
        snprintf(err, errlen, "the message's variables are not a JSON object");
        json_decref(vars);
        return NULL;
    }
    char *out = NULL;
    if (!map || !*map) {
        if (as_list) {
            /* no map: the values in the order of their names */
            json_t *list = json_array();
            const char *k;
            json_t *v;
            size_t n = json_object_size(vars), i = 0;
            const char **keys = calloc(n + 1, sizeof *keys);
            json_object_foreach(vars, k, v)
                keys[i++] = k;
            qsort(keys, n, sizeof *keys, cmp_str);
            for (i = 0; i < n; i++)
                json_array_append(list, json_object_get(vars, keys[i]));
            free(keys);
            out = json_dumps(list, JSON_COMPACT);
            json_decref(list);
        } else {
            out = json_dumps(vars, JSON_COMPACT | JSON_SORT_KEYS);
        }
        json_decref(vars);
        if (!out)
            snprintf(err, errlen, "out of memory");
        return out;
    }
    json_t *params = as_list ? json_array() : json_object();
    char *copy = strdup(map);
    if (!params || !copy) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq) {
            snprintf(err, errlen, "provider_params entry '%s' is not param=var", trim(item));
            goto done;
        }
        *eq = '\0';
        char *param = trim(item), *var = trim(eq + 1);
        json_t *v = json_object_get(vars, var);
        if (!v) {
            snprintf(err, errlen, "provider parameter '%s' needs variable '%s', which the message lacks",
                     param, var);
            goto done;
        }
        if (as_list)
            json_array_append(params, v);
        else
            json_object_set(params, param, v);
    }
    out = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
    if (!out)
        snprintf(err, errlen, "out of memory");
done:
    free(copy);
    json_decref(params);
    json_decref(vars);
    return out;
}

const char *prov_national(const char *e164)
{
    if (e164 && strncmp(e164, "+86", 3) == 0)
        return e164 + 3;
    return e164;
}

void prov_detail_clean(const char *in, char *out, size_t outlen)
{
    size_t o = 0, digits = 0;
    for (const unsigned char *p = (const unsigned char *)(in ? in : ""); *p && o + 4 < outlen && o < 120; p++) {
        if (isdigit(*p)) {
            if (++digits == 7) {        /* a run this long may be a number */
                o -= 6;
                memcpy(out + o, "***", 3);
                o += 3;
            }
            if (digits >= 7)
                continue;
        } else {
            digits = 0;
        }
        out[o++] = *p < 0x20 ? ' ' : (char)*p;
    }
    out[o] = '\0';
}
