/* survey.c -- the monthly evaluation survey (see survey.h): settings, time
 * zones, the schedule, the batch, and the daemon's part (the run at the
 * hour, the reply consumer).
 *
 * Exactly one batch per period: the survey thread of every gateway looks at
 * the local time once a second; on the run day between the run time and the
 * catch-up limit it asks Redis for the period's claim (queue/survey.c, one
 * Lua script). One gateway gets it and builds; the others see `building` or
 * `done` and stop asking. A builder that dies mid-way leaves `building`: the
 * same instance restarted resumes at once, another takes over after
 * CLAIM_STALE_MS. Rebuilding is harmless because every survey message is
 * enqueued with the idempotency key "survey/<period>/<field>". */
#include <errno.h>
#include <strings.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway/log.h"
#include "gateway/phone.h"
#include "gateway/service.h"
#include "gateway/survey.h"
#include "queue/survey.h"

#define CLAIM_STALE_MS (10 * 60 * 1000LL)
#define TICK_MS 1000
#define SENT_KEEP_MS (30LL * 86400 * 1000)
#define INBOUND_BATCH 32
#define INBOUND_BLOCK_MS 1000

/* ---- settings ------------------------------------------------------------ */

const cfg_key survey_cfg_keys[] = {
    { "enabled", CFG_BOOL, "true", 0, 0, NULL, "build the monthly survey batch automatically (herald survey run works either way)" },
    { "day", CFG_INT, "23", 1, 31, NULL, "day of the month of the run; a shorter month runs on its last day" },
    { "time", CFG_STR, "10:00", 0, 0, NULL, "local time of the run and start of the send window (HH:MM)" },
    { "window_end", CFG_STR, "16:00", 0, 0, NULL, "local time by which the batch should have gone out (HH:MM)" },
    { "catch_up_until", CFG_STR, "16:00", 0, 0, NULL, "a gateway down at the run time still runs it when back before this (HH:MM); later a person runs it" },
    { "timezone", CFG_STR, "Asia/Shanghai", 0, 0, NULL, "time zone of day, time, window_end and catch_up_until (IANA name, UTC, or +08:00)" },
    { "per", CFG_STR, "number", 0, 0, NULL, "one survey per number and period (number) or per case (case)" },
    { "skip_recent_days", CFG_INT, "20", 0, 366, NULL, "skip numbers surveyed in a previous period within this many days" },
    { "reply_window_days", CFG_INT, "7", 1, 90, NULL, "a reply within this many days of a survey is that survey's answer" },
    { "template", CFG_STR, "evaluation_survey", 0, 0, NULL, "template of the survey text (needs the variable period)" },
    { "scale", CFG_STRLIST, "满意,基本满意,不满意", 0, 0, NULL, "rating labels; the first is rating 1 (best)" },
    { "satisfied_max", CFG_INT, "2", 1, 9, NULL, "ratings 1..satisfied_max count as satisfied in the report" },
    { "optin_keyword", CFG_STR, "订阅", 0, 0, NULL, "a reply of only this word takes the number off the opt-out list" },
    { "ack_text", CFG_STR, "", 0, 0, NULL, "acknowledgement sent once per survey reply; empty: none" },
    { "reply_text_retention_days", CFG_INT, "90", 0, 3650, NULL, "the raw text of replies (and suggestions) is purged this many days after the last reply; ratings and figures stay; 0: kept" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static int sbad(const config_setting_t *g, const char *key, char *err, size_t errlen, const char *what)
{
    const config_setting_t *s = g ? config_setting_get_member(g, key) : NULL;
    if (!s)
        s = g;
    const char *file = s ? config_setting_source_file(s) : NULL;
    snprintf(err, errlen, "%s:%u: survey.%s: %s", file ? file : "(config)",
             s ? (unsigned)config_setting_source_line(s) : 0, key, what);
    return -1;
}

/* "HH:MM" -> minutes after midnight, or -1. */
static int parse_hhmm(const char *s)
{
    int h, m;
    char tail;
    if (sscanf(s, "%d:%d%c", &h, &m, &tail) != 2 || h < 0 || h > 23 || m < 0 || m > 59)
        return -1;
    return h * 60 + m;
}

int survey_settings_load(const config_t *cfg, survey_settings *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    const config_setting_t *g = config_lookup(cfg, "survey");
    if (g && cfg_check_group(g, "survey", survey_cfg_keys, err, errlen) < 0)
        return -1;
    s->enabled = cfg_bool(g, survey_cfg_keys, "enabled");
    s->day = (int)cfg_int(g, survey_cfg_keys, "day");
    const char *t = cfg_str(g, survey_cfg_keys, "time");
    const char *we = cfg_str(g, survey_cfg_keys, "window_end");
    const char *cu = cfg_str(g, survey_cfg_keys, "catch_up_until");
    char what[200];
    if ((s->start_min = parse_hhmm(t)) < 0) {
        snprintf(what, sizeof what, "'%s' is not a time HH:MM", t);
        return sbad(g, "time", err, errlen, what);
    }
    if ((s->end_min = parse_hhmm(we)) < 0 || s->end_min <= s->start_min) {
        snprintf(what, sizeof what, "'%s' must be a time HH:MM after time (%s)", we, t);
        return sbad(g, "window_end", err, errlen, what);
    }
    if ((s->catch_up_min = parse_hhmm(cu)) < 0 || s->catch_up_min < s->start_min) {
        snprintf(what, sizeof what, "'%s' must be a time HH:MM not before time (%s)", cu, t);
        return sbad(g, "catch_up_until", err, errlen, what);
    }
    const char *tz = cfg_str(g, survey_cfg_keys, "timezone");
    char tzerr[300];
    if (survey_tz_load(&s->tz, tz, tzerr, sizeof tzerr) < 0)
        return sbad(g, "timezone", err, errlen, tzerr);
    const char *per = cfg_str(g, survey_cfg_keys, "per");
    if (strcmp(per, "number") && strcmp(per, "case")) {
        snprintf(what, sizeof what, "'%s' is not number or case", per);
        survey_tz_free(&s->tz);
        return sbad(g, "per", err, errlen, what);
    }
    s->per_case = strcmp(per, "case") == 0;
    s->skip_recent_days = (int)cfg_int(g, survey_cfg_keys, "skip_recent_days");
    s->reply_window_ms = cfg_int(g, survey_cfg_keys, "reply_window_days") * 86400000LL;
    s->reply_text_retention_ms = cfg_int(g, survey_cfg_keys, "reply_text_retention_days") * 86400000LL;
    s->template_name = cfg_str(g, survey_cfg_keys, "template");
    reply_opts_default(&s->ropts);
    const config_setting_t *sc = g ? config_setting_get_member(g, "scale") : NULL;
    if (sc) {
        int n = config_setting_length(sc);
        if (n < 2 || n > REPLY_SCALE_MAX) {
            survey_tz_free(&s->tz);
            return sbad(g, "scale", err, errlen, "must hold 2 to 9 labels");
        }
        for (int i = 0; i < n; i++) {
            const char *l = config_setting_get_string_elem(sc, i);
            if (!l || !*l) {
                survey_tz_free(&s->tz);
                return sbad(g, "scale", err, errlen, "labels must not be empty");
            }
            s->ropts.labels[i] = l;
        }
        s->ropts.nlabels = n;
    }
    s->ropts.optin_keyword = cfg_str(g, survey_cfg_keys, "optin_keyword");
    s->satisfied_max = (int)cfg_int(g, survey_cfg_keys, "satisfied_max");
    if (s->satisfied_max > s->ropts.nlabels) {
        survey_tz_free(&s->tz);
        return sbad(g, "satisfied_max", err, errlen, "is larger than the scale");
    }
    s->ack_text = cfg_str(g, survey_cfg_keys, "ack_text");
    return 0;
}

void survey_settings_free(survey_settings *s)
{
    if (s)
        survey_tz_free(&s->tz);
}

/* ---- time zones: TZif files read directly ----------------------------------
 * setenv("TZ") + localtime_r would change the zone of the whole process
 * under the other threads; a zone read once and looked up here does not. */

static long long be(const unsigned char *p, int n)
{
    unsigned long long v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    if (n == 4)
        return (long long)(int32_t)(uint32_t)v;
    return (long long)v;
}

int survey_tz_load(survey_tz *tz, const char *name, char *err, size_t errlen)
{
    memset(tz, 0, sizeof *tz);
    snprintf(tz->name, sizeof tz->name, "%s", name);
    int sign = 0, h = 0, m = 0;
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Z") == 0) {
        tz->fixed = 1;
        return 0;
    }
    if ((name[0] == '+' || name[0] == '-') && sscanf(name + 1, "%2d:%2d", &h, &m) == 2 &&
        h <= 14 && m < 60) {
        sign = name[0] == '-' ? -1 : 1;
        tz->fixed = 1;
        tz->offset_s = sign * (h * 3600 + m * 60);
        return 0;
    }
    if (!*name || name[0] == '/' || strstr(name, "..")) {
        snprintf(err, errlen, "'%s' is not a time zone name", name);
        return -1;
    }
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "unknown time zone '%s' (%s: %s)", name, path, strerror(errno));
        return -1;
    }
    unsigned char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    int rc = -1;
    if (n < 44 || memcmp(buf, "TZif", 4) != 0) {
        snprintf(err, errlen, "%s is not a TZif file", path);
        goto out;
    }
    /* v1 block, then (version >= 2) a v2 block with 64-bit times */
    const unsigned char *p = buf;
    int tsize = 4;
    for (int pass = 0; pass < 2; pass++) {
        if ((size_t)(p - buf) + 44 > n)
            goto bad;
        long long isut = be(p + 20, 4), isstd = be(p + 24, 4), leap = be(p + 28, 4);
        long long timecnt = be(p + 32, 4), typecnt = be(p + 36, 4), charcnt = be(p + 40, 4);
        size_t body = (size_t)(timecnt * tsize + timecnt + typecnt * 6 + charcnt +
                               leap * (tsize + 4) + isstd + isut);
        if (timecnt < 0 || typecnt <= 0 || typecnt > 255 || (size_t)(p - buf) + 44 + body > n)
            goto bad;
        if (pass == 0 && buf[4] >= '2') {
            p += 44 + body;
            tsize = 8;
            continue;
        }
        const unsigned char *d = p + 44;
        tz->times = calloc((size_t)timecnt + 1, sizeof *tz->times);
        tz->idx = calloc((size_t)timecnt + 1, 1);
        tz->type_off = calloc((size_t)typecnt, sizeof *tz->type_off);
        if (!tz->times || !tz->idx || !tz->type_off)
            goto bad;
        for (long long i = 0; i < timecnt; i++)
            tz->times[i] = be(d + i * tsize, tsize);
        d += timecnt * tsize;
        for (long long i = 0; i < timecnt; i++) {
            tz->idx[i] = d[i];
            if (d[i] >= typecnt)
                goto bad;
        }
        d += timecnt;
        for (long long i = 0; i < typecnt; i++)
            tz->type_off[i] = (int)be(d + i * 6, 4);
        tz->ntimes = (int)timecnt;
        tz->ntypes = (int)typecnt;
        rc = 0;
        goto out;
    }
bad:
    snprintf(err, errlen, "%s: malformed TZif file", path);
    survey_tz_free(tz);
out:
    free(buf);
    return rc;
}

void survey_tz_free(survey_tz *tz)
{
    if (!tz)
        return;
    free(tz->times);
    free(tz->idx);
    free(tz->type_off);
    tz->times = NULL;
    tz->idx = NULL;
    tz->type_off = NULL;
    tz->ntimes = tz->ntypes = 0;
}

int survey_tz_offset(const survey_tz *tz, long long utc_s)
{
    if (tz->fixed)
        return tz->offset_s;
    if (tz->ntypes == 0)
        return 0;
    /* the last transition at or before utc_s; before the first, type 0 */
    int lo = 0, hi = tz->ntimes - 1, at = -1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (tz->times[mid] <= utc_s) {
            at = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return tz->type_off[at < 0 ? 0 : tz->idx[at]];
}

static void local_tm(const survey_tz *tz, long long utc_ms, struct tm *tm)
{
    time_t t = (time_t)(utc_ms / 1000 + survey_tz_offset(tz, utc_ms / 1000));
    gmtime_r(&t, tm);
}

long long survey_local_to_utc(const survey_tz *tz, int y, int mon, int mday, int minute_of_day)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = mday;
    tm.tm_hour = minute_of_day / 60;
    tm.tm_min = minute_of_day % 60;
    long long local_s = (long long)timegm(&tm);
    /* the offset at the guess, then at the corrected time (DST edges) */
    long long utc = local_s - survey_tz_offset(tz, local_s);
    utc = local_s - survey_tz_offset(tz, utc);
    return utc * 1000;
}

/* ---- the schedule -------------------------------------------------------------- */

static int days_in_month(int y, int m)
{
    static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return d[m - 1];
}

static int run_mday(const survey_settings *s, int y, int m)
{
    int dim = days_in_month(y, m);
    return s->day < dim ? s->day : dim;
}

static int parse_period(const char *p, int *y, int *m)
{
    char tail;
    if (!p || strlen(p) != 7 || sscanf(p, "%4d-%2d%c", y, m, &tail) != 2 || p[4] != '-' ||
        *y < 2000 || *y > 2999 || *m < 1 || *m > 12)
        return -1;
    return 0;
}

int survey_slot_of(const survey_settings *s, const char *period, survey_slot *slot)
{
    int y, m;
    if (parse_period(period, &y, &m) < 0)
        return -1;
    snprintf(slot->period, sizeof slot->period, "%04d-%02d", y % 10000, m % 100);
    int d = run_mday(s, y, m);
    slot->run_ms = survey_local_to_utc(&s->tz, y, m, d, s->start_min);
    slot->catch_up_ms = survey_local_to_utc(&s->tz, y, m, d, s->catch_up_min);
    return 0;
}

survey_when survey_decide(const survey_settings *s, long long now_ms, survey_slot *slot)
{
    struct tm tm;
    local_tm(&s->tz, now_ms, &tm);
    char period[SURVEY_PERIOD_MAX];
    snprintf(period, sizeof period, "%04d-%02d", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100);
    survey_slot_of(s, period, slot);
    if (now_ms < slot->run_ms)
        return SURVEY_NOT_YET;
    if (now_ms < slot->catch_up_ms)
        return SURVEY_DUE;
    return SURVEY_MISSED;
}

void survey_window(const survey_settings *s, long long run_ms, long long now_ms,
                   long long *start_ms, long long *end_ms)
{
    long long from = now_ms > run_ms ? now_ms : run_ms;
    struct tm tm;
    local_tm(&s->tz, from, &tm);
    for (int day = 0; day < 3; day++) {
        long long a = survey_local_to_utc(&s->tz, tm.tm_year + 1900, tm.tm_mon + 1,
                                          tm.tm_mday + day, s->start_min);
        long long b = survey_local_to_utc(&s->tz, tm.tm_year + 1900, tm.tm_mon + 1,
                                          tm.tm_mday + day, s->end_min);
        if (from < b) {
            *start_ms = from > a ? from : a;
            *end_ms = b;
            return;
        }
    }
    *start_ms = from;
    *end_ms = from + (long long)(s->end_min - s->start_min) * 60000;
}

static int ymd_add_days(int y, int m, int d, int days)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d + days;
    tm.tm_hour = 12;
    time_t t = timegm(&tm);
    gmtime_r(&t, &tm);
    return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

void survey_contact_range(const survey_settings *s, const char *period, int *from_ymd, int *to_ymd)
{
    int y, m;
    *from_ymd = *to_ymd = 0;
    if (parse_period(period, &y, &m) < 0)
        return;
    int py = m == 1 ? y - 1 : y, pm = m == 1 ? 12 : m - 1;
    *from_ymd = py * 10000 + pm * 100 + run_mday(s, py, pm);
    *to_ymd = ymd_add_days(y, m, run_mday(s, y, m), -1);
}

void survey_period_label(const char *period, char *buf, size_t len)
{
    int y, m;
    if (parse_period(period, &y, &m) == 0)
        snprintf(buf, len, "%d年%d月", y, m);
    else
        snprintf(buf, len, "%s", period);
}

static long long clock_offset_ms;
static pthread_once_t clock_once = PTHREAD_ONCE_INIT;

/* $HERALD_SURVEY_CLOCK, read once: the offset from the wall clock. */
static void clock_init(void)
{
    const char *fake = getenv("HERALD_SURVEY_CLOCK");
    if (!fake || !*fake)
        return;
    long long now = svc_now_ms(), at = 0;
    char err[200];
    if (svc_parse_time(fake, now, &at, err, sizeof err) == 0)
        clock_offset_ms = at - now;
    else
        gw_log(LOG_ERROR, "survey", "HERALD_SURVEY_CLOCK: %s (using the wall clock)", err);
}

long long survey_now_ms(void)
{
    pthread_once(&clock_once, clock_init);
    return svc_now_ms() + clock_offset_ms;
}

/* ---- contacts ---------------------------------------------------------------- */

/* "2026-11-05", "2026/11/05", "20261105" -> 20261105, or -1. */
int survey_parse_date(const char *s)
{
    int y, m, d;
    char tail;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 &&
        sscanf(s, "%4d/%2d/%2d%c", &y, &m, &d, &tail) != 3 &&
        !(strlen(s) == 8 && sscanf(s, "%4d%2d%2d%c", &y, &m, &d, &tail) == 3))
        return -1;
    if (y < 2000 || y > 2999 || m < 1 || m > 12 || d < 1)
        return -1;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = 12 };
    time_t t = timegm(&tm);
    struct tm back;
    gmtime_r(&t, &back);
    if (back.tm_mday != d)                  /* 2026-02-30 */
        return -1;
    return y * 10000 + m * 100 + d;
}

/* Canonical role, or NULL. */
static const char *parse_role(const char *s)
{
    static const struct { const char *in, *role; } roles[] = {
        { "party", "party" }, { "当事人", "party" },
        { "lawyer", "lawyer" }, { "defence_lawyer", "lawyer" }, { "defense_lawyer", "lawyer" },
        { "辩护律师", "lawyer" }, { "律师", "lawyer" },
        { "witness", "witness" }, { "key_witness", "witness" }, { "关键证人", "witness" }, { "证人", "witness" },
        { "other", "other" }, { "其他", "other" },
    };
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcasecmp(s, roles[i].in) == 0)
            return roles[i].role;
    return NULL;
}

int survey_contact_check(const gw_config *cfg, const survey_contact_in *in, queue_contact *c,
                         char phone[PHONE_MAX], char *err, size_t errlen)
{
    char perr[200];
    memset(c, 0, sizeof *c);
    if (!in->phone || !*in->phone)
        return snprintf(err, errlen, "phone: missing"), -1;
    if (phone_normalize(in->phone, cfg->allow_international, phone, perr, sizeof perr) < 0)
        return snprintf(err, errlen, "phone: %s", perr), -1;
    if (!in->role || !*in->role)
        return snprintf(err, errlen, "role: missing (party, lawyer, witness or other)"), -1;
    if (!(c->role = parse_role(in->role)))
        return snprintf(err, errlen, "role: '%s' is not party, lawyer, witness or other", in->role), -1;
    if (!in->case_no || !*in->case_no)
        return snprintf(err, errlen, "case_no: missing"), -1;
    if (strlen(in->case_no) > 100 || strchr(in->case_no, '|'))
        return snprintf(err, errlen, "case_no: longer than 100 bytes or contains '|'"), -1;
    const char *texts[] = { in->case_no, in->department, in->prosecutor };
    const char *names[] = { "case_no", "department", "prosecutor" };
    for (int k = 0; k < 3; k++) {
        json_t *t = texts[k] ? json_string(texts[k]) : NULL;   /* NULL: not UTF-8 */
        if (texts[k] && !t)
            return snprintf(err, errlen, "%s: not valid UTF-8 (save the file as UTF-8)", names[k]), -1;
        json_decref(t);
    }
    if (!in->date || !*in->date)
        return snprintf(err, errlen, "date: missing (YYYY-MM-DD)"), -1;
    if ((c->date = survey_parse_date(in->date)) < 0)
        return snprintf(err, errlen, "date: '%s' is not a date YYYY-MM-DD", in->date), -1;
    c->phone = phone;
    c->case_no = in->case_no;
    c->department = in->department ? in->department : "";
    c->prosecutor = in->prosecutor ? in->prosecutor : "";
    return 0;
}

int survey_contact_add(queue *q, const gw_config *cfg, const survey_contact_in *in, long long now_ms,
                       char *err, size_t errlen)
{
    queue_contact c;
    char phone[PHONE_MAX];
    if (survey_contact_check(cfg, in, &c, phone, err, errlen) < 0)
        return -1;
    int rc = queue_contact_put(q, &c, now_ms);
    if (rc < 0) {
        snprintf(err, errlen, "redis: %s", queue_errstr(q));
        return -2;
    }
    return rc;
}

/* ---- the batch ----------------------------------------------------------------- */

/* Routes serving surveys: messages per minute together; 0 = unlimited. */
static int survey_capacity(const gw_config *cfg)
{
    int total = 0;
    for (int i = 0; i < cfg->nroutes; i++) {
        const gw_route_cfg *r = &cfg->routes[i];
        if (!(r->families & (1u << FAMILY_SURVEY)))
            continue;
        if (r->rate_per_minute == 0)
            return 0;
        total += r->rate_per_minute;
    }
    return total;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The item field of a contact: its number, or number|case. */
static void item_field(const survey_settings *s, const char *phone, const char *case_no,
                       char *buf, size_t len)
{
    if (s->per_case)
        snprintf(buf, len, "%s|%s", phone, case_no);
    else
        snprintf(buf, len, "%s", phone);
}

int survey_build(queue *q, const gw_config *cfg, const survey_settings *s, const char *period,
                 long long now_ms, int commit, survey_plan *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    survey_slot slot;
    if (survey_slot_of(s, period, &slot) < 0) {
        snprintf(err, errlen, "period '%s' is not YYYY-MM", period ? period : "");
        return -1;
    }
    snprintf(p->period, sizeof p->period, "%s", slot.period);
    survey_contact_range(s, slot.period, &p->from_ymd, &p->to_ymd);
    survey_window(s, slot.run_ms, now_ms, &p->start_ms, &p->end_ms);
    p->capacity_per_min = survey_capacity(cfg);

    int rc = -1;
    json_t *contacts = NULL, *optouts = NULL;
    char **last = NULL;
    const char **phones = NULL;
    json_t *chosen = json_array();
    catalog *cat = NULL;
    svc_message *msgs = NULL;
    queue_new_msg *qm = NULL;
    queue_enq_result *res = NULL;
    queue_survey_item *items = NULL;
    char **item_json = NULL;

    if (queue_contacts_between(q, p->from_ymd, p->to_ymd, &contacts) < 0 ||
        queue_optout_list(q, &optouts) < 0) {
        snprintf(err, errlen, "redis: %s", queue_errstr(q));
        goto out;
    }
    size_t nc = json_array_size(contacts);
    p->contacts = (int)nc;
    phones = calloc(nc + 1, sizeof *phones);
    last = calloc(nc + 1, sizeof *last);
    if (!phones || !last || !chosen)
        goto oom;
    for (size_t i = 0; i < nc; i++) {
        const char *ph = json_string_value(json_object_get(json_array_get(contacts, i), "phone"));
        phones[i] = ph ? ph : "";
    }
    if (queue_survey_last(q, phones, nc, last) < 0) {
        snprintf(err, errlen, "redis: %s", queue_errstr(q));
        goto out;
    }
    json_t *lastmap = json_object();              /* phone -> "<period>|<ms>" */
    for (size_t i = 0; i < nc; i++)
        if (last[i])
            json_object_set_new(lastmap, phones[i], json_string(last[i]));
    /* One per number (or case): the contact met last wins, for its
     * department and prosecutor. Contacts come oldest first. */
    json_t *seen = json_object();
    for (size_t i = 0; i < nc; i++) {
        json_t *c = json_array_get(contacts, i);
        const char *ph = phones[i];
        const char *case_no = json_string_value(json_object_get(c, "case_no"));
        char field[160];
        item_field(s, ph, case_no ? case_no : "", field, sizeof field);
        if (json_object_get(seen, field))
            p->duplicates++;
        json_object_set(seen, field, c);
    }
    const char **fields = calloc(json_object_size(seen) + 1, sizeof *fields);
    size_t nf = 0;
    const char *fk;
    json_t *fv;
    json_object_foreach(seen, fk, fv)
        fields[nf++] = fk;
    qsort(fields, nf, sizeof *fields, cmp_str);      /* a stable order to spread */
    for (size_t k = 0; k < nf; k++) {
        json_t *c = json_object_get(seen, fields[k]);
        const char *ph = json_string_value(json_object_get(c, "phone"));
        if (!ph || ph[0] != '+') {
            p->invalid++;
            continue;
        }
        if (json_object_get(optouts, ph)) {
            p->skipped_optout++;
            continue;
        }
        /* surveyed in another period within skip_recent_days */
        const char *l = json_string_value(json_object_get(lastmap, ph));
        if (l && s->skip_recent_days > 0) {
            const char *bar = strchr(l, '|');
            long long at = bar ? strtoll(bar + 1, NULL, 10) : 0;
            if (bar && strncmp(l, slot.period, (size_t)(bar - l)) != 0 &&
                slot.run_ms - at < s->skip_recent_days * 86400000LL) {
                p->skipped_recent++;
                continue;
            }
        }
        json_t *item = json_deep_copy(c);
        json_object_set_new(item, "field", json_string(fields[k]));
        json_array_append_new(chosen, item);
    }
    free(fields);
    json_decref(seen);
    json_decref(lastmap);

    size_t nb = json_array_size(chosen);
    p->batch = (int)nb;
    long long span = p->end_ms - p->start_ms;
    long long last_at = p->start_ms;
    for (size_t i = 0; i < nb; i++) {
        long long at = p->start_ms + (nb ? span * (long long)i / (long long)nb : 0);
        json_object_set_new(json_array_get(chosen, i), "send_at", json_integer(at));
        last_at = at;
    }
    p->finish_ms = last_at;
    if (p->capacity_per_min > 0 && nb > 0) {
        long long by_rate = p->start_ms + (long long)nb * 60000 / p->capacity_per_min;
        if (by_rate > p->finish_ms)
            p->finish_ms = by_rate;
    }
    if (!commit || nb == 0) {
        rc = 0;
        goto out;
    }

    char cerr[512];
    cat = catalog_load_dir(cfg->templates_dir, cerr, sizeof cerr);
    if (!cat) {
        snprintf(err, errlen, "%s", cerr);
        goto out;
    }
    msgs = calloc(nb, sizeof *msgs);
    qm = calloc(nb, sizeof *qm);
    res = calloc(nb, sizeof *res);
    items = calloc(nb, sizeof *items);
    item_json = calloc(nb, sizeof *item_json);
    if (!msgs || !qm || !res || !items || !item_json)
        goto oom;
    char label[32];
    survey_period_label(slot.period, label, sizeof label);
    catalog_opts co = { cfg->signature, cfg->optout_line };
    for (size_t i = 0; i < nb; i++) {
        json_t *it = json_array_get(chosen, i);
        tpl_var vars[1] = { { "period", label } };
        char key[SVC_KEY_MAX];
        snprintf(key, sizeof key, "survey/%s/%s", slot.period,
                 json_string_value(json_object_get(it, "field")));
        for (char *k = key; *k; k++)           /* keys take no spaces */
            if (*k == ' ')
                *k = '_';
        svc_request rq = { s->template_name, json_string_value(json_object_get(it, "phone")),
                           vars, 1, key, json_integer_value(json_object_get(it, "send_at")) };
        if (svc_prepare(cat, &co, cfg->allow_international, &rq, now_ms, &msgs[i], cerr, sizeof cerr) < 0) {
            snprintf(err, errlen, "survey template '%s': %s", s->template_name, cerr);
            for (size_t k = 0; k <= i; k++)
                svc_message_free(&msgs[k]);
            free(msgs);
            msgs = NULL;
            goto out;
        }
        qm[i] = msgs[i].msg;
    }
    if (queue_enqueue(q, qm, nb, res) < 0) {
        snprintf(err, errlen, "enqueue: %s", queue_errstr(q));
        goto out;
    }
    for (size_t i = 0; i < nb; i++) {
        json_t *it = json_array_get(chosen, i);
        if (res[i].status < 0) {
            snprintf(err, errlen, "enqueue refused: %s", queue_errstr(q));
            goto out;
        }
        if (res[i].duplicate)
            p->duplicate_msgs++;
        else
            p->enqueued++;
        json_object_set_new(it, "msg_id", json_string(res[i].id));
        item_json[i] = json_dumps(it, JSON_COMPACT);
        items[i].field = json_string_value(json_object_get(it, "field"));
        items[i].phone = json_string_value(json_object_get(it, "phone"));
        items[i].json = item_json[i] ? item_json[i] : "{}";
        items[i].send_at_ms = json_integer_value(json_object_get(it, "send_at"));
    }
    if (queue_survey_items_put(q, slot.period, items, nb) < 0) {
        snprintf(err, errlen, "storing items: %s", queue_errstr(q));
        goto out;
    }
    rc = 0;
    goto out;
oom:
    snprintf(err, errlen, "out of memory");
out:
    if (msgs)
        for (size_t i = 0; i < json_array_size(chosen); i++)
            svc_message_free(&msgs[i]);
    free(msgs);
    free(qm);
    free(res);
    free(items);
    if (item_json)
        for (size_t i = 0; i < json_array_size(chosen); i++)
            free(item_json[i]);
    free(item_json);
    if (last)
        for (size_t i = 0; i < (size_t)p->contacts; i++)
            free(last[i]);
    free(last);
    free(phones);
    json_decref(chosen);
    json_decref(contacts);
    json_decref(optouts);
    catalog_free(cat);
    return rc;
}

static void fmt_local(const survey_settings *s, long long ms, char *buf, size_t len)
{
    struct tm tm;
    local_tm(&s->tz, ms, &tm);
    int off = survey_tz_offset(&s->tz, ms / 1000);
    snprintf(buf, len, "%04d-%02d-%02d %02d:%02d %c%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, off < 0 ? '-' : '+', abs(off) / 3600,
             abs(off) % 3600 / 60);
}

json_t *survey_plan_json(const survey_plan *p, const survey_settings *s)
{
    char a[80], b[80], f[80];
    fmt_local(s, p->start_ms, a, sizeof a);
    fmt_local(s, p->end_ms, b, sizeof b);
    fmt_local(s, p->finish_ms, f, sizeof f);
    return json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:i, s:i}",
                     "period", p->period, "contacts_from", p->from_ymd, "contacts_to", p->to_ymd,
                     "contacts", p->contacts, "batch", p->batch, "duplicates", p->duplicates,
                     "skipped_optout", p->skipped_optout, "skipped_recent", p->skipped_recent,
                     "invalid", p->invalid, "window_start", a, "window_end", b,
                     "estimated_finish", f, "window_start_ms", (json_int_t)p->start_ms,
                     "window_end_ms", (json_int_t)p->end_ms, "estimated_finish_ms", (json_int_t)p->finish_ms,
                     "capacity_per_minute", p->capacity_per_min, "enqueued", p->enqueued,
                     "already_queued", p->duplicate_msgs);
}

int survey_run(queue *q, const gw_config *cfg, const survey_settings *s, const char *owner,
               const char *period, long long now_ms, survey_plan *p, char *err, size_t errlen)
{
    survey_slot slot;
    if (survey_slot_of(s, period, &slot) < 0) {
        snprintf(err, errlen, "period '%s' is not YYYY-MM", period ? period : "");
        return -1;
    }
    int c = queue_survey_claim(q, slot.period, owner, now_ms, CLAIM_STALE_MS);
    if (c < 0) {
        snprintf(err, errlen, "redis: %s", queue_errstr(q));
        return -1;
    }
    if (c == QUEUE_CLAIM_DONE) {
        snprintf(err, errlen, "the survey batch of %s was built already", slot.period);
        return 1;
    }
    if (c == QUEUE_CLAIM_BUSY) {
        snprintf(err, errlen, "the survey batch of %s is being built by another gateway", slot.period);
        return 1;
    }
    if (survey_build(q, cfg, s, slot.period, now_ms, 1, p, err, errlen) < 0)
        return -1;
    json_t *j = survey_plan_json(p, s);
    char *js = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    int rc = queue_survey_done(q, slot.period, owner, js ? js : "{}", now_ms);
    free(js);
    if (rc < 0) {
        snprintf(err, errlen, "closing the run: %s", queue_errstr(q));
        return -1;
    }
    char a[80], b[80], f[80];
    fmt_local(s, p->start_ms, a, sizeof a);
    fmt_local(s, p->end_ms, b, sizeof b);
    fmt_local(s, p->finish_ms, f, sizeof f);
    char cap[48];
    if (p->capacity_per_min > 0)
        snprintf(cap, sizeof cap, "routes %d/min", p->capacity_per_min);
    else
        snprintf(cap, sizeof cap, "routes unlimited");
    gw_log(LOG_INFO, "survey", "batch %s built by %s: %d surveys (%d new, %d already queued) of %d contacts; "
           "skipped %d opted out, %d surveyed recently, %d duplicates; window %s to %s; "
           "estimated finish %s (%s)", slot.period, owner, p->batch, p->enqueued,
           p->duplicate_msgs, p->contacts, p->skipped_optout, p->skipped_recent, p->duplicates,
           a, b, f, cap);
    if (p->finish_ms > p->end_ms)
        gw_log(LOG_WARN, "survey", "batch %s: the routes serving surveys (%d/min) cannot send %d surveys "
               "by %s; the last should go out about %s", slot.period, p->capacity_per_min, p->batch, b, f);
    return 0;
}

/* ---- replies --------------------------------------------------------------------- */

/* A copy of s that is valid UTF-8 (bad bytes become U+FFFD): the stored
 * records are JSON. */
static char *utf8_clean(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1), *o = out;
    if (!out)
        return NULL;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t need = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 9;
        int ok = need != 9 && i + need < n + (need == 0);
        for (size_t k = 1; ok && k <= need; k++)
            if (i + k >= n || (u[i + k] & 0xC0) != 0x80)
                ok = 0;
        if (ok && need == 1 && c < 0xC2)
            ok = 0;                                   /* overlong */
        if (ok && need == 2 && ((c == 0xE0 && u[i + 1] < 0xA0) || (c == 0xED && u[i + 1] >= 0xA0)))
            ok = 0;                                   /* overlong, or a surrogate */
        if (ok && need == 3 && ((c == 0xF0 && u[i + 1] < 0x90) || (c == 0xF4 && u[i + 1] >= 0x90) || c > 0xF4))
            ok = 0;                                   /* overlong, or past U+10FFFF */
        if (ok && c != 0) {
            memcpy(o, u + i, need + 1);
            o += need + 1;
            i += need + 1;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    *o = '\0';
    return out;
}

static char *verdict_json(const reply_verdict *v)
{
    json_t *r = json_array();
    for (int k = 0; k < REPLY_ASPECTS; k++)
        json_array_append_new(r, json_integer(v->ratings[k]));
    json_t *j = json_pack("{s:s, s:o, s:s}", "status", reply_status_name(v->status), "ratings", r,
                          "suggestion", v->suggestion ? v->suggestion : "");
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

/* The acknowledgement: once per survey item (its idempotency key). */
static void send_ack(queue *q, const gw_config *cfg, const survey_settings *s, const char *to,
                     const char *period, const char *field, long long now_ms)
{
    char *text = NULL;
    if (asprintf(&text, "%s%s", cfg->signature, s->ack_text) < 0)
        return;
    seg_info si;
    char err[200];
    if (seg_count(text, strlen(text), &si, err, sizeof err) < 0) {
        free(text);
        return;
    }
    char key[SVC_KEY_MAX];
    snprintf(key, sizeof key, "survey-ack/%.100s/%.120s", period, field);
    for (char *k = key; *k; k++)
        if (*k == ' ')
            *k = '_';
    queue_new_msg m = {
        .family = "survey", .template_name = "survey_ack", .to = to, .text = text,
        .encoding = seg_encoding_name(si.encoding), .parts = si.parts, .lane = LANE_BULK,
        .vars_json = "{}", .provider_code = NULL, .idem_key = key, .now_ms = now_ms,
    };
    queue_enq_result r;
    char masked[PHONE_MAX];
    if (queue_enqueue(q, &m, 1, &r) < 0 || r.status < 0)
        gw_log(LOG_WARN, "survey", "acknowledgement to %s not queued: %s", phone_mask(to, masked),
               queue_errstr(q));
    free(text);
}

int survey_handle_inbound(queue *q, const gw_config *cfg, const survey_settings *s,
                          const char *entry, const char *route, const char *from,
                          const char *text, long long at_ms, long long now_ms)
{
    char phone[PHONE_MAX], perr[128], masked[PHONE_MAX];
    if (phone_normalize(from, 1, phone, perr, sizeof perr) < 0)
        snprintf(phone, sizeof phone, "%.*s", PHONE_MAX - 1, from);
    phone_mask(phone, masked);
    if (at_ms <= 0)
        at_ms = now_ms;
    char *clean = utf8_clean(text);
    if (!clean)
        return QUEUE_ERR_PROTO;
    reply_verdict v;
    if (reply_parse(clean, strlen(clean), &s->ropts, &v) < 0) {
        free(clean);
        return QUEUE_ERR_PROTO;
    }
    char *vj = verdict_json(&v);
    char match[256], sent[160];
    char *period = NULL, *field = NULL;
    const char *kind = "unsolicited", *msg_id = "", *family = "";
    int rc = queue_survey_match(q, phone, at_ms, s->reply_window_ms, match, sizeof match);
    if (rc == 0 && strchr(match, '|')) {
        period = match;
        field = strchr(match, '|');
        *field++ = '\0';
    } else if (rc == QUEUE_ERR_NOTFOUND) {
        rc = queue_sent_latest(q, phone, at_ms, sent, sizeof sent);
        if (rc == 0 && strchr(sent, '|')) {
            kind = "reply";
            family = sent;
            char *bar = strchr(sent, '|');
            *bar = '\0';
            msg_id = bar + 1;
        }
        if (rc == QUEUE_ERR_NOTFOUND)
            rc = 0;
    }
    if (rc < 0 || !vj) {
        free(vj);
        free(clean);
        reply_verdict_clear(&v);
        return rc < 0 ? rc : QUEUE_ERR_PROTO;
    }
    queue_reply_rec rec = {
        .entry = entry, .from = phone, .text = clean, .route = route, .at_ms = at_ms,
        .verdict_json = vj, .period = period, .field = field, .kind = kind,
        .msg_id = msg_id, .family = family,
        .optout = v.status == REPLY_OPTOUT ? 1 : v.status == REPLY_OPTIN ? -1 : 0,
        .now_ms = now_ms,
    };
    int first = 0;
    rc = queue_reply_record(q, &rec, &first);
    if (rc == 0) {
        char r4[8] = "-";
        if (v.ratings[0]) {
            for (int k = 0; k < REPLY_ASPECTS; k++)
                r4[k] = (char)('0' + v.ratings[k]);
            r4[REPLY_ASPECTS] = '\0';
        }
        if (period)
            gw_log(LOG_INFO, "survey", "reply from %s via %s to survey %s: %s %s%s", masked, route,
                   period, reply_status_name(v.status), r4, first ? "" : " (updates an earlier reply)");
        else
            gw_log(LOG_INFO, "survey", "%s from %s via %s%s%s: %s", kind, masked, route,
                   *msg_id ? " to " : "", msg_id, reply_status_name(v.status));
        if (v.status == REPLY_OPTOUT)
            gw_log(LOG_INFO, "survey", "%s opted out: bulk messages are no longer sent to it", masked);
        else if (v.status == REPLY_OPTIN)
            gw_log(LOG_INFO, "survey", "%s opted back in", masked);
        gw_log(LOG_DEBUG, "survey", "reply text from %s: %s", masked, clean);
        if (period && first && s->ack_text[0] && v.status != REPLY_OPTOUT && v.status != REPLY_OPTIN)
            send_ack(q, cfg, s, phone, period, field, now_ms);
    }
    free(vj);
    free(clean);
    reply_verdict_clear(&v);
    return rc;
}

/* ---- in the daemon ------------------------------------------------------------------ */

struct survey_daemon {
    const gw_config *cfg;
    survey_settings s;
    atomic_int *stop;
    pthread_t thread;
    int started;
    long long last_tick;
    char handled[SURVEY_PERIOD_MAX];   /* period known built: stop asking */
    char warned[SURVEY_PERIOD_MAX];    /* period missed: said so once */
    char consumer[96];
    char failed_entry[QUEUE_ENTRY_MAX]; /* the entry that failed last... */
    int failures;                       /* ...and how often in a row */
};

static void sleep_ms(long long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

#define INBOUND_MAX_FAILURES 3

/* One inbound entry: recorded, or dead-lettered when it has no sender or
 * was refused INBOUND_MAX_FAILURES times in a row (a poison entry must not
 * stop every reply behind it). Returns 0, or < 0 to reconnect and re-read. */
static int consume_one(survey_daemon *sd, queue *q, const queue_inbound_msg *m)
{
    const char *reason = NULL;
    char why[300];
    if (!m->from[0]) {
        reason = "inbound entry without a sender (field from)";
    } else {
        int rc = survey_handle_inbound(q, sd->cfg, &sd->s, m->entry, m->route, m->from, m->text,
                                       m->at_ms, survey_now_ms());
        if (rc == 0) {
            sd->failures = 0;
            return 0;
        }
        gw_log(LOG_WARN, "survey", "recording inbound %s: %s", m->entry, queue_errstr(q));
        if (rc == QUEUE_ERR_CONN)
            return rc;
        if (strcmp(sd->failed_entry, m->entry) != 0) {
            snprintf(sd->failed_entry, sizeof sd->failed_entry, "%s", m->entry);
            sd->failures = 0;
        }
        if (++sd->failures < INBOUND_MAX_FAILURES)
            return rc;
        snprintf(why, sizeof why, "inbound entry refused %d times: %s", sd->failures, queue_errstr(q));
        reason = why;
    }
    int rc = queue_inbound_bury(q, m->entry, reason, svc_now_ms());
    gw_log(rc == 0 ? LOG_ERROR : LOG_WARN, "survey", "inbound %s %s: %s", m->entry,
           rc == 0 ? "dead-lettered" : "could not be dead-lettered", reason);
    sd->failures = 0;
    return rc;
}

static void *replies_main(void *arg)
{
    survey_daemon *sd = arg;
    queue *q = NULL;
    queue_inbound_msg *buf = calloc(INBOUND_BATCH, sizeof *buf);
    int pending = 1;           /* first what this consumer left unacked */
    long long delay = 100;
    while (buf && !atomic_load(sd->stop)) {
        if (!q) {
            char err[256];
            q = queue_connect(&sd->cfg->queue, err, sizeof err);
            if (!q) {
                gw_log(LOG_WARN, "survey", "redis: %s", err);
                for (long long t = 0; t < delay && !atomic_load(sd->stop); t += 100)
                    sleep_ms(100);
                delay = delay < 5000 ? delay * 2 : delay;
                continue;
            }
            delay = 100;
        }
        int n = 0;
        int rc = queue_inbound_read(q, sd->consumer, pending, INBOUND_BATCH, INBOUND_BLOCK_MS, buf, &n);
        if (rc < 0) {
            gw_log(LOG_WARN, "survey", "reading inbound: %s", queue_errstr(q));
            queue_free(q);
            q = NULL;
            continue;
        }
        if (pending && n == 0)
            pending = 0;
        /* The month's batch is built here rather than in the housekeeper:
         * a build of 10,000 surveys takes seconds, which would stall the
         * promotion of scheduled sends and the instance lease. */
        survey_daemon_tick(sd, q);
        for (int i = 0; i < n; i++) {
            if (rc == 0)
                rc = consume_one(sd, q, &buf[i]);
            queue_inbound_msg_clear(&buf[i]);
        }
        if (rc < 0) {
            /* unacked entries come back through the pending read */
            queue_free(q);
            q = NULL;
            pending = 1;
        }
    }
    free(buf);
    queue_free(q);
    return NULL;
}

survey_daemon *survey_daemon_start(const gw_config *cfg, atomic_int *stop, char *err, size_t errlen)
{
    survey_daemon *sd = calloc(1, sizeof *sd);
    if (!sd) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (survey_settings_load(&cfg->cfg, &sd->s, err, errlen) < 0) {
        free(sd);
        return NULL;
    }
    sd->cfg = cfg;
    sd->stop = stop;
    snprintf(sd->consumer, sizeof sd->consumer, "%s/replies", cfg->instance);
    if (pthread_create(&sd->thread, NULL, replies_main, sd) == 0)
        sd->started = 1;
    return sd;
}

void survey_daemon_tick(survey_daemon *sd, queue *q)
{
    if (!sd || !sd->s.enabled)
        return;
    long long now = survey_now_ms();
    if (now - sd->last_tick < TICK_MS && sd->last_tick)
        return;
    sd->last_tick = now;
    survey_slot slot;
    survey_when w = survey_decide(&sd->s, now, &slot);
    if (w == SURVEY_NOT_YET || strcmp(sd->handled, slot.period) == 0)
        return;
    if (w == SURVEY_MISSED) {
        if (strcmp(sd->warned, slot.period) == 0)
            return;
        json_t *run = NULL;
        int rc = queue_survey_run_get(q, slot.period, &run);
        json_decref(run);
        if (rc == 0) {
            snprintf(sd->handled, sizeof sd->handled, "%s", slot.period);
        } else if (rc == QUEUE_ERR_NOTFOUND) {
            char a[80], b[80];
            fmt_local(&sd->s, slot.run_ms, a, sizeof a);
            fmt_local(&sd->s, slot.catch_up_ms, b, sizeof b);
            gw_log(LOG_WARN, "survey", "the survey batch of %s was due at %s and no gateway built it "
                   "before %s; it waits for a person: herald survey run --period %s",
                   slot.period, a, b, slot.period);
            snprintf(sd->warned, sizeof sd->warned, "%s", slot.period);
        }
        return;
    }
    survey_plan p;
    char err[512];
    int rc = survey_run(q, sd->cfg, &sd->s, sd->cfg->instance, slot.period, now, &p, err, sizeof err);
    if (rc == 0 || rc == 1) {
        if (rc == 1)
            gw_log(LOG_DEBUG, "survey", "%s", err);
        if (rc == 0 || strstr(err, "built already"))
            snprintf(sd->handled, sizeof sd->handled, "%s", slot.period);
    } else {
        gw_log(LOG_ERROR, "survey", "building the batch of %s: %s (will retry)", slot.period, err);
        sd->last_tick = now + 30000;     /* not every second */
    }
}

void survey_daemon_stop(survey_daemon *sd)
{
    if (!sd)
        return;
    if (sd->started)
        pthread_join(sd->thread, NULL);
    survey_settings_free(&sd->s);
    free(sd);
}
