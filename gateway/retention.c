/* retention.c -- purging message texts and reply texts after their days
 * (see retention.h). The cutoffs and the --now parsing are pure; the
 * purge itself is queue_retention_purge(). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/log.h"
#include "gateway/retention.h"
#include "gateway/service.h"

#define HOUSEKEEP_ROUNDS 20      /* batches of 500 per kind per housekeeper round */

int gw_retention_parse_now(const char *s, long long wall_ms, long long *out,
                           char *err, size_t errlen)
{
    if (!s || !*s) {
        snprintf(err, errlen, "--now: empty time");
        return -1;
    }
    int y, m, d;
    char tail;
    if (strlen(s) == 10 && sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3) {
        char iso[32];
        snprintf(iso, sizeof iso, "%sT00:00:00Z", s);
        s = iso;
        if (svc_parse_time(iso, wall_ms, out, err, errlen) == 0) {
            time_t t = (time_t)(*out / 1000);
            struct tm tm;
            gmtime_r(&t, &tm);
            if (tm.tm_mday == d && tm.tm_mon == m - 1)     /* not 2026-02-30 */
                return 0;
        }
        snprintf(err, errlen, "--now: '%.10s' is not a date YYYY-MM-DD", iso);
        return -1;
    }
    char why[200];
    if (svc_parse_time(s, wall_ms, out, why, sizeof why) < 0) {
        snprintf(err, errlen, "--now: '%s' is not Unix seconds, an ISO 8601 time or date, "
                 "or +N[smhd]", s);
        return -1;
    }
    return 0;
}

void gw_retention_request(long long now_ms, long long body_ms, long long reply_ms,
                          long long record_ms, int max_rounds, queue_purge_req *out)
{
    memset(out, 0, sizeof *out);
    out->now_ms = now_ms;
    long long keep = body_ms > 0 ? body_ms : record_ms;
    out->body_before_ms = keep > 0 && now_ms > keep ? now_ms - keep : 0;
    out->reply_before_ms = reply_ms > 0 && now_ms > reply_ms ? now_ms - reply_ms : 0;
    out->batch = 500;
    out->max_rounds = max_rounds;
}

static json_t *utc(long long ms)
{
    if (ms <= 0)
        return json_null();
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

json_t *gw_retention_json(const queue_purge_req *rq, const queue_purge_result *res)
{
    return json_pack("{s:I, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I}, s:b, s:b}",
                     "now", (json_int_t)rq->now_ms, "now_utc", utc(rq->now_ms),
                     "message_text_before", utc(rq->body_before_ms),
                     "reply_text_before", utc(rq->reply_before_ms),
                     "purged",
                     "message_texts", (json_int_t)res->bodies,
                     "survey_replies", (json_int_t)res->survey_replies,
                     "other_replies", (json_int_t)res->other_replies,
                     "inbound", (json_int_t)res->inbound,
                     "index", "expired", (json_int_t)res->bodies_expired,
                     "active", (json_int_t)res->bodies_active,
                     "inbound_unread", res->inbound_unread != 0, "more", res->more != 0);
}

static long long clock_offset_ms;
static pthread_once_t clock_once = PTHREAD_ONCE_INIT;

/* $HERALD_RETENTION_CLOCK, read once: the offset from the wall clock. */
static void clock_init(void)
{
    const char *fake = getenv("HERALD_RETENTION_CLOCK");
    if (!fake || !*fake)
        return;
    long long now = svc_now_ms(), at = 0;
    char err[200];
    if (gw_retention_parse_now(fake, now, &at, err, sizeof err) == 0)
        clock_offset_ms = at - now;
    else
        gw_log(LOG_ERROR, "retention", "HERALD_RETENTION_CLOCK: %s (using the wall clock)", err);
}

long long gw_retention_now_ms(void)
{
    pthread_once(&clock_once, clock_init);
    return svc_now_ms() + clock_offset_ms;
}

int gw_retention_housekeep(queue *q, const gw_config *cfg, int *more)
{
    queue_purge_req rq;
    gw_retention_request(gw_retention_now_ms(), cfg->body_retention_ms, cfg->reply_text_retention_ms,
                         cfg->queue.retention_ms, HOUSEKEEP_ROUNDS, &rq);
    queue_purge_result res;
    int rc = queue_retention_purge(q, &rq, &res);
    *more = rc == 0 && res.more;
    if (res.bodies || res.survey_replies || res.other_replies || res.inbound)
        gw_log(LOG_INFO, "retention", "purged the text of %lld messages, %lld survey replies, "
               "%lld other replies; %lld inbound entries deleted%s",
               res.bodies, res.survey_replies, res.other_replies, res.inbound,
               res.more ? " (more to do)" : "");
    return rc;
}

int gw_retention_cli(gw_config *cfg, int argc, char **argv)
{
    const char *usage = "usage: herald retention purge [--now TIME] | herald retention status";
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "status") == 0 && argc == 2) {
        queue *q = svc_connect(&cfg->queue);
        if (!q)
            return EXIT_FAILURE_OTHER;
        json_t *t = NULL;
        int code = EXIT_DONE;
        if (queue_retention_totals(q, &t) < 0) {
            code = svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
        } else {
            json_t *o = json_pack("{s:I, s:I, s:I, s:o}",
                                  "record_days", (json_int_t)(cfg->queue.retention_ms / 86400000),
                                  "message_text_days", (json_int_t)(cfg->body_retention_ms / 86400000),
                                  "reply_text_days", (json_int_t)(cfg->reply_text_retention_ms / 86400000),
                                  "totals", t);
            svc_print_json(o);
            json_decref(o);
        }
        queue_free(q);
        return code;
    }
    if (strcmp(sub, "purge") != 0)
        return svc_die(EXIT_BAD_INPUT, "%s", usage);
    long long wall = svc_now_ms(), now = wall;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--now") == 0 && i + 1 < argc) {
            char err[300];
            if (gw_retention_parse_now(argv[++i], wall, &now, err, sizeof err) < 0)
                return svc_die(EXIT_BAD_INPUT, "%s", err);
        } else {
            return svc_die(EXIT_BAD_INPUT, "retention purge: unknown argument '%s' (%s)", argv[i], usage);
        }
    }
    queue *q = svc_connect(&cfg->queue);
    if (!q)
        return EXIT_FAILURE_OTHER;
    queue_purge_req rq;
    gw_retention_request(now, cfg->body_retention_ms, cfg->reply_text_retention_ms,
                         cfg->queue.retention_ms, 0, &rq);
    queue_purge_result res;
    int rc = queue_retention_purge(q, &rq, &res);
    int code = EXIT_DONE;
    json_t *j = gw_retention_json(&rq, &res);
    if (rc < 0) {
        code = svc_die(EXIT_FAILURE_OTHER, "redis: %s (purged before it: %lld message texts, "
                       "%lld survey replies, %lld other replies, %lld inbound)", queue_errstr(q),
                       res.bodies, res.survey_replies, res.other_replies, res.inbound);
    } else {
        svc_print_json(j);
    }
    json_decref(j);
    queue_free(q);
    return code;
}
