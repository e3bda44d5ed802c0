/* queue.c -- the durable message queue on Redis (see queue.h).
 *
 * This file is the only code that speaks Redis. It owns:
 *   - the key layout: key_kinds[] and key_push() below are the one place
 *     that knows how a key is spelled;
 *   - the connection: one redisContext per `queue`, dropped on any I/O
 *     error and reopened by the next call (hiredis contexts that erred are
 *     dead);
 *   - the scripts (queue/scripts.c): loaded once per connection, called by
 *     EVALSHA, re-sent with EVAL when Redis answers NOSCRIPT.
 * Every redisReply is freed here, once, by the function that received it.
 * Errors: functions return 0 or a QUEUE_ERR_*; the text of the first
 * failure of a call is kept in q->err (queue_errstr). */
#include "queue/queue.h"
#include "queue/scripts.h"
#include "queue/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <hiredis/hiredis.h>

#define GROUP           "herald"
#define RECLAIMER       "reclaimer"
#define INBOUND_MAXLEN  "1000000"
#define CMD_MAX         64        /* arguments a cmd holds without the heap */
#define PIPE_CHUNK      256       /* commands (or messages) per pipeline round */
/* Messages per call of a batch script (ENQUEUE, BEGIN, FINISH): a call's
 * arguments sit in Redis's memory until it ends, and a call that starts
 * below maxmemory runs to its end, so a call stays small (about 60 kB). */
#define SCRIPT_BATCH    64
#define RECLAIM_PAGE    200       /* XPENDING page size */
#define DAY_TTL_MS      (40LL * 86400000)  /* {p}:day:<day> counters are kept 40 days */

struct queue {
    redisContext *c;              /* NULL while disconnected */
    char *socket, *host, *user, *password, *prefix;
    char **sentinels;             /* "host:port" of each sentinel, or NULL */
    int nsentinels;
    char *master_name;            /* the primary's name at the sentinels */
    char cur_host[128];           /* the primary the sentinels named last */
    int cur_port;
    int wait_replicas, wait_timeout_ms;   /* WAIT after state changes; 0 off */
    int port, db;
    int connect_timeout_ms, command_timeout_ms;
    long long retention_ms, idem_window_ms;
    char sha[QSCRIPT_COUNT][41];  /* "" when not loaded on this connection */
    char err[256];
};

/* ---- errors ------------------------------------------------------------ */

/* Keeps the first failure of a call; API entry points clear it. */
static void seterr(queue *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void seterr(queue *q, const char *fmt, ...)
{
    if (q->err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->err, sizeof q->err, fmt, ap);
    va_end(ap);
    for (char *p = q->err; *p; p++)        /* one line */
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

static void clearerr_q(queue *q) { q->err[0] = '\0'; }

const char *queue_errstr(const queue *q)
{
    return q ? q->err : "no queue";
}

/* Where we talk to, for messages. */
static void endpoint(const queue *q, char *buf, size_t len)
{
    if (q->nsentinels)
        snprintf(buf, len, "redis primary '%s' at %s:%d (from the sentinels)", q->master_name,
                 q->cur_host[0] ? q->cur_host : "?", q->cur_port);
    else if (q->socket && q->socket[0])
        snprintf(buf, len, "redis at %s", q->socket);
    else
        snprintf(buf, len, "redis at %s:%d", q->host ? q->host : "127.0.0.1", q->port);
}

/* The context failed at the I/O level: it is dead. */
static int conn_lost(queue *q, const char *what)
{
    char ep[200];
    endpoint(q, ep, sizeof ep);
    seterr(q, "%s: %s: %s", ep, what,
           q->c && q->c->errstr[0] ? q->c->errstr : "connection lost");
    if (q->c)
        redisFree(q->c);
    q->c = NULL;
    return QUEUE_ERR_CONN;
}

/* Translates an error reply, keeping Redis's text. */
static int reply_error(queue *q, const redisReply *r, const char *what)
{
    const char *s = r->str ? r->str : "";
    seterr(q, "%s: %s", what, s);
    /* Behind sentinels, a primary turned replica means a failover: drop
     * the connection so the next call asks the sentinels again. */
    if (q->nsentinels && !strncmp(s, "READONLY", 8)) {
        redisFree(q->c);
        q->c = NULL;
        return QUEUE_ERR_CONN;
    }
    if (!strncmp(s, "OOM", 3) || !strncmp(s, "READONLY", 8) ||
        !strncmp(s, "MISCONF", 7) || !strncmp(s, "NOREPLICAS", 10))
        return QUEUE_ERR_REFUSED;
    if (!strncmp(s, "LOADING", 7) || !strncmp(s, "BUSY", 4) ||
        !strncmp(s, "MASTERDOWN", 10))
        return QUEUE_ERR_CONN;
    /* Scripts that hit OOM on their first write report it inside the text. */
    if (strstr(s, "OOM command not allowed"))
        return QUEUE_ERR_REFUSED;
    return QUEUE_ERR_PROTO;
}

static int proto_error(queue *q, const char *what)
{
    seterr(q, "%s: unexpected reply from redis", what);
    return QUEUE_ERR_PROTO;
}

/* ---- commands: an argv that owns the strings it formats ----------------- */

/* A command's arguments: CMD_MAX in the struct, more on the heap (the
 * FINISH of a window carries 14 a message). Never copied by value. */
typedef struct cmd {
    int n, nown, overflow, cap;
    const char **v;
    size_t *l;
    char **own;
    const char *v_in[CMD_MAX];
    size_t l_in[CMD_MAX];
    char *own_in[CMD_MAX];
} cmd;

static void cmd_init(cmd *c)
{
    c->n = c->nown = c->overflow = 0;
    c->cap = CMD_MAX;
    c->v = c->v_in;
    c->l = c->l_in;
    c->own = c->own_in;
}

static void cmd_free(cmd *c)
{
    for (int i = 0; i < c->nown; i++)
        free(c->own[i]);
    if (c->v && c->v != c->v_in) {
        free(c->v); free(c->l); free(c->own);
    }
    cmd_init(c);
}

/* Room for one more argument; 0 when out of memory (overflow set). */
static int cmd_room(cmd *c)
{
    if (c->overflow)
        return 0;
    if (c->n < c->cap)
        return 1;
    int cap = c->cap * 2;
    const char **v = malloc((size_t)cap * sizeof *v);
    size_t *l = malloc((size_t)cap * sizeof *l);
    char **own = malloc((size_t)cap * sizeof *own);
    if (!v || !l || !own) {
        free(v); free(l); free(own);
        c->overflow = 1;
        return 0;
    }
    memcpy(v, c->v, (size_t)c->n * sizeof *v);
    memcpy(l, c->l, (size_t)c->n * sizeof *l);
    memcpy(own, c->own, (size_t)c->nown * sizeof *own);
    if (c->v != c->v_in) {
        free(c->v); free(c->l); free(c->own);
    }
    c->v = v;
    c->l = l;
    c->own = own;
    c->cap = cap;
    return 1;
}

static void cmd_str(cmd *c, const char *s)
{
    if (!cmd_room(c))
        return;
    if (!s)
        s = "";
    c->v[c->n] = s;
    c->l[c->n++] = strlen(s);
}

/* Pushes a formatted string the cmd owns. */
static void cmd_fmt(cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cmd_fmt(cmd *c, const char *fmt, ...)
{
    if (!cmd_room(c))
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int len = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (len < 0) { c->overflow = 1; return; }
    c->own[c->nown++] = s;
    c->v[c->n] = s;
    c->l[c->n++] = (size_t)len;
}

static void cmd_ll(cmd *c, long long v) { cmd_fmt(c, "%lld", v); }

/* ---- the key layout: the one place that spells keys ---------------------- */

typedef enum {
    K_MSG, K_IDEM, K_LANE_URGENT, K_LANE_BULK, K_SCHED, K_DEAD,
    K_UNCERTAIN, K_INBOUND, K_STATS, K_GW,
    K_PACE, K_CAP, K_ROUTEDAY, K_PACED, K_ROUTES,
    K_REPORT, K_UNMATCHED, K_INSEEN, K_MODEMS, K_INPARTS, K_INDUE,
    K_OPTOUT, K_SENTDAY, K_CASE, K_DAY, K_BODIES
} key_kind;

/* "{prefix}:" + name + suffix. Kinds whose name ends in ':' take a suffix. */
static const char *const key_kinds[] = {
    [K_MSG]         = "msg:",
    [K_IDEM]        = "idem:",
    [K_LANE_URGENT] = "lane:urgent",
    [K_LANE_BULK]   = "lane:bulk",
    [K_SCHED]       = "sched",
    [K_DEAD]        = "dead",
    [K_UNCERTAIN]   = "uncertain",
    [K_INBOUND]     = "inbound",
    [K_STATS]       = "stats",
    [K_GW]          = "gw:",
    [K_PACE]        = "pace:",
    [K_CAP]         = "cap:",
    [K_ROUTEDAY]    = "routeday:",
    [K_PACED]       = "paced:",
    [K_ROUTES]      = "routes",
    [K_REPORT]      = "ref:",
    [K_UNMATCHED]   = "reports:unmatched",
    [K_INSEEN]      = "inseen:",
    [K_MODEMS]      = "modems",
    [K_INPARTS]     = "inparts:",
    [K_INDUE]       = "inparts:due",
    [K_OPTOUT]      = "optout",         /* queue/survey.c owns these two */
    [K_SENTDAY]     = "sentday:",       /* also spelled in queue/survey.c */
    [K_CASE]        = "case:",
    [K_DAY]         = "day:",
    [K_BODIES]      = "bodies",         /* also spelled in queue/retention.c */
};

static void key_push(cmd *c, const queue *q, key_kind k, const char *suffix)
{
    cmd_fmt(c, "{%s}:%s%s", q->prefix, key_kinds[k], suffix ? suffix : "");
}

static key_kind lane_key(tpl_lane l) { return l == LANE_BULK ? K_LANE_BULK : K_LANE_URGENT; }

/* Kept here rather than borrowed from templates/ so queue/ stands alone. */
static const char *lane_str(tpl_lane l) { return l == LANE_BULK ? "bulk" : "urgent"; }

/* ---- connection --------------------------------------------------------- */

static struct timeval tv_ms(int ms)
{
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    return tv;
}

/* One command on an open context. NULL (connection dropped) on I/O error. */
static redisReply *raw(queue *q, int argc, const char **argv, const size_t *lens,
                       const char *what)
{
    redisReply *r = redisCommandArgv(q->c, argc, argv, lens);
    if (!r)
        conn_lost(q, what);
    return r;
}

/* Asks the sentinels, in turn, where the primary is: the first that answers
 * SENTINEL GET-MASTER-ADDR-BY-NAME with an address wins. */
static int resolve_primary(queue *q)
{
    struct timeval ct = tv_ms(q->connect_timeout_ms);
    char last[160] = "no sentinel configured";
    for (int i = 0; i < q->nsentinels; i++) {
        char host[128];
        int port = 26379;
        const char *colon = strrchr(q->sentinels[i], ':');
        size_t hl = colon ? (size_t)(colon - q->sentinels[i]) : strlen(q->sentinels[i]);
        if (hl >= sizeof host)
            hl = sizeof host - 1;
        memcpy(host, q->sentinels[i], hl);
        host[hl] = '\0';
        if (colon)
            port = atoi(colon + 1);
        redisContext *s = redisConnectWithTimeout(host, port, ct);
        if (!s || s->err) {
            snprintf(last, sizeof last, "sentinel %s: %s", q->sentinels[i], s ? s->errstr : "no memory");
            redisFree(s);
            continue;
        }
        redisSetTimeout(s, ct);
        redisReply *r = redisCommand(s, "SENTINEL get-master-addr-by-name %s", q->master_name);
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
            snprintf(q->cur_host, sizeof q->cur_host, "%s", r->element[0]->str);
            q->cur_port = atoi(r->element[1]->str);
            freeReplyObject(r);
            redisFree(s);
            return 0;
        }
        snprintf(last, sizeof last, "sentinel %s: %s", q->sentinels[i],
                 !r ? s->errstr : r->type == REDIS_REPLY_ERROR ? r->str : "does not know the primary");
        if (r)
            freeReplyObject(r);
        redisFree(s);
    }
    seterr(q, "no sentinel named the primary '%s' (last: %s)", q->master_name, last);
    return QUEUE_ERR_CONN;
}

/* Behind sentinels: the node they named must say it is the primary (during
 * a failover it may still be, or already no longer be, one). */
static int check_primary(queue *q, const char *ep)
{
    const char *a[] = { "ROLE" };
    size_t l[] = { 4 };
    redisReply *r = raw(q, 1, a, l, "ROLE");
    if (!r)
        return QUEUE_ERR_CONN;
    int ok = r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0;
    freeReplyObject(r);
    if (ok)
        return 0;
    seterr(q, "%s: not a primary (a failover is in progress)", ep);
    return QUEUE_ERR_CONN;
}

/* Connects, authenticates, selects, creates the groups, loads the scripts. */
static int reconnect(queue *q)
{
    if (q->nsentinels && resolve_primary(q) != 0)
        return QUEUE_ERR_CONN;
    char ep[200];
    endpoint(q, ep, sizeof ep);
    struct timeval ct = tv_ms(q->connect_timeout_ms);
    if (q->nsentinels)
        q->c = redisConnectWithTimeout(q->cur_host, q->cur_port, ct);
    else if (q->socket && q->socket[0])
        q->c = redisConnectUnixWithTimeout(q->socket, ct);
    else
        q->c = redisConnectWithTimeout(q->host ? q->host : "127.0.0.1", q->port, ct);
    if (!q->c) {
        seterr(q, "%s: cannot allocate a connection", ep);
        return QUEUE_ERR_CONN;
    }
    if (q->c->err) {
        seterr(q, "%s: cannot connect: %s", ep, q->c->errstr);
        redisFree(q->c);
        q->c = NULL;
        return QUEUE_ERR_CONN;
    }
    if (redisSetTimeout(q->c, tv_ms(q->command_timeout_ms)) != REDIS_OK)
        return conn_lost(q, "setting the timeout");

    redisReply *r;
    int rc = 0;
    if (q->password && q->password[0]) {
        /* AUTH user password for an ACL user, AUTH password otherwise */
        int acl = q->user && q->user[0];
        const char *a[] = { "AUTH", acl ? q->user : q->password, q->password };
        size_t l[] = { 4, strlen(a[1]), strlen(q->password) };
        if (!(r = raw(q, acl ? 3 : 2, a, l, "AUTH")))
            return QUEUE_ERR_CONN;
        if (r->type == REDIS_REPLY_ERROR) {
            seterr(q, "%s: AUTH refused: %s", ep, r->str);
            rc = QUEUE_ERR_CONN;
        }
        freeReplyObject(r);
        if (rc)
            goto fail;
    }
    if (q->nsentinels && (rc = check_primary(q, ep)) != 0) {
        if (!q->c)
            return rc;
        goto fail;
    }
    if (q->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", q->db);
        const char *a[] = { "SELECT", db };
        size_t l[] = { 6, strlen(db) };
        if (!(r = raw(q, 2, a, l, "SELECT")))
            return QUEUE_ERR_CONN;
        if (r->type == REDIS_REPLY_ERROR) {
            seterr(q, "%s: SELECT %d refused: %s", ep, q->db, r->str);
            rc = QUEUE_ERR_CONN;
        }
        freeReplyObject(r);
        if (rc)
            goto fail;
    }
    /* Groups start at 0 so entries added before the group are not lost. */
    for (int l = 0; l < LANE_COUNT; l++) {
        cmd c;
        cmd_init(&c);
        cmd_str(&c, "XGROUP"); cmd_str(&c, "CREATE");
        key_push(&c, q, lane_key((tpl_lane)l), NULL);
        cmd_str(&c, GROUP); cmd_str(&c, "0"); cmd_str(&c, "MKSTREAM");
        r = raw(q, c.n, c.v, c.l, "XGROUP CREATE");
        cmd_free(&c);
        if (!r)
            return QUEUE_ERR_CONN;
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)
            rc = reply_error(q, r, "creating the consumer group");
        freeReplyObject(r);
        if (rc)
            goto fail;
    }
    for (int i = 0; i < QSCRIPT_COUNT; i++) {
        const char *a[] = { "SCRIPT", "LOAD", queue_scripts[i].src };
        size_t l[] = { 6, 4, strlen(queue_scripts[i].src) };
        if (!(r = raw(q, 3, a, l, "SCRIPT LOAD")))
            return QUEUE_ERR_CONN;
        if (r->type == REDIS_REPLY_STRING && r->len == 40)
            memcpy(q->sha[i], r->str, 41);
        else if (r->type == REDIS_REPLY_ERROR)
            rc = reply_error(q, r, queue_scripts[i].name);
        else
            rc = proto_error(q, "SCRIPT LOAD");
        freeReplyObject(r);
        if (rc)
            goto fail;
    }
    return 0;
fail:
    redisFree(q->c);
    q->c = NULL;
    return rc;
}

static int ensure(queue *q)
{
    if (q->c)
        return 0;
    memset(q->sha, 0, sizeof q->sha);
    return reconnect(q);
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

queue *queue_connect(const queue_opts *o, char *err, size_t errlen)
{
    queue *q = calloc(1, sizeof *q);
    if (!q) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    q->socket = dup_or_null(o->socket);
    q->host = dup_or_null(o->host);
    q->user = dup_or_null(o->user);
    q->wait_replicas = o->wait_replicas;
    q->wait_timeout_ms = o->wait_timeout_ms > 0 ? o->wait_timeout_ms : 500;
    q->password = dup_or_null(o->password);
    q->master_name = strdup(o->master_name && o->master_name[0] ? o->master_name : "herald");
    if (o->nsentinels > 0 && (q->sentinels = calloc((size_t)o->nsentinels, sizeof *q->sentinels))) {
        for (int i = 0; i < o->nsentinels; i++)
            if ((q->sentinels[q->nsentinels] = strdup(o->sentinels[i])))
                q->nsentinels++;
    }
    q->prefix = strdup(o->prefix && o->prefix[0] ? o->prefix : "herald");
    q->port = o->port ? o->port : 6379;
    q->db = o->db;
    q->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 2000;
    q->command_timeout_ms = o->command_timeout_ms > 0 ? o->command_timeout_ms : 5000;
    q->retention_ms = o->retention_ms > 0 ? o->retention_ms : 30LL * 86400 * 1000;
    q->idem_window_ms = o->idem_window_ms > 0 ? o->idem_window_ms : 86400LL * 1000;
    if (!q->prefix || (o->socket && !q->socket) || (o->host && !q->host) ||
        (o->password && !q->password) || (o->user && !q->user) || !q->master_name ||
        q->nsentinels != (o->nsentinels > 0 ? o->nsentinels : 0)) {
        snprintf(err, errlen, "out of memory");
        queue_free(q);
        return NULL;
    }
    if (strpbrk(q->prefix, "{}")) {
        snprintf(err, errlen, "redis prefix '%s' must not contain braces", q->prefix);
        queue_free(q);
        return NULL;
    }
    if (reconnect(q) != 0) {
        snprintf(err, errlen, "%s", q->err);
        queue_free(q);
        return NULL;
    }
    return q;
}

void queue_free(queue *q)
{
    if (!q)
        return;
    if (q->c)
        redisFree(q->c);
    free(q->socket);
    free(q->host);
    free(q->password);
    free(q->user);
    free(q->master_name);
    for (int i = 0; i < q->nsentinels; i++)
        free(q->sentinels[i]);
    free(q->sentinels);
    free(q->prefix);
    free(q);
}

/* ---- running commands and scripts --------------------------------------- */

/* Runs c, connecting first if needed. NULL when the connection failed. */
static redisReply *run(queue *q, cmd *c, const char *what)
{
    if (c->overflow) {
        seterr(q, "%s: command too long (internal)", what);
        return NULL;
    }
    if (ensure(q) != 0)
        return NULL;
    return raw(q, c->n, c->v, c->l, what);
}

/* Starts a script call: EVALSHA sha nkeys; keys and args follow. */
static void cmd_script(cmd *c, const queue *q, queue_script_id s, int nkeys)
{
    cmd_init(c);
    cmd_str(c, "EVALSHA");
    cmd_str(c, q->sha[s]);
    cmd_ll(c, nkeys);
}

static int is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8);
}

/* EVAL with the source: Redis caches it, so EVALSHA works again after. */
static redisReply *eval_src(queue *q, cmd *c, queue_script_id s)
{
    c->v[0] = "EVAL";
    c->l[0] = 4;
    c->v[1] = queue_scripts[s].src;
    c->l[1] = strlen(queue_scripts[s].src);
    redisReply *r = run(q, c, queue_scripts[s].name);
    c->v[0] = "EVALSHA";
    c->l[0] = 7;
    return r;
}

/* EVALSHA, or EVAL when the script is not (or no longer) in Redis's cache
 * (SCRIPT FLUSH, a restart, a failover). */
static redisReply *run_script(queue *q, cmd *c, queue_script_id s)
{
    if (ensure(q) != 0)
        return NULL;
    if (q->sha[s][0]) {
        c->v[1] = q->sha[s];
        c->l[1] = strlen(q->sha[s]);
        redisReply *r = run(q, c, queue_scripts[s].name);
        if (!is_noscript(r))
            return r;
        freeReplyObject(r);
    }
    return eval_src(q, c, s);
}

/* Reads the n replies of a pipeline sent on q->c into out[]. On a broken
 * connection the replies read so far are freed (out[] all NULL). */
static int read_replies(queue *q, size_t n, redisReply **out, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(q->c, &r) != REDIS_OK || !r) {
            for (size_t j = 0; j < i; j++) {
                freeReplyObject(out[j]);
                out[j] = NULL;
            }
            return conn_lost(q, what);
        }
        out[i] = r;
    }
    return 0;
}

/* Sends n commands in one pipeline and reads n replies into out[]. On a
 * connection failure the replies not read are NULL and QUEUE_ERR_CONN is
 * returned. Script calls that came back NOSCRIPT are re-run with EVAL
 * (scripts[i] names the script of cs[i], or -1 for plain commands). */
static int pipeline(queue *q, cmd *cs, const int *scripts, size_t n,
                    redisReply **out, const char *what)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    if (ensure(q) != 0)
        return QUEUE_ERR_CONN;
    for (size_t i = 0; i < n; i++)
        if (cs[i].overflow) {
            seterr(q, "%s: command too long (internal)", what);
            return QUEUE_ERR_PROTO;
        }
    for (size_t i = 0; i < n; i++) {
        if (scripts && scripts[i] >= 0) {
            if (!q->sha[scripts[i]][0]) {     /* not loaded: send the source */
                cs[i].v[0] = "EVAL";
                cs[i].l[0] = 4;
                cs[i].v[1] = queue_scripts[scripts[i]].src;
                cs[i].l[1] = strlen(queue_scripts[scripts[i]].src);
            } else {
                cs[i].v[1] = q->sha[scripts[i]];
                cs[i].l[1] = strlen(q->sha[scripts[i]]);
            }
        }
        if (redisAppendCommandArgv(q->c, cs[i].n, cs[i].v, cs[i].l) != REDIS_OK)
            return conn_lost(q, what);
    }
    int rc = read_replies(q, n, out, what);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (scripts && scripts[i] >= 0 && is_noscript(out[i])) {
            freeReplyObject(out[i]);
            out[i] = eval_src(q, &cs[i], (queue_script_id)scripts[i]);
            if (!out[i]) {
                for (size_t j = 0; j < n; j++) {
                    if (out[j])
                        freeReplyObject(out[j]);
                    out[j] = NULL;
                }
                return QUEUE_ERR_CONN;
            }
        }
    }
    return 0;
}

/* Room for one pipeline round on the heap (worker threads have small stacks). */
typedef struct batch {
    cmd *cs;
    int *scripts;
    redisReply **out;
} batch;

static int batch_alloc(queue *q, batch *b, size_t n)
{
    b->cs = calloc(n, sizeof *b->cs);
    b->scripts = calloc(n, sizeof *b->scripts);
    b->out = calloc(n, sizeof *b->out);
    if (b->cs && b->scripts && b->out)
        return 0;
    free(b->cs); free(b->scripts); free(b->out);
    seterr(q, "out of memory");
    return QUEUE_ERR_PROTO;
}

static void batch_free(batch *b)
{
    free(b->cs); free(b->scripts); free(b->out);
}

/* ---- reply helpers ------------------------------------------------------- */

static const char *rstr(const redisReply *r)
{
    if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
        return r->str;
    return NULL;
}

static long long rint_(const redisReply *r)
{
    if (!r)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

static int is_arr(const redisReply *r, size_t min)
{
    return r && r->type == REDIS_REPLY_ARRAY && r->elements >= min;
}

static char *rdup(const redisReply *r)
{
    const char *s = rstr(r);
    return s ? strdup(s) : NULL;
}

/* A reply is usable, or its error is translated (and the reply freed). */
static int check(queue *q, redisReply *r, const char *what)
{
    if (!r)
        return q->c ? QUEUE_ERR_PROTO : QUEUE_ERR_CONN;
    if (r->type == REDIS_REPLY_ERROR) {
        int rc = reply_error(q, r, what);
        freeReplyObject(r);
        return rc;
    }
    return 0;
}

/* Scripts that answer {0} or {negative code, why}. */

/* The {code, why} answer of a script (or its error reply); r is not freed. */
static int code_of(queue *q, const redisReply *r, const char *what)
{
    int rc = 0;
    if (!r)
        return q->c ? QUEUE_ERR_PROTO : QUEUE_ERR_CONN;
    if (r->type == REDIS_REPLY_ERROR)
        return reply_error(q, r, what);
    if (!is_arr(r, 1) || r->element[0]->type != REDIS_REPLY_INTEGER) {
        rc = proto_error(q, what);
    } else if (r->element[0]->integer != 0) {
        rc = (int)r->element[0]->integer;
        if (rc != QUEUE_ERR_NOTFOUND && rc != QUEUE_ERR_STATE)
            rc = QUEUE_ERR_PROTO;
        seterr(q, "%s: %s", what, r->elements > 1 && rstr(r->element[1]) ? r->element[1]->str : "?");
    }
    return rc;
}

static int code_reply(queue *q, redisReply *r, const char *what)
{
    int rc = code_of(q, r, what);
    if (r)
        freeReplyObject(r);
    return rc;
}

/* "2024-05-01T10:00:00.000Z" for timeline details. */
static void fmt_utc(long long ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, len, "%lld", ms);
        return;
    }
    size_t k = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, len - k, ".%03dZ", (int)(ms % 1000));
}

static long long wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An id we generated, or one safe to put in a key: [0-9A-Za-z_-]{1,39}. */
static int valid_id(const char *s, size_t len)
{
    if (len == 0 || len >= QUEUE_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
              (ch >= 'A' && ch <= 'Z') || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

/* 12 hex digits of ms time + 10 hex digits from getrandom(): sorts by time,
 * unique across processes without coordination. */
static int make_id(queue *q, long long now_ms, char out[QUEUE_ID_MAX])
{
    unsigned char r[5];
    size_t got = 0;
    while (got < sizeof r) {
        ssize_t k = getrandom(r + got, sizeof r - got, 0);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            seterr(q, "getrandom: %s", strerror(errno));
            return -1;
        }
        got += (size_t)k;
    }
    snprintf(out, QUEUE_ID_MAX, "%012llx%02x%02x%02x%02x%02x",
             (unsigned long long)now_ms & 0xffffffffffffULL, r[0], r[1], r[2], r[3], r[4]);
    return 0;
}

/* ---- the console's case index and day counters ----------------------------- */

void queue_local_day(long long ms, char day[16])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(day, 16, "%Y-%m-%d", &tm) == 0)
        snprintf(day, 16, "0000-00-00");
}

void queue_utc_day(long long ms, char day[16])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(day, 16, "%Y-%m-%d", &tm) == 0)
        snprintf(day, 16, "0000-00-00");
}

/* A case number as indexed: without leading and trailing blanks; 0 when
 * there is none or it is longer than QUEUE_CASE_MAX (not indexed). */
static size_t case_trim(const char *in, char out[QUEUE_CASE_MAX + 1])
{
    out[0] = '\0';
    if (!in)
        return 0;
    while (*in == ' ' || *in == '\t' || *in == '\r' || *in == '\n')
        in++;
    size_t n = strlen(in);
    while (n && (in[n - 1] == ' ' || in[n - 1] == '\t' || in[n - 1] == '\r' || in[n - 1] == '\n'))
        n--;
    if (n == 0 || n > QUEUE_CASE_MAX)
        return 0;
    memcpy(out, in, n);
    out[n] = '\0';
    return n;
}

static void day_key_push(cmd *c, const queue *q, long long now_ms)
{
    char day[16];
    queue_local_day(now_ms > 0 ? now_ms : wall_ms(), day);
    key_push(c, q, K_DAY, day);
}

/* ---- enqueue -------------------------------------------------------------- */

/* The ENQUEUE script call of k messages m[0..k-1] with ids res[].id and
 * creation times now[]: its keys and arguments are listed above
 * lua_enqueue in scripts.c. */
static void enq_build(queue *q, const queue_new_msg *m, const queue_enq_result *res,
                      const long long *now, size_t k, cmd *c)
{
    cmd_script(c, q, QSCRIPT_ENQUEUE, 4 + 4 * (int)k);
    key_push(c, q, K_LANE_URGENT, NULL);
    key_push(c, q, K_LANE_BULK, NULL);
    key_push(c, q, K_SCHED, NULL);
    key_push(c, q, K_BODIES, NULL);
    for (size_t i = 0; i < k; i++) {
        char case_no[QUEUE_CASE_MAX + 1];
        case_trim(m[i].case_no, case_no);
        key_push(c, q, K_MSG, res[i].id);
        key_push(c, q, K_IDEM, m[i].idem_key);
        key_push(c, q, K_CASE, case_no);      /* "{p}:case:" is never written */
        day_key_push(c, q, now[i]);
    }
    cmd_ll(c, q->retention_ms);
    cmd_ll(c, q->idem_window_ms);
    cmd_ll(c, DAY_TTL_MS);
    cmd_ll(c, (long long)k);
    for (size_t i = 0; i < k; i++) {
        long long send_at = m[i].send_at_ms > now[i] ? m[i].send_at_ms : now[i];
        char when[40], case_no[QUEUE_CASE_MAX + 1];
        fmt_utc(send_at, when, sizeof when);
        case_trim(m[i].case_no, case_no);
        cmd_str(c, res[i].id);
        cmd_str(c, m[i].family);
        cmd_str(c, m[i].template_name);
        cmd_str(c, m[i].to);
        cmd_str(c, m[i].text);
        cmd_str(c, m[i].encoding);
        cmd_ll(c, m[i].parts);
        cmd_str(c, lane_str(m[i].lane));
        cmd_str(c, m[i].vars_json ? m[i].vars_json : "{}");
        cmd_str(c, m[i].provider_code);
        cmd_str(c, m[i].idem_key);
        cmd_ll(c, now[i]);
        cmd_ll(c, send_at);
        cmd_fmt(c, "%s", when);           /* copies: these are this frame's */
        cmd_fmt(c, "%s", case_no);
        cmd_ll(c, now[i] - q->retention_ms);
    }
}

/* One message's ENQUEUE answer (r is not freed). */
static void enq_result(queue *q, const redisReply *r, queue_enq_result *res)
{
    if (!r || r->type == REDIS_REPLY_ERROR) {
        res->status = code_of(q, r, "enqueue");
        return;
    }
    /* a new message: its id alone (a string, no table to make) */
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        if (r->len == 0 || r->len >= QUEUE_ID_MAX) {
            res->status = proto_error(q, "enqueue");
            return;
        }
        res->status = QUEUE_OK;
        res->duplicate = 0;
        snprintf(res->id, QUEUE_ID_MAX, "%s", r->str);
        return;
    }
    if (is_arr(r, 2) && rint_(r->element[0]) == 2) {
        seterr(q, "enqueue: %s", rstr(r->element[1]) ? r->element[1]->str : "refused");
        res->status = QUEUE_ERR_PROTO;
        return;
    }
    if (!is_arr(r, 2) || !rstr(r->element[1]) || r->element[1]->len >= QUEUE_ID_MAX) {
        res->status = proto_error(q, "enqueue");
        return;
    }
    res->status = QUEUE_OK;
    res->duplicate = rint_(r->element[0]) == 1;
    snprintf(res->id, QUEUE_ID_MAX, "%s", r->element[1]->str);
}

/* With redis.wait_replicas, a state change counts only once that many
 * replicas hold it (WAIT): after a failover the new primary then knows
 * every send that went out. A write the replicas did not confirm is
 * treated as a lost connection: the caller keeps what it knows and writes
 * it again, to the primary the sentinels name next. */
static int replicated(queue *q, const char *what)
{
    if (q->wait_replicas <= 0 || !q->c)
        return 0;
    char n[16], t[16];
    snprintf(n, sizeof n, "%d", q->wait_replicas);
    snprintf(t, sizeof t, "%d", q->wait_timeout_ms);
    const char *a[] = { "WAIT", n, t };
    size_t l[] = { 4, strlen(n), strlen(t) };
    redisReply *r = raw(q, 3, a, l, "WAIT");
    if (!r)
        return QUEUE_ERR_CONN;
    long long got = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    if (got >= q->wait_replicas)
        return 0;
    char ep[200];
    endpoint(q, ep, sizeof ep);
    seterr(q, "%s: %s: %lld of %d replicas confirmed within %d ms", ep, what, got < 0 ? 0 : got,
           q->wait_replicas, q->wait_timeout_ms);
    redisFree(q->c);
    q->c = NULL;
    return QUEUE_ERR_CONN;
}

/* The pipeline round of a batch script: PIPE_CHUNK messages in calls of
 * SCRIPT_BATCH. */
enum { SCRIPT_CALLS = (PIPE_CHUNK + SCRIPT_BATCH - 1) / SCRIPT_BATCH };

/* Messages in the call that starts at off of a round of k. */
static size_t call_len(size_t k, size_t off)
{
    return k - off < SCRIPT_BATCH ? k - off : SCRIPT_BATCH;
}

/* The answer of call j of a batch round: its k per-message replies, or
 * *top set to the error that stands for all of them. */
static const redisReply *batch_reply(queue *q, const redisReply *r, size_t k, const char *what,
                                     int *top)
{
    *top = 0;
    if (!r || r->type == REDIS_REPLY_ERROR)
        *top = code_of(q, r, what);
    else if (r->type != REDIS_REPLY_ARRAY || r->elements != k)
        *top = proto_error(q, what);
    return *top ? NULL : r;
}

int queue_enqueue(queue *q, const queue_new_msg *msgs, size_t n, queue_enq_result *res)
{
    clearerr_q(q);
    batch bt;
    long long *now = malloc(PIPE_CHUNK * sizeof *now);
    if (!now || batch_alloc(q, &bt, SCRIPT_CALLS) != 0) {
        free(now);
        seterr(q, "out of memory");
        return QUEUE_ERR_PROTO;
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        memset(&res[i], 0, sizeof res[i]);
    for (size_t base = 0; !rc && base < n; base += PIPE_CHUNK) {
        size_t k = n - base < PIPE_CHUNK ? n - base : PIPE_CHUNK;
        for (size_t i = 0; !rc && i < k; i++) {
            const queue_new_msg *m = &msgs[base + i];
            now[i] = m->now_ms > 0 ? m->now_ms : wall_ms();
            if (!m->idem_key || !m->idem_key[0] || !m->to || !m->text) {
                seterr(q, "enqueue: message %zu lacks idem_key, to or text", base + i);
                rc = QUEUE_ERR_PROTO;
            } else if (make_id(q, now[i], res[base + i].id) != 0) {
                rc = QUEUE_ERR_PROTO;
            }
        }
        if (rc) {
            for (size_t i = base; i < n; i++)
                res[i].status = rc;
            break;
        }
        /* the round's messages in calls of SCRIPT_BATCH, one pipeline */
        size_t nc = 0;
        for (size_t off = 0; off < k; off += SCRIPT_BATCH, nc++) {
            size_t kk = call_len(k, off);
            bt.scripts[nc] = QSCRIPT_ENQUEUE;
            enq_build(q, &msgs[base + off], &res[base + off], &now[off], kk, &bt.cs[nc]);
        }
        rc = pipeline(q, bt.cs, bt.scripts, nc, bt.out, "enqueue");
        for (size_t j = 0; j < nc; j++) {
            size_t off = j * SCRIPT_BATCH, kk = call_len(k, off);
            int top = rc;
            const redisReply *r = rc ? NULL : batch_reply(q, bt.out[j], kk, "enqueue", &top);
            for (size_t i = 0; i < kk; i++) {
                queue_enq_result *ri = &res[base + off + i];
                if (r) {
                    enq_result(q, r->element[i], ri);
                } else {    /* a call Redis refused as a whole (maxmemory): each message */
                    ri->status = top;
                    ri->duplicate = 0;
                }
            }
            if (bt.out[j])
                freeReplyObject(bt.out[j]);
            cmd_free(&bt.cs[j]);
        }
        if (rc)
            for (size_t i = base + k; i < n; i++)
                res[i].status = rc;
    }
    free(now);
    batch_free(&bt);
    if (rc)
        return rc;
    /* unconfirmed by the replicas: the caller enqueues again (same keys) */
    if ((rc = replicated(q, "enqueue")) != 0)
        for (size_t i = 0; i < n; i++)
            if (res[i].status == 0)
                res[i].status = rc;
    return rc;
}

/* GET of one key: the reply (string or nil), or NULL with *rc set. */
static redisReply *get_key(queue *q, key_kind k, const char *suffix, const char *what, int *rc)
{
    clearerr_q(q);
    cmd c;
    cmd_init(&c);
    cmd_str(&c, "GET");
    key_push(&c, q, k, suffix);
    redisReply *r = run(q, &c, what);
    cmd_free(&c);
    *rc = check(q, r, what);
    return *rc ? NULL : r;
}

int queue_find_by_key(
queue *q, const char *idem_key, char id[QUEUE_ID_MAX])
{
    int rc;
    redisReply *r = get_key(q, K_IDEM, idem_key, "looking up an idempotency key", &rc);
    if (!r)
        return rc;
    if (r->type == REDIS_REPLY_NIL) {
        rc = QUEUE_ERR_NOTFOUND;
        seterr(q, "no message with that idempotency key");
    } else if (!rstr(r) || r->len >= QUEUE_ID_MAX) {
        rc = proto_error(q, "GET idem");
    } else {
        snprintf(id, QUEUE_ID_MAX, "%s", r->str);
    }
    freeReplyObject(r);
    return rc;
}

/* A record is sparse (ENQUEUE and FINISH in scripts.c): a field that
 * would hold its default is not stored. Readers see every field:
 * the id from the key, "" or 0, and `updated` and `send_at` from
 * `created`. Fields already present are left alone. */
static void record_defaults(json_t *o, const char *id)
{
    static const char *const empty[] = { "code", "key", "route", "refs", "error",
                                         "owner", "entry", NULL };
    static const char *const zero[] = { "attempts", "lease_until", NULL };
    static const char *const created[] = { "updated", "send_at", NULL };
    if (!json_object_get(o, "id"))
        json_object_set_new(o, "id", json_string(id));
    for (int i = 0; empty[i]; i++)
        if (!json_object_get(o, empty[i]))
            json_object_set_new(o, empty[i], json_string(""));
    for (int i = 0; zero[i]; i++)
        if (!json_object_get(o, zero[i]))
            json_object_set_new(o, zero[i], json_integer(0));
    json_int_t c = json_integer_value(json_object_get(o, "created"));
    for (int i = 0; created[i]; i++)
        if (!json_object_get(o, created[i]))
            json_object_set_new(o, created[i], json_integer(c));
}

int queue_find_by_case(queue *q, const char *case_no, int max, json_t **out)
{
    clearerr_q(q);
    *out = NULL;
    char cn[QUEUE_CASE_MAX + 1];
    if (case_trim(case_no, cn) == 0) {
        *out = json_array();
        return 0;
    }
    if (max <= 0)
        max = 1;
    cmd c;
    cmd_init(&c);
    cmd_str(&c, "ZREVRANGE");
    key_push(&c, q, K_CASE, cn);
    cmd_str(&c, "0");
    cmd_ll(&c, max - 1);
    redisReply *r = run(q, &c, "ZREVRANGE case");
    cmd_free(&c);
    int rc = check(q, r, "looking up a case number");
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return proto_error(q, "ZREVRANGE case");
    }
    static const char *const fields[] = { "status", "template", "family", "to",
                                          "created", "updated" };
    enum { NF = sizeof fields / sizeof fields[0], F_CREATED = 4 };
    size_t n = r->elements;
    cmd *cs = calloc(n ? n : 1, sizeof *cs);
    redisReply **rr = calloc(n ? n : 1, sizeof *rr);
    const char **ids = calloc(n ? n : 1, sizeof *ids);
    json_t *a = json_array();
    if (!cs || !rr || !ids || !a) {
        free(cs);
        free(rr);
        free(ids);
        json_decref(a);
        freeReplyObject(r);
        seterr(q, "find_by_case: out of memory");
        return QUEUE_ERR_PROTO;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = rstr(r->element[i]);
        if (!id || !valid_id(id, r->element[i]->len))
            continue;
        ids[k] = id;
        cmd_init(&cs[k]);
        cmd_str(&cs[k], "HMGET");
        key_push(&cs[k], q, K_MSG, id);
        for (int f = 0; f < NF; f++)
            cmd_str(&cs[k], fields[f]);
        k++;
    }
    rc = k ? pipeline(q, cs, NULL, k, rr, "case records") : 0;
    for (size_t i = 0; i < k; i++) {
        cmd_free(&cs[i]);
        const redisReply *h = rr[i];
        if (rc || !is_arr(h, NF) || !rstr(h->element[0]))
            continue;                 /* past its retention: the index lags */
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(ids[i]));
        for (int f = 0; f < NF; f++) {
            const char *v = rstr(h->element[f]);
            if (!v && !strcmp(fields[f], "updated"))
                v = rstr(h->element[F_CREATED]);  /* not stored until it changes */
            if (!strcmp(fields[f], "created") || !strcmp(fields[f], "updated"))
                json_object_set_new(o, fields[f], json_integer(v ? strtoll(v, NULL, 10) : 0));
            else
                json_object_set_new(o, fields[f], json_string(v ? v : ""));
        }
        json_array_append_new(a, o);
    }
    for (size_t i = 0; i < k; i++)
        if (rr[i])
            freeReplyObject(rr[i]);
    free(cs);
    free(rr);
    free(ids);
    freeReplyObject(r);
    if (rc) {
        json_decref(a);
        return rc;
    }
    *out = a;
    return 0;
}

/* ---- workers ------------------------------------------------------------ */

/* Adds the entries of one stream reply [[id, [f, v, ...]], ...] to out. */
static int parse_entries(queue *q, const redisReply *arr, tpl_lane lane,
                         queue_entry *out, int max, int *n)
{
    if (arr->type != REDIS_REPLY_ARRAY)
        return proto_error(q, "XREADGROUP");
    for (size_t i = 0; i < arr->elements; i++) {
        const redisReply *e = arr->element[i];
        if (!is_arr(e, 1) || !rstr(e->element[0]) || e->element[0]->len >= QUEUE_ENTRY_MAX)
            return proto_error(q, "XREADGROUP entry");
        if (*n >= max)
            return proto_error(q, "XREADGROUP returned more than COUNT");
        queue_entry *qe = &out[(*n)++];
        memset(qe, 0, sizeof *qe);
        snprintf(qe->entry_id, sizeof qe->entry_id, "%s", e->element[0]->str);
        qe->lane = lane;
        const redisReply *f = e->elements > 1 ? e->element[1] : NULL;
        if (f && f->type == REDIS_REPLY_ARRAY)
            for (size_t j = 0; j + 1 < f->elements; j += 2)
                if (rstr(f->element[j]) && !strcmp(f->element[j]->str, "id") &&
                    rstr(f->element[j + 1]) &&
                    valid_id(f->element[j + 1]->str, f->element[j + 1]->len)) {
                    snprintf(qe->msg_id, sizeof qe->msg_id, "%s", f->element[j + 1]->str);
                    break;
                }
    }
    return 0;
}

/* XREADGROUP on one or both lanes. */
static int xread(queue *q, const tpl_lane *lanes, int nlanes, const char *consumer,
                 int count, int block_ms, queue_entry *out, int max, int *n)
{
    cmd c;
    cmd_init(&c);
    cmd_str(&c, "XREADGROUP"); cmd_str(&c, "GROUP"); cmd_str(&c, GROUP);
    cmd_str(&c, consumer);
    cmd_str(&c, "COUNT"); cmd_ll(&c, count);
    if (block_ms > 0) {
        cmd_str(&c, "BLOCK");
        cmd_ll(&c, block_ms);
    }
    cmd_str(&c, "STREAMS");
    for (int i = 0; i < nlanes; i++)
        key_push(&c, q, lane_key(lanes[i]), NULL);
    for (int i = 0; i < nlanes; i++)
        cmd_str(&c, ">");
    redisReply *r = NULL;
    int rc = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (ensure(q) != 0) {
            cmd_free(&c);
            return QUEUE_ERR_CONN;
        }
        if (block_ms > 0)
            redisSetTimeout(q->c, tv_ms(q->command_timeout_ms + block_ms));
        r = run(q, &c, "XREADGROUP");
        if (r && q->c && block_ms > 0)
            redisSetTimeout(q->c, tv_ms(q->command_timeout_ms));
        /* A lane deleted by hand loses its group: make both again, once. */
        if (attempt == 0 && r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOGROUP", 7)) {
            freeReplyObject(r);
            r = NULL;
            redisFree(q->c);
            q->c = NULL;
            continue;
        }
        break;
    }
    cmd_free(&c);
    if ((rc = check(q, r, "reading a lane")) != 0)
        return rc;
    if (r->type != REDIS_REPLY_NIL) {
        if (r->type != REDIS_REPLY_ARRAY)
            rc = proto_error(q, "XREADGROUP");
        for (size_t i = 0; !rc && i < r->elements; i++) {
            const redisReply *s = r->element[i];
            if (!is_arr(s, 2) || !rstr(s->element[0])) {
                rc = proto_error(q, "XREADGROUP stream");
                break;
            }
            tpl_lane lane = lanes[0];
            for (int j = 0; j < nlanes; j++) {
                const char *kn = key_kinds[lane_key(lanes[j])];
                size_t sl = s->element[0]->len, kl = strlen(kn);
                if (sl > kl && !strcmp(s->element[0]->str + sl - kl, kn))
                    lane = lanes[j];
            }
            rc = parse_entries(q, s->element[1], lane, out, max, n);
        }
    }
    freeReplyObject(r);
    return rc;
}

int queue_read_lane(queue *q, tpl_lane lane, const char *consumer, int max,
                    int block_ms, queue_entry *out, int *n)
{
    clearerr_q(q);
    *n = 0;
    if (max <= 0)
        return 0;
    return xread(q, &lane, 1, consumer, max, block_ms, out, max, n);
}

int queue_read(queue *q, const char *consumer, int max, int block_ms,
               queue_entry *out, int *n)
{
    clearerr_q(q);
    *n = 0;
    if (max <= 0)
        return 0;
    tpl_lane urgent = LANE_URGENT, bulk = LANE_BULK;
    int rc = xread(q, &urgent, 1, consumer, max, 0, out, max, n);
    if (rc || *n)
        return rc;
    if ((rc = xread(q, &bulk, 1, consumer, max, 0, out, max, n)) != 0 || *n)
        return rc;
    if (block_ms <= 0)
        return 0;
    /* Block for at most one entry per lane, then top up without blocking:
     * a wake-up never returns more than max. */
    const tpl_lane both[2] = { LANE_URGENT, LANE_BULK };
    queue_entry got[2];
    int ngot = 0;
    if ((rc = xread(q, both, 2, consumer, 1, block_ms, got, 2, &ngot)) != 0 || ngot == 0)
        return rc;
    if (ngot > max) {                     /* max == 1 and both lanes woke */
        queue_entry extra = got[1].lane == LANE_BULK ? got[1] : got[0];
        got[0] = got[1].lane == LANE_BULK ? got[0] : got[1];
        ngot = 1;
        if ((rc = queue_release(q, &extra, 1, wall_ms())) != 0)
            return rc;
    }
    for (int i = 0; i < ngot; i++)
        out[(*n)++] = got[i];
    if (*n < max && (rc = xread(q, &urgent, 1, consumer, max - *n, 0, out, max, n)) != 0)
        return rc;
    if (*n < max && (rc = xread(q, &bulk, 1, consumer, max - *n, 0, out, max, n)) != 0)
        return rc;
    /* Urgent first, order kept within a lane (insertion sort: n is small). */
    for (int i = 1; i < *n; i++) {
        queue_entry t = out[i];
        int j = i;
        for (; j > 0 && t.lane == LANE_URGENT && out[j - 1].lane != LANE_URGENT; j--)
            out[j] = out[j - 1];
        out[j] = t;
    }
    return 0;
}

void queue_job_clear(queue_job *j)
{
    if (!j)
        return;
    free(j->id); free(j->family); free(j->template_name); free(j->to);
    free(j->text); free(j->encoding); free(j->vars_json); free(j->provider_code);
    memset(j, 0, sizeof *j);
}

/* The BEGIN script call of the k entries e[0..k-1]: its keys and
 * arguments are listed above lua_begin in scripts.c. */
static void begin_cmd(queue *q, cmd *c, const queue_entry *e, size_t k, const char *consumer,
                      long long now_ms, long long lease_ms)
{
    cmd_script(c, q, QSCRIPT_BEGIN, 4 + (int)k);
    key_push(c, q, K_DEAD, NULL);
    key_push(c, q, K_OPTOUT, NULL);
    key_push(c, q, K_LANE_URGENT, NULL);
    key_push(c, q, K_LANE_BULK, NULL);
    for (size_t i = 0; i < k; i++)
        key_push(c, q, K_MSG, e[i].msg_id);
    cmd_str(c, consumer);
    cmd_ll(c, now_ms);
    cmd_ll(c, now_ms + lease_ms);
    cmd_ll(c, (long long)k);
    for (size_t i = 0; i < k; i++) {
        cmd_str(c, e[i].entry_id);
        cmd_str(c, e[i].msg_id);
        cmd_str(c, lane_str(e[i].lane));
    }
}

/* Reads one message's BEGIN answer into job (r is not freed):
 * QUEUE_BEGIN_* or an error. */
static int begin_parse(queue *q, const redisReply *r, const queue_entry *e, queue_job *job)
{
    memset(job, 0, sizeof *job);
    if (!r || r->type == REDIS_REPLY_ERROR)
        return code_of(q, r, "begin_send");
    if (!is_arr(r, 2))
        return proto_error(q, "begin_send");
    long long code = rint_(r->element[0]);
    if (code == QUEUE_BEGIN_SKIP || code == QUEUE_BEGIN_DEAD) {
        seterr(q, "message %s: %s", e->msg_id[0] ? e->msg_id : "(none)",
               rstr(r->element[1]) ? r->element[1]->str : "?");
        return (int)code;
    }
    /* the record's fields where BEGIN's HMGET put them (scripts.c) */
    if (code != 0 || r->elements < 12)
        return proto_error(q, "begin_send");
    redisReply **el = r->element;
    job->id = strdup(e->msg_id);
    job->opted_out = rint_(el[1]) == 1;
    job->family = rdup(el[2]);
    job->template_name = rdup(el[3]);
    job->to = rdup(el[4]);
    job->text = rdup(el[5]);
    job->encoding = rdup(el[6]);
    job->vars_json = rdup(el[7]);
    const char *pc = rstr(el[8]);
    job->provider_code = pc && pc[0] ? strdup(pc) : NULL;
    job->parts = (int)rint_(el[9]);
    job->lane = rstr(el[10]) && !strcmp(el[10]->str, "bulk") ? LANE_BULK : LANE_URGENT;
    job->attempts = (int)rint_(el[11]);
    if (!job->id || !job->to || !job->text) {
        queue_job_clear(job);
        seterr(q, "begin_send: out of memory");
        return QUEUE_ERR_PROTO;
    }
    return QUEUE_BEGIN_SEND;
}

int queue_begin_many(queue *q, const queue_entry *e, size_t n, const char *consumer,
                     long long now_ms, long long lease_ms, queue_job *jobs, int *rcs)
{
    clearerr_q(q);
    for (size_t i = 0; i < n; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        rcs[i] = QUEUE_ERR_CONN;
    }
    batch bt;
    if (batch_alloc(q, &bt, SCRIPT_CALLS) != 0)
        return QUEUE_ERR_PROTO;
    int rc = 0, began = 0;
    for (size_t base = 0; !rc && base < n; base += PIPE_CHUNK) {
        size_t k = n - base < PIPE_CHUNK ? n - base : PIPE_CHUNK, nc = 0;
        for (size_t off = 0; off < k; off += SCRIPT_BATCH, nc++) {
            size_t kk = call_len(k, off);
            bt.scripts[nc] = QSCRIPT_BEGIN;
            begin_cmd(q, &bt.cs[nc], &e[base + off], kk, consumer, now_ms, lease_ms);
        }
        rc = pipeline(q, bt.cs, bt.scripts, nc, bt.out, "begin_send");
        for (size_t j = 0; j < nc; j++) {
            size_t off = j * SCRIPT_BATCH, kk = call_len(k, off);
            int top = rc;
            const redisReply *r = rc ? NULL : batch_reply(q, bt.out[j], kk, "begin_send", &top);
            for (size_t i = 0; i < kk && !rc; i++) {
                size_t x = base + off + i;
                rcs[x] = r ? begin_parse(q, r->element[i], &e[x], &jobs[x]) : top;
                if (rcs[x] == QUEUE_BEGIN_SEND) {
                    jobs[x].began_ms = now_ms;
                    began = 1;
                }
            }
            if (bt.out[j])
                freeReplyObject(bt.out[j]);
            cmd_free(&bt.cs[j]);
        }
    }
    batch_free(&bt);
    /* One WAIT covers every begin of the round. */
    if (!rc && began)
        rc = replicated(q, "begin_send");
    if (rc) {
        /* what was begun is not known to have lasted: nothing was */
        for (size_t i = 0; i < n; i++) {
            if (rcs[i] == QUEUE_BEGIN_SEND)
                queue_job_clear(&jobs[i]);
            if (rcs[i] == QUEUE_BEGIN_SEND || rc == QUEUE_ERR_CONN)
                rcs[i] = QUEUE_ERR_CONN;
        }
    }
    return rc;
}

int queue_begin_send(queue *q, const queue_entry *e, const char *consumer,
                     long long now_ms, long long lease_ms, queue_job *job)
{
    int one;
    int rc = queue_begin_many(q, e, 1, consumer, now_ms, lease_ms, job, &one);
    return rc ? rc : one;
}

/* A FINISH outcome the script can take: 0, or QUEUE_ERR_STATE. */
static int fin_valid(queue *q, const queue_fin *f)
{
    if ((unsigned)f->o.kind > QUEUE_OUT_WAIT || !f->msg_id || !valid_id(f->msg_id, strlen(f->msg_id))) {
        seterr(q, "finish: bad outcome or message id");
        return QUEUE_ERR_STATE;
    }
    return 0;
}

/* Does a FINISH note what went to whom (queue_outcome.note_to)? */
static int has_note(const queue_outcome *o)
{
    return o->kind == QUEUE_OUT_SENT && o->note_to && o->note_to[0] && o->note_keep_ms > 0;
}

/* One message's FINISH answer: 0 (a plain integer) or a code_of() table. */
static int fin_code(queue *q, const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0)
        return 0;
    return code_of(q, r, "finish");
}

/* The detail of an attempt's timeline line, as LUA_ATTEMPT_LINE writes it
 * (scripts.h): FINISH's line given by the worker, and queue_get()'s line of
 * an attempt in progress. */
static void attempt_detail(char *buf, size_t len, long long n, const char *owner)
{
    snprintf(buf, len, "attempt %lld by %s", n, owner ? owner : "?");
}

/* When the day's hash of a note written at now_ms expires: keep_ms after
 * that UTC day ends, so every note is kept at least keep_ms. */
static long long note_expire_at(const queue_outcome *o, long long now_ms)
{
    return (now_ms / 86400000 + 1) * 86400000 + o->note_keep_ms;
}

/* The FINISH script call of k outcomes (f[idx[0..k-1]], all valid):
 * its keys and arguments are listed above lua_finish in scripts.c. */
static void finish_cmd(queue *q, cmd *c, const queue_fin *f, const size_t *idx, size_t k)
{
    static const char *const kinds[] = {
        [QUEUE_OUT_SENT] = "sent", [QUEUE_OUT_RETRY] = "retry", [QUEUE_OUT_DEAD] = "dead",
        [QUEUE_OUT_UNCERTAIN] = "uncertain", [QUEUE_OUT_WAIT] = "wait"
    };
    /* one clock read a call, for outcomes that carry no time: a message's
     * keys and its values must name the same day */
    long long wall = wall_ms();
    cmd_script(c, q, QSCRIPT_FINISH, 6 + 3 * (int)k);
    key_push(c, q, K_SCHED, NULL);
    key_push(c, q, K_DEAD, NULL);
    key_push(c, q, K_STATS, NULL);
    key_push(c, q, K_UNCERTAIN, NULL);
    key_push(c, q, K_LANE_URGENT, NULL);
    key_push(c, q, K_LANE_BULK, NULL);
    for (size_t j = 0; j < k; j++) {
        const queue_fin *fi = &f[idx[j]];
        const queue_outcome *o = &fi->o;
        long long now = o->now_ms > 0 ? o->now_ms : wall;
        key_push(c, q, K_MSG, fi->msg_id);
        if (has_note(o)) {
            char day[16];
            queue_utc_day(now, day);
            key_push(c, q, K_SENTDAY, day);
        } else {
            key_push(c, q, K_MSG, fi->msg_id);      /* a placeholder: no note */
        }
        day_key_push(c, q, now);
    }
    cmd_ll(c, DAY_TTL_MS);
    cmd_ll(c, (long long)k);
    for (size_t j = 0; j < k; j++) {
        const queue_fin *fi = &f[idx[j]];
        const queue_outcome *o = &fi->o;
        long long now = o->now_ms > 0 ? o->now_ms : wall;
        char when[40];
        fmt_utc(o->retry_at_ms, when, sizeof when);
        cmd_str(c, fi->e.entry_id);
        cmd_str(c, kinds[o->kind]);
        cmd_str(c, o->route);
        cmd_str(c, o->refs);
        cmd_str(c, o->detail);
        cmd_ll(c, o->retry_at_ms);
        cmd_ll(c, now);
        cmd_str(c, fi->msg_id);
        cmd_fmt(c, "%s", when);           /* a copy: when is this frame's */
        cmd_ll(c, has_note(o) ? note_expire_at(o, now) : 0);
        cmd_str(c, fi->e.lane == LANE_BULK ? "b" : "u");
        cmd_str(c, has_note(o) ? o->note_to : "");
        /* the attempt's timeline line (LUA_ATTEMPT_LINE's format), or ''
         * for FINISH to make it from the record */
        if (o->owner && o->owner[0] && o->attempt > 0 && o->began_ms > 0) {
            char detail[160];
            attempt_detail(detail, sizeof detail, o->attempt, o->owner);
            cmd_fmt(c, "%lld\tsending\t%s", o->began_ms, detail);
        } else {
            cmd_str(c, "");
        }
    }
}

/* TRIM of a lane's acknowledged head. Its answer is not the caller's: a
 * failed trim costs only memory until the next one, so it is dropped. */
static void trim_lane(queue *q, tpl_lane lane)
{
    cmd c;
    int script = QSCRIPT_TRIM;
    redisReply *r = NULL;
    cmd_script(&c, q, QSCRIPT_TRIM, 1);
    key_push(&c, q, lane_key(lane), NULL);
    if (pipeline(q, &c, &script, 1, &r, "trim") == 0 && r)
        freeReplyObject(r);
    cmd_free(&c);
}

int queue_finish_many(queue *q, const queue_fin *f, size_t n, int *rcs)
{
    clearerr_q(q);
    for (size_t i = 0; i < n; i++)
        rcs[i] = QUEUE_ERR_CONN;
    batch bt;
    size_t *idx = malloc(PIPE_CHUNK * sizeof *idx);
    if (!idx || batch_alloc(q, &bt, SCRIPT_CALLS) != 0) {
        free(idx);
        seterr(q, "out of memory");
        return QUEUE_ERR_PROTO;
    }
    int rc = 0, recorded = 0;
    for (size_t base = 0; !rc && base < n; base += PIPE_CHUNK) {
        size_t lim = n - base < PIPE_CHUNK ? n - base : PIPE_CHUNK, k = 0, nc = 0;
        for (size_t i = 0; i < lim; i++) {
            if ((rcs[base + i] = fin_valid(q, &f[base + i])) == 0) {
                rcs[base + i] = QUEUE_ERR_CONN;
                idx[k++] = base + i;
            }
        }
        /* the valid outcomes in calls of SCRIPT_BATCH, one pipeline */
        for (size_t off = 0; off < k; off += SCRIPT_BATCH, nc++) {
            size_t kk = call_len(k, off);
            bt.scripts[nc] = QSCRIPT_FINISH;
            finish_cmd(q, &bt.cs[nc], f, &idx[off], kk);
        }
        rc = nc ? pipeline(q, bt.cs, bt.scripts, nc, bt.out, "finish") : 0;
        for (size_t j = 0; j < nc; j++) {
            size_t off = j * SCRIPT_BATCH, kk = call_len(k, off);
            int top = rc;
            const redisReply *r = rc ? NULL : batch_reply(q, bt.out[j], kk, "finish", &top);
            for (size_t i = 0; i < kk && !rc; i++) {
                rcs[idx[off + i]] = r ? fin_code(q, r->element[i]) : top;
                recorded |= rcs[idx[off + i]] == 0;
            }
            if (bt.out[j])
                freeReplyObject(bt.out[j]);
            cmd_free(&bt.cs[j]);
        }
    }
    free(idx);
    batch_free(&bt);
    if (!rc && recorded)
        rc = replicated(q, "finish");
    if (rc)
        for (size_t i = 0; i < n; i++)
            if (rcs[i] == 0 || rc == QUEUE_ERR_CONN)
                rcs[i] = rc;
    return rc;
}

int queue_finish(queue *q, const queue_entry *e, const char *msg_id,
                 const queue_outcome *o)
{
    queue_fin f = { .e = *e, .msg_id = msg_id, .o = *o };
    int one;
    int rc = queue_finish_many(q, &f, 1, &one);
    return rc ? rc : one;
}

int queue_release(queue *q, const queue_entry *e, size_t n, long long now_ms)
{
    clearerr_q(q);
    batch bt;
    if (batch_alloc(q, &bt, PIPE_CHUNK) != 0)
        return QUEUE_ERR_PROTO;
    cmd *cs = bt.cs;
    int *scripts = bt.scripts;
    redisReply **out = bt.out;
    for (size_t base = 0; base < n; base += PIPE_CHUNK) {
        size_t k = n - base < PIPE_CHUNK ? n - base : PIPE_CHUNK;
        for (size_t i = 0; i < k; i++) {
            const queue_entry *qe = &e[base + i];
            scripts[i] = QSCRIPT_RELEASE;
            cmd_script(&cs[i], q, QSCRIPT_RELEASE, 3);
            key_push(&cs[i], q, K_MSG, qe->msg_id);
            key_push(&cs[i], q, lane_key(qe->lane), NULL);
            key_push(&cs[i], q, K_DEAD, NULL);
            cmd_str(&cs[i], qe->entry_id);
            cmd_str(&cs[i], qe->msg_id);
            cmd_ll(&cs[i], now_ms);
            cmd_str(&cs[i], lane_str(qe->lane));
        }
        int rc = pipeline(q, cs, scripts, k, out, "release");
        for (size_t i = 0; i < k; i++) {
            int irc = out[i] ? check(q, out[i], "release") : 0;
            if (out[i] && !irc)
                freeReplyObject(out[i]);
            if (!rc)
                rc = irc;
            cmd_free(&cs[i]);
        }
        if (rc) {
            batch_free(&bt);
            return rc;
        }
    }
    batch_free(&bt);
    return 0;
}

/* ---- the promoter and the reclaimer -------------------------------------- */

int queue_promote_due(queue *q, long long now_ms, int limit, int *promoted)
{
    clearerr_q(q);
    int total = 0;
    if (promoted)
        *promoted = 0;
    if (limit <= 0)
        return 0;
    cmd c;
    cmd_init(&c);
    cmd_str(&c, "ZRANGEBYSCORE");
    key_push(&c, q, K_SCHED, NULL);
    cmd_str(&c, "-inf");
    cmd_ll(&c, now_ms);
    cmd_str(&c, "LIMIT"); cmd_str(&c, "0"); cmd_ll(&c, limit);
    redisReply *due = run(q, &c, "ZRANGEBYSCORE");
    cmd_free(&c);
    int rc = check(q, due, "reading the schedule");
    if (rc)
        return rc;
    if (due->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(due);
        return proto_error(q, "ZRANGEBYSCORE");
    }
    batch bt;
    if (batch_alloc(q, &bt, PIPE_CHUNK) != 0) {
        freeReplyObject(due);
        return QUEUE_ERR_PROTO;
    }
    cmd *cs = bt.cs;
    int *scripts = bt.scripts;
    redisReply **out = bt.out;
    for (size_t base = 0; !rc && base < due->elements; base += PIPE_CHUNK) {
        size_t k = due->elements - base < PIPE_CHUNK ? due->elements - base : PIPE_CHUNK;
        for (size_t i = 0; i < k; i++) {
            const char *id = rstr(due->element[base + i]);
            scripts[i] = QSCRIPT_PROMOTE;
            cmd_script(&cs[i], q, QSCRIPT_PROMOTE, 4);
            key_push(&cs[i], q, K_SCHED, NULL);
            key_push(&cs[i], q, K_MSG, id);
            key_push(&cs[i], q, K_LANE_URGENT, NULL);
            key_push(&cs[i], q, K_LANE_BULK, NULL);
            cmd_str(&cs[i], id);
            cmd_ll(&cs[i], now_ms);
        }
        rc = pipeline(q, cs, scripts, k, out, "promote");
        for (size_t i = 0; i < k; i++) {
            if (out[i]) {
                int irc = check(q, out[i], "promote");
                if (!irc) {
                    total += rint_(out[i]) == 1;
                    freeReplyObject(out[i]);
                } else if (!rc) {
                    rc = irc;
                }
            }
            cmd_free(&cs[i]);
        }
    }
    batch_free(&bt);
    freeReplyObject(due);
    if (promoted)
        *promoted = total;
    return rc;
}

/* One XPENDING entry to look at. */
typedef struct pend {
    char entry[QUEUE_ENTRY_MAX];
    char msg_id[QUEUE_ID_MAX];
    int gone;                     /* deleted from the stream, still pending */
} pend;

/* Reads each entry's "id" field (one pipeline of XRANGE id id). */
static int pend_fill(queue *q, tpl_lane lane, pend *p, size_t n)
{
    batch bt;
    if (batch_alloc(q, &bt, RECLAIM_PAGE) != 0)
        return QUEUE_ERR_PROTO;
    cmd *cs = bt.cs;
    redisReply **out = bt.out;
    for (size_t i = 0; i < n; i++) {
        cmd_init(&cs[i]);
        cmd_str(&cs[i], "XRANGE");
        key_push(&cs[i], q, lane_key(lane), NULL);
        cmd_str(&cs[i], p[i].entry);
        cmd_str(&cs[i], p[i].entry);
    }
    int rc = pipeline(q, cs, NULL, n, out, "XRANGE");
    for (size_t i = 0; i < n; i++) {
        cmd_free(&cs[i]);
        if (!out[i])
            continue;
        redisReply *r = out[i];
        if (r->type == REDIS_REPLY_ERROR) {
            if (!rc)
                rc = reply_error(q, r, "XRANGE");
        } else if (!is_arr(r, 1)) {
            p[i].gone = 1;
        } else {
            const redisReply *e = r->element[0];
            const redisReply *f = is_arr(e, 2) ? e->element[1] : NULL;
            for (size_t j = 0; f && f->type == REDIS_REPLY_ARRAY && j + 1 < f->elements; j += 2)
                if (rstr(f->element[j]) && !strcmp(f->element[j]->str, "id") &&
                    rstr(f->element[j + 1]) &&
                    valid_id(f->element[j + 1]->str, f->element[j + 1]->len)) {
                    snprintf(p[i].msg_id, sizeof p[i].msg_id, "%s", f->element[j + 1]->str);
                    break;
                }
        }
        freeReplyObject(r);
    }
    batch_free(&bt);
    return rc;
}

/* Runs the reclaim script (or a bare XACK for entries already deleted). */
static int pend_reclaim(queue *q, tpl_lane lane, const pend *p, size_t n,
                        long long min_idle_ms, reclaim_policy policy, long long now_ms,
                        int *requeued, int *held)
{
    batch bt;
    if (batch_alloc(q, &bt, RECLAIM_PAGE) != 0)
        return QUEUE_ERR_PROTO;
    cmd *cs = bt.cs;
    int *scripts = bt.scripts;
    redisReply **out = bt.out;
    for (size_t i = 0; i < n; i++) {
        cmd *c = &cs[i];
        if (p[i].gone) {
            scripts[i] = -1;
            cmd_init(c);
            cmd_str(c, "XACK");
            key_push(c, q, lane_key(lane), NULL);
            cmd_str(c, GROUP);
            cmd_str(c, p[i].entry);
            continue;
        }
        scripts[i] = QSCRIPT_RECLAIM;
        cmd_script(c, q, QSCRIPT_RECLAIM, 4);
        key_push(c, q, lane_key(lane), NULL);
        key_push(c, q, K_MSG, p[i].msg_id);
        key_push(c, q, K_UNCERTAIN, NULL);
        key_push(c, q, K_DEAD, NULL);
        cmd_str(c, p[i].entry);
        cmd_str(c, p[i].msg_id);
        cmd_ll(c, now_ms);
        cmd_str(c, policy == RECLAIM_HOLD ? "hold" : "resend");
        cmd_ll(c, min_idle_ms);
        cmd_str(c, lane_str(lane));
    }
    int rc = pipeline(q, cs, scripts, n, out, "reclaim");
    for (size_t i = 0; i < n; i++) {
        cmd_free(&cs[i]);
        if (!out[i])
            continue;
        int irc = check(q, out[i], "reclaim");
        if (irc) {
            if (!rc)
                rc = irc;
            continue;
        }
        if (scripts[i] >= 0) {
            long long v = rint_(out[i]);
            if (v == QSR_REQUEUED)
                (*requeued)++;
            else if (v == QSR_HELD)
                (*held)++;
        }
        freeReplyObject(out[i]);
    }
    batch_free(&bt);
    return rc;
}

int queue_reclaim(queue *q, tpl_lane lane, long long min_idle_ms,
                  const char *consumer_prefix, reclaim_policy policy,
                  long long now_ms, int *requeued, int *held)
{
    clearerr_q(q);
    int nreq = 0, nheld = 0, rc = 0, touched = 0;
    char start[QUEUE_ENTRY_MAX + 1] = "-";
    size_t plen = consumer_prefix ? strlen(consumer_prefix) : 0;
    if (consumer_prefix)
        min_idle_ms = 0;
    pend *p = calloc(RECLAIM_PAGE, sizeof *p);
    if (!p) {
        seterr(q, "reclaim: out of memory");
        return QUEUE_ERR_PROTO;
    }
    for (;;) {
        cmd c;
        cmd_init(&c);
        cmd_str(&c, "XPENDING");
        key_push(&c, q, lane_key(lane), NULL);
        cmd_str(&c, GROUP);
        if (min_idle_ms > 0) {
            cmd_str(&c, "IDLE");
            cmd_ll(&c, min_idle_ms);
        }
        cmd_str(&c, start);
        cmd_str(&c, "+");
        cmd_ll(&c, RECLAIM_PAGE);
        redisReply *r = run(q, &c, "XPENDING");
        cmd_free(&c);
        if ((rc = check(q, r, "listing pending entries")) != 0)
            break;
        if (r->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            rc = proto_error(q, "XPENDING");
            break;
        }
        size_t seen = r->elements, np = 0;
        char was[sizeof start];
        memcpy(was, start, sizeof start);
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            if (!is_arr(e, 2) || !rstr(e->element[0]) || !rstr(e->element[1]) ||
                e->element[0]->len >= QUEUE_ENTRY_MAX)
                continue;
            snprintf(start, sizeof start, "(%s", e->element[0]->str);
            if (plen && strncmp(e->element[1]->str, consumer_prefix, plen) != 0)
                continue;
            memset(&p[np], 0, sizeof p[np]);
            snprintf(p[np].entry, sizeof p[np].entry, "%s", e->element[0]->str);
            np++;
        }
        freeReplyObject(r);
        touched |= np > 0;
        if (np && ((rc = pend_fill(q, lane, p, np)) != 0 ||
                   (rc = pend_reclaim(q, lane, p, np, min_idle_ms, policy, now_ms,
                                      &nreq, &nheld)) != 0))
            break;
        if (seen < RECLAIM_PAGE || !strcmp(was, start))   /* last page, or no progress */
            break;
    }
    free(p);
    if (!rc && touched)   /* what finished behind the entries reclaimed leaves the lane */
        trim_lane(q, lane);
    if (requeued)
        *requeued = nreq;
    if (held)
        *held = nheld;
    return rc;
}

int queue_instance_lease(queue *q, const char *instance, const char *token, long long ttl_ms,
                         const char *dead_holder)
{
    clearerr_q(q);
    cmd c;
    cmd_script(&c, q, QSCRIPT_LEASE, 1);
    key_push(&c, q, K_GW, instance);
    cmd_str(&c, token);
    cmd_ll(&c, ttl_ms);
    cmd_str(&c, dead_holder ? dead_holder : "");
    redisReply *r = run_script(q, &c, QSCRIPT_LEASE);
    cmd_free(&c);
    int rc = check(q, r, "instance lease");
    if (rc)
        return rc;
    rc = (int)rint_(r);
    if (rc == 1)
        seterr(q, "instance '%s' is held by another gateway", instance);
    freeReplyObject(r);
    return rc;
}

int queue_instance_holder(queue *q, const char *instance, char *buf, size_t len)
{
    int rc;
    redisReply *r = get_key(q, K_GW, instance, "instance holder", &rc);
    if (!r)
        return rc;
    if (len)
        buf[0] = '\0';
    if (r->type == REDIS_REPLY_STRING && len)
        snprintf(buf, len, "%.*s", (int)r->len, r->str);
    freeReplyObject(r);
    return 0;
}

int queue_instance_release(queue *q, const char *instance, const char *token)
{
    clearerr_q(q);
    cmd c;
    cmd_script(&c, q, QSCRIPT_UNLEASE, 1);
    key_push(&c, q, K_GW, instance);
    cmd_str(&c, token);
    redisReply *r = run_script(q, &c, QSCRIPT_UNLEASE);
    cmd_free(&c);
    int rc = check(q, r, "instance release");
    if (rc)
        return rc;
    rc = (int)rint_(r);
    if (rc == 1)
        seterr(q, "instance '%s' is held by another gateway", instance);
    freeReplyObject(r);
    return rc;
}

/* ---- inspection and operations ------------------------------------------ */

static int is_number_field(const char *f)
{
    static const char *const nums[] = {
        "attempts", "parts", "created", "updated", "send_at", "lease_until", NULL
    };
    for (int i = 0; nums[i]; i++)
        if (!strcmp(f, nums[i]))
            return 1;
    return 0;
}

/* "ms\tstatus\tdetail\n..." -> [{"at","status","detail"}, ...] */
static json_t *timeline_json(const char *tl)
{
    json_t *a = json_array();
    const char *p = tl;
    while (a && p && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *t1 = memchr(p, '\t', len);
        const char *t2 = t1 ? memchr(t1 + 1, '\t', len - (size_t)(t1 + 1 - p)) : NULL;
        if (t1 && t2) {
            json_t *o = json_object();
            json_object_set_new(o, "at", json_integer(strtoll(p, NULL, 10)));
            json_object_set_new(o, "status", json_stringn(t1 + 1, (size_t)(t2 - t1 - 1)));
            json_object_set_new(o, "detail", json_stringn(t2 + 1, len - (size_t)(t2 + 1 - p)));
            json_array_append_new(a, o);
        }
        p = nl ? nl + 1 : NULL;
    }
    return a;
}

/* The timeline's first line of a message queued at once (at `created`,
 * `queued`, "lane <lane>") is not stored (ENQUEUE in scripts.c): added
 * here, unless the stored timeline starts with it (written by a gateway
 * from before) or with the `scheduled` line a scheduled message stores. */
static void timeline_first_line(json_t *rec, json_t *tl)
{
    json_t *created = json_object_get(rec, "created");
    if (!tl || !json_is_integer(created))
        return;
    json_t *first = json_array_get(tl, 0);
    const char *fs = json_string_value(json_object_get(first, "status"));
    const char *fd = json_string_value(json_object_get(first, "detail"));
    if (fs && (!strcmp(fs, "scheduled") || (!strcmp(fs, "queued") && fd && !strncmp(fd, "lane ", 5))))
        return;
    const char *lane = json_string_value(json_object_get(rec, "lane"));
    char detail[48];
    snprintf(detail, sizeof detail, "lane %s", lane && lane[0] ? lane : "urgent");
    json_array_insert_new(tl, 0, json_pack("{s:I, s:s, s:s}", "at", json_integer_value(created),
                                           "status", "queued", "detail", detail));
}

int queue_get(queue *q, const char *id, json_t **out)
{
    clearerr_q(q);
    *out = NULL;
    if (!id || !valid_id(id, strlen(id))) {
        seterr(q, "no message '%s'", id ? id : "");
        return QUEUE_ERR_NOTFOUND;
    }
    cmd c;
    cmd_init(&c);
    cmd_str(&c, "HGETALL");
    key_push(&c, q, K_MSG, id);
    redisReply *r = run(q, &c, "HGETALL");
    cmd_free(&c);
    int rc = check(q, r, "reading a message");
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return proto_error(q, "HGETALL");
    }
    if (r->elements == 0) {
        freeReplyObject(r);
        seterr(q, "no message '%s'", id);
        return QUEUE_ERR_NOTFOUND;
    }
    json_t *o = json_object();
    json_t *tl = NULL;
    for (size_t i = 0; o && i + 1 < r->elements; i += 2) {
        const char *f = rstr(r->element[i]), *v = rstr(r->element[i + 1]);
        if (!f || !v)
            continue;
        if (!strcmp(f, "tl"))
            tl = timeline_json(v);
        else if (is_number_field(f))
            json_object_set_new(o, f, json_integer(strtoll(v, NULL, 10)));
        else
            json_object_set_new(o, f, json_stringn(v, r->element[i + 1]->len));
    }
    freeReplyObject(r);
    if (!o) {
        json_decref(tl);
        seterr(q, "queue_get: out of memory");
        return QUEUE_ERR_PROTO;
    }
    if (!tl)
        tl = json_array();
    timeline_first_line(o, tl);
    /* An attempt in progress: its `sending` line is not stored until the
     * attempt ends (LUA_ATTEMPT_LINE in scripts.h); derived here from the
     * fields BEGIN wrote. */
    const char *st = json_string_value(json_object_get(o, "status"));
    if (tl && st && !strcmp(st, "sending")) {
        const char *owner = json_string_value(json_object_get(o, "owner"));
        json_int_t began = json_integer_value(json_object_get(o, "updated"));
        char detail[160];
        attempt_detail(detail, sizeof detail,
                       (long long)json_integer_value(json_object_get(o, "attempts")), owner);
        /* unless stored at once, by a gateway from before */
        json_t *last = json_array_get(tl, json_array_size(tl) - 1);
        const char *ls = json_string_value(json_object_get(last, "status"));
        const char *ld = json_string_value(json_object_get(last, "detail"));
        if (!(last && json_integer_value(json_object_get(last, "at")) == began &&
              ls && !strcmp(ls, "sending") && ld && !strcmp(ld, detail)))
            json_array_append_new(tl, json_pack("{s:I, s:s, s:s}", "at", began,
                                  "status", "sending", "detail", detail));
    }
    json_object_set_new(o, "timeline", tl);
    record_defaults(o, id);
    *out = o;
    return 0;
}

int queue_dead_list(queue *q, int max, json_t **out)
{
    clearerr_q(q);
    *out = NULL;
    cmd c;
    cmd_init(&c);
    cmd_str(&c, "XREVRANGE");
    key_push(&c, q, K_DEAD, NULL);
    cmd_str(&c, "+"); cmd_str(&c, "-");
    cmd_str(&c, "COUNT"); cmd_ll(&c, max > 0 ? max : 1);
    redisReply *r = run(q, &c, "XREVRANGE");
    cmd_free(&c);
    int rc = check(q, r, "listing dead letters");
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return proto_error(q, "XREVRANGE");
    }
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->elements && (max > 0); i++) {
        const redisReply *e = r->element[i];
        if (!is_arr(e, 2) || !rstr(e->element[0]) || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "entry", json_string(e->element[0]->str));
        const redisReply *f = e->element[1];
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            const char *k = rstr(f->element[j]), *v = rstr(f->element[j + 1]);
            if (!k || !v)
                continue;
            if (!strcmp(k, "at"))
                json_object_set_new(o, k, json_integer(strtoll(v, NULL, 10)));
            else
                json_object_set_new(o, k, json_stringn(v, f->element[j + 1]->len));
        }
        json_array_append_new(a, o);
    }
    freeReplyObject(r);
    *out = a;
    return a ? 0 : proto_error(q, "dead_list: out of memory");
}

int queue_dead_retry(queue *q, const char *id, long long now_ms)
{
    clearerr_q(q);
    if (!id || !valid_id(id, strlen(id))) {
        seterr(q, "no message '%s'", id ? id : "");
        return QUEUE_ERR_NOTFOUND;
    }
    cmd c;
    cmd_script(&c, q, QSCRIPT_DEAD_RETRY, 5);
    key_push(&c, q, K_MSG, id);
    key_push(&c, q, K_DEAD, NULL);
    key_push(&c, q, K_LANE_URGENT, NULL);
    key_push(&c, q, K_LANE_BULK, NULL);
    key_push(&c, q, K_UNCERTAIN, NULL);
    cmd_str(&c, id);
    cmd_ll(&c, now_ms);
    redisReply *r = run_script(q, &c, QSCRIPT_DEAD_RETRY);
    cmd_free(&c);
    return code_reply(q, r, "dead_retry");
}

/* The `lag` of group GROUP in an XINFO GROUPS reply; -1 when Redis could
 * not tell (it answers nil after some deletions) or there is no group. */
static long long group_lag(const redisReply *r)
{
    for (size_t g = 0; r && r->type == REDIS_REPLY_ARRAY && g < r->elements; g++) {
        const redisReply *h = r->element[g];
        long long lag = -1;
        int ours = 0;
        for (size_t j = 0; h && h->type == REDIS_REPLY_ARRAY && j + 1 < h->elements; j += 2) {
            const char *f = rstr(h->element[j]);
            if (!f)
                continue;
            if (!strcmp(f, "name"))
                ours = rstr(h->element[j + 1]) && !strcmp(h->element[j + 1]->str, GROUP);
            else if (!strcmp(f, "lag") && h->element[j + 1]->type == REDIS_REPLY_INTEGER)
                lag = h->element[j + 1]->integer;
        }
        if (ours)
            return lag;
    }
    return -1;
}

int queue_stats(queue *q, long long now_ms, json_t **out)
{
    clearerr_q(q);
    *out = NULL;
    enum { PER_LANE = 4, NCMD = PER_LANE * LANE_COUNT + 5 };
    cmd cs[NCMD];
    redisReply *r[NCMD];
    for (int l = 0; l < LANE_COUNT; l++) {
        cmd *c = &cs[l * PER_LANE];
        key_kind k = lane_key((tpl_lane)l);
        cmd_init(&c[0]); cmd_str(&c[0], "XLEN"); key_push(&c[0], q, k, NULL);
        cmd_init(&c[1]); cmd_str(&c[1], "XPENDING"); key_push(&c[1], q, k, NULL);
        cmd_str(&c[1], GROUP);
        cmd_init(&c[2]); cmd_str(&c[2], "XRANGE"); key_push(&c[2], q, k, NULL);
        cmd_str(&c[2], "-"); cmd_str(&c[2], "+"); cmd_str(&c[2], "COUNT"); cmd_str(&c[2], "1");
        /* the group's lag: what it has not read (a missing lane: an error, ignored) */
        cmd_init(&c[3]); cmd_str(&c[3], "XINFO"); cmd_str(&c[3], "GROUPS"); key_push(&c[3], q, k, NULL);
    }
    cmd *c = &cs[PER_LANE * LANE_COUNT];
    cmd_init(&c[0]); cmd_str(&c[0], "ZCARD"); key_push(&c[0], q, K_SCHED, NULL);
    cmd_init(&c[1]); cmd_str(&c[1], "XLEN"); key_push(&c[1], q, K_DEAD, NULL);
    cmd_init(&c[2]); cmd_str(&c[2], "ZCARD"); key_push(&c[2], q, K_UNCERTAIN, NULL);
    cmd_init(&c[3]); cmd_str(&c[3], "HGETALL"); key_push(&c[3], q, K_STATS, NULL);
    char day[16];
    queue_local_day(now_ms, day);
    cmd_init(&c[4]); cmd_str(&c[4], "HGETALL"); key_push(&c[4], q, K_DAY, day);
    int rc = pipeline(q, cs, NULL, NCMD, r, "stats");
    for (int i = 0; i < NCMD; i++) {
        cmd_free(&cs[i]);
        if (i < PER_LANE * LANE_COUNT && i % PER_LANE == 3)
            continue;
        if (r[i] && r[i]->type == REDIS_REPLY_ERROR) {
            if (!rc)
                rc = reply_error(q, r[i], "stats");
        }
    }
    json_t *o = NULL;
    if (rc)
        goto out;
    o = json_object();
    json_t *lanes = json_object();
    json_object_set_new(o, "lanes", lanes);
    for (int l = 0; l < LANE_COUNT; l++) {
        redisReply **lr = &r[l * PER_LANE];
        json_t *lo = json_object();
        long long oldest = 0;
        if (is_arr(lr[2], 1) && is_arr(lr[2]->element[0], 1) && rstr(lr[2]->element[0]->element[0])) {
            long long ms = strtoll(lr[2]->element[0]->element[0]->str, NULL, 10);
            oldest = now_ms > ms ? now_ms - ms : 0;
        }
        /* FINISH leaves entries finished behind one still in flight until
         * that one finishes (scripts.c, TRIM): XLEN counts them, the
         * group's lag (unread) plus its pending entries does not */
        long long pending = is_arr(lr[1], 1) ? rint_(lr[1]->element[0]) : 0;
        long long lag = group_lag(lr[3]);
        json_object_set_new(lo, "depth", json_integer(lag >= 0 ? lag + pending : rint_(lr[0])));
        json_object_set_new(lo, "pending", json_integer(pending));
        json_object_set_new(lo, "oldest_age_ms", json_integer(oldest));
        json_object_set_new(lanes, lane_str((tpl_lane)l), lo);
    }
    redisReply **tr = &r[PER_LANE * LANE_COUNT];
    json_object_set_new(o, "scheduled", json_integer(rint_(tr[0])));
    json_object_set_new(o, "dead", json_integer(rint_(tr[1])));
    json_object_set_new(o, "uncertain", json_integer(rint_(tr[2])));
    json_t *ctr = json_object();
    for (size_t i = 0; tr[3] && tr[3]->type == REDIS_REPLY_ARRAY && i + 1 < tr[3]->elements; i += 2)
        if (rstr(tr[3]->element[i]))
            json_object_set_new(ctr, tr[3]->element[i]->str,
                                json_integer(rint_(tr[3]->element[i + 1])));
    json_object_set_new(o, "counters", ctr);
    json_t *dctr = json_object();
    for (size_t i = 0; tr[4] && tr[4]->type == REDIS_REPLY_ARRAY && i + 1 < tr[4]->elements; i += 2)
        if (rstr(tr[4]->element[i]))
            json_object_set_new(dctr, tr[4]->element[i]->str,
                                json_integer(rint_(tr[4]->element[i + 1])));
    json_object_set_new(o, "today", json_pack("{s:s, s:o}", "day", day, "counters", dctr));
out:
    for (int i = 0; i < NCMD; i++)
        if (r[i])
            freeReplyObject(r[i]);
    *out = o;
    return rc;
}

int queue_inbound_add(queue *q, const char *route, const char *from,
                      const char *text, long long received_ms)
{
    clearerr_q(q);
    cmd c;
    cmd_init(&c);
    cmd_str(&c, "XADD");
    key_push(&c, q, K_INBOUND, NULL);
    cmd_str(&c, "MAXLEN"); cmd_str(&c, "~"); cmd_str(&c, INBOUND_MAXLEN);
    cmd_str(&c, "*");
    cmd_str(&c, "route"); cmd_str(&c, route);
    cmd_str(&c, "from"); cmd_str(&c, from);
    cmd_str(&c, "text"); cmd_str(&c, text);
    cmd_str(&c, "at"); cmd_ll(&c, received_ms);
    redisReply *r = run(q, &c, "XADD inbound");
    cmd_free(&c);
    int rc = check(q, r, "adding an inbound message");
    if (!rc)
        freeReplyObject(r);
    return rc;
}

/* ---- for other files of queue/ (queue/internal.h) ------------------------ */

redisReply *queue_internal_command(queue *q, int argc, const char **argv,
                                   const size_t *lens, const char *what, int *rc)
{
    *rc = 0;
    if (ensure(q) != 0) {
        *rc = QUEUE_ERR_CONN;
        return NULL;
    }
    redisReply *r = raw(q, argc, argv, lens, what);
    int c = check(q, r, what);
    if (c) {
        *rc = c;
        return NULL;
    }
    return r;
}

const char *queue_internal_prefix(const queue *q) { return q->prefix; }

void queue_internal_seterr(queue *q, const char *msg) { seterr(q, "%s", msg); }

void queue_internal_clearerr(queue *q) { clearerr_q(q); }
/* ---- shared with the other files of queue/ (queue/internal.h) ----------- */

const char *queue_int_prefix(const queue *q) { return q->prefix; }

void queue_int_clearerr(queue *q) { clearerr_q(q); }

void queue_int_seterr(queue *q, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    seterr(q, "%s", buf);
}

redisReply *queue_int_command(queue *q, int argc, const char **argv, const size_t *lens,
                              const char *what)
{
    if (ensure(q) != 0)
        return NULL;
    return raw(q, argc, argv, lens, what);
}

int queue_int_pipeline(queue *q, size_t n, const int *argcs, const char *const *const *argvs,
                       const size_t *const *lens, redisReply **out, const char *what)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    if (ensure(q) != 0)
        return QUEUE_ERR_CONN;
    for (size_t i = 0; i < n; i++)
        if (redisAppendCommandArgv(q->c, argcs[i], (const char **)argvs[i], lens[i]) != REDIS_OK)
            return conn_lost(q, what);
    return read_replies(q, n, out, what);
}

int queue_int_check(queue *q, redisReply *r, const char *what)
{
    return check(q, r, what);
}

/* ---- pacing --------------------------------------------------------------- */

int queue_pace(queue *q, const queue_pace_req *p, long long *slot_ms, char *why, size_t whylen)
{
    clearerr_q(q);
    *slot_ms = p->now_ms;
    if (why && whylen)
        why[0] = '\0';
    char day[96];
    snprintf(day, sizeof day, "%s:%s", p->route, p->local_day ? p->local_day : "");
    cmd c;
    cmd_script(&c, q, QSCRIPT_PACE, 4);
    key_push(&c, q, K_PACE, p->route);
    key_push(&c, q, K_CAP, p->to);
    key_push(&c, q, K_ROUTEDAY, day);
    key_push(&c, q, K_PACED, p->msg_id);
    cmd_ll(&c, p->now_ms);
    cmd_ll(&c, p->interval_ms);
    cmd_ll(&c, p->tolerance_ms);
    cmd_ll(&c, p->recipient_hourly);
    cmd_ll(&c, p->recipient_daily);
    cmd_ll(&c, p->route_daily);
    cmd_ll(&c, p->ms_to_midnight);
    cmd_str(&c, p->route);
    cmd_str(&c, p->msg_id);
    cmd_str(&c, p->reserve ? "1" : "0");
    redisReply *r = run_script(q, &c, QSCRIPT_PACE);
    cmd_free(&c);
    int rc = check(q, r, "pace");
    if (rc)
        return rc;
    if (!is_arr(r, 2)) {
        rc = proto_error(q, "pace");
    } else {
        *slot_ms = rint_(r->element[0]);
        if (why && whylen)
            snprintf(why, whylen, "%s", rstr(r->element[1]) ? r->element[1]->str : "");
    }
    freeReplyObject(r);
    return rc;
}

int queue_pace_backoff(queue *q, const char *route, long long until_ms, long long now_ms)
{
    clearerr_q(q);
    cmd c;
    cmd_script(&c, q, QSCRIPT_PACE_BACKOFF, 1);
    key_push(&c, q, K_PACE, route);
    cmd_ll(&c, until_ms);
    cmd_ll(&c, now_ms);
    redisReply *r = run_script(q, &c, QSCRIPT_PACE_BACKOFF);
    cmd_free(&c);
    int rc = check(q, r, "pace_backoff");
    if (!rc)
        freeReplyObject(r);
    return rc;
}

int queue_routes_put(queue *q, const char *instance, const char *route, const char *json)
{
    clearerr_q(q);
    char field[160];
    snprintf(field, sizeof field, "%s/%s", instance, route);
    cmd c;
    cmd_init(&c);
    cmd_str(&c, "HSET");
    key_push(&c, q, K_ROUTES, NULL);
    cmd_str(&c, field);
    cmd_str(&c, json);
    redisReply *r = run(q, &c, "routes_put");
    cmd_free(&c);
    int rc = check(q, r, "routes_put");
    if (!rc)
        freeReplyObject(r);
    return rc;
}

/* A hash whose values are JSON documents, as one JSON object (field ->
 * document). A value that is not JSON is kept as a string when keep_text,
 * else left out. */
static int hash_as_json(queue *q, key_kind k, const char *what, int keep_text, json_t **out)
{
    clearerr_q(q);
    *out = NULL;
    cmd c;
    cmd_init(&c);
    cmd_str(&c, "HGETALL");
    key_push(&c, q, k, NULL);
    redisReply *r = run(q, &c, what);
    cmd_free(&c);
    int rc = check(q, r, what);
    if (rc)
        return rc;
    json_t *o = json_object();
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const char *f = rstr(r->element[i]), *v = rstr(r->element[i + 1]);
        if (!f)
            continue;
        json_t *j = v ? json_loads(v, 0, NULL) : NULL;
        if (!j && keep_text)
            j = json_string(v ? v : "");
        if (j)
            json_object_set_new(o, f, j);
    }
    freeReplyObject(r);
    *out = o;
    return 0;
}

int queue_routes_get(queue *q, json_t **out)
{
    return hash_as_json(q, K_ROUTES, "routes_get", 1, out);
}

/* ---- delivery reports ------------------------------------------------ */

#define UNMATCHED_MAXLEN "100000"

/* "<route>:<to>:<ref>": the suffix of a part's index key. */
static void ref_suffix(char *buf, size_t len, const char *route, const char *to, int ref)
{
    snprintf(buf, len, "%s:%s:%d", route, to, ref);
}

int queue_dlr_index(queue *q, const char *route, const char *to, const char *refs,
                    const char *msg_id, long long window_ms, long long now_ms)
{
    clearerr_q(q);
    if (!refs || !*refs || !route || !to || !msg_id)
        return 0;
    int refv[QUEUE_DLR_MAX_PARTS], n = 0;
    for (const char *p = refs; *p && n < QUEUE_DLR_MAX_PARTS; ) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        refv[n++] = (int)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            break;
    }
    if (n == 0)
        return 0;
    cmd c;
    cmd_script(&c, q, QSCRIPT_DLR_INDEX, n);
    for (int i = 0; i < n; i++) {
        char suf[200];
        ref_suffix(suf, sizeof suf, route, to, refv[i]);
        key_push(&c, q, K_REPORT, suf);
    }
    cmd_str(&c, msg_id);
    cmd_ll(&c, window_ms);
    cmd_ll(&c, now_ms);
    redisReply *r = run_script(q, &c, QSCRIPT_DLR_INDEX);
    cmd_free(&c);
    return code_reply(q, r, "dlr_index");
}

int queue_dlr_report(queue *q, const char *route, const char *to, int ref, int delivered,
                     const char *detail, int keep_unmatched, long long now_ms,
                     queue_dlr_result *res)
{
    clearerr_q(q);
    memset(res, 0, sizeof *res);
    char suf[200];
    ref_suffix(suf, sizeof suf, route, to ? to : "", ref);
    cmd c;
    cmd_init(&c);
    cmd_str(&c, "GET");
    key_push(&c, q, K_REPORT, suf);
    redisReply *r = run(q, &c, "GET ref");
    cmd_free(&c);
    int rc = check(q, r, "looking up a reference");
    if (rc)
        return rc;
    char id[QUEUE_ID_MAX] = "";
    int part = 0;
    if (rstr(r) && sscanf(r->str, "%39s %d", id, &part) == 2 && valid_id(id, strlen(id))) {
        freeReplyObject(r);
        cmd_script(&c, q, QSCRIPT_DLR_REPORT, 4);
        key_push(&c, q, K_MSG, id);
        key_push(&c, q, K_STATS, NULL);
        key_push(&c, q, K_UNCERTAIN, NULL);
        day_key_push(&c, q, now_ms);
        cmd_ll(&c, part);
        cmd_str(&c, delivered > 0 ? "D" : delivered == 0 ? "F" : "P");
        cmd_str(&c, detail ? detail : "");
        cmd_ll(&c, now_ms);
        cmd_str(&c, route);
        cmd_str(&c, id);
        cmd_ll(&c, DAY_TTL_MS);
        r = run_script(q, &c, QSCRIPT_DLR_REPORT);
        cmd_free(&c);
        rc = check(q, r, "dlr_report");
        if (rc)
            return rc;
        if (is_arr(r, 2) && r->element[0]->type == REDIS_REPLY_INTEGER &&
            r->element[0]->integer == 0 && rstr(r->element[1])) {
            res->matched = 1;
            res->part = part;
            snprintf(res->id, sizeof res->id, "%s", id);
            snprintf(res->status, sizeof res->status, "%s", r->element[1]->str);
            freeReplyObject(r);
            return 0;
        }
        freeReplyObject(r);
        /* the record expired or lost the part: keep the report as unmatched */
    } else {
        freeReplyObject(r);
    }
    if (!keep_unmatched)
        return 0;
    cmd cs[2];
    redisReply *out[2];
    char ctr[128];
    snprintf(ctr, sizeof ctr, "report_unmatched:-:%s", route);
    cmd_init(&cs[0]);
    cmd_str(&cs[0], "XADD");
    key_push(&cs[0], q, K_UNMATCHED, NULL);
    cmd_str(&cs[0], "MAXLEN"); cmd_str(&cs[0], "~"); cmd_str(&cs[0], UNMATCHED_MAXLEN);
    cmd_str(&cs[0], "*");
    cmd_str(&cs[0], "route"); cmd_str(&cs[0], route);
    cmd_str(&cs[0], "to"); cmd_str(&cs[0], to ? to : "");
    cmd_str(&cs[0], "ref"); cmd_ll(&cs[0], ref);
    cmd_str(&cs[0], "status"); cmd_str(&cs[0], delivered > 0 ? "delivered" : delivered == 0 ? "failed" : "pending");
    cmd_str(&cs[0], "detail"); cmd_str(&cs[0], detail ? detail : "");
    cmd_str(&cs[0], "at"); cmd_ll(&cs[0], now_ms);
    cmd_init(&cs[1]);
    cmd_str(&cs[1], "HINCRBY");
    key_push(&cs[1], q, K_STATS, NULL);
    cmd_str(&cs[1], ctr);
    cmd_str(&cs[1], "1");
    rc = pipeline(q, cs, NULL, 2, out, "unmatched report");
    for (int i = 0; i < 2; i++) {
        cmd_free(&cs[i]);
        if (out[i] && out[i]->type == REDIS_REPLY_ERROR && !rc)
            rc = reply_error(q, out[i], "unmatched report");
        if (out[i])
            freeReplyObject(out[i]);
    }
    return rc;
}

/* ---- inbound, once ---------------------------------------------------- */

/* 128 bits of FNV-1a (two seeds) as 32 hex digits: the identity of an
 * inbound message, short enough for a key, without a crypto dependency. */
static void identity_hash(const char *s, char out[33])
{
    unsigned long long h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h1 = (h1 ^ *p) * 0x100000001b3ULL;
        h2 = (h2 ^ *p) * 0x100000001b3ULL;
        h2 ^= h2 >> 29;
    }
    snprintf(out, 33, "%016llx%016llx", h1, h2);
}

/* ---- devices ----------------------------------------------------------- */

int queue_modem_publish(queue *q, const char *id, const char *json, const char *stale_id)
{
    clearerr_q(q);
    cmd cs[2];
    redisReply *out[2];
    int n = 0;
    cmd_init(&cs[n]);
    cmd_str(&cs[n], "HSET");
    key_push(&cs[n], q, K_MODEMS, NULL);
    cmd_str(&cs[n], id);
    cmd_str(&cs[n], json);
    n++;
    if (stale_id && *stale_id && strcmp(stale_id, id) != 0) {
        cmd_init(&cs[n]);
        cmd_str(&cs[n], "HDEL");
        key_push(&cs[n], q, K_MODEMS, NULL);
        cmd_str(&cs[n], stale_id);
        n++;
    }
    int rc = pipeline(q, cs, NULL, (size_t)n, out, "modem publish");
    for (int i = 0; i < n; i++) {
        cmd_free(&cs[i]);
        if (out[i] && out[i]->type == REDIS_REPLY_ERROR && !rc)
            rc = reply_error(q, out[i], "modem publish");
        if (out[i])
            freeReplyObject(out[i]);
    }
    return rc;
}

int queue_modem_list(queue *q, json_t **out)
{
    return hash_as_json(q, K_MODEMS, "listing modems", 0, out);
}

/* ---- inbound, part by part ---------------------------------------------- */

int queue_inbound_part(queue *q, const char *route, const char *from, const char *text,
                       long long received_ms, const char *identity, const char *concat_key,
                       int part, int parts, long long window_ms, long long timeout_ms,
                       long long now_ms, int *duplicate, int *stored)
{
    clearerr_q(q);
    *duplicate = *stored = 0;
    char h[33], member[33];
    identity_hash(identity ? identity : "", h);
    identity_hash(concat_key ? concat_key : "", member);
    cmd c;
    cmd_script(&c, q, QSCRIPT_INBOUND_PART, 4);
    key_push(&c, q, K_INSEEN, h);
    key_push(&c, q, K_INPARTS, member);
    key_push(&c, q, K_INDUE, NULL);
    key_push(&c, q, K_INBOUND, NULL);
    cmd_ll(&c, window_ms);
    cmd_str(&c, INBOUND_MAXLEN);
    cmd_str(&c, route);
    cmd_str(&c, from);
    cmd_str(&c, text);
    cmd_ll(&c, received_ms);
    cmd_ll(&c, part);
    cmd_ll(&c, parts < 1 ? 1 : parts);
    cmd_ll(&c, now_ms + timeout_ms);
    cmd_str(&c, member);
    redisReply *r = run_script(q, &c, QSCRIPT_INBOUND_PART);
    cmd_free(&c);
    int rc = check(q, r, "inbound_part");
    if (rc)
        return rc;
    if (!is_arr(r, 2) || r->element[0]->type != REDIS_REPLY_INTEGER) {
        rc = proto_error(q, "inbound_part");
    } else {
        *duplicate = r->element[0]->integer == 1;
        *stored = rstr(r->element[1]) && strcmp(r->element[1]->str, "stored") == 0;
    }
    freeReplyObject(r);
    return rc;
}

int queue_inbound_sweep(queue *q, long long now_ms, int *flushed)
{
    clearerr_q(q);
    *flushed = 0;
    cmd c;
    cmd_init(&c);
    cmd_str(&c, "ZRANGEBYSCORE");
    key_push(&c, q, K_INDUE, NULL);
    cmd_str(&c, "-inf");
    cmd_ll(&c, now_ms);
    cmd_str(&c, "LIMIT"); cmd_str(&c, "0"); cmd_str(&c, "50");
    redisReply *r = run(q, &c, "ZRANGEBYSCORE inparts:due");
    cmd_free(&c);
    int rc = check(q, r, "inbound sweep");
    if (rc)
        return rc;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && rc == 0; i++) {
        if (!rstr(r->element[i]))
            continue;
        cmd_script(&c, q, QSCRIPT_INBOUND_FLUSH, 3);
        key_push(&c, q, K_INPARTS, r->element[i]->str);
        key_push(&c, q, K_INDUE, NULL);
        key_push(&c, q, K_INBOUND, NULL);
        cmd_str(&c, r->element[i]->str);
        cmd_str(&c, INBOUND_MAXLEN);
        redisReply *f = run_script(q, &c, QSCRIPT_INBOUND_FLUSH);
        cmd_free(&c);
        rc = check(q, f, "inbound flush");
        if (rc == 0) {
            if (f->type == REDIS_REPLY_INTEGER && f->integer == 1)
                (*flushed)++;
            freeReplyObject(f);
        }
    }
    freeReplyObject(r);
    return rc;
}
