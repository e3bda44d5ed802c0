/* bulletin.c -- the mobile bulletin: lists, issues, MMS through the queue,
 * SMS fallback, delivery reports and figures (see bulletin.h and
 * docs/bulletins.md).
 *
 * The command line (`herald list`, `herald bulletin`) and the worker hooks
 * live here; Redis is reached through queue/bulletin.h only, composition is
 * templates/mms.h, MM7 parsing providers/mm7.h. This is the one file of
 * the bulletin that reads files (the content folder, CSV imports). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jansson.h>

#include "gateway/bulletin.h"
#include "gateway/log.h"
#include "gateway/phone.h"
#include "gateway/service.h"
#include "queue/bulletin.h"
#include "queue/survey.h"
#include "templates/mms.h"

#define DEFAULT_BUDGET_KB 300
#define DEFAULT_BATCH 10
#define MAX_FILE (16 * 1024 * 1024)   /* no slide file is larger; a mistake if it is */
#define MAX_LISTS 16

const cfg_key gw_bulletin_keys[] = {
    { "titles", CFG_STRLIST, "", 0, 0, NULL,
      "bulletin titles that may be sent, e.g. [\"检察工作通讯\", \"预防犯罪\", \"微检察\"]; each numbers its own issues" },
    { "link_pattern", CFG_STR, "", 0, 0, NULL,
      "link in the fallback SMS; {title} (URL-encoded) and {issue} are replaced" },
    { "slide_duration_s", CFG_INT, "8", 1, 600, NULL, "how long each slide shows (SMIL par dur)" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const config_setting_t *bulletin_group(const gw_config *cfg)
{
    return config_lookup(&cfg->cfg, "bulletin");
}

/* 1 when `title` is one of bulletin.titles. */
static int title_known(const gw_config *cfg, const char *title)
{
    const config_setting_t *t = config_setting_get_member(bulletin_group(cfg), "titles");
    for (int i = 0; t && i < config_setting_length(t); i++) {
        const char *s = config_setting_get_string_elem(t, (unsigned)i);
        if (s && strcmp(s, title) == 0)
            return 1;
    }
    return 0;
}

static void titles_text(const gw_config *cfg, char *buf, size_t len)
{
    const config_setting_t *t = config_setting_get_member(bulletin_group(cfg), "titles");
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; t && i < config_setting_length(t) && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? ", " : "",
                              config_setting_get_string_elem(t, (unsigned)i));
    if (!buf[0])
        snprintf(buf, len, "none: set bulletin.titles in the configuration");
}

/* The routes that carry bulletin MMS: mm7 routes serving family bulletin.
 * The budget is the smallest max_size_kb among them, the batch the
 * smallest max_recipients, so any of them accepts what is queued. */
static void mms_limits(const gw_config *cfg, size_t *budget, int *batch, int *nroutes)
{
    long long kb = 0, rc = 0;
    *nroutes = 0;
    for (int i = 0; i < cfg->nroutes; i++) {
        const gw_route_cfg *r = &cfg->routes[i];
        if (r->driver != &prov_mm7 || !(r->families & (1u << FAMILY_BULLETIN)))
            continue;
        long long k = cfg_int(r->opts, prov_mm7.keys, "max_size_kb");
        long long m = cfg_int(r->opts, prov_mm7.keys, "max_recipients");
        if (!kb || k < kb)
            kb = k;
        if (!rc || m < rc)
            rc = m;
        (*nroutes)++;
    }
    *budget = (size_t)(kb ? kb : DEFAULT_BUDGET_KB) * 1024;
    *batch = (int)(rc ? rc : DEFAULT_BATCH);
}

/* ---- files ---------------------------------------------------------------- */

/* Reads a whole file (at most MAX_FILE bytes). NUL-terminated; *len
 * excludes the NUL. */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 8192, n = 0;
    char *b = malloc(cap + 1);
    while (b) {
        if (n == cap) {
            if (cap >= MAX_FILE) {
                snprintf(err, errlen, "'%s' is larger than %d MB", path, MAX_FILE / (1024 * 1024));
                free(b);
                b = NULL;
                break;
            }
            char *nb = realloc(b, cap * 2 + 1);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (b && ferror(f)) {
        snprintf(err, errlen, "reading '%s': %s", path, strerror(errno));
        free(b);
        b = NULL;
    } else if (!b && !err[0]) {
        snprintf(err, errlen, "out of memory reading '%s'", path);
    }
    fclose(f);
    if (b) {
        b[n] = '\0';
        *len = n;
    }
    return b;
}

/* ---- content: a folder of slides or one file ---------------------------------
 * A folder holds NN.txt and NN.jpg|jpeg|png|gif (NN = 1..20, slides in
 * number order, a slide needs at least one of the two) and an optional
 * subject.txt (its first line is the MMS Subject). One .txt file is one
 * slide whose first line is the subject; one image file is one slide. */

typedef struct content {
    mms_issue is;
    char *subject;                    /* NULL: the default subject */
    char *bufs[2 * MMS_MAX_SLIDES + 1];
    int nbufs;
    char names[MMS_MAX_SLIDES][64];
} content;

static void content_free(content *c)
{
    for (int i = 0; i < c->nbufs; i++)
        free(c->bufs[i]);
    free(c->subject);
    memset(c, 0, sizeof *c);
}

static int is_image_ext(const char *e)
{
    return !strcasecmp(e, "jpg") || !strcasecmp(e, "jpeg") || !strcasecmp(e, "png") || !strcasecmp(e, "gif");
}

/* First line (without CR/LF), trimmed; NULL when empty. */
static char *first_line(const char *s, size_t len, size_t *rest)
{
    size_t e = 0;
    while (e < len && s[e] != '\n')
        e++;
    *rest = e < len ? e + 1 : len;
    size_t b = 0, t = e;
    while (b < t && isspace((unsigned char)s[b]))
        b++;
    while (t > b && isspace((unsigned char)s[t - 1]))
        t--;
    return t > b ? strndup(s + b, t - b) : NULL;
}

static int load_dir(const char *dir, int dur, content *c, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot open the content folder '%s': %s", dir, strerror(errno));
        return -1;
    }
    char path[4096];
    char *txtname[MMS_MAX_SLIDES + 1] = { 0 }, *imgname[MMS_MAX_SLIDES + 1] = { 0 };
    int rc = 0, max = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        const char *n = de->d_name;
        if (n[0] == '.')
            continue;
        if (strcmp(n, "subject.txt") == 0) {
            snprintf(path, sizeof path, "%s/%s", dir, n);
            size_t len, rest;
            char *s = read_file(path, &len, err, errlen);
            if (!s) { rc = -1; break; }
            c->subject = first_line(s, len, &rest);
            free(s);
            continue;
        }
        char *end;
        long num = strtol(n, &end, 10);
        const char *ext = *end == '.' ? end + 1 : "";
        if (!isdigit((unsigned char)n[0]) || num < 1 || num > MMS_MAX_SLIDES
            || (strcasecmp(ext, "txt") != 0 && !is_image_ext(ext))) {
            snprintf(err, errlen, "%s/%s: unexpected file; a content folder holds NN.txt, "
                     "NN.jpg|jpeg|png|gif (NN = 01..%d) and subject.txt", dir, n, MMS_MAX_SLIDES);
            rc = -1;
            break;
        }
        char **slot = strcasecmp(ext, "txt") == 0 ? &txtname[num] : &imgname[num];
        if (*slot) {
            snprintf(err, errlen, "%s: slide %ld has two %s files: %s and %s", dir, num,
                     slot == &txtname[num] ? "text" : "image", *slot, n);
            rc = -1;
            break;
        }
        *slot = strdup(n);
        if (num > max)
            max = (int)num;
    }
    closedir(d);
    for (int i = 1; rc == 0 && i <= max; i++) {
        if (!txtname[i] && !imgname[i])
            continue;               /* gaps are fine: order is what counts */
        mms_slide *s = &c->is.slides[c->is.nslides];
        s->dur_s = dur;
        if (imgname[i]) {
            snprintf(path, sizeof path, "%s/%s", dir, imgname[i]);
            size_t len;
            char *b = read_file(path, &len, err, errlen);
            if (!b) { rc = -1; break; }
            c->bufs[c->nbufs++] = b;
            s->image = (const unsigned char *)b;
            s->image_len = len;
            snprintf(c->names[c->is.nslides], sizeof c->names[0], "%s", imgname[i]);
            s->image_name = c->names[c->is.nslides];
        }
        if (txtname[i]) {
            snprintf(path, sizeof path, "%s/%s", dir, txtname[i]);
            size_t len;
            char *b = read_file(path, &len, err, errlen);
            if (!b) { rc = -1; break; }
            c->bufs[c->nbufs++] = b;
            s->text = b;
            s->text_len = len;
        }
        c->is.nslides++;
    }
    for (int i = 0; i <= MMS_MAX_SLIDES; i++) {
        free(txtname[i]);
        free(imgname[i]);
    }
    if (rc == 0 && c->is.nslides == 0) {
        snprintf(err, errlen, "the content folder '%s' has no slides (NN.txt, NN.jpg...)", dir);
        rc = -1;
    }
    return rc;
}

static int load_content(const char *path, int dur, content *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    struct stat st;
    if (stat(path, &st) < 0) {
        snprintf(err, errlen, "--content: '%s': %s", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode))
        return load_dir(path, dur, c, err, errlen);
    size_t len;
    char *b = read_file(path, &len, err, errlen);
    if (!b)
        return -1;
    c->bufs[c->nbufs++] = b;
    mms_slide *s = &c->is.slides[0];
    s->dur_s = dur;
    const char *dot = strrchr(path, '.');
    if (dot && is_image_ext(dot + 1)) {
        s->image = (const unsigned char *)b;
        s->image_len = len;
        const char *base = strrchr(path, '/');
        snprintf(c->names[0], sizeof c->names[0], "%s", base ? base + 1 : path);
        s->image_name = c->names[0];
    } else {
        size_t rest;
        c->subject = first_line(b, len, &rest);
        s->text = b + rest;
        s->text_len = len - rest;
        if (!s->text_len) {
            snprintf(err, errlen, "'%s': a text file needs the subject on its first line and the text below", path);
            return -1;
        }
    }
    c->is.nslides = 1;
    return 0;
}

/* ---- fallback SMS ------------------------------------------------------------- */

/* bulletin.link_pattern with {title} (percent-encoded) and {issue}. */
static void make_link(const gw_config *cfg, const char *title, long long issue, char *out, size_t len)
{
    const char *pat = cfg_str(bulletin_group(cfg), gw_bulletin_keys, "link_pattern");
    size_t n = 0;
    out[0] = '\0';
    for (const char *p = pat; *p && n + 16 < len; p++) {
        if (strncmp(p, "{title}", 7) == 0) {
            for (const unsigned char *t = (const unsigned char *)title; *t && n + 4 < len; t++)
                n += isalnum(*t) || strchr("-_.~", *t) ? (size_t)snprintf(out + n, len - n, "%c", *t)
                                                       : (size_t)snprintf(out + n, len - n, "%%%02X", *t);
            p += 6;
        } else if (strncmp(p, "{issue}", 7) == 0) {
            n += (size_t)snprintf(out + n, len - n, "%lld", issue);
            p += 6;
        } else {
            out[n++] = *p;
            out[n] = '\0';
        }
    }
}

/* Queues the bulletin_fallback SMS to `phone` once per issue (idempotency
 * key bulletin:<title>:<n>:sms:<phone>) and counts it. */
static int fallback_sms(queue *q, const gw_config *cfg, const catalog *cat, const char *title,
                        long long issue, const char *phone, long long send_at, char *err, size_t errlen)
{
    char num[24], link[1024], key[SVC_KEY_MAX];
    snprintf(num, sizeof num, "%lld", issue);
    make_link(cfg, title, issue, link, sizeof link);
    if (!link[0]) {
        snprintf(err, errlen, "bulletin.link_pattern is empty: the fallback SMS needs a link");
        return -1;
    }
    tpl_var vars[3] = { { "title", title }, { "issue_no", num }, { "link", link } };
    snprintf(key, sizeof key, "bulletin:%s:%lld:sms:%s", title, issue, phone);
    catalog_opts co = { cfg->signature, cfg->optout_line };
    svc_request rq = { BULLETIN_FALLBACK_TEMPLATE, phone, vars, 3, key, send_at };
    svc_message m;
    if (svc_prepare(cat, &co, 1, &rq, svc_now_ms(), &m, err, errlen) < 0) {
        svc_message_free(&m);
        return -1;
    }
    queue_enq_result res;
    int rc = queue_enqueue(q, &m.msg, 1, &res);
    svc_message_free(&m);
    if (rc < 0 || res.status < 0) {
        snprintf(err, errlen, "queueing the fallback SMS: %s", queue_errstr(q));
        return -1;
    }
    if (queue_bulletin_fallback(q, title, issue, phone, NULL) < 0) {
        snprintf(err, errlen, "counting the fallback SMS: %s", queue_errstr(q));
        return -1;
    }
    return 0;
}

/* Checks, before an issue takes a number, that its fallback SMS can be
 * made: a link pattern, and a text within the template's part limit (with
 * a five-digit issue number, longer than any real one). */
static int fallback_check(const gw_config *cfg, const catalog *cat, const char *title,
                          char *err, size_t errlen)
{
    char link[1024];
    make_link(cfg, title, 99999, link, sizeof link);
    if (!link[0]) {
        snprintf(err, errlen, "bulletin.link_pattern is empty: the fallback SMS needs a link");
        return -1;
    }
    const tpl_def *d = catalog_find(cat, BULLETIN_FALLBACK_TEMPLATE);
    if (!d) {
        snprintf(err, errlen, "template '%s' is missing from %s", BULLETIN_FALLBACK_TEMPLATE,
                 cfg->templates_dir);
        return -1;
    }
    tpl_var vars[3] = { { "title", title }, { "issue_no", "99999" }, { "link", link } };
    catalog_opts co = { cfg->signature, cfg->optout_line };
    rendered r;
    char why[256];
    if (catalog_render(d, &co, vars, 3, &r, why, sizeof why) < 0) {
        snprintf(err, errlen, "the fallback SMS cannot be made (%s); shorten bulletin.link_pattern", why);
        return -1;
    }
    free(r.text);
    return 0;
}

/* ---- worker hooks -------------------------------------------------------------- */

void bulletin_job_clear(bulletin_job *bj)
{
    if (!bj)
        return;
    for (int i = 0; i < bj->nrcpt; i++)
        free(bj->rcpt[i]);
    free(bj->rcpt);
    free(bj->title);
    free(bj->content);
    free(bj->content_type);
    free(bj->subject);
    memset(bj, 0, sizeof *bj);
}

int bulletin_job_load(queue *q, const queue_job *job, bulletin_job *bj, char *err, size_t errlen)
{
    memset(bj, 0, sizeof *bj);
    if (!job->template_name || strcmp(job->template_name, BULLETIN_MMS_TEMPLATE) != 0)
        return 0;
    json_t *v = json_loads(job->vars_json ? job->vars_json : "", 0, NULL);
    const char *title = json_string_value(json_object_get(v, "title"));
    json_t *iss = json_object_get(v, "issue");
    json_t *rc = json_object_get(v, "recipients");
    long long issue = json_is_integer(iss) ? json_integer_value(iss) : 0;
    if (!title || issue <= 0 || !json_is_array(rc) || json_array_size(rc) == 0) {
        snprintf(err, errlen, "bulletin message without title, issue or recipients in its vars");
        json_decref(v);
        return -1;
    }
    bj->title = strdup(title);
    bj->issue = issue;
    bj->rcpt = calloc(json_array_size(rc), sizeof *bj->rcpt);
    for (size_t i = 0; bj->rcpt && i < json_array_size(rc); i++) {
        const char *p = json_string_value(json_array_get(rc, i));
        bj->rcpt[bj->nrcpt] = p ? strdup(p) : NULL;
        if (bj->rcpt[bj->nrcpt])
            bj->nrcpt++;
    }
    json_decref(v);
    if (!bj->title || !bj->rcpt) {
        snprintf(err, errlen, "out of memory");
        bulletin_job_clear(bj);
        return -1;
    }
    if (queue_bulletin_content(q, bj->title, bj->issue, &bj->content, &bj->len, &bj->content_type,
                               &bj->subject) < 0) {
        snprintf(err, errlen, "issue %lld of the bulletin: %s", issue, queue_errstr(q));
        bulletin_job_clear(bj);
        return -1;
    }
    return 1;
}

void bulletin_job_done(queue *q, const gw_config *cfg, const catalog *cat,
                       const bulletin_job *bj, const prov_result *res, int dead)
{
    char err[512], masked[PHONE_MAX];
    for (int i = 0; i < bj->nrcpt; i++) {
        const char *p = bj->rcpt[i];
        int rc = 0;
        if (res->status == PROV_OK) {
            rc = queue_bulletin_mark(q, bj->title, bj->issue, p, "sent", "mms_sent", res->refs, NULL);
        } else if (dead) {
            rc = queue_bulletin_mark(q, bj->title, bj->issue, p, "failed", "failed", NULL, NULL);
            if (rc == 0 && fallback_sms(q, cfg, cat, bj->title, bj->issue, p, 0, err, sizeof err) < 0)
                gw_log(LOG_ERROR, "bulletin", "fallback SMS to %s for issue %lld: %s",
                       phone_mask(p, masked), bj->issue, err);
        }
        if (rc < 0)
            gw_log(LOG_ERROR, "bulletin", "recording issue %lld for %s: %s", bj->issue,
                   phone_mask(p, masked), queue_errstr(q));
    }
}

int bulletin_apply_dlr(queue *q, const gw_config *cfg, const catalog *cat,
                       const mm7_dlr *d, char *err, size_t errlen)
{
    int final, ok;
    const char *st = mm7_status_name(d->mm_status, &final, &ok);
    if (!st) {
        snprintf(err, errlen, "unknown MMStatus '%s'", d->mm_status);
        return -1;
    }
    char phone[PHONE_MAX], perr[128];
    /* MMSCs write the number in many ways (13800138000, 8613800138000, +86...) */
    const char *num = d->recipient;
    if (strncmp(num, "86", 2) == 0 && strlen(num) == 13) {
        snprintf(phone, sizeof phone, "+%.13s", num);
        num = phone;
    }
    char canon[PHONE_MAX];
    if (phone_normalize(num, 1, canon, perr, sizeof perr) < 0) {
        snprintf(err, errlen, "DeliveryReportReq Recipient: %s", perr);
        return -1;
    }
    char *title = NULL;
    long long issue = 0;
    int rc = queue_bulletin_by_mid(q, d->message_id, &title, &issue);
    if (rc < 0) {
        snprintf(err, errlen, "MessageID %s: %s", d->message_id, queue_errstr(q));
        return -1;
    }
    const char *counter = !final ? NULL : ok ? (strcmp(st, "retrieved") == 0 ? "mms_retrieved" : NULL) : "failed";
    int changed = 0;
    rc = queue_bulletin_mark(q, title, issue, canon, st, counter, NULL, &changed);
    if (rc < 0) {
        snprintf(err, errlen, "MessageID %s: %s", d->message_id, queue_errstr(q));
        free(title);
        return -1;
    }
    char masked[PHONE_MAX];
    gw_log(LOG_INFO, "bulletin", "delivery report: issue %lld to %s: %s%s", issue,
           phone_mask(canon, masked), d->mm_status, changed ? "" : " (no change)");
    if (changed && final && !ok && fallback_sms(q, cfg, cat, title, issue, canon, 0, err, errlen) < 0) {
        free(title);
        return -1;
    }
    free(title);
    return 0;
}

/* ---- herald list ------------------------------------------------------------- */

static int truthy(const char *s, int *v)
{
    static const char *const yes[] = { "1", "true", "yes", "y", "是", "sms", "sms_only", NULL };
    static const char *const no[] = { "", "0", "false", "no", "n", "否", "mms", NULL };
    for (const char *const *p = yes; *p; p++)
        if (strcasecmp(s, *p) == 0) { *v = 1; return 0; }
    for (const char *const *p = no; *p; p++)
        if (strcasecmp(s, *p) == 0) { *v = 0; return 0; }
    return -1;
}

int bulletin_list_name_ok(const char *s)
{
    if (!*s || strlen(s) > 64)
        return 0;
    for (; *s; s++)
        if (isspace((unsigned char)*s) || *s == ':' || *s == '{' || *s == '}')
            return 0;
    return 1;
}

/* Splits one CSV line (RFC 4180 quoting, no line breaks inside fields)
 * into at most max fields, in place. Returns the count, or -1 on an
 * unclosed quote. */
static int csv_split(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max)
            return n + 1;               /* too many: the caller says so */
        char *out = p;
        f[n++] = out;
        if (*p == '"') {
            p++;
            for (;;) {
                if (!*p)
                    return -1;
                if (*p == '"' && p[1] == '"') { *out++ = '"'; p += 2; continue; }
                if (*p == '"') { p++; break; }
                *out++ = *p++;
            }
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p && *p != ',')
                return -1;
        } else {
            while (*p && *p != ',')
                *out++ = *p++;
        }
        char sep = *p;
        *out = '\0';
        if (sep != ',')
            return n;
        p++;
    }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t l = strlen(s);
    while (l && isspace((unsigned char)s[l - 1]))
        s[--l] = '\0';
    return s;
}

/* `herald list import NAME FILE.csv`: columns phone,name,org,sms_only; a
 * first line whose first field is "phone" (or 手机号) is a header. Every
 * row is checked; refused rows are reported (line and reason) and the
 * accepted ones are stored. Exit 2 when any row was refused. */
static int list_import(gw_config *cfg, const char *list, const char *file)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (!f)
        return svc_die(EXIT_BAD_INPUT, "list import: cannot open '%s': %s", file, strerror(errno));
    queue *q = svc_connect(&cfg->queue);
    if (!q) {
        if (f != stdin)
            fclose(f);
        return EXIT_FAILURE_OTHER;
    }
    json_t *seen = json_object();       /* phone -> line, for duplicates in the file */
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0, accepted = 0, added = 0, refused = 0;
    int failed = 0;
    while (!failed && getline(&line, &cap, f) != -1) {
        lineno++;
        char *l = line;
        if (lineno == 1 && (unsigned char)l[0] == 0xEF && (unsigned char)l[1] == 0xBB
            && (unsigned char)l[2] == 0xBF)
            l += 3;                     /* the BOM spreadsheets write */
        l[strcspn(l, "\r\n")] = '\0';
        if (!*trim(l))
            continue;
        char *fld[5];
        char why[256] = "";
        int n = csv_split(l, fld, 4);
        if (n < 0) {
            snprintf(why, sizeof why, "unclosed quote");
        } else if (n > 4) {
            snprintf(why, sizeof why, "more than 4 fields (phone,name,org,sms_only)");
        } else {
            for (int i = 0; i < n; i++)
                fld[i] = trim(fld[i]);
            if (lineno == 1 && (strcasecmp(fld[0], "phone") == 0 || strcmp(fld[0], "手机号") == 0))
                continue;
            const char *name = n > 1 ? fld[1] : "", *org = n > 2 ? fld[2] : "";
            int sms_only = 0;
            char canon[PHONE_MAX], perr[160];
            if (phone_normalize(fld[0], cfg->allow_international, canon, perr, sizeof perr) < 0) {
                snprintf(why, sizeof why, "phone '%s': %s", fld[0], perr);
            } else if (n > 3 && truthy(fld[3], &sms_only) < 0) {
                snprintf(why, sizeof why, "sms_only '%s' is not 1/0, true/false, yes/no", fld[3]);
            } else if (!mms_utf8_valid(name, strlen(name)) || !mms_utf8_valid(org, strlen(org))) {
                snprintf(why, sizeof why, "name or organisation is not UTF-8 (save the file as UTF-8)");
            } else if (json_object_get(seen, canon)) {
                char masked[PHONE_MAX];
                snprintf(why, sizeof why, "%s repeats line %lld", phone_mask(canon, masked),
                         (long long)json_integer_value(json_object_get(seen, canon)));
            } else {
                int isnew = 0;
                if (queue_list_put(q, list, canon, name, org, sms_only, &isnew) < 0) {
                    fprintf(stderr, "herald: line %ld: redis: %s\n", lineno, queue_errstr(q));
                    failed = 1;
                    break;
                }
                json_object_set_new(seen, canon, json_integer(lineno));
                accepted++;
                added += isnew;
            }
        }
        if (why[0]) {
            printf("line %ld: refused: %s\n", lineno, why);
            refused++;
        }
    }
    free(line);
    json_decref(seen);
    if (f != stdin)
        fclose(f);
    queue_free(q);
    if (failed)
        return EXIT_FAILURE_OTHER;
    printf("list %s: %ld rows accepted (%ld new, %ld updated), %ld refused\n", list, accepted, added,
           accepted - added, refused);
    return refused ? EXIT_BAD_INPUT : EXIT_DONE;
}

static int list_usage(void)
{
    return svc_die(EXIT_BAD_INPUT, "usage: herald list add NAME PHONE [--name N] [--org O] [--sms-only]\n"
               "       herald list remove NAME PHONE | list show NAME [--json] | list import NAME FILE.csv");
}

int gw_cmd_list(gw_config *cfg, int argc, char **argv)
{
    if (argc < 3)
        return list_usage();
    const char *sub = argv[1], *list = argv[2];
    if (!bulletin_list_name_ok(list))
        return svc_die(EXIT_BAD_INPUT, "list name '%s': 1-64 characters without spaces, ':' or braces", list);
    if (strcmp(sub, "import") == 0) {
        if (argc != 4)
            return list_usage();
        return list_import(cfg, list, argv[3]);
    }
    if (strcmp(sub, "show") == 0) {
        int as_json = argc == 4 && strcmp(argv[3], "--json") == 0;
        if (argc > 4 || (argc == 4 && !as_json))
            return list_usage();
        queue *q = svc_connect(&cfg->queue);
        if (!q)
            return EXIT_FAILURE_OTHER;
        json_t *j = NULL;
        int rc = queue_list_get(q, list, &j);
        int code = EXIT_DONE;
        if (rc < 0) {
            code = svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
        } else if (as_json) {
            svc_print_json(j);
        } else {
            size_t i;
            json_t *m;
            json_array_foreach(j, i, m)
                printf("%s\t%s\t%s\t%s\n", json_string_value(json_object_get(m, "phone")),
                       json_string_value(json_object_get(m, "name")),
                       json_string_value(json_object_get(m, "org")),
                       json_is_true(json_object_get(m, "sms_only")) ? "sms_only" : "mms");
            printf("%zu members\n", json_array_size(j));
        }
        json_decref(j);
        queue_free(q);
        return code;
    }
    if (argc < 4)
        return list_usage();
    char canon[PHONE_MAX], perr[160];
    if (phone_normalize(argv[3], cfg->allow_international, canon, perr, sizeof perr) < 0)
        return svc_die(EXIT_BAD_INPUT, "phone '%s': %s", argv[3], perr);
    if (strcmp(sub, "remove") == 0) {
        if (argc != 4)
            return list_usage();
        queue *q = svc_connect(&cfg->queue);
        if (!q)
            return EXIT_FAILURE_OTHER;
        int removed = 0, code = EXIT_DONE;
        if (queue_list_remove(q, list, canon, &removed) < 0)
            code = svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
        else if (!removed)
            code = svc_die(EXIT_BAD_INPUT, "%s is not on list %s", canon, list);
        else
            printf("removed %s from %s\n", canon, list);
        queue_free(q);
        return code;
    }
    if (strcmp(sub, "add") != 0)
        return list_usage();
    static const struct option opts[] = {
        { "name", required_argument, NULL, 'n' },
        { "org", required_argument, NULL, 'o' },
        { "sms-only", no_argument, NULL, 's' },
        { NULL, 0, NULL, 0 }
    };
    const char *name = "", *org = "";
    int sms_only = 0, ch;
    optind = 4;
    while ((ch = getopt_long(argc, argv, "n:o:s", opts, NULL)) != -1) {
        if (ch == 'n') name = optarg;
        else if (ch == 'o') org = optarg;
        else if (ch == 's') sms_only = 1;
        else return list_usage();
    }
    if (optind < argc)
        return svc_die(EXIT_BAD_INPUT, "unexpected argument '%s'", argv[optind]);
    queue *q = svc_connect(&cfg->queue);
    if (!q)
        return EXIT_FAILURE_OTHER;
    int added = 0, code = EXIT_DONE;
    if (queue_list_put(q, list, canon, name, org, sms_only, &added) < 0)
        code = svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
    else
        printf("%s %s on %s%s\n", added ? "added" : "updated", canon, list, sms_only ? " (sms_only)" : "");
    queue_free(q);
    return code;
}

/* ---- herald bulletin send ------------------------------------------------------- */

typedef struct member {
    const char *phone;
    int sms_only;
} member;

/* The union of the lists, each number once; a number flagged sms_only on
 * any of its lists is sms_only. Opted-out numbers are left out. Returns 0,
 * -1 bad input (err, *field), -2 Redis. */
static int gather(queue *q, const char *const *lists, int nlists, json_t **holder, member **out,
                  size_t *n, long long *optout, char *err, size_t errlen, const char **field)
{
    json_t *byphone = json_object();
    *holder = json_array();
    *optout = 0;
    *n = 0;
    for (int i = 0; i < nlists; i++) {
        json_t *arr = NULL;
        if (queue_list_get(q, lists[i], &arr) < 0) {
            json_decref(byphone);
            snprintf(err, errlen, "redis: %s", queue_errstr(q));
            return -2;
        }
        if (json_array_size(arr) == 0) {
            json_decref(arr);
            json_decref(byphone);
            snprintf(err, errlen, "list '%s' has no members", lists[i]);
            *field = "lists";
            return -1;
        }
        json_array_append_new(*holder, arr);
        size_t k;
        json_t *m;
        json_array_foreach(arr, k, m) {
            const char *p = json_string_value(json_object_get(m, "phone"));
            json_t *prev = json_object_get(byphone, p);
            int so = json_is_true(json_object_get(m, "sms_only"));
            if (!prev || (so && !json_is_true(json_object_get(prev, "sms_only"))))
                json_object_set(byphone, p, m);
        }
    }
    *out = calloc(json_object_size(byphone) + 1, sizeof **out);
    const char *p;
    json_t *m;
    json_object_foreach(byphone, p, m) {
        int yes = queue_optout_has(q, p);
        if (yes < 0) {
            json_decref(byphone);
            snprintf(err, errlen, "redis: %s", queue_errstr(q));
            return -2;
        }
        if (yes) {
            (*optout)++;
            continue;
        }
        /* the phone string lives in *holder's members, which stay alive */
        (*out)[*n].phone = json_string_value(json_object_get(m, "phone"));
        (*out)[*n].sms_only = json_is_true(json_object_get(m, "sms_only"));
        (*n)++;
    }
    json_decref(byphone);
    return 0;
}

static json_t *parts_json(const mms_composed *mc)
{
    json_t *a = json_array();
    for (int i = 0; i < mc->nparts; i++) {
        const mms_part *p = &mc->parts[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:I}", "cid", p->cid, "type", p->type, "name", p->name,
                              "size", (json_int_t)p->size);
        if (p->width)
            json_object_set_new(o, "width", json_integer(p->width));
        if (p->height)
            json_object_set_new(o, "height", json_integer(p->height));
        json_array_append_new(a, o);
    }
    return a;
}

static int enqueue_mms(queue *q, const char *title, long long issue, const char *subject,
                       const member *ms, size_t n, int batch, long long send_at, long long *requests,
                       char *err, size_t errlen)
{
    *requests = 0;
    size_t k = 0, group = 0;
    while (k < n) {
        json_t *rc = json_array();
        const char *first = NULL;
        size_t g = 0;
        for (; k < n && g < (size_t)batch; k++) {
            if (ms[k].sms_only)
                continue;
            if (!first)
                first = ms[k].phone;
            json_array_append_new(rc, json_string(ms[k].phone));
            g++;
        }
        if (!g) {
            json_decref(rc);
            break;
        }
        json_t *v = json_pack("{s:s, s:I, s:o}", "title", title, "issue", (json_int_t)issue, "recipients", rc);
        char *vj = json_dumps(v, JSON_COMPACT);
        json_decref(v);
        char key[SVC_KEY_MAX];
        snprintf(key, sizeof key, "bulletin:%s:%lld:mms:%zu", title, issue, group++);
        queue_new_msg m = {
            .family = "bulletin", .template_name = BULLETIN_MMS_TEMPLATE, .to = first,
            .text = subject, .encoding = "mms", .parts = 1, .lane = LANE_BULK,
            .vars_json = vj, .provider_code = "", .idem_key = key, .send_at_ms = send_at,
            .now_ms = svc_now_ms(),
        };
        queue_enq_result res;
        int r = vj ? queue_enqueue(q, &m, 1, &res) : -1;
        free(vj);
        if (r < 0 || res.status < 0) {
            snprintf(err, errlen, "queueing issue %lld: %s", issue, queue_errstr(q));
            return -2;
        }
        (*requests)++;
    }
    return 0;
}

int bulletin_issue_send(queue *q, const gw_config *cfg, const catalog *cat, const bulletin_send_req *rq,
                        json_t **out, char *err, size_t errlen, const char **field)
{
    *out = NULL;
    *field = NULL;
    char known[512];
    if (!rq->title || !title_known(cfg, rq->title)) {
        titles_text(cfg, known, sizeof known);
        snprintf(err, errlen, "title '%s' is not a configured bulletin title (bulletin.titles: %s)",
                 rq->title ? rq->title : "", known);
        *field = "title";
        return -1;
    }
    if (rq->nlists < 1) {
        snprintf(err, errlen, "no list to send to");
        *field = "lists";
        return -1;
    }
    for (int i = 0; i < rq->nlists; i++)
        if (!bulletin_list_name_ok(rq->lists[i])) {
            snprintf(err, errlen, "list name '%s': 1-64 characters without spaces, ':' or braces", rq->lists[i]);
            *field = "lists";
            return -1;
        }
    /* Content first: a refused issue takes no number and queues nothing. */
    long long now = svc_now_ms();
    mms_composed mc;
    char seed[40];
    snprintf(seed, sizeof seed, "%llx", (unsigned long long)now);
    mms_issue is = *rq->content;             /* slides without a duration take the configured one */
    int dur = (int)cfg_int(bulletin_group(cfg), gw_bulletin_keys, "slide_duration_s");
    for (int i = 0; i < is.nslides && i < MMS_MAX_SLIDES; i++)
        if (!is.slides[i].dur_s)
            is.slides[i].dur_s = dur;
    if (mms_compose(&is, seed, &mc, err, errlen) < 0) {
        *field = "content";
        return -1;
    }
    size_t budget;
    int batch, nroutes;
    mms_limits(cfg, &budget, &batch, &nroutes);
    char berr[1024];
    if (mms_check_budget(&mc, budget, berr, sizeof berr) < 0) {
        snprintf(err, errlen, "refused: %s", berr);
        mms_composed_free(&mc);
        *field = "content";
        return -1;
    }
    if (!nroutes)
        gw_log(LOG_WARN, "bulletin", "no mm7 route serves family bulletin: the MMS will wait in the queue");
    int code = -2;
    json_t *holder = NULL, *pj = NULL;
    member *ms = NULL;
    size_t n = 0;
    long long optout = 0, issue = 0, requests = 0, nsms = 0;
    char *subject = NULL;
    if (fallback_check(cfg, cat, rq->title, err, errlen) < 0) {
        code = -1;
        *field = "title";
        goto out;
    }
    if ((code = gather(q, rq->lists, rq->nlists, &holder, &ms, &n, &optout, err, errlen, field)) != 0)
        goto out;
    code = -2;
    if (queue_bulletin_next_issue(q, rq->title, &issue) < 0) {
        snprintf(err, errlen, "redis: %s", queue_errstr(q));
        goto out;
    }
    if (rq->subject)
        subject = strdup(rq->subject);
    else if (asprintf(&subject, "《%s》第%lld期", rq->title, issue) < 0)
        subject = NULL;
    pj = parts_json(&mc);
    char *pjs = json_dumps(pj, JSON_COMPACT);
    queue_bulletin_rcpt *rc = calloc(n + 1, sizeof *rc);
    for (size_t i = 0; rc && i < n; i++) {
        rc[i].phone = ms[i].phone;
        rc[i].sms_only = ms[i].sms_only;
        nsms += ms[i].sms_only;
    }
    queue_bulletin_new b = {
        .title = rq->title, .issue = issue, .subject = subject ? subject : "", .content_type = mc.content_type,
        .content = mc.body, .content_len = mc.len, .parts_json = pjs, .rcpt = rc, .nrcpt = n,
        .skipped_optout = optout, .send_at_ms = rq->send_at_ms, .now_ms = now,
    };
    int stored = rc && pjs && subject ? queue_bulletin_create(q, &b) : QUEUE_ERR_PROTO;
    free(rc);
    free(pjs);
    if (stored < 0) {
        snprintf(err, errlen, "storing issue %lld: %s", issue, queue_errstr(q));
        goto out;
    }
    if (enqueue_mms(q, rq->title, issue, subject, ms, n, batch, rq->send_at_ms, &requests, err, errlen) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!ms[i].sms_only)
            continue;
        char ferr[512];
        if (fallback_sms(q, cfg, cat, rq->title, issue, ms[i].phone, rq->send_at_ms, ferr, sizeof ferr) < 0) {
            snprintf(err, errlen, "issue %lld: %s", issue, ferr);
            goto out;
        }
    }
    gw_log(LOG_INFO, "bulletin", "%s issue %lld: %zu recipients (%lld sms_only), %lld MMS requests, "
           "%zu bytes, %lld opted out", rq->title, issue, n, nsms, requests, mc.len, optout);
    *out = json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:O}", "title", rq->title,
                     "issue", (json_int_t)issue, "subject", subject,
                     "recipients", (json_int_t)n, "sms_only", (json_int_t)nsms,
                     "skipped_optout", (json_int_t)optout, "mms_requests", (json_int_t)requests,
                     "size", (json_int_t)mc.len, "budget", (json_int_t)budget, "parts", pj);
    if (*out && rq->send_at_ms)
        json_object_set_new(*out, "send_at", json_integer(rq->send_at_ms));
    code = 0;
out:
    free(subject);
    free(ms);
    json_decref(pj);
    json_decref(holder);
    mms_composed_free(&mc);
    return code;
}

static int bulletin_send(gw_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        { "title", required_argument, NULL, 't' },
        { "content", required_argument, NULL, 'C' },
        { "list", required_argument, NULL, 'l' },
        { "at", required_argument, NULL, 'a' },
        { "subject", required_argument, NULL, 's' },
        { NULL, 0, NULL, 0 }
    };
    const char *title = NULL, *path = NULL, *at = NULL, *subject_flag = NULL;
    const char *lists[MAX_LISTS];
    int nlists = 0, ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "t:C:l:a:s:", opts, NULL)) != -1) {
        switch (ch) {
        case 't': title = optarg; break;
        case 'C': path = optarg; break;
        case 'a': at = optarg; break;
        case 's': subject_flag = optarg; break;
        case 'l':
            if (nlists == MAX_LISTS)
                return svc_die(EXIT_BAD_INPUT, "at most %d --list", MAX_LISTS);
            lists[nlists++] = optarg;
            break;
        default:
            return EXIT_BAD_INPUT;
        }
    }
    if (optind < argc)
        return svc_die(EXIT_BAD_INPUT, "unexpected argument '%s'", argv[optind]);
    if (!title || !path || !nlists)
        return svc_die(EXIT_BAD_INPUT, "usage: herald bulletin send --title T --content DIR_OR_FILE "
                   "--list L [--list L2]... [--at TIME] [--subject S]");
    char err[4096], known[512];
    if (!title_known(cfg, title)) {
        titles_text(cfg, known, sizeof known);
        return svc_die(EXIT_BAD_INPUT, "--title '%s' is not a configured bulletin title (bulletin.titles: %s)",
                   title, known);
    }
    long long now = svc_now_ms(), send_at = 0;
    if (at && svc_parse_time(at, now, &send_at, err, sizeof err) < 0)
        return svc_die(EXIT_BAD_INPUT, "--at: %s", err);

    int dur = (int)cfg_int(bulletin_group(cfg), gw_bulletin_keys, "slide_duration_s");
    content c;
    err[0] = '\0';
    if (load_content(path, dur, &c, err, sizeof err) < 0) {
        content_free(&c);
        return svc_die(EXIT_BAD_INPUT, "%s", err);
    }
    int code = EXIT_FAILURE_OTHER;
    catalog *cat = catalog_load_dir(cfg->templates_dir, err, sizeof err);
    queue *q = cat ? svc_connect(&cfg->queue) : NULL;
    if (!cat) {
        code = svc_die(EXIT_BAD_INPUT, "%s", err);
    } else if (q) {
        bulletin_send_req rq = {
            .title = title, .lists = lists, .nlists = nlists, .send_at_ms = send_at,
            .subject = subject_flag ? subject_flag : c.subject, .content = &c.is,
        };
        json_t *j = NULL;
        const char *field = NULL;
        int rc = bulletin_issue_send(q, cfg, cat, &rq, &j, err, sizeof err, &field);
        if (rc == -1 && field && !strcmp(field, "content"))
            code = strncmp(err, "refused: ", 9) ? svc_die(EXIT_BAD_INPUT, "%s: %s", path, err)
                                                 : svc_die(EXIT_BAD_INPUT, "%s", err);
        else if (rc == -1)
            code = svc_die(EXIT_BAD_INPUT, "%s", err);
        else if (rc < 0)
            code = svc_die(EXIT_FAILURE_OTHER, "%s", err);
        else {
            svc_print_json(j);
            code = EXIT_DONE;
        }
        json_decref(j);
    }
    queue_free(q);
    catalog_free(cat);
    content_free(&c);
    return code;
}

/* ---- herald bulletin stats / dlr ---------------------------------------------------- */

static int bulletin_stats(gw_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        { "title", required_argument, NULL, 't' },
        { "issue", required_argument, NULL, 'i' },
        { NULL, 0, NULL, 0 }
    };
    const char *title = NULL, *issue_s = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "t:i:", opts, NULL)) != -1) {
        if (ch == 't') title = optarg;
        else if (ch == 'i') issue_s = optarg;
        else return EXIT_BAD_INPUT;
    }
    if (!title || !issue_s || optind < argc)
        return svc_die(EXIT_BAD_INPUT, "usage: herald bulletin stats --title T --issue N");
    char *end;
    long long issue = strtoll(issue_s, &end, 10);
    if (*end || issue <= 0)
        return svc_die(EXIT_BAD_INPUT, "--issue '%s' is not a positive number", issue_s);
    queue *q = svc_connect(&cfg->queue);
    if (!q)
        return EXIT_FAILURE_OTHER;
    json_t *j = NULL;
    int rc = queue_bulletin_stats(q, title, issue, &j), code = EXIT_DONE;
    if (rc == QUEUE_ERR_NOTFOUND)
        code = svc_die(EXIT_BAD_INPUT, "no issue %lld of '%s'", issue, title);
    else if (rc < 0)
        code = svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
    else
        svc_print_json(j);
    json_decref(j);
    queue_free(q);
    return code;
}

/* The MM7 namespace and version of the first mm7 route, for answers. */
static void mm7_ids(const gw_config *cfg, const char **ns, const char **version)
{
    *ns = MM7_DEFAULT_NS;
    *version = MM7_DEFAULT_VERSION;
    for (int i = 0; i < cfg->nroutes; i++)
        if (cfg->routes[i].driver == &prov_mm7) {
            *ns = cfg_str(cfg->routes[i].opts, prov_mm7.keys, "namespace");
            *version = cfg_str(cfg->routes[i].opts, prov_mm7.keys, "version");
            return;
        }
}

/* `herald bulletin dlr [FILE|-]`: applies one DeliveryReportReq (what the
 * MMSC POSTs to /v1/inbound/ROUTE) and prints the DeliveryReportRsp to
 * send back: for a report kept in a file, fed by an operator or a test. Exit 2 when the report is refused (the answer is still printed). */
static int bulletin_dlr(gw_config *cfg, int argc, char **argv)
{
    const char *file = argc > 1 ? argv[1] : "-";
    if (argc > 2)
        return svc_die(EXIT_BAD_INPUT, "usage: herald bulletin dlr [FILE|-]");
    char err[512] = "";
    size_t len = 0;
    char *body = read_file(strcmp(file, "-") == 0 ? "/dev/stdin" : file, &len, err, sizeof err);
    if (!body)
        return svc_die(EXIT_BAD_INPUT, "%s", err);
    const char *ns, *version;
    mm7_ids(cfg, &ns, &version);
    mm7_dlr d;
    char *rsp = NULL;
    size_t rsplen = 0;
    int http = 0, code = EXIT_DONE;
    if (mm7_handle_delivery_report(body, len, ns, version, &d, &rsp, &rsplen, &http, err, sizeof err) < 0) {
        code = svc_die(EXIT_BAD_INPUT, "DeliveryReportReq refused: %s", err);
    } else {
        catalog *cat = catalog_load_dir(cfg->templates_dir, err, sizeof err);
        queue *q = cat ? svc_connect(&cfg->queue) : NULL;
        if (!cat)
            code = svc_die(EXIT_BAD_INPUT, "%s", err);
        else if (!q)
            code = EXIT_FAILURE_OTHER;
        else if (bulletin_apply_dlr(q, cfg, cat, &d, err, sizeof err) < 0)
            code = svc_die(EXIT_BAD_INPUT, "delivery report: %s", err);
        queue_free(q);
        catalog_free(cat);
    }
    if (rsp)
        fwrite(rsp, 1, rsplen, stdout);
    free(rsp);
    free(body);
    return code;
}

int gw_cmd_bulletin(gw_config *cfg, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "send") == 0)
        return bulletin_send(cfg, argc - 1, argv + 1);
    if (strcmp(sub, "stats") == 0)
        return bulletin_stats(cfg, argc - 1, argv + 1);
    if (strcmp(sub, "dlr") == 0)
        return bulletin_dlr(cfg, argc - 1, argv + 1);
    if (strcmp(sub, "last") == 0 && argc == 3) {
        queue *q = svc_connect(&cfg->queue);
        long long n = 0;
        int code = EXIT_FAILURE_OTHER;
        if (q && queue_bulletin_last_issue(q, argv[2], &n) == 0) {
            printf("%lld\n", n);
            code = EXIT_DONE;
        } else if (q) {
            svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
        }
        queue_free(q);
        return code;
    }
    return svc_die(EXIT_BAD_INPUT, "usage: herald bulletin send|stats|dlr|last ... (see herald help)");
}
