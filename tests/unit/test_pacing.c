/* test_pacing.c -- quiet hours and local days (gateway/pacing.c) and the
 * shared rate limit and caps (queue_pace), all through an injected clock:
 * every function takes "now" from the test, so an hour or a day passes in
 * a microsecond. queue_pace needs REDIS_SOCK (a private redis-server, as
 * tests/run.sh starts); without it those checks are skipped and say so. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis.h>

#include "gateway/pacing.h"
#include "queue/queue.h"
#include "tests/unit/test.h"

/* 2026-12-01 hh:mm:00 in Beijing (UTC+8) as ms. */
static long long beijing(int day, int hh, int mm)
{
    struct tm t = { .tm_year = 2026 - 1900, .tm_mon = 11, .tm_mday = day, .tm_hour = hh, .tm_min = mm };
    return ((long long)timegm(&t) - 8 * 3600) * 1000;
}

static void test_quiet_hours(void)
{
    pacing_set_timezone("Asia/Shanghai");
    int from = 21 * 60, to = 8 * 60;
    CHECK_INT(pacing_quiet_until(from, to, beijing(1, 12, 0)), 0);
    CHECK_INT(pacing_quiet_until(from, to, beijing(1, 20, 59)), 0);
    /* 21:00 is quiet until 08:00 the next day */
    CHECK_INT(pacing_quiet_until(from, to, beijing(1, 21, 0)), beijing(2, 8, 0));
    CHECK_INT(pacing_quiet_until(from, to, beijing(1, 23, 30)), beijing(2, 8, 0));
    /* after midnight: until 08:00 the same day */
    CHECK_INT(pacing_quiet_until(from, to, beijing(2, 3, 0)), beijing(2, 8, 0));
    CHECK_INT(pacing_quiet_until(from, to, beijing(2, 8, 0)), 0);
    /* a window inside one day */
    CHECK_INT(pacing_quiet_until(12 * 60, 14 * 60, beijing(1, 13, 0)), beijing(1, 14, 0));
    CHECK_INT(pacing_quiet_until(12 * 60, 14 * 60, beijing(1, 14, 0)), 0);
    /* none */
    CHECK_INT(pacing_quiet_until(0, 0, beijing(1, 3, 0)), 0);
    /* 23:00 UTC is already 07:00 next morning in Beijing: the zone counts */
    CHECK_INT(pacing_quiet_until(from, to, beijing(2, 7, 0)), beijing(2, 8, 0));

    char day[16];
    long long left;
    pacing_local_day(beijing(1, 23, 0), day, &left);
    CHECK_STR(day, "20261201");
    CHECK_INT(left, 3600 * 1000LL);
    pacing_local_day(beijing(2, 0, 30), day, &left);   /* 2026-12-01 16:30 UTC */
    CHECK_STR(day, "20261202");
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

static long long pace(queue *q, const char *route, const char *id, const char *to, long long now,
                      long long interval, int burst, int hourly, int daily, int route_daily, char *why)
{
    queue_pace_req p = {
        .route = route, .msg_id = id, .to = to, .local_day = "20261201", .now_ms = now,
        .interval_ms = interval, .tolerance_ms = interval * (burst - 1),
        .recipient_hourly = hourly, .recipient_daily = daily, .route_daily = route_daily,
        .ms_to_midnight = 5000, .reserve = 1,
    };
    long long slot = -1;
    char w[160];
    int rc = queue_pace(q, &p, &slot, w, sizeof w);
    CHECK_INT(rc, 0);
    if (why)
        strcpy(why, w);
    return slot;
}

static void test_rate_limit(queue *q)
{
    long long t = 1800000000000LL;
    char why[160], id[32];
    /* 60/min: one a second; the first goes, the next ones reserve slots */
    CHECK_INT(pace(q, "r1", "m1", "+861", t, 1000, 1, 0, 0, 0, why), t);
    CHECK_INT(pace(q, "r1", "m2", "+862", t, 1000, 1, 0, 0, 0, why), t + 1000);
    CHECK_HAS(why, "rate limit of route r1");
    CHECK_INT(pace(q, "r1", "m3", "+863", t + 10, 1000, 1, 0, 0, 0, why), t + 2000);
    /* m2 coming back early still waits for its slot; at its slot it goes
     * without taking another one */
    CHECK_INT(pace(q, "r1", "m2", "+862", t + 500, 1000, 1, 0, 0, 0, why), t + 1000);
    CHECK_INT(pace(q, "r1", "m2", "+862", t + 1000, 1000, 1, 0, 0, 0, why), t + 1000);
    CHECK_INT(pace(q, "r1", "m4", "+864", t + 1000, 1000, 1, 0, 0, 0, why), t + 3000);
    /* asking without reserving changes nothing */
    queue_pace_req ask = { .route = "r1", .msg_id = "m9", .to = "+869", .local_day = "20261201",
                           .now_ms = t + 1000, .interval_ms = 1000, .reserve = 0 };
    long long s1 = 0, s2 = 0;
    CHECK_INT(queue_pace(q, &ask, &s1, why, sizeof why), 0);
    CHECK_INT(queue_pace(q, &ask, &s2, why, sizeof why), 0);
    CHECK_INT(s1, t + 4000);
    CHECK_INT(s2, t + 4000);
    /* another route has its own bucket */
    CHECK_INT(pace(q, "r2", "m5", "+865", t, 1000, 1, 0, 0, 0, why), t);
    /* a burst of 3 goes at once, then one a second */
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof id, "b%d", i);
        CHECK_INT(pace(q, "r3", id, "+86", t, 1000, 3, 0, 0, 0, why), t);
    }
    CHECK_INT(pace(q, "r3", "b3", "+86", t, 1000, 3, 0, 0, 0, why), t + 1000);
    /* an idle bucket refills: long after, the send goes at once */
    CHECK_INT(pace(q, "r1", "m6", "+866", t + 60000, 1000, 1, 0, 0, 0, why), t + 60000);

    /* a throttled route: no slot before the back-off ends, rate or not */
    CHECK_INT(queue_pace_backoff(q, "r4", t + 7000, t), 0);
    CHECK_INT(pace(q, "r4", "x1", "+86", t + 10, 0, 1, 0, 0, 0, why), t + 7000);
    CHECK_INT(pace(q, "r4", "x1", "+86", t + 7000, 0, 1, 0, 0, 0, why), t + 7000);
    CHECK_INT(pace(q, "r4", "x2", "+86", t + 7001, 0, 1, 0, 0, 0, why), t + 7001);
}

static void test_caps(queue *q)
{
    long long t = 1800000000000LL, h = 3600000;
    char why[160], id[32];
    /* 5 an hour to one number: the 6th waits until the first leaves the hour */
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "c%d", i);
        CHECK_INT(pace(q, "rc", id, "+8613900000001", t + i * 60000, 0, 1, 5, 20, 0, why), t + i * 60000);
    }
    CHECK_INT(pace(q, "rc", "c5", "+8613900000001", t + 300000, 0, 1, 5, 20, 0, why), t + h);
    CHECK_HAS(why, "recipient hourly cap");
    /* waiting took nothing: asked again after the hour, it goes */
    CHECK_INT(pace(q, "rc", "c5", "+8613900000001", t + h + 1, 0, 1, 5, 20, 0, why), t + h + 1);
    /* a message already counted (a retry) is not held by its own count */
    CHECK_INT(pace(q, "rc", "c4", "+8613900000001", t + h + 2, 0, 1, 5, 20, 0, why), t + h + 2);
    /* another number is not affected */
    CHECK_INT(pace(q, "rc", "d0", "+8613900000002", t + 300000, 0, 1, 5, 20, 0, why), t + 300000);

    /* 20 a day: 5 an hour for 4 hours, then the 21st waits a day */
    const char *n = "+8613900000003";
    int k = 0;
    for (int hr = 0; hr < 4; hr++)
        for (int i = 0; i < 5; i++, k++) {
            snprintf(id, sizeof id, "e%d", k);
            long long at = t + hr * h + i * 1000;
            CHECK_INT(pace(q, "rc", id, n, at, 0, 1, 5, 20, 0, why), at);
        }
    CHECK_INT(pace(q, "rc", "e20", n, t + 5 * h, 0, 1, 5, 20, 0, why), t + 86400000);
    CHECK_HAS(why, "recipient daily cap");

    /* a route's daily cap: 3 a day, then wait for local midnight */
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof id, "s%d", i);
        CHECK_INT(pace(q, "sim1", id, "+86", t, 0, 1, 0, 0, 3, why), t);
    }
    CHECK_INT(pace(q, "sim1", "s3", "+86", t, 0, 1, 0, 0, 3, why), t + 5000);
    CHECK_HAS(why, "daily cap of route sim1");
}

/* Removes the keys of `prefix`: the unit tests share one redis-server and
 * test_queue checks that nothing outside its own prefix is left around. */
static void drop_prefix(const char *sock, const char *prefix)
{
    struct timeval tv = { 2, 0 };
    redisContext *c = redisConnectUnixWithTimeout(sock, tv);
    if (!c || c->err) {
        redisFree(c);
        return;
    }
    char match[96];
    snprintf(match, sizeof match, "{%s}:*", prefix);
    unsigned long long cursor = 0;
    int left = 1000;                        /* bounded: a handful of keys */
    do {
        redisReply *r = redisCommand(c, "SCAN %llu MATCH %s COUNT 100", cursor, match);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            break;
        }
        cursor = strtoull(r->element[0]->str, NULL, 10);
        for (size_t i = 0; i < r->element[1]->elements; i++)
            freeReplyObject(redisCommand(c, "DEL %s", r->element[1]->element[i]->str));
        freeReplyObject(r);
    } while (cursor != 0 && --left > 0);
    redisFree(c);
}

int main(void)
{
    test_quiet_hours();
    const char *sock = getenv("REDIS_SOCK");
    if (!sock || !*sock) {
        printf("test_pacing: REDIS_SOCK not set: queue_pace checks skipped\n");
        return TEST_REPORT();
    }
    signal(SIGPIPE, SIG_IGN);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "pace%ld", (long)time(NULL));
    queue *q = open_q(prefix);
    CHECK(q != NULL);
    if (q) {
        test_rate_limit(q);
        test_caps(q);
        queue_free(q);
    }
    drop_prefix(sock, prefix);
    return TEST_REPORT();
}
