/* callbacks.c -- the provider callback bodies, parsed without I/O (see
 * callbacks.h). Moved out of api.c's handlers unchanged in behaviour, so
 * that they can be fuzzed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/api.h"
#include "gateway/callbacks.h"
#include "templates/segment.h"

void api_cb_parsed_free(api_cb_parsed *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i].phone);
        free(p->items[i].text);
        free(p->items[i].ref);
        free(p->items[i].code);
    }
    free(p->items);
    free(p->field);
    memset(p, 0, sizeof *p);
}

static int refuse(api_cb_parsed *p, int status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int refuse(api_cb_parsed *p, int status, const char *code, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    p->status = status;
    p->code = code;
    if (field && !(p->field = strdup(field)))
        return -2;
    return -1;
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* A copy of s, or NULL for NULL; *oom set when the copy fails. */
static char *dup_or_null(const char *s, int *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

static int reserve(api_cb_parsed *p, size_t n)
{
    p->items = calloc(n ? n : 1, sizeof *p->items);
    return p->items ? 0 : -2;
}

/* Parses the body of an aliyun or tencent callback: any JSON value. */
static json_t *provider_body(const char *body, size_t len, int max_depth, api_cb_parsed *p)
{
    json_error_t je;
    if (api_json_depth(body ? body : "", len) > max_depth) {
        refuse(p, 400, "bad_request", NULL, "JSON nested too deep");
        return NULL;
    }
    json_t *j = len ? json_loadb(body, len, 0, &je) : NULL;
    if (!j)
        refuse(p, 400, "bad_json", NULL, "body is not JSON: %s", len ? je.text : "empty");
    return j;
}

int api_cb_parse_aliyun(const char *body, size_t len, int max_depth, api_cb_parsed *out)
{
    memset(out, 0, sizeof *out);
    json_t *j = provider_body(body, len, max_depth, out);
    if (!j)
        return -1;
    if (!json_is_array(j)) {
        json_decref(j);
        return refuse(out, 400, "bad_request", NULL, "body must be a JSON array (SmsUp or SmsReport)");
    }
    if (reserve(out, json_array_size(j)) < 0) {
        json_decref(j);
        return -2;
    }
    size_t i;
    json_t *it;
    int oom = 0;
    json_array_foreach(j, i, it) {
        api_cb_item *x = &out->items[out->n++];
        x->index = i;
        if (json_is_object(it) && json_object_get(it, "content")) {
            x->kind = API_CB_REPLY;
            x->phone = dup_or_null(jstr(it, "phone_number"), &oom);
            x->text = dup_or_null(jstr(it, "content"), &oom);
        } else if (json_is_object(it) && json_is_boolean(json_object_get(it, "success"))) {
            x->kind = API_CB_REPORT;
            x->phone = dup_or_null(jstr(it, "phone_number"), &oom);
            x->ref = dup_or_null(jstr(it, "biz_id"), &oom);
            x->code = dup_or_null(jstr(it, "err_code"), &oom);
            x->delivered = json_is_true(json_object_get(it, "success"));
        } else {
            x->kind = API_CB_SKIP;
            snprintf(x->why, sizeof x->why, "neither SmsUp (content) nor SmsReport (success)");
        }
    }
    json_decref(j);
    return oom ? -2 : 0;
}

/* "+" nationcode mobile, as Tencent splits a number. */
static char *tencent_phone(const json_t *o, int *oom)
{
    char phone[48];
    const char *nc = jstr(o, "nationcode"), *m = jstr(o, "mobile");
    snprintf(phone, sizeof phone, "%s%s%s", nc && *nc ? "+" : "", nc ? nc : "", m ? m : "");
    return dup_or_null(phone, oom);
}

int api_cb_parse_tencent(const char *body, size_t len, int max_depth, api_cb_parsed *out)
{
    memset(out, 0, sizeof *out);
    json_t *j = provider_body(body, len, max_depth, out);
    if (!j)
        return -1;
    int oom = 0;
    if (json_is_object(j)) {
        out->single = 1;
        if (reserve(out, 1) < 0) {
            json_decref(j);
            return -2;
        }
        api_cb_item *x = &out->items[out->n++];
        x->kind = API_CB_REPLY;
        x->phone = jstr(j, "mobile") ? tencent_phone(j, &oom) : NULL;
        x->text = dup_or_null(jstr(j, "text"), &oom);
    } else if (json_is_array(j)) {
        if (reserve(out, json_array_size(j)) < 0) {
            json_decref(j);
            return -2;
        }
        size_t i;
        json_t *it;
        json_array_foreach(j, i, it) {
            api_cb_item *x = &out->items[out->n++];
            x->index = i;
            const char *st = jstr(it, "report_status");
            if (!st) {
                x->kind = API_CB_SKIP;
                snprintf(x->why, sizeof x->why, "no report_status");
                continue;
            }
            x->kind = API_CB_REPORT;
            x->phone = tencent_phone(it, &oom);
            x->ref = dup_or_null(jstr(it, "sid"), &oom);
            x->code = dup_or_null(jstr(it, "errmsg"), &oom);
            x->delivered = strcmp(st, "SUCCESS") == 0;
        }
    } else {
        json_decref(j);
        return refuse(out, 400, "bad_request", NULL, "body must be a status array or a reply object");
    }
    json_decref(j);
    return oom ? -2 : 0;
}

int api_cb_parse_generic(const char *body, size_t len, int is_form, int max_depth, api_cb_parsed *out)
{
    memset(out, 0, sizeof *out);
    if (!body)
        body = "";
    if (reserve(out, 1) < 0)
        return -2;
    api_cb_item *x = &out->items[0];
    x->kind = API_CB_REPLY;
    if (is_form) {
        out->n = 1;
        x->phone = api_form_value(body, len, "from");
        x->text = api_form_value(body, len, "text");
        return 0;
    }
    if (len == 0)
        return refuse(out, 400, "bad_request", NULL, "the request body is empty: a JSON object is expected");
    int depth = api_json_depth(body, len);
    if (depth > max_depth)
        return refuse(out, 400, "bad_request", NULL, "JSON nested %d levels deep; at most %d are allowed",
                      depth, max_depth);
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return refuse(out, 400, "bad_json", NULL, "the body is not valid JSON: %s (line %d, column %d)",
                      je.text, je.line, je.column);
    int rc = 0;
    if (!json_is_object(j)) {
        rc = refuse(out, 400, "bad_request", NULL, "the body must be a JSON object");
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
        if (strcmp(k, "from") && strcmp(k, "to") && strcmp(k, "text")) {
            rc = refuse(out, 422, "invalid", k, "unknown field '%s' (known: from, to, text)", k);
            goto out;
        }
        if (!json_is_string(v)) {
            rc = refuse(out, 422, "invalid", k, "%s must be a string", k);
            goto out;
        }
    }
    int oom = 0;
    out->n = 1;
    x->phone = dup_or_null(jstr(j, "from"), &oom);
    x->text = dup_or_null(jstr(j, "text"), &oom);
    rc = oom ? -2 : 0;
out:
    json_decref(j);
    return rc;
}

int api_cb_check_inbound(const char *from, const char *text, char num[PHONE_MAX],
                         const char **field, char *why, size_t whylen)
{
    char perr[200];
    seg_info si;
    if (!from || !*from) {
        *field = "from";
        snprintf(why, whylen, "from is required");
        return 1;
    }
    if (phone_normalize(from, 1, num, perr, sizeof perr) < 0) {
        *field = "from";
        snprintf(why, whylen, "from: %s", perr);
        return 1;
    }
    if (!text) {
        *field = "text";
        snprintf(why, whylen, "text is required");
        return 1;
    }
    if (seg_count(text, strlen(text), &si, perr, sizeof perr) < 0) {
        *field = "text";
        snprintf(why, whylen, "text: %s", perr);
        return 1;
    }
    return 0;
}

const char *api_cb_xml_text(const char *from, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    out[0] = '\0';
    for (const char *p = strstr(from, name); p; p = strstr(p + 1, name)) {
        if (p[nl] != '>' && p[nl] != ' ')
            continue;
        const char *lt = p;
        while (lt > from && lt[-1] != '<' && lt[-1] != '>' && lt[-1] != '/' && lt[-1] != ' ')
            lt--;
        if (lt == from || lt[-1] != '<')
            continue;                     /* not an opening tag (a closing one, or text) */
        const char *gt = strchr(p + nl, '>');
        if (!gt)
            return NULL;
        const char *end = strchr(gt + 1, '<');
        if (!end)
            return NULL;
        size_t n = (size_t)(end - (gt + 1));
        if (n >= outlen)
            n = outlen - 1;
        memcpy(out, gt + 1, n);
        out[n] = '\0';
        return end;
    }
    return NULL;
}

int api_cb_parse_mm7(const char *b, api_cb_mm7 *out)
{
    memset(out, 0, sizeof *out);
    api_cb_xml_text(b, "TransactionID", out->tid, sizeof out->tid);
    for (char *p = out->tid; *p; p++)          /* echoed into XML: keep it plain */
        if (*p == '<' || *p == '>' || *p == '&' || *p == '"')
            *p = '_';
    if (!strstr(b, "DeliveryReportReq"))
        return -1;
    const char *rec = strstr(b, "Recipient");
    api_cb_xml_text(b, "MessageID", out->message_id, sizeof out->message_id);
    api_cb_xml_text(rec ? rec : b, "Number", out->number, sizeof out->number);
    if (!api_cb_xml_text(b, "MMStatus", out->status, sizeof out->status) || !out->message_id[0])
        return -2;
    return 0;
}
