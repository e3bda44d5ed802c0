/* console.c -- serves the office console (see console.h).
 *
 * Static files first: GET /console/ and /console/{file} from the arrays
 * in console_files.c, no token (the page holds no data). Then three JSON
 * routes the existing API lacks, with the API's token scopes and error
 * shape:
 *   GET  /v1/console/summary              read:  queue, counters (all time and the
 *                                                local day's), what waits per family
 *                                                (a bounded scan), routes, modems
 *   GET  /v1/console/dead                 read:  dead letters with reasons
 *   POST /v1/console/dead/{id}/requeue    admin: queue_dead_retry, as `herald dead retry`
 * Each JSON request opens its own Redis connection: the console is a few
 * people's page, not a hot path. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "gateway/console.h"
#include "gateway/log.h"
#include "gateway/service.h"
#include "queue/queue.h"
#include "queue/waiting.h"

/* How many entries of each lane and of the schedule the summary reads to
 * count what waits per family (queue/waiting.h): the page polls every few
 * seconds, so the cost is bounded; beyond it the figure says it is partial. */
#define WAITING_SCAN_MAX 1000

static const api_route_info json_routes[] = {
    { "GET", "/v1/console/summary" },
    { "GET", "/v1/console/dead" },
    { "POST", "/v1/console/dead/{id}/requeue" },
};

const api_route_info *console_route_table(size_t *n)
{
    *n = sizeof json_routes / sizeof json_routes[0];
    return json_routes;
}

int console_wants(const char *url)
{
    return strcmp(url, "/console") == 0 || strncmp(url, "/console/", 9) == 0
        || strncmp(url, "/v1/console/", 12) == 0;
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
                               const char *body, size_t len, enum MHD_ResponseMemoryMode mode,
                               const char *hname, const char *hval)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", type);
    /* the page runs only its own files: no outside script, style or frame */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                            "script-src 'self'; connect-src 'self'; frame-ancestors 'none'");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (hname)
        MHD_add_response_header(resp, hname, hval);
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, json_t *j)
{
    char *buf = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!buf)
        return MHD_NO;
    return respond(conn, status, "application/json; charset=utf-8", buf, strlen(buf),
                   MHD_RESPMEM_MUST_FREE, status == 401 ? "WWW-Authenticate" : NULL,
                   "Bearer realm=\"herald\"");
}

static enum MHD_Result fail(struct MHD_Connection *conn, unsigned status, const char *code,
                            const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result fail(struct MHD_Connection *conn, unsigned status, const char *code,
                            const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return answer(conn, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", msg));
}

static enum MHD_Result static_file(struct MHD_Connection *conn, const char *url)
{
    if (strcmp(url, "/console") == 0)
        return respond(conn, 301, "text/plain; charset=utf-8", "", 0, MHD_RESPMEM_PERSISTENT,
                       "Location", "/console/");
    const char *name = url + 9;
    if (!*name)
        name = "index.html";
    for (const console_file *f = console_files; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return respond(conn, 200, f->type, f->data, f->len, MHD_RESPMEM_PERSISTENT, NULL, NULL);
    return fail(conn, 404, "not_found", "no such console file: %s", url);
}

/* Live routes of this gateway, and what every gateway published. */
static json_t *routes_json(const api_env *env)
{
    json_t *a = json_array();
    if (!env->routes)
        return a;
    api_route_state st[GW_MAX_ROUTES];
    int n = env->routes(env->ud, st, GW_MAX_ROUTES);
    for (int i = 0; i < n; i++) {
        json_t *fams = json_array();
        for (int f = 0; f < FAMILY_COUNT; f++)
            if (st[i].families & (1u << f))
                json_array_append_new(fams, json_string(family_name((tpl_family)f)));
        json_array_append_new(a, json_pack("{s:s, s:s, s:b, s:i, s:s, s:o}", "name", st[i].name,
                                           "driver", st[i].driver ? st[i].driver : "", "up", st[i].up,
                                           "signal", st[i].signal_percent, "state", st[i].state,
                                           "families", fams));
    }
    return a;
}

static enum MHD_Result summary(struct MHD_Connection *conn, const api_env *env, queue *q)
{
    long long now = svc_now_ms();
    json_t *stats = NULL, *published = NULL, *modems = NULL;
    if (queue_stats(q, now, &stats) < 0)
        return fail(conn, 503, "unavailable", "redis: %s", queue_errstr(q));
    if (queue_routes_get(q, &published) < 0)
        published = json_object();
    if (queue_modem_list(q, &modems) < 0)
        modems = json_object();
    json_t *waiting = NULL;
    if (queue_waiting_by_family(q, WAITING_SCAN_MAX, &waiting) < 0) {
        json_decref(stats);
        json_decref(published);
        json_decref(modems);
        return fail(conn, 503, "unavailable", "redis: %s", queue_errstr(q));
    }
    json_object_set_new(stats, "waiting_by_family", json_incref(json_object_get(waiting, "waiting")));
    json_object_set_new(stats, "scheduled_by_family", json_incref(json_object_get(waiting, "scheduled")));
    json_object_del(waiting, "waiting");
    json_object_del(waiting, "scheduled");
    json_object_set_new(stats, "waiting_scan", waiting);
    json_t *fams = json_array();
    for (int f = 0; f < FAMILY_COUNT; f++)
        json_array_append_new(fams, json_string(family_name((tpl_family)f)));
    return answer(conn, 200, json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "now", (json_int_t)now,
                                       "instance", env->cfg->instance, "timezone", env->cfg->timezone,
                                       "families", fams, "stats", stats,
                                       "routes", routes_json(env), "published", published,
                                       "modems", modems));
}

static enum MHD_Result dead_list(struct MHD_Connection *conn, queue *q)
{
    const char *m = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "max");
    int max = m ? atoi(m) : 100;
    if (max <= 0 || max > 1000)
        return fail(conn, 400, "bad_request", "max must be 1 to 1000, not '%s'", m);
    json_t *j = NULL;
    if (queue_dead_list(q, max, &j) < 0)
        return fail(conn, 503, "unavailable", "redis: %s", queue_errstr(q));
    return answer(conn, 200, json_pack("{s:o}", "dead", j));
}

static enum MHD_Result requeue(struct MHD_Connection *conn, queue *q, const char *id)
{
    int rc = queue_dead_retry(q, id, svc_now_ms());
    if (rc == QUEUE_ERR_NOTFOUND)
        return fail(conn, 404, "not_found", "no message '%s'", id);
    if (rc == QUEUE_ERR_STATE)
        return fail(conn, 409, "conflict", "message '%s' is not dead", id);
    if (rc < 0)
        return fail(conn, 503, "unavailable", "redis: %s", queue_errstr(q));
    gw_log(LOG_INFO, "console", "dead letter %s requeued by an operator", id);
    return answer(conn, 200, json_pack("{s:s, s:s}", "id", id, "status", "queued"));
}

/* /v1/console/dead/{id}/requeue -> id (hex, as the queue makes them), or NULL. */
static const char *requeue_id(const char *url, char *id, size_t idlen)
{
    static const char pre[] = "/v1/console/dead/", post[] = "/requeue";
    size_t lp = sizeof pre - 1, lu = strlen(url), ls = sizeof post - 1;
    if (strncmp(url, pre, lp) != 0 || lu <= lp + ls || strcmp(url + lu - ls, post) != 0)
        return NULL;
    size_t n = lu - lp - ls;
    if (n >= idlen)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = url[lp + i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-'))
            return NULL;
    }
    memcpy(id, url + lp, n);
    id[n] = '\0';
    return id;
}

enum MHD_Result console_handle(struct MHD_Connection *conn, const char *method, const char *url,
                               const api_env *env, long scopes)
{
    if (strncmp(url, "/v1/", 4) != 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            return respond(conn, 405, "text/plain; charset=utf-8", "", 0, MHD_RESPMEM_PERSISTENT,
                           "Allow", "GET");
        return static_file(conn, url);
    }
    char id[QUEUE_ID_MAX];
    int is_summary = strcmp(url, "/v1/console/summary") == 0;
    int is_dead = strcmp(url, "/v1/console/dead") == 0;
    int is_requeue = requeue_id(url, id, sizeof id) != NULL;
    if (!is_summary && !is_dead && !is_requeue)
        return fail(conn, 404, "not_found", "no such endpoint: %s %s (see docs/api.md)", method, url);
    const char *want = is_requeue ? "POST" : "GET";
    if (strcmp(method, want) != 0)
        return respond(conn, 405, "application/json; charset=utf-8",
                       "{\"error\":{\"code\":\"method_not_allowed\",\"message\":\"method not allowed\"}}",
                       71, MHD_RESPMEM_PERSISTENT, "Allow", want);
    if (scopes < 0)
        return fail(conn, 401, "unauthorized", "missing or invalid Authorization: Bearer <token>");
    unsigned need = is_requeue ? API_SCOPE_ADMIN : API_SCOPE_READ;
    if (!((unsigned long)scopes & need))
        return fail(conn, 403, "forbidden", "the token lacks the scope for %s %s (needs %s)", method,
                    url, is_requeue ? "admin" : "read");
    char err[256];
    queue *q = queue_connect(&env->cfg->queue, err, sizeof err);
    if (!q)
        return fail(conn, 503, "unavailable", "redis is unreachable: %s", err);
    enum MHD_Result ret = is_summary ? summary(conn, env, q) : is_dead ? dead_list(conn, q)
                        : requeue(conn, q, id);
    queue_free(q);
    return ret;
}
