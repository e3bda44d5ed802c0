/* survey.h -- the monthly evaluation survey: settings, the schedule, the
 * batch, the reply consumer, and the office's report.
 *
 *   settings   the `survey` group of herald.conf (survey_settings_load)
 *   schedule   pure functions of (settings, a time): which period is due,
 *              when its run and its send window are, whether a gateway that
 *              was down may still catch up (survey_decide)
 *   batch      contacts of the period -> one survey per number (or case),
 *              skipping opted-out and recently surveyed numbers, spread over
 *              the window with scheduled sends (survey_build)
 *   daemon     survey_daemon: one thread per gateway reads the inbound
 *              stream and records replies (parsed by gateway/replies.c),
 *              and runs the batch once per period (a Redis claim: exactly
 *              once across restarts and gateways)
 *   report     figures of a period as JSON, text, CSV and HTML
 *              (gateway/survey_report.c)
 * Redis is reached only through queue/survey.h. */
#ifndef HERALD_SURVEY_H
#define HERALD_SURVEY_H

#include <stdatomic.h>
#include <stdio.h>
#include <stddef.h>
#include <jansson.h>
#include <libconfig.h>

#include "gateway/cfgkeys.h"
#include "gateway/config.h"
#include "gateway/phone.h"
#include "gateway/replies.h"
#include "queue/queue.h"

#define SURVEY_PERIOD_MAX 16     /* "2026-11" */
#define SURVEY_TZ_MAX 64

/* A time zone: the transitions of a TZif file, or a fixed offset. */
typedef struct survey_tz {
    char name[SURVEY_TZ_MAX];
    int fixed;                   /* 1: offset_s only */
    int offset_s;
    long long *times;            /* transition times (s), ascending */
    unsigned char *idx;          /* type index per transition */
    int *type_off;               /* UTC offset (s) per type */
    int ntimes, ntypes;
} survey_tz;

/* Loads `name` ("Asia/Shanghai" from $TZDIR or /usr/share/zoneinfo,
 * "UTC", or a fixed "+08:00"). Returns 0 or -1 with err. */
int survey_tz_load(survey_tz *tz, const char *name, char *err, size_t errlen);
void survey_tz_free(survey_tz *tz);
/* The UTC offset (seconds east) in force at utc_s. */
int survey_tz_offset(const survey_tz *tz, long long utc_s);
/* UTC ms of a local wall-clock time (minutes since local midnight). */
long long survey_local_to_utc(const survey_tz *tz, int y, int mon, int mday, int minute_of_day);

typedef struct survey_settings {
    int enabled;
    int day;                     /* 1..31; a shorter month runs on its last day */
    int start_min;               /* the run and the window start, minutes after midnight */
    int end_min;                 /* the window end */
    int catch_up_min;            /* a gateway down at start_min catches up until this */
    survey_tz tz;
    int per_case;                /* 0: one survey per number and period; 1: per case */
    int skip_recent_days;
    long long reply_window_ms;
    const char *template_name;
    reply_opts ropts;
    int satisfied_max;           /* ratings 1..satisfied_max count as satisfied */
    const char *ack_text;        /* "" = no acknowledgement */
    long long reply_text_retention_ms;   /* raw reply texts purged after; 0 never */
} survey_settings;

/* The keys of the `survey` group, for the config schema (gateway/config.c). */
extern const struct cfg_key survey_cfg_keys[];

/* Reads and checks the `survey` group of a loaded configuration. Strings
 * point into cfg. Returns 0 or -1 with "file:line: survey.key: what". The
 * caller frees with survey_settings_free(). */
int survey_settings_load(const config_t *cfg, survey_settings *s, char *err, size_t errlen);
void survey_settings_free(survey_settings *s);

/* ---- the schedule ---------------------------------------------------------- */

typedef enum {
    SURVEY_NOT_YET = 0,          /* before this month's run */
    SURVEY_DUE,                  /* the run's day, between its time and the catch-up limit */
    SURVEY_MISSED                /* past the catch-up limit: a person runs it by hand */
} survey_when;

typedef struct survey_slot {
    char period[SURVEY_PERIOD_MAX];   /* "2026-11" */
    long long run_ms;                 /* the scheduled run (UTC ms) */
    long long catch_up_ms;            /* the end of automatic catch-up */
} survey_slot;

/* Where now_ms stands against this (local) month's run. */
survey_when survey_decide(const survey_settings *s, long long now_ms, survey_slot *slot);

/* The run of `period` ("YYYY-MM"). -1 when the period is malformed. */
int survey_slot_of(const survey_settings *s, const char *period, survey_slot *slot);

/* The send window for a batch built at now_ms for a run at run_ms: from the
 * run time (or now, when later) to the window end of that day; a batch
 * built after the day's window goes out in the next day's window. */
void survey_window(const survey_settings *s, long long run_ms, long long now_ms,
                   long long *start_ms, long long *end_ms);

/* The contact dates a period covers: [previous run day, this run day). */
void survey_contact_range(const survey_settings *s, const char *period, int *from_ymd, int *to_ymd);

/* "2026-11" -> "2026年11月" (the template's {{period}}). */
void survey_period_label(const char *period, char *buf, size_t len);

/* Milliseconds since the epoch, as the survey sees them: the wall clock,
 * or, for tests, $HERALD_SURVEY_CLOCK (ISO 8601 time) at the first call
 * advancing with the wall clock. */
long long survey_now_ms(void);

/* ---- contacts --------------------------------------------------------------- */

/* One contact as a front end (CLI, CSV import, HTTP API) receives it. */
typedef struct survey_contact_in {
    const char *phone;        /* any form phone_normalize() accepts */
    const char *role;         /* party, lawyer, witness, other (or 当事人, 辩护律师, 关键证人, 其他) */
    const char *case_no;      /* required, at most 100 bytes, no '|' */
    const char *department, *prosecutor;   /* may be NULL */
    const char *date;         /* 2026-11-05, 2026/11/05 or 20261105 */
} survey_contact_in;

/* Checks every field and stores the contact. Returns 1 added, 0 updated
 * (same phone and case), -1 bad input (err names the field and why), -2
 * Redis failed (err has its text). */
int survey_contact_add(queue *q, const gw_config *cfg, const survey_contact_in *in, long long now_ms,
                       char *err, size_t errlen);

/* Checks one contact without storing it (survey_contact_add's checks);
 * fills c, pointing into in and phone. Returns 0 or -1 with err naming the
 * field. */
struct queue_contact;
int survey_contact_check(const gw_config *cfg, const survey_contact_in *in, struct queue_contact *c,
                         char phone[PHONE_MAX], char *err, size_t errlen);

/* Splits one line of `herald contacts import`'s CSV (RFC 4180 quotes; a
 * quoted field does not span lines) into at most max fields, in place.
 * Returns the count, or -1 for an unterminated quote. */
int survey_csv_split(char *line, char **f, int max);

/* "2026-11-05", "2026/11/05", "20261105" -> 20261105; -1 when not a date. */
int survey_parse_date(const char *s);

/* ---- the batch ---------------------------------------------------------------- */

typedef struct survey_plan {
    char period[SURVEY_PERIOD_MAX];
    int from_ymd, to_ymd;        /* contact dates covered */
    int contacts;                /* contacts in the range */
    int batch;                   /* surveys in the batch */
    int duplicates;              /* same number (or case) twice */
    int skipped_optout, skipped_recent, invalid;
    long long start_ms, end_ms;  /* the window */
    long long finish_ms;         /* estimated finish from the routes' capacity */
    int capacity_per_min;        /* routes serving surveys; 0 = unlimited */
    int enqueued, duplicate_msgs;/* build only: new messages, and ones already queued */
} survey_plan;

/* Builds the batch of `period` as if at now_ms. commit = 0 only counts
 * (plan, --dry-run); commit = 1 enqueues the surveys and stores the items.
 * Returns 0 or -1 with err. */
int survey_build(queue *q, const gw_config *cfg, const survey_settings *s, const char *period,
                 long long now_ms, int commit, survey_plan *p, char *err, size_t errlen);

/* The plan as a JSON object. */
json_t *survey_plan_json(const survey_plan *p, const survey_settings *s);

/* Claims the period and builds it (the housekeeper at the hour, or
 * `herald survey run`). Returns 0 built, 1 already built or being built
 * elsewhere (*p untouched; err says which), -1 error. */
int survey_run(queue *q, const gw_config *cfg, const survey_settings *s, const char *owner,
               const char *period, long long now_ms, survey_plan *p, char *err, size_t errlen);

/* ---- in the daemon --------------------------------------------------------- */

typedef struct survey_daemon survey_daemon;

/* Loads the settings and starts the reply consumer thread (it stops when
 * *stop becomes non-zero). NULL with err on a bad configuration. */
survey_daemon *survey_daemon_start(const gw_config *cfg, atomic_int *stop, char *err, size_t errlen);
/* Runs the month's batch when due (called by the survey thread between
 * reads of the inbound stream; looks at the clock at most once a second). */
void survey_daemon_tick(survey_daemon *sd, queue *q);
/* Joins the thread and frees. Accepts NULL. */
void survey_daemon_stop(survey_daemon *sd);

/* What the consumer does with one inbound message (exposed for tests and
 * for the CLI `herald survey replies --process`): parse, correlate, record
 * and ack. Returns 0 or a QUEUE_ERR_*. */
int survey_handle_inbound(queue *q, const gw_config *cfg, const survey_settings *s,
                          const char *entry, const char *route, const char *from,
                          const char *text, long long at_ms, long long now_ms);

/* ---- the report (survey_report.c) --------------------------------------------- */

/* The figures of a period as JSON (see docs/survey.md). */
int survey_report_build(queue *q, const survey_settings *s, const char *period,
                        json_t **out, char *err, size_t errlen);
/* Writers. Return 0 or -1 with err. */
int survey_report_text(const json_t *r, FILE *f);
int survey_report_csv(const json_t *r, const char *path, char *err, size_t errlen);
int survey_report_html(const json_t *r, const char *path, char *err, size_t errlen);

/* ---- the command line (survey_cli.c) ---------------------------------------- */

/* `herald contacts ...`, `herald survey ...`, `herald report survey ...`,
 * `herald optout ...`. argv[0] is the command. Returns the exit code. */
int survey_cli(gw_config *cfg, int argc, char **argv);

#endif
