/* api.c -- the HTTP API: configuration, authentication, routing, handlers.
 *
 * Request life: libmicrohttpd calls access_cb once with the headers (we
 * match the route, authenticate, check Content-Type and Content-Length, and
 * may answer at once), then with each piece of the body (collected up to
 * api.max_body_bytes), then once more with nothing (we run the handler).
 * Every answer is JSON; every error has one shape:
 *   {"error":{"code":"invalid","message":"to: not a Chinese mobile number","field":"to"}}
 * so a client can show the message and point at the field. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "gateway/api.h"
#include "gateway/bulletin.h"
#include "gateway/callbacks.h"
#include "gateway/console.h"
#include "gateway/log.h"
#include "gateway/phone.h"
#include "gateway/service.h"
#include "gateway/survey.h"
#include "queue/bulletin.h"
#include "queue/survey.h"

/* ---- configuration --------------------------------------------------- */

static const cfg_key token_keys[] = {
    { "name", CFG_STR, NULL, 0, 0, NULL, "who holds the token (in logs; never the token itself)" },
    { "token", CFG_STR, NULL, 0, 0, NULL, "the bearer token, at least 16 characters" },
    { "scopes", CFG_STRLIST, NULL, 0, 0, NULL, "send, read, contacts, bulletin, admin (admin implies all)" },
    { "rate_per_minute", CFG_INT, "0", 0, 1000000, NULL, "requests per minute for this token (burst of one minute's worth); 0 unlimited" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const cfg_key callback_keys[] = {
    { "route", CFG_STR, NULL, 0, 0, NULL, "the route whose provider calls back: POST /v1/inbound/{route}" },
    { "secret", CFG_STR, NULL, 0, 0, NULL, "shared secret the provider sends (X-Herald-Secret header or ?secret=)" },
    { "format", CFG_STR, "generic", 0, 0, NULL, "generic (from, to, text), aliyun (SmsUp/SmsReport), tencent (status/reply) or mm7 (DeliveryReportReq)" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const cfg_key kannel_keys[] = {
    { "enabled", CFG_BOOL, "false", 0, 0, NULL, "answer GET|POST /cgi-bin/sendsms as Kannel's smsbox does" },
    { "username", CFG_STR, "", 0, 0, NULL, "the username Kannel clients send" },
    { "password", CFG_STR, "", 0, 0, NULL, "the password Kannel clients send (never logged)" },
    { "template", CFG_STR, "", 0, 0, NULL, "template the free text goes out through; its one required variable gets the text" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

const cfg_key api_cfg_keys[] = {
    { "enabled", CFG_BOOL, "false", 0, 0, NULL, "serve the HTTP API from the daemon" },
    { "listen", CFG_STR, "127.0.0.1", 0, 0, NULL, "address to bind (IPv4 or IPv6 literal); loopback unless a proxy fronts it" },
    { "port", CFG_INT, "8088", 0, 65535, NULL, "TCP port; 0 picks a free one (tests)" },
    { "threads", CFG_INT, "16", 1, 256, NULL, "server threads (each holds one Redis connection while it works)" },
    { "max_body_bytes", CFG_INT, "1048576", 1024, 67108864, NULL, "largest request body; more is answered 413" },
    { "max_json_depth", CFG_INT, "16", 2, 1000, NULL, "deepest nesting of arrays/objects in a request" },
    { "max_header_bytes", CFG_INT, "16384", 4096, 1048576, NULL, "memory for the request line and headers" },
    { "timeout_s", CFG_INT, "30", 1, 3600, NULL, "a connection idle this long (slow client) is closed" },
    { "admin_token_file", CFG_STR, "", 0, 0, NULL, "file holding an admin token; generated (mode 0600) when missing" },
    { "tokens", CFG_LIST, "", 0, 0, token_keys, "bearer tokens with their scopes" },
    { "callbacks", CFG_LIST, "", 0, 0, callback_keys, "provider callbacks accepted at /v1/inbound/{route}" },
    { "kannel", CFG_GROUP, "", 0, 0, kannel_keys, "Kannel-compatible sendsms interface (off by default)" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const char *const scope_names[] = { "send", "read", "contacts", "bulletin", "admin", NULL };

static int cfg_fail(const config_setting_t *s, const char *path, char *err, size_t errlen,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int cfg_fail(const config_setting_t *s, const char *path, char *err, size_t errlen,
                    const char *fmt, ...)
{
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *file = s ? config_setting_source_file(s) : NULL;
    snprintf(err, errlen, "%s:%u: %s: %s", file ? file : "(config)",
             s ? (unsigned)config_setting_source_line(s) : 0u, path, what);
    return -1;
}

int api_scopes_parse(const config_setting_t *list, unsigned *out, char *err, size_t errlen)
{
    *out = 0;
    for (int i = 0; list && i < config_setting_length(list); i++) {
        const char *s = config_setting_get_string_elem(list, i);
        int k;
        for (k = 0; scope_names[k]; k++)
            if (s && strcmp(s, scope_names[k]) == 0)
                break;
        if (!scope_names[k]) {
            snprintf(err, errlen, "unknown scope '%s' (known: send, read, contacts, bulletin, admin)",
                     s ? s : "?");
            return -1;
        }
        *out |= 1u << k;
    }
    if (*out & API_SCOPE_ADMIN)
        *out = API_SCOPE_SEND | API_SCOPE_READ | API_SCOPE_CONTACTS | API_SCOPE_BULLETIN | API_SCOPE_ADMIN;
    return 0;
}

int api_config_parse(const gw_config *c, api_config *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const config_setting_t *g = config_lookup(&c->cfg, "api");
    out->enabled = cfg_bool(g, api_cfg_keys, "enabled");
    out->listen = cfg_str(g, api_cfg_keys, "listen");
    out->port = (int)cfg_int(g, api_cfg_keys, "port");
    out->threads = (int)cfg_int(g, api_cfg_keys, "threads");
    out->max_body_bytes = cfg_int(g, api_cfg_keys, "max_body_bytes");
    out->max_json_depth = (int)cfg_int(g, api_cfg_keys, "max_json_depth");
    out->max_header_bytes = (int)cfg_int(g, api_cfg_keys, "max_header_bytes");
    out->timeout_s = (int)cfg_int(g, api_cfg_keys, "timeout_s");
    out->admin_token_file = cfg_str(g, api_cfg_keys, "admin_token_file");

    unsigned char a4[sizeof(struct in_addr)], a6[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, out->listen, a4) != 1 && inet_pton(AF_INET6, out->listen, a6) != 1)
        return cfg_fail(config_setting_get_member(g, "listen"), "api.listen", err, errlen,
                        "'%s' is not an IPv4 or IPv6 address (use 127.0.0.1 or ::1)", out->listen);

    const config_setting_t *tl = g ? config_setting_get_member(g, "tokens") : NULL;
    int nt = tl ? config_setting_length(tl) : 0;
    if (nt > API_MAX_TOKENS)
        return cfg_fail(tl, "api.tokens", err, errlen, "at most %d tokens", API_MAX_TOKENS);
    for (int i = 0; i < nt; i++) {
        const config_setting_t *t = config_setting_get_elem(tl, (unsigned)i);
        api_token_cfg *tc = &out->tokens[i];
        char path[64], why[200];
        tc->name = cfg_str(t, token_keys, "name");
        tc->token = cfg_str(t, token_keys, "token");
        tc->rate_per_minute = (int)cfg_int(t, token_keys, "rate_per_minute");
        snprintf(path, sizeof path, "api.tokens.[%d].token", i);
        if (strlen(tc->token) < 16)
            return cfg_fail(config_setting_get_member(t, "token"), path, err, errlen,
                            "too short (at least 16 characters; e.g. openssl rand -hex 24)");
        for (int j = 0; j < i; j++) {
            if (strcmp(out->tokens[j].token, tc->token) == 0)
                return cfg_fail(config_setting_get_member(t, "token"), path, err, errlen,
                                "the same token as api.tokens.[%d]", j);
        }
        snprintf(path, sizeof path, "api.tokens.[%d].scopes", i);
        if (api_scopes_parse(config_setting_get_member(t, "scopes"), &tc->scopes, why, sizeof why) < 0)
            return cfg_fail(config_setting_get_member(t, "scopes"), path, err, errlen, "%s", why);
        if (!tc->scopes)
            return cfg_fail(config_setting_get_member(t, "scopes"), path, err, errlen,
                            "a token needs at least one scope");
    }
    out->ntokens = nt;
    if (out->enabled && nt == 0 && !*out->admin_token_file)
        return cfg_fail(g, "api.tokens", err, errlen,
                        "the API is enabled but has no token: add tokens or set admin_token_file");

    const config_setting_t *cl = g ? config_setting_get_member(g, "callbacks") : NULL;
    int nc = cl ? config_setting_length(cl) : 0;
    if (nc > API_MAX_CALLBACKS)
        return cfg_fail(cl, "api.callbacks", err, errlen, "at most %d callbacks", API_MAX_CALLBACKS);
    for (int i = 0; i < nc; i++) {
        const config_setting_t *e = config_setting_get_elem(cl, (unsigned)i);
        api_callback_cfg *cb = &out->callbacks[i];
        char path[64];
        cb->route = cfg_str(e, callback_keys, "route");
        cb->secret = cfg_str(e, callback_keys, "secret");
        cb->format = cfg_str(e, callback_keys, "format");
        int found = 0;
        for (int r = 0; r < c->nroutes; r++)
            found |= strcmp(c->routes[r].name, cb->route) == 0;
        snprintf(path, sizeof path, "api.callbacks.[%d].route", i);
        if (!found)
            return cfg_fail(config_setting_get_member(e, "route"), path, err, errlen,
                            "no route is named '%s'", cb->route);
        for (int j = 0; j < i; j++)
            if (strcmp(out->callbacks[j].route, cb->route) == 0)
                return cfg_fail(config_setting_get_member(e, "route"), path, err, errlen,
                                "route '%s' has a callback already", cb->route);
        snprintf(path, sizeof path, "api.callbacks.[%d].secret", i);
        if (strlen(cb->secret) < 16)
            return cfg_fail(config_setting_get_member(e, "secret"), path, err, errlen,
                            "too short (at least 16 characters)");
        snprintf(path, sizeof path, "api.callbacks.[%d].format", i);
        if (strcmp(cb->format, "generic") != 0 && strcmp(cb->format, "aliyun") != 0
            && strcmp(cb->format, "tencent") != 0 && strcmp(cb->format, "mm7") != 0)
            return cfg_fail(config_setting_get_member(e, "format"), path, err, errlen,
                            "'%s' is not a known format (known: generic, aliyun, tencent, mm7)", cb->format);
    }
    out->ncallbacks = nc;

    const config_setting_t *kg = g ? config_setting_get_member(g, "kannel") : NULL;
    out->kannel_enabled = cfg_bool(kg, kannel_keys, "enabled");
    out->kannel_username = cfg_str(kg, kannel_keys, "username");
    out->kannel_password = cfg_str(kg, kannel_keys, "password");
    out->kannel_template = cfg_str(kg, kannel_keys, "template");
    if (out->kannel_enabled) {
        static const char *const need[] = { "username", "password", "template", NULL };
        for (int i = 0; need[i]; i++)
            if (!*cfg_str(kg, kannel_keys, need[i])) {
                char path[64];
                snprintf(path, sizeof path, "api.kannel.%s", need[i]);
                return cfg_fail(kg, path, err, errlen, "required when api.kannel.enabled is true");
            }
    }
    return 0;
}

/* ---- process-wide metrics -------------------------------------------- */

static const long long latency_bounds_ms[] = { 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000 };
#define NBOUNDS (sizeof latency_bounds_ms / sizeof latency_bounds_ms[0])
static atomic_llong send_bucket[NBOUNDS + 1];
static atomic_llong send_sum_ms, send_count;
static atomic_llong inbound_count, api_enqueued, api_duplicates, api_rejected;
static atomic_llong api_status_count[6];   /* by status class 1xx..5xx */

void api_observe_send(long long ms)
{
    size_t i = 0;
    while (i < NBOUNDS && ms > latency_bounds_ms[i])
        i++;
    atomic_fetch_add(&send_bucket[i], 1);
    atomic_fetch_add(&send_sum_ms, ms);
    atomic_fetch_add(&send_count, 1);
}

void api_observe_inbound(const char *route)
{
    (void)route;
    atomic_fetch_add(&inbound_count, 1);
}

/* ---- the server ------------------------------------------------------ */

#define POOL_MAX 64

typedef struct token_rt {
    api_token_cfg cfg;
    unsigned char digest[32];     /* SHA-256 of the token: compared in constant time */
    pthread_mutex_t mu;
    double tokens;                /* rate-limit bucket */
    long long last_ms;
} token_rt;

struct api_server {
    api_env env;
    api_config ac;
    struct MHD_Daemon *mhd;
    int port;
    token_rt tokens[API_MAX_TOKENS + 1];
    int ntokens;
    char admin_token[80];         /* from admin_token_file */
    unsigned char cb_digest[API_MAX_CALLBACKS][32];
    pthread_mutex_t pool_mu;
    queue *pool[POOL_MAX];
    int npool;
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sha256(const char *s, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    if (EVP_Digest(s, len, out, &n, EVP_sha256(), NULL) != 1)
        abort();
}

/* Redis connections: a request borrows one and gives it back. */
static queue *pool_get(api_server *s, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->pool_mu);
    queue *q = s->npool ? s->pool[--s->npool] : NULL;
    pthread_mutex_unlock(&s->pool_mu);
    if (q)
        return q;
    return queue_connect(&s->env.cfg->queue, err, errlen);
}

static void pool_put(api_server *s, queue *q, int broken)
{
    if (!q)
        return;
    pthread_mutex_lock(&s->pool_mu);
    if (!broken && s->npool < POOL_MAX) {
        s->pool[s->npool++] = q;
        q = NULL;
    }
    pthread_mutex_unlock(&s->pool_mu);
    queue_free(q);
}

/* ---- requests -------------------------------------------------------- */

typedef struct api_req api_req;
typedef void (*handler_fn)(api_req *r);

typedef struct route_def {
    const char *method;
    const char *path;
    handler_fn fn;
    unsigned scopes;              /* any of these; 0 = open (health) */
    int body;                     /* 1: JSON body; 2: JSON or form (callbacks); 3: form (Kannel) */
} route_def;

struct api_req {
    api_server *s;
    struct MHD_Connection *conn;
    const route_def *route;
    char method[8];
    char path[512];
    char params[3][256];          /* {x} segments of the path, in order */
    int nparams;
    int token;                    /* index into s->tokens, -1 none */
    char *body;
    size_t len, cap;
    int too_large;
    int is_form;
    int answered;                 /* a response was queued */
    long long started_ms;
    /* the answer */
    int status;
    json_t *json;
    char *text;                   /* non-JSON answer (metrics) */
    const char *content_type;
    char retry_after[16];
    char allow[64];
    queue *q;
    int q_broken;
    char note[160];               /* summary for the access log */
};

static void answer_json(api_req *r, int status, json_t *j)
{
    json_decref(r->json);
    r->status = status;
    r->json = j;
}

static void api_error(api_req *r, int status, const char *code, const char *field,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void api_error(api_req *r, int status, const char *code, const char *field,
                      const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *e = json_pack("{s:s, s:s}", "code", code, "message", msg);
    if (!e)   /* a message with invalid UTF-8 from the client */
        e = json_pack("{s:s, s:s}", "code", code, "message", "invalid request (the message is not valid UTF-8)");
    if (field && *field)
        json_object_set_new(e, "field", json_string(field));
    answer_json(r, status, json_pack("{s:o}", "error", e));
}

/* Borrows a Redis connection for the request; answers 503 when none. */
static queue *req_queue(api_req *r)
{
    if (r->q)
        return r->q;
    char err[256];
    r->q = pool_get(r->s, err, sizeof err);
    if (!r->q)
        api_error(r, 503, "unavailable", NULL, "redis is unreachable: %s", err);
    return r->q;
}

/* After a failed call: 503 for a connection failure, 500 otherwise. */
static void queue_failed(api_req *r, int rc)
{
    const char *why = r->q ? queue_errstr(r->q) : "no connection";
    if (rc == QUEUE_ERR_CONN || rc == QUEUE_ERR_REFUSED) {
        r->q_broken = rc == QUEUE_ERR_CONN;
        api_error(r, 503, "unavailable", NULL, "redis: %s", why);
    } else {
        api_error(r, 500, "internal", NULL, "redis: %s", why);
    }
}

static const char *header(api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static const char *query(api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

int api_json_depth(const char *buf, size_t len)
{
    int depth = 0, max = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                max = depth;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return max;
}

/* Parses the body as JSON: NULL (400 answered) when empty, too deep or
 * malformed. */
static json_t *body_json(api_req *r, int required)
{
    if (r->len == 0) {
        if (required)
            api_error(r, 400, "bad_request", NULL, "the request body is empty: a JSON object is expected");
        return required ? NULL : json_object();
    }
    int depth = api_json_depth(r->body, r->len);
    if (depth > r->s->ac.max_json_depth) {
        api_error(r, 400, "bad_request", NULL, "JSON nested %d levels deep; at most %d are allowed",
                  depth, r->s->ac.max_json_depth);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        api_error(r, 400, "bad_json", NULL, "the body is not valid JSON: %s (line %d, column %d)",
                  je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        api_error(r, 400, "bad_request", NULL, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* ---- messages -------------------------------------------------------- */

typedef struct prepared {
    svc_message m;
    int ok;
    int status;                   /* per-item answer */
    json_t *error;
    queue_enq_result res;
    char prefix[40];              /* "messages[3]." in a batch, "" alone */
} prepared;

static json_t *item_error(const char *code, const char *field, const char *msg)
{
    json_t *e = json_pack("{s:s, s:s}", "code", code, "message", msg);
    if (!e)
        e = json_pack("{s:s, s:s}", "code", code, "message", "invalid (not valid UTF-8)");
    if (field && *field)
        json_object_set_new(e, "field", json_string(field));
    return e;
}

/* Checks and renders one message; `prefix` names it in a batch ("messages[3]."). */
static void prepare_one(api_req *r, const catalog *cat, const json_t *j, const char *prefix,
                        long long now, prepared *p)
{
    gw_config *cfg = r->s->env.cfg;
    catalog_opts co = { cfg->signature, cfg->optout_line };
    svc_json_req jr;
    char err[512], field[SVC_FIELD_MAX], full[SVC_FIELD_MAX + 32];
    memset(p, 0, sizeof *p);
    snprintf(p->prefix, sizeof p->prefix, "%s", prefix);
    if (svc_request_from_json(j, now, &jr, err, sizeof err, field) < 0) {
        snprintf(full, sizeof full, "%s%s", prefix, field);
        if (!field[0] && *prefix)
            snprintf(full, sizeof full, "%.*s", (int)strlen(prefix) - 1, prefix);
        p->status = 422;
        p->error = item_error("invalid", full, err);
        return;
    }
    if (svc_prepare(cat, &co, cfg->allow_international, &jr.rq, now, &p->m, err, sizeof err) < 0) {
        snprintf(full, sizeof full, "%s%s", prefix, p->m.err_field);
        svc_message_free(&p->m);
        p->status = 422;
        p->error = item_error("invalid", full, err);
        return;
    }
    p->ok = 1;
}

/* The same key answers the first message only when it is the same message:
 * a key reused for another template, number or variables would otherwise
 * silently send nothing to the new recipient, so it is a 409. */
static void check_conflict(api_req *r, prepared *p)
{
    json_t *rec = NULL;
    if (queue_get(r->q, p->res.id, &rec) != 0)
        return;   /* gone past its retention: the key alone decides */
    const char *t = json_string_value(json_object_get(rec, "template"));
    const char *to = json_string_value(json_object_get(rec, "to"));
    const char *v = json_string_value(json_object_get(rec, "vars"));
    const char *what = t && strcmp(t, p->m.msg.template_name) ? "template"
                     : to && strcmp(to, p->m.msg.to) ? "number"
                     : v && !json_object_get(rec, "body_purged_at")   /* retention: vars gone */
                       && strcmp(v, p->m.msg.vars_json) ? "variables" : NULL;
    if (what) {
        char msg[400], field[80];
        snprintf(msg, sizeof msg, "key '%.200s' was used within the idempotency window for message %s, "
                 "which has another %s; use a new key", p->m.key, p->res.id, what);
        snprintf(field, sizeof field, "%skey", p->prefix);
        p->ok = 0;
        p->status = 409;
        p->error = item_error("conflict", field, msg);
        json_t *e = p->error;
        json_object_set_new(e, "id", json_string(p->res.id));
    }
    json_decref(rec);
}

/* Enqueues the prepared items that are ok, in one pipeline. A broken
 * connection is retried once: idempotency keys make a repeat harmless. */
static int enqueue_prepared(api_req *r, prepared *items, size_t n)
{
    queue_new_msg *msgs = calloc(n ? n : 1, sizeof *msgs);
    queue_enq_result *res = calloc(n ? n : 1, sizeof *res);
    size_t *idx = calloc(n ? n : 1, sizeof *idx);
    size_t k = 0;
    int rc = 0;
    if (!msgs || !res || !idx) {
        api_error(r, 500, "internal", NULL, "out of memory");
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (items[i].ok) {
            msgs[k] = items[i].m.msg;
            idx[k++] = i;
        }
    if (k == 0)
        goto out;
    if (!req_queue(r)) {
        rc = -1;
        goto out;
    }
    rc = queue_enqueue(r->q, msgs, k, res);
    if (rc == QUEUE_ERR_CONN)
        rc = queue_enqueue(r->q, msgs, k, res);
    if (rc < 0) {
        queue_failed(r, rc);
        goto out;
    }
    for (size_t i = 0; i < k; i++) {
        prepared *p = &items[idx[i]];
        p->res = res[i];
        if (res[i].status < 0) {
            p->ok = 0;
            p->status = 503;
            p->error = item_error("unavailable", NULL, "redis refused the write (out of memory?)");
        } else {
            p->status = res[i].duplicate ? 200 : 202;
            if (res[i].duplicate)
                check_conflict(r, p);
        }
    }
out:
    free(msgs);
    free(res);
    free(idx);
    return rc < 0 ? -1 : 0;
}

static json_t *item_json(const prepared *p)
{
    if (!p->ok)
        return json_pack("{s:i, s:O}", "status", p->status, "error", p->error);
    json_t *o = json_pack("{s:i, s:s, s:i, s:s, s:s, s:b}", "status", p->status, "id", p->res.id,
                          "parts", p->m.msg.parts, "encoding", p->m.msg.encoding,
                          "lane", lane_name(p->m.msg.lane), "duplicate", p->res.duplicate);
    if (p->m.msg.send_at_ms)
        json_object_set_new(o, "send_at", json_integer(p->m.msg.send_at_ms));
    return o;
}

static void h_post_messages(api_req *r)
{
    json_t *j = body_json(r, 1);
    if (!j)
        return;
    json_t *list = json_object_get(j, "messages");
    int batch = list != NULL;
    size_t n = 1;
    if (batch) {
        if (json_object_size(j) != 1) {
            api_error(r, 422, "invalid", NULL, "a batch is {\"messages\":[...]} with no other member");
            goto out;
        }
        if (!json_is_array(list)) {
            api_error(r, 422, "invalid", "messages", "messages must be an array of message objects");
            goto out;
        }
        n = json_array_size(list);
        if (n == 0) {
            api_error(r, 422, "invalid", "messages", "messages is empty");
            goto out;
        }
        if (n > API_BATCH_MAX) {
            api_error(r, 413, "too_large", "messages", "%zu messages; at most %d per request",
                      n, API_BATCH_MAX);
            goto out;
        }
    }
    prepared *items = calloc(n, sizeof *items);
    if (!items) {
        api_error(r, 500, "internal", NULL, "out of memory");
        goto out;
    }
    long long now = svc_now_ms();
    pthread_rwlock_rdlock(r->s->env.cat_lock);
    for (size_t i = 0; i < n; i++) {
        char prefix[40] = "";
        if (batch)
            snprintf(prefix, sizeof prefix, "messages[%zu].", i);
        prepare_one(r, *r->s->env.cat, batch ? json_array_get(list, i) : j, prefix, now, &items[i]);
    }
    /* The prepared messages point into the catalog (template name, provider
     * code): a SIGHUP reload must wait until they are written. */
    int enq = enqueue_prepared(r, items, n);
    pthread_rwlock_unlock(r->s->env.cat_lock);

    if (enq == 0) {
        size_t acc = 0, dup = 0, rej = 0, conflicts = 0;
        for (size_t i = 0; i < n; i++) {
            if (items[i].status == 409)
                conflicts++;
            if (!items[i].ok)
                rej++;
            else if (items[i].res.duplicate)
                dup++;
            else
                acc++;
        }
        atomic_fetch_add(&api_enqueued, (long long)acc);
        atomic_fetch_add(&api_duplicates, (long long)dup);
        atomic_fetch_add(&api_rejected, (long long)rej);
        snprintf(r->note, sizeof r->note, "%zu accepted, %zu duplicate, %zu rejected (%zu key conflicts)",
                 acc, dup, rej, conflicts);
        if (!batch) {
            if (items[0].ok) {
                json_t *o = item_json(&items[0]);
                json_object_del(o, "status");
                answer_json(r, items[0].status, o);
            } else {
                answer_json(r, items[0].status, json_pack("{s:O}", "error", items[0].error));
            }
        } else {
            json_t *results = json_array();
            for (size_t i = 0; i < n; i++) {
                json_t *o = item_json(&items[i]);
                json_object_set_new(o, "index", json_integer((json_int_t)i));
                json_array_append_new(results, o);
            }
            answer_json(r, 200, json_pack("{s:I, s:I, s:I, s:o}", "accepted", (json_int_t)acc,
                                          "duplicates", (json_int_t)dup, "rejected", (json_int_t)rej,
                                          "results", results));
        }
    }
    for (size_t i = 0; i < n; i++) {
        svc_message_free(&items[i].m);
        json_decref(items[i].error);
    }
    free(items);
out:
    json_decref(j);
}

static int id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n >= QUEUE_ID_MAX)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || *p == '-' || *p == '_'))
            return 0;
    return 1;
}

static void answer_record(api_req *r, const char *id)
{
    json_t *rec = NULL;
    if (!req_queue(r))
        return;
    int rc = queue_get(r->q, id, &rec);
    if (rc == QUEUE_ERR_CONN)
        rc = queue_get(r->q, id, &rec);
    if (rc == QUEUE_ERR_NOTFOUND)
        api_error(r, 404, "not_found", "id", "no message '%s' (unknown id, or past its retention)", id);
    else if (rc < 0)
        queue_failed(r, rc);
    else {
        /* vars are stored as JSON text: give them back as an object */
        json_t *vars = json_object_get(rec, "vars");
        json_t *vo = json_is_string(vars) ? json_loads(json_string_value(vars), 0, NULL) : NULL;
        if (vo)
            json_object_set_new(rec, "vars", vo);
        json_object_set_new(rec, "id", json_string(id));
        answer_json(r, 200, rec);
        rec = NULL;
    }
    json_decref(rec);
}

static void h_get_message(api_req *r)
{
    if (!id_ok(r->params[0])) {
        api_error(r, 404, "not_found", "id", "no message '%s' (ids are letters, digits, - and _)",
                  r->params[0]);
        return;
    }
    answer_record(r, r->params[0]);
}

/* GET /v1/messages?case_no=C[&max=N]: the case's messages, newest first,
 * numbers masked. */
static void find_by_case(api_req *r, const char *case_no)
{
    const char *ms = query(r, "max");
    char *end = NULL;
    long max = ms ? strtol(ms, &end, 10) : 100;
    if (ms && (!*ms || *end || max < 1 || max > 500)) {
        api_error(r, 400, "bad_request", "max", "max must be a whole number from 1 to 500, not '%s'", ms);
        return;
    }
    if (strlen(case_no) > QUEUE_CASE_MAX) {
        api_error(r, 400, "bad_request", "case_no", "a case number is at most %d bytes", QUEUE_CASE_MAX);
        return;
    }
    if (!req_queue(r))
        return;
    json_t *list = NULL;
    int rc = queue_find_by_case(r->q, case_no, (int)max, &list);
    if (rc == QUEUE_ERR_CONN)
        rc = queue_find_by_case(r->q, case_no, (int)max, &list);
    if (rc < 0) {
        queue_failed(r, rc);
        return;
    }
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m) {
        char masked[PHONE_MAX];
        const char *to = json_string_value(json_object_get(m, "to"));
        json_object_set_new(m, "to", json_string(phone_mask(to ? to : "", masked)));
    }
    snprintf(r->note, sizeof r->note, "case lookup: %zu messages", json_array_size(list));
    answer_json(r, 200, json_pack("{s:s, s:I, s:o}", "case_no", case_no,
                                  "count", (json_int_t)json_array_size(list), "messages", list));
}

static void h_find_message(api_req *r)
{
    const char *key = query(r, "key");
    const char *case_no = query(r, "case_no");
    if (key && case_no) {
        api_error(r, 400, "bad_request", "case_no", "give either key or case_no, not both");
        return;
    }
    if (case_no && *case_no) {
        find_by_case(r, case_no);
        return;
    }
    if (!key || !*key) {
        api_error(r, 400, "bad_request", case_no ? "case_no" : "key",
                  "give the idempotency key or the case number: GET /v1/messages?key=K "
                  "or GET /v1/messages?case_no=C");
        return;
    }
    if (strlen(key) >= SVC_KEY_MAX) {
        api_error(r, 404, "not_found", "key", "no message has this key (keys are at most 240 bytes)");
        return;
    }
    char id[QUEUE_ID_MAX];
    if (!req_queue(r))
        return;
    int rc = queue_find_by_key(r->q, key, id);
    if (rc == QUEUE_ERR_CONN)
        rc = queue_find_by_key(r->q, key, id);
    if (rc == QUEUE_ERR_NOTFOUND)
        api_error(r, 404, "not_found", "key", "no message with this key within the idempotency window");
    else if (rc < 0)
        queue_failed(r, rc);
    else
        answer_record(r, id);
}

/* ---- templates ------------------------------------------------------- */

static json_t *str_array(char *const *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static void h_templates(api_req *r)
{
    json_t *list = json_array();
    pthread_rwlock_rdlock(r->s->env.cat_lock);
    const catalog *c = *r->s->env.cat;
    for (size_t i = 0; i < catalog_count(c); i++) {
        const tpl_def *d = catalog_at(c, i);
        json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:i}", "name", d->name,
                              "family", family_name(d->family), "lane", lane_name(d->lane),
                              "required", str_array(d->required, d->nrequired),
                              "optional", str_array(d->optional, d->noptional),
                              "max_parts", d->max_parts);
        if (d->description)
            json_object_set_new(o, "description", json_string(d->description));
        if (d->provider_code)
            json_object_set_new(o, "provider_code", json_string(d->provider_code));
        json_array_append_new(list, o);
    }
    pthread_rwlock_unlock(r->s->env.cat_lock);
    answer_json(r, 200, json_pack("{s:o}", "templates", list));
}

static void h_preview(api_req *r)
{
    json_t *j = body_json(r, 0);
    if (!j)
        return;
    const char *k;
    json_t *v, *vars = json_object_get(j, "vars");
    tpl_var tv[SVC_MAX_VARS];
    size_t nv = 0;
    json_object_foreach(j, k, v) {
        if (strcmp(k, "vars") != 0) {
            api_error(r, 422, "invalid", k, "unknown field '%s' (a preview takes only vars)", k);
            goto out;
        }
    }
    if (vars && !json_is_object(vars)) {
        api_error(r, 422, "invalid", "vars", "vars must be an object of strings");
        goto out;
    }
    json_object_foreach(vars, k, v) {
        if (!json_is_string(v) || nv >= SVC_MAX_VARS) {
            char f[SVC_FIELD_MAX];
            snprintf(f, sizeof f, "vars.%.*s", SVC_FIELD_MAX - 6, k);
            api_error(r, 422, "invalid", f, "variable '%s' must be a string (at most %d variables)",
                      k, SVC_MAX_VARS);
            goto out;
        }
        tv[nv].name = k;
        tv[nv].value = json_string_value(v);
        nv++;
    }
    gw_config *cfg = r->s->env.cfg;
    catalog_opts co = { cfg->signature, cfg->optout_line };
    pthread_rwlock_rdlock(r->s->env.cat_lock);
    const tpl_def *d = catalog_find(*r->s->env.cat, r->params[0]);
    rendered out;
    char err[512];
    if (!d) {
        api_error(r, 404, "not_found", "name", "unknown template '%s'", r->params[0]);
    } else if (catalog_render(d, &co, tv, nv, &out, err, sizeof err) < 0) {
        char f[SVC_FIELD_MAX] = "vars";
        const char *p = strstr(err, "variable '");
        const char *q = p ? strchr(p + 10, '\'') : NULL;
        if (q && q - (p + 10) < SVC_FIELD_MAX - 6)
            snprintf(f, sizeof f, "vars.%.*s", (int)(q - (p + 10)), p + 10);
        api_error(r, 422, "invalid", f, "%s", err);
    } else {
        json_t *forcing = json_array();
        for (int i = 0; i < out.seg.nforcing && i < SEG_MAX_FORCING; i++)
            json_array_append_new(forcing, json_string(out.seg.forcing[i]));
        answer_json(r, 200, json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:o}",
                                      "template", d->name, "text", out.text,
                                      "encoding", seg_encoding_name(out.seg.encoding),
                                      "parts", out.seg.parts, "max_parts", d->max_parts,
                                      "chars", out.seg.chars, "units", out.seg.units,
                                      "forcing_ucs2", forcing));
        free(out.text);
    }
    pthread_rwlock_unlock(r->s->env.cat_lock);
out:
    json_decref(j);
}

/* ---- provider callbacks ---------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *api_form_value(const char *body, size_t len, const char *name)
{
    size_t nl = strlen(name);
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        if (eq && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
            char *out = malloc((size_t)(stop - eq) + 1), *o = out;
            if (!out)
                return NULL;
            for (const char *s = eq + 1; s < stop; s++) {
                if (*s == '+') {
                    *o++ = ' ';
                } else if (*s == '%' && stop - s >= 3 && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
                    *o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
                    s += 2;
                } else {
                    *o++ = *s;
                }
            }
            *o = '\0';
            return out;
        }
        p = stop + 1;
    }
    return NULL;
}

/* Checks and stores one received message into the inbound stream. Returns
 * 0 stored; 1 the item is bad (field and reason in why: retrying cannot
 * help); -1 Redis failed (r->q says why; the sender should retry). */
static int store_inbound(api_req *r, const char *route, const char *from, const char *text,
                         const char **field, char *why, size_t whylen)
{
    char num[PHONE_MAX], masked[PHONE_MAX];
    if (api_cb_check_inbound(from, text, num, field, why, whylen) != 0)
        return 1;
    if (!r->q) {
        char err[256];
        r->q = pool_get(r->s, err, sizeof err);
        if (!r->q) {
            snprintf(why, whylen, "redis is unreachable: %s", err);
            return -1;
        }
    }
    int rc = queue_inbound_add(r->q, route, num, text, svc_now_ms());
    if (rc == QUEUE_ERR_CONN)
        rc = queue_inbound_add(r->q, route, num, text, svc_now_ms());
    if (rc < 0) {
        r->q_broken = rc == QUEUE_ERR_CONN;
        snprintf(why, whylen, "redis: %s", queue_errstr(r->q));
        return -1;
    }
    api_observe_inbound(route);
    gw_log(LOG_INFO, route, "received a message from %s through the callback (%zu bytes)",
           phone_mask(num, masked), strlen(text));
    gw_log(LOG_DEBUG, route, "received text: %s", text);
    return 0;
}

static atomic_llong reports_delivered, reports_failed;

/* A provider's delivery report. Message records are not updated yet (that
 * needs the delivery-report capability in queue/); it is logged and counted. */
static void note_report(const char *route, const char *phone, const char *ref, int delivered,
                        const char *code)
{
    char masked[PHONE_MAX];
    atomic_fetch_add(delivered ? &reports_delivered : &reports_failed, 1);
    gw_log(LOG_INFO, route, "delivery report for %s (reference %s): %s (%s)",
           phone_mask(phone ? phone : "", masked), ref ? ref : "?",
           delivered ? "delivered" : "failed", code ? code : "");
}

/* The answer a provider expects, so that it does not retry what we took. */
static void provider_answer(api_req *r, const char *format, int status, const char *msg)
{
    int ok = status == 200;
    if (strcmp(format, "aliyun") == 0)
        answer_json(r, status, json_pack("{s:i, s:s}", "code", ok ? 0 : status, "msg", ok ? "接收成功" : msg));
    else
        answer_json(r, status, json_pack("{s:i, s:s}", "result", ok ? 0 : status, "errmsg", ok ? "OK" : msg));
}

/* A callback body the parser refused: answered in the provider's format. */
static void provider_refused(api_req *r, const char *format, int rc, const api_cb_parsed *p)
{
    provider_answer(r, format, rc == -2 ? 500 : p->status, rc == -2 ? "out of memory" : p->err);
}

/* Alibaba Cloud message push, HTTP batch mode: a JSON array of SmsUp
 * items or of SmsReport items (gateway/callbacks.h). */
static void inbound_aliyun(api_req *r, const char *route)
{
    api_cb_parsed p;
    int rc = api_cb_parse_aliyun(r->body, r->len, r->s->ac.max_json_depth, &p);
    if (rc < 0) {
        provider_refused(r, "aliyun", rc, &p);
        api_cb_parsed_free(&p);
        return;
    }
    size_t stored = 0, reports = 0, bad = 0;
    char why[300];
    for (size_t i = 0; i < p.n; i++) {
        const api_cb_item *it = &p.items[i];
        const char *field = NULL;
        if (it->kind == API_CB_REPLY) {
            int src = store_inbound(r, route, it->phone, it->text, &field, why, sizeof why);
            if (src < 0) {  /* nothing more can be stored: the provider sends it all again */
                provider_answer(r, "aliyun", 503, why);
                api_cb_parsed_free(&p);
                return;
            }
            if (src == 0) {
                stored++;
                continue;
            }
        } else if (it->kind == API_CB_REPORT) {
            note_report(route, it->phone, it->ref, it->delivered, it->code);
            reports++;
            continue;
        } else {
            snprintf(why, sizeof why, "%s", it->why);
        }
        /* a bad item cannot get better by a retry: skipped, said in the log */
        bad++;
        gw_log(LOG_WARN, route, "aliyun callback: item %zu skipped: %s", it->index, why);
    }
    snprintf(r->note, sizeof r->note, "aliyun: %zu replies, %zu reports, %zu skipped", stored, reports, bad);
    provider_answer(r, "aliyun", 200, NULL);
    api_cb_parsed_free(&p);
}

/* Tencent Cloud SMS callbacks: a JSON array of status reports, or one
 * reply object (gateway/callbacks.h). */
static void inbound_tencent(api_req *r, const char *route)
{
    api_cb_parsed p;
    int rc = api_cb_parse_tencent(r->body, r->len, r->s->ac.max_json_depth, &p);
    if (rc < 0) {
        provider_refused(r, "tencent", rc, &p);
        api_cb_parsed_free(&p);
        return;
    }
    char why[300];
    const char *field = NULL;
    if (p.single) {
        int src = store_inbound(r, route, p.items[0].phone, p.items[0].text, &field, why, sizeof why);
        if (src < 0) {
            provider_answer(r, "tencent", 503, why);
        } else {
            if (src > 0)
                gw_log(LOG_WARN, route, "tencent reply callback skipped: %s", why);
            snprintf(r->note, sizeof r->note, "tencent: %s", src ? "reply skipped" : "1 reply");
            provider_answer(r, "tencent", 200, NULL);
        }
    } else {
        size_t n = 0;
        for (size_t i = 0; i < p.n; i++) {
            const api_cb_item *it = &p.items[i];
            if (it->kind != API_CB_REPORT) {
                gw_log(LOG_WARN, route, "tencent status callback: item %zu has no report_status: skipped",
                       it->index);
                continue;
            }
            note_report(route, it->phone, it->ref, it->delivered, it->code);
            n++;
        }
        snprintf(r->note, sizeof r->note, "tencent: %zu reports", n);
        provider_answer(r, "tencent", 200, NULL);
    }
    api_cb_parsed_free(&p);
}

static void inbound_generic(api_req *r, const char *route)
{
    api_cb_parsed p;
    int rc = api_cb_parse_generic(r->body, r->len, r->is_form, r->s->ac.max_json_depth, &p);
    if (rc == -2) {
        api_error(r, 500, "internal", NULL, "out of memory");
    } else if (rc < 0) {
        api_error(r, p.status, p.code, p.field, "%s", p.err);
    } else {
        char why[300];
        const char *field = NULL;
        int src = store_inbound(r, route, p.items[0].phone, p.items[0].text, &field, why, sizeof why);
        if (src > 0)
            api_error(r, 422, "invalid", field, "%s", why);
        else if (src < 0)
            api_error(r, 503, "unavailable", NULL, "%s", why);
        else
            answer_json(r, 200, json_pack("{s:s}", "status", "accepted"));
    }
    api_cb_parsed_free(&p);
}

#define MM7_NS "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-5-MM7-1-2"

static void mm7_answer(api_req *r, int status, const char *tid, int code, const char *text)
{
    char *t = NULL;
    if (asprintf(&t,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\">"
        "<env:Header><mm7:TransactionID xmlns:mm7=\"" MM7_NS "\" env:mustUnderstand=\"1\">%s</mm7:TransactionID></env:Header>"
        "<env:Body><DeliveryReportRsp xmlns=\"" MM7_NS "\"><MM7Version>5.3.0</MM7Version>"
        "<Status><StatusCode>%d</StatusCode><StatusText>%s</StatusText></Status>"
        "</DeliveryReportRsp></env:Body></env:Envelope>\n", tid, code, text) < 0)
        t = NULL;
    json_decref(r->json);
    r->json = NULL;
    free(r->text);
    r->text = t;
    r->status = status;
    r->content_type = "text/xml; charset=utf-8";
}

/* A report on a bulletin's MMS (its MessageID is one a bulletin send
 * recorded) goes to the recipient's status, the issue's figures and, for a
 * final failure, the fallback SMS: bulletin_apply_dlr, as `herald bulletin
 * dlr` does. Reports on other messages are only counted. Returns -1 with a
 * 503 answered when Redis is unreachable, so the MMSC sends it again. */
static int mm7_bulletin_report(api_req *r, const char *body)
{
    mm7_dlr d;
    char err[512];
    if (mm7_parse_delivery_report(body, r->len, &d, err, sizeof err) < 0) {
        gw_log(LOG_WARN, "bulletin", "MM7 report not applied: %s", err);
        return 0;
    }
    if (!req_queue(r))
        return -1;
    char *title = NULL;
    long long issue = 0;
    int rc = queue_bulletin_by_mid(r->q, d.message_id, &title, &issue);
    free(title);
    if (rc == QUEUE_ERR_NOTFOUND)
        return 0;                             /* not a bulletin's MMS */
    if (rc < 0) {
        queue_failed(r, rc);
        return -1;
    }
    pthread_rwlock_rdlock(r->s->env.cat_lock);
    rc = bulletin_apply_dlr(r->q, r->s->env.cfg, *r->s->env.cat, &d, err, sizeof err);
    pthread_rwlock_unlock(r->s->env.cat_lock);
    if (rc < 0)   /* refused for good (unknown recipient...): retrying cannot help */
        gw_log(LOG_WARN, "bulletin", "MM7 report on %s not applied: %s", d.message_id, err);
    return 0;
}

/* MM7 DeliveryReportReq (SOAP): the MMSC reports what became of an MMS.
 * Answered with DeliveryReportRsp, status 1000, so the MMSC does not
 * retry. MMStatus Retrieved is delivered; Rejected, Expired, Unrecognised
 * are failures; the others (Deferred, Forwarded, Indeterminate) are logged. */
static void inbound_mm7(api_req *r, const char *route)
{
    const char *b = r->body ? r->body : "";
    api_cb_mm7 m;
    int prc = api_cb_parse_mm7(b, &m);
    const char *tid = m.tid, *id = m.message_id, *status = m.status, *num = m.number;
    if (prc == -1) {
        mm7_answer(r, 400, tid, 4004, "only DeliveryReportReq is accepted here");
        return;
    }
    if (prc < 0) {
        mm7_answer(r, 400, tid, 4004, "DeliveryReportReq without MessageID or MMStatus");
        return;
    }
    if (strcmp(status, "Retrieved") == 0)
        note_report(route, num, id, 1, status);
    else if (!strcmp(status, "Rejected") || !strcmp(status, "Expired") || !strcmp(status, "Unrecognised"))
        note_report(route, num, id, 0, status);
    else
        gw_log(LOG_INFO, route, "MM7 report for %s: %s (not final)", id, status);
    snprintf(r->note, sizeof r->note, "mm7: report %s", status);
    if (mm7_bulletin_report(r, b) < 0)
        return;                               /* 503 answered: the MMSC retries */
    mm7_answer(r, 200, tid, 1000, "Success");
}

/* POST /v1/inbound/{route}: authenticated by the route's own secret, then
 * read in the format its provider speaks. */
static void h_inbound(api_req *r)
{
    api_server *s = r->s;
    int cb = -1;
    for (int i = 0; i < s->ac.ncallbacks; i++)
        if (strcmp(s->ac.callbacks[i].route, r->params[0]) == 0)
            cb = i;
    if (cb < 0) {
        api_error(r, 404, "not_found", "route", "no callback is configured for route '%s'", r->params[0]);
        return;
    }
    const api_callback_cfg *c = &s->ac.callbacks[cb];
    const char *secret = header(r, "X-Herald-Secret");
    if (!secret)
        secret = query(r, "secret");
    unsigned char d[32];
    sha256(secret ? secret : "", secret ? strlen(secret) : 0, d);
    if (!secret || CRYPTO_memcmp(d, s->cb_digest[cb], sizeof d) != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "missing or wrong callback secret for route '%s'", c->route);
        if (strcmp(c->format, "generic") == 0)
            api_error(r, 401, "unauthorized", NULL, "%s", msg);
        else if (strcmp(c->format, "mm7") == 0)
            mm7_answer(r, 401, "", 4000, "Client error: wrong or missing secret");
        else
            provider_answer(r, c->format, 401, msg);
        gw_log(LOG_WARN, c->route, "callback refused: %s secret", secret ? "wrong" : "no");
        return;
    }
    if (strcmp(c->format, "aliyun") == 0)
        inbound_aliyun(r, c->route);
    else if (strcmp(c->format, "tencent") == 0)
        inbound_tencent(r, c->route);
    else if (strcmp(c->format, "mm7") == 0)
        inbound_mm7(r, c->route);
    else
        inbound_generic(r, c->route);
}

/* ---- Kannel-compatible sendsms ---------------------------------------- */

/* A parameter from the query string, else from a form body; malloc'd. */
static char *param(api_req *r, const char *name)
{
    const char *q = query(r, name);
    if (q)
        return strdup(q);
    return r->is_form && r->body ? api_form_value(r->body, r->len, name) : NULL;
}

static void kannel_answer(api_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void kannel_answer(api_req *r, int status, const char *fmt, ...)
{
    char *t = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&t, fmt, ap) < 0)
        t = NULL;
    va_end(ap);
    json_decref(r->json);
    r->json = NULL;
    free(r->text);
    r->text = t;
    r->status = status;
    r->content_type = "text/plain; charset=utf-8";
}

static int secret_eq(const char *a, const char *b)
{
    unsigned char da[32], db[32];
    sha256(a, strlen(a), da);
    sha256(b, strlen(b), db);
    return CRYPTO_memcmp(da, db, sizeof da) == 0;
}

#define KANNEL_MAX_TO 100

/* GET|POST /cgi-bin/sendsms?username=&password=&to=&text=: systems built
 * for Kannel's smsbox switch without a change. The text fills the one
 * required variable of api.kannel.template; the signature is added as for
 * every message; `to` may hold several numbers separated by spaces. */
static void h_kannel(api_req *r)
{
    api_server *s = r->s;
    if (!s->ac.kannel_enabled) {
        api_error(r, 404, "not_found", NULL, "the Kannel interface is off (api.kannel.enabled)");
        return;
    }
    char *user = param(r, "username"), *pass = param(r, "password");
    char *to = param(r, "to"), *text = param(r, "text");
    prepared *items = NULL;
    size_t n = 0;
    if (!user || !pass || !secret_eq(user, s->ac.kannel_username) || !secret_eq(pass, s->ac.kannel_password)) {
        kannel_answer(r, 403, "Authorization failed for sendsms");
        goto out;
    }
    if (!to || !to[strspn(to, " ")]) {
        kannel_answer(r, 400, "Missing receiver number");
        goto out;
    }
    if (!text) {
        kannel_answer(r, 400, "Missing text");
        goto out;
    }
    items = calloc(KANNEL_MAX_TO, sizeof *items);
    if (!items) {
        kannel_answer(r, 500, "Out of memory");
        goto out;
    }
    gw_config *cfg = r->s->env.cfg;
    catalog_opts co = { cfg->signature, cfg->optout_line };
    long long now = svc_now_ms();
    char err[512];
    int bad = 0;
    pthread_rwlock_rdlock(s->env.cat_lock);
    const tpl_def *d = catalog_find(*s->env.cat, s->ac.kannel_template);
    if (!d || d->nrequired != 1) {
        pthread_rwlock_unlock(s->env.cat_lock);
        gw_log(LOG_ERROR, "api", "api.kannel.template '%s' %s", s->ac.kannel_template,
               d ? "must have exactly one required variable" : "is not a loaded template");
        kannel_answer(r, 500, "Sending failed: the gateway's Kannel template is misconfigured");
        goto out;
    }
    tpl_var v = { d->required[0], text };
    for (char *save = NULL, *num = strtok_r(to, " ", &save); num && !bad; num = strtok_r(NULL, " ", &save)) {
        if (n == KANNEL_MAX_TO) {
            kannel_answer(r, 400, "Too many receivers (at most %d)", KANNEL_MAX_TO);
            bad = 1;
            break;
        }
        svc_request rq = { d->name, num, &v, 1, NULL, 0 };
        if (svc_prepare(*s->env.cat, &co, cfg->allow_international, &rq, now, &items[n].m, err, sizeof err) < 0) {
            kannel_answer(r, 400, "Invalid message: %s", err);
            bad = 1;
        } else {
            items[n].ok = 1;
        }
        n++;
    }
    /* written under the lock: the messages point into the catalog */
    int enq = bad ? 0 : enqueue_prepared(r, items, n);
    pthread_rwlock_unlock(s->env.cat_lock);
    if (bad)      /* nothing of a bad request is written */
        goto out;
    if (enq < 0) {
        kannel_answer(r, 503, "Sending failed: %s", r->q ? queue_errstr(r->q) : "redis is unreachable");
        goto out;
    }
    size_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc += items[i].ok && !items[i].res.duplicate;
    atomic_fetch_add(&api_enqueued, (long long)acc);
    atomic_fetch_add(&api_duplicates, (long long)(n - acc));
    snprintf(r->note, sizeof r->note, "kannel: %zu receivers, %zu new", n, acc);
    kannel_answer(r, 202, "0: Accepted for delivery");
out:
    for (size_t i = 0; i < n && items; i++) {
        svc_message_free(&items[i].m);
        json_decref(items[i].error);
    }
    free(items);
    if (user)
        OPENSSL_cleanse(user, strlen(user));
    if (pass)
        OPENSSL_cleanse(pass, strlen(pass));
    free(user);
    free(pass);
    free(to);
    free(text);
}

/* ---- health and metrics ---------------------------------------------- */

static void h_healthz(api_req *r)
{
    answer_json(r, 200, json_pack("{s:s}", "status", "alive"));
}

static int get_routes(api_server *s, api_route_state *st, int max)
{
    return s->env.routes ? s->env.routes(s->env.ud, st, max) : 0;
}

static void h_readyz(api_req *r)
{
    api_server *s = r->s;
    json_t *reasons = json_array();
    json_t *fams = json_object();
    if (req_queue(r)) {
        char holder[320];
        int rc = queue_instance_holder(r->q, s->env.cfg->instance, holder, sizeof holder);
        if (rc == QUEUE_ERR_CONN)
            rc = queue_instance_holder(r->q, s->env.cfg->instance, holder, sizeof holder);
        if (rc < 0) {
            r->q_broken = 1;
            json_array_append_new(reasons, json_sprintf("redis: %s", queue_errstr(r->q)));
        }
    } else {
        json_array_append_new(reasons, json_string("redis is unreachable"));
        json_decref(r->json);   /* req_queue answered 503; readyz says more */
        r->json = NULL;
    }
    api_route_state st[GW_MAX_ROUTES];
    int n = get_routes(s, st, GW_MAX_ROUTES);
    for (int f = 0; f < FAMILY_COUNT; f++) {
        json_t *up = json_array();
        int served = 0;
        for (int i = 0; i < n; i++) {
            if (!(st[i].families & (1u << f)))
                continue;
            served = 1;
            if (st[i].up)
                json_array_append_new(up, json_string(st[i].name));
        }
        if (json_array_size(up) == 0)
            json_array_append_new(reasons, json_sprintf("no route up for family %s%s",
                                  family_name((tpl_family)f), served ? "" : " (no route serves it)"));
        json_object_set_new(fams, family_name((tpl_family)f), up);
    }
    int ready = json_array_size(reasons) == 0;
    json_t *o = json_pack("{s:b, s:o, s:o}", "ready", ready, "families", fams, "reasons", reasons);
    if (!ready) {
        char msg[400] = "not ready:";
        size_t i;
        json_t *v;
        json_array_foreach(reasons, i, v) {
            size_t l = strlen(msg);
            snprintf(msg + l, sizeof msg - l, "%s %s", i ? ";" : "", json_string_value(v));
        }
        json_object_set_new(o, "error", json_pack("{s:s, s:s}", "code", "not_ready", "message", msg));
    }
    answer_json(r, ready ? 200 : 503, o);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void label(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f);
        if (*v == '\n') {
            fputs("\\n", f);
            continue;
        }
        fputc(*v, f);
    }
}

static void h_metrics(api_req *r)
{
    json_t *st = NULL;
    if (!req_queue(r))
        return;
    int rc = queue_stats(r->q, svc_now_ms(), &st);
    if (rc == QUEUE_ERR_CONN)
        rc = queue_stats(r->q, svc_now_ms(), &st);
    if (rc < 0) {
        queue_failed(r, rc);
        return;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        json_decref(st);
        api_error(r, 500, "internal", NULL, "out of memory");
        return;
    }
    fprintf(f, "# HELP herald_messages_total Message events by family and route (sent, retry, dead, uncertain).\n"
               "# TYPE herald_messages_total counter\n");
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(st, "counters"), k, v) {
        char ev[64], fam[64], route[128];
        if (sscanf(k, "%63[^:]:%63[^:]:%127[^\n]", ev, fam, route) != 3)
            continue;
        fputs("herald_messages_total{event=\"", f); label(f, ev);
        fputs("\",family=\"", f); label(f, fam);
        fputs("\",route=\"", f); label(f, route);
        fprintf(f, "\"} %lld\n", (long long)json_integer_value(v));
    }
    fprintf(f, "# HELP herald_api_messages_total Messages the HTTP API answered, by result.\n"
               "# TYPE herald_api_messages_total counter\n"
               "herald_api_messages_total{result=\"enqueued\"} %lld\n"
               "herald_api_messages_total{result=\"duplicate\"} %lld\n"
               "herald_api_messages_total{result=\"rejected\"} %lld\n",
            (long long)atomic_load(&api_enqueued), (long long)atomic_load(&api_duplicates),
            (long long)atomic_load(&api_rejected));
    fprintf(f, "# HELP herald_queue_depth Messages waiting or in flight in a lane.\n# TYPE herald_queue_depth gauge\n");
    json_object_foreach(json_object_get(st, "lanes"), k, v)
        fprintf(f, "herald_queue_depth{lane=\"%s\"} %lld\n", k,
                (long long)json_integer_value(json_object_get(v, "depth")));
    fprintf(f, "# HELP herald_queue_pending Entries read by a worker and not yet finished.\n# TYPE herald_queue_pending gauge\n");
    json_object_foreach(json_object_get(st, "lanes"), k, v)
        fprintf(f, "herald_queue_pending{lane=\"%s\"} %lld\n", k,
                (long long)json_integer_value(json_object_get(v, "pending")));
    fprintf(f, "# HELP herald_queue_oldest_age_seconds Age of the oldest entry in a lane.\n# TYPE herald_queue_oldest_age_seconds gauge\n");
    json_object_foreach(json_object_get(st, "lanes"), k, v)
        fprintf(f, "herald_queue_oldest_age_seconds{lane=\"%s\"} %.3f\n", k,
                (double)json_integer_value(json_object_get(v, "oldest_age_ms")) / 1000.0);
    fprintf(f, "# HELP herald_scheduled Messages waiting for their send time or a retry.\n# TYPE herald_scheduled gauge\n"
               "herald_scheduled %lld\n"
               "# HELP herald_dead Entries in the dead-letter stream.\n# TYPE herald_dead gauge\n"
               "herald_dead %lld\n"
               "# HELP herald_uncertain Messages held as uncertain after a crash.\n# TYPE herald_uncertain gauge\n"
               "herald_uncertain %lld\n",
            (long long)json_integer_value(json_object_get(st, "scheduled")),
            (long long)json_integer_value(json_object_get(st, "dead")),
            (long long)json_integer_value(json_object_get(st, "uncertain")));
    json_decref(st);

    fprintf(f, "# HELP herald_send_duration_seconds Time one send took in a driver (this process).\n"
               "# TYPE herald_send_duration_seconds histogram\n");
    long long cum = 0;
    for (size_t i = 0; i <= NBOUNDS; i++) {
        cum += atomic_load(&send_bucket[i]);
        if (i < NBOUNDS)
            fprintf(f, "herald_send_duration_seconds_bucket{le=\"%g\"} %lld\n",
                    (double)latency_bounds_ms[i] / 1000.0, cum);
        else
            fprintf(f, "herald_send_duration_seconds_bucket{le=\"+Inf\"} %lld\n", cum);
    }
    fprintf(f, "herald_send_duration_seconds_sum %.3f\nherald_send_duration_seconds_count %lld\n",
            (double)atomic_load(&send_sum_ms) / 1000.0, (long long)atomic_load(&send_count));

    api_route_state rs[GW_MAX_ROUTES];
    int n = get_routes(r->s, rs, GW_MAX_ROUTES);
    fprintf(f, "# HELP herald_route_up 1 when the route can send now.\n# TYPE herald_route_up gauge\n");
    for (int i = 0; i < n; i++) {
        fputs("herald_route_up{route=\"", f); label(f, rs[i].name);
        fputs("\",driver=\"", f); label(f, rs[i].driver ? rs[i].driver : "");
        fprintf(f, "\"} %d\n", rs[i].up ? 1 : 0);
    }
    fprintf(f, "# HELP herald_modem_signal_percent Signal strength reported by a modem route.\n# TYPE herald_modem_signal_percent gauge\n");
    for (int i = 0; i < n; i++) {
        if (rs[i].signal_percent < 0)
            continue;
        fputs("herald_modem_signal_percent{route=\"", f); label(f, rs[i].name);
        fprintf(f, "\"} %d\n", rs[i].signal_percent);
    }
    fprintf(f, "# HELP herald_inbound_total Inbound messages received (modems and callbacks, this process).\n"
               "# TYPE herald_inbound_total counter\nherald_inbound_total %lld\n",
            (long long)atomic_load(&inbound_count));
    fprintf(f, "# HELP herald_delivery_reports_total Delivery reports providers posted to callbacks (this process).\n"
               "# TYPE herald_delivery_reports_total counter\n"
               "herald_delivery_reports_total{result=\"delivered\"} %lld\n"
               "herald_delivery_reports_total{result=\"failed\"} %lld\n",
            (long long)atomic_load(&reports_delivered), (long long)atomic_load(&reports_failed));
    fprintf(f, "# HELP herald_http_responses_total HTTP API answers by status class.\n# TYPE herald_http_responses_total counter\n");
    for (int c = 1; c <= 5; c++)
        fprintf(f, "herald_http_responses_total{class=\"%dxx\"} %lld\n", c,
                (long long)atomic_load(&api_status_count[c]));
    fclose(f);
    r->status = 200;
    r->text = buf;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* ---- survey: contacts, replies, report, opt-outs -------------------------- */

/* The survey settings, read afresh from the loaded configuration (the
 * report needs the scale and the schedule; a reload changes them). */
static int survey_settings_req(api_req *r, survey_settings *ss)
{
    char err[512];
    if (survey_settings_load(&r->s->env.cfg->cfg, ss, err, sizeof err) < 0) {
        api_error(r, 500, "internal", NULL, "survey settings: %s", err);
        return -1;
    }
    return 0;
}

/* A string member, "" when absent. */
static const char *sval(const json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

/* survey_contact_add's errors read "field: why": the field for the answer. */
static void err_field(const char *err, const char *prefix, char *field, size_t len)
{
    size_t n = strcspn(err, ":");
    if (!err[n] || n > 20)
        n = 0;
    snprintf(field, len, "%s%.*s", prefix, (int)n, err);
    if (!n && *prefix)                       /* the item itself: "contacts[2]" */
        field[strlen(field) - 1] = '\0';
}

/* One contact object -> survey_contact_in (strings only). NULL, or the name
 * of the member that is not a string (*unknown 0) or not known (*unknown 1). */
const char *api_contact_from_json(const json_t *j, survey_contact_in *in, int *unknown)
{
    *unknown = 0;
    static const char *const names[] = { "phone", "role", "case_no", "department", "prosecutor", "date" };
    const char **dst[] = { &in->phone, &in->role, &in->case_no, &in->department, &in->prosecutor, &in->date };
    memset(in, 0, sizeof *in);
    for (int k = 0; k < 6; k++) {
        json_t *v = json_object_get(j, names[k]);
        if (v && !json_is_string(v) && !json_is_null(v))
            return names[k];
        *dst[k] = json_string_value(v);
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)j, key, v) {
        int k;
        for (k = 0; k < 6 && strcmp(key, names[k]); k++)
            ;
        if (k == 6)
            return *unknown = 1, key;
    }
    return NULL;
}

/* POST /v1/contacts: one contact, or {"contacts":[...]} with a result per
 * item. Each item is checked and stored by survey_contact_add, the same
 * function `herald contacts add` and the CSV import use. */
static void h_post_contacts(api_req *r)
{
    json_t *j = body_json(r, 1);
    if (!j)
        return;
    json_t *list = json_object_get(j, "contacts");
    int batch = list != NULL;
    size_t n = 1;
    if (batch && (json_object_size(j) != 1 || !json_is_array(list) || json_array_size(list) == 0)) {
        api_error(r, 422, "invalid", "contacts", "a batch is {\"contacts\":[...]}: a non-empty array and no other member");
        goto out;
    }
    if (batch && (n = json_array_size(list)) > API_BATCH_MAX) {
        api_error(r, 413, "too_large", "contacts", "%zu contacts; at most %d per request", n, API_BATCH_MAX);
        goto out;
    }
    if (!req_queue(r))
        goto out;
    gw_config *cfg = r->s->env.cfg;
    long long now = svc_now_ms();
    json_t *results = json_array();
    size_t added = 0, updated = 0, rejected = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *c = batch ? json_array_get(list, i) : j;
        char prefix[40] = "", field[64], err[512];
        if (batch)
            snprintf(prefix, sizeof prefix, "contacts[%zu].", i);
        survey_contact_in in;
        int unknown = 0, rc;
        const char *bad = json_is_object(c) ? api_contact_from_json(c, &in, &unknown) : "";
        if (bad) {
            if (*bad)
                snprintf(err, sizeof err, "%s: %s", bad, unknown
                         ? "unknown member (phone, role, case_no, department, prosecutor, date)" : "must be a string");
            else
                snprintf(err, sizeof err, "a contact must be a JSON object");
            rc = -1;
        } else {
            rc = survey_contact_add(r->q, cfg, &in, now, err, sizeof err);
        }
        if (rc == -2) {                      /* Redis: the whole request fails */
            json_decref(results);
            queue_failed(r, QUEUE_ERR_CONN);
            goto out;
        }
        json_t *o;
        if (rc < 0) {
            err_field(err, prefix, field, sizeof field);
            o = json_pack("{s:i, s:o}", "status", 422, "error", item_error("invalid", field, err));
            rejected++;
        } else {
            char phone[PHONE_MAX], masked[PHONE_MAX], perr[100];
            if (phone_normalize(in.phone, cfg->allow_international, phone, perr, sizeof perr) < 0)
                snprintf(phone, sizeof phone, "?");
            o = json_pack("{s:i, s:s, s:s, s:s}", "status", rc == 1 ? 201 : 200,
                          "result", rc == 1 ? "added" : "updated", "phone", phone_mask(phone, masked),
                          "case_no", in.case_no);
            if (rc == 1)
                added++;
            else
                updated++;
        }
        json_object_set_new(o, "index", json_integer((json_int_t)i));
        json_array_append_new(results, o);
    }
    snprintf(r->note, sizeof r->note, "contacts: %zu added, %zu updated, %zu rejected", added, updated, rejected);
    if (!batch) {
        json_t *o = json_incref(json_array_get(results, 0));
        int st = (int)json_integer_value(json_object_get(o, "status"));
        json_object_del(o, "status");
        json_object_del(o, "index");
        if (st == 422)
            answer_json(r, 422, json_pack("{s:O}", "error", json_object_get(o, "error")));
        else
            answer_json(r, st, json_incref(o));
        json_decref(o);
        json_decref(results);
    } else {
        answer_json(r, 200, json_pack("{s:I, s:I, s:I, s:o}", "added", (json_int_t)added,
                                      "updated", (json_int_t)updated, "rejected", (json_int_t)rejected,
                                      "results", results));
    }
out:
    json_decref(j);
}

/* Replies of a period in the order they arrived: (at, field) ascending. */
static int reply_cmp(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    long long ax = json_integer_value(json_object_get(x, "at")), ay = json_integer_value(json_object_get(y, "at"));
    if (ax != ay)
        return ax < ay ? -1 : 1;
    return strcmp(json_string_value(json_object_get(x, "id")), json_string_value(json_object_get(y, "id")));
}

/* A number as the token may see it: whole with the contacts scope (the
 * scope that writes the numbers), masked otherwise. */
static const char *phone_for(api_req *r, const char *phone, char out[PHONE_MAX])
{
    if (r->token >= 0 && (r->s->tokens[r->token].cfg.scopes & API_SCOPE_CONTACTS))
        return phone;
    return phone_mask(phone, out);
}

/* "since": milliseconds since the epoch, or an ISO 8601 time. -1 when neither. */
static long long parse_since(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end && v >= 0)
        return v;
    struct tm tm = { 0 };
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    long long ms = (long long)timegm(&tm) * 1000;
    if (*p == '.') {                          /* fractions: milliseconds */
        int d = 0;
        long long f = 0;
        for (p++; *p >= '0' && *p <= '9'; p++)
            if (d++ < 3)
                f = f * 10 + (*p - '0');
        while (d < 3 && d++ >= 0)
            f *= 10;
        ms += f;
    }
    if (*p == 'Z')
        p++;
    else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int off = (atoi(p + 1) * 60 + atoi(p + 4)) * 60000;
        ms -= *p == '+' ? off : -off;
        p += 6;
    }
    return *p ? -1 : ms;
}

/* GET /v1/replies?period=2026-11[&since=T][&cursor=C][&limit=N]: the
 * answers recorded for the period's surveys, oldest first, in pages. */
static void h_get_replies(api_req *r)
{
    const char *period = query(r, "period"), *since_s = query(r, "since");
    const char *cursor = query(r, "cursor"), *limit_s = query(r, "limit");
    survey_settings ss;
    survey_slot slot;
    if (!period || !*period) {
        api_error(r, 400, "bad_request", "period", "period is required (YYYY-MM)");
        return;
    }
    long long since = -1;
    if (since_s && (since = parse_since(since_s)) < 0) {
        api_error(r, 400, "bad_request", "since", "since '%s' is neither milliseconds since the epoch nor an ISO 8601 time", since_s);
        return;
    }
    char *end = NULL;
    long limit = limit_s ? strtol(limit_s, &end, 10) : 100;
    if (limit_s && (*end || limit < 1 || limit > 1000)) {
        api_error(r, 400, "bad_request", "limit", "limit '%s' is not a number from 1 to 1000", limit_s);
        return;
    }
    long long c_at = -1;
    char c_id[17] = "";
    if (cursor && (sscanf(cursor, "%lld:%16[0-9a-f]", &c_at, c_id) != 2 || c_at < 0 || strlen(c_id) != 16)) {
        api_error(r, 400, "bad_request", "cursor", "cursor '%s' is not one this endpoint gave (next_cursor)", cursor);
        return;
    }
    if (survey_settings_req(r, &ss) < 0)
        return;
    int bad = survey_slot_of(&ss, period, &slot) < 0;
    survey_settings_free(&ss);
    if (bad) {
        api_error(r, 400, "bad_request", "period", "period '%s' is not YYYY-MM", period);
        return;
    }
    if (!req_queue(r))
        return;
    json_t *replies = NULL, *items = NULL;
    int rc = queue_survey_replies_get(r->q, slot.period, &replies);
    if (rc == 0)
        rc = queue_survey_items_get(r->q, slot.period, &items);
    if (rc < 0) {
        json_decref(replies);
        queue_failed(r, rc);
        return;
    }
    size_t n = json_object_size(replies), k = 0;
    json_t **v = calloc(n ? n : 1, sizeof *v);
    const char *field;
    json_t *rep;
    json_object_foreach(replies, field, rep) {
        const json_t *item = json_object_get(items, field);
        long long at = atoll(sval(rep, "at"));
        if (since >= 0 && at <= since)
            continue;
        /* the cursor's tie-break: a digest of the item, so that a page's
         * cursor does not carry the number the page may mask */
        unsigned char d[32];
        char id[17];
        sha256(field, strlen(field), d);
        for (int x = 0; x < 8; x++)
            snprintf(id + 2 * x, 3, "%02x", d[x]);
        json_t *o = json_pack("{s:s, s:s, s:I, s:O*, s:s, s:s, s:s, s:s, s:s}",
                              "id", id, "phone", sval(rep, "phone"), "at", (json_int_t)at,
                              "ratings", json_object_get(rep, "ratings"),
                              "status", sval(rep, "status"), "suggestion", sval(rep, "suggestion"),
                              "case_no", sval(item, "case_no"), "department", sval(item, "department"),
                              "prosecutor", sval(item, "prosecutor"));
        if (o && v)
            v[k++] = o;
        else
            json_decref(o);
    }
    qsort(v, k, sizeof *v, reply_cmp);
    json_t *page = json_array();
    size_t i = 0, taken = 0;
    if (c_at >= 0) {                          /* resume strictly after the cursor */
        while (i < k) {
            long long at = json_integer_value(json_object_get(v[i], "at"));
            if (at > c_at || (at == c_at && strcmp(json_string_value(json_object_get(v[i], "id")), c_id) > 0))
                break;
            i++;
        }
    }
    char next[160] = "";
    for (; i < k && taken < (size_t)limit; i++, taken++) {
        char masked[PHONE_MAX];
        const char *ph = json_string_value(json_object_get(v[i], "phone"));
        json_object_set_new(v[i], "phone", json_string(phone_for(r, ph ? ph : "", masked)));
        snprintf(next, sizeof next, "%lld:%s", (long long)json_integer_value(json_object_get(v[i], "at")),
                 json_string_value(json_object_get(v[i], "id")));
        json_object_del(v[i], "id");
        json_array_append(page, v[i]);
    }
    int more = i < k;
    for (size_t x = 0; x < k; x++)
        json_decref(v[x]);
    free(v);
    json_decref(replies);
    json_decref(items);
    json_t *ans = json_pack("{s:s, s:o, s:b}", "period", slot.period, "replies", page, "more", more);
    json_object_set_new(ans, "next_cursor", more ? json_string(next) : json_null());
    snprintf(r->note, sizeof r->note, "replies %s: %zu", slot.period, taken);
    answer_json(r, 200, ans);
}

/* GET /v1/surveys/{period}/report: survey_report_build, the figures
 * `herald report survey --json` prints. */
static void h_survey_report(api_req *r)
{
    survey_settings ss;
    survey_slot slot;
    if (survey_settings_req(r, &ss) < 0)
        return;
    if (survey_slot_of(&ss, r->params[0], &slot) < 0) {
        survey_settings_free(&ss);
        api_error(r, 400, "bad_request", "period", "period '%s' is not YYYY-MM", r->params[0]);
        return;
    }
    if (!req_queue(r)) {
        survey_settings_free(&ss);
        return;
    }
    json_t *rep = NULL;
    char err[512];
    int rc = survey_report_build(r->q, &ss, slot.period, &rep, err, sizeof err);
    survey_settings_free(&ss);
    if (rc < 0) {
        int conn = strncmp(err, "redis:", 6) == 0;
        r->q_broken = conn;
        api_error(r, conn ? 503 : 500, conn ? "unavailable" : "internal", NULL, "%s", err);
        return;
    }
    answer_json(r, 200, rep);
}

/* The phone of an opt-out request, canonical; 0, or -1 with 422 answered. */
static int optout_phone(api_req *r, const char *in, char out[PHONE_MAX])
{
    char err[200];
    if (!in || !*in) {
        api_error(r, 422, "invalid", "phone", "phone: missing");
        return -1;
    }
    if (phone_normalize(in, r->s->env.cfg->allow_international, out, err, sizeof err) < 0) {
        api_error(r, 422, "invalid", "phone", "phone: %s", err);
        return -1;
    }
    return 0;
}

/* POST /v1/optouts {"phone":"..."} and DELETE /v1/optouts/{phone}: the
 * opt-out list `herald optout add|remove` and the TD replies keep. */
static void optout_set(api_req *r, const char *in, int on)
{
    char phone[PHONE_MAX], masked[PHONE_MAX];
    if (optout_phone(r, in, phone) < 0 || !req_queue(r))
        return;
    int had = queue_optout_has(r->q, phone);
    int rc = had < 0 ? had : queue_optout_set(r->q, phone, on, svc_now_ms());
    if (rc < 0) {
        queue_failed(r, rc);
        return;
    }
    snprintf(r->note, sizeof r->note, "optout %s %s", on ? "add" : "remove", phone_mask(phone, masked));
    if (!on && !had) {
        api_error(r, 404, "not_found", "phone", "%s is not on the opt-out list", masked);
        return;
    }
    answer_json(r, on && !had ? 201 : 200, json_pack("{s:s, s:b, s:b}", "phone", phone_for(r, phone, masked),
                                                     "opted_out", on, "changed", on != (had > 0)));
}

static void h_post_optout(api_req *r)
{
    json_t *j = body_json(r, 1);
    if (!j)
        return;
    json_t *p = json_object_get(j, "phone");
    if (p && !json_is_string(p))
        api_error(r, 422, "invalid", "phone", "phone: must be a string");
    else
        optout_set(r, json_string_value(p), 1);
    json_decref(j);
}

static void h_delete_optout(api_req *r)
{
    optout_set(r, r->params[0], 0);
}

/* ---- bulletins: lists, issues, figures --------------------------------------- */

static int list_param(api_req *r)
{
    if (bulletin_list_name_ok(r->params[0]))
        return 0;
    api_error(r, 400, "bad_request", "list", "list name '%s': 1-64 characters without spaces, ':' or braces",
              r->params[0]);
    return -1;
}

/* GET /v1/lists/{list}: the members (numbers masked without the contacts scope). */
static void h_get_list(api_req *r)
{
    if (list_param(r) < 0 || !req_queue(r))
        return;
    json_t *m = NULL;
    int rc = queue_list_get(r->q, r->params[0], &m);
    if (rc < 0) {
        queue_failed(r, rc);
        return;
    }
    size_t i;
    json_t *o;
    json_array_foreach(m, i, o) {
        char masked[PHONE_MAX];
        const char *ph = sval(o, "phone");
        json_object_set_new(o, "phone", json_string(phone_for(r, ph, masked)));
    }
    answer_json(r, 200, json_pack("{s:s, s:I, s:o}", "list", r->params[0],
                                  "count", (json_int_t)json_array_size(m), "members", m));
}

/* POST /v1/lists/{list}/members: one member {"phone","name","org","sms_only"}
 * or {"members":[...]}, a result per item, like `herald list add`. */
static void h_post_members(api_req *r)
{
    if (list_param(r) < 0)
        return;
    json_t *j = body_json(r, 1);
    if (!j)
        return;
    json_t *list = json_object_get(j, "members");
    int batch = list != NULL;
    size_t n = 1;
    if (batch && (json_object_size(j) != 1 || !json_is_array(list) || (n = json_array_size(list)) == 0)) {
        api_error(r, 422, "invalid", "members", "a batch is {\"members\":[...]}: a non-empty array and no other member");
        goto out;
    }
    if (n > API_BATCH_MAX) {
        api_error(r, 413, "too_large", "members", "%zu members; at most %d per request", n, API_BATCH_MAX);
        goto out;
    }
    if (!req_queue(r))
        goto out;
    json_t *results = json_array();
    size_t added = 0, updated = 0, rejected = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *m = batch ? json_array_get(list, i) : j;
        char prefix[40] = "", field[64] = "", err[300] = "", phone[PHONE_MAX], masked[PHONE_MAX];
        if (batch)
            snprintf(prefix, sizeof prefix, "members[%zu].", i);
        json_t *ph = json_object_get(m, "phone"), *nm = json_object_get(m, "name");
        json_t *org = json_object_get(m, "org"), *so = json_object_get(m, "sms_only");
        char perr[160];
        if (!json_is_object(m))
            snprintf(err, sizeof err, "a member must be a JSON object");
        else if (!json_is_string(ph))
            snprintf(field, sizeof field, "phone"), snprintf(err, sizeof err, "phone: missing or not a string");
        else if (phone_normalize(json_string_value(ph), r->s->env.cfg->allow_international, phone, perr, sizeof perr) < 0)
            snprintf(field, sizeof field, "phone"), snprintf(err, sizeof err, "phone: %s", perr);
        else if (nm && !json_is_string(nm))
            snprintf(field, sizeof field, "name"), snprintf(err, sizeof err, "name: must be a string");
        else if (org && !json_is_string(org))
            snprintf(field, sizeof field, "org"), snprintf(err, sizeof err, "org: must be a string");
        else if (so && !json_is_boolean(so))
            snprintf(field, sizeof field, "sms_only"), snprintf(err, sizeof err, "sms_only: must be true or false");
        json_t *o;
        if (err[0]) {
            char full[110];
            snprintf(full, sizeof full, "%s%s", prefix, field);
            if (!field[0] && batch)
                full[strlen(full) - 1] = '\0';
            o = json_pack("{s:i, s:o}", "status", 422, "error", item_error("invalid", full, err));
            rejected++;
        } else {
            int was_added = 0;
            int rc = queue_list_put(r->q, r->params[0], phone, nm ? json_string_value(nm) : "",
                                    org ? json_string_value(org) : "", json_is_true(so), &was_added);
            if (rc < 0) {
                json_decref(results);
                queue_failed(r, rc);
                goto out;
            }
            o = json_pack("{s:i, s:s, s:s}", "status", was_added ? 201 : 200,
                          "result", was_added ? "added" : "updated", "phone", phone_for(r, phone, masked));
            if (was_added)
                added++;
            else
                updated++;
        }
        json_object_set_new(o, "index", json_integer((json_int_t)i));
        json_array_append_new(results, o);
    }
    snprintf(r->note, sizeof r->note, "list %.64s: %zu added, %zu updated, %zu rejected", r->params[0],
             added, updated, rejected);
    if (!batch) {
        json_t *o = json_array_get(results, 0);
        int st = (int)json_integer_value(json_object_get(o, "status"));
        if (st == 422) {
            answer_json(r, 422, json_pack("{s:O}", "error", json_object_get(o, "error")));
        } else {
            json_object_del(o, "status");
            json_object_del(o, "index");
            answer_json(r, st, json_incref(o));
        }
        json_decref(results);
    } else {
        answer_json(r, 200, json_pack("{s:I, s:I, s:I, s:o}", "added", (json_int_t)added, "updated",
                                      (json_int_t)updated, "rejected", (json_int_t)rejected, "results", results));
    }
out:
    json_decref(j);
}

/* DELETE /v1/lists/{list}/members/{phone} */
static void h_delete_member(api_req *r)
{
    char phone[PHONE_MAX], err[160];
    if (list_param(r) < 0)
        return;
    if (phone_normalize(r->params[1], r->s->env.cfg->allow_international, phone, err, sizeof err) < 0) {
        api_error(r, 422, "invalid", "phone", "phone: %s", err);
        return;
    }
    if (!req_queue(r))
        return;
    int removed = 0, rc = queue_list_remove(r->q, r->params[0], phone, &removed);
    char masked[PHONE_MAX];
    if (rc < 0)
        queue_failed(r, rc);
    else if (!removed)
        api_error(r, 404, "not_found", "phone", "%s is not on list %s", phone_mask(phone, masked), r->params[0]);
    else
        answer_json(r, 200, json_pack("{s:s, s:s, s:b}", "list", r->params[0],
                                      "phone", phone_for(r, phone, masked), "removed", 1));
}

/* GET /v1/bulletins/{title}/{issue}: the issue's figures, as
 * `herald bulletin stats` prints them. */
static void h_bulletin_stats(api_req *r)
{
    char *end;
    long long issue = strtoll(r->params[1], &end, 10);
    if (*end || issue <= 0) {
        api_error(r, 400, "bad_request", "issue", "issue '%s' is not a positive number", r->params[1]);
        return;
    }
    if (!req_queue(r))
        return;
    json_t *j = NULL;
    int rc = queue_bulletin_stats(r->q, r->params[0], issue, &j);
    if (rc == QUEUE_ERR_NOTFOUND)
        api_error(r, 404, "not_found", "issue", "no issue %lld of '%s'", issue, r->params[0]);
    else if (rc < 0)
        queue_failed(r, rc);
    else
        answer_json(r, 200, j);
}

/* GET /v1/bulletins[?max=N]: the issues sent, newest first, with their
 * figures (queue_bulletin_list); max 1 to 200, 50 when absent. */
static void h_list_bulletins(api_req *r)
{
    const char *m = query(r, "max");
    char *end = NULL;
    long max = m ? strtol(m, &end, 10) : 50;
    if (m && (!*m || *end || max < 1 || max > 200)) {
        api_error(r, 400, "bad_request", "max", "max '%s' is not a number from 1 to 200", m);
        return;
    }
    if (!req_queue(r))
        return;
    json_t *list = NULL;
    int rc = queue_bulletin_list(r->q, (int)max, &list);
    if (rc < 0) {
        queue_failed(r, rc);
        return;
    }
    snprintf(r->note, sizeof r->note, "bulletins: %zu", json_array_size(list));
    answer_json(r, 200, json_pack("{s:I, s:o}", "count", (json_int_t)json_array_size(list), "bulletins", list));
}

/* Standard base64 (RFC 4648, padding optional, no line breaks) -> bytes;
 * malloc'd, NULL when it is not base64. */
unsigned char *api_b64_decode(const char *in, size_t *outlen)
{
    size_t n = strlen(in);
    while (n && in[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return NULL;
    char *padded = malloc(n + 4);
    unsigned char *out = malloc(n / 4 * 3 + 3);
    if (!padded || !out) {
        free(padded);
        free(out);
        return NULL;
    }
    memcpy(padded, in, n);
    size_t pn = n;
    while (pn % 4)
        padded[pn++] = '=';
    int got = EVP_DecodeBlock(out, (const unsigned char *)padded, (int)pn);
    free(padded);
    if (got < 0) {
        free(out);
        return NULL;
    }
    *outlen = (size_t)got - (pn - n);       /* EVP_DecodeBlock counts padding as zero bytes */
    return out;
}

void api_bulletin_body_free(api_bulletin_body *b)
{
    for (int i = 0; i < MMS_MAX_SLIDES; i++)
        free(b->imgs[i]);
    memset(b, 0, sizeof *b);
}

/* A refusal of a bulletin body: the field, and the reason in err. */
static int bulletin_refuse(api_bulletin_body *b, const char *field, char *err, size_t errlen,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int bulletin_refuse(api_bulletin_body *b, const char *field, char *err, size_t errlen,
                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    b->field = field;
    return -1;
}

int api_bulletin_from_json(const json_t *j, long long now, api_bulletin_body *b, char *err, size_t errlen)
{
    static const char *const known[] = { "title", "lists", "subject", "send_at", "slides", NULL };
    const char *key;
    json_t *v;
    memset(b, 0, sizeof *b);
    json_object_foreach((json_t *)j, key, v) {
        int k;
        for (k = 0; known[k] && strcmp(key, known[k]); k++)
            ;
        if (!known[k])
            return bulletin_refuse(b, key, err, errlen,
                                   "%s: unknown member (title, lists, subject, send_at, slides)", key);
    }
    b->title = json_string_value(json_object_get(j, "title"));
    if (!b->title || !*b->title)
        return bulletin_refuse(b, "title", err, errlen, "title: missing or not a string (one of bulletin.titles)");
    json_t *jl = json_object_get(j, "lists");
    size_t nl = json_array_size(jl);
    if (!json_is_array(jl) || nl == 0 || nl > 16)
        return bulletin_refuse(b, "lists", err, errlen, "lists: an array of 1 to 16 list names");
    for (size_t i = 0; i < nl; i++) {
        snprintf(b->fieldbuf, sizeof b->fieldbuf, "lists[%zu]", i);
        if (!(b->lists[i] = json_string_value(json_array_get(jl, i))))
            return bulletin_refuse(b, b->fieldbuf, err, errlen, "%s: not a string", b->fieldbuf);
    }
    b->nlists = (int)nl;
    json_t *js = json_object_get(j, "subject");
    if (js && !json_is_string(js))
        return bulletin_refuse(b, "subject", err, errlen, "subject: must be a string");
    b->subject = json_string_value(js);
    json_t *ja = json_object_get(j, "send_at");
    char why[1024];
    if (json_is_integer(ja)) {
        b->send_at_ms = json_integer_value(ja);
    } else if (ja && (!json_is_string(ja) || svc_parse_time(json_string_value(ja), now, &b->send_at_ms, why, sizeof why) < 0)) {
        return bulletin_refuse(b, "send_at", err, errlen, "send_at: %s",
                               json_is_string(ja) ? why : "a time string or Unix milliseconds");
    }
    json_t *sl = json_object_get(j, "slides");
    size_t ns = json_array_size(sl);
    if (!json_is_array(sl) || ns == 0 || ns > MMS_MAX_SLIDES)
        return bulletin_refuse(b, "slides", err, errlen,
                               "slides: an array of 1 to %d slides, each with text and/or a base64 image", MMS_MAX_SLIDES);
    for (size_t i = 0; i < ns; i++) {
        json_t *o = json_array_get(sl, i);
        json_t *t = json_object_get(o, "text"), *im = json_object_get(o, "image");
        json_t *nm = json_object_get(o, "image_name"), *du = json_object_get(o, "duration_s");
        mms_slide *s = &b->is.slides[i];
        if (!json_is_object(o) || (!t && !im)) {
            snprintf(b->fieldbuf, sizeof b->fieldbuf, "slides[%zu]", i);
            return bulletin_refuse(b, b->fieldbuf, err, errlen, "%s: an object with text and/or image", b->fieldbuf);
        }
        if (t && !json_is_string(t)) {
            snprintf(b->fieldbuf, sizeof b->fieldbuf, "slides[%zu].text", i);
            return bulletin_refuse(b, b->fieldbuf, err, errlen, "%s: must be a string", b->fieldbuf);
        }
        if (im && (!json_is_string(im) || !(b->imgs[i] = api_b64_decode(json_string_value(im), &s->image_len))
                   || s->image_len == 0)) {
            snprintf(b->fieldbuf, sizeof b->fieldbuf, "slides[%zu].image", i);
            return bulletin_refuse(b, b->fieldbuf, err, errlen, "%s: not base64 (the image's bytes, standard alphabet)",
                                   b->fieldbuf);
        }
        if (du && (!json_is_integer(du) || json_integer_value(du) < 1 || json_integer_value(du) > 600)) {
            snprintf(b->fieldbuf, sizeof b->fieldbuf, "slides[%zu].duration_s", i);
            return bulletin_refuse(b, b->fieldbuf, err, errlen, "%s: seconds from 1 to 600", b->fieldbuf);
        }
        if (t) {
            s->text = json_string_value(t);
            s->text_len = json_string_length(t);
        }
        s->image = b->imgs[i];
        s->image_name = json_is_string(nm) ? json_string_value(nm) : NULL;
        s->dur_s = du ? (int)json_integer_value(du) : 0;
    }
    b->is.nslides = (int)ns;
    return 0;
}

/* POST /v1/bulletins: an issue with its content inline,
 *   {"title","lists":[...],"subject","send_at",
 *    "slides":[{"text","image" (base64 JPEG, PNG or GIF),"image_name","duration_s"}]}
 * sent by bulletin_issue_send, the function behind `herald bulletin send`. */
static void h_post_bulletin(api_req *r)
{
    json_t *j = body_json(r, 1);
    if (!j)
        return;
    api_bulletin_body b;
    char err[4096];
    if (api_bulletin_from_json(j, svc_now_ms(), &b, err, sizeof err) < 0) {
        api_error(r, 422, "invalid", b.field, "%s", err);
        goto out;
    }
    if (!req_queue(r))
        goto out;
    bulletin_send_req rq = { .title = b.title, .lists = b.lists, .nlists = b.nlists, .send_at_ms = b.send_at_ms,
                             .subject = b.subject, .content = &b.is };
    json_t *res = NULL;
    const char *field = NULL;
    pthread_rwlock_rdlock(r->s->env.cat_lock);
    int rc = bulletin_issue_send(r->q, r->s->env.cfg, *r->s->env.cat, &rq, &res, err, sizeof err, &field);
    pthread_rwlock_unlock(r->s->env.cat_lock);
    if (rc == -1) {
        api_error(r, 422, "invalid", field, "%s: %s", field ? field : "bulletin", err);
    } else if (rc < 0) {
        r->q_broken = 1;   /* the state of the connection is unknown after a failed script */
        api_error(r, 503, "unavailable", NULL, "%s", err);
    } else {
        snprintf(r->note, sizeof r->note, "bulletin issue %lld",
                 (long long)json_integer_value(json_object_get(res, "issue")));
        answer_json(r, 201, res);
    }
out:
    api_bulletin_body_free(&b);
    json_decref(j);
}

/* ---- routing --------------------------------------------------------- */

static const route_def routes[] = {
    { "POST", "/v1/messages", h_post_messages, API_SCOPE_SEND, 1 },
    { "GET", "/v1/messages", h_find_message, API_SCOPE_READ, 0 },
    { "GET", "/v1/messages/{id}", h_get_message, API_SCOPE_READ, 0 },
    { "GET", "/v1/templates", h_templates, API_SCOPE_READ | API_SCOPE_SEND, 0 },
    { "POST", "/v1/templates/{name}/preview", h_preview, API_SCOPE_READ | API_SCOPE_SEND, 1 },
    { "POST", "/v1/contacts", h_post_contacts, API_SCOPE_CONTACTS, 1 },
    { "GET", "/v1/replies", h_get_replies, API_SCOPE_READ | API_SCOPE_CONTACTS, 0 },
    { "GET", "/v1/surveys/{period}/report", h_survey_report, API_SCOPE_READ, 0 },
    { "POST", "/v1/optouts", h_post_optout, API_SCOPE_CONTACTS, 1 },
    { "DELETE", "/v1/optouts/{phone}", h_delete_optout, API_SCOPE_CONTACTS, 0 },
    { "POST", "/v1/bulletins", h_post_bulletin, API_SCOPE_BULLETIN, 1 },
    { "GET", "/v1/bulletins", h_list_bulletins, API_SCOPE_BULLETIN | API_SCOPE_READ, 0 },
    { "GET", "/v1/bulletins/{title}/{issue}", h_bulletin_stats, API_SCOPE_BULLETIN | API_SCOPE_READ, 0 },
    { "GET", "/v1/lists/{list}", h_get_list, API_SCOPE_BULLETIN, 0 },
    { "POST", "/v1/lists/{list}/members", h_post_members, API_SCOPE_BULLETIN, 1 },
    { "DELETE", "/v1/lists/{list}/members/{phone}", h_delete_member, API_SCOPE_BULLETIN, 0 },
    { "POST", "/v1/inbound/{route}", h_inbound, 0, 2 },
    { "GET", "/healthz", h_healthz, 0, 0 },
    { "GET", "/readyz", h_readyz, 0, 0 },
    { "GET", "/metrics", h_metrics, API_SCOPE_READ, 0 },
    { "GET", "/cgi-bin/sendsms", h_kannel, 0, 0 },
    { "POST", "/cgi-bin/sendsms", h_kannel, 0, 3 },
    { NULL, NULL, NULL, 0, 0 }
};

const api_route_info *api_route_table(size_t *n)
{
    static api_route_info info[sizeof routes / sizeof routes[0] + 8];
    size_t i, nc;
    for (i = 0; routes[i].method; i++)
        info[i] = (api_route_info){ routes[i].method, routes[i].path };
    const api_route_info *c = console_route_table(&nc);   /* gateway/console.c */
    for (size_t k = 0; k < nc && k < 8; k++)
        info[i++] = c[k];
    *n = i;
    return info;
}

/* Matches `path` against a pattern; {x} takes one non-empty segment. */
static int path_match(const char *pat, const char *path, api_req *r)
{
    int np = 0;
    while (*pat && *path) {
        if (*pat == '{') {
            const char *pe = strchr(pat, '}');
            size_t n = strcspn(path, "/");
            if (!pe || n == 0 || n >= sizeof r->params[0] || np >= 3)
                return 0;
            if (r) {
                memcpy(r->params[np], path, n);
                r->params[np][n] = '\0';
            }
            np++;
            pat = pe + 1;
            path += n;
            continue;
        }
        if (*pat++ != *path++)
            return 0;
    }
    if (*pat || *path)
        return 0;
    if (r)
        r->nparams = np;
    return 1;
}

/* Finds the route; 404 or 405 (with Allow) answered when none. */
static const route_def *route_find(api_req *r)
{
    char allow[64] = "";
    for (const route_def *d = routes; d->method; d++) {
        if (!path_match(d->path, r->path, r))
            continue;
        if (strcmp(d->method, r->method) == 0)
            return d;
        size_t l = strlen(allow);
        snprintf(allow + l, sizeof allow - l, "%s%s", l ? ", " : "", d->method);
    }
    if (allow[0]) {
        snprintf(r->allow, sizeof r->allow, "%s", allow);
        api_error(r, 405, "method_not_allowed", NULL, "%s is not allowed on %s (allowed: %s)",
                  r->method, r->path, allow);
    } else {
        api_error(r, 404, "not_found", NULL, "no such endpoint: %s %s (see docs/api.md)", r->method, r->path);
    }
    return NULL;
}

/* Bearer token -> index, or -1. Every configured token is compared, each
 * in constant time, so timing tells nothing about which or how much matched. */
static int token_find(api_server *s, const char *auth)
{
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0)
        return -1;
    const char *t = auth + 7;
    while (*t == ' ')
        t++;
    unsigned char d[32];
    sha256(t, strlen(t), d);
    int found = -1;
    for (int i = 0; i < s->ntokens; i++)
        if (CRYPTO_memcmp(d, s->tokens[i].digest, sizeof d) == 0)
            found = i;
    return found;
}

/* Token bucket: a minute's worth of burst, refilled continuously. Returns
 * 0, or the seconds to wait. */
static int rate_take(token_rt *t)
{
    if (t->cfg.rate_per_minute <= 0)
        return 0;
    int wait = 0;
    double per_ms = t->cfg.rate_per_minute / 60000.0;
    pthread_mutex_lock(&t->mu);
    long long now = mono_ms();
    t->tokens += (double)(now - t->last_ms) * per_ms;
    if (t->tokens > t->cfg.rate_per_minute)
        t->tokens = t->cfg.rate_per_minute;
    t->last_ms = now;
    if (t->tokens >= 1.0) {
        t->tokens -= 1.0;
    } else {
        wait = (int)ceil((1.0 - t->tokens) / per_ms / 1000.0);
        if (wait < 1)
            wait = 1;
    }
    pthread_mutex_unlock(&t->mu);
    return wait;
}

/* First call: route, auth, scope, rate, media type, declared length.
 * Returns 0 to go on reading the body, 1 when the answer is decided. */
static int req_begin(api_req *r)
{
    api_server *s = r->s;
    const route_def *d = route_find(r);
    if (!d)
        return 1;
    r->route = d;
    if (d->scopes) {
        r->token = token_find(s, header(r, "Authorization"));
        if (r->token < 0) {
            api_error(r, 401, "unauthorized", NULL, header(r, "Authorization")
                      ? "the bearer token is not valid" : "missing Authorization: Bearer <token>");
            return 1;
        }
        token_rt *t = &s->tokens[r->token];
        if (!(t->cfg.scopes & d->scopes)) {
            char need[64] = "";
            for (int k = 0; scope_names[k]; k++)
                if (d->scopes & (1u << k)) {
                    size_t l = strlen(need);
                    snprintf(need + l, sizeof need - l, "%s%s", l ? " or " : "", scope_names[k]);
                }
            api_error(r, 403, "forbidden", NULL, "token '%s' lacks the scope for %s %s (needs %s)",
                      t->cfg.name, d->method, d->path, need);
            return 1;
        }
        int wait = rate_take(t);
        if (wait > 0) {
            snprintf(r->retry_after, sizeof r->retry_after, "%d", wait);
            api_error(r, 429, "rate_limited", NULL, "token '%s' is over its %d requests a minute; retry in %d s",
                      t->cfg.name, t->cfg.rate_per_minute, wait);
            return 1;
        }
    }
    const char *cl = header(r, "Content-Length");
    if (cl && strtoll(cl, NULL, 10) > s->ac.max_body_bytes) {
        api_error(r, 413, "too_large", NULL, "the body is %s bytes; at most %lld are accepted",
                  cl, s->ac.max_body_bytes);
        return 1;
    }
    if (d->body) {
        const char *ct = header(r, "Content-Type");
        size_t n = ct ? strcspn(ct, "; ") : 0;
        int json = ct && n == 16 && strncasecmp(ct, "application/json", 16) == 0;
        int form = ct && n == 33 && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0;
        int xml = ct && ((n == 8 && strncasecmp(ct, "text/xml", 8) == 0)
                         || (n == 15 && strncasecmp(ct, "application/xml", 15) == 0));
        int has_body = (cl && strcmp(cl, "0") != 0) || header(r, "Transfer-Encoding");
        if (has_body && !(json && d->body <= 2) && !(form && d->body >= 2) && !(xml && d->body == 2)) {
            api_error(r, 415, "unsupported_media_type", NULL, "Content-Type must be %s, not '%s'",
                      d->body == 1 ? "application/json" : d->body == 2
                      ? "application/json, application/x-www-form-urlencoded or text/xml (MM7)"
                      : "application/x-www-form-urlencoded", ct ? ct : "(none)");
            return 1;
        }
        r->is_form = form;
    }
    return 0;
}

static int send_answer(api_req *r)
{
    char *buf;
    size_t len;
    if (r->text) {
        buf = r->text;
        len = strlen(buf);
        r->text = NULL;
    } else {
        if (!r->json)
            api_error(r, 500, "internal", NULL, "no answer was produced");
        buf = json_dumps(r->json, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!buf) {
            buf = strdup("{\"error\":{\"code\":\"internal\",\"message\":\"cannot encode the answer\"}}");
            r->status = 500;
        }
        len = buf ? strlen(buf) : 0;
        r->content_type = "application/json; charset=utf-8";
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", r->content_type);
    if (r->retry_after[0])
        MHD_add_response_header(resp, "Retry-After", r->retry_after);
    if (r->allow[0])
        MHD_add_response_header(resp, "Allow", r->allow);
    if (r->status == 401 && r->route && r->route->scopes)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"herald\"");
    int ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    r->answered = 1;
    if (r->status >= 100 && r->status < 600)
        atomic_fetch_add(&api_status_count[r->status / 100], 1);
    return ret;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    api_server *s = cls;
    api_req *r = *con_cls;
    (void)version;
    if (!r && console_wants(url)) {   /* the office console: gateway/console.c */
        int t = token_find(s, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"));
        return console_handle(conn, method, url, &s->env, t < 0 ? -1 : (long)s->tokens[t].cfg.scopes);
    }
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        r->s = s;
        r->conn = conn;
        r->token = -1;
        r->started_ms = mono_ms();
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->path, sizeof r->path, "%s", url);
        if (req_begin(r))
            return (enum MHD_Result)send_answer(r);
        return MHD_YES;
    }
    if (r->answered) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large || r->len + n > (size_t)s->ac.max_body_bytes) {
            r->too_large = 1;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n + 1)
                cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b)
                return MHD_NO;
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    if (r->too_large)
        api_error(r, 413, "too_large", NULL, "the body is larger than %lld bytes", s->ac.max_body_bytes);
    else
        r->route->fn(r);
    return (enum MHD_Result)send_answer(r);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    api_server *s = cls;
    api_req *r = *con_cls;
    (void)conn;
    if (!r)
        return;
    long long took = mono_ms() - r->started_ms;
    const char *who = r->token >= 0 ? s->tokens[r->token].cfg.name : "-";
    int quiet = r->route && r->route->fn != h_post_messages && r->route->fn != h_inbound && r->status < 400;
    if (!r->answered)
        gw_log(LOG_INFO, "api", "%s %s: connection ended before an answer (%s, %lld ms)", r->method, r->path,
               toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? "timed out" : "closed", took);
    else if (quiet)
        gw_log(LOG_DEBUG, "api", "%s %s %d by %s (%lld ms)", r->method, r->path, r->status, who, took);
    else
        gw_log(LOG_INFO, "api", "%s %s %d by %s%s%s (%lld ms)", r->method, r->path, r->status, who,
               r->note[0] ? ": " : "", r->note, took);
    pool_put(s, r->q, r->q_broken);
    json_decref(r->json);
    free(r->text);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    (void)cls;
    vsnprintf(buf, sizeof buf, fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    gw_log(LOG_WARN, "api", "libmicrohttpd: %s", buf);
}

/* Reads the admin token file, or creates it (mode 0600) with a fresh
 * random token. A file others can read is refused, like ssh does. */
static int admin_token(api_server *s, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            mkdir(dir, 0700);   /* one level, as run/ in the shipped config */
        }
        unsigned char rnd[24];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
            snprintf(err, errlen, "api.admin_token_file: no randomness for a token");
            return -1;
        }
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(s->admin_token + 2 * i, 3, "%02x", rnd[i]);
        int wfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
        if (wfd < 0 || write(wfd, s->admin_token, strlen(s->admin_token)) != (ssize_t)strlen(s->admin_token)
            || write(wfd, "\n", 1) != 1) {
            snprintf(err, errlen, "api.admin_token_file: cannot create %s: %s", path, strerror(errno));
            if (wfd >= 0)
                close(wfd);
            return -1;
        }
        close(wfd);
        gw_log(LOG_INFO, "api", "generated an admin token into %s (mode 0600)", path);
        printf("herald: API admin token written to %s\n", path);
        fflush(stdout);
        return 0;
    }
    if (fd < 0) {
        snprintf(err, errlen, "api.admin_token_file: cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    ssize_t n = -1;
    if (fstat(fd, &sb) == 0 && !(sb.st_mode & 077))
        n = read(fd, s->admin_token, sizeof s->admin_token - 1);
    close(fd);
    if (sb.st_mode & 077) {
        snprintf(err, errlen, "api.admin_token_file: %s can be read by others (mode %03o): chmod 600 it",
                 path, (unsigned)(sb.st_mode & 0777));
        return -1;
    }
    if (n < 0)
        n = 0;
    s->admin_token[n] = '\0';
    s->admin_token[strcspn(s->admin_token, "\r\n")] = '\0';
    if (strlen(s->admin_token) < 16) {
        snprintf(err, errlen, "api.admin_token_file: %s holds no token of 16 characters or more", path);
        return -1;
    }
    gw_log(LOG_INFO, "api", "admin token from %s", path);
    return 0;
}

api_server *api_start(const api_env *env, char *err, size_t errlen)
{
    err[0] = '\0';
    api_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "api: out of memory");
        return NULL;
    }
    s->env = *env;
    if (api_config_parse(env->cfg, &s->ac, err, errlen) < 0 || !s->ac.enabled) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->pool_mu, NULL);
    for (int i = 0; i < API_MAX_TOKENS + 1; i++)
        pthread_mutex_init(&s->tokens[i].mu, NULL);
    for (int i = 0; i < s->ac.ntokens; i++)
        s->tokens[s->ntokens++].cfg = s->ac.tokens[i];
    if (*s->ac.admin_token_file) {
        if (admin_token(s, s->ac.admin_token_file, err, errlen) < 0)
            goto fail;
        s->tokens[s->ntokens++].cfg = (api_token_cfg){ "admin", s->admin_token,
            API_SCOPE_SEND | API_SCOPE_READ | API_SCOPE_CONTACTS | API_SCOPE_BULLETIN | API_SCOPE_ADMIN, 0 };
    }
    for (int i = 0; i < s->ntokens; i++) {
        token_rt *t = &s->tokens[i];
        sha256(t->cfg.token, strlen(t->cfg.token), t->digest);
        t->tokens = t->cfg.rate_per_minute;
        t->last_ms = mono_ms();
    }
    for (int i = 0; i < s->ac.ncallbacks; i++)
        sha256(s->ac.callbacks[i].secret, strlen(s->ac.callbacks[i].secret), s->cb_digest[i]);

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_AUTO;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s->ac.listen, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)s->ac.port);
    } else {
        inet_pton(AF_INET6, s->ac.listen, &a6->sin6_addr);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)s->ac.port);
        flags |= MHD_USE_IPv6;
    }
    s->mhd = MHD_start_daemon(flags, (uint16_t)s->ac.port, NULL, NULL, access_cb, s,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                              MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->ac.threads,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->ac.timeout_s,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)s->ac.max_header_bytes + 16384,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
                              MHD_OPTION_NOTIFY_COMPLETED, completed_cb, s,
                              MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, errlen, "api: cannot listen on %s port %d (in use, or not an address of this host)",
                 s->ac.listen, s->ac.port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->ac.port;
    gw_log(LOG_INFO, "api", "listening on %s%s%s:%d (%d threads, %d tokens)",
           strchr(s->ac.listen, ':') ? "[" : "", s->ac.listen, strchr(s->ac.listen, ':') ? "]" : "",
           s->port, s->ac.threads, s->ntokens);
    return s;
fail:
    for (int i = 0; i < API_MAX_TOKENS + 1; i++)
        pthread_mutex_destroy(&s->tokens[i].mu);
    pthread_mutex_destroy(&s->pool_mu);
    OPENSSL_cleanse(s->admin_token, sizeof s->admin_token);
    free(s);
    return NULL;
}

int api_port(const api_server *s)
{
    return s ? s->port : 0;
}

void api_stop(api_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->mhd);
    for (int i = 0; i < s->npool; i++)
        queue_free(s->pool[i]);
    for (int i = 0; i < API_MAX_TOKENS + 1; i++)
        pthread_mutex_destroy(&s->tokens[i].mu);
    pthread_mutex_destroy(&s->pool_mu);
    OPENSSL_cleanse(s->admin_token, sizeof s->admin_token);
    gw_log(LOG_INFO, "api", "stopped");
    free(s);
}
