/* http.c -- the "http" driver: a generic HTTP SMS provider, configured
 * without code (as Kannel's generic HTTP SMSC is).
 *
 *   routes = ( { name = "county"; driver = "http";
 *     http = {
 *       url = "https://sms.example.cn/api/send";
 *       method = "POST"; encoding = "json";
 *       params = [ "mobile={{to_national}}", "content={{text}}", "ref={{id}}" ];
 *       headers = [ "Authorization: Bearer 0123" ];
 *       success_status = "200-299"; success_match = "\"result\" *: *0";
 *       id_json = "data.msgid"; error_json = "result";
 *       throttled_codes = [ "1008" ]; permanent_codes = [ "1003", "1004" ];
 *     }; } );
 *
 * Fields a template may use: {{id}} {{to}} (+86...) {{to_national}} {{text}}
 * {{parts}} {{encoding}} {{family}} {{template}} {{code}} (provider template
 * code) {{params}} (provider parameters as a JSON object) {{attempt}}. In
 * the URL and in form bodies values are percent-encoded; in JSON bodies
 * "name=..." is a JSON string and "name:=..." inserts the text as JSON.
 * Instead of params, `body` may give the whole POST body as one template;
 * its values are form-encoded, or JSON-escaped (inside the quotes the
 * template writes) with encoding = "json".
 *
 * An answer is a success when its status is in success_status and its body
 * matches success_match (a POSIX extended regex; "" = any body). Otherwise
 * the provider's error code (error_json or the first group of error_regex)
 * is looked up in throttled_codes, permanent_codes and transient_codes;
 * HTTP 429 is throttling; a status in permanent_status is permanent; a
 * success status whose body is not understood is PROV_UNCERTAIN (the
 * message perhaps left); anything else is transient. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/log.h"
#include "providers/cloud.h"
#include "providers/curl_util.h"
#include "templates/buf.h"

static const cfg_key http_keys[] = {
    { "url", CFG_STR, NULL, 0, 0, NULL, "request URL template, e.g. \"https://sms.example.cn/send?to={{to}}\"" },
    { "method", CFG_STR, "POST", 0, 0, NULL, "GET or POST" },
    { "encoding", CFG_STR, "form", 0, 0, NULL, "how params travel: form (body), json (body) or query (URL)" },
    { "params", CFG_STRLIST, "", 0, 0, NULL, "\"name=template\" fields of the request (\"name:=template\" = raw JSON)" },
    { "body", CFG_STR, "", 0, 0, NULL, "the whole POST body as one template instead of params (values escaped for the encoding)" },
    { "headers", CFG_STRLIST, "", 0, 0, NULL, "\"Name: template\" extra headers" },
    { "success_status", CFG_STR, "200-299", 0, 0, NULL, "HTTP statuses of a success: \"200\", \"200-299\", \"200,202\"" },
    { "success_match", CFG_STR, "", 0, 0, NULL, "regex the body of a success must match (\"\" = any)" },
    { "id_json", CFG_STR, "", 0, 0, NULL, "JSON path of the provider's message id, e.g. \"data.list[0].sid\"" },
    { "id_regex", CFG_STR, "", 0, 0, NULL, "or a regex whose first group is the id" },
    { "error_json", CFG_STR, "", 0, 0, NULL, "JSON path of the provider's error code" },
    { "error_regex", CFG_STR, "", 0, 0, NULL, "or a regex whose first group is the error code" },
    { "throttled_codes", CFG_STRLIST, "", 0, 0, NULL, "error codes meaning \"slow down\"" },
    { "permanent_codes", CFG_STRLIST, "", 0, 0, NULL, "error codes meaning the number or text is refused (no retry, no failover)" },
    { "transient_codes", CFG_STRLIST, "", 0, 0, NULL, "error codes meaning \"try later\" (also the default for unknown codes)" },
    { "permanent_status", CFG_STR, "", 0, 0, NULL, "HTTP statuses that are permanent without a code, e.g. \"400,422\"" },
    PROV_HTTP_COMMON_KEYS,
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

enum { ENC_FORM, ENC_JSON, ENC_QUERY };

#define MAX_RANGES 16

typedef struct ranges {
    int n;
    long lo[MAX_RANGES], hi[MAX_RANGES];
} ranges;

typedef struct strlist {
    int n;
    char **v;
} strlist;

struct httpgen {
    char route[64];
    char *url, *method;
    char *body;                 /* "" = built from params */
    int encoding;
    strlist params, headers, throttled, permanent, transient;
    ranges ok_status, perm_status;
    int has_match, has_id_re, has_err_re;
    regex_t match, id_re, err_re;
    char *id_json, *err_json;
};

typedef struct http_route {
    httpgen *g;
    prov_curl *http;
} http_route;

static const char *const fields[] = {
    "id", "to", "to_national", "text", "parts", "encoding", "family", "template",
    "code", "params", "attempt", NULL
};

/* ---- parsing the options ------------------------------------------------- */

static int parse_ranges(const char *s, ranges *r)
{
    r->n = 0;
    while (*s) {
        char *end;
        long lo = strtol(s, &end, 10), hi = lo;
        if (end == s || r->n == MAX_RANGES)
            return -1;
        s = end;
        if (*s == '-') {
            hi = strtol(s + 1, &end, 10);
            if (end == s + 1 || hi < lo)
                return -1;
            s = end;
        }
        r->lo[r->n] = lo;
        r->hi[r->n] = hi;
        r->n++;
        while (*s == ' ')
            s++;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
        while (*s == ' ')
            s++;
    }
    return 0;
}

static int in_ranges(const ranges *r, long v)
{
    for (int i = 0; i < r->n; i++)
        if (v >= r->lo[i] && v <= r->hi[i])
            return 1;
    return 0;
}

static int read_list(const config_setting_t *opts, const char *name, strlist *l)
{
    const config_setting_t *s = opts ? config_setting_get_member(opts, name) : NULL;
    l->n = s ? config_setting_length(s) : 0;
    l->v = calloc((size_t)l->n + 1, sizeof *l->v);
    if (!l->v)
        return -1;
    for (int i = 0; i < l->n; i++)
        if (!(l->v[i] = strdup(config_setting_get_string_elem(s, (unsigned)i))))
            return -1;
    return 0;
}

static void free_list(strlist *l)
{
    for (int i = 0; l->v && i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static int in_list(const strlist *l, const char *s)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return 1;
    return 0;
}

/* Checks that every {{field}} of a template is known. */
static int check_template(const char *t, char *bad, size_t badlen)
{
    for (const char *p = strstr(t, "{{"); p; p = strstr(p, "{{")) {
        const char *e = strstr(p + 2, "}}");
        if (!e) {
            snprintf(bad, badlen, "'{{' without '}}'");
            return -1;
        }
        size_t n = (size_t)(e - (p + 2));
        int ok = 0;
        for (const char *const *f = fields; *f; f++)
            if (strlen(*f) == n && strncmp(*f, p + 2, n) == 0)
                ok = 1;
        if (!ok) {
            snprintf(bad, badlen, "unknown field '{{%.*s}}' (known: id, to, to_national, text, parts, "
                     "encoding, family, template, code, params, attempt)", (int)(n > 40 ? 40 : n), p + 2);
            return -1;
        }
        p = e + 2;
    }
    return 0;
}

static int compile(const char *route, const char *key, const char *pat, regex_t *re, int *has,
                   char *err, size_t errlen)
{
    *has = 0;
    if (!*pat)
        return 0;
    int rc = regcomp(re, pat, REG_EXTENDED);
    if (rc != 0) {
        char why[128];
        regerror(rc, re, why, sizeof why);
        snprintf(err, errlen, "route '%s': http.%s: bad regular expression: %s", route, key, why);
        return -1;
    }
    *has = 1;
    return 0;
}

void httpgen_free(httpgen *g)
{
    if (!g)
        return;
    free(g->url);
    free(g->method);
    free(g->body);
    free(g->id_json);
    free(g->err_json);
    free_list(&g->params);
    free_list(&g->headers);
    free_list(&g->throttled);
    free_list(&g->permanent);
    free_list(&g->transient);
    if (g->has_match)
        regfree(&g->match);
    if (g->has_id_re)
        regfree(&g->id_re);
    if (g->has_err_re)
        regfree(&g->err_re);
    free(g);
}

httpgen *httpgen_new(const char *route, const config_setting_t *opts, char *err, size_t errlen)
{
    httpgen *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "route '%s': out of memory", route);
        return NULL;
    }
    snprintf(g->route, sizeof g->route, "%s", route);
    char bad[200];
    const char *url = cfg_str(opts, http_keys, "url");
    const char *method = cfg_str(opts, http_keys, "method");
    const char *enc = cfg_str(opts, http_keys, "encoding");
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        snprintf(err, errlen, "route '%s': http.url: '%.100s' is not an http(s) URL", route, url);
        goto fail;
    }
    if (check_template(url, bad, sizeof bad) < 0) {
        snprintf(err, errlen, "route '%s': http.url: %s", route, bad);
        goto fail;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
        snprintf(err, errlen, "route '%s': http.method: '%s' is not GET or POST", route, method);
        goto fail;
    }
    if (strcmp(enc, "form") == 0)
        g->encoding = ENC_FORM;
    else if (strcmp(enc, "json") == 0)
        g->encoding = ENC_JSON;
    else if (strcmp(enc, "query") == 0)
        g->encoding = ENC_QUERY;
    else {
        snprintf(err, errlen, "route '%s': http.encoding: '%s' is not form, json or query", route, enc);
        goto fail;
    }
    if (strcmp(method, "GET") == 0 && g->encoding != ENC_QUERY) {
        snprintf(err, errlen, "route '%s': http.encoding: a GET request carries its params in the URL: "
                 "use encoding = \"query\"", route);
        goto fail;
    }
    g->url = strdup(url);
    g->method = strdup(method);
    g->body = strdup(cfg_str(opts, http_keys, "body"));
    if (g->body && *g->body) {
        if (check_template(g->body, bad, sizeof bad) < 0) {
            snprintf(err, errlen, "route '%s': http.body: %s", route, bad);
            goto fail;
        }
        if (strcmp(method, "POST") != 0 || g->encoding == ENC_QUERY) {
            snprintf(err, errlen, "route '%s': http.body needs method = \"POST\" and encoding form or json", route);
            goto fail;
        }
        if (config_setting_get_member(opts, "params")) {
            snprintf(err, errlen, "route '%s': http.body and http.params: give one, not both", route);
            goto fail;
        }
    }
    g->id_json = strdup(cfg_str(opts, http_keys, "id_json"));
    g->err_json = strdup(cfg_str(opts, http_keys, "error_json"));
    if (!g->url || !g->method || !g->body || !g->id_json || !g->err_json
        || read_list(opts, "params", &g->params) < 0 || read_list(opts, "headers", &g->headers) < 0
        || read_list(opts, "throttled_codes", &g->throttled) < 0
        || read_list(opts, "permanent_codes", &g->permanent) < 0
        || read_list(opts, "transient_codes", &g->transient) < 0) {
        snprintf(err, errlen, "route '%s': out of memory", route);
        goto fail;
    }
    for (int i = 0; i < g->params.n; i++) {
        const char *p = g->params.v[i];
        const char *eq = strchr(p, '=');
        if (!eq || eq == p || (eq == p + 1 && p[0] == ':')) {
            snprintf(err, errlen, "route '%s': http.params: '%.60s' is not name=template", route, p);
            goto fail;
        }
        if (check_template(eq + 1, bad, sizeof bad) < 0) {
            snprintf(err, errlen, "route '%s': http.params: '%.60s': %s", route, p, bad);
            goto fail;
        }
    }
    for (int i = 0; i < g->headers.n; i++) {
        const char *h = g->headers.v[i];
        if (!strchr(h, ':') || h[0] == ':' || strpbrk(h, "\r\n")) {
            snprintf(err, errlen, "route '%s': http.headers: '%.60s' is not \"Name: value\"", route, h);
            goto fail;
        }
        if (check_template(h, bad, sizeof bad) < 0) {
            snprintf(err, errlen, "route '%s': http.headers: %s", route, bad);
            goto fail;
        }
    }
    if (parse_ranges(cfg_str(opts, http_keys, "success_status"), &g->ok_status) < 0 || g->ok_status.n == 0) {
        snprintf(err, errlen, "route '%s': http.success_status: '%s' is not like \"200-299\" or \"200,202\"",
                 route, cfg_str(opts, http_keys, "success_status"));
        goto fail;
    }
    if (parse_ranges(cfg_str(opts, http_keys, "permanent_status"), &g->perm_status) < 0) {
        snprintf(err, errlen, "route '%s': http.permanent_status: '%s' is not like \"400,422\"",
                 route, cfg_str(opts, http_keys, "permanent_status"));
        goto fail;
    }
    if (*g->id_json && *cfg_str(opts, http_keys, "id_regex")) {
        snprintf(err, errlen, "route '%s': http.id_json and http.id_regex: give one, not both", route);
        goto fail;
    }
    if (*g->err_json && *cfg_str(opts, http_keys, "error_regex")) {
        snprintf(err, errlen, "route '%s': http.error_json and http.error_regex: give one, not both", route);
        goto fail;
    }
    if (compile(route, "success_match", cfg_str(opts, http_keys, "success_match"), &g->match,
                &g->has_match, err, errlen) < 0
        || compile(route, "id_regex", cfg_str(opts, http_keys, "id_regex"), &g->id_re,
                   &g->has_id_re, err, errlen) < 0
        || compile(route, "error_regex", cfg_str(opts, http_keys, "error_regex"), &g->err_re,
                   &g->has_err_re, err, errlen) < 0)
        goto fail;
    return g;
fail:
    httpgen_free(g);
    return NULL;
}

/* ---- building a request -------------------------------------------------- */

typedef hbuf sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) { hbuf_add(b, s, n); }

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

typedef enum { ESC_NONE, ESC_URL, ESC_FORM, ESC_JSON } esc_mode;

/* The value of one field for message m ("" when absent). */
static const char *field_value(const prov_msg *m, const char *name, size_t n, char *tmp, size_t tmplen,
                               const char *params_json)
{
#define IS(s) (n == sizeof(s) - 1 && strncmp(name, s, n) == 0)
    if (IS("id")) return m->id ? m->id : "";
    if (IS("to")) return m->to ? m->to : "";
    if (IS("to_national")) return m->to ? prov_national(m->to) : "";
    if (IS("text")) return m->text ? m->text : "";
    if (IS("encoding")) return m->encoding ? m->encoding : "";
    if (IS("family")) return m->family ? m->family : "";
    if (IS("template")) return m->template_name ? m->template_name : "";
    if (IS("code")) return m->provider_code ? m->provider_code : "";
    if (IS("params")) return params_json ? params_json : "{}";
    if (IS("parts")) { snprintf(tmp, tmplen, "%d", m->parts > 0 ? m->parts : 1); return tmp; }
    if (IS("attempt")) { snprintf(tmp, tmplen, "%d", m->attempt); return tmp; }
#undef IS
    return "";
}

/* Expands a template (already checked) into b, escaping values. */
static void expand(sbuf *b, const char *t, const prov_msg *m, esc_mode esc, const char *params_json)
{
    char tmp[32];
    const char *p = t;
    for (const char *o = strstr(p, "{{"); o; o = strstr(p, "{{")) {
        sb_add(b, p, (size_t)(o - p));
        const char *e = strstr(o + 2, "}}");
        const char *v = field_value(m, o + 2, (size_t)(e - o - 2), tmp, sizeof tmp, params_json);
        if (esc == ESC_NONE) {
            sb_str(b, v);
        } else if (esc == ESC_JSON) {
            /* the inside of a JSON string: the template supplies the quotes */
            json_t *js = json_string(v);
            char *x = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
            if (!x)
                b->oom = 1;
            else
                sb_add(b, x + 1, strlen(x) - 2);
            free(x);
            json_decref(js);
        } else {
            char *x = esc == ESC_URL ? prov_pct_encode(v, strlen(v)) : prov_form_encode(v);
            if (!x)
                b->oom = 1;
            else
                sb_str(b, x);
            free(x);
        }
        p = e + 2;
    }
    sb_str(b, p);
}

void httpgen_request_free(httpgen_request *rq)
{
    if (!rq)
        return;
    free(rq->url);
    free(rq->body);
    for (char **h = rq->headers; h && *h; h++)
        free(*h);
    free(rq->headers);
    memset(rq, 0, sizeof *rq);
}

int httpgen_build(const httpgen *g, const prov_msg *m, httpgen_request *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->method = g->method;
    char *params_json = prov_template_params(m->vars_json, m->provider_params, 0, err, errlen);
    if (!params_json)
        return -1;
    sbuf url = { 0 }, body = { 0 };
    int oom = 0;
    expand(&url, g->url, m, ESC_URL, params_json);
    json_t *obj = g->encoding == ENC_JSON && !*g->body ? json_object() : NULL;
    if (*g->body)
        expand(&body, g->body, m, g->encoding == ENC_JSON ? ESC_JSON : ESC_FORM, params_json);
    for (int i = 0; i < g->params.n; i++) {
        const char *p = g->params.v[i];
        const char *eq = strchr(p, '=');
        int raw = eq > p && eq[-1] == ':';
        size_t nlen = (size_t)(eq - p) - (raw ? 1 : 0);
        if (g->encoding == ENC_JSON) {
            sbuf v = { 0 };
            expand(&v, eq + 1, m, ESC_NONE, params_json);
            char *name = strndup(p, nlen);
            json_t *jv = NULL;
            if (raw && v.p) {
                json_error_t je;
                jv = json_loads(v.p, JSON_DECODE_ANY, &je);
            }
            if (!jv)
                jv = json_string(v.p ? v.p : "");
            if (!name || !jv || v.oom)
                oom = 1;
            else
                json_object_set_new(obj, name, jv), jv = NULL;
            json_decref(jv);
            free(name);
            free(v.p);
            continue;
        }
        sbuf *b = g->encoding == ENC_QUERY ? &url : &body;
        if (g->encoding == ENC_QUERY)
            sb_str(b, b == &url && i == 0 && !strchr(g->url, '?') ? "?" : "&");
        else if (i > 0)
            sb_str(b, "&");
        char *name = strndup(p, nlen);
        char *ename = name ? (g->encoding == ENC_QUERY ? prov_pct_encode(name, nlen) : prov_form_encode(name)) : NULL;
        if (!ename)
            oom = 1;
        else
            sb_str(b, ename);
        free(name);
        free(ename);
        sb_str(b, "=");
        expand(b, eq + 1, m, g->encoding == ENC_QUERY ? ESC_URL : ESC_FORM, params_json);
    }
    if (obj) {
        char *s = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
        if (!s)
            oom = 1;
        else
            sb_str(&body, s);
        free(s);
        json_decref(obj);
    }
    /* headers: the route's, then the content type of the body */
    out->headers = calloc((size_t)g->headers.n + 2, sizeof *out->headers);
    if (!out->headers)
        oom = 1;
    for (int i = 0; out->headers && i < g->headers.n; i++) {
        sbuf h = { 0 };
        expand(&h, g->headers.v[i], m, ESC_NONE, params_json);
        /* a value must not smuggle a header line in */
        for (char *c = h.p; c && *c; c++)
            if (*c == '\r' || *c == '\n')
                *c = ' ';
        if (h.oom || !h.p)
            oom = 1;
        out->headers[i] = h.p;
    }
    if (out->headers && strcmp(g->method, "POST") == 0 && g->encoding != ENC_QUERY)
        out->headers[g->headers.n] = strdup(g->encoding == ENC_JSON
                                            ? "Content-Type: application/json; charset=utf-8"
                                            : "Content-Type: application/x-www-form-urlencoded; charset=utf-8");
    free(params_json);
    out->url = url.p;
    out->body = body.p ? body.p : strdup("");
    if (oom || url.oom || body.oom || !out->url || !out->body) {
        snprintf(err, errlen, "out of memory building the request");
        httpgen_request_free(out);
        return -1;
    }
    return 0;
}

/* ---- classifying an answer ----------------------------------------------- */

/* Follows "a.b[0].c" from root; NULL when any step is missing. */
static json_t *json_path(json_t *root, const char *path)
{
    json_t *cur = root;
    const char *p = path;
    while (cur && *p) {
        if (*p == '.') {
            p++;
            continue;
        }
        if (*p == '[') {
            char *end;
            long i = strtol(p + 1, &end, 10);
            if (*end != ']' || i < 0)
                return NULL;
            cur = json_array_get(cur, (size_t)i);
            p = end + 1;
            continue;
        }
        size_t n = strcspn(p, ".[");
        char key[128];
        if (n >= sizeof key)
            return NULL;
        memcpy(key, p, n);
        key[n] = '\0';
        cur = json_object_get(cur, key);
        p += n;
    }
    return cur;
}

/* A JSON scalar as text into out ("" when absent or not a scalar). */
static void scalar_text(json_t *v, char *out, size_t outlen)
{
    out[0] = '\0';
    if (json_is_string(v))
        snprintf(out, outlen, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, outlen, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, outlen, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(out, outlen, "%s", json_is_true(v) ? "true" : "false");
}

/* The first group of re in body into out; 0 found, -1 not. */
static int regex_group(const regex_t *re, const char *body, char *out, size_t outlen)
{
    regmatch_t mt[2];
    if (regexec(re, body, 2, mt, 0) != 0 || mt[1].rm_so < 0)
        return -1;
    size_t n = (size_t)(mt[1].rm_eo - mt[1].rm_so);
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, body + mt[1].rm_so, n);
    out[n] = '\0';
    return 0;
}

static void httpgen_classify_body(const httpgen *g, long status, const char *body,
                                  long long retry_after_ms, prov_result *res)
{
    if (!body)
        body = "";
    res->refs[0] = '\0';
    res->error[0] = '\0';
    res->retry_after_ms = 0;
    json_error_t je;
    json_t *root = NULL;
    if ((*g->id_json || *g->err_json) && *body)
        root = json_loads(body, JSON_DECODE_ANY, &je);
    int ok_status = in_ranges(&g->ok_status, status);
    char clean[100];
    if (ok_status && (!g->has_match || regexec(&g->match, body, 0, NULL, 0) == 0)) {
        res->status = PROV_OK;
        char id[128] = "";
        if (*g->id_json)
            scalar_text(json_path(root, g->id_json), id, sizeof id);
        else if (g->has_id_re)
            regex_group(&g->id_re, body, id, sizeof id);
        snprintf(res->refs, sizeof res->refs, "%s", id);
        json_decref(root);
        return;
    }
    char code[64] = "";
    if (*g->err_json)
        scalar_text(json_path(root, g->err_json), code, sizeof code);
    else if (g->has_err_re)
        regex_group(&g->err_re, body, code, sizeof code);
    json_decref(root);
    char ccode[64];
    prov_detail_clean(code, ccode, sizeof ccode);
    if ((*code && in_list(&g->throttled, code)) || status == 429) {
        res->status = PROV_THROTTLED;
        res->retry_after_ms = retry_after_ms;
    } else if (*code && in_list(&g->permanent, code)) {
        res->status = PROV_PERMANENT;
    } else if (*code && in_list(&g->transient, code)) {
        res->status = PROV_TRANSIENT;
    } else if (ok_status && !*code) {
        res->status = PROV_UNCERTAIN;     /* accepted, perhaps; the answer is not understood */
    } else if (in_ranges(&g->perm_status, status)) {
        res->status = PROV_PERMANENT;
    } else {
        res->status = PROV_TRANSIENT;
    }
    prov_detail_clean(body, clean, 60);
    snprintf(res->error, sizeof res->error, "http: HTTP %ld%s%s: %s", status,
             *code ? ", code " : "", ccode, clean);
}

/* ---- the driver ----------------------------------------------------------- */

static int http_open(prov_route *r, const config_setting_t *opts, char *err, size_t errlen)
{
    if (prov_check_options(r, opts, http_keys, err, errlen) < 0)
        return -1;
    http_route *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "route '%s': out of memory", r->name);
        return -1;
    }
    h->g = httpgen_new(r->name, opts, err, errlen);
    if (!h->g) {
        free(h);
        return -1;
    }
    prov_http_opts ho;
    prov_http_opts_read(opts, http_keys, r->send_timeout_ms, &ho);
    h->http = prov_http_create(r->name, &ho, err, errlen);
    if (!h->http) {
        httpgen_free(h->g);
        free(h);
        return -1;
    }
    r->priv = h;
    return 0;
}

static int http_send(prov_route *r, const prov_msg *m, prov_result *res)
{
    http_route *h = r->priv;
    memset(res, 0, sizeof *res);
    httpgen_request rq;
    char err[200];
    if (httpgen_build(h->g, m, &rq, err, sizeof err) < 0) {
        res->status = PROV_PERMANENT;
        snprintf(res->error, sizeof res->error, "http: %s", err);
        return 0;
    }
    prov_http_req hr = { .method = rq.method, .url = rq.url,
                         .headers = (const char *const *)rq.headers,
                         .body = strcmp(rq.method, "POST") == 0 ? rq.body : NULL,
                         .body_len = strlen(rq.body) };
    prov_http_resp rs;
    if (prov_http_do(h->http, &hr, &rs) < 0) {
        prov_http_transport_failure(&rs, "http", res);
    } else {
        httpgen_classify(h->g, rs.status, rs.body, rs.retry_after_ms, res);
        if (res->status == PROV_OK)
            res->parts_sent = m->parts > 0 ? m->parts : 1;
    }
    prov_http_resp_free(&rs);
    httpgen_request_free(&rq);
    return 0;
}

static void http_health(prov_route *r, prov_health *hl)
{
    http_route *h = r->priv;
    hl->up = 1;
    hl->signal_percent = -1;
    snprintf(hl->state, sizeof hl->state, "%d in flight", prov_http_in_flight(h->http));
}

static void http_close(prov_route *r)
{
    http_route *h = r->priv;
    if (!h)
        return;
    prov_http_destroy(h->http);
    httpgen_free(h->g);
    free(h);
    r->priv = NULL;
}

const prov_driver prov_http = {
    .name = "http",
    .caps = PROV_CAP_SMS,
    .keys = http_keys,
    .open = http_open,
    .send = http_send,
    .poll_inbound = NULL,
    .health = http_health,
    .close = http_close,
};

void httpgen_classify(const httpgen *g, long status, const char *body, long long retry_after_ms,
                      prov_result *res)
{
    httpgen_classify_body(g, status, body, retry_after_ms, res);
    prov_oneline(res->error);      /* a provider's text may hold newlines */
}
