/* bulletin.h -- subscriber lists and bulletin issues in Redis (手机报).
 *
 * The Redis side of the mobile bulletin; the key layout is in
 * docs/redis-keys.md ("Bulletins"):
 *   {p}:lists                    set     names of the subscriber lists
 *   {p}:list:<name>              hash    phone -> {"name","org","sms_only"} (JSON)
 *   {p}:optout                   set     opted-out numbers (read only here)
 *   {p}:bseq:<title>             string  last issue number of a title (INCR)
 *   {p}:bissue:<title>:<n>       hash    the issue: subject, counters, parts
 *   {p}:bissues                  zset    "<title>\t<n>" of every issue, score = created (ms)
 *   {p}:bcontent:<title>:<n>     string  the composed MMS content (MIME)
 *   {p}:brcpt:<title>:<n>        hash    phone -> recipient status
 *   {p}:bfb:<title>:<n>          set     phones that got the fallback SMS
 *   {p}:bmid:<MessageID>         string  "<title>\t<n>" for delivery reports
 * Functions return 0 or a QUEUE_ERR_* (queue_errstr for the text), like
 * the rest of queue/. Every counter change is one Lua script, so a
 * recipient is counted once per status however often an outcome or a
 * delivery report arrives. */
#ifndef HERALD_QUEUE_BULLETIN_H
#define HERALD_QUEUE_BULLETIN_H

#include <stddef.h>
#include <jansson.h>
#include "queue/queue.h"

/* ---- lists ------------------------------------------------------------ */

/* Adds or replaces a member (phone canonical). *added is 1 when new. */
int queue_list_put(queue *q, const char *list, const char *phone, const char *name,
                   const char *org, int sms_only, int *added);
/* Removes a member. *removed is 1 when it was there. */
int queue_list_remove(queue *q, const char *list, const char *phone, int *removed);
/* The members, sorted by phone: [{"phone","name","org","sms_only"}, ...];
 * an unknown list is an empty array. Caller decrefs. */
int queue_list_get(queue *q, const char *list, json_t **out);
/* 1 in *exists when the list has members. */
int queue_list_exists(queue *q, const char *list, int *exists);

/* Opted-out numbers: queue_optout_has() in queue/survey.h ({p}:optout,
 * written by the reply handling and `herald optout`). */

/* ---- issues ----------------------------------------------------------- */

/* Takes the next issue number of `title` (atomic INCR: never the same
 * number twice, even for two sends at once). */
int queue_bulletin_next_issue(queue *q, const char *title, long long *issue);
/* The last issue number taken (0 when none). */
int queue_bulletin_last_issue(queue *q, const char *title, long long *issue);

typedef struct queue_bulletin_rcpt {
    const char *phone;
    int sms_only;
} queue_bulletin_rcpt;

typedef struct queue_bulletin_new {
    const char *title;
    long long issue;
    const char *subject;
    const char *content_type;      /* of the composed content */
    const char *content;           /* the composed MIME content (binary) */
    size_t content_len;
    const char *parts_json;        /* [{"cid","type","size",...}] for stats */
    const queue_bulletin_rcpt *rcpt;
    size_t nrcpt;
    long long skipped_optout;
    long long send_at_ms;
    long long now_ms;
} queue_bulletin_new;

/* Stores an issue: record, content, every recipient `queued` (MMS) or
 * `sms_only`. Refuses (QUEUE_ERR_STATE) an issue that exists already. */
int queue_bulletin_create(queue *q, const queue_bulletin_new *b);

/* The stored content of an issue. Strings are malloc'd (caller frees).
 * QUEUE_ERR_NOTFOUND when the issue or its content is gone. */
int queue_bulletin_content(queue *q, const char *title, long long issue,
                           char **content, size_t *len, char **content_type,
                           char **subject);

/* Sets a recipient's status. `counter` (may be NULL) is the issue counter
 * bumped when the status changes (mms_sent, mms_retrieved, failed); `mid`
 * (may be NULL) is the MMSC's MessageID, remembered for delivery reports.
 * A recipient whose status is final (retrieved, failed, rejected,
 * expired, ...) keeps it. *changed is 1 when the status changed. */
int queue_bulletin_mark(queue *q, const char *title, long long issue, const char *phone,
                        const char *status, const char *counter, const char *mid,
                        int *changed);
/* Records that `phone` got (was queued) the fallback SMS; *first is 1 the
 * first time (then sms_fallback is bumped). */
int queue_bulletin_fallback(queue *q, const char *title, long long issue,
                            const char *phone, int *first);

/* The issue a MessageID belongs to. QUEUE_ERR_NOTFOUND when unknown.
 * *title is malloc'd. */
int queue_bulletin_by_mid(queue *q, const char *mid, char **title, long long *issue);

/* {"title","issue","subject","created","send_at","size","recipients",
 *  "mms_sent","mms_retrieved","failed","sms_fallback","sms_only",
 *  "skipped_optout","parts":[...],"statuses":{"queued":n,...}}.
 * QUEUE_ERR_NOTFOUND when the issue does not exist. */
int queue_bulletin_stats(queue *q, const char *title, long long issue, json_t **out);

/* The issues, newest first (by creation), at most max: an array of the
 * issue records as queue_bulletin_stats gives them, without "parts" and
 * "statuses" (the listing reads one hash per issue, never the recipients).
 * Only issues stored since the index {p}:bissues exists are listed. */
int queue_bulletin_list(queue *q, int max, json_t **out);

#endif
