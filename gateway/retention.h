/* retention.h -- purging message texts and reply texts after their days.
 *
 * gateway.body_retention_days: a message's rendered text and variables are
 * removed from its record that long after it was created (a message still
 * queued or being sent keeps them until it is finished); the record itself
 * -- status, timeline, route, parts, family, times -- stays until
 * gateway.retention_days. survey.reply_text_retention_days: the raw text
 * of replies (survey answers, replies to other messages, the inbound
 * stream) is removed that long after it came in; the ratings, statuses and
 * so the survey's figures stay. The Redis side is queue/retention.h.
 *
 * The purge runs in every gateway's housekeeper (hourly, and again at once
 * while a backlog remains) and on demand: `herald retention purge
 * [--now TIME]`. The clock is a parameter everywhere, so a test can purge
 * "200 days later" without waiting. */
#ifndef HERALD_GW_RETENTION_H
#define HERALD_GW_RETENTION_H

#include <stddef.h>
#include <jansson.h>
#include "gateway/config.h"
#include "queue/retention.h"

#define GW_RETENTION_EVERY_MS (3600LL * 1000)   /* the housekeeper's period */

/* Reads a --now value: Unix seconds, an ISO 8601 time as svc_parse_time
 * reads it ("2027-06-19T10:00:00+08:00", "...Z", local without offset),
 * a date "2027-06-19" (00:00 UTC), or "+200d" (from wall_ms). Returns 0
 * and ms in *out, or -1 with the reason in err. Pure. */
int gw_retention_parse_now(const char *s, long long wall_ms, long long *out,
                           char *err, size_t errlen);

/* The purge request for now_ms: cutoffs now - body_ms and now - reply_ms
 * (0 for a kind whose days are 0). With body_ms 0 the message index is
 * still trimmed of records past record_ms (they have expired). Pure. */
void gw_retention_request(long long now_ms, long long body_ms, long long reply_ms,
                          long long record_ms, int max_rounds, queue_purge_req *out);

/* What a purge did, as the JSON `herald retention purge` prints:
 * {"now","now_utc","message_text_before","reply_text_before",
 *  "purged":{"message_texts","survey_replies","other_replies","inbound"},
 *  "index":{"expired","active"},"inbound_unread","more"}. Caller decrefs. */
json_t *gw_retention_json(const queue_purge_req *rq, const queue_purge_result *res);

/* The clock of the housekeeper's purge: the wall clock, moved by
 * $HERALD_RETENTION_CLOCK (a time as --now takes it; for tests). */
long long gw_retention_now_ms(void);

/* One housekeeper round: purges (bounded: a backlog is left for the next
 * round, *more = 1) and logs what went. Returns 0 or a QUEUE_ERR_*. */
int gw_retention_housekeep(queue *q, const gw_config *cfg, int *more);

/* `herald retention purge [--now TIME] | retention status`. Returns an exit code. */
int gw_retention_cli(gw_config *cfg, int argc, char **argv);

#endif
