/* mmsc_emu.c -- an MMSC stand-in for the bulletin tests: MM7 on loopback.
 *
 *   mmsc_emu DIR [MAX_RUNTIME_S]
 *
 * Listens on 127.0.0.1 on a free port and writes the port to DIR/port.
 *
 * POST /mm7   a SubmitReq. The emulator checks what it receives and
 *   records each accepted request in DIR/req/<n>/:
 *     - HTTP Content-Type multipart/related with type="text/xml",
 *       start=<cid> and a boundary; the start part is the SOAP envelope;
 *     - the envelope: Envelope, Header, TransactionID with
 *       mustUnderstand="1", SubmitReq in the MM7 namespace, MM7Version,
 *       SenderIdentification with VASPID, VASID and SenderAddress,
 *       Recipients/To/Number, ServiceCode, DeliveryReport, Subject,
 *       Content href="cid:X" where X names a part;
 *     - the content (part X): multipart/related with start= the SMIL part;
 *       every cid: in the SMIL names a part and every part is named.
 *   Files: envelope.xml, content.smil, one file per content part named by
 *   its Content-ID (s1.txt, s2.jpg...), recipients (one number a line),
 *   subject, txid, mid. DIR/log gets "n txid mid recipients" per request;
 *   DIR/errors gets one line per refused request (the test expects none).
 *   The answer depends on the mode (POST /control?mode=...):
 *     success      SubmitRsp 1000 with MessageID "mid-<n>" (default)
 *     fault:CODE   HTTP 500, SOAP Fault whose detail is RSErrorRsp CODE
 *     fault1:CODE  the same for the next request only, then success
 *     rserror:CODE HTTP 200, SubmitRsp with Status CODE (no Fault)
 *     slow:MS      wait MS ms, then success
 *     reset        close the connection without an answer
 *
 * GET /dlr?mid=M&to=N&status=S[&txid=T]  answers a DeliveryReportReq for
 *   MessageID M, recipient N, MMStatus S (what an MMSC would POST back; the
 *   test feeds it to `herald bulletin dlr`). With &post=URL the emulator
 *   POSTs it to URL itself and answers with what it got back.
 *
 * Stops on SIGTERM/SIGINT or after MAX_RUNTIME_S (default 300). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <curl/curl.h>
#include <microhttpd.h>

/* Paths and messages here are short; a truncated one would only make a
 * test fail loudly, so the truncation warnings are not worth buffers. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#define BODY_MAX (8 * 1024 * 1024)
#define MAX_PARTS 64

static const char *dir;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char mode[64] = "success";
static int nreq;
static volatile sig_atomic_t stop;

typedef struct req {
    char *body;
    size_t len, cap;
    int too_big;
} req;

typedef struct part {
    char cid[128];
    char type[512];
    const char *body;
    size_t len;
} part;

static void on_signal(int s) { (void)s; stop = 1; }

static void append_line(const char *file, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append_line(const char *file, const char *fmt, ...)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "a");
    if (!f)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

static void write_file(const char *d, const char *name, const void *b, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", d, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(b, 1, n, f);
        fclose(f);
    }
}

/* A parameter of a header value: name="v" or name=v. */
static int header_param(const char *h, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name);
    for (const char *p = h; (p = strstr(p, name)); p += nl) {
        if (p > h && p[-1] != ' ' && p[-1] != ';' && p[-1] != '\t')
            continue;
        const char *v = p + nl;
        while (*v == ' ')
            v++;
        if (*v != '=')
            continue;
        v++;
        while (*v == ' ')
            v++;
        size_t k = 0;
        if (*v == '"') {
            v++;
            while (*v && *v != '"' && k + 1 < len)
                out[k++] = *v++;
        } else {
            while (*v && *v != ';' && *v != ' ' && k + 1 < len)
                out[k++] = *v++;
        }
        out[k] = '\0';
        return 1;
    }
    return 0;
}

/* Strips <>. */
static void bare(char *s)
{
    size_t l = strlen(s);
    if (l >= 2 && s[0] == '<' && s[l - 1] == '>') {
        memmove(s, s + 1, l - 2);
        s[l - 2] = '\0';
    }
}

/* Splits a multipart body into parts. Returns the count or -1 with why. */
static int split(const char *b, size_t len, const char *boundary, part *parts, int max, char *why, size_t wl)
{
    char delim[300];
    snprintf(delim, sizeof delim, "--%s", boundary);
    size_t dl = strlen(delim);
    const char *end = b + len;
    const char *p = memmem(b, len, delim, dl);
    int n = 0;
    if (!p) {
        snprintf(why, wl, "boundary '%s' not found", boundary);
        return -1;
    }
    for (;;) {
        p += dl;
        if (p + 2 <= end && p[0] == '-' && p[1] == '-')
            return n;                                   /* closing delimiter */
        if (p + 2 > end || p[0] != '\r' || p[1] != '\n') {
            snprintf(why, wl, "delimiter not followed by CRLF");
            return -1;
        }
        p += 2;
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hend) {
            snprintf(why, wl, "part %d without the blank line after its headers", n + 1);
            return -1;
        }
        if (n == max) {
            snprintf(why, wl, "more than %d parts", max);
            return -1;
        }
        part *pt = &parts[n];
        memset(pt, 0, sizeof *pt);
        for (const char *h = p; h < hend;) {
            const char *le = memmem(h, (size_t)(hend + 2 - h), "\r\n", 2);
            if (!le)
                le = hend;
            size_t hl = (size_t)(le - h);
            if (hl > 13 && !strncasecmp(h, "Content-Type:", 13))
                snprintf(pt->type, sizeof pt->type, "%.*s", (int)(hl - 13), h + 13);
            else if (hl > 11 && !strncasecmp(h, "Content-ID:", 11))
                snprintf(pt->cid, sizeof pt->cid, "%.*s", (int)(hl - 11), h + 11);
            h = le + 2;
        }
        char *t = pt->type;
        while (*t == ' ')
            memmove(t, t + 1, strlen(t));
        t = pt->cid;
        while (*t == ' ')
            memmove(t, t + 1, strlen(t));
        bare(pt->cid);
        pt->body = hend + 4;
        char crdelim[304];
        snprintf(crdelim, sizeof crdelim, "\r\n%s", delim);
        const char *next = memmem(pt->body, (size_t)(end - pt->body), crdelim, strlen(crdelim));
        if (!next) {
            snprintf(why, wl, "part %d not closed by the boundary", n + 1);
            return -1;
        }
        pt->len = (size_t)(next - pt->body);
        n++;
        p = next + 2;
    }
}

static const part *find_part(const part *ps, int n, const char *cid)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ps[i].cid, cid) == 0)
            return &ps[i];
    return NULL;
}

/* Text of the first element with this local name (any prefix). */
static int elem(const char *x, size_t len, const char *name, char *out, size_t ol)
{
    const char *end = x + len;
    for (const char *p = x; p < end; p++) {
        if (*p != '<' || p[1] == '/')
            continue;
        const char *q = p + 1;
        while (q < end && *q != '>' && *q != ' ' && *q != '/')
            q++;
        size_t nl = strlen(name);
        if ((size_t)(q - p - 1) < nl || memcmp(q - nl, name, nl) != 0
            || !((q - nl == p + 1) || q[-(long)nl - 1] == ':'))
            continue;
        const char *gt = memchr(q, '>', (size_t)(end - q));
        if (!gt)
            return 0;
        if (out) {
            const char *c = gt + 1, *e = c;
            while (e < end && *e != '<')
                e++;
            snprintf(out, ol, "%.*s", (int)(gt[-1] == '/' ? 0 : e - c), c);
        }
        return 1;
    }
    return 0;
}

/* The start tag (attributes) of the first element with this local name. */
static int elem_tag(const char *x, size_t len, const char *name, char *out, size_t ol)
{
    const char *end = x + len;
    for (const char *p = x; p < end; p++) {
        if (*p != '<' || p[1] == '/')
            continue;
        const char *q = p + 1;
        while (q < end && *q != '>' && *q != ' ' && *q != '/')
            q++;
        size_t nl = strlen(name);
        if ((size_t)(q - p - 1) < nl || memcmp(q - nl, name, nl) != 0
            || !((q - nl == p + 1) || q[-(long)nl - 1] == ':'))
            continue;
        const char *gt = memchr(q, '>', (size_t)(end - q));
        if (!gt)
            return 0;
        snprintf(out, ol, "%.*s", (int)(gt - p + 1), p);
        return 1;
    }
    return 0;
}

/* Checks a SubmitReq; on success records it and fills txid and n. */
static int check_submit(struct MHD_Connection *c, req *r, char *txid, size_t tl, int *num,
                        char *why, size_t wl)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    char boundary[256], start[256], type[64];
    if (!ct || strncasecmp(ct, "multipart/related", 17) != 0)
        return snprintf(why, wl, "Content-Type is not multipart/related: %s", ct ? ct : "(none)"), -1;
    if (!header_param(ct, "boundary", boundary, sizeof boundary))
        return snprintf(why, wl, "no boundary"), -1;
    if (!header_param(ct, "type", type, sizeof type) || strcmp(type, "text/xml") != 0)
        return snprintf(why, wl, "type parameter is not text/xml"), -1;
    if (!header_param(ct, "start", start, sizeof start))
        return snprintf(why, wl, "no start parameter"), -1;
    bare(start);
    if (!MHD_lookup_connection_value(c, MHD_HEADER_KIND, "SOAPAction"))
        return snprintf(why, wl, "no SOAPAction header"), -1;
    part outer[MAX_PARTS];
    int no = split(r->body, r->len, boundary, outer, MAX_PARTS, why, wl);
    if (no < 0)
        return -1;
    const part *env = find_part(outer, no, start);
    if (!env)
        return snprintf(why, wl, "no part with the start Content-ID <%s>", start), -1;
    if (env != &outer[0])
        return snprintf(why, wl, "the envelope is not the first part"), -1;
    if (strncasecmp(env->type, "text/xml", 8) != 0)
        return snprintf(why, wl, "envelope part type %s", env->type), -1;
    static const char *const required[] = { "Envelope", "Header", "Body", "SubmitReq", "MM7Version",
        "SenderIdentification", "VASPID", "VASID", "SenderAddress", "Recipients", "To", "Number",
        "ServiceCode", "DeliveryReport", "Subject", "Content", NULL };
    for (const char *const *e = required; *e; e++)
        if (!elem(env->body, env->len, *e, NULL, 0))
            return snprintf(why, wl, "envelope without %s", *e), -1;
    char tag[1024], href[256];
    if (!elem_tag(env->body, env->len, "TransactionID", tag, sizeof tag) || !strstr(tag, "mustUnderstand=\"1\""))
        return snprintf(why, wl, "TransactionID missing or without mustUnderstand=\"1\""), -1;
    elem(env->body, env->len, "TransactionID", txid, tl);
    if (!*txid)
        return snprintf(why, wl, "empty TransactionID"), -1;
    if (!elem_tag(env->body, env->len, "SubmitReq", tag, sizeof tag) || !strstr(tag, "xmlns=\"http"))
        return snprintf(why, wl, "SubmitReq without its MM7 namespace"), -1;
    elem_tag(env->body, env->len, "Content", tag, sizeof tag);
    if (!header_param(tag + 1, "href", href, sizeof href) || strncmp(href, "cid:", 4) != 0)
        return snprintf(why, wl, "Content without href=\"cid:...\""), -1;
    const part *content = find_part(outer, no, href + 4);
    if (!content)
        return snprintf(why, wl, "Content href %s names no part", href), -1;

    char ib[256], istart[256];
    if (!header_param(content->type, "boundary", ib, sizeof ib) || strncasecmp(content->type, "multipart/related", 17))
        return snprintf(why, wl, "content is not multipart/related with a boundary: %s", content->type), -1;
    if (!header_param(content->type, "start", istart, sizeof istart))
        return snprintf(why, wl, "content without start="), -1;
    bare(istart);
    part inner[MAX_PARTS];
    int ni = split(content->body, content->len, ib, inner, MAX_PARTS, why, wl);
    if (ni < 0)
        return -1;
    const part *smil = find_part(inner, ni, istart);
    if (!smil || strncasecmp(smil->type, "application/smil", 16) != 0)
        return snprintf(why, wl, "content start <%s> is not a SMIL part", istart), -1;
    /* every cid: in the SMIL resolves; every other part is referenced */
    int referenced[MAX_PARTS] = { 0 };
    const char *s = smil->body, *se = smil->body + smil->len;
    int nref = 0;
    while ((s = memmem(s, (size_t)(se - s), "cid:", 4))) {
        s += 4;
        const char *e = s;
        while (e < se && *e != '"' && *e != '\'')
            e++;
        char cid[128];
        snprintf(cid, sizeof cid, "%.*s", (int)(e - s), s);
        const part *p = find_part(inner, ni, cid);
        if (!p)
            return snprintf(why, wl, "SMIL references cid:%s, which is no part", cid), -1;
        referenced[p - inner] = 1;
        nref++;
    }
    if (!strstr(smil->body, "<par") || !strstr(smil->body, "region id=\"Image\"")
        || !strstr(smil->body, "region id=\"Text\""))
        return snprintf(why, wl, "SMIL without par or without the Image and Text regions"), -1;
    for (int i = 0; i < ni; i++)
        if (&inner[i] != smil && !referenced[i])
            return snprintf(why, wl, "part <%s> is not referenced by the SMIL", inner[i].cid), -1;

    /* record */
    pthread_mutex_lock(&lock);
    int n = ++nreq;
    pthread_mutex_unlock(&lock);
    char d[1024];
    snprintf(d, sizeof d, "%s/req/%d", dir, n);
    mkdir(d, 0755);
    write_file(d, "envelope.xml", env->body, env->len);
    write_file(d, "content.smil", smil->body, smil->len);
    for (int i = 0; i < ni; i++)
        if (&inner[i] != smil && !strchr(inner[i].cid, '/'))
            write_file(d, inner[i].cid, inner[i].body, inner[i].len);
    char subject[512];
    elem(env->body, env->len, "Subject", subject, sizeof subject);
    write_file(d, "subject", subject, strlen(subject));
    write_file(d, "txid", txid, strlen(txid));
    /* recipients: every Number inside To */
    char rc[8192] = "";
    size_t rl = 0;
    int nr = 0;
    const char *to = strstr(env->body, "<To>");
    const char *toe = to ? strstr(to, "</To>") : NULL;
    for (const char *p = to; p && p < toe && (p = strstr(p, "<Number>")) && p < toe; p += 8) {
        const char *e = strstr(p, "</Number>");
        if (!e)
            break;
        rl += (size_t)snprintf(rc + rl, sizeof rc - rl, "%.*s\n", (int)(e - p - 8), p + 8);
        nr++;
    }
    write_file(d, "recipients", rc, rl);
    char mid[64];
    snprintf(mid, sizeof mid, "mid-%d", n);
    write_file(d, "mid", mid, strlen(mid));
    append_line("log", "%d %s %s %d", n, txid, mid, nr);
    *num = n;
    (void)nref;
    return 0;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *body)
{
    struct MHD_Response *rsp = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                               MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(rsp, "Content-Type", "text/xml; charset=utf-8");
    enum MHD_Result r = MHD_queue_response(c, status, rsp);
    MHD_destroy_response(rsp);
    return r;
}

#define NS "http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-6-MM7-1-4"
#define ENV_HEAD(tx) \
    "<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\">" \
    "<soap:Header><mm7:TransactionID xmlns:mm7=\"" NS "\" soap:mustUnderstand=\"1\">"

static enum MHD_Result submit_answer(struct MHD_Connection *c, const char *txid, int n, int code)
{
    char b[2048];
    if (code == 1000)
        snprintf(b, sizeof b, ENV_HEAD() "%s</mm7:TransactionID></soap:Header><soap:Body>"
                 "<mm7:SubmitRsp xmlns:mm7=\"" NS "\"><mm7:MM7Version>6.8.0</mm7:MM7Version>"
                 "<mm7:Status><mm7:StatusCode>1000</mm7:StatusCode><mm7:StatusText>Success</mm7:StatusText>"
                 "</mm7:Status><mm7:MessageID>mid-%d</mm7:MessageID></mm7:SubmitRsp></soap:Body></soap:Envelope>",
                 txid, n);
    else
        snprintf(b, sizeof b, ENV_HEAD() "%s</mm7:TransactionID></soap:Header><soap:Body>"
                 "<mm7:SubmitRsp xmlns:mm7=\"" NS "\"><mm7:MM7Version>6.8.0</mm7:MM7Version>"
                 "<mm7:Status><mm7:StatusCode>%d</mm7:StatusCode><mm7:StatusText>emulated %d</mm7:StatusText>"
                 "</mm7:Status></mm7:SubmitRsp></soap:Body></soap:Envelope>", txid, code, code);
    return answer(c, 200, b);
}

static enum MHD_Result fault_answer(struct MHD_Connection *c, const char *txid, int code)
{
    char b[2048];
    snprintf(b, sizeof b, ENV_HEAD() "%s</mm7:TransactionID></soap:Header><soap:Body><soap:Fault>"
             "<faultcode>soap:%s</faultcode><faultstring>emulated fault %d</faultstring><detail>"
             "<mm7:RSErrorRsp xmlns:mm7=\"" NS "\"><mm7:MM7Version>6.8.0</mm7:MM7Version><mm7:Status>"
             "<mm7:StatusCode>%d</mm7:StatusCode><mm7:StatusText>emulated %d</mm7:StatusText>"
             "</mm7:Status></mm7:RSErrorRsp></detail></soap:Fault></soap:Body></soap:Envelope>",
             txid, code < 3000 ? "Client" : "Server", code, code, code);
    return answer(c, 500, b);
}

static size_t sink_cb(char *d, size_t s, size_t n, void *ud)
{
    req *r = ud;
    size_t l = s * n;
    if (r->len + l + 1 > r->cap) {
        size_t cap = (r->len + l + 1) * 2;
        char *p = realloc(r->body, cap);
        if (!p)
            return 0;
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, d, l);
    r->len += l;
    r->body[r->len] = '\0';
    return l;
}

static enum MHD_Result dlr(struct MHD_Connection *c)
{
    const char *mid = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mid");
    const char *to = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "to");
    const char *st = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status");
    const char *tx = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "txid");
    const char *post = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "post");
    if (!mid || !to || !st)
        return answer(c, 400, "mid, to and status are required");
    char b[4096];
    snprintf(b, sizeof b, ENV_HEAD() "%s</mm7:TransactionID></soap:Header><soap:Body>"
             "<DeliveryReportReq xmlns=\"" NS "\"><MM7Version>6.8.0</MM7Version>"
             "<MMSRelayServerID>emu</MMSRelayServerID><MessageID>%s</MessageID>"
             "<Recipient><Number>%s</Number></Recipient><Sender><ShortCode>1065</ShortCode></Sender>"
             "<Date>2026-12-01T08:00:00+08:00</Date><MMStatus>%s</MMStatus><StatusText>emulated</StatusText>"
             "</DeliveryReportReq></soap:Body></soap:Envelope>", tx ? tx : "dlr-1", mid, to, st);
    if (!post)
        return answer(c, 200, b);
    CURL *h = curl_easy_init();
    req got = { 0 };
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: text/xml; charset=utf-8");
    curl_easy_setopt(h, CURLOPT_URL, post);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, b);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &got);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    CURLcode cc = curl_easy_perform(h);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    enum MHD_Result r = answer(c, cc == CURLE_OK ? 200 : 502, got.body ? got.body : curl_easy_strerror(cc));
    free(got.body);
    return r;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *data, size_t *size, void **con_cls)
{
    (void)cls;
    (void)version;
    req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*size) {
        if (r->len + *size > BODY_MAX)
            r->too_big = 1;
        else
            sink_cb((char *)data, 1, *size, r);
        *size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") == 0 && strcmp(url, "/dlr") == 0)
        return dlr(c);
    if (strcmp(method, "POST") == 0 && strcmp(url, "/control") == 0) {
        const char *m = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "mode");
        if (!m)
            return answer(c, 400, "mode?");
        pthread_mutex_lock(&lock);
        snprintf(mode, sizeof mode, "%s", m);
        pthread_mutex_unlock(&lock);
        return answer(c, 200, "ok");
    }
    if (strcmp(method, "POST") != 0 || strcmp(url, "/mm7") != 0)
        return answer(c, 404, "not here");
    char m[64];
    pthread_mutex_lock(&lock);
    snprintf(m, sizeof m, "%s", mode);
    pthread_mutex_unlock(&lock);
    if (strcmp(m, "reset") == 0)
        return MHD_NO;                      /* MHD closes the connection */
    char txid[256] = "", why[512] = "";
    int n = 0;
    if (r->too_big || !r->body || check_submit(c, r, txid, sizeof txid, &n, why, sizeof why) < 0) {
        append_line("errors", "%s", r->too_big ? "body too big" : why[0] ? why : "empty body");
        return fault_answer(c, txid, 4004);
    }
    if (strncmp(m, "slow:", 5) == 0) {
        long ms = atol(m + 5);
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (strncmp(m, "fault:", 6) == 0)
        return fault_answer(c, txid, atoi(m + 6));
    if (strncmp(m, "fault1:", 7) == 0) {          /* once, then success again */
        pthread_mutex_lock(&lock);
        snprintf(mode, sizeof mode, "success");
        pthread_mutex_unlock(&lock);
        return fault_answer(c, txid, atoi(m + 7));
    }
    if (strncmp(m, "rserror:", 8) == 0)
        return submit_answer(c, txid, n, atoi(m + 8));
    return submit_answer(c, txid, n, 1000);
}

static void done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
    (void)cls;
    (void)c;
    (void)t;
    req *r = *con_cls;
    if (r) {
        free(r->body);
        free(r);
    }
    *con_cls = NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: mmsc_emu DIR [MAX_RUNTIME_S]\n");
        return 2;
    }
    dir = argv[1];
    int max_s = argc > 2 ? atoi(argv[2]) : 300;
    char path[1024];
    snprintf(path, sizeof path, "%s/req", dir);
    mkdir(dir, 0755);
    mkdir(path, 0755);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                                            0, NULL, NULL, handler, NULL,
                                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                            MHD_OPTION_NOTIFY_COMPLETED, done, NULL,
                                            MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "mmsc_emu: cannot listen on 127.0.0.1\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s/port.tmp", dir);
    snprintf(path, sizeof path, "%s/port", dir);
    FILE *f = fopen(tmp, "w");
    if (!f || !info) {
        MHD_stop_daemon(d);
        return 1;
    }
    fprintf(f, "%u\n", (unsigned)info->port);
    fclose(f);
    rename(tmp, path);                     /* the test sees the whole port or none */
    for (int i = 0; i < max_s * 10 && !stop; i++) {
        struct timespec ts = { 0, 100000000L };
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(d);
    curl_global_cleanup();
    return 0;
}
