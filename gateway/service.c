/* service.c -- accepting a message, the same way for every front end. */
#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "gateway/service.h"

long long svc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int svc_parse_var(char *s, tpl_var *v, char *err, size_t errlen)
{
    char *eq = strchr(s, '=');
    if (!eq || eq == s) {
        snprintf(err, errlen, "variable '%s' must be name=value", s);
        return -1;
    }
    *eq = '\0';
    v->name = s;
    v->value = eq + 1;
    return 0;
}

static int cmp_var(const void *a, const void *b)
{
    return strcmp(((const tpl_var *)a)->name, ((const tpl_var *)b)->name);
}

/* The default idempotency key: the same template, recipient and variables
 * within the window are one message. */
static void derive_key(const char *tpl_name, const char *to, const tpl_var *vars,
                       size_t nvars, char out[SVC_KEY_MAX])
{
    tpl_var *sorted = malloc((nvars ? nvars : 1) * sizeof *sorted);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!ctx || !sorted || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1)
        abort();   /* out of memory: nothing sensible to do */
    EVP_DigestUpdate(ctx, tpl_name, strlen(tpl_name) + 1);
    EVP_DigestUpdate(ctx, to, strlen(to) + 1);
    memcpy(sorted, vars, nvars * sizeof *sorted);
    qsort(sorted, nvars, sizeof *sorted, cmp_var);
    for (size_t i = 0; i < nvars; i++) {
        EVP_DigestUpdate(ctx, sorted[i].name, strlen(sorted[i].name) + 1);
        EVP_DigestUpdate(ctx, sorted[i].value, strlen(sorted[i].value) + 1);
    }
    free(sorted);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    int n = snprintf(out, SVC_KEY_MAX, "auto:");
    for (unsigned i = 0; i < mdlen; i++)
        n += snprintf(out + n, SVC_KEY_MAX - (size_t)n, "%02x", md[i]);
}

static int key_ok(const char *k, char *err, size_t errlen)
{
    size_t len = strlen(k);
    if (len == 0 || len >= SVC_KEY_MAX - 8) {
        snprintf(err, errlen, "idempotency key must be 1-240 bytes");
        return -1;
    }
    if (strncmp(k, "auto:", 5) == 0) {
        snprintf(err, errlen, "idempotency keys starting with 'auto:' are reserved");
        return -1;
    }
    for (const unsigned char *p = (const unsigned char *)k; *p; p++)
        if (*p < 0x21 || *p == 0x7f) {
            snprintf(err, errlen, "idempotency key must not contain spaces or control characters");
            return -1;
        }
    return 0;
}

/* The renderer names a variable as "... variable 'x' ...": the field is
 * then "vars.x"; any other render error (too many parts) is about "vars". */
static void var_field(const char *err, char field[SVC_FIELD_MAX])
{
    const char *p = strstr(err, "variable '");
    if (!p)
        return;
    p += strlen("variable '");
    const char *q = strchr(p, '\'');
    if (q && q - p < SVC_FIELD_MAX - 6)
        snprintf(field, SVC_FIELD_MAX, "vars.%.*s", (int)(q - p), p);
}

int svc_request_from_json(const json_t *j, long long now_ms, svc_json_req *out,
                          char *err, size_t errlen, char field[SVC_FIELD_MAX])
{
    static const char *const known[] = { "template", "to", "vars", "key", "send_at", NULL };
    memset(out, 0, sizeof *out);
    field[0] = '\0';
    if (!json_is_object(j)) {
        snprintf(err, errlen, "a message must be a JSON object");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        int ok = 0;
        for (int i = 0; known[i]; i++)
            ok |= strcmp(k, known[i]) == 0;
        if (!ok) {
            snprintf(field, SVC_FIELD_MAX, "%.*s", SVC_FIELD_MAX - 1, k);
            snprintf(err, errlen, "unknown field '%s' (known: template, to, vars, key, send_at)", k);
            return -1;
        }
    }
    static const char *const strs[] = { "template", "to", "key", NULL };
    for (int i = 0; strs[i]; i++) {
        json_t *s = json_object_get(j, strs[i]);
        if (s && !json_is_string(s)) {
            snprintf(field, SVC_FIELD_MAX, "%s", strs[i]);
            snprintf(err, errlen, "%s must be a string", strs[i]);
            return -1;
        }
    }
    out->rq.template_name = json_string_value(json_object_get(j, "template"));
    out->rq.to = json_string_value(json_object_get(j, "to"));
    out->rq.key = json_string_value(json_object_get(j, "key"));
    if (!out->rq.template_name) {
        snprintf(field, SVC_FIELD_MAX, "template");
        snprintf(err, errlen, "template is required");
        return -1;
    }
    if (!out->rq.to) {
        snprintf(field, SVC_FIELD_MAX, "to");
        snprintf(err, errlen, "to is required");
        return -1;
    }
    json_t *at = json_object_get(j, "send_at");
    if (at && json_is_string(at)) {
        if (svc_parse_time(json_string_value(at), now_ms, &out->rq.send_at_ms, err, errlen) < 0) {
            snprintf(field, SVC_FIELD_MAX, "send_at");
            return -1;
        }
    } else if (at && json_is_integer(at) && json_integer_value(at) >= 0) {
        out->rq.send_at_ms = json_integer_value(at);
    } else if (at && !json_is_null(at)) {
        snprintf(field, SVC_FIELD_MAX, "send_at");
        snprintf(err, errlen, "send_at must be a time string (+10m, 2026-11-27T10:00:00+08:00) or Unix milliseconds");
        return -1;
    }
    json_t *vars = json_object_get(j, "vars");
    if (vars && !json_is_object(vars) && !json_is_null(vars)) {
        snprintf(field, SVC_FIELD_MAX, "vars");
        snprintf(err, errlen, "vars must be an object of strings");
        return -1;
    }
    if (json_is_object(vars)) {
        json_object_foreach(vars, k, v) {
            if (out->rq.nvars >= SVC_MAX_VARS) {
                snprintf(field, SVC_FIELD_MAX, "vars");
                snprintf(err, errlen, "at most %d variables", SVC_MAX_VARS);
                return -1;
            }
            if (!json_is_string(v)) {
                snprintf(field, SVC_FIELD_MAX, "vars.%.*s", SVC_FIELD_MAX - 6, k);
                snprintf(err, errlen, "variable '%s' must be a string", k);
                return -1;
            }
            out->vars[out->rq.nvars].name = k;
            out->vars[out->rq.nvars].value = json_string_value(v);
            out->rq.nvars++;
        }
    }
    out->rq.vars = out->vars;
    return 0;
}

int svc_prepare(const catalog *cat, const catalog_opts *o, int allow_international,
                const svc_request *rq, long long now_ms, svc_message *out,
                char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    snprintf(out->err_field, sizeof out->err_field, "template");
    if (!rq->template_name || !*rq->template_name) {
        snprintf(err, errlen, "template is required");
        return -1;
    }
    out->def = catalog_find(cat, rq->template_name);
    if (!out->def) {
        snprintf(err, errlen, "unknown template '%s'", rq->template_name);
        return -1;
    }
    char perr[200];
    snprintf(out->err_field, sizeof out->err_field, "to");
    if (!rq->to || phone_normalize(rq->to, allow_international, out->to, perr, sizeof perr) < 0) {
        snprintf(err, errlen, "to: %s", rq->to ? perr : "recipient is required");
        return -1;
    }
    snprintf(out->err_field, sizeof out->err_field, "vars");
    for (size_t i = 0; i < rq->nvars; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(rq->vars[i].name, rq->vars[j].name) == 0) {
                snprintf(err, errlen, "variable '%s' is given twice", rq->vars[i].name);
                return -1;
            }
    if (catalog_render(out->def, o, rq->vars, rq->nvars, &out->r, err, errlen) < 0) {
        var_field(err, out->err_field);
        return -1;
    }
    snprintf(out->err_field, sizeof out->err_field, "key");
    if (rq->key) {
        if (key_ok(rq->key, err, errlen) < 0)
            return -1;
        snprintf(out->key, sizeof out->key, "%s", rq->key);
    } else {
        derive_key(out->def->name, out->to, rq->vars, rq->nvars, out->key);
    }
    json_t *vars = json_object();
    for (size_t i = 0; i < rq->nvars; i++)
        json_object_set_new(vars, rq->vars[i].name, json_string(rq->vars[i].value));
    out->vars_json = json_dumps(vars, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(vars);
    if (!out->vars_json) {
        snprintf(out->err_field, sizeof out->err_field, "vars");
        snprintf(err, errlen, "a variable is not valid UTF-8");
        return -1;
    }
    out->err_field[0] = '\0';

    queue_new_msg *m = &out->msg;
    m->family = family_name(out->def->family);
    m->template_name = out->def->name;
    m->to = out->to;
    m->text = out->r.text;
    m->encoding = seg_encoding_name(out->r.seg.encoding);
    m->parts = out->r.seg.parts;
    m->lane = out->def->lane;
    m->vars_json = out->vars_json;
    m->provider_code = out->def->provider_code;
    m->idem_key = out->key;
    m->send_at_ms = rq->send_at_ms > now_ms ? rq->send_at_ms : 0;
    m->now_ms = now_ms;
    for (size_t i = 0; i < rq->nvars; i++)   /* indexed for the console's lookup */
        if (strcmp(rq->vars[i].name, "case_no") == 0 && rq->vars[i].value
            && strlen(rq->vars[i].value) <= QUEUE_CASE_MAX) {
            snprintf(out->case_no, sizeof out->case_no, "%s", rq->vars[i].value);
            m->case_no = out->case_no;
        }
    return 0;
}

void svc_message_free(svc_message *m)
{
    if (!m)
        return;
    free(m->r.text);
    free(m->vars_json);
    memset(m, 0, sizeof *m);
}

static int parse_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

int svc_parse_time(const char *s, long long now_ms, long long *out, char *err, size_t errlen)
{
    char *end;
    if (!s || !*s)
        goto bad;
    if (s[0] == '+') {
        errno = 0;
        long long v = strtoll(s + 1, &end, 10);
        if (errno || end == s + 1 || v < 0)
            goto bad;
        long long mult = 0;
        if (!strcmp(end, "s") || !*end) mult = 1000;
        else if (!strcmp(end, "m")) mult = 60000;
        else if (!strcmp(end, "h")) mult = 3600000;
        else if (!strcmp(end, "d")) mult = 86400000;
        else goto bad;
        if (v > 3650LL * 86400)
            goto bad;
        *out = now_ms + v * mult;
        return 0;
    }
    int all_digits = 1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            all_digits = 0;
    if (all_digits) {
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || v > 253402300799LL)
            goto bad;
        *out = v * 1000;
        return 0;
    }
    struct tm tm = {0};
    int sec = 0, y, mo, d, h, mi;
    const char *p = s;
    if (parse_digits(&p, 4, &y) || *p++ != '-' || parse_digits(&p, 2, &mo) || *p++ != '-'
        || parse_digits(&p, 2, &d) || (*p != 'T' && *p != ' ') || !*p++
        || parse_digits(&p, 2, &h) || *p++ != ':' || parse_digits(&p, 2, &mi))
        goto bad;
    if (*p == ':') {
        p++;
        if (parse_digits(&p, 2, &sec))
            goto bad;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        goto bad;
    tm.tm_year = y - 1900; tm.tm_mon = mo - 1; tm.tm_mday = d;
    tm.tm_hour = h; tm.tm_min = mi; tm.tm_sec = sec;
    time_t t;
    if (*p == '\0') {
        tm.tm_isdst = -1;
        t = mktime(&tm);
    } else if (*p == 'Z' && p[1] == '\0') {
        t = timegm(&tm);
    } else if ((*p == '+' || *p == '-') ) {
        int sign = *p == '-' ? -1 : 1, oh, om = 0;
        p++;
        if (parse_digits(&p, 2, &oh))
            goto bad;
        if (*p == ':')
            p++;
        if (*p && parse_digits(&p, 2, &om))
            goto bad;
        if (*p)
            goto bad;
        t = timegm(&tm) - sign * (oh * 3600 + om * 60);
    } else {
        goto bad;
    }
    *out = (long long)t * 1000;
    return 0;
bad:
    snprintf(err, errlen, "cannot read time '%s': use +10m, Unix seconds, or 2026-11-27T10:00:00+08:00", s ? s : "");
    return -1;
}

/* ---- command-line helpers ------------------------------------------------ */

int svc_die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("herald: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

queue *svc_connect(const queue_opts *o)
{
    char err[512];
    queue *q = queue_connect(o, err, sizeof err);
    if (!q)
        svc_die(1, "redis: %s", err);
    return q;
}

void svc_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s) {
        puts(s);
        free(s);
    }
}
