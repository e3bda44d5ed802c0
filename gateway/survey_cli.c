/* survey_cli.c -- the survey's commands (see survey.h, docs/survey.md):
 *
 *   herald contacts add --phone N --role R --case C [--department D]
 *                       [--prosecutor P] --date YYYY-MM-DD
 *   herald contacts import FILE.csv      a report line per refused row
 *   herald contacts list [--from DATE] [--to DATE]
 *   herald survey plan --period YYYY-MM [--json]
 *   herald survey run --period YYYY-MM [--dry-run] [--json]
 *   herald survey status --period YYYY-MM
 *   herald survey replies --period YYYY-MM
 *   herald report survey --period YYYY-MM [--csv FILE] [--html FILE] [--json]
 *   herald optout list | add NUMBER | remove NUMBER
 *
 * Exit codes as everywhere: 0 done, 2 bad input, 1 other failure. */
#include <ctype.h>
#include <stdarg.h>
#include <getopt.h>
#include <iconv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gateway/log.h"
#include "gateway/phone.h"
#include "gateway/service.h"
#include "gateway/survey.h"
#include "queue/survey.h"

/* ---- contacts ---------------------------------------------------------------- */

static int contacts_add(gw_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {
        { "phone", required_argument, NULL, 'p' }, { "role", required_argument, NULL, 'r' },
        { "case", required_argument, NULL, 'k' }, { "department", required_argument, NULL, 'd' },
        { "prosecutor", required_argument, NULL, 'u' }, { "date", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 }
    };
    survey_contact_in in = { 0 };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'p': in.phone = optarg; break;
        case 'r': in.role = optarg; break;
        case 'k': in.case_no = optarg; break;
        case 'd': in.department = optarg; break;
        case 'u': in.prosecutor = optarg; break;
        case 't': in.date = optarg; break;
        default: return EXIT_BAD_INPUT;
        }
    }
    if (optind < argc)
        return svc_die(EXIT_BAD_INPUT, "unexpected argument '%s'", argv[optind]);
    queue *q = svc_connect(&cfg->queue);
    if (!q)
        return EXIT_FAILURE_OTHER;
    char err[400], masked[PHONE_MAX], phone[PHONE_MAX], perr[100];
    int rc = survey_contact_add(q, cfg, &in, svc_now_ms(), err, sizeof err);
    int code = EXIT_DONE;
    if (rc == -1)
        code = svc_die(EXIT_BAD_INPUT, "contacts add: %s", err);
    else if (rc < 0)
        code = svc_die(EXIT_FAILURE_OTHER, "%s", err);
    else {
        if (phone_normalize(in.phone, 1, phone, perr, sizeof perr) < 0)
            snprintf(phone, sizeof phone, "?");
        printf("%s %s, case %s\n", rc == 1 ? "added" : "updated", phone_mask(phone, masked), in.case_no);
    }
    queue_free(q);
    return code;
}

int survey_csv_split(char *line, char **f, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max)
            return n;
        char *out = p;
        f[n++] = out;
        if (*p == '"') {
            p++;
            for (;;) {
                if (!*p)
                    return -1;
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p++;
                }
            }
            while (*p && *p != ',')
                p++;
        } else {
            while (*p && *p != ',')
                *out++ = *p++;
        }
        int more = *p == ',';
        *out = '\0';
        if (!more)
            return n;
        p++;
    }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

enum { COL_PHONE, COL_ROLE, COL_CASE, COL_DEPT, COL_PROS, COL_DATE, COL_COUNT };

static int column_of(const char *h)
{
    static const struct { const char *name; int col; } names[] = {
        { "phone", COL_PHONE }, { "号码", COL_PHONE }, { "手机号码", COL_PHONE }, { "电话", COL_PHONE },
        { "role", COL_ROLE }, { "角色", COL_ROLE }, { "身份", COL_ROLE },
        { "case_no", COL_CASE }, { "case", COL_CASE }, { "案号", COL_CASE },
        { "department", COL_DEPT }, { "部门", COL_DEPT }, { "承办部门", COL_DEPT },
        { "prosecutor", COL_PROS }, { "承办检察官", COL_PROS }, { "检察官", COL_PROS },
        { "date", COL_DATE }, { "日期", COL_DATE },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(h, names[i].name) == 0)
            return names[i].col;
    return -1;
}

#define IMPORT_MAX (64 << 20)

/* The whole file, NUL-terminated (malloc'd), or NULL. */
static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0 || n > IMPORT_MAX)
            break;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    if (!buf || ferror(f) || n > IMPORT_MAX) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Spreadsheets on Chinese Windows save CSV as GBK: a file that is not
 * UTF-8 is read as GB18030 (a superset of GBK and GB2312). Returns the
 * UTF-8 text (buf itself, or a new buffer with buf freed), or NULL. */
static char *as_utf8(char *buf, size_t *len, const char *file)
{
    json_t *probe = json_stringn(buf, *len);          /* NULL: not UTF-8 */
    json_decref(probe);
    if (probe)
        return buf;
    iconv_t cd = iconv_open("UTF-8", "GB18030");
    if (cd == (iconv_t)-1) {
        free(buf);
        return NULL;
    }
    size_t outcap = *len * 2 + 1, inleft = *len, outleft = outcap - 1;
    char *out = malloc(outcap), *in = buf, *o = out;
    size_t rc = out ? iconv(cd, &in, &inleft, &o, &outleft) : (size_t)-1;
    iconv_close(cd);
    free(buf);
    if (rc == (size_t)-1) {
        free(out);
        return NULL;
    }
    *o = '\0';
    *len = (size_t)(o - out);
    fprintf(stderr, "herald: %s is not UTF-8: read as GB18030 (GBK)\n", file);
    return out;
}

static int contacts_import(gw_config *cfg, const char *file)
{
    FILE *in = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (!in)
        return svc_die(EXIT_BAD_INPUT, "contacts import: cannot open '%s'", file);
    size_t len = 0;
    char *text = read_all(in, &len);
    if (in != stdin)
        fclose(in);
    if (!text)
        return svc_die(EXIT_BAD_INPUT, "contacts import: cannot read '%s' (at most 64 MB)", file);
    if (!(text = as_utf8(text, &len, file)))
        return svc_die(EXIT_BAD_INPUT, "contacts import: '%s' is neither UTF-8 nor GB18030 text", file);
    if (len == 0) {
        free(text);
        return svc_die(EXIT_BAD_INPUT, "%s: empty file (expected a header: phone,role,case_no,department,prosecutor,date)", file);
    }
    FILE *f = fmemopen(text, len, "r");
    if (!f) {
        free(text);
        return svc_die(EXIT_FAILURE_OTHER, "contacts import: out of memory");
    }
    queue *q = svc_connect(&cfg->queue);
    if (!q) {
        fclose(f);
        free(text);
        return EXIT_FAILURE_OTHER;
    }
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0, rows = 0, added = 0, updated = 0, refused = 0;
    int map[32], ncols = 0, failed = 0;
    while (getline(&line, &cap, f) != -1) {
        lineno++;
        char *l = line;
        if (lineno == 1 && !strncmp(l, "\xEF\xBB\xBF", 3))
            l += 3;                              /* a spreadsheet's BOM */
        l[strcspn(l, "\r\n")] = '\0';
        if (!*trim(l))
            continue;
        char *fields[32];
        int n = survey_csv_split(l, fields, 32);
        if (ncols == 0) {                        /* the header */
            int seen[COL_COUNT] = { 0 };
            for (int i = 0; i < n; i++) {
                map[i] = column_of(trim(fields[i]));
                if (map[i] < 0) {
                    failed = svc_die(EXIT_BAD_INPUT, "%s:%ld: unknown column '%s' (phone, role, case_no, "
                                  "department, prosecutor, date)", file, lineno, trim(fields[i]));
                    goto out;
                }
                seen[map[i]] = 1;
            }
            const char *need[] = { "phone", "role", "case_no", "department", "prosecutor", "date" };
            for (int c = 0; c < COL_COUNT; c++)
                if (!seen[c] && c != COL_DEPT && c != COL_PROS) {
                    failed = svc_die(EXIT_BAD_INPUT, "%s:%ld: the header lacks the column '%s'", file, lineno, need[c]);
                    goto out;
                }
            ncols = n;
            continue;
        }
        rows++;
        char why[300];
        const char *col[COL_COUNT] = { 0 };
        if (n < 0) {
            snprintf(why, sizeof why, "unterminated quote");
        } else if (n != ncols) {
            snprintf(why, sizeof why, "%d fields, the header has %d", n, ncols);
        } else {
            for (int i = 0; i < n; i++)
                col[map[i]] = trim(fields[i]);
            survey_contact_in in = { col[COL_PHONE], col[COL_ROLE], col[COL_CASE], col[COL_DEPT],
                                     col[COL_PROS], col[COL_DATE] };
            int rc = survey_contact_add(q, cfg, &in, svc_now_ms(), why, sizeof why);
            if (rc < -1) {
                failed = svc_die(EXIT_FAILURE_OTHER, "%s:%ld: %s", file, lineno, why);
                goto out;
            }
            if (rc >= 0) {
                if (rc == 1)
                    added++;
                else
                    updated++;
                continue;
            }
        }
        refused++;
        printf("%s:%ld: refused: %s\n", file, lineno, why);
    }
    if (ncols == 0 && !failed)
        failed = svc_die(EXIT_BAD_INPUT, "%s: empty file (expected a header: phone,role,case_no,department,prosecutor,date)", file);
out:
    if (!failed)
        printf("%ld rows: %ld accepted (%ld new, %ld updated), %ld refused\n", rows, added + updated,
               added, updated, refused);
    free(line);
    queue_free(q);
    fclose(f);
    free(text);
    return failed ? failed : refused ? EXIT_BAD_INPUT : EXIT_DONE;
}

static int contacts_list(gw_config *cfg, int argc, char **argv)
{
    int from = 20000101, to = 29991231;
    for (int i = 2; i + 1 < argc; i += 2) {
        int d = survey_parse_date(argv[i + 1]);
        if (d < 0)
            return svc_die(EXIT_BAD_INPUT, "%s: '%s' is not a date YYYY-MM-DD", argv[i], argv[i + 1]);
        if (!strcmp(argv[i], "--from"))
            from = d;
        else if (!strcmp(argv[i], "--to"))
            to = d;
        else
            return svc_die(EXIT_BAD_INPUT, "unexpected argument '%s'", argv[i]);
    }
    queue *q = svc_connect(&cfg->queue);
    if (!q)
        return EXIT_FAILURE_OTHER;
    json_t *j = NULL;
    int code = EXIT_DONE;
    if (queue_contacts_between(q, from, to, &j) < 0)
        code = svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
    else
        svc_print_json(j);
    json_decref(j);
    queue_free(q);
    return code;
}

static int cmd_contacts(gw_config *cfg, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (!strcmp(sub, "add"))
        return contacts_add(cfg, argc - 1, argv + 1);
    if (!strcmp(sub, "import") && argc == 3)
        return contacts_import(cfg, argv[2]);
    if (!strcmp(sub, "list"))
        return contacts_list(cfg, argc, argv);
    return svc_die(EXIT_BAD_INPUT, "usage: herald contacts add --phone N --role R --case C --date D "
                "[--department D] [--prosecutor P] | contacts import FILE.csv | contacts list [--from D] [--to D]");
}

/* ---- survey ------------------------------------------------------------------------ */

typedef struct survey_args {
    const char *period, *csv, *html;
    int dry_run, json;
} survey_args;

static int parse_survey_args(int argc, char **argv, survey_args *a)
{
    static const struct option opts[] = {
        { "period", required_argument, NULL, 'p' }, { "dry-run", no_argument, NULL, 'n' },
        { "json", no_argument, NULL, 'j' }, { "csv", required_argument, NULL, 'c' },
        { "html", required_argument, NULL, 'h' }, { NULL, 0, NULL, 0 }
    };
    memset(a, 0, sizeof *a);
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'p': a->period = optarg; break;
        case 'n': a->dry_run = 1; break;
        case 'j': a->json = 1; break;
        case 'c': a->csv = optarg; break;
        case 'h': a->html = optarg; break;
        default: return EXIT_BAD_INPUT;
        }
    }
    if (optind < argc)
        return svc_die(EXIT_BAD_INPUT, "unexpected argument '%s'", argv[optind]);
    if (!a->period)
        return svc_die(EXIT_BAD_INPUT, "--period YYYY-MM is required");
    return 0;
}

static void print_plan(const survey_plan *p, const survey_settings *s, int json, const char *what)
{
    json_t *j = survey_plan_json(p, s);
    if (json) {
        svc_print_json(j);
    } else {
        printf("%s %s: %d surveys from %d contacts dated %d to %d\n"
               "skipped: %d opted out, %d surveyed recently, %d duplicates, %d invalid\n"
               "window: %s to %s\nestimated finish: %s (routes: %s%d/min)\n",
               what, p->period, p->batch, p->contacts, p->from_ymd, p->to_ymd, p->skipped_optout,
               p->skipped_recent, p->duplicates, p->invalid,
               json_string_value(json_object_get(j, "window_start")),
               json_string_value(json_object_get(j, "window_end")),
               json_string_value(json_object_get(j, "estimated_finish")),
               p->capacity_per_min ? "" : "unlimited, ", p->capacity_per_min);
        if (p->finish_ms > p->end_ms)
            printf("warning: the routes cannot send the batch within the window\n");
    }
    json_decref(j);
}

static int cmd_survey_report(gw_config *cfg, const survey_settings *s, queue *q, const survey_args *a)
{
    json_t *r = NULL;
    char err[512];
    if (survey_report_build(q, s, a->period, &r, err, sizeof err) < 0)
        return svc_die(strstr(err, "YYYY-MM") ? EXIT_BAD_INPUT : EXIT_FAILURE_OTHER, "%s", err);
    int code = EXIT_DONE;
    if ((a->csv && survey_report_csv(r, a->csv, err, sizeof err) < 0) ||
        (a->html && survey_report_html(r, a->html, err, sizeof err) < 0))
        code = svc_die(EXIT_BAD_INPUT, "%s", err);
    else if (a->json)
        svc_print_json(r);
    else
        survey_report_text(r, stdout);
    json_decref(r);
    return code;
}

static int cmd_survey(gw_config *cfg, int argc, char **argv, int is_report)
{
    const char *sub = is_report ? "report" : argc > 1 ? argv[1] : "";
    if (is_report && (argc < 2 || strcmp(argv[1], "survey")))
        return svc_die(EXIT_BAD_INPUT, "usage: herald report survey --period YYYY-MM [--csv FILE] [--html FILE] [--json]");
    survey_args a;
    int rc = parse_survey_args(argc - 1, argv + 1, &a);
    if (rc)
        return rc;
    survey_settings s;
    char err[512];
    if (survey_settings_load(&cfg->cfg, &s, err, sizeof err) < 0)
        return svc_die(EXIT_BAD_INPUT, "%s", err);
    survey_slot slot;
    if (survey_slot_of(&s, a.period, &slot) < 0) {
        survey_settings_free(&s);
        return svc_die(EXIT_BAD_INPUT, "--period: '%s' is not YYYY-MM", a.period);
    }
    queue *q = svc_connect(&cfg->queue);
    if (!q) {
        survey_settings_free(&s);
        return EXIT_FAILURE_OTHER;
    }
    int code = EXIT_DONE;
    long long now = survey_now_ms();
    survey_plan p;
    if (!strcmp(sub, "plan")) {
        /* as it will be at the run time, or now when that has passed */
        if (survey_build(q, cfg, &s, slot.period, now > slot.run_ms ? now : slot.run_ms, 0, &p,
                         err, sizeof err) < 0)
            code = svc_die(EXIT_FAILURE_OTHER, "%s", err);
        else
            print_plan(&p, &s, a.json, "plan");
    } else if (!strcmp(sub, "run") && a.dry_run) {
        if (survey_build(q, cfg, &s, slot.period, now, 0, &p, err, sizeof err) < 0)
            code = svc_die(EXIT_FAILURE_OTHER, "%s", err);
        else
            print_plan(&p, &s, a.json, "dry run");
    } else if (!strcmp(sub, "run")) {
        char owner[128];
        snprintf(owner, sizeof owner, "cli/%s", cfg->instance);
        rc = survey_run(q, cfg, &s, owner, slot.period, now, &p, err, sizeof err);
        if (rc < 0)
            code = svc_die(EXIT_FAILURE_OTHER, "%s", err);
        else if (rc == 1)
            code = svc_die(EXIT_BAD_INPUT, "%s", err);
        else
            print_plan(&p, &s, a.json, "built");
    } else if (!strcmp(sub, "status") || !strcmp(sub, "replies")) {
        json_t *j = NULL;
        rc = !strcmp(sub, "status") ? queue_survey_run_get(q, slot.period, &j)
                                    : queue_survey_replies_get(q, slot.period, &j);
        if (rc == QUEUE_ERR_NOTFOUND)
            code = svc_die(EXIT_BAD_INPUT, "no survey run for %s", slot.period);
        else if (rc < 0)
            code = svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
        else
            svc_print_json(j);
        json_decref(j);
    } else if (!strcmp(sub, "report")) {
        code = cmd_survey_report(cfg, &s, q, &a);
    } else {
        code = svc_die(EXIT_BAD_INPUT, "usage: herald survey plan|run|status|replies|report --period YYYY-MM [--dry-run] [--json]");
    }
    queue_free(q);
    survey_settings_free(&s);
    return code;
}

/* ---- opt-out ------------------------------------------------------------------------ */

static int cmd_optout(gw_config *cfg, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "list";
    char phone[PHONE_MAX], err[200];
    if ((!strcmp(sub, "add") || !strcmp(sub, "remove")) && argc == 3) {
        if (phone_normalize(argv[2], 1, phone, err, sizeof err) < 0)
            return svc_die(EXIT_BAD_INPUT, "optout %s: %s", sub, err);
    } else if (strcmp(sub, "list") || argc > 2) {
        return svc_die(EXIT_BAD_INPUT, "usage: herald optout list | optout add NUMBER | optout remove NUMBER");
    }
    queue *q = svc_connect(&cfg->queue);
    if (!q)
        return EXIT_FAILURE_OTHER;
    int code = EXIT_DONE;
    if (!strcmp(sub, "list")) {
        json_t *j = NULL;
        if (queue_optout_list(q, &j) < 0)
            code = svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
        else
            svc_print_json(j);
        json_decref(j);
    } else if (queue_optout_set(q, phone, !strcmp(sub, "add"), svc_now_ms()) < 0) {
        code = svc_die(EXIT_FAILURE_OTHER, "redis: %s", queue_errstr(q));
    }
    queue_free(q);
    return code;
}

int survey_cli(gw_config *cfg, int argc, char **argv)
{
    if (!strcmp(argv[0], "contacts"))
        return cmd_contacts(cfg, argc, argv);
    if (!strcmp(argv[0], "survey"))
        return cmd_survey(cfg, argc, argv, 0);
    if (!strcmp(argv[0], "report"))
        return cmd_survey(cfg, argc, argv, 1);
    if (!strcmp(argv[0], "optout"))
        return cmd_optout(cfg, argc, argv);
    return svc_die(EXIT_BAD_INPUT, "unknown command '%s'", argv[0]);
}
