/* mm7.c -- the "mm7" driver: MMS through an operator's MMSC over 3GPP MM7
 * (SOAP 1.1 with attachments, HTTP(S) through libcurl). Example:
 *
 *   routes = ( { name = "mmsc"; driver = "mm7"; families = ["bulletin"];
 *                mm7 = { url = "https://mmsc.example.cn/mm7";
 *                        vaspid = "901234"; vasid = "1065012345";
 *                        service_code = "BULLETIN"; sender_address = "1065012345";
 *                        max_recipients = 20; max_size_kb = 300; }; } );
 *
 * It sends only MMS: the gateway hands it a bulletin issue's content with
 * up to max_recipients numbers (prov_msg.mms_*, recipients). One SubmitReq
 * per send(); the SubmitRsp's MessageID goes into res->refs and
 * gateway/bulletin.c keeps it for each recipient, so the DeliveryReportReq
 * the MMSC sends later (MessageID + Recipient) finds its recipient.
 * Failures are classified from the MM7 StatusCode (mm7_classify(), table
 * in docs/providers.md); a transfer broken after the request was sent is
 * PROV_UNCERTAIN (the MMSC may have accepted it).
 *
 * Threads: send() runs on several workers at once; each call uses its own
 * curl easy handle and the route's options are read-only after open(). */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "gateway/log.h"
#include "gateway/phone.h"
#include "providers/mm7.h"
#include "templates/buf.h"

#define RSP_MAX (1024 * 1024)         /* a SubmitRsp is small; more is not an MMSC */

static const cfg_key mm7_keys[] = {
    { "url", CFG_STR, NULL, 0, 0, NULL, "the MMSC's MM7 endpoint (http:// or https://)" },
    { "vaspid", CFG_STR, "", 0, 0, NULL, "VASPID given by the operator (SenderIdentification)" },
    { "vasid", CFG_STR, "", 0, 0, NULL, "VASID given by the operator (SenderIdentification)" },
    { "service_code", CFG_STR, "", 0, 0, NULL, "ServiceCode (charging) of the bulletin service" },
    { "sender_address", CFG_STR, "", 0, 0, NULL, "SenderAddress: a short code (1065...) or +number" },
    { "version", CFG_STR, MM7_DEFAULT_VERSION, 0, 0, NULL, "MM7Version element" },
    { "namespace", CFG_STR, MM7_DEFAULT_NS, 0, 0, NULL, "MM7 schema namespace (REL-6-MM7-1-4 by default)" },
    { "max_recipients", CFG_INT, "10", 1, 1000, NULL, "recipients per SubmitReq" },
    { "max_size_kb", CFG_INT, "300", 1, 10240, NULL, "size budget of an issue's content (KB of 1024 bytes)" },
    { "delivery_report", CFG_BOOL, "true", 0, 0, NULL, "ask the MMSC for DeliveryReportReq" },
    { "number_format", CFG_STR, "national", 0, 0, NULL, "recipients as 'national' (13800138000) or 'e164' (+8613800138000)" },
    { "username", CFG_STR, "", 0, 0, NULL, "HTTP basic auth user; empty for none" },
    { "password", CFG_STR, "", 0, 0, NULL, "HTTP basic auth password (never logged)" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* The route's options, copied at open(); read-only afterwards. */
typedef struct mm7_route {
    char *url, *vaspid, *vasid, *service_code, *sender, *version, *ns, *user, *password;
    int max_recipients;
    int delivery_report;
    int e164;
} mm7_route;

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- building ---------------------------------------------------------- */

typedef hbuf buf;

static void b_add(buf *b, const char *s, size_t n) { hbuf_add(b, s, n); }

static void b_puts(buf *b, const char *s) { b_add(b, s, strlen(s)); }

/* Text content of an element, XML-escaped. */
static void b_xml(buf *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': b_puts(b, "&lt;"); break;
        case '>': b_puts(b, "&gt;"); break;
        case '&': b_puts(b, "&amp;"); break;
        case '"': b_puts(b, "&quot;"); break;
        case '\'': b_puts(b, "&apos;"); break;
        default: b_add(b, s, 1);
        }
    }
}

static void b_elem(buf *b, const char *name, const char *value)
{
    b_puts(b, "<"); b_puts(b, name); b_puts(b, ">");
    b_xml(b, value);
    b_puts(b, "</"); b_puts(b, name); b_puts(b, ">\r\n");
}

/* A short code is all digits; a number starts with '+'. */
static void b_address(buf *b, const char *addr)
{
    b_puts(b, addr[0] == '+' ? "<Number>" : "<ShortCode>");
    b_xml(b, addr);
    b_puts(b, addr[0] == '+' ? "</Number>" : "</ShortCode>");
}

static void b_envelope_head(buf *b, const char *ns, const char *txid)
{
    b_puts(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n"
              "<env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\">\r\n"
              "<env:Header>\r\n<mm7:TransactionID xmlns:mm7=\"");
    b_xml(b, ns);
    b_puts(b, "\" env:mustUnderstand=\"1\">");
    b_xml(b, txid);
    b_puts(b, "</mm7:TransactionID>\r\n</env:Header>\r\n<env:Body>\r\n");
}

int mm7_build_submit(const mm7_submit *s, char **body, size_t *len,
                     char *ctype, size_t ctlen, char *err, size_t errlen)
{
    *body = NULL;
    *len = 0;
    if (s->nto <= 0)
        return fail(err, errlen, "SubmitReq without recipients");
    if (!s->content || !s->content_len || !s->content_type || !*s->content_type)
        return fail(err, errlen, "SubmitReq without content");
    buf env = { 0 };
    b_envelope_head(&env, s->ns, s->transaction_id);
    b_puts(&env, "<SubmitReq xmlns=\"");
    b_xml(&env, s->ns);
    b_puts(&env, "\">\r\n");
    b_elem(&env, "MM7Version", s->version);
    b_puts(&env, "<SenderIdentification>\r\n");
    b_elem(&env, "VASPID", s->vaspid);
    b_elem(&env, "VASID", s->vasid);
    if (s->sender && *s->sender) {
        b_puts(&env, "<SenderAddress>");
        b_address(&env, s->sender);
        b_puts(&env, "</SenderAddress>\r\n");
    }
    b_puts(&env, "</SenderIdentification>\r\n<Recipients>\r\n<To>\r\n");
    for (int i = 0; i < s->nto; i++) {
        b_puts(&env, "<Number>");
        b_xml(&env, s->to[i]);
        b_puts(&env, "</Number>\r\n");
    }
    b_puts(&env, "</To>\r\n</Recipients>\r\n");
    b_elem(&env, "ServiceCode", s->service_code);
    b_elem(&env, "DeliveryReport", s->delivery_report ? "true" : "false");
    b_elem(&env, "Subject", s->subject ? s->subject : "");
    b_puts(&env, "<Content href=\"cid:mm7-content\" allowAdaptations=\"false\"/>\r\n"
                 "</SubmitReq>\r\n</env:Body>\r\n</env:Envelope>\r\n");
    if (env.oom) {
        free(env.p);
        return fail(err, errlen, "out of memory");
    }

    /* The outer boundary must not occur in the content (which carries its
     * own, different boundary). */
    char boundary[160];
    int tries = 0;
    do {
        snprintf(boundary, sizeof boundary, "=_herald_mm7_%d_%.60s", tries, s->transaction_id);
        char delim[170];
        snprintf(delim, sizeof delim, "--%s", boundary);
        if (!memmem(s->content, s->content_len, delim, strlen(delim)) && !strstr(env.p, delim))
            break;
    } while (++tries < 50);
    if (tries >= 50 || strpbrk(boundary, "\"\r\n")) {
        free(env.p);
        return fail(err, errlen, "no usable MIME boundary for the SubmitReq");
    }
    buf b = { 0 };
    b_puts(&b, "--"); b_puts(&b, boundary);
    b_puts(&b, "\r\nContent-Type: text/xml; charset=utf-8\r\nContent-ID: <mm7-envelope>\r\n\r\n");
    b_add(&b, env.p, env.len);
    b_puts(&b, "\r\n--"); b_puts(&b, boundary);
    b_puts(&b, "\r\nContent-Type: "); b_puts(&b, s->content_type);
    b_puts(&b, "\r\nContent-ID: <mm7-content>\r\n\r\n");
    b_add(&b, s->content, s->content_len);
    b_puts(&b, "\r\n--"); b_puts(&b, boundary); b_puts(&b, "--\r\n");
    free(env.p);
    if (b.oom) {
        free(b.p);
        return fail(err, errlen, "out of memory");
    }
    snprintf(ctype, ctlen, "multipart/related; boundary=\"%s\"; type=\"text/xml\"; start=\"<mm7-envelope>\"",
             boundary);
    *body = b.p;
    *len = b.len;
    return 0;
}

/* ---- parsing: a tolerant element finder ------------------------------------
 * Answers come from many MMSC vendors with many namespace prefixes; we look
 * for elements by local name, whatever their prefix, and take their text.
 * Enough for the flat MM7 answers; not a general XML parser. */

/* Finds the first start tag whose local name is `name` in [p, end). Sets
 * *content to just after its '>' and returns 1, or 0. */
static int find_start(const char *p, const char *end, const char *name, const char **content,
                      const char **tag)
{
    size_t nl = strlen(name);
    for (; p < end; p++) {
        if (*p != '<' || p + 1 >= end || p[1] == '/' || p[1] == '?' || p[1] == '!')
            continue;
        const char *q = p + 1, *colon = NULL;
        const char *n = q;
        while (n < end && !isspace((unsigned char)*n) && *n != '>' && *n != '/') {
            if (*n == ':')
                colon = n;
            n++;
        }
        const char *local = colon ? colon + 1 : q;
        if ((size_t)(n - local) != nl || memcmp(local, name, nl) != 0)
            continue;
        const char *gt = memchr(n, '>', (size_t)(end - n));
        if (!gt)
            return 0;
        if (gt[-1] != '/' && gt + 1 >= end)         /* "<X>" as the last bytes */
            return 0;
        if (tag)
            *tag = p;
        *content = gt[-1] == '/' ? gt : gt + 1;   /* <X/>: empty */
        return 1;
    }
    return 0;
}

/* The end of the element whose content starts at c: the next "</...name>". */
static const char *find_end(const char *c, const char *end, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = c; p + 2 < end; p++) {
        if (p[0] != '<' || p[1] != '/')
            continue;
        const char *gt = memchr(p, '>', (size_t)(end - p));
        if (!gt)
            return NULL;
        const char *local = gt - nl;
        if (local >= p + 2 && memcmp(local, name, nl) == 0 && (local == p + 2 || local[-1] == ':'))
            return p;
    }
    return NULL;
}

/* Copies the text of element `name` inside [p, end) into out, trimmed and
 * with the five XML entities decoded. Returns 1 when found. */
static int elem_text(const char *p, const char *end, const char *name, char *out, size_t outlen)
{
    const char *c;
    out[0] = '\0';
    if (!find_start(p, end, name, &c, NULL))
        return 0;
    if (*c == '>')            /* empty element */
        return 1;
    const char *e = find_end(c, end, name);
    if (!e)
        return 0;
    while (c < e && isspace((unsigned char)*c))
        c++;
    while (e > c && isspace((unsigned char)e[-1]))
        e--;
    size_t k = 0;
    while (c < e && k + 1 < outlen) {
        static const struct { const char *ent; char ch; } ents[] = {
            { "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' }, { "&quot;", '"' }, { "&apos;", '\'' }
        };
        int done = 0;
        if (*c == '&')
            for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
                size_t l = strlen(ents[i].ent);
                if ((size_t)(e - c) >= l && memcmp(c, ents[i].ent, l) == 0) {
                    out[k++] = ents[i].ch;
                    c += l;
                    done = 1;
                    break;
                }
            }
        if (!done)
            out[k++] = *c++;
    }
    out[k] = '\0';
    return 1;
}

/* The range of element `name` (content only), or 0. */
static int elem_range(const char *p, const char *end, const char *name, const char **cs, const char **ce)
{
    const char *c;
    if (!find_start(p, end, name, &c, NULL) || *c == '>')
        return 0;
    const char *e = find_end(c, end, name);
    if (!e)
        return 0;
    *cs = c;
    *ce = e;
    return 1;
}

int mm7_parse_submit_rsp(const char *body, size_t len, mm7_rsp *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *end = body + len;
    char code[32];
    elem_text(body, end, "TransactionID", out->transaction_id, sizeof out->transaction_id);
    const char *fs, *fe;
    if (elem_range(body, end, "Fault", &fs, &fe)) {
        out->fault = 1;
        elem_text(fs, fe, "faultstring", out->fault_string, sizeof out->fault_string);
        /* the MM7 status sits in the detail (RSErrorRsp/Status, or a VASPErrorRsp) */
        if (elem_text(fs, fe, "StatusCode", code, sizeof code))
            out->status_code = atoi(code);
        elem_text(fs, fe, "StatusText", out->status_text, sizeof out->status_text);
        if (!out->status_code)
            out->status_code = 3000;   /* a Fault without a code: a server error */
        return 0;
    }
    const char *ss, *se;
    if (!elem_range(body, end, "Status", &ss, &se))
        return fail(err, errlen, "no SubmitRsp Status, Fault or RSErrorRsp in the answer");
    if (!elem_text(ss, se, "StatusCode", code, sizeof code) || !*code)
        return fail(err, errlen, "Status without StatusCode in the answer");
    char *num_end;
    out->status_code = (int)strtol(code, &num_end, 10);
    if (*num_end || out->status_code <= 0)
        return fail(err, errlen, "StatusCode '%.20s' is not a number", code);
    elem_text(ss, se, "StatusText", out->status_text, sizeof out->status_text);
    elem_text(body, end, "MessageID", out->message_id, sizeof out->message_id);
    if (!(elem_range(body, end, "RSErrorRsp", &ss, &se)) && out->status_code / 1000 == 1
        && !out->message_id[0])
        return fail(err, errlen, "SubmitRsp with StatusCode %d but no MessageID", out->status_code);
    return 0;
}

prov_status mm7_classify(int code)
{
    if (code == 1000 || code == 1100)
        return PROV_OK;
    if (code >= 2000 && code < 3000)
        return PROV_PERMANENT;
    if (code == 3000)
        return PROV_TRANSIENT;
    if (code > 3000 && code < 4000)
        return PROV_PERMANENT;
    if (code == 4006)
        return PROV_THROTTLED;
    if (code == 4000 || code == 4005)
        return PROV_TRANSIENT;
    if (code > 4000 && code < 5000)
        return PROV_PERMANENT;
    return PROV_TRANSIENT;
}

int mm7_parse_delivery_report(const char *body, size_t len, mm7_dlr *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *end = body + len, *ds, *de, *rs, *re;
    if (!elem_range(body, end, "DeliveryReportReq", &ds, &de))
        return fail(err, errlen, "no DeliveryReportReq element in the request");
    elem_text(body, end, "TransactionID", out->transaction_id, sizeof out->transaction_id);
    if (!elem_text(ds, de, "MessageID", out->message_id, sizeof out->message_id) || !out->message_id[0])
        return fail(err, errlen, "DeliveryReportReq without MessageID");
    if (!elem_range(ds, de, "Recipient", &rs, &re))
        return fail(err, errlen, "DeliveryReportReq without Recipient");
    if (!elem_text(rs, re, "Number", out->recipient, sizeof out->recipient)
        && !elem_text(rs, re, "ShortCode", out->recipient, sizeof out->recipient))
        return fail(err, errlen, "DeliveryReportReq Recipient without Number");
    if (elem_range(ds, de, "Sender", &rs, &re)
        && !elem_text(rs, re, "Number", out->sender, sizeof out->sender))
        elem_text(rs, re, "ShortCode", out->sender, sizeof out->sender);
    elem_text(ds, de, "Date", out->date, sizeof out->date);
    if (!elem_text(ds, de, "MMStatus", out->mm_status, sizeof out->mm_status) || !out->mm_status[0])
        return fail(err, errlen, "DeliveryReportReq without MMStatus");
    elem_text(ds, de, "StatusText", out->status_text, sizeof out->status_text);
    return 0;
}

const char *mm7_status_name(const char *s, int *final, int *ok)
{
    static const struct { const char *mm, *name; int final, ok; } map[] = {
        { "Retrieved", "retrieved", 1, 1 },     { "Forwarded", "forwarded", 1, 1 },
        { "Expired", "expired", 1, 0 },         { "Rejected", "rejected", 1, 0 },
        { "Deferred", "deferred", 0, 0 },       { "Indeterminate", "indeterminate", 0, 0 },
        { "NotSupported", "notsupported", 1, 0 }, { "Unrecognised", "unrecognized", 1, 0 },
        { "Unrecognized", "unrecognized", 1, 0 }, { "Unreachable", "unreachable", 1, 0 },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(s, map[i].mm) == 0) {
            *final = map[i].final;
            *ok = map[i].ok;
            return map[i].name;
        }
    *final = *ok = 0;
    return NULL;
}

int mm7_build_dlr_rsp(const char *ns, const char *version, const char *txid,
                      int code, const char *text, char **out, size_t *len)
{
    buf b = { 0 };
    char num[16];
    snprintf(num, sizeof num, "%d", code);
    b_envelope_head(&b, ns, txid);
    b_puts(&b, "<DeliveryReportRsp xmlns=\"");
    b_xml(&b, ns);
    b_puts(&b, "\">\r\n");
    b_elem(&b, "MM7Version", version);
    b_puts(&b, "<Status>\r\n");
    b_elem(&b, "StatusCode", num);
    b_elem(&b, "StatusText", text ? text : (code == 1000 ? "Success" : "Error"));
    b_puts(&b, "</Status>\r\n</DeliveryReportRsp>\r\n</env:Body>\r\n</env:Envelope>\r\n");
    if (b.oom) {
        free(b.p);
        *out = NULL;
        return -1;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

int mm7_handle_delivery_report(const char *body, size_t len, const char *ns, const char *version,
                               mm7_dlr *dlr, char **rsp, size_t *rsplen, int *http_status,
                               char *err, size_t errlen)
{
    ns = ns && *ns ? ns : MM7_DEFAULT_NS;
    version = version && *version ? version : MM7_DEFAULT_VERSION;
    int final, ok;
    if (mm7_parse_delivery_report(body, len, dlr, err, errlen) < 0) {
        *http_status = 400;
        mm7_build_dlr_rsp(ns, version, dlr->transaction_id, 4004, "Validation error", rsp, rsplen);
        return -1;
    }
    if (!mm7_status_name(dlr->mm_status, &final, &ok)) {
        fail(err, errlen, "unknown MMStatus '%.30s'", dlr->mm_status);
        *http_status = 400;
        mm7_build_dlr_rsp(ns, version, dlr->transaction_id, 4004, "Validation error", rsp, rsplen);
        return -1;
    }
    *http_status = 200;
    return mm7_build_dlr_rsp(ns, version, dlr->transaction_id, 1000, "Success", rsp, rsplen) < 0
           ? fail(err, errlen, "out of memory") : 0;
}

/* ---- the driver ---------------------------------------------------------- */

static void route_free(mm7_route *m)
{
    if (!m)
        return;
    free(m->url); free(m->vaspid); free(m->vasid); free(m->service_code); free(m->sender);
    free(m->version); free(m->ns); free(m->user); free(m->password);
    free(m);
}

static int mm7_open(prov_route *r, const config_setting_t *opts, char *err, size_t errlen)
{
    if (prov_check_options(r, opts, mm7_keys, err, errlen) < 0)
        return -1;
    const char *url = cfg_str(opts, mm7_keys, "url");
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return fail(err, errlen, "route '%s': mm7.url: '%s' is not an http:// or https:// URL", r->name, url);
    const char *fmt = cfg_str(opts, mm7_keys, "number_format");
    if (strcmp(fmt, "national") != 0 && strcmp(fmt, "e164") != 0)
        return fail(err, errlen, "route '%s': mm7.number_format: '%s' is not national or e164", r->name, fmt);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return fail(err, errlen, "route '%s': libcurl initialisation failed", r->name);
    mm7_route *m = calloc(1, sizeof *m);
    if (!m)
        return fail(err, errlen, "route '%s': out of memory", r->name);
    m->url = strdup(url);
    m->vaspid = strdup(cfg_str(opts, mm7_keys, "vaspid"));
    m->vasid = strdup(cfg_str(opts, mm7_keys, "vasid"));
    m->service_code = strdup(cfg_str(opts, mm7_keys, "service_code"));
    m->sender = strdup(cfg_str(opts, mm7_keys, "sender_address"));
    m->version = strdup(cfg_str(opts, mm7_keys, "version"));
    m->ns = strdup(cfg_str(opts, mm7_keys, "namespace"));
    m->user = strdup(cfg_str(opts, mm7_keys, "username"));
    m->password = strdup(cfg_str(opts, mm7_keys, "password"));
    m->max_recipients = (int)cfg_int(opts, mm7_keys, "max_recipients");
    m->delivery_report = cfg_bool(opts, mm7_keys, "delivery_report");
    m->e164 = strcmp(fmt, "e164") == 0;
    if (!m->url || !m->vaspid || !m->vasid || !m->service_code || !m->sender || !m->version
        || !m->ns || !m->user || !m->password) {
        route_free(m);
        return fail(err, errlen, "route '%s': out of memory", r->name);
    }
    r->priv = m;
    return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    buf *b = ud;
    size_t len = size * n;
    if (b->len + len > RSP_MAX)
        return 0;                    /* curl stops: CURLE_WRITE_ERROR */
    b_add(b, data, len);
    return b->oom ? 0 : len;
}

static void set_result(prov_result *res, prov_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_result(prov_result *res, prov_status st, const char *fmt, ...)
{
    res->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
}

static int mm7_send(prov_route *r, const prov_msg *msg, prov_result *res)
{
    mm7_route *m = r->priv;
    res->status = PROV_PERMANENT;
    if (!msg->mms_body || !msg->mms_len) {
        set_result(res, PROV_PERMANENT, "route %s sends MMS only (driver mm7)", r->name);
        return 0;
    }
    const char *one[1] = { msg->to };
    const char *const *to = msg->nrecipients > 0 ? msg->recipients : one;
    int nto = msg->nrecipients > 0 ? msg->nrecipients : 1;
    if (nto > m->max_recipients) {
        set_result(res, PROV_PERMANENT, "%d recipients in one request; mm7.max_recipients is %d",
                   nto, m->max_recipients);
        return 0;
    }
    const char **addr = calloc((size_t)nto, sizeof *addr);
    if (!addr) {
        set_result(res, PROV_TRANSIENT, "out of memory");
        return 0;
    }
    for (int i = 0; i < nto; i++)
        addr[i] = m->e164 ? to[i] : phone_national(to[i]);
    char txid[96], ctype[300], err[256];
    snprintf(txid, sizeof txid, "%s-%d", msg->id, msg->attempt);
    mm7_submit s = {
        .transaction_id = txid, .ns = m->ns, .version = m->version, .vaspid = m->vaspid,
        .vasid = m->vasid, .service_code = m->service_code, .sender = m->sender,
        .to = addr, .nto = nto, .subject = msg->subject, .delivery_report = m->delivery_report,
        .content_type = msg->mms_type, .content = msg->mms_body, .content_len = msg->mms_len,
    };
    char *body = NULL;
    size_t len = 0;
    int built = mm7_build_submit(&s, &body, &len, ctype, sizeof ctype, err, sizeof err);
    free(addr);
    if (built < 0) {
        set_result(res, PROV_PERMANENT, "building the SubmitReq: %s", err);
        return 0;
    }

    CURL *c = curl_easy_init();
    buf rsp = { 0 };
    char cerr[CURL_ERROR_SIZE] = "";
    char hct[340];
    snprintf(hct, sizeof hct, "Content-Type: %s", ctype);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, hct);
    h = curl_slist_append(h, "SOAPAction: \"\"");
    h = curl_slist_append(h, "Expect:");
    if (!c || !h) {
        set_result(res, PROV_TRANSIENT, "libcurl: out of memory");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, m->url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &rsp);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);          /* threads: no SIGALRM for DNS */
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(r->send_timeout_ms > 0 ? r->send_timeout_ms : 60000));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "herald-mm7/0.1");
    if (m->user[0]) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, m->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, m->password);
    }
    CURLcode cc = curl_easy_perform(c);
    long http = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
    if (cc != CURLE_OK) {
        /* Refused or unresolved: nothing left. Broken after the request
         * went out: the MMSC may have taken it. */
        int not_sent = cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST
                       || cc == CURLE_COULDNT_RESOLVE_PROXY || cc == CURLE_SSL_CONNECT_ERROR;
        set_result(res, not_sent ? PROV_TRANSIENT : PROV_UNCERTAIN, "MM7 %s: %s",
                   not_sent ? "not sent" : "perhaps sent", cerr[0] ? cerr : curl_easy_strerror(cc));
        goto out;
    }
    mm7_rsp sr;
    if (mm7_parse_submit_rsp(rsp.p ? rsp.p : "", rsp.len, &sr, err, sizeof err) < 0) {
        prov_status st = http == 429 ? PROV_THROTTLED : http >= 500 ? PROV_TRANSIENT
                       : http == 401 || http == 403 ? PROV_PERMANENT : PROV_TRANSIENT;
        set_result(res, st, "MM7 HTTP %ld: %s", http, err);
        goto out;
    }
    prov_status st = mm7_classify(sr.status_code);
    if (st == PROV_OK) {
        res->status = PROV_OK;
        res->parts_sent = 1;
        snprintf(res->refs, sizeof res->refs, "%s", sr.message_id);
        gw_log(LOG_DEBUG, r->name, "SubmitRsp %d for %s: MessageID %s", sr.status_code, txid, sr.message_id);
    } else {
        set_result(res, st, "MM7 %s%d %s%s%s", sr.fault ? "Fault " : "", sr.status_code,
                   sr.status_text[0] ? sr.status_text : sr.fault_string,
                   sr.fault && sr.status_text[0] && sr.fault_string[0] ? ": " : "",
                   sr.fault && sr.status_text[0] ? sr.fault_string : "");
    }
out:
    curl_slist_free_all(h);
    if (c)
        curl_easy_cleanup(c);
    free(rsp.p);
    free(body);
    return 0;
}

static void mm7_health(prov_route *r, prov_health *h)
{
    h->up = 1;
    h->signal_percent = -1;
    snprintf(h->state, sizeof h->state, "mm7");
}

static void mm7_close(prov_route *r)
{
    route_free(r->priv);
    r->priv = NULL;
}

const prov_driver prov_mm7 = {
    .name = "mm7",
    .caps = PROV_CAP_MMS | PROV_CAP_DLR,
    .keys = mm7_keys,
    .open = mm7_open,
    .send = mm7_send,
    .poll_inbound = NULL,
    .health = mm7_health,
    .close = mm7_close,
};
