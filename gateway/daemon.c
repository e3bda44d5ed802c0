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
 *   survey       reads the inbound stream (survey replies, opt-outs) and
 *                builds the month's survey batch when it is due
 *                (gateway/survey.c)
 *   api          libmicrohttpd's own threads serve the HTTP API (gateway/api.c)
 *                when api.enabled; started after the routes open, stopped
 *                first on SIGTERM so no request is accepted while we drain
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

#include "gateway/bulletin.h"
#include "gateway/api.h"
#include "gateway/daemon.h"
#include "gateway/log.h"
#include "gateway/pacing.h"
#include "gateway/phone.h"
#include "gateway/retention.h"
#include "gateway/service.h"
#include "gateway/survey.h"
#include "queue/survey.h"

#define URGENT_CHECK_MS 50      /* a worker busy with bulk looks at urgent this often */
#define READ_BLOCK_MS 1000      /* how long an idle worker blocks: bounds stop latency */
#define INBOUND_PERIOD_MS 1000
#define DLR_WINDOW_MS (72LL * 3600 * 1000)      /* a status report may come this late */
#define INBOUND_SEEN_MS (7LL * 24 * 3600 * 1000) /* copies of an inbound SMS within: one */

/* A route at run time: the driver's route plus what routing needs. The
 * breaker and the throttle back-off are this process's view; the rate
 * limit and caps are shared by every gateway through Redis (queue_pace). */
typedef struct gw_route_rt {
    prov_route r;
    const gw_route_cfg *rc;
    int index;
    int open;
    pthread_mutex_t mu;         /* guards everything below */
    int in_flight;
    int failures;               /* consecutive transient/throttled/uncertain */
    int breaker_open;
    int probing;                /* the one probe of an open breaker is out */
    long long probe_at_ms;      /* wall clock: an open breaker probes from here */
    int down_seen;              /* the route reported itself down while open */
    long long backoff_until_ms; /* wall clock: throttled until */
    long long win_start_ms;     /* error rate over the current and last minute */
    int win_ok, win_fail, prev_ok, prev_fail;
} gw_route_rt;

typedef struct gw_daemon gw_daemon;

typedef struct gw_worker {
    gw_daemon *d;
    int index;
    int generation;             /* 0; +1 each time the watchdog replaces it */
    char consumer[96];
    queue *q;
    unsigned seed;
    pthread_t thread;
    atomic_int done;
    atomic_llong progress_ms;   /* mono_ms() of the last step forward */
    atomic_int abandoned;       /* replaced by the watchdog: exit when free */
    char route[64];             /* the route of the send in progress, for logs */
    /* A window of bulk sends (gateway.send_window_ms): begun together, their
     * outcomes kept here and recorded together. Room for gateway.batch. */
    queue_job *jobs;
    int *rcs;
    struct pend *pend;
    queue_fin *fins;
    int npend;
    double msg_us;              /* a message's recent time from begin to outcome */
} gw_worker;

/* An outcome not yet recorded: f.o's strings point at the copies here. */
typedef struct pend {
    queue_fin f;
    char *id, *route, *refs, *detail, *to;
    int dlr;                    /* index the refs for status reports once recorded */
} pend;

#define GW_MAX_ABANDONED 64

struct gw_daemon {
    gw_config *cfg;
    catalog *cat;
    pthread_rwlock_t cat_lock;
    gw_route_rt routes[GW_MAX_ROUTES];
    int nroutes;
    atomic_uint rr;
    atomic_int stop;
    char token[320];
    gw_worker **workers;        /* cfg->workers slots; the watchdog swaps them */
    pthread_mutex_t wlock;      /* guards workers[] and abandoned[] */
    gw_worker *abandoned[GW_MAX_ABANDONED];
    int nabandoned;
    pthread_t housekeeper, inbound;
    int have_inbound;
    survey_daemon *survey;
    api_server *api;
};

static long long now_ms(void) { return svc_now_ms(); }

static long long mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long long mono_ms(void) { return mono_us() / 1000; }

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

/* Rolls the error-rate window; mu held. */
static void window_roll(gw_route_rt *rt, long long now)
{
    if (now - rt->win_start_ms < 60000)
        return;
    int stale = now - rt->win_start_ms >= 120000;
    rt->prev_ok = stale ? 0 : rt->win_ok;
    rt->prev_fail = stale ? 0 : rt->win_fail;
    rt->win_ok = rt->win_fail = 0;
    rt->win_start_ms = now;
}

/* Whether rt may take a send now; mu held. When not, *until_ms gets when
 * it may (the end of a throttle back-off or the breaker's probe time). */
static int route_available(gw_route_rt *rt, long long now, int *probe, long long *until_ms)
{
    *probe = 0;
    if (rt->backoff_until_ms > now) {
        *until_ms = rt->backoff_until_ms;
        return 0;
    }
    if (rt->breaker_open) {
        if (now >= rt->probe_at_ms && !rt->probing) {
            *probe = 1;
            return 1;
        }
        *until_ms = rt->probing ? now + 1000 : rt->probe_at_ms;
        return 0;
    }
    return 1;
}

/* An open breaker's evidence goes stale when the route itself reports that
 * it went down and came back (a modem reconnected, or taken back from
 * quarantine after its probe answered): the breaker's probe is then due at
 * once, not breaker_probe_ms after the last failure, so the recovered route
 * takes its share again. A route that is up but failing (a modem answering
 * +CMS ERROR) never goes down, so this does not shorten its rest. */
static void breaker_note_health(gw_route_rt *rt, long long now)
{
    if (!rt->r.driver->health)
        return;
    pthread_mutex_lock(&rt->mu);
    int open = rt->breaker_open;
    pthread_mutex_unlock(&rt->mu);
    if (!open)
        return;
    int up = route_up(rt), early = 0;
    pthread_mutex_lock(&rt->mu);
    if (!up) {
        rt->down_seen = 1;
    } else if (rt->down_seen && rt->breaker_open) {
        rt->down_seen = 0;
        if (rt->probe_at_ms > now) {
            rt->probe_at_ms = now;
            early = 1;
        }
    }
    pthread_mutex_unlock(&rt->mu);
    if (early)
        gw_log(LOG_INFO, rt->r.name, "route is up again after being down: breaker probe now");
}

/* Picks the route for the next try of a `family` message, skipping those in
 * `tried` (a bit per route index): the first tier of the family's routing
 * with a route available (breaker closed or due for its probe, not backed
 * off), preferring routes that report themselves up and then the one with
 * the fewest sends in flight, ties round-robin so a pool shares the load.
 * A route that is down is used only when no route anywhere is up (its send
 * then fails at once and the message is retried later). only_tier >= 0
 * looks in that tier only. Returns NULL when nothing is available;
 * *rest_until_ms then says when something will be (0 when no route serves
 * the family at all). The pick counts as in flight until route_done() or
 * route_unpick(); *tier_out gets its tier. Only drivers with the
 * capability `need` are considered (PROV_CAP_SMS, or PROV_CAP_MMS for a
 * bulletin issue). */
static gw_route_rt *route_pick(gw_daemon *d, tpl_family family, unsigned need, unsigned tried,
                               int only_tier, int *probe, int *tier_out, long long *rest_until_ms)
{
    const gw_family_routing *fr = &d->cfg->routing[family];
    gw_route_rt *fallback = NULL;
    int fallback_probe = 0;
    long long now = now_ms();
    *rest_until_ms = 0;
    unsigned start = atomic_fetch_add(&d->rr, 1);
    int fallback_tier = -1;
    for (int t = 0; t < fr->ntiers; t++) {
        if (only_tier >= 0 && t != only_tier)
            continue;
        gw_route_rt *best = NULL;
        int best_inflight = 0, best_probe = 0;
        for (int k = 0; k < fr->tier_len[t]; k++) {
            int idx = fr->tier[t][(start + (unsigned)k) % (unsigned)fr->tier_len[t]];
            gw_route_rt *rt = &d->routes[idx];
            if (!rt->open || (tried & (1u << idx)) || !(rt->r.driver->caps & need))
                continue;
            int pr;
            long long until = 0;
            pthread_mutex_lock(&rt->mu);
            int avail = route_available(rt, now, &pr, &until);
            int inflight = rt->in_flight;
            pthread_mutex_unlock(&rt->mu);
            if (!avail) {
                if (!*rest_until_ms || until < *rest_until_ms)
                    *rest_until_ms = until;
                continue;
            }
            if (!route_up(rt)) {
                if (!fallback) {
                    fallback = rt;
                    fallback_probe = pr;
                    fallback_tier = t;
                }
                continue;
            }
            if (!best || inflight < best_inflight) {
                best = rt;
                best_inflight = inflight;
                best_probe = pr;
            }
        }
        if (best) {
            fallback = best;
            fallback_probe = best_probe;
            fallback_tier = t;
            break;
        }
    }
    if (!fallback)
        return NULL;
    pthread_mutex_lock(&fallback->mu);
    if (fallback_probe) {
        if (fallback->probing) {            /* another worker took the probe */
            pthread_mutex_unlock(&fallback->mu);
            *rest_until_ms = now + 1000;
            return NULL;
        }
        fallback->probing = 1;
    }
    fallback->in_flight++;
    pthread_mutex_unlock(&fallback->mu);
    *probe = fallback_probe;
    *tier_out = fallback_tier;
    return fallback;
}

/* Gives back a pick that did not send (paced, stopping). */
static void route_unpick(gw_route_rt *rt, int probe)
{
    pthread_mutex_lock(&rt->mu);
    rt->in_flight--;
    if (probe)
        rt->probing = 0;
    pthread_mutex_unlock(&rt->mu);
}

/* Feeds a send's outcome to the route's breaker, back-off and error rate.
 * A permanent failure is the number's fault, not the route's: it counts as
 * the route working. Returns the back-off (ms) a throttled route takes. */
static long long route_done(gw_route_rt *rt, int probe, const prov_result *res)
{
    long long now = now_ms(), backoff = 0;
    int opened = 0, closed = 0, failures;
    pthread_mutex_lock(&rt->mu);
    rt->in_flight--;
    if (probe)
        rt->probing = 0;
    window_roll(rt, now);
    int ok = res->status == PROV_OK || res->status == PROV_PERMANENT;
    if (ok) {
        rt->win_ok++;
        rt->failures = 0;
        if (rt->breaker_open) {
            rt->breaker_open = 0;
            closed = 1;
        }
    } else {
        rt->win_fail++;
        rt->failures++;
        if (probe || (!rt->breaker_open && rt->failures >= rt->rc->breaker_failures)) {
            opened = !rt->breaker_open;
            if (opened)
                rt->down_seen = 0;
            rt->breaker_open = 1;
            rt->probe_at_ms = now + rt->rc->breaker_probe_ms;
        }
        if (res->status == PROV_THROTTLED) {
            backoff = res->retry_after_ms > 0 ? res->retry_after_ms : rt->rc->throttle_backoff_ms;
            if (now + backoff > rt->backoff_until_ms)
                rt->backoff_until_ms = now + backoff;
        }
    }
    failures = rt->failures;
    pthread_mutex_unlock(&rt->mu);
    if (opened)
        gw_log(LOG_WARN, rt->r.name, "circuit breaker open after %d consecutive failures; "
               "one probe in %d ms", failures, rt->rc->breaker_probe_ms);
    else if (probe && !ok)
        gw_log(LOG_WARN, rt->r.name, "breaker probe failed; open for another %d ms", rt->rc->breaker_probe_ms);
    if (closed)
        gw_log(LOG_INFO, rt->r.name, "circuit breaker closed: the route works again");
    if (backoff)
        gw_log(LOG_WARN, rt->r.name, "throttled by the provider: resting %lld ms", backoff);
    return backoff;
}

/* The route's state as JSON text for `herald routes` (malloc'd). */
static char *route_state_json(gw_daemon *d, gw_route_rt *rt)
{
    long long now = now_ms();
    prov_health h = { .up = 1, .signal_percent = -1 };
    if (rt->r.driver->health)
        rt->r.driver->health(&rt->r, &h);
    pthread_mutex_lock(&rt->mu);
    window_roll(rt, now);
    int sent = rt->win_ok + rt->prev_ok, failed = rt->win_fail + rt->prev_fail;
    const char *state = rt->breaker_open ? (rt->probing || now >= rt->probe_at_ms ? "half-open" : "open")
                        : rt->backoff_until_ms > now ? "throttled" : "closed";
    json_t *j = json_pack("{s:s, s:s, s:s, s:b, s:s, s:i, s:i, s:i, s:i, s:f, s:I, s:I, s:s}",
                          "instance", d->cfg->instance, "route", rt->r.name, "driver", rt->r.driver->name,
                          "up", h.up, "breaker", state, "consecutive_failures", rt->failures,
                          "in_flight", rt->in_flight, "ok_2m", sent, "failed_2m", failed,
                          "error_rate", sent + failed ? (double)failed / (sent + failed) : 0.0,
                          "backoff_ms", (json_int_t)(rt->backoff_until_ms > now ? rt->backoff_until_ms - now : 0),
                          "updated", (json_int_t)now, "health", h.state);
    pthread_mutex_unlock(&rt->mu);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
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
        rt->rc = rc;
        rt->index = i;
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

/* Records outcomes, retrying on a broken connection: each message is ours
 * and `sending` until this lands (or a reclaimer applies the lane policy).
 * Waiting for Redis counts as progress for the watchdog. `giving_back`:
 * the outcome gives back an attempt that may never have begun (then a
 * message found not `sending` is expected, not an error). */
static void record_try(gw_worker *w, const queue_fin *f, size_t n, int *rcs, int giving_back)
{
    long long delay = 50;
    for (int tries = 0;; tries++) {
        atomic_store(&w->progress_ms, mono_ms());
        if (!w->q)
            w->q = connect_retry(w->d, w->consumer);
        atomic_store(&w->progress_ms, mono_ms());
        if (!w->q)
            return;
        int rc = queue_finish_many(w->q, f, n, rcs);
        if (rc != QUEUE_ERR_CONN) {
            for (size_t i = 0; i < n; i++) {
                const char *id = f[i].msg_id;
                int irc = rcs[i];
                if (giving_back && (irc == QUEUE_ERR_STATE || irc == QUEUE_ERR_NOTFOUND))
                    gw_log(LOG_INFO, w->consumer, "%s is not marked sending (given back already, or its begin never ran)", id);
                else if (giving_back && irc == 0)
                    gw_log(LOG_INFO, w->consumer, "%s given back unsent: its begin was not confirmed", id);
                else if (tries > 0 && irc == QUEUE_ERR_STATE)
                    /* the try before ran, only its answer or its confirmation
                     * by a replica was lost */
                    gw_log(LOG_INFO, w->consumer, "%s: outcome already recorded by the try before", id);
                else if (irc < 0)
                    gw_log(LOG_ERROR, w->consumer, "recording %s of %s failed: %s",
                           f[i].o.kind == QUEUE_OUT_SENT ? "sent" : "outcome", id, queue_errstr(w->q));
            }
            return;
        }
        gw_log(LOG_WARN, w->consumer, "recording %s%s: redis: %s; retrying", f[0].msg_id,
               n > 1 ? " and others" : "", queue_errstr(w->q));
        queue_free(w->q);
        w->q = NULL;
        if (atomic_load(&w->d->stop) && tries > 20)
            return;
        sleep_ms(delay);
        if (delay < 2000)
            delay *= 2;
    }
}

static void finish_try(gw_worker *w, const queue_entry *e, const char *id, const queue_outcome *o,
                       int giving_back)
{
    queue_fin f = { .e = *e, .msg_id = id, .o = *o };
    int rc;
    record_try(w, &f, 1, &rc, giving_back);
}

static void finish(gw_worker *w, const queue_entry *e, const char *id, const queue_outcome *o)
{
    finish_try(w, e, id, o, 0);
}

static void pend_free(pend *p)
{
    free(p->id); free(p->route); free(p->refs); free(p->detail); free(p->to);
    memset(p, 0, sizeof *p);
}

/* Keeps an outcome for the window's record (copying what it points at);
 * records it at once when there is no room or no memory. */
static void defer(gw_worker *w, const queue_entry *e, const char *id, const queue_outcome *o, int dlr)
{
    if (w->npend >= w->d->cfg->batch) {
        finish(w, e, id, o);
        return;
    }
    pend *p = &w->pend[w->npend];
    p->id = strdup(id);
    p->route = strdup(o->route ? o->route : "");
    p->refs = strdup(o->refs ? o->refs : "");
    p->detail = o->detail ? strdup(o->detail) : NULL;
    p->to = o->note_to ? strdup(o->note_to) : NULL;
    if (!p->id || !p->route || !p->refs || (o->detail && !p->detail) || (o->note_to && !p->to)) {
        pend_free(p);
        finish(w, e, id, o);
        return;
    }
    p->f.e = *e;
    p->f.msg_id = p->id;
    p->f.o = *o;
    p->f.o.route = p->route;
    p->f.o.refs = p->refs;
    p->f.o.detail = p->detail;
    p->f.o.note_to = p->to;
    p->dlr = dlr;
    w->npend++;
}

/* Indexes a sent message's part references so status reports find it. */
static void dlr_index(gw_worker *w, const char *route, const char *to, const char *refs, const char *id)
{
    if (w->q && queue_dlr_index(w->q, route, to, refs, id, DLR_WINDOW_MS, now_ms()) != 0)
        gw_log(LOG_WARN, route, "indexing the references of %s: %s", id, queue_errstr(w->q));
}

/* Records the window's outcomes in one round trip. */
static void flush(gw_worker *w)
{
    if (w->npend == 0)
        return;
    for (int i = 0; i < w->npend; i++)
        w->fins[i] = w->pend[i].f;
    record_try(w, w->fins, (size_t)w->npend, w->rcs, 0);
    for (int i = 0; i < w->npend; i++) {
        pend *p = &w->pend[i];
        if (p->dlr)
            dlr_index(w, p->route, p->to, p->refs, p->id);
        pend_free(p);
    }
    w->npend = 0;
}

/* A begin whose answer or whose confirmation by a replica was lost (the
 * connection is gone): it may have marked the message `sending`, yet
 * nothing was handed to a driver. The attempt is given back at once (the
 * `wait` outcome: queued again, attempts unchanged, due in a second)
 * rather than left `sending` until its lease runs out and the reclaimer
 * holds it as uncertain. When the begin never ran, or did not survive a
 * failover, the finish finds the message still queued and changes nothing;
 * its stream entry is requeued by the reclaimer as usual. */
static void give_back(gw_worker *w, const queue_entry *e)
{
    if (!e->msg_id[0])
        return;
    long long now = now_ms();
    queue_outcome o = { .kind = QUEUE_OUT_WAIT, .route = "", .refs = "",
                        .detail = "the begin of the attempt was not confirmed by Redis",
                        .retry_at_ms = now + 1000, .now_ms = now };
    finish_try(w, e, e->msg_id, &o, 1);
}

/* The template's provider_params ("param=var, ...") for drivers that send
 * provider templates; malloc'd or NULL. Read under the catalog lock: a
 * SIGHUP may swap the catalog meanwhile. */
static char *provider_params_of(gw_daemon *d, const char *template_name)
{
    char *pp = NULL;
    pthread_rwlock_rdlock(&d->cat_lock);
    const tpl_def *def = template_name ? catalog_find(d->cat, template_name) : NULL;
    if (def && def->provider_params)
        pp = strdup(def->provider_params);
    pthread_rwlock_unlock(&d->cat_lock);
    return pp;
}

/* Asks Redis whether the message may go through rt now (rate limit, caps).
 * Returns 0 with *slot_ms (<= now: go, and it is counted; later: wait, and
 * with `reserve` that slot is the message's), or -1 when Redis failed. */
static int pace(gw_worker *w, gw_route_rt *rt, const queue_job *job, int reserve, long long *slot_ms,
                char *why, size_t whylen)
{
    const gw_config *cfg = w->d->cfg;
    long long now = now_ms();
    *slot_ms = now;
    why[0] = '\0';
    /* nothing to ask: no Redis round trip */
    if (rt->r.rate_per_minute == 0 && rt->rc->daily_cap == 0 && cfg->recipient_hourly == 0
        && cfg->recipient_daily == 0)
        return 0;
    char day[16];
    long long to_midnight;
    pacing_local_day(now, day, &to_midnight);
    long long interval = rt->r.rate_per_minute > 0 ? 60000LL / rt->r.rate_per_minute : 0;
    queue_pace_req p = {
        .route = rt->r.name, .msg_id = job->id, .to = job->to, .local_day = day, .now_ms = now,
        .interval_ms = interval, .tolerance_ms = interval * (rt->rc->rate_burst - 1),
        .recipient_hourly = cfg->recipient_hourly, .recipient_daily = cfg->recipient_daily,
        .route_daily = rt->rc->daily_cap, .ms_to_midnight = to_midnight, .reserve = reserve,
    };
    if (queue_pace(w->q, &p, slot_ms, why, whylen) < 0) {
        gw_log(LOG_WARN, w->consumer, "pacing %s: redis: %s", job->id, queue_errstr(w->q));
        return -1;
    }
    return 0;
}

/* One message: quiet hours, then its family's routes in order. A transient
 * or throttled failure moves it to the next route at once (failover); a
 * permanent one ends it (the number is wrong everywhere); a perhaps-sent
 * one goes to the lane's policy, never to another route. Anything that must
 * wait (quiet hours, rate limit, a cap, every route resting) goes back to
 * the schedule with its due time: no worker sleeps holding a message. */
static void process_begun(gw_worker *w, const queue_entry *e, queue_job *jobp)
{
    gw_daemon *d = w->d;
    gw_config *cfg = d->cfg;
    queue_job job = *jobp;        /* ours now: cleared at the end */
    memset(jobp, 0, sizeof *jobp);

    char masked[PHONE_MAX];
    phone_mask(job.to, masked);
    /* Bulk families are not sent to numbers that opted out (TD); urgent
     * ones (legal notices) always are. An MMS job carries a group of
     * recipients, filtered when the issue was sent. */
    int group = job.template_name && strcmp(job.template_name, BULLETIN_MMS_TEMPLATE) == 0;
    if (job.lane == LANE_BULK && !group && job.opted_out) {
        if (queue_skip_optout(w->q, e, job.id, job.family, now_ms()) == 0)
            gw_log(LOG_INFO, w->consumer, "skipped %s to %s: the number opted out", job.id, masked);
        else
            gw_log(LOG_WARN, w->consumer, "skipping %s: %s", job.id, queue_errstr(w->q));
        queue_job_clear(&job);
        return;
    }
    /* the attempt as BEGIN recorded it: FINISH writes its timeline line
     * without reading it back */
    queue_outcome o = { .now_ms = 0, .route = "", .began_ms = job.began_ms,
                        .attempt = job.attempts, .owner = w->consumer };
    prov_result res;
    memset(&res, 0, sizeof res);
    char *pparams = NULL;             /* the template's provider parameters */
    /* A bulletin issue (MMS): its content comes from Redis, its route must
     * carry MMS (gateway/bulletin.h). */
    bulletin_job bj;
    char berr[300];
    int is_mms = bulletin_job_load(w->q, &job, &bj, berr, sizeof berr);
    if (is_mms < 0) {
        o.kind = job.attempts >= cfg->max_attempts ? QUEUE_OUT_DEAD : QUEUE_OUT_RETRY;
        o.detail = berr;
        o.retry_at_ms = now_ms() + gw_backoff_ms(cfg, job.attempts, &w->seed);
        gw_log(LOG_ERROR, w->consumer, "%s: %s", job.id, berr);
        goto record;
    }
    unsigned need = is_mms ? PROV_CAP_MMS : PROV_CAP_SMS;
    int fam = family_parse(job.family);
    char errs[PROV_ERR_MAX * 2] = "", why[160], detail_buf[400];
    int failed_over = 0;

    long long quiet = pacing_quiet_until(cfg->quiet_from_min[job.lane], cfg->quiet_to_min[job.lane], now_ms());
    if (quiet > 0) {
        o.kind = QUEUE_OUT_WAIT;
        o.retry_at_ms = quiet;
        snprintf(detail_buf, sizeof detail_buf, "quiet hours of the %s lane", lane_name(job.lane));
        o.detail = detail_buf;
        gw_log(LOG_INFO, w->consumer, "%s waits for the end of the %s lane's quiet hours", job.id,
               lane_name(job.lane));
        goto record;
    }
    pparams = provider_params_of(d, job.template_name);

    unsigned tried = 0, paced = 0;     /* a bit per route index */
    long long rest_until = 0, wait_slot = 0;
    int only_tier = -1;                 /* a route of this tier is paced: stay in it */
    gw_route_rt *wait_rt = NULL;        /* the paced route free soonest */
    for (int hop = 0; fam >= 0 && hop < 2 * d->nroutes + 1; hop++) {
        int probe = 0, tier = -1;
        long long slot;
        gw_route_rt *rt = route_pick(d, (tpl_family)fam, need, tried | paced, only_tier, &probe, &tier,
                                     &rest_until);
        if (!rt && wait_rt) {
            /* every route of the tier is paced: reserve the soonest slot and
             * wait for it (a rate limit is no failure: no failover) */
            rt = wait_rt;
            wait_rt = NULL;
            if (pace(w, rt, &job, 1, &slot, why, sizeof why) < 0)
                goto pace_failed;
            if (slot > now_ms()) {
                o.kind = QUEUE_OUT_WAIT;
                o.route = rt->r.name;
                o.retry_at_ms = slot;
                o.detail = why[0] ? why : "paced";
                gw_log(LOG_DEBUG, rt->r.name, "%s waits %lld ms: %s", job.id, slot - now_ms(), o.detail);
                goto record;
            }
            /* the slot came free meanwhile: it is ours, send now */
            pthread_mutex_lock(&rt->mu);
            rt->in_flight++;
            pthread_mutex_unlock(&rt->mu);
            probe = 0;
        } else if (!rt) {
            break;
        } else {
            if (atomic_load(&d->stop) || atomic_load(&w->abandoned)) {
                route_unpick(rt, probe);
                o.kind = QUEUE_OUT_RETRY;
                o.route = rt->r.name;
                o.detail = "gateway stopping before the send began";
                o.retry_at_ms = now_ms();
                goto record;
            }
            if (pace(w, rt, &job, 0, &slot, why, sizeof why) < 0) {
                route_unpick(rt, probe);
                goto pace_failed;
            }
            if (slot > now_ms()) {
                /* another route of the same tier may be free now */
                route_unpick(rt, probe);
                paced |= 1u << rt->index;
                only_tier = tier;
                if (!wait_rt || slot < wait_slot) {
                    wait_rt = rt;
                    wait_slot = slot;
                }
                continue;
            }
        }
        tried |= 1u << rt->index;
        only_tier = -1;                 /* after a failure, any later route */
        if (wait_rt == rt)
            wait_rt = NULL;

        prov_msg m = {
            .id = job.id, .to = job.to, .text = job.text, .encoding = job.encoding,
            .parts = job.parts, .family = job.family, .template_name = job.template_name,
            .provider_code = job.provider_code, .vars_json = job.vars_json,
            .provider_params = pparams, .attempt = job.attempts,
        };
        if (is_mms) {
            m.mms_type = bj.content_type;
            m.mms_body = bj.content;
            m.mms_len = bj.len;
            m.subject = bj.subject;
            m.recipients = (const char *const *)bj.rcpt;
            m.nrecipients = bj.nrcpt;
        }
        memset(&res, 0, sizeof res);
        gw_log(LOG_DEBUG, rt->r.name, "sending %s to %s: %s", job.id, masked, job.text);
        long long t0 = mono_ms();
        snprintf(w->route, sizeof w->route, "%s", rt->r.name);
        rt->r.driver->send(&rt->r, &m, &res);
        prov_oneline(res.error);     /* logged and stored: one line, whatever the driver */
        long long took = mono_ms() - t0;
        api_observe_send(took);
        long long backoff = route_done(rt, probe, &res);
        if (res.status == PROV_THROTTLED && backoff > 0 && w->q)
            queue_pace_backoff(w->q, rt->r.name, now_ms() + backoff, now_ms());
        o.route = rt->r.name;
        switch (res.status) {
        case PROV_OK:
            o.kind = QUEUE_OUT_SENT;
            o.refs = res.refs;
            gw_log(LOG_INFO, rt->r.name, "sent %s to %s: %s, %d part%s, %s, refs %s (%lld ms)%s",
                   job.id, masked, job.template_name, job.parts, job.parts == 1 ? "" : "s",
                   job.encoding, res.refs, took, failed_over ? " after failover" : "");
            goto record;
        case PROV_PERMANENT:
            o.kind = QUEUE_OUT_DEAD;
            o.detail = res.error[0] ? res.error : "permanent failure";
            gw_log(LOG_WARN, rt->r.name, "failed %s to %s permanently: %s", job.id, masked, o.detail);
            goto record;
        case PROV_UNCERTAIN:
            /* perhaps sent: another route would perhaps send it twice */
            o.detail = res.error[0] ? res.error : "perhaps sent";
            if (cfg->policy[job.lane] == RECLAIM_HOLD) {
                o.kind = QUEUE_OUT_UNCERTAIN;
                gw_log(LOG_WARN, rt->r.name, "%s to %s perhaps sent (%s): held as uncertain",
                       job.id, masked, o.detail);
                goto record;
            }
            gw_log(LOG_WARN, rt->r.name, "%s to %s perhaps sent (%s): the %s lane resends",
                   job.id, masked, o.detail, lane_name(job.lane));
            snprintf(errs, sizeof errs, "%s", o.detail);
            goto retry;
        case PROV_TRANSIENT:
        case PROV_THROTTLED:
        default: {
            size_t l = strlen(errs);
            snprintf(errs + l, sizeof errs - l, "%s%s: %s", l ? "; " : "", rt->r.name,
                     res.error[0] ? res.error : prov_status_name(res.status));
            gw_log(LOG_WARN, rt->r.name, "failed %s to %s: %s; trying the next route",
                   job.id, masked, res.error[0] ? res.error : prov_status_name(res.status));
            failed_over = 1;
            break;
        }
        }
    }
    if (0) {
pace_failed:
        queue_free(w->q);            /* reconnects in finish() */
        w->q = NULL;
        o.kind = QUEUE_OUT_WAIT;
        o.detail = "pacing unavailable (redis)";
        o.retry_at_ms = now_ms() + 1000;
        goto record;
    }
    if (fam < 0 || (!tried && rest_until == 0)) {
        o.kind = job.attempts >= cfg->max_attempts ? QUEUE_OUT_DEAD : QUEUE_OUT_RETRY;
        o.route = "";
        o.detail = "no route serves this family";
        o.retry_at_ms = now_ms() + gw_backoff_ms(cfg, job.attempts, &w->seed);
        gw_log(LOG_ERROR, w->consumer, "%s: no route serves family %s", job.id, job.family);
        goto record;
    }
    if (!tried) {
        /* every route is resting (breaker open, throttled): nothing was tried */
        o.kind = QUEUE_OUT_WAIT;
        o.retry_at_ms = rest_until > now_ms() ? rest_until : now_ms() + 1000;
        snprintf(detail_buf, sizeof detail_buf, "every route of %s is resting (breaker open or throttled)",
                 job.family);
        o.detail = detail_buf;
        goto record;
    }
retry:
    o.detail = errs[0] ? errs : prov_status_name(res.status);
    if (job.attempts >= cfg->max_attempts) {
        o.kind = QUEUE_OUT_DEAD;
        gw_log(LOG_WARN, w->consumer, "failed %s to %s: %d attempts used, dead", job.id, masked, job.attempts);
    } else {
        o.kind = QUEUE_OUT_RETRY;
        o.retry_at_ms = now_ms() + gw_backoff_ms(cfg, job.attempts, &w->seed);
        /* a throttled last route asks for longer than our backoff, maybe */
        if (res.status == PROV_THROTTLED && res.retry_after_ms > 0
            && now_ms() + res.retry_after_ms > o.retry_at_ms)
            o.retry_at_ms = now_ms() + res.retry_after_ms;
        gw_log(LOG_WARN, w->consumer, "%s to %s: attempt %d of %d failed, retry in %lld ms",
               job.id, masked, job.attempts, cfg->max_attempts, o.retry_at_ms - now_ms());
    }
record:
    o.now_ms = now_ms();
    char detail[600];
    if (o.kind == QUEUE_OUT_DEAD && job.attempts >= cfg->max_attempts && res.status != PROV_PERMANENT
        && o.detail) {
        snprintf(detail, sizeof detail, "%s (after %d attempts)", o.detail, job.attempts);
        o.detail = detail;
    }
    /* what went to whom, noted by the same call: a reply that is not a
     * survey answer is linked to the latest message sent to its number */
    o.note_to = job.to;
    o.note_keep_ms = QUEUE_SENT_NOTE_MS;
    /* Index the parts' references so status reports find the message
     * (once its outcome is recorded). */
    int dlr = 0;
    if (o.kind == QUEUE_OUT_SENT && o.route && o.route[0] && res.refs[0])
        for (int i = 0; i < d->nroutes; i++)
            if (strcmp(d->routes[i].r.name, o.route) == 0) {
                dlr = (d->routes[i].r.driver->caps & PROV_CAP_DLR) != 0;
                break;
            }
    if (is_mms == 1) {
        /* a bulletin issue's figures follow its record at once */
        finish(w, e, job.id, &o);
        if (w->q && (o.kind == QUEUE_OUT_SENT || o.kind == QUEUE_OUT_DEAD)) {
            pthread_rwlock_rdlock(&d->cat_lock);
            bulletin_job_done(w->q, cfg, d->cat, &bj, &res, o.kind == QUEUE_OUT_DEAD);
            pthread_rwlock_unlock(&d->cat_lock);
        }
        bulletin_job_clear(&bj);
        if (dlr)
            dlr_index(w, o.route, job.to, res.refs, job.id);
    } else {
        defer(w, e, job.id, &o, dlr);
    }
    free(pparams);
    queue_job_clear(&job);
}

/* Whether bulk windows are on (gateway.send_window_ms), and the worker
 * has measured its sends yet. With redis.wait_replicas they are off: a
 * failover that catches a window's record between the old primary and the
 * new one leaves the whole window `sending` on the new one (held as
 * uncertain), where one at a time it is one message a worker
 * (tests/faults/sentinel_test.sh). */
static int windows_on(const gw_worker *w)
{
    const gw_config *c = w->d->cfg;
    return c->send_window_ms > 0 && c->queue.wait_replicas <= 0 && w->msg_us > 0;
}

/* How many bulk entries the next window takes: as many as the worker's
 * recent messages took gateway.send_window_ms (at least 1, at most max);
 * one when windows are off. */
static int window_size(gw_worker *w, int max)
{
    if (!windows_on(w))
        return 1;
    double k = (double)(w->d->cfg->send_window_ms * 1000) / w->msg_us;
    return k >= max ? max : k < 1 ? 1 : (int)k;
}

/* How many entries the next read takes: with send windows, about a
 * window's worth (one for a modem or a slow provider, so a worker does not
 * hold entries the other workers could be sending); without, the batch. */
static int read_size(gw_worker *w, int batch)
{
    return windows_on(w) ? window_size(w, batch) : batch;
}

/* Begins e[0..k) in one round trip, sends them one by one, records their
 * outcomes in one more. k is 1 for urgent entries. */
static void run_window(gw_worker *w, const queue_entry *e, int k)
{
    gw_daemon *d = w->d;
    long long lease = 30000;
    for (int i = 0; i < d->nroutes; i++)
        lease += d->routes[i].r.send_timeout_ms;
    /* The lease covers a try on every route plus the time to record it;
     * a window's later messages (sent quickly, or the window would be
     * smaller) get a second more each. */
    lease += (long long)(k - 1) * 1000;
    int rc = queue_begin_many(w->q, e, (size_t)k, w->consumer, now_ms(), lease, w->jobs, w->rcs);
    if (rc) {
        gw_log(LOG_WARN, w->consumer, "begin %s%s: %s", e[0].msg_id, k > 1 ? " and others" : "",
               queue_errstr(w->q));
        if (rc == QUEUE_ERR_CONN) {
            queue_free(w->q);
            w->q = NULL;
            for (int i = 0; i < k; i++)
                give_back(w, &e[i]);
        }
        return;
    }
    for (int i = 0; i < k; i++) {
        if (w->rcs[i] == QUEUE_BEGIN_SKIP)
            continue;
        if (w->rcs[i] == QUEUE_BEGIN_DEAD) {
            gw_log(LOG_WARN, w->consumer, "entry %s malformed: dead-lettered", e[i].entry_id);
            continue;
        }
        if (w->rcs[i] != QUEUE_BEGIN_SEND) {
            gw_log(LOG_WARN, w->consumer, "begin %s: %s", e[i].msg_id, queue_errstr(w->q));
            continue;
        }
        if (!w->q && !(w->q = connect_retry(d, w->consumer))) {
            /* stopping: left `sending`, for the lane policy of the reclaimer */
            queue_job_clear(&w->jobs[i]);
            continue;
        }
        long long t0 = mono_us();
        process_begun(w, &e[i], &w->jobs[i]);
        double took = (double)(mono_us() - t0);
        w->msg_us = w->msg_us <= 0 ? took : 0.8 * w->msg_us + 0.2 * took;
        atomic_store(&w->progress_ms, mono_ms());
    }
    flush(w);
}

static void *worker_main(void *arg)
{
    gw_worker *w = arg;
    gw_daemon *d = w->d;
    int batch = d->cfg->batch;
    queue_entry *buf = calloc((size_t)batch * 2, sizeof *buf);
    queue_entry *urgent = buf + batch;
    w->jobs = calloc((size_t)batch, sizeof *w->jobs);
    w->rcs = calloc((size_t)batch, sizeof *w->rcs);
    w->pend = calloc((size_t)batch, sizeof *w->pend);
    w->fins = calloc((size_t)batch, sizeof *w->fins);
    long long conn_delay = 100;
    int ok = buf && w->jobs && w->rcs && w->pend && w->fins;
    if (!ok)
        gw_log(LOG_ERROR, w->consumer, "out of memory: worker not started");

    while (ok && !atomic_load(&d->stop) && !atomic_load(&w->abandoned)) {
        atomic_store(&w->progress_ms, mono_ms());
        if (!w->q && !(w->q = connect_retry(d, w->consumer)))
            break;
        int n = 0;
        int rc = queue_read(w->q, w->consumer, read_size(w, batch), READ_BLOCK_MS, buf, &n);
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
        for (int i = 0; i < n;) {
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
                            run_window(w, &urgent[j], 1);
                    }
                last_urgent = mono_ms();
                if (!w->q)
                    continue;
            }
            /* urgent: one at a time; bulk: a window of the same lane */
            int k = 1;
            if (buf[i].lane == LANE_BULK) {
                int max = window_size(w, n - i);
                while (k < max && buf[i + k].lane == LANE_BULK)
                    k++;
            }
            run_window(w, buf + i, k);
            i += k;
            atomic_store(&w->progress_ms, mono_ms());
            if (atomic_load(&w->abandoned)) {
                /* replaced while inside a send: what is left goes back */
                if (w->q && i < n)
                    queue_release(w->q, buf + i, (size_t)(n - i), now_ms());
                break;
            }
        }
    }
    free(buf);
    free(w->jobs);
    free(w->rcs);
    free(w->pend);
    free(w->fins);
    w->jobs = NULL;
    w->rcs = NULL;
    w->pend = NULL;
    w->fins = NULL;
    atomic_store(&w->done, 1);
    return NULL;
}

/* Starts worker `index` (generation `gen`). NULL when no thread could be
 * made. */
static gw_worker *worker_start(gw_daemon *d, int index, int gen, unsigned seed)
{
    gw_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->d = d;
    w->index = index;
    w->generation = gen;
    w->seed = seed;
    if (gen)
        snprintf(w->consumer, sizeof w->consumer, "%s/w%d.%d", d->cfg->instance, index, gen);
    else
        snprintf(w->consumer, sizeof w->consumer, "%s/w%d", d->cfg->instance, index);
    atomic_store(&w->progress_ms, mono_ms());
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        free(w);
        return NULL;
    }
    return w;
}

/* The watchdog: a worker that made no step forward for watchdog_ms (a
 * driver that never returns from a send, a library call that hangs) is
 * logged and replaced by a fresh one, so the gateway keeps sending. The
 * old thread cannot be killed safely; it is left to finish: if its send
 * ever returns, it records the outcome and exits. Its message stays
 * `sending` until then, or until its lease runs out and the lane policy
 * applies. */
static void watchdog(gw_daemon *d)
{
    long long limit = d->cfg->watchdog_ms;
    if (limit <= 0)
        return;
    pthread_mutex_lock(&d->wlock);
    for (int i = 0; i < d->cfg->workers && !atomic_load(&d->stop); i++) {
        gw_worker *w = d->workers[i];
        long long idle = mono_ms() - atomic_load(&w->progress_ms);
        if (atomic_load(&w->done) || idle < limit || d->nabandoned >= GW_MAX_ABANDONED)
            continue;
        gw_worker *nw = worker_start(d, i, w->generation + 1, w->seed * 2654435761u + 1);
        if (!nw) {
            gw_log(LOG_ERROR, "watchdog", "worker %s made no progress for %lld s; no thread to replace it",
                   w->consumer, idle / 1000);
            continue;
        }
        atomic_store(&w->abandoned, 1);
        d->abandoned[d->nabandoned++] = w;
        d->workers[i] = nw;
        gw_log(LOG_ERROR, "watchdog", "worker %s made no progress for %lld s (last route %s): replaced by %s; "
               "its message stays sending until it returns or its lease runs out",
               w->consumer, idle / 1000, w->route[0] ? w->route : "-", nw->consumer);
    }
    pthread_mutex_unlock(&d->wlock);
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
                       "(pid %.*s)", inst, (int)strcspn(strchr(holder, '/') + 1, "/"),
                       strchr(holder, '/') + 1);
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
    long long last_reclaim = 0, last_lease = 0, last_routes = 0, last_publish = 0;
    long long last_purge = 0;
    int purge_more = 0;
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
        if (rc >= 0 && now - last_routes >= 1000) {
            /* what `herald routes` shows */
            for (int i = 0; i < d->nroutes && rc >= 0; i++) {
                char *js = d->routes[i].open ? route_state_json(d, &d->routes[i]) : NULL;
                if (js)
                    rc = queue_routes_put(q, cfg->instance, d->routes[i].r.name, js);
                free(js);
            }
            last_routes = now;
        }
        if (rc >= 0 && now - last_publish >= PUBLISH_EVERY_MS) {
            publish_health(d, q);
            last_publish = now;
        }
        if (rc >= 0 && (purge_more || now - last_purge >= GW_RETENTION_EVERY_MS)) {
            rc = gw_retention_housekeep(q, cfg, &purge_more);   /* gateway/retention.c */
            last_purge = now;
        }
        if (rc < 0) {
            gw_log(LOG_WARN, "housekeeper", "redis: %s", queue_errstr(q));
            queue_free(q);
            q = NULL;
            sleep_ms(500);
            continue;
        }
        for (int i = 0; i < d->nroutes; i++)
            if (d->routes[i].open)
                breaker_note_health(&d->routes[i], now);
        watchdog(d);
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
    api_observe_inbound(route);
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

/* ---- the HTTP API's view of the routes -------------------------------- */

static int api_routes(void *ud, api_route_state *out, int max)
{
    gw_daemon *d = ud;
    int n = 0;
    for (int i = 0; i < d->nroutes && n < max; i++) {
        gw_route_rt *rt = &d->routes[i];
        api_route_state *s = &out[n++];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", rt->r.name);
        s->driver = rt->r.driver->name;
        s->families = rt->r.families;
        s->signal_percent = -1;
        s->up = rt->open;
        if (rt->open && rt->r.driver->health) {
            prov_health h = { .up = 1, .signal_percent = -1 };
            rt->r.driver->health(&rt->r, &h);
            s->up = h.up;
            s->signal_percent = h.signal_percent;
            snprintf(s->state, sizeof s->state, "%s", h.state);
        }
    }
    return n;
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
    /* quiet hours and daily caps are in the configured zone; before any
     * thread starts, as setenv() is not thread-safe */
    pacing_set_timezone(cfg->timezone);

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
    char secret[128];
    if (gw_config_secret_exposed(cfg, secret, sizeof secret))
        gw_log(LOG_WARN, "gateway", "%s holds secrets (%s) and is readable by every user: "
               "chmod o-r %s", cfg->path, secret, cfg->path);

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

    api_env env = { cfg, &d->cat, &d->cat_lock, api_routes, d };
    d->api = api_start(&env, err, sizeof err);
    if (!d->api && err[0]) {
        gw_log(LOG_ERROR, "gateway", "%s", err);
        queue_instance_release(q, cfg->instance, d->token);
        queue_free(q);
        goto out_routes;
    }
    queue_free(q);

    d->workers = calloc((size_t)cfg->workers, sizeof *d->workers);
    if (!d->workers)
        goto out_routes;
    pthread_mutex_init(&d->wlock, NULL);
    for (int i = 0; i < cfg->workers; i++) {
        unsigned seed = (unsigned)(rnd[i % 8] * 2654435761u) ^ (unsigned)i ^ (unsigned)getpid();
        if (!(d->workers[i] = worker_start(d, i, 0, seed))) {
            gw_log(LOG_ERROR, "gateway", "cannot start worker %d", i);
            atomic_store(&d->stop, 1);
            for (int j = 0; j < i; j++) {
                pthread_join(d->workers[j]->thread, NULL);
                queue_free(d->workers[j]->q);
                free(d->workers[j]);
            }
            free(d->workers);
            goto out_routes;
        }
    }
    d->survey = survey_daemon_start(cfg, &d->stop, err, sizeof err);
    if (!d->survey)
        gw_log(LOG_ERROR, "survey", "%s: no survey runs or reply parsing in this gateway", err);
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
    /* No new request while draining: the API stops first (requests in
     * progress finish; each is a few Redis calls). */
    api_stop(d->api);
    d->api = NULL;
    pthread_mutex_lock(&d->wlock);     /* no replacement from here on */
    atomic_store(&d->stop, 1);
    pthread_mutex_unlock(&d->wlock);

    /* Bounded shutdown: sends in flight finish and are recorded. */
    long long deadline = mono_ms() + cfg->shutdown_timeout_ms;
    int stuck = 0;
    for (int i = 0; i < cfg->workers; i++) {
        gw_worker *w = d->workers[i];
        while (!atomic_load(&w->done) && mono_ms() < deadline)
            sleep_ms(20);
        if (atomic_load(&w->done))
            pthread_join(w->thread, NULL);
        else
            stuck++;
    }
    for (int i = 0; i < d->nabandoned; i++) {    /* no wait: they hung once */
        if (atomic_load(&d->abandoned[i]->done))
            pthread_join(d->abandoned[i]->thread, NULL);
        else
            stuck++;
    }
    pthread_join(d->housekeeper, NULL);
    survey_daemon_stop(d->survey);
    if (d->have_inbound)
        pthread_join(d->inbound, NULL);
    if (stuck) {
        /* A driver is stuck inside a send: its message stays `sending` and
         * the next start (or another gateway) applies the lane policy. */
        gw_log(LOG_WARN, "gateway", "%d worker(s) still inside a send (waited up to %d ms; "
               "%d replaced by the watchdog); exiting anyway", stuck, cfg->shutdown_timeout_ms, d->nabandoned);
        fflush(NULL);
        _exit(EXIT_DONE);
    }
    for (int i = 0; i < cfg->workers; i++) {
        queue_free(d->workers[i]->q);
        free(d->workers[i]);
    }
    for (int i = 0; i < d->nabandoned; i++) {
        queue_free(d->abandoned[i]->q);
        free(d->abandoned[i]);
    }
    free(d->workers);
    pthread_mutex_destroy(&d->wlock);
    code = EXIT_DONE;
    gw_log(LOG_INFO, "gateway", "stopped");
out_routes:
    api_stop(d->api);
    routes_close(d);
out:
    catalog_free(d->cat);
    pthread_rwlock_destroy(&d->cat_lock);
    return code;
}
