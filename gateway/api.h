/* api.h -- the HTTP API, served by the daemon itself (libmicrohttpd, JSON
 * through jansson). docs/api.md is the reference for clients.
 *
 * The server runs its own thread pool. A handler takes a Redis connection
 * from a small pool (queue/ wants one connection per thread at a time),
 * reads the template catalog under the daemon's read lock, and accepts
 * messages through the same svc_request_from_json + svc_prepare +
 * queue_enqueue path as `herald enqueue`. Redis unreachable is a 503 at
 * once: a request never waits for Redis to come back.
 *
 * Configuration lives in the `api` group; api_cfg_keys is its schema and
 * api_config_parse() the one place that reads it (config load checks it,
 * api_start uses it). */
#ifndef HERALD_API_H
#define HERALD_API_H

#include <pthread.h>
#include <stddef.h>
#include "gateway/cfgkeys.h"
#include "gateway/config.h"
#include "templates/mms.h"

extern const cfg_key api_cfg_keys[];

#define API_MAX_TOKENS 64
#define API_MAX_CALLBACKS 32
#define API_BATCH_MAX 1000

/* Scopes of a token; admin implies every other. */
enum {
    API_SCOPE_SEND = 1u << 0,
    API_SCOPE_READ = 1u << 1,
    API_SCOPE_CONTACTS = 1u << 2,
    API_SCOPE_BULLETIN = 1u << 3,
    API_SCOPE_ADMIN = 1u << 4
};

typedef struct api_token_cfg {
    const char *name;
    const char *token;
    unsigned scopes;
    int rate_per_minute;          /* 0: unlimited */
} api_token_cfg;

typedef struct api_callback_cfg {
    const char *route;            /* a configured route's name */
    const char *secret;
    const char *format;           /* "generic" */
} api_callback_cfg;

typedef struct api_config {
    int enabled;
    const char *listen;           /* IPv4 or IPv6 literal */
    int port;                     /* 0: any free port (tests) */
    int threads;
    long long max_body_bytes;
    int max_json_depth;
    int max_header_bytes;
    int timeout_s;
    const char *admin_token_file; /* "" none */
    int ntokens;
    api_token_cfg tokens[API_MAX_TOKENS];
    int ncallbacks;
    api_callback_cfg callbacks[API_MAX_CALLBACKS];
    /* the Kannel-compatible /cgi-bin/sendsms */
    int kannel_enabled;
    const char *kannel_username, *kannel_password, *kannel_template;
} api_config;

/* Reads and checks the `api` group of a loaded configuration (scopes,
 * address, token lengths, that each callback names a configured route).
 * Returns 0, or -1 with "file:line: api.key: what" in err. Strings point
 * into c. */
int api_config_parse(const gw_config *c, api_config *out, char *err, size_t errlen);

/* What the daemon tells the API about one route (for /readyz, /metrics). */
typedef struct api_route_state {
    char name[64];
    const char *driver;
    unsigned families;            /* bit per tpl_family */
    int up;
    int signal_percent;           /* -1 unknown */
    char state[64];
} api_route_state;

typedef struct api_env {
    gw_config *cfg;
    catalog **cat;                /* the daemon's catalog, swapped on SIGHUP... */
    pthread_rwlock_t *cat_lock;   /* ...under this lock */
    int (*routes)(void *ud, api_route_state *out, int max);  /* fills, returns count */
    void *ud;
} api_env;

typedef struct api_server api_server;

/* Starts the server when api.enabled. Returns the server; NULL with err ""
 * when the API is disabled; NULL with the reason in err when it cannot
 * start (address in use, token file unreadable...). */
api_server *api_start(const api_env *env, char *err, size_t errlen);
/* Stops accepting, finishes requests in progress, frees. Accepts NULL. */
void api_stop(api_server *s);
/* The port actually bound (useful with port = 0). */
int api_port(const api_server *s);

/* Process-wide observations the daemon reports, exported by /metrics. */
void api_observe_send(long long ms);
void api_observe_inbound(const char *route);

/* ---- exposed for unit tests ----------------------------------------- */

typedef struct api_route_info {
    const char *method;
    const char *path;             /* "/v1/messages/{id}" */
} api_route_info;
/* Every route the server answers, for the documentation check. */
const api_route_info *api_route_table(size_t *n);
/* Deepest nesting of arrays/objects in a JSON text (strings skipped). */
int api_json_depth(const char *buf, size_t len);
/* A contact of POST /v1/contacts read from a JSON object into *in
 * (pointing into j): NULL, or the field at fault (*unknown = 1: a field
 * that is not a contact's; else one that is not a string or null). */
struct json_t;
struct survey_contact_in;
const char *api_contact_from_json(const struct json_t *j, struct survey_contact_in *in, int *unknown);
/* Base64 (padding optional) as POST /v1/bulletins carries images: the
 * bytes, malloc'd, with their count in *outlen; NULL when not Base64. */
unsigned char *api_b64_decode(const char *in, size_t *outlen);

/* The body of POST /v1/bulletins, read and checked (api_bulletin_from_json)
 * before bulletin_issue_send takes it. Strings point into the JSON; the
 * images are decoded into imgs (freed by api_bulletin_body_free). */
typedef struct api_bulletin_body {
    const char *title, *subject;
    const char *lists[16];
    int nlists;
    long long send_at_ms;         /* 0: now */
    mms_issue is;
    unsigned char *imgs[MMS_MAX_SLIDES];
    const char *field;            /* a refusal's field (into fieldbuf or the JSON) */
    char fieldbuf[48];
} api_bulletin_body;
/* Returns 0, or -1 with b->field and the reason in err. Free b with
 * api_bulletin_body_free() in both cases. */
int api_bulletin_from_json(const struct json_t *j, long long now_ms, api_bulletin_body *b,
                           char *err, size_t errlen);
void api_bulletin_body_free(api_bulletin_body *b);
/* "send,read" -> bits; -1 with the unknown scope in err. */
int api_scopes_parse(const config_setting_t *list, unsigned *out, char *err, size_t errlen);
/* Decodes application/x-www-form-urlencoded `body`; returns the malloc'd
 * value of `name`, or NULL when absent. */
char *api_form_value(const char *body, size_t len, const char *name);

#endif
