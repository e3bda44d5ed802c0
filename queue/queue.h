/* queue.h -- the durable message queue: the only code that speaks Redis.
 *
 * Layout (every key lives under "{prefix}:" so a deployment's keys share
 * one Redis Cluster slot; docs/redis-keys.md is the reference):
 *   {p}:msg:<id>        hash    the message record (status, text, timeline...)
 *   {p}:idem:<key>      string  idempotency key -> message id (window TTL)
 *   {p}:lane:urgent     stream  lane of rights notices and case-stage updates
 *   {p}:lane:bulk       stream  lane of surveys and bulletins
 *   {p}:sched           zset    message id -> due time (ms): send_at, retries
 *   {p}:dead            stream  dead letters: id, reason, lane, family
 *   {p}:uncertain       zset    ids held as `uncertain` after a crash
 *   {p}:inbound         stream  inbound SMS from every route
 *   {p}:stats           hash    counters "<event>:<family>:<route>"
 *   {p}:gw:<instance>   string  lease of a running gateway instance
 *   (the survey's keys -- contacts, opt-out, runs, replies -- are spelled
 *   in queue/survey.c; see queue/survey.h)
 *   {p}:ref:<route>:<to>:<mr>  string  a sent part's reference -> "<id> <part>"
 *   {p}:reports:unmatched stream  status reports that matched no message
 *   {p}:inseen:<hash>   string  identity of an inbound message already stored
 *   {p}:modems          hash    device id (IMEI) -> JSON health, as last published
 *   {p}:inparts:<hash>  hash    the parts of one multipart inbound SMS so far
 *   {p}:inparts:due     zset    those, by when to store them incomplete
 *   {p}:case:<case_no>  zset    message ids of one case number, score = created ms
 *   {p}:day:<YYYY-MM-DD> hash   the local day's counters "<family>:<event>"
 *   {p}:bodies          zset    message id -> created ms: texts the retention
 *                               purge will remove (queue/retention.h)
 * Streams are read by the consumer group "herald". Every state change of a
 * message happens inside one Lua script call, so a record, its stream entry
 * and its idempotency key change together or not at all; the bulk paths
 * (enqueue, begin, finish) hand Redis a whole batch in one call.
 *
 * A `queue` is one Redis connection: use one per thread. A call that fails
 * on the connection returns QUEUE_ERR_CONN; the next call reconnects.
 * hiredis writes with write(2), so a process using queue/ must ignore
 * SIGPIPE (signal(SIGPIPE, SIG_IGN)) or die when Redis drops it. */
#ifndef HERALD_QUEUE_H
#define HERALD_QUEUE_H

#include <stddef.h>
#include <jansson.h>
#include "templates/catalog.h"

#define QUEUE_ID_MAX    40
#define QUEUE_ENTRY_MAX 48

/* Return codes: 0 is success. */
enum {
    QUEUE_OK = 0,
    QUEUE_ERR_CONN = -1,      /* cannot reach Redis, or the connection broke */
    QUEUE_ERR_REFUSED = -2,   /* Redis refused the write (e.g. OOM at maxmemory) */
    QUEUE_ERR_NOTFOUND = -3,  /* no such message / entry */
    QUEUE_ERR_STATE = -4,     /* the message is not in a state that allows it */
    QUEUE_ERR_PROTO = -5      /* an unexpected reply: a bug or a foreign key */
};

typedef struct queue_opts {
    const char *socket;       /* unix socket path, or NULL/"" to use host:port */
    const char *host;
    int port;
    const char *user;         /* ACL user (AUTH user password); NULL or "" for none */
    const char *password;     /* NULL or "" for none */
    const char *const *sentinels; /* "host:port" of Redis Sentinels; when given,
                                     the primary is found through them and
                                     socket/host/port are not used */
    int nsentinels;
    const char *master_name;  /* the primary's name at the sentinels */
    int wait_replicas;        /* WAIT for this many replicas after enqueue,
                                 begin_send and finish; 0: do not wait */
    int wait_timeout_ms;
    int db;
    const char *prefix;       /* "herald" -> keys "{herald}:..." */
    int connect_timeout_ms;
    int command_timeout_ms;   /* also bounds blocking reads (added to BLOCK) */
    long long retention_ms;   /* record lifetime (retention_days) */
    long long idem_window_ms; /* idempotency key lifetime */
} queue_opts;

typedef struct queue queue;

/* Connects. Returns NULL with the reason (host:port or socket named) in err.
 * Ensures the consumer group exists on both lanes. opts strings are copied. */
queue *queue_connect(const queue_opts *o, char *err, size_t errlen);
void queue_free(queue *q);                       /* accepts NULL */
/* The last error's text (one line), valid until the next call. */
const char *queue_errstr(const queue *q);

/* ---- enqueue -------------------------------------------------------- */

typedef struct queue_new_msg {
    const char *family;       /* "rights_notice", ... */
    const char *template_name;
    const char *to;           /* canonical E.164 */
    const char *text;         /* rendered UTF-8 text */
    const char *encoding;     /* "gsm7" / "ucs2" */
    int parts;
    tpl_lane lane;
    const char *vars_json;    /* the variables as a JSON object (for provider templates) */
    const char *provider_code;/* NULL when the template has none */
    const char *idem_key;     /* never NULL: the caller's, or one derived by the caller */
    long long send_at_ms;     /* 0 = now; in the future = scheduled */
    long long now_ms;
    const char *case_no;      /* the case number (template variable case_no),
                                 indexed in {p}:case:<case_no>; NULL or "" for none */
} queue_new_msg;

typedef struct queue_enq_result {
    int status;               /* QUEUE_OK, or a QUEUE_ERR_* for this item */
    int duplicate;            /* 1: key seen within the window, id is the first message's */
    char id[QUEUE_ID_MAX];
} queue_enq_result;

/* Enqueues n messages, each atomically (record + lane entry or schedule +
 * idempotency key), in order (a key used twice in the batch makes the
 * second a duplicate), one script call per 256. Per-item results in res[].
 * Returns 0 when every item got an answer (check res[i].status; a batch
 * Redis refused as a whole, at maxmemory say, gives each item that error),
 * QUEUE_ERR_CONN otherwise. */
int queue_enqueue(queue *q, const queue_new_msg *msgs, size_t n, queue_enq_result *res);

/* Looks up the id of an idempotency key. 0, QUEUE_ERR_NOTFOUND or error. */
int queue_find_by_key(queue *q, const char *idem_key, char id[QUEUE_ID_MAX]);

#define QUEUE_CASE_MAX 200    /* bytes of a case number that is indexed */

/* The messages enqueued with this case number (exact, after trimming
 * spaces) and still within their retention, newest first, at most max:
 * [{"id","template","family","status","to","created","updated"}] (to as
 * stored: the caller masks it). An unknown case number gives []. */
int queue_find_by_case(queue *q, const char *case_no, int max, json_t **out);

/* The local day of `ms` as "YYYY-MM-DD", in the process's time zone (the
 * gateway sets TZ to pacing.timezone at start): the day of {p}:day:<day>. */
void queue_local_day(long long ms, char day[16]);
/* The UTC day of `ms` as "YYYY-MM-DD": the day of {p}:sentday:<day>. */
void queue_utc_day(long long ms, char day[16]);

/* How long a reply can be linked to what was sent to its number
 * (queue_outcome.note_keep_ms, queue_sent_latest()). */
#define QUEUE_SENT_NOTE_MS (30LL * 86400000)

/* ---- workers -------------------------------------------------------- */

typedef struct queue_entry {
    char entry_id[QUEUE_ENTRY_MAX];   /* stream entry id */
    char msg_id[QUEUE_ID_MAX];        /* "" when the entry is malformed */
    tpl_lane lane;
} queue_entry;

/* Reads up to max new entries for `consumer` from one lane. block_ms 0 does
 * not block. *n gets the count. */
int queue_read_lane(queue *q, tpl_lane lane, const char *consumer, int max,
                    int block_ms, queue_entry *out, int *n);
/* Urgent first: reads urgent without blocking; if empty, bulk without
 * blocking; if both are empty, blocks on both up to block_ms. */
int queue_read(queue *q, const char *consumer, int max, int block_ms,
               queue_entry *out, int *n);

/* What a worker needs to send one message. Strings are malloc'd. */
typedef struct queue_job {
    char *id, *family, *template_name, *to, *text, *encoding;
    char *vars_json, *provider_code;
    int parts;
    int attempts;             /* including this one */
    long long began_ms;       /* the begin's time, as recorded (`updated`) */
    tpl_lane lane;
    int opted_out;            /* bulk lane: the number is in the opt-out list */
} queue_job;
void queue_job_clear(queue_job *j);              /* frees the strings, zeroes */

enum { QUEUE_BEGIN_SEND = 0, QUEUE_BEGIN_SKIP = 1, QUEUE_BEGIN_DEAD = 2 };

/* Marks the message `sending` (attempts + 1, owner, lease_until = now +
 * lease_ms) and fills job. Returns QUEUE_BEGIN_SEND; QUEUE_BEGIN_SKIP when
 * the entry is stale or the message already finished (the entry is acked);
 * QUEUE_BEGIN_DEAD when the entry or record is malformed (it went to the
 * dead-letter stream with the reason); or a QUEUE_ERR_*. */
int queue_begin_send(queue *q, const queue_entry *e, const char *consumer,
                     long long now_ms, long long lease_ms, queue_job *job);

/* Begins n entries in one round trip (one script call per 256; one WAIT
 * for all with redis.wait_replicas). Returns 0 when Redis answered: rcs[i] is what
 * queue_begin_send would have returned for e[i], jobs[i] filled for
 * QUEUE_BEGIN_SEND (clear each). Otherwise a QUEUE_ERR_* and every rcs[i]
 * that may have begun is QUEUE_ERR_CONN (no job is filled). */
int queue_begin_many(queue *q, const queue_entry *e, size_t n, const char *consumer,
                     long long now_ms, long long lease_ms, queue_job *jobs, int *rcs);

/* UNCERTAIN: the driver cannot tell whether the message left (lane policy
 * hold): status `uncertain`, listed in {p}:uncertain, not resent. */
/* WAIT: nothing was sent (rate limit, a cap, quiet hours): back to the
 * schedule at retry_at_ms, status `queued`, the attempt given back. */
typedef enum { QUEUE_OUT_SENT, QUEUE_OUT_RETRY, QUEUE_OUT_DEAD, QUEUE_OUT_UNCERTAIN,
               QUEUE_OUT_WAIT } queue_outcome_kind;

typedef struct queue_outcome {
    queue_outcome_kind kind;
    const char *route;        /* route name that handled the attempt */
    const char *refs;         /* SENT: the provider's references, one per part, comma-separated */
    const char *detail;       /* RETRY/DEAD: the reason (no personal data) */
    long long retry_at_ms;    /* RETRY: when to try again */
    long long now_ms;
    /* SENT: when note_to is set, the finish also notes "ms|family|id"
     * under the recipient in the day's hash ({p}:sentday:<UTC day>), kept
     * note_keep_ms after that day ends: queue_sent_latest() reads it. */
    const char *note_to;
    long long note_keep_ms;
    /* The attempt this outcome ends, as its BEGIN recorded it: when it
     * began (queue_job.began_ms), its number (queue_job.attempts) and who
     * began it (the consumer). Given, FINISH writes the attempt's timeline
     * line from them; owner NULL: FINISH reads them from the record. They
     * are only used when the record is still this attempt's (`sending`,
     * the same stream entry), so they are what BEGIN wrote there. */
    long long began_ms;
    int attempt;
    const char *owner;
} queue_outcome;

/* Records the outcome, appends to the timeline, bumps the counters and
 * acks the stream entry (trimmed from the lane in the same call once no
 * older entry is in flight) -- in one script. */
int queue_finish(queue *q, const queue_entry *e, const char *msg_id,
                 const queue_outcome *o);

/* One outcome of queue_finish_many. */
typedef struct queue_fin {
    queue_entry e;
    const char *msg_id;
    queue_outcome o;
} queue_fin;

/* Records n outcomes in one round trip (one FINISH script call per 256,
 * one WAIT). Returns 0 when Redis answered, rcs[i] what queue_finish would
 * have returned for f[i]; otherwise a QUEUE_ERR_* (QUEUE_ERR_CONN: not
 * known to have been recorded, write them again) copied into rcs[]. */
int queue_finish_many(queue *q, const queue_fin *f, size_t n, int *rcs);

/* Gives back entries read but not begun (graceful shutdown): each goes to
 * the end of its lane again at once. */
int queue_release(queue *q, const queue_entry *e, size_t n, long long now_ms);

/* ---- the promoter and the reclaimer ---------------------------------- */

/* Moves up to limit messages whose due time <= now from {p}:sched into their
 * lane. Safe with several gateways: each id is promoted once. */
int queue_promote_due(queue *q, long long now_ms, int limit, int *promoted);

typedef enum { RECLAIM_RESEND = 0, RECLAIM_HOLD = 1 } reclaim_policy;

/* Finds entries of `lane` idle for at least min_idle_ms (or, when
 * consumer_prefix is not NULL, every pending entry of consumers whose name
 * starts with it: used at start-up to recover the instance's own work).
 * A message still `queued` is put back in the lane. One found `sending`
 * whose lease has expired was perhaps sent: RECLAIM_RESEND puts it back
 * (timeline says so), RECLAIM_HOLD marks it `uncertain`. Finished ones are
 * acked. Counts go to *requeued and *held (either may be NULL). */
int queue_reclaim(queue *q, tpl_lane lane, long long min_idle_ms,
                  const char *consumer_prefix, reclaim_policy policy,
                  long long now_ms, int *requeued, int *held);

/* Takes or refreshes the lease of gateway instance `instance` for ttl_ms,
 * holding `token`. Returns 0, or 1 when another token holds it. A holder
 * whose token is `dead_holder` (a process known to have died; NULL for none)
 * is taken over at once. */
int queue_instance_lease(queue *q, const char *instance, const char *token, long long ttl_ms,
                         const char *dead_holder);
/* The token holding the lease of `instance` into buf ("" when free). */
int queue_instance_holder(queue *q, const char *instance, char *buf, size_t len);
int queue_instance_release(queue *q, const char *instance, const char *token);

/* ---- pacing ---------------------------------------------------------- */

typedef struct queue_pace_req {
    const char *route;
    const char *msg_id;
    const char *to;               /* canonical number: the recipient's caps */
    const char *local_day;        /* "20261201" in the configured time zone */
    long long now_ms;
    long long interval_ms;        /* 60000 / rate_per_minute; 0 = no rate limit */
    long long tolerance_ms;       /* (burst - 1) * interval */
    int recipient_hourly, recipient_daily;  /* 0 = no cap */
    int route_daily;              /* sends per local day through the route; 0 = no cap */
    long long ms_to_midnight;     /* until the local day ends */
    int reserve;                  /* 1: a send that must wait reserves its slot;
                                     0: only says when it could go (no change) */
} queue_pace_req;

/* Asks whether the message may go through p->route now, shared by every
 * gateway on this Redis: {p}:pace:<route> is a GCRA bucket, {p}:cap:<to>
 * the recipient's sends of the last day, {p}:routeday:<route>:<day> the
 * route's count of the day, {p}:paced:<id> a slot reserved earlier. *slot_ms
 * gets when it may go: <= now means now (and it is counted); later means
 * wait until then (with p->reserve a rate-limit slot is reserved for it;
 * over a cap nothing is counted). why gets the reason of a wait. */
int queue_pace(queue *q, const queue_pace_req *p, long long *slot_ms, char *why, size_t whylen);
/* A throttled route: no slot before until_ms, for every gateway. */
int queue_pace_backoff(queue *q, const char *route, long long until_ms, long long now_ms);

/* {p}:routes: each gateway's view of its routes, "<instance>/<route>" ->
 * JSON text, for `herald routes`. */
int queue_routes_put(queue *q, const char *instance, const char *route, const char *json);
/* {"<instance>/<route>": {...}, ...}. Caller decrefs. */
int queue_routes_get(queue *q, json_t **out);

/* ---- inspection and operations -------------------------------------- */

/* The record as a JSON object (fields as stored, numbers as numbers) with
 * "timeline": [{"at": ms, "status": s, "detail": d}, ...]. Caller decrefs. */
int queue_get(queue *q, const char *id, json_t **out);

/* Dead letters, newest first, at most max: [{"id","reason","lane","family","at","entry"}]. */
int queue_dead_list(queue *q, int max, json_t **out);
/* Requeues a dead message (attempts reset, timeline "retried by operator"). */
int queue_dead_retry(queue *q, const char *id, long long now_ms);

/* {"lanes":{"urgent":{"depth","pending","oldest_age_ms"},"bulk":{...}},
 *  "scheduled":n,"dead":n,"uncertain":n,"counters":{...},
 *  "today":{"day":"YYYY-MM-DD","counters":{"<family>:<event>":n}}}
 * "counters" are since the data began; "today" counts the local day of
 * now_ms (queue_local_day): events queued, sent, retry, wait, uncertain,
 * dead, delivered, failed. */
int queue_stats(queue *q, long long now_ms, json_t **out);

/* Adds an inbound SMS to {p}:inbound. */
int queue_inbound_add(queue *q, const char *route, const char *from,
                      const char *text, long long received_ms);

/* Stores one part of an inbound SMS (a whole one is part 1 of 1). A part
 * whose `identity` was seen within window_ms is a copy: *duplicate = 1,
 * nothing written. Parts of one message share `concat_key`; they wait in
 * Redis (across polls and restarts) until all `parts` are there, then the
 * joined message goes onto {p}:inbound (*stored = 1). */
int queue_inbound_part(queue *q, const char *route, const char *from, const char *text,
                       long long received_ms, const char *identity, const char *concat_key,
                       int part, int parts, long long window_ms, long long timeout_ms,
                       long long now_ms, int *duplicate, int *stored);
/* Stores, flagged partial, the multipart messages whose timeout (the
 * timeout_ms of their first part) has passed. *flushed gets the count. */
int queue_inbound_sweep(queue *q, long long now_ms, int *flushed);

/* ---- devices ------------------------------------------------------------ */

/* Publishes one device's health (JSON text) under `id` (a modem's IMEI) in
 * {p}:modems, and removes `stale_id` (the id it had before, e.g. while its
 * IMEI was unknown; NULL for none). */
int queue_modem_publish(queue *q, const char *id, const char *json, const char *stale_id);
/* Every published device as {id: object}. Caller decrefs. */
int queue_modem_list(queue *q, json_t **out);

/* ---- delivery reports ------------------------------------------------ */

#define QUEUE_DLR_MAX_PARTS 50

/* Indexes each part of a sent message by (route, recipient, reference) for
 * window_ms, so its status report finds it. refs as recorded ("12,13,14").
 * A later part with the same triple replaces the entry (references wrap at
 * 256). Returns 0 or a QUEUE_ERR_*. */
int queue_dlr_index(queue *q, const char *route, const char *to, const char *refs,
                    const char *msg_id, long long window_ms, long long now_ms);

typedef struct queue_dlr_result {
    int matched;              /* 0: kept in {p}:reports:unmatched and counted */
    int part;                 /* 1-based part it matched */
    char id[QUEUE_ID_MAX];
    char status[16];          /* the message's status after the report */
} queue_dlr_result;

/* Applies a status report (delivered 1, failed 0, pending -1) to the part
 * it belongs to: the message becomes `delivered` when every part is,
 * `failed` when any part failed, with timeline entries. A report matching
 * nothing is kept and counted (counter report_unmatched:-:<route>) when
 * keep_unmatched is 1; with 0 nothing is written (res->matched = 0), so the
 * caller can try again once the sending worker has indexed the parts. */
int queue_dlr_report(queue *q, const char *route, const char *to, int ref, int delivered,
                     const char *detail, int keep_unmatched, long long now_ms,
                     queue_dlr_result *res);

#endif
