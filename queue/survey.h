/* survey.h -- the survey store in Redis: contacts, the opt-out list, the
 * monthly runs and their items, what was sent to whom, and the replies.
 *
 * Part of queue/ (the only code that speaks Redis); it shares queue.c's
 * connection through queue/internal.h. Keys (docs/redis-keys.md):
 *   {p}:contacts             hash   "<phone>|<case_no>" -> contact JSON
 *   {p}:contacts:date        zset   same member, score = date as YYYYMMDD
 *   {p}:optout               hash   phone -> ms it opted out
 *   {p}:survey:run:<period>  hash   the period's claim and summary
 *   {p}:survey:items:<period> hash  item field -> item JSON
 *   {p}:survey:replies:<period> hash item field -> reply JSON
 *   {p}:survey:to:<phone>    zset   "<period>|<field>", score = send_at ms
 *   {p}:survey:last          hash   phone -> "<period>|<send_at ms>"
 *   {p}:sentday:<UTC day>    hash   phone -> "<ms>|<family>|<msg id>" of the
 *                                   day's sends to it, joined by ' '
 *   {p}:sent:<phone>         zset   the same, of versions before the day
 *                                   hashes: read until it expires
 *   {p}:replies:other        stream replies to other messages, unsolicited
 *                                   texts, opt-outs outside a survey
 *   {p}:replytexts           zset   "<period>|<field>" -> ms of its last reply,
 *                                   for the retention purge (queue/retention.h)
 *   {p}:replies:purged       zset   other replies past their retention, without
 *                                   their text (written by queue/retention.c)
 * The reply consumer reads {p}:inbound with its own consumer group
 * "survey", so other readers of the inbound stream are not disturbed. */
#ifndef HERALD_QUEUE_SURVEY_H
#define HERALD_QUEUE_SURVEY_H

#include <stddef.h>
#include <jansson.h>
#include "queue/queue.h"

#define QUEUE_SURVEY_GROUP "survey"

/* ---- contacts ---------------------------------------------------------- */

typedef struct queue_contact {
    const char *phone;        /* canonical E.164 */
    const char *role;         /* party, lawyer, witness, other */
    const char *case_no;
    const char *department;
    const char *prosecutor;
    int date;                 /* the day the office dealt with them, YYYYMMDD */
} queue_contact;

/* Stores (or replaces) the contact of (phone, case_no). Returns 1 when new,
 * 0 when it replaced one, or a QUEUE_ERR_*. */
int queue_contact_put(queue *q, const queue_contact *c, long long now_ms);

/* Contacts whose date is within [from, to] (YYYYMMDD, inclusive), oldest
 * first: a JSON array of {phone, role, case_no, department, prosecutor,
 * date, added}. Caller decrefs. */
int queue_contacts_between(queue *q, int from, int to, json_t **out);

/* ---- opt-out ----------------------------------------------------------- */

/* on = 1 puts phone on the opt-out list, 0 takes it off. */
int queue_optout_set(queue *q, const char *phone, int on, long long now_ms);
/* 1 opted out, 0 not, or a QUEUE_ERR_*. */
int queue_optout_has(queue *q, const char *phone);
/* {phone: ms, ...}. Caller decrefs. */
int queue_optout_list(queue *q, json_t **out);

/* A bulk message whose number opted out: status `skipped` (reason in
 * `error`), its entry acked and deleted, counter skipped:<family>:- bumped,
 * in one script. Call after queue_begin_send() returned QUEUE_BEGIN_SEND. */
int queue_skip_optout(queue *q, const queue_entry *e, const char *msg_id,
                      const char *family, long long now_ms);

/* ---- monthly runs --------------------------------------------------------- */

enum { QUEUE_CLAIM_OURS = 0, QUEUE_CLAIM_BUSY = 1, QUEUE_CLAIM_DONE = 2 };

/* Claims the run of `period` for `owner`. Returns QUEUE_CLAIM_OURS (also
 * when taking over a claim left `building` for stale_ms: its builder died),
 * QUEUE_CLAIM_BUSY (another owner is building it now), QUEUE_CLAIM_DONE
 * (the batch was built already), or a QUEUE_ERR_*. */
int queue_survey_claim(queue *q, const char *period, const char *owner, long long now_ms,
                       long long stale_ms);
/* Marks the run done with its summary (a JSON object stored as is).
 * QUEUE_ERR_STATE when `owner` no longer holds the claim. */
int queue_survey_done(queue *q, const char *period, const char *owner,
                      const char *summary_json, long long now_ms);
/* {"state","owner","claimed","done","summary":{...}}; NOTFOUND when none. */
int queue_survey_run_get(queue *q, const char *period, json_t **out);

typedef struct queue_survey_item {
    const char *field;        /* "<phone>" or "<phone>|<case_no>" */
    const char *phone;
    const char *json;         /* the item as a JSON object */
    long long send_at_ms;
} queue_survey_item;

/* Stores n items of `period` and indexes them by number, in one pipeline. */
int queue_survey_items_put(queue *q, const char *period, const queue_survey_item *it, size_t n);
/* {field: item, ...}. Caller decrefs. */
int queue_survey_items_get(queue *q, const char *period, json_t **out);
/* For each phone, its last survey as "<period>|<send_at ms>" (malloc'd) or
 * NULL. The caller frees each out[i]. */
int queue_survey_last(queue *q, const char *const *phones, size_t n, char **out);

/* ---- sent messages and correlation -------------------------------------- */

/* What went to whom ({p}:sentday:<UTC day>) is noted by queue_finish()
 * (queue_outcome.note_to) in the same call as `sent`. */
/* The latest survey item for phone with send_at in [at - window, at]:
 * "<period>|<field>" in buf. 0, QUEUE_ERR_NOTFOUND, or an error. */
int queue_survey_match(queue *q, const char *phone, long long at_ms, long long window_ms,
                       char *buf, size_t len);
/* The latest message sent to phone at or before at_ms, and at most
 * QUEUE_SENT_NOTE_MS (and the rest of that day) before: "<family>|<id>". */
int queue_sent_latest(queue *q, const char *phone, long long at_ms, char *buf, size_t len);

/* ---- the reply consumer --------------------------------------------------- */

typedef struct queue_inbound_msg {
    char entry[QUEUE_ENTRY_MAX];
    char *route, *from, *text;  /* malloc'd; "" when the entry lacks them */
    long long at_ms;
} queue_inbound_msg;

/* Reads up to max inbound messages for `consumer` of group "survey":
 * pending = 1 re-reads those delivered to it before and not acked (after a
 * crash), 0 reads new ones, blocking up to block_ms. */
int queue_inbound_read(queue *q, const char *consumer, int pending, int max, int block_ms,
                       queue_inbound_msg *out, int *n);
void queue_inbound_msg_clear(queue_inbound_msg *m);
/* Acks an entry that needs no record (e.g. malformed). */
int queue_inbound_ack(queue *q, const char *entry);
/* An entry that cannot be recorded (no sender, or refused again and again):
 * added to {p}:dead (id = the entry, lane "inbound", the reason) and acked,
 * in one script. */
int queue_inbound_bury(queue *q, const char *entry, const char *reason, long long now_ms);

typedef struct queue_reply_rec {
    const char *entry;        /* the inbound entry: acked in the same script */
    const char *from, *text, *route;
    long long at_ms;
    const char *verdict_json; /* {"status","ratings":[4],"suggestion"} */
    const char *period;       /* a survey reply: its period and item field... */
    const char *field;
    const char *kind;         /* ...else "reply" (to msg_id) or "unsolicited" */
    const char *msg_id, *family;
    int optout;               /* 1 add to the opt-out list, -1 remove, 0 none */
    long long now_ms;
} queue_reply_rec;

/* Records a reply and acks its entry, atomically. A second reply to the
 * same survey item updates the answer and keeps both raw texts. *first
 * (may be NULL) is 1 when this is the item's first reply. */
int queue_reply_record(queue *q, const queue_reply_rec *r, int *first);

/* {field: reply, ...} of a period. Caller decrefs. */
int queue_survey_replies_get(queue *q, const char *period, json_t **out);
/* Replies outside surveys received in [from_ms, to_ms): an array of
 * {kind, from, text, at, route, msg, family, status}, oldest first. Those
 * past their retention (queue/retention.h) come with text "" and
 * text_purged_at (ms). Caller decrefs. */
int queue_replies_other(queue *q, long long from_ms, long long to_ms, json_t **out);

#endif
