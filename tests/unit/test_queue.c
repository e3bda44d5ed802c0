/* test_queue.c -- queue/ against a real redis-server.
 *
 * Needs REDIS_SOCK (a unix socket of a private redis-server, as started by
 * tests/lib.sh redis_start; tests/integration/queue_test.sh does it). Without
 * it the binary says so and reports nothing run. A second hiredis context
 * ("raw") plays the operator and the saboteur: it adds malformed entries,
 * flushes the script cache, sets maxmemory, kills connections and finally
 * SCANs every key to check that all of ours live under "{prefix}:". */
#include "queue/queue.h"
#include "queue/retention.h"
#include "queue/survey.h"
#include "tests/unit/test.h"

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <hiredis/hiredis.h>

#define P "htest"
#define K(s) "{" P "}:" s

static redisContext *raw;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static redisReply *R(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(raw, fmt, ap);
    va_end(ap);
    return r;
}

/* An integer reply of a raw command (-1 on error). */
static long long RI(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(raw, fmt, ap);
    va_end(ap);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        r->element[0]->type == REDIS_REPLY_INTEGER)
        v = r->element[0]->integer;           /* XPENDING summary */
    freeReplyObject(r);
    return v;
}

static void Rdo(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(raw, fmt, ap);
    va_end(ap);
    freeReplyObject(r);
}

static queue *open_q(const char *prefix)
{
    queue_opts o = {
        .socket = getenv("REDIS_SOCK"), .prefix = prefix,
        .connect_timeout_ms = 1000, .command_timeout_ms = 2000,
        .retention_ms = 3600 * 1000, .idem_window_ms = 600 * 1000,
    };
    char err[256];
    queue *q = queue_connect(&o, err, sizeof err);
    if (!q)
        fprintf(stderr, "queue_connect: %s\n", err);
    return q;
}

static queue_new_msg msg(const char *key, tpl_lane lane, long long now)
{
    queue_new_msg m = {
        .family = lane == LANE_URGENT ? "rights_notice" : "survey",
        .template_name = "t1", .to = "+8613800138000",
        .text = "【XX检察】您好\t测试", .encoding = "ucs2", .parts = 1,
        .lane = lane, .vars_json = "{\"name\":\"张三\"}", .provider_code = "SMS_1",
        .idem_key = key, .send_at_ms = 0, .now_ms = now,
    };
    return m;
}

static int enqueue1(queue *q, queue_new_msg m, char id[QUEUE_ID_MAX])
{
    queue_enq_result res;
    int rc = queue_enqueue(q, &m, 1, &res);
    if (rc == 0)
        rc = res.status;
    snprintf(id, QUEUE_ID_MAX, "%s", res.id);
    return rc;
}

/* The record's string field, into buf. */
static const char *field(queue *q, const char *id, const char *name, char *buf, size_t len)
{
    json_t *o = NULL;
    buf[0] = '\0';
    if (queue_get(q, id, &o) != 0)
        return "(no record)";
    json_t *v = json_object_get(o, name);
    if (json_is_string(v))
        snprintf(buf, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    json_decref(o);
    return buf;
}

/* Does the timeline hold an event with this status whose detail has `has`? */
static int timeline_has(queue *q, const char *id, const char *status, const char *has)
{
    json_t *o = NULL, *e;
    size_t i;
    int found = 0;
    if (queue_get(q, id, &o) != 0)
        return 0;
    json_array_foreach(json_object_get(o, "timeline"), i, e) {
        const char *s = json_string_value(json_object_get(e, "status"));
        const char *d = json_string_value(json_object_get(e, "detail"));
        if (s && d && !strcmp(s, status) && strstr(d, has) && json_integer_value(json_object_get(e, "at")) > 0)
            found = 1;
    }
    json_decref(o);
    return found;
}

/* How many times the stored timeline (the `tl` field) holds `has`. */
static int stored_tl_count(const char *id, const char *has)
{
    redisReply *r = R("HGET %s%s tl", K("msg:"), id);
    int n = 0;
    if (r && r->type == REDIS_REPLY_STRING)
        for (const char *p = strstr(r->str, has); p; p = strstr(p + 1, has))
            n++;
    freeReplyObject(r);
    return n;
}

static void test_connect_errors(void)
{
    queue_opts o = { .socket = "/nonexistent/herald.sock", .prefix = P, .connect_timeout_ms = 200 };
    char err[256] = "";
    CHECK(queue_connect(&o, err, sizeof err) == NULL);
    CHECK_HAS(err, "/nonexistent/herald.sock");
    queue_opts b = { .socket = getenv("REDIS_SOCK"), .prefix = "a{b}" };
    CHECK(queue_connect(&b, err, sizeof err) == NULL);
    CHECK_HAS(err, "braces");
    queue_free(NULL);
}

static void test_enqueue(queue *q)
{
    long long now = now_ms();
    queue_new_msg m[3] = { msg("k1", LANE_URGENT, now), msg("k2", LANE_BULK, now),
                           msg("k1", LANE_URGENT, now) };
    queue_enq_result res[3];
    CHECK_INT(queue_enqueue(q, m, 3, res), 0);
    CHECK_INT(res[0].status, QUEUE_OK);
    CHECK_INT(res[0].duplicate, 0);
    CHECK_INT(res[1].duplicate, 0);
    CHECK_INT(res[2].status, QUEUE_OK);
    CHECK_INT(res[2].duplicate, 1);
    CHECK_STR(res[2].id, res[0].id);
    CHECK_INT(strlen(res[0].id), 22);
    CHECK_INT(strspn(res[0].id, "0123456789abcdef"), 22);
    CHECK(strcmp(res[0].id, res[1].id) != 0);
    char id[QUEUE_ID_MAX], b[256];
    CHECK_INT(queue_find_by_key(q, "k1", id), 0);
    CHECK_STR(id, res[0].id);
    CHECK_INT(queue_find_by_key(q, "nokey", id), QUEUE_ERR_NOTFOUND);

    json_t *o = NULL;
    CHECK_INT(queue_get(q, res[0].id, &o), 0);
    CHECK_STR(json_string_value(json_object_get(o, "status")), "queued");
    CHECK_STR(json_string_value(json_object_get(o, "lane")), "urgent");
    CHECK_STR(json_string_value(json_object_get(o, "key")), "k1");
    CHECK_STR(json_string_value(json_object_get(o, "text")), "【XX检察】您好\t测试");
    CHECK(json_is_integer(json_object_get(o, "attempts")));
    CHECK(json_is_integer(json_object_get(o, "created")));
    CHECK_INT(json_integer_value(json_object_get(o, "created")), now);
    CHECK(json_object_get(o, "tl") == NULL);
    /* the first line of a message queued at once is derived, not stored */
    CHECK_INT(json_array_size(json_object_get(o, "timeline")), 1);
    json_t *l0 = json_array_get(json_object_get(o, "timeline"), 0);
    CHECK_INT(json_integer_value(json_object_get(l0, "at")), now);
    CHECK_STR(json_string_value(json_object_get(l0, "status")), "queued");
    CHECK_STR(json_string_value(json_object_get(l0, "detail")), "lane urgent");
    json_decref(o);
    CHECK_INT(RI("HEXISTS %s%s tl", K("msg:"), res[0].id), 0);
    CHECK(timeline_has(q, res[1].id, "queued", "lane bulk"));
    /* a record whose first line is stored (a gateway from before): shown once */
    Rdo("HSET %s%s tl %lld\tqueued\tlane bulk", K("msg:"), res[1].id, now);
    CHECK_INT(queue_get(q, res[1].id, &o), 0);
    CHECK_INT(json_array_size(json_object_get(o, "timeline")), 1);
    json_decref(o);
    Rdo("HDEL %s%s tl", K("msg:"), res[1].id);
    CHECK_INT(queue_get(q, "0000nosuch", &o), QUEUE_ERR_NOTFOUND);
    CHECK(o == NULL);
    CHECK(RI("PTTL %s", K("msg:") "x") == -2);
    redisReply *r = R("PTTL " K("msg:%s"), res[0].id);
    CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer > 3500 * 1000);
    freeReplyObject(r);
    CHECK(RI("PTTL " K("idem:k1")) > 500 * 1000);
    CHECK_STR(field(q, res[0].id, "entry", b, sizeof b)[0] ? "set" : "", "set");

    /* Leave the lanes empty for the next test: read and finish both. */
    queue_entry e[4];
    int n = 0;
    CHECK_INT(queue_read(q, "w0", 4, 0, e, &n), 0);
    CHECK_INT(n, 1);
    CHECK_INT(e[0].lane, LANE_URGENT);
    CHECK_STR(e[0].msg_id, res[0].id);
    queue_job j;
    CHECK_INT(queue_begin_send(q, &e[0], "w0", now, 30000, &j), QUEUE_BEGIN_SEND);
    queue_job_clear(&j);
    queue_outcome out = { .kind = QUEUE_OUT_SENT, .route = "sink", .refs = "a", .now_ms = now };
    CHECK_INT(queue_finish(q, &e[0], e[0].msg_id, &out), 0);
    CHECK_INT(queue_read(q, "w0", 4, 0, e, &n), 0);
    CHECK_INT(n, 1);
    CHECK_INT(e[0].lane, LANE_BULK);
    CHECK_INT(queue_begin_send(q, &e[0], "w0", now, 30000, &j), QUEUE_BEGIN_SEND);
    queue_job_clear(&j);
    CHECK_INT(queue_finish(q, &e[0], e[0].msg_id, &out), 0);
}

/* Is the field stored in the record (HEXISTS)? */
static int stored(const char *id, const char *f)
{
    return (int)RI("HEXISTS %s%s %s", K("msg:"), id, f);
}

/* A record stores no field that holds its default; queue_get shows every
 * field, filled in. */
static void test_sparse_record(queue *q)
{
    long long now = now_ms();
    char id[QUEUE_ID_MAX], sch[QUEUE_ID_MAX], b[256];
    queue_new_msg m = msg("sparse-1", LANE_URGENT, now);
    m.provider_code = "";
    CHECK_INT(enqueue1(q, m, id), 0);
    static const char *const absent[] = { "id", "code", "attempts", "route", "refs", "error",
                                          "owner", "lease_until", "updated", "send_at", NULL };
    for (int i = 0; absent[i]; i++)
        CHECK_INT(stored(id, absent[i]), 0);
    CHECK_INT(stored(id, "key"), 1);
    CHECK_INT(stored(id, "entry"), 1);
    json_t *o = NULL;
    CHECK_INT(queue_get(q, id, &o), 0);
    CHECK_STR(json_string_value(json_object_get(o, "id")), id);
    CHECK_STR(json_string_value(json_object_get(o, "code")), "");
    CHECK_STR(json_string_value(json_object_get(o, "owner")), "");
    CHECK_STR(json_string_value(json_object_get(o, "key")), "sparse-1");
    CHECK(json_is_integer(json_object_get(o, "attempts")) && json_integer_value(json_object_get(o, "attempts")) == 0);
    CHECK(json_is_integer(json_object_get(o, "lease_until")) && json_integer_value(json_object_get(o, "lease_until")) == 0);
    CHECK_INT(json_integer_value(json_object_get(o, "created")), now);
    CHECK_INT(json_integer_value(json_object_get(o, "updated")), now);
    CHECK_INT(json_integer_value(json_object_get(o, "send_at")), now);
    json_decref(o);

    /* a scheduled one keeps its send_at */
    m = msg("sparse-2", LANE_URGENT, now);
    m.send_at_ms = now + 3600 * 1000;
    CHECK_INT(enqueue1(q, m, sch), 0);
    CHECK_INT(stored(sch, "send_at"), 1);
    CHECK_INT(stored(sch, "code"), 1);
    CHECK_STR(field(q, sch, "send_at", b, sizeof b), b);
    CHECK_INT(atoll(b), now + 3600 * 1000);
    CHECK_INT(RI("ZREM " K("sched") " %s", sch), 1);

    /* begun: the attempt's bookkeeping is stored; finished: deleted again,
     * and read as its default */
    queue_entry e[4];
    queue_job j;
    int n;
    CHECK_INT(queue_read(q, "w9", 4, 0, e, &n), 0);
    CHECK_INT(n, 1);
    CHECK_STR(e[0].msg_id, id);
    CHECK_INT(queue_begin_send(q, &e[0], "w9", now + 1, 30000, &j), QUEUE_BEGIN_SEND);
    CHECK(j.provider_code == NULL || !j.provider_code[0]);
    queue_job_clear(&j);
    CHECK_INT(stored(id, "owner"), 1);
    CHECK_INT(stored(id, "lease_until"), 1);
    queue_outcome out = { .kind = QUEUE_OUT_RETRY, .route = "sink", .detail = "busy",
                          .retry_at_ms = now + 5, .now_ms = now + 2 };
    CHECK_INT(queue_finish(q, &e[0], id, &out), 0);
    CHECK_INT(stored(id, "error"), 1);
    CHECK_INT(stored(id, "owner") + stored(id, "lease_until") + stored(id, "entry"), 0);
    CHECK_STR(field(q, id, "entry", b, sizeof b), "");
    CHECK_STR(field(q, id, "lease_until", b, sizeof b), "0");
    CHECK_INT(queue_promote_due(q, now + 10, 10, &n), 0);
    CHECK_INT(n, 1);
    CHECK_INT(queue_read(q, "w9", 4, 0, e, &n), 0);
    CHECK_INT(n, 1);
    CHECK_INT(queue_begin_send(q, &e[0], "w9", now + 11, 30000, &j), QUEUE_BEGIN_SEND);
    CHECK_INT(j.attempts, 2);
    queue_job_clear(&j);
    /* as a gateway from before the derived line would have begun it: the
     * line stored at once is neither shown nor stored twice */
    redisReply *old = R("HGET %s%s tl", K("msg:"), id);
    CHECK(old && old->type == REDIS_REPLY_STRING);
    if (old && old->type == REDIS_REPLY_STRING)
        Rdo("HSET %s%s tl %s\n%lld\tsending\tattempt 2 by w9", K("msg:"), id, old->str, now + 11);
    freeReplyObject(old);
    json_t *rec = NULL;
    CHECK_INT(queue_get(q, id, &rec), 0);
    size_t ti, nsend = 0;
    json_t *ev;
    json_array_foreach(json_object_get(rec, "timeline"), ti, ev)
        nsend += !strcmp(json_string_value(json_object_get(ev, "status")), "sending");
    CHECK_INT((long long)nsend, 2);
    json_decref(rec);
    out = (queue_outcome){ .kind = QUEUE_OUT_SENT, .route = "sink", .refs = "r1", .now_ms = now + 12 };
    CHECK_INT(queue_finish(q, &e[0], id, &out), 0);
    CHECK_INT(stored(id, "error"), 0);       /* the retry's reason went with the send */
    CHECK_INT(stored_tl_count(id, "\tsending\tattempt 2 by w9"), 1);
    CHECK_INT(stored_tl_count(id, "\tsending\tattempt 1 by w9"), 1);
    CHECK_STR(field(q, id, "error", b, sizeof b), "");
    CHECK_STR(field(q, id, "status", b, sizeof b), "sent");
    CHECK_STR(field(q, id, "refs", b, sizeof b), "r1");
    CHECK_STR(field(q, id, "updated", b, sizeof b), b);
    CHECK_INT(atoll(b), now + 12);
}

/* The retention index holds one member an ENQUEUE call (its ids joined by
 * ','); the purge splits it, and a member whose ids did not all leave is
 * replaced by those that stayed. Its own prefix: the purge takes
 * everything past the cutoff. */
static void test_bodies_index(void)
{
    queue *q = open_q("hbod");
    CHECK(q != NULL);
    if (!q)
        return;
    enum { N = 70 };
    long long t0 = now_ms() - 10LL * 86400 * 1000;
    static queue_new_msg m[N];
    static queue_enq_result res[N];
    static char keys[N][32];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "bod-%d", i);
        m[i] = msg(keys[i], LANE_BULK, t0 + i);
        if (i == 5 || i == 66)
            m[i].send_at_ms = t0 + 400LL * 86400 * 1000;      /* stays queued */
    }
    CHECK_INT(queue_enqueue(q, m, N, res), 0);
    CHECK_INT(RI("ZCARD {hbod}:bodies"), 2);                   /* calls of 64 and 6 */
    redisReply *r = R("ZRANGE {hbod}:bodies 0 -1 WITHSCORES");
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 4);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
        CHECK_INT((long long)strlen(r->element[0]->str), 64 * 22 + 63);
        CHECK_INT(atoll(r->element[1]->str), t0 + 63);         /* the newest of the call */
        CHECK(strstr(r->element[2]->str, res[69].id) == r->element[2]->str + 5 * 23);
        CHECK_INT(atoll(r->element[3]->str), t0 + 69);
    }
    freeReplyObject(r);
    for (int i = 0; i < N; i++)
        if (i != 5 && i != 66)
            Rdo("HSET {hbod}:msg:%s status sent", res[i].id);
    Rdo("DEL {hbod}:msg:%s", res[7].id);                      /* expired meanwhile */

    queue_purge_req rq = { .now_ms = t0 + 2LL * 86400 * 1000, .body_before_ms = t0 + 86400 * 1000,
                           .reply_before_ms = 0, .batch = 50 };
    queue_purge_result pr;
    memset(&pr, 0, sizeof pr);
    CHECK_INT(queue_retention_purge(q, &rq, &pr), 0);
    CHECK_INT(pr.bodies, N - 3);
    CHECK_INT(pr.bodies_expired, 1);
    CHECK_INT(pr.bodies_active, 2);
    r = R("ZRANGE {hbod}:bodies 0 -1 WITHSCORES");
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 4);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
        CHECK_STR(r->element[0]->str, res[5].id);             /* what stayed, same score */
        CHECK_INT(atoll(r->element[1]->str), t0 + 63);
        CHECK_STR(r->element[2]->str, res[66].id);
        CHECK_INT(atoll(r->element[3]->str), t0 + 69);
    }
    freeReplyObject(r);
    char b[64];
    CHECK_STR(field(q, res[8].id, "text", b, sizeof b), "");
    CHECK(field(q, res[5].id, "text", b, sizeof b)[0] != '\0');

    /* again, a member a round trip: the members left in place are paged over */
    rq.batch = 1;
    memset(&pr, 0, sizeof pr);
    CHECK_INT(queue_retention_purge(q, &rq, &pr), 0);
    CHECK_INT(pr.bodies + pr.bodies_expired, 0);
    CHECK_INT(pr.bodies_active, 2);
    CHECK_INT(RI("ZCARD {hbod}:bodies"), 2);
    queue_free(q);
    Rdo("EVAL %s 0 %s", "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end",
        "{hbod}:*");
}

static void test_read_order_and_sent(queue *q)
{
    long long now = now_ms();
    char bulk[QUEUE_ID_MAX], urg[QUEUE_ID_MAX], b[256];
    CHECK_INT(enqueue1(q, msg("o-bulk", LANE_BULK, now), bulk), 0);
    CHECK_INT(enqueue1(q, msg("o-urg", LANE_URGENT, now), urg), 0);
    queue_entry e[4];
    int n = -1;
    CHECK_INT(queue_read(q, "w1", 4, 0, e, &n), 0);
    CHECK_INT(n, 1);
    CHECK_STR(e[0].msg_id, urg);
    CHECK_INT(e[0].lane, LANE_URGENT);

    queue_job j;
    CHECK_INT(queue_begin_send(q, &e[0], "w1", now, 30000, &j), QUEUE_BEGIN_SEND);
    CHECK_STR(j.id, urg);
    CHECK_STR(j.to, "+8613800138000");
    CHECK_STR(j.family, "rights_notice");
    CHECK_STR(j.template_name, "t1");
    CHECK_STR(j.encoding, "ucs2");
    CHECK_STR(j.provider_code, "SMS_1");
    CHECK_STR(j.vars_json, "{\"name\":\"张三\"}");
    CHECK_INT(j.attempts, 1);
    CHECK_INT(j.parts, 1);
    CHECK_INT(j.lane, LANE_URGENT);
    queue_job_clear(&j);
    CHECK(j.id == NULL);
    CHECK_STR(field(q, urg, "status", b, sizeof b), "sending");
    CHECK_STR(field(q, urg, "owner", b, sizeof b), "w1");
    /* The attempt's line is derived while it lasts, and not stored yet. */
    CHECK(timeline_has(q, urg, "sending", "attempt 1 by w1"));
    redisReply *tl = R("HGET %s%s tl", K("msg:"), urg);
    CHECK(tl && (tl->type == REDIS_REPLY_NIL ||
                 (tl->type == REDIS_REPLY_STRING && !strstr(tl->str, "sending"))));
    freeReplyObject(tl);
    /* Another reader of the same entry: skipped, entry not acked. */
    CHECK_INT(queue_begin_send(q, &e[0], "w2", now, 30000, &j), QUEUE_BEGIN_SKIP);
    CHECK_HAS(queue_errstr(q), "being sent by w1");
    CHECK_INT(RI("XPENDING " K("lane:urgent") " herald"), 1);

    queue_outcome out = { .kind = QUEUE_OUT_SENT, .route = "aliyun", .refs = "BIZ1,BIZ2",
                          .now_ms = now + 5 };
    CHECK_INT(queue_finish(q, &e[0], urg, &out), 0);
    CHECK_STR(field(q, urg, "status", b, sizeof b), "sent");
    CHECK_STR(field(q, urg, "route", b, sizeof b), "aliyun");
    CHECK_STR(field(q, urg, "refs", b, sizeof b), "BIZ1,BIZ2");
    CHECK(timeline_has(q, urg, "sent", "via aliyun: BIZ1,BIZ2"));
    /* FINISH stored the attempt's line (at its begin) before the outcome's. */
    tl = R("HGET %s%s tl", K("msg:"), urg);
    CHECK(tl && tl->type == REDIS_REPLY_STRING);
    if (tl && tl->type == REDIS_REPLY_STRING) {
        /* the first line stored is the attempt's: the queued one is derived */
        char want[64];
        snprintf(want, sizeof want, "%lld\tsending\tattempt 1 by w1\n", now);
        const char *s = strstr(tl->str, want), *s1 = strstr(tl->str, "\tsent\t");
        CHECK(s == tl->str && s1 && s < s1 && !strstr(tl->str, "\tqueued\t"));
        CHECK(s && strstr(strstr(s, "\tsending\t") + 1, "\tsending\t") == NULL);
    }
    freeReplyObject(tl);
    CHECK_INT(queue_finish(q, &e[0], urg, &out), QUEUE_ERR_STATE);
    CHECK_INT(RI("XLEN " K("lane:urgent")), 0);
    CHECK_INT(RI("XPENDING " K("lane:urgent") " herald"), 0);
    CHECK_INT(RI("HGET " K("stats") " sent:rights_notice:aliyun"), -1); /* a string */
    redisReply *r = R("HGET " K("stats") " sent:rights_notice:aliyun");
    CHECK(r && r->type == REDIS_REPLY_STRING && !strcmp(r->str, "1"));
    freeReplyObject(r);
    CHECK_INT(queue_finish(q, &e[0], "0000nosuch", &out), QUEUE_ERR_NOTFOUND);

    /* The bulk one comes next. */
    CHECK_INT(queue_read(q, "w1", 4, 0, e, &n), 0);
    CHECK_INT(n, 1);
    CHECK_STR(e[0].msg_id, bulk);
    CHECK_INT(e[0].lane, LANE_BULK);

    /* retry -> schedule -> promote -> dead -> operator retry */
    CHECK_INT(queue_begin_send(q, &e[0], "w1", now, 30000, &j), QUEUE_BEGIN_SEND);
    queue_job_clear(&j);
    queue_outcome rt = { .kind = QUEUE_OUT_RETRY, .route = "modem1", .detail = "modem\tbusy\n",
                         .retry_at_ms = now + 1000, .now_ms = now };
    CHECK_INT(queue_finish(q, &e[0], bulk, &rt), 0);
    CHECK_STR(field(q, bulk, "status", b, sizeof b), "queued");
    CHECK_STR(field(q, bulk, "error", b, sizeof b), "modem\tbusy\n");
    CHECK(timeline_has(q, bulk, "retry", "modem busy"));
    CHECK_INT(RI("ZCARD " K("sched")), 1);
    CHECK_INT(RI("XLEN " K("lane:bulk")), 0);
    int promoted = -1;
    CHECK_INT(queue_promote_due(q, now + 500, 10, &promoted), 0);
    CHECK_INT(promoted, 0);
    CHECK_INT(queue_promote_due(q, now + 1000, 10, &promoted), 0);
    CHECK_INT(promoted, 1);
    CHECK(timeline_has(q, bulk, "promoted", "to lane bulk"));
    CHECK_INT(queue_read(q, "w1", 4, 0, e, &n), 0);
    CHECK_INT(n, 1);
    CHECK_STR(e[0].msg_id, bulk);
    CHECK_INT(queue_begin_send(q, &e[0], "w1", now, 30000, &j), QUEUE_BEGIN_SEND);
    CHECK_INT(j.attempts, 2);
    queue_job_clear(&j);
    queue_outcome dd = { .kind = QUEUE_OUT_DEAD, .route = "modem1", .detail = "invalid number",
                         .now_ms = now + 2000 };
    CHECK_INT(queue_finish(q, &e[0], bulk, &dd), 0);
    CHECK_STR(field(q, bulk, "status", b, sizeof b), "dead");
    CHECK_INT(RI("XLEN " K("lane:bulk")), 0);

    json_t *dl = NULL;
    CHECK_INT(queue_dead_list(q, 10, &dl), 0);
    CHECK_INT(json_array_size(dl), 1);
    json_t *d0 = json_array_get(dl, 0);
    CHECK_STR(json_string_value(json_object_get(d0, "id")), bulk);
    CHECK_STR(json_string_value(json_object_get(d0, "reason")), "invalid number");
    CHECK_STR(json_string_value(json_object_get(d0, "lane")), "bulk");
    CHECK_STR(json_string_value(json_object_get(d0, "family")), "survey");
    CHECK_INT(json_integer_value(json_object_get(d0, "at")), now + 2000);
    CHECK(json_is_string(json_object_get(d0, "entry")));
    json_decref(dl);

    CHECK_INT(queue_dead_retry(q, bulk, now + 3000), 0);
    CHECK_STR(field(q, bulk, "status", b, sizeof b), "queued");
    CHECK_STR(field(q, bulk, "attempts", b, sizeof b), "0");
    CHECK_STR(field(q, bulk, "error", b, sizeof b), "");
    CHECK(timeline_has(q, bulk, "queued", "retried by operator"));
    CHECK_INT(RI("XLEN " K("dead")), 0);
    CHECK_INT(queue_dead_retry(q, bulk, now), QUEUE_ERR_STATE);
    CHECK_INT(queue_dead_retry(q, "0000nosuch", now), QUEUE_ERR_NOTFOUND);
    CHECK_INT(queue_read(q, "w1", 4, 0, e, &n), 0);
    CHECK_INT(n, 1);
    CHECK_INT(queue_begin_send(q, &e[0], "w1", now, 30000, &j), QUEUE_BEGIN_SEND);
    CHECK_INT(j.attempts, 1);
    queue_job_clear(&j);
    CHECK_INT(queue_finish(q, &e[0], bulk, &out), 0);

    json_t *st = NULL;
    CHECK_INT(queue_stats(q, now, &st), 0);
    json_t *ctr = json_object_get(st, "counters");
    CHECK_INT(json_integer_value(json_object_get(ctr, "retry:survey:modem1")), 1);
    CHECK_INT(json_integer_value(json_object_get(ctr, "dead:survey:modem1")), 1);
    CHECK_INT(json_integer_value(json_object_get(ctr, "sent:survey:aliyun")), 1);
    json_decref(st);
}

static void test_scheduled(queue *q)
{
    long long now = now_ms();
    char id[QUEUE_ID_MAX], b[256];
    queue_new_msg m = msg("sched-1", LANE_URGENT, now);
    m.send_at_ms = now + 60000;
    CHECK_INT(enqueue1(q, m, id), 0);
    CHECK(timeline_has(q, id, "scheduled", "for "));
    CHECK(!timeline_has(q, id, "queued", "lane "));   /* its first line is stored */
    CHECK_STR(field(q, id, "send_at", b, sizeof b), (snprintf(b, sizeof b, "%lld", now + 60000), b));
    CHECK_INT(RI("ZCARD " K("sched")), 1);
    CHECK_INT(RI("XLEN " K("lane:urgent")), 0);

    queue *q2 = open_q(P);
    CHECK(q2 != NULL);
    int p1 = -1, p2 = -1;
    CHECK_INT(queue_promote_due(q, now + 1000, 10, &p1), 0);
    CHECK_INT(p1, 0);
    CHECK_INT(queue_promote_due(q, now + 60000, 10, &p1), 0);
    CHECK_INT(queue_promote_due(q2, now + 60000, 10, &p2), 0);
    CHECK_INT(p1, 1);
    CHECK_INT(p2, 0);
    CHECK_INT(RI("XLEN " K("lane:urgent")), 1);
    CHECK_INT(RI("ZCARD " K("sched")), 0);

    /* A scheduled id whose record expired: dropped, not counted. */
    Rdo("ZADD " K("sched") " 1 0000expired");
    CHECK_INT(queue_promote_due(q2, now, 10, &p2), 0);
    CHECK_INT(p2, 0);
    CHECK_INT(RI("ZCARD " K("sched")), 0);
    queue_free(q2);

    queue_entry e[2];
    int n;
    queue_job j;
    CHECK_INT(queue_read(q, "w3", 2, 0, e, &n), 0);
    CHECK_INT(n, 1);
    CHECK_INT(queue_begin_send(q, &e[0], "w3", now, 30000, &j), QUEUE_BEGIN_SEND);
    queue_job_clear(&j);
    queue_outcome out = { .kind = QUEUE_OUT_SENT, .route = "sink", .refs = "x", .now_ms = now };
    CHECK_INT(queue_finish(q, &e[0], id, &out), 0);
}

/* Two gateways promote the same due messages at the same time. */
typedef struct promoter { int total, rc; } promoter;

static void *promote_thread(void *arg)
{
    promoter *p = arg;
    queue *q = open_q(P);
    if (!q) {
        p->rc = -1;
        return NULL;
    }
    for (int i = 0; i < 40; i++) {
        int k = 0;
        if ((p->rc = queue_promote_due(q, now_ms() + 120000, 3, &k)) != 0)
            break;
        p->total += k;
    }
    queue_free(q);
    return NULL;
}

static void test_promote_race(queue *q)
{
    long long now = now_ms();
    enum { N = 60 };
    queue_new_msg m[N];
    queue_enq_result res[N];
    char keys[N][24];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "race-%d", i);
        m[i] = msg(keys[i], i % 2 ? LANE_BULK : LANE_URGENT, now);
        m[i].send_at_ms = now + 1000 + i;
    }
    CHECK_INT(queue_enqueue(q, m, N, res), 0);
    CHECK_INT(RI("ZCARD " K("sched")), N);
    promoter a = { 0, 0 }, b = { 0, 0 };
    pthread_t ta, tb;
    pthread_create(&ta, NULL, promote_thread, &a);
    pthread_create(&tb, NULL, promote_thread, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK_INT(a.rc, 0);
    CHECK_INT(b.rc, 0);
    CHECK_INT(a.total + b.total, N);
    CHECK_INT(RI("XLEN " K("lane:urgent")) + RI("XLEN " K("lane:bulk")), N);
    CHECK_INT(RI("ZCARD " K("sched")), 0);
    /* Drain through the workers' path. */
    queue_entry e[N];
    int n, done = 0;
    queue_job j;
    queue_outcome out = { .kind = QUEUE_OUT_SENT, .route = "sink", .refs = "x", .now_ms = now };
    while (queue_read(q, "w9", N, 0, e, &n) == 0 && n > 0)
        for (int i = 0; i < n; i++) {
            done += queue_begin_send(q, &e[i], "w9", now, 30000, &j) == QUEUE_BEGIN_SEND;
            queue_job_clear(&j);
            queue_finish(q, &e[i], e[i].msg_id, &out);
        }
    CHECK_INT(done, N);
}

/* A lane deleted by hand takes its group with it: the queue makes it again. */
static void test_lane_deleted(queue *q)
{
    long long now = now_ms();
    char id[QUEUE_ID_MAX];
    Rdo("DEL " K("lane:bulk"));
    queue_entry e[2];
    int n = -1;
    CHECK_INT(queue_read(q, "w10", 2, 0, e, &n), 0);
    CHECK_INT(n, 0);
    CHECK_INT(enqueue1(q, msg("del-1", LANE_BULK, now), id), 0);
    CHECK_INT(queue_read(q, "w10", 2, 0, e, &n), 0);
    CHECK_INT(n, 1);
    queue_job j;
    CHECK_INT(queue_begin_send(q, &e[0], "w10", now, 30000, &j), QUEUE_BEGIN_SEND);
    queue_job_clear(&j);
    queue_outcome out = { .kind = QUEUE_OUT_SENT, .route = "sink", .refs = "x", .now_ms = now };
    CHECK_INT(queue_finish(q, &e[0], id, &out), 0);
}

static void test_stale_and_malformed(queue *q)
{
    long long now = now_ms();
    char id[QUEUE_ID_MAX], b[256];
    CHECK_INT(enqueue1(q, msg("stale-1", LANE_URGENT, now), id), 0);
    /* A second entry for the same message (as a crash between steps of a
     * non-atomic writer could leave): begin_send skips and drops it. */
    Rdo("XADD " K("lane:urgent") " * id %s", id);
    Rdo("XADD " K("lane:urgent") " * foo bar");
    Rdo("XADD " K("lane:urgent") " * id 0000gone00");
    Rdo("XADD " K("lane:urgent") " * id ../../etc");
    queue_entry e[8];
    int n;
    CHECK_INT(queue_read(q, "w4", 8, 0, e, &n), 0);
    CHECK_INT(n, 5);
    CHECK_STR(e[0].msg_id, id);
    CHECK_STR(e[1].msg_id, id);
    CHECK_STR(e[2].msg_id, "");
    CHECK_STR(e[3].msg_id, "0000gone00");
    CHECK_STR(e[4].msg_id, "");
    queue_job j;
    CHECK_INT(queue_begin_send(q, &e[1], "w4", now, 30000, &j), QUEUE_BEGIN_SKIP);
    CHECK_HAS(queue_errstr(q), "stale");
    CHECK_INT(queue_begin_send(q, &e[2], "w4", now, 30000, &j), QUEUE_BEGIN_DEAD);
    CHECK_HAS(queue_errstr(q), "malformed");
    CHECK_INT(queue_begin_send(q, &e[3], "w4", now, 30000, &j), QUEUE_BEGIN_DEAD);
    CHECK_HAS(queue_errstr(q), "record missing");
    CHECK_INT(queue_begin_send(q, &e[4], "w4", now, 30000, &j), QUEUE_BEGIN_DEAD);
    CHECK_INT(RI("XLEN " K("lane:urgent")), 1);
    CHECK_INT(RI("XPENDING " K("lane:urgent") " herald"), 1);
    json_t *dl = NULL;
    CHECK_INT(queue_dead_list(q, 2, &dl), 0);
    CHECK_INT(json_array_size(dl), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(dl, 0), "reason")),
              "malformed stream entry: no valid id field");
    CHECK_STR(json_string_value(json_object_get(json_array_get(dl, 1), "id")), "0000gone00");
    json_decref(dl);
    CHECK_INT(RI("XLEN " K("dead")), 3);

    CHECK_INT(queue_begin_send(q, &e[0], "w4", now, 30000, &j), QUEUE_BEGIN_SEND);
    queue_job_clear(&j);
    queue_outcome out = { .kind = QUEUE_OUT_SENT, .route = "sink", .refs = "x", .now_ms = now };
    CHECK_INT(queue_finish(q, &e[0], id, &out), 0);
    /* A finished message read again from a stray entry: skipped. */
    Rdo("XADD " K("lane:urgent") " * id %s", id);
    CHECK_INT(queue_read(q, "w4", 8, 0, e, &n), 0);
    CHECK_INT(n, 1);
    CHECK_INT(queue_begin_send(q, &e[0], "w4", now, 30000, &j), QUEUE_BEGIN_SKIP);
    CHECK_INT(RI("XLEN " K("lane:urgent")), 0);
    CHECK_STR(field(q, id, "status", b, sizeof b), "sent");
    Rdo("DEL " K("dead"));
}

static void test_release(queue *q)
{
    long long now = now_ms();
    char a[QUEUE_ID_MAX], c[QUEUE_ID_MAX];
    CHECK_INT(enqueue1(q, msg("rel-1", LANE_BULK, now), a), 0);
    CHECK_INT(enqueue1(q, msg("rel-2", LANE_BULK, now), c), 0);
    queue_entry e[4], e2[4];
    int n;
    CHECK_INT(queue_read(q, "w5", 1, 0, e, &n), 0);
    CHECK_INT(n, 1);
    CHECK_STR(e[0].msg_id, a);
    CHECK_INT(queue_release(q, e, 1, now), 0);
    CHECK_INT(RI("XLEN " K("lane:bulk")), 2);
    CHECK_INT(RI("XPENDING " K("lane:bulk") " herald"), 0);
    CHECK(timeline_has(q, a, "requeued", "released"));
    /* It went to the end of its lane. */
    CHECK_INT(queue_read(q, "w5", 4, 0, e2, &n), 0);
    CHECK_INT(n, 2);
    CHECK_STR(e2[0].msg_id, c);
    CHECK_STR(e2[1].msg_id, a);
    CHECK(strcmp(e2[1].entry_id, e[0].entry_id) != 0);
    /* The old entry is stale now. */
    queue_job j;
    CHECK_INT(queue_begin_send(q, &e[0], "w5", now, 30000, &j), QUEUE_BEGIN_SKIP);
    queue_outcome out = { .kind = QUEUE_OUT_SENT, .route = "sink", .refs = "x", .now_ms = now };
    for (int i = 0; i < 2; i++) {
        CHECK_INT(queue_begin_send(q, &e2[i], "w5", now, 30000, &j), QUEUE_BEGIN_SEND);
        queue_job_clear(&j);
        CHECK_INT(queue_finish(q, &e2[i], e2[i].msg_id, &out), 0);
    }
    CHECK_INT(RI("XLEN " K("lane:bulk")), 0);
}

static void test_reclaim(queue *q)
{
    long long now = now_ms();
    char a[QUEUE_ID_MAX], b[256];
    int req = -1, held = -1, n;
    queue_entry e[4];
    queue_job j;

    /* resend: a worker began, then died; its lease of 1 ms expired. */
    CHECK_INT(enqueue1(q, msg("rc-1", LANE_URGENT, now), a), 0);
    CHECK_INT(queue_read(q, "gwA-1", 4, 0, e, &n), 0);
    CHECK_INT(queue_begin_send(q, &e[0], "gwA-1", now, 1, &j), QUEUE_BEGIN_SEND);
    queue_job_clear(&j);
    CHECK_INT(queue_reclaim(q, LANE_URGENT, 0, NULL, RECLAIM_RESEND, now + 100, &req, &held), 0);
    CHECK_INT(req, 1);
    CHECK_INT(held, 0);
    CHECK_STR(field(q, a, "status", b, sizeof b), "queued");
    CHECK(timeline_has(q, a, "queued", "reclaimed after a crash: perhaps sent, resending"));
    /* the reclaim stored the attempt it ended */
    CHECK_INT(stored_tl_count(a, "\tsending\tattempt 1 by gwA-1\n"), 1);
    CHECK_INT(RI("XPENDING " K("lane:urgent") " herald"), 0);
    CHECK_INT(RI("XLEN " K("lane:urgent")), 1);

    /* A valid lease is left alone, whatever the policy. */
    CHECK_INT(queue_read(q, "gwA-1", 4, 0, e, &n), 0);
    CHECK_INT(n, 1);
    CHECK_INT(queue_begin_send(q, &e[0], "gwA-1", now, 60000, &j), QUEUE_BEGIN_SEND);
    CHECK_INT(j.attempts, 2);
    queue_job_clear(&j);
    CHECK_INT(queue_reclaim(q, LANE_URGENT, 0, NULL, RECLAIM_HOLD, now + 100, &req, &held), 0);
    CHECK_INT(req + held, 0);
    CHECK_STR(field(q, a, "status", b, sizeof b), "sending");
    CHECK_INT(RI("XPENDING " K("lane:urgent") " herald"), 1);
    /* min_idle is honoured too (the entry was just read). */
    CHECK_INT(queue_reclaim(q, LANE_URGENT, 600000, NULL, RECLAIM_HOLD, now + 120000, &req, &held), 0);
    CHECK_INT(req + held, 0);

    /* hold: after the lease, the message becomes uncertain. */
    CHECK_INT(queue_reclaim(q, LANE_URGENT, 0, NULL, RECLAIM_HOLD, now + 120000, &req, &held), 0);
    CHECK_INT(held, 1);
    CHECK_INT(req, 0);
    CHECK_STR(field(q, a, "status", b, sizeof b), "uncertain");
    CHECK(timeline_has(q, a, "uncertain", "perhaps sent"));
    CHECK_INT(stored_tl_count(a, "\tsending\tattempt 2 by gwA-1\n"), 1);
    CHECK_INT(stored_tl_count(a, "\tsending\t"), 2);
    CHECK_INT(RI("ZCARD " K("uncertain")), 1);
    CHECK_INT(RI("XLEN " K("lane:urgent")), 0);
    CHECK_INT(RI("XPENDING " K("lane:urgent") " herald"), 0);
    queue_outcome out = { .kind = QUEUE_OUT_SENT, .route = "sink", .refs = "x", .now_ms = now };
    CHECK_INT(queue_finish(q, &e[0], a, &out), QUEUE_ERR_STATE);   /* too late */

    json_t *st = NULL;
    CHECK_INT(queue_stats(q, now, &st), 0);
    CHECK_INT(json_integer_value(json_object_get(st, "uncertain")), 1);
    json_decref(st);
    /* The operator decides to resend it. */
    CHECK_INT(queue_dead_retry(q, a, now + 130000), 0);
    CHECK_INT(RI("ZCARD " K("uncertain")), 0);
    CHECK_INT(queue_read(q, "gwA-1", 4, 0, e, &n), 0);
    CHECK_INT(n, 1);
    CHECK_INT(queue_begin_send(q, &e[0], "gwA-1", now, 60000, &j), QUEUE_BEGIN_SEND);
    queue_job_clear(&j);
    CHECK_INT(queue_finish(q, &e[0], a, &out), 0);

    /* consumer_prefix: start-up recovery of this instance's entries only. */
    char g[QUEUE_ID_MAX], h[QUEUE_ID_MAX];
    CHECK_INT(enqueue1(q, msg("rc-g", LANE_BULK, now), g), 0);
    CHECK_INT(enqueue1(q, msg("rc-h", LANE_BULK, now), h), 0);
    queue_entry eg, eh;
    CHECK_INT(queue_read_lane(q, LANE_BULK, "gwA-2", 1, 0, &eg, &n), 0);
    CHECK_INT(n, 1);
    CHECK_INT(queue_read_lane(q, LANE_BULK, "gwB-1", 1, 0, &eh, &n), 0);
    CHECK_INT(n, 1);
    CHECK_STR(eg.msg_id, g);
    CHECK_STR(eh.msg_id, h);
    CHECK_INT(queue_reclaim(q, LANE_BULK, 600000, "gwA-", RECLAIM_HOLD, now, &req, &held), 0);
    CHECK_INT(req, 1);
    CHECK_INT(held, 0);
    CHECK(timeline_has(q, g, "requeued", "reader stopped"));
    CHECK_INT(RI("XPENDING " K("lane:bulk") " herald"), 1);
    CHECK_INT(queue_begin_send(q, &eh, "gwB-1", now, 30000, &j), QUEUE_BEGIN_SEND);
    queue_job_clear(&j);
    CHECK_INT(queue_finish(q, &eh, h, &out), 0);
    CHECK_INT(queue_read_lane(q, LANE_BULK, "gwA-1", 4, 0, e, &n), 0);
    CHECK_INT(n, 1);
    CHECK_STR(e[0].msg_id, g);
    CHECK_INT(queue_begin_send(q, &e[0], "gwA-1", now, 30000, &j), QUEUE_BEGIN_SEND);
    queue_job_clear(&j);
    CHECK_INT(queue_finish(q, &e[0], g, &out), 0);

    /* A finished entry behind one in flight stays in the lane until that
     * one leaves it; when it leaves by a reclaim, the reclaim trims. */
    char x[QUEUE_ID_MAX], y[QUEUE_ID_MAX];
    CHECK_INT(enqueue1(q, msg("rc-x", LANE_BULK, now), x), 0);
    CHECK_INT(enqueue1(q, msg("rc-y", LANE_BULK, now), y), 0);
    CHECK_INT(queue_read_lane(q, LANE_BULK, "gwC-1", 4, 0, e, &n), 0);
    CHECK_INT(n, 2);
    CHECK_STR(e[0].msg_id, x);
    for (int i = 0; i < 2; i++) {
        CHECK_INT(queue_begin_send(q, &e[i], "gwC-1", now, 1, &j), QUEUE_BEGIN_SEND);
        queue_job_clear(&j);
    }
    CHECK_INT(queue_finish(q, &e[1], y, &out), 0);
    CHECK_INT(RI("XLEN " K("lane:bulk")), 2);
    CHECK_INT(queue_reclaim(q, LANE_BULK, 0, NULL, RECLAIM_HOLD, now + 100, &req, &held), 0);
    CHECK_INT(held, 1);
    CHECK_STR(field(q, x, "status", b, sizeof b), "uncertain");
    CHECK_INT(RI("XLEN " K("lane:bulk")), 0);
    CHECK_INT(RI("XPENDING " K("lane:bulk") " herald"), 0);
    CHECK_INT(queue_dead_retry(q, x, now + 200), 0);       /* back to the lane, for later tests */
    CHECK_INT(queue_read_lane(q, LANE_BULK, "gwC-1", 4, 0, e, &n), 0);
    CHECK_INT(n, 1);
    CHECK_INT(queue_begin_send(q, &e[0], "gwC-1", now, 30000, &j), QUEUE_BEGIN_SEND);
    queue_job_clear(&j);
    CHECK_INT(queue_finish(q, &e[0], x, &out), 0);
    CHECK_INT(RI("XLEN " K("lane:bulk")), 0);

    /* Nothing pending, nothing done; NULL counters are allowed. */
    CHECK_INT(queue_reclaim(q, LANE_BULK, 0, NULL, RECLAIM_RESEND, now, NULL, NULL), 0);
}

static void test_stats(queue *q)
{
    long long now = now_ms();
    char a[QUEUE_ID_MAX];
    CHECK_INT(enqueue1(q, msg("st-1", LANE_URGENT, now), a), 0);
    CHECK_INT(enqueue1(q, msg("st-2", LANE_URGENT, now), a), 0);
    queue_entry e[1];
    int n;
    CHECK_INT(queue_read(q, "w6", 1, 0, e, &n), 0);
    json_t *st = NULL;
    CHECK_INT(queue_stats(q, now + 5000, &st), 0);
    json_t *u = json_object_get(json_object_get(st, "lanes"), "urgent");
    json_t *bk = json_object_get(json_object_get(st, "lanes"), "bulk");
    CHECK_INT(json_integer_value(json_object_get(u, "depth")), 2);
    CHECK_INT(json_integer_value(json_object_get(u, "pending")), 1);
    CHECK(json_integer_value(json_object_get(u, "oldest_age_ms")) >= 4000);
    CHECK_INT(json_integer_value(json_object_get(bk, "depth")), 0);
    CHECK_INT(json_integer_value(json_object_get(bk, "oldest_age_ms")), 0);
    CHECK(json_is_integer(json_object_get(st, "scheduled")));
    CHECK(json_is_integer(json_object_get(st, "dead")));
    CHECK(json_is_object(json_object_get(st, "counters")));
    json_decref(st);
    CHECK_INT(queue_release(q, e, 1, now), 0);
    /* Drain. */
    queue_entry d[4];
    queue_job j;
    CHECK_INT(queue_read(q, "w6", 4, 0, d, &n), 0);
    CHECK_INT(n, 2);
    queue_outcome out = { .kind = QUEUE_OUT_SENT, .route = "sink", .refs = "x", .now_ms = now };
    for (int i = 0; i < n; i++) {
        CHECK_INT(queue_begin_send(q, &d[i], "w6", now, 30000, &j), QUEUE_BEGIN_SEND);
        queue_job_clear(&j);
        CHECK_INT(queue_finish(q, &d[i], d[i].msg_id, &out), 0);
    }
}

/* An integer hash field (0 when absent). */
static long long hget_ll(const char *key, const char *f)
{
    redisReply *r = R("HGET %s %s", key, f);
    long long v = r && r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    return v;
}

static long long day_ctr(long long at, const char *field_name);

/* The batch scripts: 150 messages enqueued, begun and finished in calls of
 * 64 (a key repeated across two calls is a duplicate), outcomes of three
 * kinds in one window with their counters added up, and the lane trimmed
 * only up to the oldest entry still in flight. */
static void test_batch_scripts(queue *q)
{
    enum { N = 150 };
    long long now = now_ms();
    static queue_new_msg m[N];
    static queue_enq_result res[N];
    static char keys[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "bw-%d", i == 140 ? 10 : i);
        m[i] = msg(keys[i], LANE_BULK, now);
        m[i].family = "batchfam";
    }
    CHECK_INT(queue_enqueue(q, m, N, res), 0);
    int dups = 0;
    for (int i = 0; i < N; i++) {
        CHECK_INT(res[i].status, QUEUE_OK);
        dups += res[i].duplicate;
    }
    CHECK_INT(dups, 1);
    CHECK_INT(res[140].duplicate, 1);
    CHECK_STR(res[140].id, res[10].id);
    CHECK_INT(RI("XLEN " K("lane:bulk")), N - 1);
    /* in the retention index: the third call's member, without the duplicate */
    redisReply *r = R("ZRANGE " K("bodies") " 0 -1");
    const redisReply *third = NULL;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
        if (strstr(r->element[i]->str, res[149].id))
            third = r->element[i];
    CHECK(third != NULL);
    if (third) {
        CHECK(strstr(third->str, res[128].id) == third->str);
        CHECK_INT((long long)third->len, 21 * 22 + 20);
    }
    freeReplyObject(r);
    CHECK_INT(day_ctr(now, "batchfam:queued"), N - 1);

    static queue_entry e[N];
    static queue_job j[N];
    static int rcs[N];
    int n = 0, got = 0;
    while (got < N - 1 && queue_read_lane(q, LANE_BULK, "w9", N - 1 - got, 0, e + got, &n) == 0 && n > 0)
        got += n;
    CHECK_INT(got, N - 1);
    /* the recipient opted out: every bulk message of every call says so */
    Rdo("HSET " K("optout") " +8613800138000 1");
    CHECK_INT(queue_begin_many(q, e, (size_t)got, "w9", now, 30000, j, rcs), 0);
    Rdo("HDEL " K("optout") " +8613800138000");
    int began = 0, opted = 0;
    for (int i = 0; i < got; i++) {
        began += rcs[i] == QUEUE_BEGIN_SEND;
        opted += rcs[i] == QUEUE_BEGIN_SEND && j[i].opted_out;
        queue_job_clear(&j[i]);
    }
    CHECK_INT(began, N - 1);
    CHECK_INT(opted, N - 1);

    /* all but the oldest: sent, one retry, one dead */
    static queue_fin f[N];
    for (int i = 1; i < got; i++) {
        queue_outcome o = { .kind = QUEUE_OUT_SENT, .route = "sink", .refs = "r", .now_ms = now };
        if (i == 5) {
            o.kind = QUEUE_OUT_RETRY;
            o.detail = "throttled";
            o.retry_at_ms = now + 600000;
        } else if (i == 6) {
            o.kind = QUEUE_OUT_DEAD;
            o.detail = "number refused";
        }
        f[i - 1] = (queue_fin){ .e = e[i], .msg_id = e[i].msg_id, .o = o };
    }
    long long sent0 = hget_ll(K("stats"), "sent:batchfam:sink");
    CHECK_INT(queue_finish_many(q, f, (size_t)got - 1, rcs), 0);
    for (int i = 0; i < got - 1; i++)
        CHECK_INT(rcs[i], 0);
    char b[64];
    CHECK_STR(field(q, e[5].msg_id, "status", b, sizeof b), "queued");
    CHECK_STR(field(q, e[6].msg_id, "status", b, sizeof b), "dead");
    CHECK_STR(field(q, e[7].msg_id, "status", b, sizeof b), "sent");
    CHECK_INT(hget_ll(K("stats"), "sent:batchfam:sink") - sent0, N - 4);
    CHECK_INT(hget_ll(K("stats"), "retry:batchfam:sink"), 1);
    CHECK_INT(hget_ll(K("stats"), "dead:batchfam:sink"), 1);
    CHECK_INT(day_ctr(now, "batchfam:sent"), N - 4);
    CHECK_INT(day_ctr(now, "batchfam:retry"), 1);
    CHECK_INT(day_ctr(now, "batchfam:dead"), 1);
    /* the oldest is still in flight: nothing behind it is trimmed yet,
     * but the depth counts only it */
    CHECK_INT(RI("XPENDING " K("lane:bulk") " herald"), 1);
    CHECK_INT(RI("XLEN " K("lane:bulk")), N - 1);
    json_t *st = NULL;
    CHECK_INT(queue_stats(q, now, &st), 0);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(json_object_get(st, "lanes"), "bulk"),
                                                 "depth")), 1);
    json_decref(st);
    /* a second finish of one of them is refused, and changes nothing */
    CHECK_INT(queue_finish_many(q, f, 1, rcs), 0);
    CHECK_INT(rcs[0], QUEUE_ERR_STATE);
    /* the oldest finishes: the whole lane goes */
    queue_outcome o = { .kind = QUEUE_OUT_SENT, .route = "sink", .refs = "r", .now_ms = now };
    CHECK_INT(queue_finish(q, &e[0], e[0].msg_id, &o), 0);
    CHECK_INT(RI("XLEN " K("lane:bulk")), 0);
    CHECK_INT(RI("XPENDING " K("lane:bulk") " herald"), 0);
    Rdo("ZREM " K("sched") " %s", e[5].msg_id);      /* the retry is not for later tests */
}

/* An integer field of the local day's counters (0 when absent). */
static long long day_ctr(long long at, const char *field_name)
{
    char day[16];
    queue_local_day(at, day);
    redisReply *r = R("HGET " K("day:%s") " %s", day, field_name);
    long long v = r && r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
    freeReplyObject(r);
    return v;
}

/* The case number index and the day's counters (the console's lookup and
 * Today panel). */
static void test_case_and_day(queue *q)
{
    long long now = now_ms();
    const char *cn = "某检刑诉〔2026〕88号";
    char id[5][QUEUE_ID_MAX];
    queue_new_msg m[5];
    const char *cases[5] = { " 某检刑诉〔2026〕88号 ", "某检刑诉〔2026〕88号", "某检刑诉〔2026〕89号", NULL,
                             "某检刑诉〔2026〕88号" };
    const char *keys[5] = { "case-1", "case-2", "case-3", "case-4", "case-1" };
    for (int i = 0; i < 5; i++) {
        m[i] = msg(keys[i], LANE_URGENT, now - 3000 + i * 1000);
        m[i].family = "case_stage";
        m[i].case_no = cases[i];
    }
    queue_enq_result res[5];
    CHECK_INT(queue_enqueue(q, m, 5, res), 0);
    for (int i = 0; i < 5; i++)
        snprintf(id[i], QUEUE_ID_MAX, "%s", res[i].id);
    CHECK_INT(res[4].duplicate, 1);          /* not indexed again */

    json_t *a = NULL;
    CHECK_INT(queue_find_by_case(q, cn, 10, &a), 0);
    CHECK_INT(json_array_size(a), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(a, 0), "id")), id[1]);  /* newest first */
    CHECK_STR(json_string_value(json_object_get(json_array_get(a, 1), "id")), id[0]);
    CHECK_STR(json_string_value(json_object_get(json_array_get(a, 0), "family")), "case_stage");
    CHECK_STR(json_string_value(json_object_get(json_array_get(a, 0), "status")), "queued");
    CHECK_STR(json_string_value(json_object_get(json_array_get(a, 0), "template")), "t1");
    CHECK_INT(json_integer_value(json_object_get(json_array_get(a, 1), "created")), now - 3000);
    CHECK_INT(json_integer_value(json_object_get(json_array_get(a, 1), "updated")), now - 3000);
    json_decref(a);
    CHECK_INT(queue_find_by_case(q, "  某检刑诉〔2026〕88号\t", 1, &a), 0);   /* trimmed; max */
    CHECK_INT(json_array_size(a), 1);
    json_decref(a);
    CHECK_INT(queue_find_by_case(q, "某检刑诉〔2026〕89号", 10, &a), 0);
    CHECK_INT(json_array_size(a), 1);
    json_decref(a);
    CHECK_INT(queue_find_by_case(q, "某检刑诉〔2026〕90号", 10, &a), 0);
    CHECK(json_is_array(a) && json_array_size(a) == 0);
    json_decref(a);
    CHECK_INT(queue_find_by_case(q, "", 10, &a), 0);
    CHECK(json_is_array(a) && json_array_size(a) == 0);
    json_decref(a);
    redisReply *r = R("PTTL " K("case:%s"), cn);
    CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer > 3500 * 1000);   /* the retention */
    freeReplyObject(r);
    CHECK_INT(RI("EXISTS " K("case:")), 0);

    /* an id past its retention leaves the index at the next enqueue; one
     * whose record is gone is not listed */
    Rdo("ZADD " K("case:%s") " %lld old0000000000000000000", cn, now - 3600 * 1000 - 5000);
    Rdo("ZADD " K("case:%s") " %lld gone000000000000000000", cn, now - 10);
    char id5[QUEUE_ID_MAX];
    queue_new_msg m5 = msg("case-5", LANE_URGENT, now);
    m5.family = "case_stage";
    m5.case_no = cn;
    CHECK_INT(enqueue1(q, m5, id5), 0);
    r = R("ZSCORE " K("case:%s") " old0000000000000000000", cn);
    CHECK(r && r->type == REDIS_REPLY_NIL);
    freeReplyObject(r);
    CHECK_INT(queue_find_by_case(q, cn, 10, &a), 0);
    CHECK_INT(json_array_size(a), 3);
    CHECK_STR(json_string_value(json_object_get(json_array_get(a, 0), "id")), id5);
    json_decref(a);
    Rdo("ZREM " K("case:%s") " gone000000000000000000", cn);

    /* the day's counters: queued at enqueue, then each outcome */
    CHECK_INT(day_ctr(now, "case_stage:queued"), 5);
    queue_entry e[8];
    int n = 0;
    CHECK_INT(queue_read(q, "w-case", 8, 0, e, &n), 0);
    CHECK_INT(n, 5);
    for (int i = 0; i < n; i++) {
        queue_job j;
        CHECK_INT(queue_begin_send(q, &e[i], "w-case", now, 30000, &j), QUEUE_BEGIN_SEND);
        queue_job_clear(&j);
        queue_outcome out = { .kind = i == 1 ? QUEUE_OUT_DEAD : QUEUE_OUT_SENT, .route = "sink",
                              .refs = "r", .detail = "refused", .now_ms = now };
        CHECK_INT(queue_finish(q, &e[i], e[i].msg_id, &out), 0);
    }
    CHECK_INT(day_ctr(now, "case_stage:sent"), 4);
    CHECK_INT(day_ctr(now, "case_stage:dead"), 1);
    char day[16];
    queue_local_day(now, day);
    CHECK_INT(strlen(day), 10);
    r = R("PTTL " K("day:%s"), day);
    CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer > 39LL * 86400000);
    freeReplyObject(r);
    json_t *st = NULL;
    CHECK_INT(queue_stats(q, now, &st), 0);
    json_t *today = json_object_get(st, "today");
    CHECK_STR(json_string_value(json_object_get(today, "day")), day);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(today, "counters"), "case_stage:sent")), 4);
    json_decref(st);
    /* another day's counters are another key */
    CHECK_INT(day_ctr(now - 2 * 86400000LL, "case_stage:sent"), 0);
}

static void test_block(queue *q)
{
    queue_entry e[2];
    int n = -1;
    long long t0 = now_ms();
    CHECK_INT(queue_read(q, "w7", 2, 200, e, &n), 0);
    long long dt = now_ms() - t0;
    CHECK_INT(n, 0);
    CHECK(dt >= 150 && dt < 1500);
}

static void test_lease_inbound(queue *q)
{
    CHECK_INT(queue_instance_lease(q, "gw1", "tokA", 10000, NULL), 0);
    CHECK_INT(queue_instance_lease(q, "gw1", "tokB", 10000, NULL), 1);
    CHECK_HAS(queue_errstr(q), "gw1");
    CHECK_INT(queue_instance_lease(q, "gw1", "tokA", 20000, NULL), 0);
    CHECK(RI("PTTL " K("gw:gw1")) > 10000);
    CHECK_INT(queue_instance_release(q, "gw1", "tokB"), 1);
    CHECK_INT(queue_instance_release(q, "gw1", "tokA"), 0);
    CHECK_INT(RI("EXISTS " K("gw:gw1")), 0);
    CHECK_INT(queue_instance_lease(q, "gw1", "tokB", 10000, NULL), 0);
    CHECK_INT(queue_instance_release(q, "gw1", "tokB"), 0);
    /* a holder known dead is taken over at once; a live one is not */
    char holder[64];
    CHECK_INT(queue_instance_holder(q, "gw1", holder, sizeof holder), 0);
    CHECK_STR(holder, "");
    CHECK_INT(queue_instance_lease(q, "gw1", "tokC", 10000, NULL), 0);
    CHECK_INT(queue_instance_holder(q, "gw1", holder, sizeof holder), 0);
    CHECK_STR(holder, "tokC");
    CHECK_INT(queue_instance_lease(q, "gw1", "tokD", 10000, "tokX"), 1);
    CHECK_INT(queue_instance_lease(q, "gw1", "tokD", 10000, "tokC"), 0);
    CHECK_INT(queue_instance_holder(q, "gw1", holder, sizeof holder), 0);
    CHECK_STR(holder, "tokD");
    CHECK_INT(queue_instance_release(q, "gw1", "tokD"), 0);

    CHECK_INT(queue_inbound_add(q, "modem1", "+8613800138000", "1121", now_ms()), 0);
    CHECK_INT(queue_inbound_add(q, "modem1", "+8613800138001", "满意", now_ms()), 0);
    CHECK_INT(RI("XLEN " K("inbound")), 2);
}


/* Enqueues m (an urgent message), reads it, begins it at out->now_ms and
 * records *out as its outcome. */
static void send_with(queue *q, queue_new_msg m, const queue_outcome *out, char id[QUEUE_ID_MAX])
{
    CHECK_INT(enqueue1(q, m, id), 0);
    queue_entry e[1];
    int n = 0;
    CHECK_INT(queue_read_lane(q, LANE_URGENT, "w1", 1, 0, e, &n), 0);
    CHECK_INT(n, 1);
    if (n != 1)
        return;
    queue_job j;
    CHECK_INT(queue_begin_send(q, &e[0], "w1", out->now_ms, 30000, &j), QUEUE_BEGIN_SEND);
    queue_job_clear(&j);
    CHECK_INT(queue_finish(q, &e[0], id, out), 0);
}

/* Sends a 3-part message through the queue and records it `sent` with refs. */
static void sent3(queue *q, const char *key, const char *refs, char id[QUEUE_ID_MAX])
{
    long long now = now_ms();
    queue_new_msg m = msg(key, LANE_URGENT, now);
    m.parts = 3;
    queue_outcome out = { .kind = QUEUE_OUT_SENT, .route = "m1", .refs = refs, .now_ms = now };
    send_with(q, m, &out, id);
    CHECK_INT(queue_dlr_index(q, "m1", "+8613800138000", refs, id, 60000, now), 0);
}

/* Sends one urgent message to `to` at `at` and records it `sent` with a
 * note of what went to whom. */
static void note_send(queue *q, const char *key, const char *to, long long at,
                      char id[QUEUE_ID_MAX])
{
    queue_new_msg m = msg(key, LANE_URGENT, at);
    m.to = to;
    queue_outcome out = { .kind = QUEUE_OUT_SENT, .route = "m1", .refs = "1", .now_ms = at,
                          .note_to = to, .note_keep_ms = QUEUE_SENT_NOTE_MS };
    send_with(q, m, &out, id);
}

/* "family|id" of the latest note for `to` at `at`, or "(none)". */
static const char *latest(queue *q, const char *to, long long at, char *buf, size_t len)
{
    int rc = queue_sent_latest(q, to, at, buf, len);
    if (rc == QUEUE_ERR_NOTFOUND)
        snprintf(buf, len, "(none)");
    else if (rc)
        snprintf(buf, len, "(error %d: %s)", rc, queue_errstr(q));
    return buf;
}

/* What went to whom: a field of the day's hash, not a key a recipient; the
 * reply linking takes the latest at or before the reply, across days, and
 * still reads the sorted sets of earlier versions. */
/* The stored timeline (the `tl` field), "" when there is none. */
static const char *stored_tl(const char *id, char *buf, size_t len)
{
    redisReply *r = R("HGET %s%s tl", K("msg:"), id);
    snprintf(buf, len, "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return buf;
}

/* Begins message m as w1 at `at`, after `before` attempts: its entry and job. */
static int begin_at(queue *q, queue_new_msg m, long long at, int before, char id[QUEUE_ID_MAX],
                    queue_entry *e, queue_job *j)
{
    int n = 0;
    CHECK_INT(enqueue1(q, m, id), 0);
    if (before)
        Rdo("HSET %s%s attempts %d", K("msg:"), id, before);
    CHECK_INT(queue_read_lane(q, LANE_URGENT, "w1", 1, 0, e, &n), 0);
    CHECK_INT(n, 1);
    if (n != 1)
        return -1;
    CHECK_INT(queue_begin_send(q, e, "w1", at, 30000, j), QUEUE_BEGIN_SEND);
    CHECK_INT(j->began_ms, at);
    CHECK_INT(j->attempts, before + 1);
    return 0;
}

/* The worker gives FINISH the attempt's line (what its BEGIN wrote): the
 * stored timeline is the one FINISH makes from the record. */
static void test_attempt_given(queue *q)
{
    long long now = now_ms();
    char id1[QUEUE_ID_MAX], id2[QUEUE_ID_MAX], id3[QUEUE_ID_MAX], want[160], b[256];
    queue_entry e;
    queue_job j;
    snprintf(want, sizeof want, "%lld\tsending\tattempt 1 by w1\n%lld\tsent\tvia m1: r1", now, now + 5);
    /* given */
    if (begin_at(q, msg("given-1", LANE_URGENT, now), now, 0, id1, &e, &j) == 0) {
        queue_outcome o = { .kind = QUEUE_OUT_SENT, .route = "m1", .refs = "r1", .now_ms = now + 5,
                            .began_ms = j.began_ms, .attempt = j.attempts, .owner = "w1" };
        CHECK_INT(queue_finish(q, &e, id1, &o), 0);
        CHECK_STR(stored_tl(id1, b, sizeof b), want);
        queue_job_clear(&j);
    }
    /* made from the record */
    if (begin_at(q, msg("given-2", LANE_URGENT, now), now, 0, id2, &e, &j) == 0) {
        queue_outcome o = { .kind = QUEUE_OUT_SENT, .route = "m1", .refs = "r1", .now_ms = now + 5 };
        CHECK_INT(queue_finish(q, &e, id2, &o), 0);
        CHECK_STR(stored_tl(id2, b, sizeof b), want);
        queue_job_clear(&j);
    }
    /* a wait gives the third attempt back, its number read from the given line;
     * a line stored already (a gateway from before) is not stored twice */
    if (begin_at(q, msg("given-3", LANE_URGENT, now), now, 2, id3, &e, &j) == 0) {
        Rdo("HSET %s%s tl %lld\tsending\tattempt 3 by w1", K("msg:"), id3, now);
        queue_outcome o = { .kind = QUEUE_OUT_WAIT, .route = "", .refs = "", .detail = "quiet hours",
                            .retry_at_ms = now + 60000, .now_ms = now + 5,
                            .began_ms = j.began_ms, .attempt = j.attempts, .owner = "w1" };
        CHECK_INT(queue_finish(q, &e, id3, &o), 0);
        CHECK_STR(field(q, id3, "attempts", b, sizeof b), "2");
        CHECK_STR(field(q, id3, "status", b, sizeof b), "queued");
        CHECK_INT(stored_tl_count(id3, "\tsending\t"), 1);
        CHECK_INT(stored_tl_count(id3, "\twaiting\tuntil "), 1);
        queue_job_clear(&j);
        /* the attempt ended: a late FINISH of it changes nothing */
        CHECK_INT(queue_finish(q, &e, id3, &o), QUEUE_ERR_STATE);
    }
    Rdo("DEL %s", K("sched"));
}

static void test_sent_notes(queue *q)
{
    const long long DAY = 86400000;
    const char *to = "+8613900001111", *to2 = "+8613900002222";
    long long t0 = (now_ms() / DAY) * DAY + 10 * 3600000LL;    /* 10:00 UTC today */
    char a[QUEUE_ID_MAX], b[QUEUE_ID_MAX], c[QUEUE_ID_MAX], k[64], buf[256], want[256];
    char day0[16], day3[16], key0[64], key3[64];
    /* the day's key is the UTC day, whatever the process's time zone */
    queue_utc_day(1796169600000LL - 1, day0);
    CHECK_STR(day0, "2026-12-01");
    queue_utc_day(1796169600000LL, day0);
    CHECK_STR(day0, "2026-12-02");
    queue_utc_day(0, day0);
    CHECK_STR(day0, "1970-01-01");
    queue_utc_day(t0, day0);
    queue_utc_day(t0 + 3 * DAY, day3);
    snprintf(key0, sizeof key0, K("sentday:%s"), day0);
    snprintf(key3, sizeof key3, K("sentday:%s"), day3);
    Rdo("DEL %s %s " K("sent:%s") " " K("sent:%s"), key0, key3, to, to2);

    note_send(q, "note-a", to, t0, a);
    note_send(q, "note-b", to, t0 + 3600000, b);
    note_send(q, "note-c", to, t0 + 3 * DAY, c);
    /* one field a number a day, oldest first; no key of its own */
    redisReply *r = R("HGET %s %s", key0, to);
    snprintf(want, sizeof want, "%lld|rights_notice|%s %lld|rights_notice|%s", t0, a,
             t0 + 3600000, b);
    CHECK_STR(r && r->type == REDIS_REPLY_STRING ? r->str : "(nil)", want);
    freeReplyObject(r);
    CHECK_INT(RI("EXISTS " K("sent:%s"), to), 0);
    /* the day's hash lives the keeping time past the end of its day */
    CHECK_INT(RI("PEXPIRETIME %s", key0), (t0 / DAY + 1) * DAY + QUEUE_SENT_NOTE_MS);
    CHECK_INT(RI("PEXPIRETIME %s", key3), (t0 / DAY + 4) * DAY + QUEUE_SENT_NOTE_MS);

    snprintf(want, sizeof want, "rights_notice|%s", a);
    CHECK_STR(latest(q, to, t0 + 1800000, buf, sizeof buf), want);
    CHECK_STR(latest(q, to, t0, buf, sizeof buf), want);
    snprintf(want, sizeof want, "rights_notice|%s", b);
    CHECK_STR(latest(q, to, t0 + 7200000, buf, sizeof buf), want);
    CHECK_STR(latest(q, to, t0 + 2 * DAY, buf, sizeof buf), want);      /* days back */
    CHECK_STR(latest(q, to, t0 + 3 * DAY - 1, buf, sizeof buf), want);  /* same day, before c */
    snprintf(want, sizeof want, "rights_notice|%s", c);
    CHECK_STR(latest(q, to, t0 + 3 * DAY + 1, buf, sizeof buf), want);
    CHECK_STR(latest(q, to, t0 + 33 * DAY, buf, sizeof buf), want);
    CHECK_STR(latest(q, to, t0 - 1, buf, sizeof buf), "(none)");
    CHECK_STR(latest(q, to, t0 + 35 * DAY, buf, sizeof buf), "(none)"); /* past keeping */
    CHECK_STR(latest(q, "+8613900009999", t0, buf, sizeof buf), "(none)");

    /* a number sent to often: the day's last 16 kept */
    char ids[20][QUEUE_ID_MAX];
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "note-many-%d", i);
        note_send(q, k, to2, t0 + i, ids[i]);
    }
    r = R("HGET %s %s", key0, to2);
    int entries = 0;
    if (r && r->type == REDIS_REPLY_STRING) {
        entries = 1;
        for (const char *s = r->str; *s; s++)
            entries += *s == ' ';
        snprintf(want, sizeof want, "%lld|rights_notice|%s ", t0 + 4, ids[4]);
        CHECK(strncmp(r->str, want, strlen(want)) == 0);
    }
    freeReplyObject(r);
    CHECK_INT(entries, 16);
    snprintf(want, sizeof want, "rights_notice|%s", ids[19]);
    CHECK_STR(latest(q, to2, t0 + 100, buf, sizeof buf), want);
    snprintf(want, sizeof want, "rights_notice|%s", ids[7]);
    CHECK_STR(latest(q, to2, t0 + 7, buf, sizeof buf), want);

    /* a note of an earlier version (the number's sorted set) still counts
     * when it is the latest (the day's notes before t0 + 4 were trimmed) */
    Rdo("ZADD " K("sent:%s") " %lld survey|oldid", to2, t0 - 5);
    CHECK_STR(latest(q, to2, t0 + 2, buf, sizeof buf), "survey|oldid");
    snprintf(want, sizeof want, "rights_notice|%s", ids[19]);
    CHECK_STR(latest(q, to2, t0 + 100, buf, sizeof buf), want);

    /* an outcome other than sent notes nothing */
    Rdo("DEL %s", key0);
    char d[QUEUE_ID_MAX];
    queue_new_msg m = msg("note-retry", LANE_URGENT, t0);
    m.to = to;
    queue_outcome out = { .kind = QUEUE_OUT_RETRY, .route = "m1", .detail = "busy",
                          .retry_at_ms = t0 + 60000, .now_ms = t0,
                          .note_to = to, .note_keep_ms = QUEUE_SENT_NOTE_MS };
    send_with(q, m, &out, d);
    CHECK_INT(RI("EXISTS %s", key0), 0);
    Rdo("ZREM " K("sched") " %s", d);
    Rdo("DEL %s %s " K("sent:%s"), key0, key3, to2);
}

static void test_dlr(queue *q)
{
    char id[QUEUE_ID_MAX], id2[QUEUE_ID_MAX], b[256];
    queue_dlr_result res;
    long long now = now_ms();
    sent3(q, "dlr-1", "7,8,9", id);
    CHECK(RI("PTTL " K("ref:m1:+8613800138000:8")) > 50000);
    CHECK_INT(queue_dlr_report(q, "m1", "+8613800138000", 7, 1, "TP-ST 0x00", 1, now, &res), 0);
    CHECK_INT(res.matched, 1);
    CHECK_INT(res.part, 1);
    CHECK_STR(res.id, id);
    CHECK_STR(res.status, "sent");
    CHECK_INT(queue_dlr_report(q, "m1", "+8613800138000", 8, -1, "TP-ST 0x20", 1, now, &res), 0);
    CHECK_STR(res.status, "sent");
    CHECK_STR(field(q, id, "dlr", b, sizeof b), "DP.");
    CHECK_INT(queue_dlr_report(q, "m1", "+8613800138000", 8, 1, "TP-ST 0x00", 1, now, &res), 0);
    CHECK_INT(queue_dlr_report(q, "m1", "+8613800138000", 9, 1, "TP-ST 0x00", 1, now, &res), 0);
    CHECK_STR(res.status, "delivered");
    CHECK_STR(field(q, id, "status", b, sizeof b), "delivered");
    CHECK(timeline_has(q, id, "report", "part 3/3 delivered (TP-ST 0x00)"));
    CHECK(timeline_has(q, id, "delivered", "status reports for all parts"));
    /* a repeated final report changes nothing; a later failure neither */
    CHECK_INT(queue_dlr_report(q, "m1", "+8613800138000", 9, 0, "TP-ST 0x46", 1, now, &res), 0);
    CHECK_STR(res.status, "delivered");
    redisReply *r = R("HGET " K("stats") " delivered:rights_notice:m1");
    CHECK(r && r->type == REDIS_REPLY_STRING && !strcmp(r->str, "1"));
    freeReplyObject(r);
    CHECK_INT(day_ctr(now, "rights_notice:delivered"), 1);

    /* same references on another message: the newer one owns them */
    sent3(q, "dlr-2", "9,10,11", id2);
    CHECK_INT(queue_dlr_report(q, "m1", "+8613800138000", 10, 0, "TP-ST 0x46", 1, now, &res), 0);
    CHECK_STR(res.id, id2);
    CHECK_STR(res.status, "failed");
    CHECK_STR(field(q, id2, "status", b, sizeof b), "failed");
    CHECK_INT(queue_dlr_report(q, "m1", "+8613800138000", 9, 1, "TP-ST 0x00", 1, now, &res), 0);
    CHECK_STR(res.id, id2);
    CHECK_STR(res.status, "failed");        /* failed stays failed */
    CHECK_INT(day_ctr(now, "rights_notice:failed"), 1);

    /* another recipient, another route, or an unknown reference: unmatched */
    CHECK_INT(queue_dlr_report(q, "m1", "+8613800138999", 9, 1, "x", 0, now, &res), 0);
    CHECK_INT(res.matched, 0);
    CHECK_INT(RI("EXISTS " K("reports:unmatched")), 0);   /* not kept yet */
    CHECK_INT(queue_dlr_report(q, "m2", "+8613800138000", 9, 1, "x", 1, now, &res), 0);
    CHECK_INT(res.matched, 0);
    CHECK_INT(RI("XLEN " K("reports:unmatched")), 1);
    r = R("HGET " K("stats") " report_unmatched:-:m2");
    CHECK(r && r->type == REDIS_REPLY_STRING && !strcmp(r->str, "1"));
    freeReplyObject(r);
    /* bad refs index nothing */
    CHECK_INT(queue_dlr_index(q, "m1", "+8613800138000", "", id, 60000, now), 0);
    CHECK_INT(queue_dlr_index(q, "m1", "+8613800138000", "abc", id, 60000, now), 0);
}

/* The last inbound entry's field `name`, into buf. */
static const char *last_inbound(const char *name, char *buf, size_t len)
{
    buf[0] = '\0';
    redisReply *r = R("XREVRANGE " K("inbound") " + - COUNT 1");
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        redisReply *f = r->element[0]->element[1];
        for (size_t i = 0; i + 1 < f->elements; i += 2)
            if (!strcmp(f->element[i]->str, name))
                snprintf(buf, len, "%s", f->element[i + 1]->str);
    }
    freeReplyObject(r);
    return buf;
}

static void test_inbound_parts(queue *q)
{
    long long before = RI("XLEN " K("inbound")), now = now_ms();
    int dup = -1, stored = -1;
    char b[256];
    /* part 2 of 2 first, then a copy of it, then part 1 */
    CHECK_INT(queue_inbound_part(q, "m1", "+8613900000006", "第二部分", now, "id|77|2|2|第二部分",
                                 "+8613900000006|77|2", 2, 2, 60000, 30000, now, &dup, &stored), 0);
    CHECK_INT(dup, 0);
    CHECK_INT(stored, 0);
    CHECK_INT(RI("ZCARD " K("inparts:due")), 1);
    CHECK_INT(queue_inbound_part(q, "m1", "+8613900000006", "第二部分", now, "id|77|2|2|第二部分",
                                 "+8613900000006|77|2", 2, 2, 60000, 30000, now, &dup, &stored), 0);
    CHECK_INT(dup, 1);
    CHECK_INT(RI("XLEN " K("inbound")), before);
    CHECK_INT(queue_inbound_part(q, "m2", "+8613900000006", "第一部分", now, "id|77|2|1|第一部分",
                                 "+8613900000006|77|2", 1, 2, 60000, 30000, now, &dup, &stored), 0);
    CHECK_INT(dup, 0);
    CHECK_INT(stored, 1);
    CHECK_INT(RI("XLEN " K("inbound")), before + 1);
    CHECK_STR(last_inbound("text", b, sizeof b), "第一部分第二部分");
    CHECK_STR(last_inbound("route", b, sizeof b), "m1");
    CHECK_STR(last_inbound("partial", b, sizeof b), "0");
    CHECK_INT(RI("ZCARD " K("inparts:due")), 0);
    /* the whole message again, later: every part is a copy */
    CHECK_INT(queue_inbound_part(q, "m1", "+8613900000006", "第一部分", now, "id|77|2|1|第一部分",
                                 "+8613900000006|77|2", 1, 2, 60000, 30000, now, &dup, &stored), 0);
    CHECK_INT(dup, 1);
    CHECK_INT(RI("ZCARD " K("inparts:due")), 0);
    /* a whole SMS: stored at once, once */
    CHECK_INT(queue_inbound_part(q, "m1", "+8613900000007", "1121", now, "id|-1|1|1|1121",
                                 "+8613900000007|-1|1", 1, 1, 60000, 30000, now, &dup, &stored), 0);
    CHECK_INT(stored, 1);
    CHECK_INT(queue_inbound_part(q, "m1", "+8613900000007", "1121", now, "id|-1|1|1|1121",
                                 "+8613900000007|-1|1", 1, 1, 60000, 30000, now, &dup, &stored), 0);
    CHECK_INT(dup, 1);
    CHECK_INT(RI("XLEN " K("inbound")), before + 2);
    /* 2 of 3 parts, then the timeout: stored with what came, flagged partial */
    CHECK_INT(queue_inbound_part(q, "m1", "+8613900000008", "一", now, "id|5|3|1",
                                 "+8613900000008|5|3", 1, 3, 60000, 1000, now, &dup, &stored), 0);
    CHECK_INT(queue_inbound_part(q, "m1", "+8613900000008", "三", now, "id|5|3|3",
                                 "+8613900000008|5|3", 3, 3, 60000, 1000, now, &dup, &stored), 0);
    int flushed = -1;
    CHECK_INT(queue_inbound_sweep(q, now + 500, &flushed), 0);
    CHECK_INT(flushed, 0);
    CHECK_INT(queue_inbound_sweep(q, now + 1000, &flushed), 0);
    CHECK_INT(flushed, 1);
    CHECK_STR(last_inbound("text", b, sizeof b), "一三");
    CHECK_STR(last_inbound("partial", b, sizeof b), "1");
    CHECK_INT(RI("XLEN " K("inbound")), before + 3);
    CHECK_INT(queue_inbound_sweep(q, now + 5000, &flushed), 0);
    CHECK_INT(flushed, 0);
}

static void test_noscript_oom_reconnect(queue *q)
{
    long long now = now_ms();
    char id[QUEUE_ID_MAX], b[256];
    /* The script cache is flushed under us: EVAL takes over. */
    Rdo("SCRIPT FLUSH");
    queue_new_msg m[2] = { msg("ns-1", LANE_URGENT, now), msg("ns-2", LANE_URGENT, now) };
    queue_enq_result res[2];
    CHECK_INT(queue_enqueue(q, m, 2, res), 0);
    CHECK_INT(res[0].status, 0);
    CHECK_INT(res[1].status, 0);
    Rdo("SCRIPT FLUSH");
    queue_entry e[2];
    int n;
    queue_job j;
    CHECK_INT(queue_read(q, "w8", 2, 0, e, &n), 0);
    CHECK_INT(n, 2);
    CHECK_INT(queue_begin_send(q, &e[0], "w8", now, 30000, &j), QUEUE_BEGIN_SEND);
    queue_job_clear(&j);
    CHECK_INT(queue_begin_send(q, &e[1], "w8", now, 30000, &j), QUEUE_BEGIN_SEND);
    queue_job_clear(&j);

    /* At maxmemory a new message is refused with Redis's words... */
    Rdo("CONFIG SET maxmemory 1");
    CHECK_INT(enqueue1(q, msg("oom-1", LANE_URGENT, now), id), QUEUE_ERR_REFUSED);
    CHECK_HAS(queue_errstr(q), "OOM");
    CHECK_INT(RI("EXISTS " K("idem:oom-1")), 0);
    /* ...but the outcome of a message already sent is still recorded. */
    Rdo("SCRIPT FLUSH");
    queue_outcome out = { .kind = QUEUE_OUT_SENT, .route = "sink", .refs = "x", .now_ms = now };
    CHECK_INT(queue_finish(q, &e[0], e[0].msg_id, &out), 0);
    Rdo("CONFIG SET maxmemory 0");
    CHECK_STR(field(q, e[0].msg_id, "status", b, sizeof b), "sent");
    CHECK_INT(queue_finish(q, &e[1], e[1].msg_id, &out), 0);

    /* The server drops our connection: one call fails, the next reconnects. */
    Rdo("CLIENT KILL TYPE normal SKIPME yes");
    json_t *o = NULL;
    CHECK_INT(queue_get(q, e[0].msg_id, &o), QUEUE_ERR_CONN);
    CHECK_HAS(queue_errstr(q), getenv("REDIS_SOCK"));
    CHECK_INT(queue_get(q, e[0].msg_id, &o), 0);
    json_decref(o);
}

static void test_keys(void)
{
    /* Every key is ours under "{htest}:" or the foreign one we planted. */
    unsigned long long cursor = 0;
    int ours = 0, foreign = 0, stray = 0;
    do {
        redisReply *r = R("SCAN %llu COUNT 100", cursor);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            CHECK(0);
            return;
        }
        cursor = strtoull(r->element[0]->str, NULL, 10);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *k = r->element[1]->element[i]->str;
            if (!strncmp(k, "{" P "}:", strlen(P) + 3))
                ours++;
            else if (!strcmp(k, "foreign:key"))
                foreign++;
            else {
                stray++;
                fprintf(stderr, "stray key: %s\n", k);
            }
        }
        freeReplyObject(r);
    } while (cursor != 0);
    CHECK(ours > 5);
    CHECK_INT(foreign, 1);
    CHECK_INT(stray, 0);
    /* And the ones the layout promises are there, found by SCAN MATCH. */
    int lanes = 0, stats = 0;
    cursor = 0;
    do {
        redisReply *r = R("SCAN %llu MATCH %s COUNT 100", cursor, "{" P "}:*");
        cursor = strtoull(r->element[0]->str, NULL, 10);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            const char *k = r->element[1]->element[i]->str;
            lanes += !strcmp(k, K("lane:urgent")) || !strcmp(k, K("lane:bulk"));
            stats += !strcmp(k, K("stats")) || !strcmp(k, K("inbound"));
        }
        freeReplyObject(r);
    } while (cursor != 0);
    CHECK_INT(lanes, 2);
    CHECK_INT(stats, 2);
}

int main(void)
{
    const char *sock = getenv("REDIS_SOCK");
    if (!sock || !sock[0]) {
        printf("test_queue: REDIS_SOCK not set (run tests/integration/queue_test.sh); skipped\n");
        return TEST_REPORT();
    }
    /* hiredis writes with write(2): a socket closed by the server raises
     * SIGPIPE, which the gateway ignores too (see queue.h). */
    signal(SIGPIPE, SIG_IGN);
    struct timeval tv = { 2, 0 };
    raw = redisConnectUnixWithTimeout(sock, tv);
    if (!raw || raw->err) {
        fprintf(stderr, "cannot connect to %s\n", sock);
        return 1;
    }
    Rdo("SET foreign:key untouched");

    test_connect_errors();
    queue *q = open_q(P);
    CHECK(q != NULL);
    if (!q)
        return TEST_REPORT();
    test_enqueue(q);
    test_read_order_and_sent(q);
    test_sparse_record(q);
    test_scheduled(q);
    test_promote_race(q);
    test_lane_deleted(q);
    test_stale_and_malformed(q);
    test_release(q);
    test_reclaim(q);
    test_stats(q);
    test_batch_scripts(q);
    test_case_and_day(q);
    test_block(q);
    test_lease_inbound(q);
    test_sent_notes(q);
    test_attempt_given(q);
    test_dlr(q);
    test_inbound_parts(q);
    test_bodies_index();
    test_noscript_oom_reconnect(q);
    queue_free(q);
    /* The raw connection was killed with the others: reopen it. */
    redisFree(raw);
    raw = redisConnectUnixWithTimeout(sock, tv);
    test_keys();
    redisReply *r = R("GET foreign:key");
    CHECK(r && r->type == REDIS_REPLY_STRING && !strcmp(r->str, "untouched"));
    freeReplyObject(r);
    redisFree(raw);
    return TEST_REPORT();
}
