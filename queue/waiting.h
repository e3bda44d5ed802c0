/* waiting.h -- what waits, per family: a bounded look at the lanes and the
 * schedule for the office console (gateway/console.c).
 *
 * The lanes ({p}:lane:urgent, {p}:lane:bulk) hold one entry per message
 * waiting or in flight, carrying only the message id; the family is in
 * the record {p}:msg:<id>. So the figure is a scan: the oldest `max`
 * entries of each lane and the first `max` members of {p}:sched are read,
 * then each one's record (family, status) in one pipeline. A message
 * counts as waiting when it is in a lane with status `queued` (not yet
 * taken by a worker: those are `sending`); as scheduled when it is in
 * {p}:sched (a future send_at or a retry's back-off). The scan is exact
 * while every lane and the schedule hold at most `max` entries; beyond
 * that the rest are counted in "unscanned" and "exact" is false. */
#ifndef HERALD_QUEUE_WAITING_H
#define HERALD_QUEUE_WAITING_H

#include <jansson.h>
#include "queue/queue.h"

/* *out = {"waiting":{"<family>":n,...},"scheduled":{"<family>":n,...},
 *         "limit":max,"scanned":n,"unscanned":n,"exact":true|false}
 * with every family of the catalogue present (0 when none). Cost: at most
 * 3 + 3*max small commands, in two pipelines. Caller decrefs. Returns 0
 * or a QUEUE_ERR_* (queue_errstr for the text). */
int queue_waiting_by_family(queue *q, int max, json_t **out);

#endif
