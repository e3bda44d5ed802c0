/* retention.h -- purging personal text from Redis after its days, while
 * the records, counts and figures built on it remain.
 *
 * Part of queue/ (the only code that speaks Redis); it shares queue.c's
 * connection through queue/internal.h. What goes, and what stays
 * (docs/redis-keys.md, "Retention"):
 *   {p}:msg:<id>              `text` and `vars` emptied, `body_purged_at`
 *                             set, a timeline line; status, timeline,
 *                             route, parts, family, times stay until the
 *                             record itself expires (retention_days)
 *   {p}:survey:replies:<period> each answer's raw texts and suggestion
 *                             emptied, `text_purged_at` set (and
 *                             `suggestion_purged` when there was one);
 *                             status and ratings stay
 *   {p}:replies:other         entries moved, without `text` and
 *                             `suggestion`, into {p}:replies:purged
 *   {p}:inbound               entries deleted once every consumer group
 *                             has read and acknowledged them
 * The work is found through time-ordered indexes, never by SCAN:
 *   {p}:bodies        zset  message id, score = created ms (enqueue adds)
 *   {p}:replytexts    zset  "<period>|<field>", score = ms of its last reply
 *                           (the reply script adds)
 *   {p}:replies:purged zset JSON of a purged other reply, score = ms of
 *                           its stream entry
 *   {p}:retention     hash  running totals of what was purged, last run
 * Members leave an index when purged, so each run starts where the last
 * one stopped; batches of `batch` ids per round trip. */
#ifndef HERALD_QUEUE_RETENTION_H
#define HERALD_QUEUE_RETENTION_H

#include "queue/queue.h"

typedef struct queue_purge_req {
    long long now_ms;          /* the clock: written as the purge time */
    long long body_before_ms;  /* messages created at or before this lose text and
                                  vars (<= 0: none) */
    long long reply_before_ms; /* replies received at or before this lose their raw
                                  text; inbound entries are deleted (<= 0: none) */
    int batch;                 /* ids per round trip (1..1000; 0: 500) */
    int max_rounds;            /* round trips per kind before returning with more = 1
                                  (0: no bound) */
} queue_purge_req;

typedef struct queue_purge_result {
    long long bodies;          /* message records whose text and vars were removed */
    long long bodies_expired;  /* index members whose record had expired already */
    long long bodies_active;   /* left for now: still queued or being sent */
    long long survey_replies;  /* survey answers whose raw texts were removed */
    long long other_replies;   /* replies outside surveys moved without their text */
    long long inbound;         /* inbound stream entries deleted */
    long long inbound_unread;  /* old inbound entries kept: a consumer group has not
                                  read or acknowledged them yet */
    int more;                  /* 1: max_rounds was reached; call again */
} queue_purge_result;

/* Purges what r asks for, in batches, and adds the counts to {p}:retention.
 * Safe with several gateways at once: every batch is one script that checks
 * each item again. Returns 0 (res filled) or a QUEUE_ERR_*; on an error
 * res holds what was purged before it. */
int queue_retention_purge(queue *q, const queue_purge_req *r, queue_purge_result *res);

/* {p}:retention as an object of numbers (empty when never run). Caller decrefs. */
int queue_retention_totals(queue *q, json_t **out);

#endif
