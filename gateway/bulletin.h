/* bulletin.h -- the mobile bulletin (手机报): subscriber lists, issues sent
 * as MMS over MM7, SMS fallback, figures. docs/bulletins.md is the guide.
 *
 * How an issue goes through the queue: `herald bulletin send` composes the
 * content once (templates/mms.h), stores it in Redis with the issue
 * (queue/bulletin.h) and queues one message per group of up to
 * mm7.max_recipients members: family `bulletin`, template `bulletin_mms`,
 * `to` the group's first number, vars {"title","issue","recipients":[...]}.
 * A worker that takes such a message loads the content (bulletin_job_load),
 * sends it through a route whose driver has PROV_CAP_MMS, and records the
 * outcome per recipient (bulletin_job_done): the MessageID for delivery
 * reports, or, on a permanent failure, the `bulletin_fallback` SMS.
 * Members flagged sms_only get that SMS from the start. */
#ifndef HERALD_BULLETIN_H
#define HERALD_BULLETIN_H

#include <jansson.h>

#include "gateway/cfgkeys.h"
#include "gateway/config.h"
#include "providers/mm7.h"
#include "queue/queue.h"
#include "templates/catalog.h"
#include "templates/mms.h"

#define BULLETIN_MMS_TEMPLATE "bulletin_mms"
#define BULLETIN_FALLBACK_TEMPLATE "bulletin_fallback"

/* The keys of the `bulletin` group of herald.conf. */
extern const cfg_key gw_bulletin_keys[];

/* `herald list ...` and `herald bulletin ...` (argv[0] is the command).
 * Return an exit code (0 done, 2 bad input, 1 other failure). */
int gw_cmd_list(gw_config *cfg, int argc, char **argv);
int gw_cmd_bulletin(gw_config *cfg, int argc, char **argv);

/* A list name is 1-64 bytes without spaces, ':' or braces (CLI and API). */
int bulletin_list_name_ok(const char *s);

/* One issue to send, however its content arrived (`herald bulletin send`
 * reads a folder; POST /v1/bulletins decodes JSON). */
typedef struct bulletin_send_req {
    const char *title;            /* one of bulletin.titles */
    const char *const *lists;     /* list names; the union is sent, each number once */
    int nlists;
    long long send_at_ms;         /* 0: now */
    const char *subject;          /* NULL: 《title》第N期 */
    const mms_issue *content;     /* the slides (templates/mms.h) */
} bulletin_send_req;

/* Composes the content, checks it against the MMSC's size budget, takes
 * the next issue number, stores the issue and queues its MMS requests and
 * the sms_only members' fallback SMS. Nothing is written when the input is
 * refused. Returns 0 with *out (the summary `herald bulletin send` prints:
 * title, issue, subject, recipients, sms_only, skipped_optout,
 * mms_requests, size, budget, parts), -1 bad input (err, and *field:
 * "title", "lists" or "content"), -2 Redis or storage (err). */
int bulletin_issue_send(queue *q, const gw_config *cfg, const catalog *cat, const bulletin_send_req *rq,
                        json_t **out, char *err, size_t errlen, const char **field);

/* What a worker needs to send one bulletin message. */
typedef struct bulletin_job {
    char *title;
    long long issue;
    char **rcpt;                  /* canonical numbers */
    int nrcpt;
    char *content, *content_type, *subject;
    size_t len;
} bulletin_job;

/* For a queue job of template bulletin_mms: loads its issue's content and
 * recipients into bj and returns 1. Returns 0 for any other job, -1 with
 * the reason in err when the job is malformed or its issue is gone (the
 * message is then dead-lettered). Free with bulletin_job_clear(). */
int bulletin_job_load(queue *q, const queue_job *job, bulletin_job *bj, char *err, size_t errlen);
void bulletin_job_clear(bulletin_job *bj);

/* Records the outcome of a bulletin send for each recipient: `sent` with
 * the MessageID (res->refs); when `dead` (permanent failure, or attempts
 * used up) `failed` and the fallback SMS queued. Logs what fails. */
void bulletin_job_done(queue *q, const gw_config *cfg, const catalog *cat,
                       const bulletin_job *bj, const prov_result *res, int dead);

/* Applies a parsed DeliveryReportReq: the recipient's status, the issue's
 * figures, and the fallback SMS when the MMS failed for good (Expired,
 * Rejected, Unreachable...). Returns 0, or -1 with err (unknown MessageID,
 * not a recipient, Redis). */
int bulletin_apply_dlr(queue *q, const gw_config *cfg, const catalog *cat,
                       const mm7_dlr *d, char *err, size_t errlen);

#endif
