/* survey_report.c -- the office's monthly figures (see survey.h).
 *
 * survey_report_build() gathers a period's items, their messages' status,
 * the replies and the texts outside surveys, and computes every figure
 * into one JSON object; the writers (text, CSV, HTML) only lay that object
 * out, so the three always agree. Numbers are masked (138****5678)
 * everywhere in the report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/phone.h"
#include "gateway/survey.h"
#include "queue/survey.h"

/* ---- figures -------------------------------------------------------------------- */

static json_t *group_new(int nlabels)
{
    json_t *aspects = json_array();
    for (int k = 0; k < REPLY_ASPECTS; k++) {
        json_t *counts = json_array();
        for (int l = 0; l < nlabels; l++)
            json_array_append_new(counts, json_integer(0));
        json_array_append_new(aspects, json_pack("{s:s, s:s, s:o, s:i, s:i, s:f}",
                                                 "key", reply_aspect_keys[k], "name", reply_aspect_names[k],
                                                 "counts", counts, "answered", 0, "satisfied", 0,
                                                 "satisfaction_rate", 0.0));
    }
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:f, s:o}", "surveys", 0, "sent", 0, "delivered", 0,
                     "replied", 0, "optouts", 0, "response_rate", 0.0, "aspects", aspects);
}

static void bump(json_t *o, const char *key, int by)
{
    json_object_set_new(o, key, json_integer(json_integer_value(json_object_get(o, key)) + by));
}

static double round4(double x) { return (double)(long long)(x * 10000.0 + 0.5) / 10000.0; }

/* Adds one item (and its reply, may be NULL) to a group. */
static void group_add(json_t *g, const char *msg_status, const json_t *reply, int satisfied_max)
{
    bump(g, "surveys", 1);
    int sent = msg_status && (!strcmp(msg_status, "sent") || !strcmp(msg_status, "delivered") ||
                              !strcmp(msg_status, "failed"));
    if (sent)
        bump(g, "sent", 1);
    if (msg_status && !strcmp(msg_status, "delivered"))
        bump(g, "delivered", 1);
    if (!reply)
        return;
    bump(g, "replied", 1);
    const char *st = json_string_value(json_object_get(reply, "status"));
    if (st && !strcmp(st, "optout"))
        bump(g, "optouts", 1);
    if (!st || (strcmp(st, "parsed") && strcmp(st, "partial")))
        return;
    json_t *r = json_object_get(reply, "ratings");
    json_t *aspects = json_object_get(g, "aspects");
    for (int k = 0; k < REPLY_ASPECTS; k++) {
        int v = (int)json_integer_value(json_array_get(r, (size_t)k));
        json_t *a = json_array_get(aspects, (size_t)k);
        json_t *counts = json_object_get(a, "counts");
        if (v < 1 || (size_t)v > json_array_size(counts))
            continue;
        json_array_set_new(counts, (size_t)v - 1,
                           json_integer(json_integer_value(json_array_get(counts, (size_t)v - 1)) + 1));
        bump(a, "answered", 1);
        if (v <= satisfied_max)
            bump(a, "satisfied", 1);
    }
}

static void group_rates(json_t *g)
{
    long long sent = json_integer_value(json_object_get(g, "sent"));
    long long replied = json_integer_value(json_object_get(g, "replied"));
    json_object_set_new(g, "response_rate", json_real(sent ? round4((double)replied / (double)sent) : 0.0));
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(g, "aspects"), i, a) {
        long long n = json_integer_value(json_object_get(a, "answered"));
        long long s = json_integer_value(json_object_get(a, "satisfied"));
        json_object_set_new(a, "satisfaction_rate", json_real(n ? round4((double)s / (double)n) : 0.0));
    }
}

static json_t *group_of(json_t *by, const char *name, int nlabels)
{
    const char *k = name && *name ? name : "(未填写)";
    json_t *g = json_object_get(by, k);
    if (!g) {
        g = group_new(nlabels);
        json_object_set_new(by, k, g);
    }
    return g;
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* What the report shows for a text the retention purge removed
 * (survey.reply_text_retention_days; gateway/retention.h). */
#define PURGED_TEXT "（原文已过保留期限删除）"

static json_t *entry_of(const char *phone, const json_t *item, const char *text, long long at,
                        const char *status, const char *kind)
{
    char masked[PHONE_MAX];
    phone_mask(phone, masked);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "phone", masked,
                     "case_no", item ? jstr(item, "case_no") : "",
                     "department", item ? jstr(item, "department") : "",
                     "prosecutor", item ? jstr(item, "prosecutor") : "",
                     "text", text ? text : "", "at", (json_int_t)at, "status", status ? status : "",
                     "kind", kind);
}

int survey_report_build(queue *q, const survey_settings *s, const char *period,
                        json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    survey_slot slot, next;
    if (survey_slot_of(s, period, &slot) < 0) {
        snprintf(err, errlen, "period '%s' is not YYYY-MM", period ? period : "");
        return -1;
    }
    int y = atoi(slot.period), m = atoi(slot.period + 5);
    char np[SURVEY_PERIOD_MAX];
    snprintf(np, sizeof np, "%04d-%02d", (m == 12 ? y + 1 : y) % 10000, (m == 12 ? 1 : m + 1) % 100);
    survey_slot_of(s, np, &next);

    json_t *items = NULL, *replies = NULL, *others = NULL, *run = NULL;
    if (queue_survey_items_get(q, slot.period, &items) < 0 ||
        queue_survey_replies_get(q, slot.period, &replies) < 0 ||
        queue_replies_other(q, slot.run_ms, next.run_ms, &others) < 0) {
        snprintf(err, errlen, "redis: %s", queue_errstr(q));
        json_decref(items);
        json_decref(replies);
        return -1;
    }
    int rr = queue_survey_run_get(q, slot.period, &run);
    int nl = s->ropts.nlabels;
    json_t *total = group_new(nl), *by_dept = json_object(), *by_pros = json_object();
    json_t *suggestions = json_array(), *unparsed = json_array(), *outside = json_array();
    const char *field;
    json_t *item;
    json_object_foreach(items, field, item) {
        const char *id = jstr(item, "msg_id");
        json_t *rec = NULL;
        const char *st = "unknown";
        if (*id && queue_get(q, id, &rec) == 0)
            st = jstr(rec, "status");
        json_t *reply = json_object_get(replies, field);
        group_add(total, st, reply, s->satisfied_max);
        group_add(group_of(by_dept, jstr(item, "department"), nl), st, reply, s->satisfied_max);
        group_add(group_of(by_pros, jstr(item, "prosecutor"), nl), st, reply, s->satisfied_max);
        json_decref(rec);
        if (!reply)
            continue;
        const char *rs = jstr(reply, "status");
        const char *sug = jstr(reply, "suggestion");
        long long at = atoll(jstr(reply, "at"));
        /* a purged text still counts as the suggestion or unparsed reply it was */
        int purged = json_object_get(reply, "text_purged_at") != NULL;
        int had = *sug || json_is_true(json_object_get(reply, "suggestion_purged"));
        if (purged && !*sug)
            sug = PURGED_TEXT;
        if (!strcmp(rs, "unparsed"))
            json_array_append_new(unparsed, entry_of(jstr(item, "phone"), item, sug, at, rs, "survey"));
        else if (had)
            json_array_append_new(suggestions, entry_of(jstr(item, "phone"), item, sug, at, rs, "survey"));
    }
    size_t i;
    json_t *o;
    int outside_optouts = 0;
    json_array_foreach(others, i, o) {
        const char *st = jstr(o, "status");
        if (!strcmp(st, "optout"))
            outside_optouts++;
        const char *text = jstr(o, "text");
        if (!*text && json_object_get(o, "text_purged_at"))
            text = PURGED_TEXT;
        json_array_append_new(outside, entry_of(jstr(o, "from"), NULL, text,
                                                json_integer_value(json_object_get(o, "at")), st,
                                                jstr(o, "kind")));
    }
    group_rates(total);
    const char *k;
    json_t *g;
    json_object_foreach(by_dept, k, g)
        group_rates(g);
    json_object_foreach(by_pros, k, g)
        group_rates(g);
    json_t *labels = json_array();
    for (int l = 0; l < nl; l++)
        json_array_append_new(labels, json_string(s->ropts.labels[l]));
    char label[32];
    survey_period_label(slot.period, label, sizeof label);
    json_t *rep = json_pack("{s:s, s:s, s:o, s:i, s:s, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:i}",
                            "period", slot.period, "period_label", label, "labels", labels,
                            "satisfied_max", s->satisfied_max,
                            "run_state", rr == 0 ? jstr(run, "state") : "not run",
                            "generated_at", (json_int_t)survey_now_ms(),
                            "total", total, "by_department", by_dept, "by_prosecutor", by_pros,
                            "suggestions", suggestions, "unparsed", unparsed,
                            "outside_surveys", outside, "optouts_outside_surveys", outside_optouts);
    json_decref(items);
    json_decref(replies);
    json_decref(others);
    json_decref(run);
    if (!rep) {
        snprintf(err, errlen, "out of memory (or invalid text) building the report");
        return -1;
    }
    *out = rep;
    return 0;
}

/* ---- text ------------------------------------------------------------------------ */

static void pct(double r, char *buf, size_t len) { snprintf(buf, len, "%.1f%%", r * 100.0); }

/* An aspect's satisfaction rate, or "-" when nobody rated it. */
static void sat(const json_t *a, char *buf, size_t len)
{
    if (json_integer_value(json_object_get(a, "answered")) == 0)
        snprintf(buf, len, "-");
    else
        pct(json_real_value(json_object_get(a, "satisfaction_rate")), buf, len);
}

static void text_group(FILE *f, const char *indent, const json_t *g, const json_t *labels)
{
    char rr[16];
    pct(json_real_value(json_object_get(g, "response_rate")), rr, sizeof rr);
    fprintf(f, "%ssurveys %lld, sent %lld, delivered %lld, replied %lld, response rate %s, opt-outs %lld\n",
            indent, json_integer_value(json_object_get(g, "surveys")),
            json_integer_value(json_object_get(g, "sent")), json_integer_value(json_object_get(g, "delivered")),
            json_integer_value(json_object_get(g, "replied")), rr,
            json_integer_value(json_object_get(g, "optouts")));
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(g, "aspects"), i, a) {
        char sr[16];
        sat(a, sr, sizeof sr);
        fprintf(f, "%s  %s:", indent, jstr(a, "name"));
        size_t l;
        json_t *c;
        json_array_foreach(json_object_get(a, "counts"), l, c)
            fprintf(f, " %s %lld", json_string_value(json_array_get(labels, l)), json_integer_value(c));
        fprintf(f, "; satisfied %lld of %lld (%s)\n", json_integer_value(json_object_get(a, "satisfied")),
                json_integer_value(json_object_get(a, "answered")), sr);
    }
}

int survey_report_text(const json_t *r, FILE *f)
{
    const json_t *labels = json_object_get(r, "labels");
    fprintf(f, "Evaluation survey %s (%s), batch %s\n", jstr(r, "period"), jstr(r, "period_label"),
            jstr(r, "run_state"));
    text_group(f, "", json_object_get(r, "total"), labels);
    const char *sections[] = { "by_department", "by_prosecutor" };
    const char *titles[] = { "By department", "By handling prosecutor" };
    for (int s = 0; s < 2; s++) {
        fprintf(f, "\n%s:\n", titles[s]);
        const char *k;
        json_t *g;
        json_object_foreach(json_object_get(r, sections[s]), k, g) {
            fprintf(f, "  %s\n", k);
            text_group(f, "    ", g, labels);
        }
    }
    const char *lists[] = { "suggestions", "unparsed", "outside_surveys" };
    const char *ltitles[] = { "Suggestions", "Unparsed replies", "Replies outside surveys and unsolicited texts" };
    for (int s = 0; s < 3; s++) {
        const json_t *arr = json_object_get(r, lists[s]);
        fprintf(f, "\n%s (%zu):\n", ltitles[s], json_array_size(arr));
        size_t i;
        json_t *e;
        json_array_foreach(arr, i, e)
            fprintf(f, "  %s %s%s%s: %s\n", jstr(e, "phone"), jstr(e, "case_no"),
                    s == 2 ? " " : "", s == 2 ? jstr(e, "kind") : "", jstr(e, "text"));
    }
    return 0;
}

/* ---- CSV --------------------------------------------------------------------------- */

static void csv_field(FILE *f, const char *s, int last)
{
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"')
                fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    fputs(last ? "\r\n" : ",", f);
}

static void csv_group_row(FILE *f, const char *scope, const char *name, const json_t *g)
{
    char buf[64];
    csv_field(f, scope, 0);
    csv_field(f, name, 0);
    const char *nums[] = { "surveys", "sent", "delivered", "replied" };
    for (int i = 0; i < 4; i++) {
        snprintf(buf, sizeof buf, "%lld", json_integer_value(json_object_get(g, nums[i])));
        csv_field(f, buf, 0);
    }
    pct(json_real_value(json_object_get(g, "response_rate")), buf, sizeof buf);
    csv_field(f, buf, 0);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(g, "aspects"), i, a) {
        sat(a, buf, sizeof buf);
        csv_field(f, buf, i + 1 == REPLY_ASPECTS);
    }
}

int survey_report_csv(const json_t *r, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "--csv: cannot write '%s'", path);
        return -1;
    }
    fputs("\xEF\xBB\xBF", f);        /* BOM: spreadsheet programs then read UTF-8 */
    fprintf(f, "调查期,%s\r\n\r\n", jstr(r, "period"));
    fputs("范围,名称,调查数,发送,送达,回复,回复率", f);
    for (int k = 0; k < REPLY_ASPECTS; k++)
        fprintf(f, ",%s满意率", reply_aspect_names[k]);
    fputs("\r\n", f);
    csv_group_row(f, "全部", "全部", json_object_get(r, "total"));
    const char *k;
    json_t *g;
    json_object_foreach(json_object_get(r, "by_department"), k, g)
        csv_group_row(f, "部门", k, g);
    json_object_foreach(json_object_get(r, "by_prosecutor"), k, g)
        csv_group_row(f, "承办检察官", k, g);

    const json_t *labels = json_object_get(r, "labels");
    fputs("\r\n方面", f);
    size_t l;
    json_t *lab;
    json_array_foreach(labels, l, lab)
        fprintf(f, ",%s", json_string_value(lab));
    fputs(",作答,满意率\r\n", f);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(json_object_get(r, "total"), "aspects"), i, a) {
        fprintf(f, "%s", jstr(a, "name"));
        json_t *c;
        json_array_foreach(json_object_get(a, "counts"), l, c)
            fprintf(f, ",%lld", json_integer_value(c));
        char sr[16];
        sat(a, sr, sizeof sr);
        fprintf(f, ",%lld,%s\r\n", json_integer_value(json_object_get(a, "answered")), sr);
    }

    fputs("\r\n类别,号码,案号,部门,承办检察官,内容\r\n", f);
    const char *lists[] = { "suggestions", "unparsed", "outside_surveys" };
    const char *names[] = { "意见建议", "未能识别", "非调查回复" };
    for (int s = 0; s < 3; s++) {
        json_t *e;
        json_array_foreach(json_object_get(r, lists[s]), i, e) {
            csv_field(f, names[s], 0);
            csv_field(f, jstr(e, "phone"), 0);
            csv_field(f, jstr(e, "case_no"), 0);
            csv_field(f, jstr(e, "department"), 0);
            csv_field(f, jstr(e, "prosecutor"), 0);
            csv_field(f, jstr(e, "text"), 1);
        }
    }
    if (fclose(f) != 0) {
        snprintf(err, errlen, "--csv: writing '%s' failed", path);
        return -1;
    }
    return 0;
}

/* ---- HTML --------------------------------------------------------------------------- */

static void h(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const char *const colors[] = { "#2e7d32", "#9ccc65", "#ef6c00", "#c62828", "#6d4c41",
                                       "#5c6bc0", "#00838f", "#8e24aa", "#546e7a" };

/* One horizontal stacked bar per aspect, in inline SVG. */
static void svg_chart(FILE *f, const json_t *g, const json_t *labels)
{
    int w = 640, bar = 26, gap = 14, left = 90, top = 30;
    size_t nl = json_array_size(labels);
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\">\n",
            w + 60, top + REPLY_ASPECTS * (bar + gap) + 10);
    /* legend */
    for (size_t l = 0; l < nl; l++) {
        fprintf(f, "<rect x=\"%zu\" y=\"4\" width=\"14\" height=\"14\" fill=\"%s\"/>"
                "<text x=\"%zu\" y=\"16\" font-size=\"13\">", left + l * 110, colors[l % 9], left + l * 110 + 18);
        h(f, json_string_value(json_array_get(labels, l)));
        fputs("</text>\n", f);
    }
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(g, "aspects"), i, a) {
        int y = top + (int)i * (bar + gap);
        long long n = json_integer_value(json_object_get(a, "answered"));
        fprintf(f, "<text x=\"0\" y=\"%d\" font-size=\"14\">", y + bar - 8);
        h(f, jstr(a, "name"));
        fputs("</text>\n", f);
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#eeeeee\"/>\n", left, y, w - left, bar);
        double x = left;
        size_t l;
        json_t *c;
        json_array_foreach(json_object_get(a, "counts"), l, c) {
            long long v = json_integer_value(c);
            if (!n || !v)
                continue;
            double width = (double)(w - left) * (double)v / (double)n;
            fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>"
                    "<text x=\"%.1f\" y=\"%d\" font-size=\"12\" fill=\"#fff\">%lld</text>\n",
                    x, y, width, bar, colors[l % 9], x + 4, y + bar - 8, v);
            x += width;
        }
        char sr[16];
        sat(a, sr, sizeof sr);
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"13\">%s</text>\n", w + 4, y + bar - 8, sr);
    }
    fputs("</svg>\n", f);
}

static void html_group_table(FILE *f, const char *title, const char *col, const json_t *by)
{
    fprintf(f, "<h2>%s</h2>\n<table>\n<tr><th>%s</th><th>调查数</th><th>发送</th><th>回复</th><th>回复率</th>", title, col);
    for (int k = 0; k < REPLY_ASPECTS; k++)
        fprintf(f, "<th>%s满意率</th>", reply_aspect_names[k]);
    fputs("</tr>\n", f);
    const char *k;
    json_t *g;
    json_object_foreach((json_t *)by, k, g) {
        char rr[16];
        pct(json_real_value(json_object_get(g, "response_rate")), rr, sizeof rr);
        fputs("<tr><td>", f);
        h(f, k);
        fprintf(f, "</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%s</td>",
                json_integer_value(json_object_get(g, "surveys")), json_integer_value(json_object_get(g, "sent")),
                json_integer_value(json_object_get(g, "replied")), rr);
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(g, "aspects"), i, a) {
            char sr[16];
            sat(a, sr, sizeof sr);
            fprintf(f, "<td>%s</td>", sr);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static const char *kind_zh(const char *kind, const char *status)
{
    if (!strcmp(status, "optout"))
        return "退订";
    if (!strcmp(status, "optin"))
        return "恢复订阅";
    if (!strcmp(kind, "reply"))
        return "回复其他短信";
    if (!strcmp(kind, "unsolicited"))
        return "主动来信";
    return "评议回复";
}

static void html_list(FILE *f, const char *title, const json_t *arr)
{
    fprintf(f, "<h2>%s（%zu）</h2>\n", title, json_array_size(arr));
    if (!json_array_size(arr)) {
        fputs("<p>无</p>\n", f);
        return;
    }
    fputs("<table>\n<tr><th>类别</th><th>号码</th><th>案号</th><th>部门</th><th>承办检察官</th><th>内容</th></tr>\n", f);
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        const char *cols[] = { "phone", "case_no", "department", "prosecutor", "text" };
        fprintf(f, "<tr><td>%s</td>", kind_zh(jstr(e, "kind"), jstr(e, "status")));
        for (int c = 0; c < 5; c++) {
            fputs("<td>", f);
            h(f, jstr(e, cols[c]));
            fputs("</td>", f);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

int survey_report_html(const json_t *r, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "--html: cannot write '%s'", path);
        return -1;
    }
    const json_t *t = json_object_get(r, "total");
    const json_t *labels = json_object_get(r, "labels");
    fputs("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n<title>", f);
    h(f, jstr(r, "period_label"));
    fputs("执法评议短信统计</title>\n<style>\n"
          "body{font-family:sans-serif;margin:2em;color:#222}\n"
          "table{border-collapse:collapse;margin:0.5em 0 1.5em}\n"
          "th,td{border:1px solid #999;padding:4px 8px;text-align:left;font-size:14px}\n"
          "th{background:#f0f0f0}\n.fig{font-size:18px}\n"
          "td,th{white-space:nowrap}\ntd:last-child{white-space:normal}\n"
          "@media print{body{margin:0}h2{page-break-after:avoid}table{page-break-inside:auto}}\n"
          "</style>\n</head>\n<body>\n<h1>", f);
    h(f, jstr(r, "period_label"));
    fputs("执法评议短信统计</h1>\n", f);
    char rr[16];
    pct(json_real_value(json_object_get(t, "response_rate")), rr, sizeof rr);
    fprintf(f, "<p class=\"fig\">发送评议短信 <b>%lld</b> 条，送达 <b>%lld</b> 条，收到评议回复 <b>%lld</b> 条，回复率 <b>%s</b>；退订 %lld 个号码。</p>\n",
            json_integer_value(json_object_get(t, "sent")), json_integer_value(json_object_get(t, "delivered")),
            json_integer_value(json_object_get(t, "replied")), rr,
            json_integer_value(json_object_get(t, "optouts")) + json_integer_value(json_object_get(r, "optouts_outside_surveys")));
    fputs("<h2>四个方面的评价</h2>\n", f);
    svg_chart(f, t, labels);
    fputs("<table>\n<tr><th>方面</th>", f);
    size_t l;
    json_t *lab;
    json_array_foreach(labels, l, lab) {
        fputs("<th>", f);
        h(f, json_string_value(lab));
        fputs("</th>", f);
    }
    fputs("<th>作答</th><th>满意率</th></tr>\n", f);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(t, "aspects"), i, a) {
        fputs("<tr><td>", f);
        h(f, jstr(a, "name"));
        fputs("</td>", f);
        json_t *c;
        json_array_foreach(json_object_get(a, "counts"), l, c)
            fprintf(f, "<td>%lld</td>", json_integer_value(c));
        char sr[16];
        sat(a, sr, sizeof sr);
        fprintf(f, "<td>%lld</td><td>%s</td></tr>\n", json_integer_value(json_object_get(a, "answered")), sr);
    }
    fputs("</table>\n", f);
    html_group_table(f, "按部门", "部门", json_object_get(r, "by_department"));
    html_group_table(f, "按承办检察官", "承办检察官", json_object_get(r, "by_prosecutor"));
    html_list(f, "意见建议", json_object_get(r, "suggestions"));
    html_list(f, "未能识别的回复", json_object_get(r, "unparsed"));
    html_list(f, "非调查回复与主动来信", json_object_get(r, "outside_surveys"));
    fputs("<p style=\"font-size:12px;color:#666\">满意率：评为", f);
    for (int k = 0; k < (int)json_integer_value(json_object_get(r, "satisfied_max")); k++) {
        fputs(k ? "或" : "", f);
        h(f, json_string_value(json_array_get(labels, (size_t)k)));
    }
    fputs("的比例。号码已隐去中间四位。</p>\n</body>\n</html>\n", f);
    if (fclose(f) != 0) {
        snprintf(err, errlen, "--html: writing '%s' failed", path);
        return -1;
    }
    return 0;
}
