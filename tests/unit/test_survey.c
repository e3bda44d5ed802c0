/* test_survey.c -- the survey's schedule through explicit clocks (the 23rd
 * at 10:00, a gateway down until 14:00, past the catch-up hour, month and
 * year ends, February, time zones: 10:00 in Beijing is 02:00 UTC), the send
 * window, the contact ranges; then, on the private redis-server in
 * REDIS_SOCK, the run claim (exactly one builder, resume, take-over) and
 * the reply record (a second reply keeps both texts). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway/service.h"
#include "gateway/survey.h"
#include "queue/survey.h"
#include "tests/unit/test.h"

/* ms of an ISO time */
static long long at(const char *iso)
{
    long long ms = 0;
    char err[200];
    if (svc_parse_time(iso, 0, &ms, err, sizeof err) < 0) {
        fprintf(stderr, "bad time in test: %s: %s\n", iso, err);
        exit(2);
    }
    return ms;
}

static void settings(survey_settings *s, const char *tz, int day)
{
    memset(s, 0, sizeof *s);
    s->enabled = 1;
    s->day = day;
    s->start_min = 10 * 60;
    s->end_min = 16 * 60;
    s->catch_up_min = 16 * 60;
    char err[300];
    if (survey_tz_load(&s->tz, tz, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }
    reply_opts_default(&s->ropts);
    s->reply_window_ms = 7 * 86400000LL;
}

static void test_schedule(void)
{
    survey_settings s;
    survey_slot slot;
    settings(&s, "Asia/Shanghai", 23);

    /* 10:00 in Beijing is 02:00 UTC */
    CHECK_INT(survey_decide(&s, at("2026-11-23T02:00:00Z"), &slot), SURVEY_DUE);
    CHECK_STR(slot.period, "2026-11");
    CHECK_INT(slot.run_ms, at("2026-11-23T10:00:00+08:00"));
    CHECK_INT(survey_decide(&s, at("2026-11-23T01:59:59Z"), &slot), SURVEY_NOT_YET);
    CHECK_INT(survey_decide(&s, at("2026-11-22T12:00:00Z"), &slot), SURVEY_NOT_YET);
    /* down until 14:00: still the day's run */
    CHECK_INT(survey_decide(&s, at("2026-11-23T14:00:00+08:00"), &slot), SURVEY_DUE);
    CHECK_INT(survey_decide(&s, at("2026-11-23T15:59:59+08:00"), &slot), SURVEY_DUE);
    /* past the catch-up hour, and the days after: a person runs it */
    CHECK_INT(survey_decide(&s, at("2026-11-23T16:00:00+08:00"), &slot), SURVEY_MISSED);
    CHECK_INT(survey_decide(&s, at("2026-11-30T09:00:00+08:00"), &slot), SURVEY_MISSED);
    CHECK_STR(slot.period, "2026-11");
    /* the local month decides the period: 23:30 UTC on Dec 31 is January in Beijing */
    CHECK_INT(survey_decide(&s, at("2026-12-31T23:30:00Z"), &slot), SURVEY_NOT_YET);
    CHECK_STR(slot.period, "2027-01");
    CHECK_INT(slot.run_ms, at("2027-01-23T02:00:00Z"));
    CHECK_INT(survey_decide(&s, at("2026-12-23T02:00:00Z"), &slot), SURVEY_DUE);
    CHECK_STR(slot.period, "2026-12");

    /* contacts: since the previous run day, up to the day before this one */
    int from, to;
    survey_contact_range(&s, "2026-11", &from, &to);
    CHECK_INT(from, 20261023); CHECK_INT(to, 20261122);
    survey_contact_range(&s, "2027-01", &from, &to);
    CHECK_INT(from, 20261223); CHECK_INT(to, 20270122);

    /* the send window */
    long long a, b;
    survey_window(&s, at("2026-11-23T10:00:00+08:00"), at("2026-11-23T08:00:00+08:00"), &a, &b);
    CHECK_INT(a, at("2026-11-23T10:00:00+08:00")); CHECK_INT(b, at("2026-11-23T16:00:00+08:00"));
    survey_window(&s, at("2026-11-23T10:00:00+08:00"), at("2026-11-23T14:00:00+08:00"), &a, &b);
    CHECK_INT(a, at("2026-11-23T14:00:00+08:00")); CHECK_INT(b, at("2026-11-23T16:00:00+08:00"));
    /* a hand run in the evening goes out in the next day's window */
    survey_window(&s, at("2026-11-23T10:00:00+08:00"), at("2026-11-23T19:30:00+08:00"), &a, &b);
    CHECK_INT(a, at("2026-11-24T10:00:00+08:00")); CHECK_INT(b, at("2026-11-24T16:00:00+08:00"));
    /* ... and on the last day of the month, in the next month's first day */
    survey_window(&s, at("2026-12-31T10:00:00+08:00"), at("2026-12-31T18:00:00+08:00"), &a, &b);
    CHECK_INT(a, at("2027-01-01T10:00:00+08:00"));

    char label[32];
    survey_period_label("2026-11", label, sizeof label);
    CHECK_STR(label, "2026年11月");
    CHECK_INT(survey_slot_of(&s, "2026-13", &slot), -1);
    CHECK_INT(survey_slot_of(&s, "2026-1", &slot), -1);
    CHECK_INT(survey_slot_of(&s, "november", &slot), -1);
    survey_settings_free(&s);

    /* February: a day 30 runs on the month's last day */
    settings(&s, "Asia/Shanghai", 30);
    survey_slot_of(&s, "2027-02", &slot);
    CHECK_INT(slot.run_ms, at("2027-02-28T10:00:00+08:00"));
    survey_slot_of(&s, "2028-02", &slot);
    CHECK_INT(slot.run_ms, at("2028-02-29T10:00:00+08:00"));
    survey_contact_range(&s, "2027-03", &from, &to);
    CHECK_INT(from, 20270228); CHECK_INT(to, 20270329);
    CHECK_INT(survey_decide(&s, at("2027-02-28T02:00:00Z"), &slot), SURVEY_DUE);
    survey_settings_free(&s);

    /* other zones: UTC, a fixed offset, and one with summer time */
    settings(&s, "UTC", 23);
    survey_slot_of(&s, "2026-11", &slot);
    CHECK_INT(slot.run_ms, at("2026-11-23T10:00:00Z"));
    survey_settings_free(&s);
    settings(&s, "+08:00", 23);
    survey_slot_of(&s, "2026-11", &slot);
    CHECK_INT(slot.run_ms, at("2026-11-23T02:00:00Z"));
    survey_settings_free(&s);
    settings(&s, "America/New_York", 23);
    survey_slot_of(&s, "2026-07", &slot);
    CHECK_INT(slot.run_ms, at("2026-07-23T14:00:00Z"));        /* EDT, -4 */
    survey_slot_of(&s, "2026-11", &slot);
    CHECK_INT(slot.run_ms, at("2026-11-23T15:00:00Z"));        /* EST, -5 */
    survey_settings_free(&s);

    survey_tz tz;
    char err[300];
    CHECK_INT(survey_tz_load(&tz, "Mars/Olympus_Mons", err, sizeof err), -1);
    CHECK_HAS(err, "unknown time zone 'Mars/Olympus_Mons'");
    CHECK_INT(survey_tz_load(&tz, "../etc/passwd", err, sizeof err), -1);
}

/* ---- on Redis ----------------------------------------------------------------- */

static queue *open_q(void)
{
    static char prefix[32];
    snprintf(prefix, sizeof prefix, "tsv%d", (int)getpid());    /* a fresh key space per run */
    queue_opts o = { .socket = getenv("REDIS_SOCK"), .prefix = prefix };
    char err[300];
    queue *q = queue_connect(&o, err, sizeof err);
    if (!q)
        fprintf(stderr, "connect: %s\n", err);
    return q;
}

static void test_claim(queue *a, queue *b)
{
    long long t = at("2026-11-23T02:00:00Z"), stale = 600000;
    CHECK_INT(queue_survey_claim(a, "2026-11", "gw-a", t, stale), QUEUE_CLAIM_OURS);
    CHECK_INT(queue_survey_claim(b, "2026-11", "gw-b", t + 5, stale), QUEUE_CLAIM_BUSY);
    /* gw-a restarted mid-build: resumes at once */
    CHECK_INT(queue_survey_claim(a, "2026-11", "gw-a", t + 1000, stale), QUEUE_CLAIM_OURS);
    CHECK_INT(queue_survey_done(b, "2026-11", "gw-b", "{}", t + 2000), QUEUE_ERR_STATE);
    CHECK_INT(queue_survey_done(a, "2026-11", "gw-a", "{\"batch\":3}", t + 2000), 0);
    CHECK_INT(queue_survey_claim(b, "2026-11", "gw-b", t + 3000, stale), QUEUE_CLAIM_DONE);
    CHECK_INT(queue_survey_claim(a, "2026-11", "gw-a", t + 3000, stale), QUEUE_CLAIM_DONE);
    json_t *run = NULL;
    CHECK_INT(queue_survey_run_get(a, "2026-11", &run), 0);
    CHECK_STR(json_string_value(json_object_get(run, "state")), "done");
    CHECK_INT(json_integer_value(json_object_get(json_object_get(run, "summary"), "batch")), 3);
    json_decref(run);
    CHECK_INT(queue_survey_run_get(a, "2031-01", &run), QUEUE_ERR_NOTFOUND);
    /* a builder that died: another takes over once the claim is stale */
    CHECK_INT(queue_survey_claim(a, "2026-12", "gw-a", t, stale), QUEUE_CLAIM_OURS);
    CHECK_INT(queue_survey_claim(b, "2026-12", "gw-b", t + stale - 1, stale), QUEUE_CLAIM_BUSY);
    CHECK_INT(queue_survey_claim(b, "2026-12", "gw-b", t + stale + 1, stale), QUEUE_CLAIM_OURS);
    CHECK_INT(queue_survey_done(a, "2026-12", "gw-a", "{}", t + stale + 2), QUEUE_ERR_STATE);
}

static void test_reply_record(queue *q)
{
    long long t = at("2026-11-23T10:00:00+08:00");
    queue_survey_item it = { "+8613900000001", "+8613900000001", "{\"phone\":\"+8613900000001\"}", t };
    CHECK_INT(queue_survey_items_put(q, "2026-11", &it, 1), 0);
    char buf[200];
    CHECK_INT(queue_survey_match(q, "+8613900000001", t + 3600000, 7 * 86400000LL, buf, sizeof buf), 0);
    CHECK_STR(buf, "2026-11|+8613900000001");
    CHECK_INT(queue_survey_match(q, "+8613900000001", t - 1, 7 * 86400000LL, buf, sizeof buf), QUEUE_ERR_NOTFOUND);
    /* two overlapping surveys to one number: a reply answers the latest
     * sent before it */
    queue_survey_item old = { "+8613900000002", "+8613900000002", "{}", t - 2 * 86400000LL };
    queue_survey_item cur = { "+8613900000002", "+8613900000002", "{}", t };
    CHECK_INT(queue_survey_items_put(q, "2026-10", &old, 1), 0);
    CHECK_INT(queue_survey_items_put(q, "2026-11", &cur, 1), 0);
    CHECK_INT(queue_survey_match(q, "+8613900000002", t + 60000, 7 * 86400000LL, buf, sizeof buf), 0);
    CHECK_STR(buf, "2026-11|+8613900000002");
    CHECK_INT(queue_survey_match(q, "+8613900000002", t - 86400000LL, 7 * 86400000LL, buf, sizeof buf), 0);
    CHECK_STR(buf, "2026-10|+8613900000002");
    char *last[2] = { NULL, NULL };
    const char *ph[2] = { "+8613900000002", "+8613900000077" };
    CHECK_INT(queue_survey_last(q, ph, 2, last), 0);
    char want[64];
    snprintf(want, sizeof want, "2026-11|%lld", t);
    CHECK_STR(last[0], want);
    CHECK(last[1] == NULL);
    free(last[0]);
    free(last[1]);
    CHECK_INT(queue_survey_match(q, "+8613900000001", t + 8 * 86400000LL, 7 * 86400000LL, buf, sizeof buf),
              QUEUE_ERR_NOTFOUND);
    /* two replies through the inbound stream (acked by the record script) */
    for (int i = 0; i < 2; i++) {
        CHECK_INT(queue_inbound_add(q, "modem1", "+8613900000001", i ? "谢谢" : "1121", t + 1000 * (i + 1)), 0);
        queue_inbound_msg m[4];
        int n = 0;
        CHECK_INT(queue_inbound_read(q, "test/replies", 0, 4, 0, m, &n), 0);
        CHECK_INT(n, 1);
        if (n != 1)
            return;
        queue_reply_rec r = { .entry = m[0].entry, .from = m[0].from, .text = m[0].text, .route = m[0].route,
                              .at_ms = m[0].at_ms,
                              .verdict_json = i ? "{\"status\":\"unparsed\",\"ratings\":[0,0,0,0],\"suggestion\":\"谢谢\"}"
                                                : "{\"status\":\"parsed\",\"ratings\":[1,1,2,1],\"suggestion\":\"\"}",
                              .period = "2026-11", .field = "+8613900000001", .now_ms = t };
        int first = -1;
        CHECK_INT(queue_reply_record(q, &r, &first), 0);
        CHECK_INT(first, i == 0);
        queue_inbound_msg_clear(&m[0]);
        /* nothing pending: the record acked it */
        CHECK_INT(queue_inbound_read(q, "test/replies", 1, 4, 0, m, &n), 0);
        CHECK_INT(n, 0);
    }
    json_t *reps = NULL;
    CHECK_INT(queue_survey_replies_get(q, "2026-11", &reps), 0);
    json_t *rep = json_object_get(reps, "+8613900000001");
    CHECK_STR(json_string_value(json_object_get(rep, "status")), "parsed");
    CHECK_INT(json_integer_value(json_array_get(json_object_get(rep, "ratings"), 2)), 2);
    CHECK_STR(json_string_value(json_object_get(rep, "suggestion")), "谢谢");
    CHECK_INT(json_array_size(json_object_get(rep, "raw")), 2);
    CHECK_STR(json_string_value(json_object_get(json_array_get(json_object_get(rep, "raw"), 0), "text")), "1121");
    json_decref(reps);
}

/* The batch itself: one survey per number, or per case when configured;
 * a rebuild enqueues nothing new (idempotency keys). */
static void test_build_per_case(queue *q)
{
    gw_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.templates_dir = "templates/shipped";
    cfg.signature = "【测试】";
    cfg.optout_line = "回TD退订";
    survey_settings s;
    settings(&s, "Asia/Shanghai", 23);
    s.template_name = "evaluation_survey";
    s.skip_recent_days = 0;
    long long now = at("2026-06-23T10:00:00+08:00");
    const char *cases[] = { "P-1", "P-2", "P-3" };
    for (int i = 0; i < 3; i++) {
        queue_contact c = { "+8613900000050", "party", cases[i], "刑检一部", "张三", 20260601 + i };
        CHECK(queue_contact_put(q, &c, now) >= 0);
    }
    queue_contact other = { "+8613900000051", "lawyer", "P-9", "刑检二部", "李四", 20260610 };
    CHECK(queue_contact_put(q, &other, now) >= 0);
    survey_plan p;
    char err[300];
    CHECK_INT(survey_build(q, &cfg, &s, "2026-06", now, 0, &p, err, sizeof err), 0);
    CHECK_INT(p.contacts, 4);
    CHECK_INT(p.batch, 2);
    CHECK_INT(p.duplicates, 2);
    s.per_case = 1;
    CHECK_INT(survey_build(q, &cfg, &s, "2026-06", now, 1, &p, err, sizeof err), 0);
    CHECK_INT(p.batch, 4);
    CHECK_INT(p.duplicates, 0);
    CHECK_INT(p.enqueued, 4);
    CHECK_INT(p.start_ms, now);
    CHECK_INT(p.end_ms, at("2026-06-23T16:00:00+08:00"));
    CHECK_INT(p.finish_ms, now + (p.end_ms - now) * 3 / 4);    /* even spread, no rate limit */
    json_t *items = NULL;
    CHECK_INT(queue_survey_items_get(q, "2026-06", &items), 0);
    CHECK_INT(json_object_size(items), 4);
    CHECK_STR(json_string_value(json_object_get(json_object_get(items, "+8613900000050|P-2"), "case_no")), "P-2");
    json_decref(items);
    /* built again (a builder that died half-way): nothing new is queued */
    CHECK_INT(survey_build(q, &cfg, &s, "2026-06", now + 1000, 1, &p, err, sizeof err), 0);
    CHECK_INT(p.enqueued, 0);
    CHECK_INT(p.duplicate_msgs, 4);
    /* a rate-limited route and a 2-minute window: the estimate runs past it */
    s.end_min = 10 * 60 + 2;
    cfg.nroutes = 1;
    cfg.routes[0].families = 1u << FAMILY_SURVEY;
    cfg.routes[0].rate_per_minute = 1;
    CHECK_INT(survey_build(q, &cfg, &s, "2026-06", now, 0, &p, err, sizeof err), 0);
    CHECK_INT(p.capacity_per_min, 1);
    CHECK_INT(p.finish_ms, now + 4 * 60000);
    survey_settings_free(&s);
}

int main(void)
{
    test_schedule();
    if (getenv("REDIS_SOCK")) {
        queue *a = open_q(), *b = open_q();
        CHECK(a && b);
        if (a && b) {
            test_claim(a, b);
            test_reply_record(a);
            test_build_per_case(a);
        }
        queue_free(a);
        queue_free(b);
    } else {
        printf("test_survey: REDIS_SOCK not set: Redis checks skipped\n");
    }
    return TEST_REPORT();
}
