/* daemon.c -- the running gateway.
 *
 * Threads:
 *   main         waits for signals: SIGTERM/SIGINT stop, SIGHUP reloads templates
 *   worker[i]    reads its lanes (urgent first), marks `sending`, hands the
 *                message to a route, records the outcome; consumer name
 *                "<instance>/w<i>" so a restarted instance recovers its own
 *   housekeeper  promotes due scheduled sends and retries, refreshes the
 *                instance lease, reclaims entries of workers that died
 *   inbound      polls routes that receive, into the inbound stream
 * Each thread has its own Redis connection (queue/). Drivers may run their
 * own threads (one per modem). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "gateway/daemon.h"
#include "gateway/log.h"
#include "gateway/phone.h"
#include "gateway/service.h"

#define URGENT_CHECK_MS 200     /* a worker busy with bulk looks at urgent this often */
#define READ_BLOCK_MS 1000      /* how long an idle worker blocks: bounds stop latency */
#define INBOUND_PERIOD_MS 1000
#define DLR_WINDOW_MS (72LL * 3600 * 1000)      /* a status report may come this late */
#define INBOUND_SEEN_MS (7LL * 24 * 3600 * 1000) /* copies of an inbound SMS within: one */

typedef struct gw_route_rt {
    prov_route r;
    int open;
    pthread_mutex_t mu;
    long long next_free_ms;     /* rate limit: earliest time of the next send */
    atomic_int inflight;        /* sends in progress: a pool fills idle routes first */
    int fail_streak;            /* transient failures in a row (under mu) */
    long long cool_until_ms;    /* after one, other routes come first until then */
} gw_route_rt;

typedef struct gw_daemon gw_daemon;

typedef struct gw_worker {
    gw_daemon *d;
    int index;
    char consumer[96];
    queue *q;
    unsigned seed;
    pthread_t thread;
    atomic_int done;
} gw_worker;

struct gw_daemon {
    gw_config *cfg;
    catalog *cat;
    pthread_rwlock_t cat_lock;
    gw_route_rt routes[GW_MAX_ROUTES];
    int nroutes;
    atomic_uint rr;
    atomic_int stop;
    char token[320];
    gw_worker *workers;
    pthread_t housekeeper, inbound;
    int have_inbound;
};

static long long now_ms(void) { return svc_now_ms(); }

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

long long gw_backoff_ms(const gw_config *cfg, int attempts, unsigned *seed)
{
    long long d = cfg->backoff_base_ms;
    for (int i = 1; i < attempts && d < cfg->backoff_max_ms; i++)
        d *= 2;
    if (d > cfg->backoff_max_ms)
        d = cfg->backoff_max_ms;
    if (cfg->jitter_percent > 0)
        d += (long long)((double)d * cfg->jitter_percent / 100.0
                         * ((double)rand_r(seed) / RAND_MAX));
    return d;
}

/* Connects with bounded backoff while the gateway runs; NULL when stopping. */
static queue *connect_retry(gw_daemon *d, const char *who)
{
    long long delay = 100;
    char err[256];
    for (;;) {
        queue *q = queue_connect(&d->cfg->queue, err, sizeof err);
        if (q)
            return q;
        gw_log(LOG_WARN, who, "redis: %s; retrying in %lld ms", err, delay);
        for (long long waited = 0; waited < delay; waited += 100) {
            if (atomic_load(&d->stop))
                return NULL;
            sleep_ms(100);
        }
        if (delay < 5000)
            delay *= 2;
    }
}

/* ---- routes ---------------------------------------------------------- */

static int route_up(gw_route_rt *rt)
{
    if (!rt->r.driver->health)
        return 1;
    prov_health h = { .up = 1, .signal_percent = -1 };
    rt->r.driver->health(&rt->r, &h);
    return h.up;
}

#define COOL_MIN_MS 1000
#define COOL_MAX_MS 30000

/* A route that failed transiently (a modem answering +CMS ERROR, a provider
 * answering 5xx) is passed over while others are up, for 1 s after the
 * first failure, doubling to 30 s: its retries go elsewhere instead of
 * using up their attempts on it. A success clears it. */
static void note_outcome(gw_route_rt *rt, prov_status st)
{
    pthread_mutex_lock(&rt->mu);
    if (st == PROV_OK) {
        rt->fail_streak = 0;
        rt->cool_until_ms = 0;
    } else if (st == PROV_TRANSIENT || st == PROV_THROTTLED || st == PROV_UNCERTAIN) {
        long long cool = COOL_MIN_MS;
        for (int i = 0; i < rt->fail_streak && cool < COOL_MAX_MS; i++)
            cool *= 2;
        rt->fail_streak++;
        rt->cool_until_ms = mono_ms() + (cool > COOL_MAX_MS ? COOL_MAX_MS : cool);
    }
    pthread_mutex_unlock(&rt->mu);
}

/* Picks a route for `family` and reserves its next rate-limit slot: among
 * the routes up and not cooling down after a failure (or all when none
 * is), the one with the fewest sends in progress (a modem sends one
 * message at a time: an idle one is never left idle while another queues),
 * then the one free soonest, ties broken round-robin so a pool shares the
 * load. Returns NULL when no route
 * serves the family. *slot_ms gets when the send may start. */
static gw_route_rt *route_pick(gw_daemon *d, tpl_family family, long long *slot_ms)
{
    gw_route_rt *best = NULL;
    long long best_free = 0;
    int best_up = 0, best_busy = 0;
    unsigned start = atomic_fetch_add(&d->rr, 1);
    for (int k = 0; k < d->nroutes; k++) {
        gw_route_rt *rt = &d->routes[(start + (unsigned)k) % (unsigned)d->nroutes];
        if (!rt->open || !(rt->r.families & (1u << family)))
            continue;
        int up = route_up(rt);
        int busy = atomic_load(&rt->inflight);
        pthread_mutex_lock(&rt->mu);
        long long nf = rt->next_free_ms;
        if (rt->cool_until_ms > mono_ms())
            up = 0;                 /* it just failed: the others first */
        pthread_mutex_unlock(&rt->mu);
        if (!best || (up && !best_up) ||
            (up == best_up && (busy < best_busy || (busy == best_busy && nf < best_free)))) {
            best = rt;
            best_free = nf;
            best_up = up;
            best_busy = busy;
        }
    }
    if (!best)
        return NULL;
    atomic_fetch_add(&best->inflight, 1);     /* the caller gives it back */
    pthread_mutex_lock(&best->mu);
    long long now = mono_ms();
    long long slot = best->next_free_ms > now ? best->next_free_ms : now;
    if (best->r.rate_per_minute > 0)
        best->next_free_ms = slot + 60000 / best->r.rate_per_minute;
    pthread_mutex_unlock(&best->mu);
    *slot_ms = slot;
    return best;
}

static void routes_close(gw_daemon *d)
{
    for (int i = 0; i < d->nroutes; i++) {
        if (d->routes[i].open)
            d->routes[i].r.driver->close(&d->routes[i].r);
        d->routes[i].open = 0;
        pthread_mutex_destroy(&d->routes[i].mu);
    }
}

static int routes_open(gw_daemon *d, char *err, size_t errlen)
{
    for (int i = 0; i < d->cfg->nroutes; i++) {
        const gw_route_cfg *rc = &d->cfg->routes[i];
        gw_route_rt *rt = &d->routes[i];
        memset(rt, 0, sizeof *rt);
        pthread_mutex_init(&rt->mu, NULL);
        snprintf(rt->r.name, sizeof rt->r.name, "%s", rc->name);
        rt->r.driver = rc->driver;
        rt->r.families = rc->families;
        rt->r.rate_per_minute = rc->rate_per_minute;
        rt->r.send_timeout_ms = rc->send_timeout_ms;
        d->nroutes = i + 1;
        if (rc->driver->open(&rt->r, rc->opts, err, errlen) < 0)
            return -1;
        rt->open = 1;
        gw_log(LOG_INFO, rt->r.name, "route open: driver %s, %d/min%s", rc->driver->name,
               rc->rate_per_minute, rc->rate_per_minute ? "" : " (unlimited)");
    }
    return 0;
}

/* ---- workers --------------------------------------------------------- */

/* Records an outcome, retrying on a broken connection: the message is ours
 * and `sending` until this lands (or a reclaimer applies the lane policy). */
static void finish(gw_worker *w, const queue_entry *e, const char *id, const queue_outcome *o)
{
    long long delay = 50;
    for (int tries = 0;; tries++) {
        if (!w->q)
            w->q = connect_retry(w->d, w->consumer);
        if (!w->q)
            return;
        int rc = queue_finish(w->q, e, id, o);
        if (rc != QUEUE_ERR_CONN) {
            if (rc < 0)
                gw_log(LOG_ERROR, w->consumer, "recording %s of %s failed: %s",
                       o->kind == QUEUE_OUT_SENT ? "sent" : "outcome", id, queue_errstr(w->q));
            return;
        }
        gw_log(LOG_WARN, w->consumer, "recording %s: redis: %s; retrying", id, queue_errstr(w->q));
        queue_free(w->q);
        w->q = NULL;
        if (atomic_load(&w->d->stop) && tries > 20)
            return;
        sleep_ms(delay);
        if (delay < 2000)
            delay *= 2;
    }
}

static void process_entry(gw_worker *w, const queue_entry *e)
{
    gw_daemon *d = w->d;
    gw_config *cfg = d->cfg;
    queue_job job;
    memset(&job, 0, sizeof job);
    long long max_timeout = 0;
    for (int i = 0; i < d->nroutes; i++)
        if (d->routes[i].r.send_timeout_ms > max_timeout)
            max_timeout = d->routes[i].r.send_timeout_ms;
    /* The lease covers the longest send plus the time to record it. */
    int rc = queue_begin_send(w->q, e, w->consumer, now_ms(), max_timeout + 30000, &job);
    if (rc == QUEUE_BEGIN_SKIP)
        return;
    if (rc == QUEUE_BEGIN_DEAD) {
        gw_log(LOG_WARN, w->consumer, "entry %s malformed: dead-lettered", e->entry_id);
        return;
    }
    if (rc < 0) {
        gw_log(LOG_WARN, w->consumer, "begin %s: %s", e->msg_id, queue_errstr(w->q));
        if (rc == QUEUE_ERR_CONN) {
            queue_free(w->q);
            w->q = NULL;
        }
        return;
    }

    char masked[PHONE_MAX];
    phone_mask(job.to, masked);
    queue_outcome o = { .now_ms = 0 };
    int fam = family_parse(job.family);
    long long slot = 0;
    gw_route_rt *rt = fam >= 0 ? route_pick(d, (tpl_family)fam, &slot) : NULL;
    if (!rt) {
        o.kind = job.attempts >= cfg->max_attempts ? QUEUE_OUT_DEAD : QUEUE_OUT_RETRY;
        o.route = "";
        o.detail = "no route serves this family";
        o.retry_at_ms = now_ms() + gw_backoff_ms(cfg, job.attempts, &w->seed);
        gw_log(LOG_ERROR, w->consumer, "%s: no route serves family %s", job.id, job.family);
        goto record;
    }
    while (mono_ms() < slot) {
        if (atomic_load(&d->stop)) {
            /* stopping before the send began: back in line at once */
            o.kind = QUEUE_OUT_RETRY;
            o.route = rt->r.name;
            o.detail = "gateway stopping before the send began";
            o.retry_at_ms = now_ms();
            atomic_fetch_sub(&rt->inflight, 1);
            goto record;
        }
        long long left = slot - mono_ms();
        sleep_ms(left < 100 ? (left > 0 ? left : 0) : 100);
    }

    prov_msg m = {
        .id = job.id, .to = job.to, .text = job.text, .encoding = job.encoding,
        .parts = job.parts, .family = job.family, .template_name = job.template_name,
        .provider_code = job.provider_code, .vars_json = job.vars_json,
        .attempt = job.attempts,
    };
    prov_result res;
    memset(&res, 0, sizeof res);
    gw_log(LOG_DEBUG, rt->r.name, "sending %s to %s: %s", job.id, masked, job.text);
    long long t0 = mono_ms();
    rt->r.driver->send(&rt->r, &m, &res);
    atomic_fetch_sub(&rt->inflight, 1);       /* taken by route_pick */
    note_outcome(rt, res.status);
    long long took = mono_ms() - t0;
    o.route = rt->r.name;
    switch (res.status) {
    case PROV_OK:
        o.kind = QUEUE_OUT_SENT;
        o.refs = res.refs;
        gw_log(LOG_INFO, rt->r.name, "sent %s to %s: %s, %d part%s, %s, refs %s (%lld ms)",
               job.id, masked, job.template_name, job.parts, job.parts == 1 ? "" : "s",
               job.encoding, res.refs, took);
        break;
    case PROV_PERMANENT:
        o.kind = QUEUE_OUT_DEAD;
        o.detail = res.error[0] ? res.error : "permanent failure";
        gw_log(LOG_WARN, rt->r.name, "failed %s to %s permanently: %s", job.id, masked, o.detail);
        break;
    case PROV_UNCERTAIN:
        if (cfg->policy[job.lane] == RECLAIM_HOLD) {
            o.kind = QUEUE_OUT_UNCERTAIN;
            o.detail = res.error[0] ? res.error : "perhaps sent";
            gw_log(LOG_WARN, rt->r.name, "%s to %s perhaps sent (%s): held as uncertain",
                   job.id, masked, o.detail);
            break;
        }
        /* the lane's policy is to resend */
        __attribute__((fallthrough));
    case PROV_TRANSIENT:
    case PROV_THROTTLED:
    default:
        o.detail = res.error[0] ? res.error : prov_status_name(res.status);
        if (job.attempts >= cfg->max_attempts) {
            o.kind = QUEUE_OUT_DEAD;
            gw_log(LOG_WARN, rt->r.name, "failed %s to %s: %s; %d attempts used, dead",
                   job.id, masked, o.detail, job.attempts);
        } else {
            o.kind = QUEUE_OUT_RETRY;
            o.retry_at_ms = now_ms() + gw_backoff_ms(cfg, job.attempts, &w->seed);
            gw_log(LOG_WARN, rt->r.name, "failed %s to %s: %s; attempt %d of %d, retry in %lld ms",
                   job.id, masked, o.detail, job.attempts, cfg->max_attempts,
                   o.retry_at_ms - now_ms());
        }
        break;
    }
record:
    o.now_ms = now_ms();
    char detail[400];
    if (o.kind == QUEUE_OUT_DEAD && job.attempts >= cfg->max_attempts && res.status != PROV_PERMANENT
        && o.detail) {
        snprintf(detail, sizeof detail, "%s (after %d attempts)", o.detail, job.attempts);
        o.detail = detail;
    }
    finish(w, e, job.id, &o);
    /* Index the parts' references so status reports find the message. */
    if (o.kind == QUEUE_OUT_SENT && rt && (rt->r.driver->caps & PROV_CAP_DLR) && res.refs[0] &&
        w->q && queue_dlr_index(w->q, rt->r.name, job.to, res.refs, job.id, DLR_WINDOW_MS,
                                now_ms()) != 0)
        gw_log(LOG_WARN, rt->r.name, "indexing the references of %s: %s", job.id,
               queue_errstr(w->q));
    queue_job_clear(&job);
}

static void *worker_main(void *arg)
{
    gw_worker *w = arg;
    gw_daemon *d = w->d;
    int batch = d->cfg->batch;
    queue_entry *buf = calloc((size_t)batch * 2, sizeof *buf);
    queue_entry *urgent = buf + batch;
    long long conn_delay = 100;

    while (buf && !atomic_load(&d->stop)) {
        if (!w->q && !(w->q = connect_retry(d, w->consumer)))
            break;
        int n = 0;
        int rc = queue_read(w->q, w->consumer, batch, READ_BLOCK_MS, buf, &n);
        if (rc < 0) {
            gw_log(LOG_WARN, w->consumer, "read: %s", queue_errstr(w->q));
            queue_free(w->q);
            w->q = NULL;
            sleep_ms(conn_delay);
            if (conn_delay < 5000)
                conn_delay *= 2;
            continue;
        }
        conn_delay = 100;
        long long last_urgent = mono_ms();
        for (int i = 0; i < n; i++) {
            if (atomic_load(&d->stop) || !w->q) {
                if (w->q)
                    queue_release(w->q, buf + i, (size_t)(n - i), now_ms());
                break;
            }
            /* Bulk in hand must not hold an urgent notice back. */
            if (buf[i].lane == LANE_BULK && mono_ms() - last_urgent >= URGENT_CHECK_MS) {
                int nu = 0;
                if (queue_read_lane(w->q, LANE_URGENT, w->consumer, batch, 0, urgent, &nu) == 0)
                    for (int j = 0; j < nu; j++) {
                        if (w->q)
                            process_entry(w, &urgent[j]);
                    }
                last_urgent = mono_ms();
                if (!w->q)
                    continue;
            }
            process_entry(w, &buf[i]);
        }
    }
    free(buf);
    atomic_store(&w->done, 1);
    return NULL;
}

/* ---- housekeeping ---------------------------------------------------- */

/* How long an instance lease lasts without a refresh. */
static long long lease_ttl_ms(const gw_config *cfg)
{
    long long ttl = cfg->housekeeping_interval_ms * 20LL;
    return ttl < 10000 ? 10000 : ttl;
}

/* A lease token is "host/pid/random". True when the token names a process
 * on this host that no longer exists: a gateway killed (kill -9, power cut
 * of the process) whose lease has not yet expired. */
static int holder_is_dead_here(const char *holder)
{
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        return 0;
    host[sizeof host - 1] = '\0';
    size_t hl = strlen(host);
    if (strncmp(holder, host, hl) != 0 || holder[hl] != '/')
        return 0;
    char *end;
    long pid = strtol(holder + hl + 1, &end, 10);
    if (end == holder + hl + 1 || *end != '/' || pid <= 0 || pid == (long)getpid())
        return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Takes the instance lease at start. A holder that died on this host is
 * taken over at once; one elsewhere is waited for until its lease expires
 * (a live gateway refreshes it, so a true duplicate is still refused).
 * Returns 0 taken, 1 refused, 2 stop requested while waiting, -1 Redis. */
static int take_lease(gw_daemon *d, queue *q, const sigset_t *sigs)
{
    const char *inst = d->cfg->instance;
    long long ttl = lease_ttl_ms(d->cfg);
    long long deadline = mono_ms() + ttl + 1000;
    int logged = 0;
    for (;;) {
        char holder[sizeof d->token];
        int rc = queue_instance_lease(q, inst, d->token, ttl, NULL);
        if (rc != 1)
            return rc == 0 ? 0 : -1;
        if (queue_instance_holder(q, inst, holder, sizeof holder) != 0)
            return -1;
        if (holder[0] && holder_is_dead_here(holder)) {
            rc = queue_instance_lease(q, inst, d->token, ttl, holder);
            if (rc == 0) {
                gw_log(LOG_WARN, "gateway", "instance '%s': took over the lease of a gateway that died "
                       "(pid %s)", inst, strchr(holder, '/') + 1);
                return 0;
            }
            if (rc != 1)
                return -1;
            continue;
        }
        if (mono_ms() >= deadline)
            return 1;
        if (!logged) {
            gw_log(LOG_WARN, "gateway", "instance '%s' is leased by another process; waiting up to %lld s "
                   "for its lease to expire", inst, (ttl + 999) / 1000);
            logged = 1;
        }
        struct timespec ts = { 0, 500 * 1000000L };
        int sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            return 2;
    }
}

#define PUBLISH_EVERY_MS 2000

/* Publishes each route's health (modems: IMEI, signal, registration,
 * counters) for `herald modems`. */
static void publish_health(gw_daemon *d, queue *q)
{
    for (int i = 0; i < d->nroutes; i++) {
        gw_route_rt *rt = &d->routes[i];
        if (!rt->open || !rt->r.driver->health)
            continue;
        prov_health h = { .up = 1, .signal_percent = -1, .registered = -1 };
        rt->r.driver->health(&rt->r, &h);
        char byroute[96];
        snprintf(byroute, sizeof byroute, "route:%s", rt->r.name);
        const char *id = h.device_id[0] ? h.device_id : byroute;
        json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:s, s:i, s:s, s:s, s:i, s:I, s:I, s:I, s:s, s:I}",
                              "id", id, "route", rt->r.name, "instance", d->cfg->instance,
                              "up", h.up, "state", h.state, "signal", h.signal_percent,
                              "imsi", h.imsi, "operator", h.operator_name,
                              "registered", h.registered, "sent", (json_int_t)h.sent,
                              "failed", (json_int_t)h.failed, "received", (json_int_t)h.received,
                              "last_error", h.last_error, "at", (json_int_t)now_ms());
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (text && queue_modem_publish(q, id, text, h.device_id[0] ? byroute : NULL) != 0)
            gw_log(LOG_DEBUG, "housekeeper", "publishing %s: %s", rt->r.name, queue_errstr(q));
        free(text);
        json_decref(o);
    }
}

static void *housekeeper_main(void *arg)
{
    gw_daemon *d = arg;
    gw_config *cfg = d->cfg;
    queue *q = NULL;
    long long last_reclaim = 0, last_lease = 0, last_publish = 0;
    long long lease_ttl = lease_ttl_ms(cfg);
    while (!atomic_load(&d->stop)) {
        if (!q && !(q = connect_retry(d, "housekeeper")))
            break;
        long long now = now_ms();
        int promoted = 0, rc = 0;
        do {
            rc = queue_promote_due(q, now, 500, &promoted);
        } while (rc == 0 && promoted == 500 && !atomic_load(&d->stop));
        if (rc == 0 && now - last_lease >= lease_ttl / 4) {
            rc = queue_instance_lease(q, cfg->instance, d->token, lease_ttl, NULL);
            if (rc == 1)
                gw_log(LOG_ERROR, "housekeeper", "instance name '%s' is now held by another process: "
                       "two gateways must not share gateway.instance", cfg->instance);
            if (rc >= 0)
                last_lease = now;
        }
        if (rc >= 0 && now - last_reclaim >= cfg->visibility_timeout_ms / 4) {
            for (int lane = 0; lane < LANE_COUNT && rc >= 0; lane++) {
                int requeued = 0, held = 0;
                rc = queue_reclaim(q, (tpl_lane)lane, cfg->visibility_timeout_ms, NULL,
                                   cfg->policy[lane], now, &requeued, &held);
                if (requeued || held)
                    gw_log(LOG_WARN, "housekeeper", "reclaimed from silent workers in %s: %d requeued, %d held as uncertain",
                           lane_name((tpl_lane)lane), requeued, held);
            }
            last_reclaim = now;
        }
        if (rc >= 0 && now - last_publish >= PUBLISH_EVERY_MS) {
            publish_health(d, q);
            last_publish = now;
        }
        if (rc < 0) {
            gw_log(LOG_WARN, "housekeeper", "redis: %s", queue_errstr(q));
            queue_free(q);
            q = NULL;
            sleep_ms(500);
            continue;
        }
        sleep_ms(cfg->housekeeping_interval_ms);
    }
    if (q)
        queue_instance_release(q, cfg->instance, d->token);
    queue_free(q);
    return NULL;
}

/* ---- inbound --------------------------------------------------------- */

typedef struct inbound_ctx {
    gw_daemon *d;
    queue *q;
} inbound_ctx;

/* Stores one inbound message (once per identity). 0 when stored or known. */
static int on_message(const char *route, const prov_inbound *m, void *ud)
{
    inbound_ctx *ic = ud;
    char masked[PHONE_MAX];
    phone_mask(m->from, masked);
    gw_log(LOG_DEBUG, route, "received text: %s", m->text);
    for (int tries = 0; tries < 50 && !atomic_load(&ic->d->stop); tries++) {
        if (!ic->q && !(ic->q = connect_retry(ic->d, "inbound")))
            break;
        int dup = 0, stored = 1, rc;
        if (m->identity)
            rc = queue_inbound_part(ic->q, route, m->from, m->text, m->received_ms,
                                    m->identity, m->concat_key, m->part, m->parts,
                                    INBOUND_SEEN_MS, m->part_timeout_ms, now_ms(), &dup, &stored);
        else
            rc = queue_inbound_add(ic->q, route, m->from, m->text, m->received_ms);
        if (rc == 0) {
            if (m->parts > 1)
                gw_log(LOG_INFO, route, "%s part %d of %d from %s (%zu bytes)%s",
                       dup ? "already had" : "received", m->part, m->parts, masked,
                       strlen(m->text), stored ? ": message complete" : "");
            else
                gw_log(LOG_INFO, route, "%s a message from %s (%zu bytes)",
                       dup ? "already had" : "received", masked, strlen(m->text));
            return 0;
        }
        gw_log(LOG_WARN, route, "storing an inbound message: %s", queue_errstr(ic->q));
        queue_free(ic->q);
        ic->q = NULL;
        sleep_ms(200);
    }
    gw_log(LOG_ERROR, route, "an inbound message from %s could not be stored", masked);
    return -1;
}

/* Applies a status report to the part it belongs to. Returns -1 to have
 * the driver offer it again: not stored, or matching nothing yet (the
 * worker that sent the part may not have indexed it) and not last_chance. */
static int on_report(const char *route, const prov_report *r, void *ud)
{
    inbound_ctx *ic = ud;
    const char *word = r->delivered > 0 ? "delivered" : r->delivered == 0 ? "failed" : "pending";
    for (int tries = 0; tries < 50 && !atomic_load(&ic->d->stop); tries++) {
        if (!ic->q && !(ic->q = connect_retry(ic->d, "inbound")))
            break;
        queue_dlr_result res;
        int rc = queue_dlr_report(ic->q, route, r->to ? r->to : "", r->ref, r->delivered,
                                  r->detail, r->last_chance, now_ms(), &res);
        if (rc == 0) {
            if (res.matched)
                gw_log(LOG_INFO, route, "status report for reference %d: %s, part %d of %s (%s)",
                       r->ref, word, res.part, res.id, res.status);
            else if (r->last_chance)
                gw_log(LOG_WARN, route, "status report for reference %d (%s) matches no message: "
                       "kept as unmatched", r->ref, word);
            return res.matched || r->last_chance ? 0 : -1;
        }
        gw_log(LOG_WARN, route, "storing a status report: %s", queue_errstr(ic->q));
        queue_free(ic->q);
        ic->q = NULL;
        sleep_ms(200);
    }
    return -1;
}

static void *inbound_main(void *arg)
{
    gw_daemon *d = arg;
    inbound_ctx ic = { d, NULL };
    prov_inbound_cb cb = { on_message, on_report, &ic };
    while (!atomic_load(&d->stop)) {
        for (int i = 0; i < d->nroutes && !atomic_load(&d->stop); i++) {
            gw_route_rt *rt = &d->routes[i];
            if (rt->open && rt->r.driver->poll_inbound)
                rt->r.driver->poll_inbound(&rt->r, &cb);
        }
        /* multipart replies whose missing parts did not come in time */
        int flushed = 0;
        if (!ic.q)
            ic.q = connect_retry(d, "inbound");
        if (ic.q && queue_inbound_sweep(ic.q, now_ms(), &flushed) != 0) {
            queue_free(ic.q);
            ic.q = NULL;
        } else if (flushed) {
            gw_log(LOG_WARN, "inbound", "%d multipart message(s) stored with parts missing", flushed);
        }
        for (int t = 0; t < INBOUND_PERIOD_MS / 100 && !atomic_load(&d->stop); t++)
            sleep_ms(100);
    }
    queue_free(ic.q);
    return NULL;
}

/* ---- templates ------------------------------------------------------- */

static void reload_templates(gw_daemon *d)
{
    char err[512];
    catalog *c = catalog_load_dir(d->cfg->templates_dir, err, sizeof err);
    if (!c) {
        gw_log(LOG_ERROR, "templates", "reload failed, keeping the %zu templates in use: %s",
               catalog_count(d->cat), err);
        return;
    }
    pthread_rwlock_wrlock(&d->cat_lock);
    catalog *old = d->cat;
    d->cat = c;
    pthread_rwlock_unlock(&d->cat_lock);
    catalog_free(old);
    gw_log(LOG_INFO, "templates", "reloaded %zu templates from %s", catalog_count(c),
           d->cfg->templates_dir);
}

/* ---- start and stop -------------------------------------------------- */

static int recover_own(gw_daemon *d, queue *q)
{
    /* The lease says no other live process uses this instance name, so
     * whatever its consumers still hold was left by a crash: apply the
     * lanes' policies now instead of waiting for the visibility timeout. */
    char prefix[80];
    snprintf(prefix, sizeof prefix, "%s/", d->cfg->instance);
    long long far = now_ms() + 3650LL * 86400000;   /* every lease has expired */
    for (int lane = 0; lane < LANE_COUNT; lane++) {
        int requeued = 0, held = 0;
        if (queue_reclaim(q, (tpl_lane)lane, 0, prefix, d->cfg->policy[lane], far,
                          &requeued, &held) < 0)
            return -1;
        if (requeued || held)
            gw_log(LOG_WARN, "gateway", "recovered %s work left by a previous run: %d requeued, %d held as uncertain (policy %s)",
                   lane_name((tpl_lane)lane), requeued, held,
                   d->cfg->policy[lane] == RECLAIM_RESEND ? "resend" : "hold");
    }
    return 0;
}

int gw_daemon_run(gw_config *cfg, const gw_run_opts *o)
{
    gw_daemon dd, *d = &dd;
    memset(d, 0, sizeof *d);
    d->cfg = cfg;
    char err[512];
    int code = EXIT_FAILURE_OTHER;
    gw_log_level = cfg->log_level;
    pthread_rwlock_init(&d->cat_lock, NULL);

    unsigned char rnd[8];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        memset(rnd, 0, sizeof rnd);
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)     /* "/" separates the fields */
        if (*p == '/')
            *p = '_';
    snprintf(d->token, sizeof d->token, "%s/%d/%02x%02x%02x%02x%02x%02x%02x%02x", host, (int)getpid(),
             rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);

    /* Signals go to the main thread only. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    d->cat = catalog_load_dir(cfg->templates_dir, err, sizeof err);
    if (!d->cat) {
        gw_log(LOG_ERROR, "templates", "%s", err);
        code = EXIT_BAD_INPUT;
        goto out;
    }
    gw_log(LOG_INFO, "gateway", "%zu templates from %s", catalog_count(d->cat), cfg->templates_dir);

    queue *q = queue_connect(&cfg->queue, err, sizeof err);
    if (!q) {
        gw_log(LOG_ERROR, "gateway", "redis: %s", err);
        goto out;
    }
    int lr = take_lease(d, q, &set);
    if (lr != 0) {
        if (lr == 2) {
            gw_log(LOG_INFO, "gateway", "stopped while waiting for the instance lease");
            code = EXIT_DONE;
        } else if (lr == 1) {
            gw_log(LOG_ERROR, "gateway", "instance name '%s' is in use by another running gateway; "
                   "give each gateway its own gateway.instance", cfg->instance);
        } else {
            gw_log(LOG_ERROR, "gateway", "redis: taking the lease of '%s' failed: %s",
                   cfg->instance, queue_errstr(q));
        }
        queue_free(q);
        goto out;
    }
    if (recover_own(d, q) < 0) {
        gw_log(LOG_ERROR, "gateway", "recovery: %s", queue_errstr(q));
        queue_instance_release(q, cfg->instance, d->token);
        queue_free(q);
        goto out;
    }

    if (routes_open(d, err, sizeof err) < 0) {
        gw_log(LOG_ERROR, "gateway", "%s", err);
        queue_instance_release(q, cfg->instance, d->token);
        queue_free(q);
        code = EXIT_BAD_INPUT;
        goto out_routes;
    }
    queue_free(q);

    d->workers = calloc((size_t)cfg->workers, sizeof *d->workers);
    if (!d->workers)
        goto out_routes;
    for (int i = 0; i < cfg->workers; i++) {
        gw_worker *w = &d->workers[i];
        w->d = d;
        w->index = i;
        w->seed = (unsigned)(rnd[i % 8] * 2654435761u) ^ (unsigned)i ^ (unsigned)getpid();
        snprintf(w->consumer, sizeof w->consumer, "%s/w%d", cfg->instance, i);
        pthread_create(&w->thread, NULL, worker_main, w);
    }
    pthread_create(&d->housekeeper, NULL, housekeeper_main, d);
    for (int i = 0; i < d->nroutes; i++)
        if (d->routes[i].r.driver->poll_inbound)
            d->have_inbound = 1;
    if (d->have_inbound)
        pthread_create(&d->inbound, NULL, inbound_main, d);
    gw_log(LOG_INFO, "gateway", "instance %s running: %d workers, %d routes, redis prefix {%s}",
           cfg->instance, cfg->workers, d->nroutes, cfg->queue.prefix);

    long long started = mono_ms();
    for (;;) {
        struct timespec ts = { 0, 200 * 1000000 };
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig == SIGHUP) {
            reload_templates(d);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT) {
            gw_log(LOG_INFO, "gateway", "%s: finishing sends in flight", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        if (o && o->max_runtime_s > 0 && mono_ms() - started >= o->max_runtime_s * 1000LL) {
            gw_log(LOG_INFO, "gateway", "max runtime of %d s reached: stopping", o->max_runtime_s);
            break;
        }
    }
    atomic_store(&d->stop, 1);

    /* Bounded shutdown: sends in flight finish and are recorded. */
    long long deadline = mono_ms() + cfg->shutdown_timeout_ms;
    int stuck = 0;
    for (int i = 0; i < cfg->workers; i++) {
        while (!atomic_load(&d->workers[i].done) && mono_ms() < deadline)
            sleep_ms(20);
        if (atomic_load(&d->workers[i].done))
            pthread_join(d->workers[i].thread, NULL);
        else
            stuck++;
    }
    pthread_join(d->housekeeper, NULL);
    if (d->have_inbound)
        pthread_join(d->inbound, NULL);
    if (stuck) {
        /* A driver is stuck inside a send: its message stays `sending` and
         * the next start (or another gateway) applies the lane policy. */
        gw_log(LOG_WARN, "gateway", "%d worker(s) still inside a send after %d ms; exiting anyway",
               stuck, cfg->shutdown_timeout_ms);
        fflush(NULL);
        _exit(EXIT_DONE);
    }
    for (int i = 0; i < cfg->workers; i++)
        queue_free(d->workers[i].q);
    free(d->workers);
    code = EXIT_DONE;
    gw_log(LOG_INFO, "gateway", "stopped");
out_routes:
    routes_close(d);
out:
    catalog_free(d->cat);
    pthread_rwlock_destroy(&d->cat_lock);
    return code;
}
