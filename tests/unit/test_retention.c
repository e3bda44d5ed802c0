/* test_retention.c -- the pure parts of the retention purge: reading
 * --now and the cutoffs (gateway/retention.c). The purge itself, on a real
 * redis-server, is tests/integration/retention_test.sh. */
#include "gateway/retention.h"
#include "tests/unit/test.h"

#include <stdlib.h>

#define DAY 86400000LL

static void test_parse_now(void)
{
    char err[300];
    long long wall = 1764547200000LL;          /* 2025-12-01T00:00:00Z */
    long long t = 0;
    CHECK_INT(gw_retention_parse_now("1780000000", wall, &t, err, sizeof err), 0);
    CHECK_INT(t, 1780000000000LL);
    CHECK_INT(gw_retention_parse_now("2026-06-19", wall, &t, err, sizeof err), 0);
    CHECK_INT(t, 1781827200000LL);             /* 00:00 UTC */
    CHECK_INT(gw_retention_parse_now("2026-06-19T08:00:00+08:00", wall, &t, err, sizeof err), 0);
    CHECK_INT(t, 1781827200000LL);
    CHECK_INT(gw_retention_parse_now("2026-06-19T00:00:00Z", wall, &t, err, sizeof err), 0);
    CHECK_INT(t, 1781827200000LL);
    CHECK_INT(gw_retention_parse_now("+200d", wall, &t, err, sizeof err), 0);
    CHECK_INT(t, wall + 200 * DAY);
    CHECK_INT(gw_retention_parse_now("yesterday", wall, &t, err, sizeof err), -1);
    CHECK_HAS(err, "--now: 'yesterday'");
    CHECK_INT(gw_retention_parse_now("2026-02-30", wall, &t, err, sizeof err), -1);
    CHECK_INT(gw_retention_parse_now("2026-13-01", wall, &t, err, sizeof err), -1);
    CHECK_HAS(err, "not a date YYYY-MM-DD");
    CHECK_INT(gw_retention_parse_now("", wall, &t, err, sizeof err), -1);
    CHECK_INT(gw_retention_parse_now(NULL, wall, &t, err, sizeof err), -1);
}

static void test_request(void)
{
    queue_purge_req r;
    long long now = 1781827200000LL;
    gw_retention_request(now, 90 * DAY, 30 * DAY, 180 * DAY, 7, &r);
    CHECK_INT(r.now_ms, now);
    CHECK_INT(r.body_before_ms, now - 90 * DAY);
    CHECK_INT(r.reply_before_ms, now - 30 * DAY);
    CHECK_INT(r.batch, 500);
    CHECK_INT(r.max_rounds, 7);
    /* text kept as long as the record: the index is still trimmed of expired records */
    gw_retention_request(now, 0, 0, 180 * DAY, 0, &r);
    CHECK_INT(r.body_before_ms, now - 180 * DAY);
    CHECK_INT(r.reply_before_ms, 0);
    /* a clock before the epoch plus the days purges nothing */
    gw_retention_request(5 * DAY, 90 * DAY, 90 * DAY, 180 * DAY, 0, &r);
    CHECK_INT(r.body_before_ms, 0);
    CHECK_INT(r.reply_before_ms, 0);
}

static void test_json(void)
{
    queue_purge_req r;
    gw_retention_request(1781827200000LL, 90 * DAY, 90 * DAY, 180 * DAY, 0, &r);
    queue_purge_result res = { .bodies = 6, .bodies_active = 1, .survey_replies = 3,
                               .other_replies = 1, .inbound = 4 };
    json_t *j = gw_retention_json(&r, &res);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "now_utc")), "2026-06-19T00:00:00Z");
    CHECK_STR(json_string_value(json_object_get(j, "message_text_before")), "2026-03-21T00:00:00Z");
    json_t *p = json_object_get(j, "purged");
    CHECK_INT(json_integer_value(json_object_get(p, "message_texts")), 6);
    CHECK_INT(json_integer_value(json_object_get(p, "survey_replies")), 3);
    CHECK_INT(json_integer_value(json_object_get(p, "other_replies")), 1);
    CHECK_INT(json_integer_value(json_object_get(p, "inbound")), 4);
    CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "index"), "active")), 1);
    CHECK(json_is_false(json_object_get(j, "more")));
    json_decref(j);
}

int main(void)
{
    test_parse_now();
    test_request();
    test_json();
    return TEST_REPORT();
}
