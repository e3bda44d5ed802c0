/* sink.c -- the "sink" driver: accepts every message and records it.
 *
 * For demos, tests and benchmarks: nothing leaves the machine. Example:
 *
 *   routes = ( { name = "demo"; driver = "sink";
 *                sink = { file = "run/sink.jsonl"; latency_ms = 200; }; } );
 *
 * Each accepted message becomes one JSON line in `file`:
 *   {"id":..,"to":..,"text":..,"parts":2,"encoding":"ucs2","family":..,
 *    "template":..,"attempt":1,"route":"demo","ref":"sink-7,sink-8",
 *    "at":1732680000123}
 * ("at" is milliseconds since the Unix epoch). Each line goes out in ONE
 * write() on an O_APPEND descriptor, so several processes (gateway
 * instances, a benchmark) can share the file without interleaving lines.
 * Messages that fail on purpose (fail, fail_first) are not recorded: the
 * file lists what a phone would have received.
 *
 * Threads: send() runs on many worker threads at once; the reference
 * counter is the only shared mutable state and sits under `lock`. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway/log.h"
#include "providers/provider.h"

typedef enum { FAIL_NONE, FAIL_TRANSIENT, FAIL_PERMANENT, FAIL_THROTTLED } fail_mode;

/* Owned by the route (route->priv), freed by sink_close(). */
typedef struct sink {
    int fd;                    /* -1 when no file */
    char *file;                /* copy of the path, for error messages */
    fail_mode fail;
    int fail_first;
    int latency_ms;
    pthread_mutex_t lock;      /* guards next_ref and sent */
    unsigned long long next_ref;
    unsigned long long sent;
} sink;

static const cfg_key sink_keys[] = {
    { "file", CFG_STR, "", 0, 0, NULL,
      "JSON-lines record of accepted messages (\"\" = none); shared safely by several processes" },
    { "fail", CFG_STR, "none", 0, 0, NULL,
      "none, transient, permanent or throttled: every send fails that way (tests)" },
    { "fail_first", CFG_INT, "0", 0, 1000, NULL,
      "fail the first N attempts of each message transiently, then succeed (tests)" },
    { "latency_ms", CFG_INT, "0", 0, 600000, NULL,
      "sleep this long in each send (demos)" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static int sink_open(prov_route *r, const config_setting_t *opts, char *err, size_t errlen)
{
    if (prov_check_options(r, opts, sink_keys, err, errlen) < 0)
        return -1;
    const char *mode = cfg_str(opts, sink_keys, "fail");
    fail_mode fm;
    if (strcmp(mode, "none") == 0)
        fm = FAIL_NONE;
    else if (strcmp(mode, "transient") == 0)
        fm = FAIL_TRANSIENT;
    else if (strcmp(mode, "permanent") == 0)
        fm = FAIL_PERMANENT;
    else if (strcmp(mode, "throttled") == 0)
        fm = FAIL_THROTTLED;
    else {
        snprintf(err, errlen, "route '%s': sink.fail: '%s' is not one of none, "
                 "transient, permanent, throttled", r->name, mode);
        return -1;
    }

    sink *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "route '%s': out of memory", r->name);
        return -1;
    }
    s->fd = -1;
    s->fail = fm;
    s->fail_first = (int)cfg_int(opts, sink_keys, "fail_first");
    s->latency_ms = (int)cfg_int(opts, sink_keys, "latency_ms");
    s->next_ref = 1;
    const char *file = cfg_str(opts, sink_keys, "file");
    if (*file) {
        s->file = strdup(file);
        s->fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (!s->file || s->fd < 0) {
            snprintf(err, errlen, "route '%s': sink.file: cannot open '%s': %s",
                     r->name, file, strerror(errno));
            if (s->fd >= 0)
                close(s->fd);
            free(s->file);
            free(s);
            return -1;
        }
    }
    pthread_mutex_init(&s->lock, NULL);
    r->priv = s;
    return 0;
}

/* A growing buffer for one JSON line; `ok` drops to 0 when out of memory. */
typedef struct jbuf {
    char *p;
    size_t len, cap;
    int ok;
} jbuf;

static void jb_put(jbuf *b, const char *s, size_t n)
{
    if (!b->ok)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->ok = 0;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void jb_puts(jbuf *b, const char *s) { jb_put(b, s, strlen(s)); }

/* Appends "key":"value" (value JSON-escaped; NULL becomes null). UTF-8
 * passes through unchanged; control characters become \u00XX. */
static void jb_str(jbuf *b, const char *key, const char *v, int first)
{
    char tmp[8];
    jb_puts(b, first ? "\"" : ",\"");
    jb_puts(b, key);
    jb_puts(b, "\":");
    if (!v) {
        jb_puts(b, "null");
        return;
    }
    jb_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        switch (*p) {
        case '"':  jb_puts(b, "\\\""); break;
        case '\\': jb_puts(b, "\\\\"); break;
        case '\n': jb_puts(b, "\\n"); break;
        case '\r': jb_puts(b, "\\r"); break;
        case '\t': jb_puts(b, "\\t"); break;
        default:
            if (*p < 0x20) {
                snprintf(tmp, sizeof tmp, "\\u%04x", *p);
                jb_puts(b, tmp);
            } else {
                jb_put(b, (const char *)p, 1);
            }
        }
    }
    jb_puts(b, "\"");
}

static void jb_int(jbuf *b, const char *key, long long v)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, ",\"%s\":%lld", key, v);
    jb_puts(b, tmp);
}

static void sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int sink_send(prov_route *r, const prov_msg *m, prov_result *res)
{
    sink *s = r->priv;
    if (s->latency_ms > 0)
        sleep_ms(s->latency_ms);

    res->parts_sent = 0;
    res->refs[0] = '\0';
    res->error[0] = '\0';
    if (s->fail != FAIL_NONE) {
        static const prov_status st[] = {
            [FAIL_TRANSIENT] = PROV_TRANSIENT,
            [FAIL_PERMANENT] = PROV_PERMANENT,
            [FAIL_THROTTLED] = PROV_THROTTLED,
        };
        res->status = st[s->fail];
        snprintf(res->error, sizeof res->error, "sink: configured to fail (%s)",
                 prov_status_name(res->status));
        return 0;
    }
    if (m->attempt <= s->fail_first) {
        res->status = PROV_TRANSIENT;
        snprintf(res->error, sizeof res->error,
                 "sink: failing attempt %d of the first %d (fail_first)",
                 m->attempt, s->fail_first);
        return 0;
    }

    int parts = m->parts > 0 ? m->parts : 1;
    unsigned long long first;
    pthread_mutex_lock(&s->lock);
    first = s->next_ref;
    s->next_ref += (unsigned long long)parts;
    s->sent++;
    pthread_mutex_unlock(&s->lock);

    /* refs: "sink-N" per part; stop at a part boundary if the buffer is full */
    size_t used = 0;
    for (int i = 0; i < parts; i++) {
        char one[32];
        int n = snprintf(one, sizeof one, "%s%s%llu", i ? "," : "", "sink-",
                         first + (unsigned long long)i);
        if (n < 0 || used + (size_t)n >= sizeof res->refs)
            break;
        memcpy(res->refs + used, one, (size_t)n + 1);
        used += (size_t)n;
    }

    if (s->fd >= 0) {
        jbuf b = { .ok = 1 };
        jb_puts(&b, "{");
        jb_str(&b, "id", m->id, 1);
        jb_str(&b, "to", m->to, 0);
        jb_str(&b, "text", m->text, 0);
        jb_int(&b, "parts", parts);
        jb_str(&b, "encoding", m->encoding, 0);
        jb_str(&b, "family", m->family, 0);
        jb_str(&b, "template", m->template_name, 0);
        jb_int(&b, "attempt", m->attempt);
        jb_str(&b, "route", r->name, 0);
        jb_str(&b, "ref", res->refs, 0);
        jb_int(&b, "at", prov_now_ms());
        jb_puts(&b, "}\n");
        ssize_t w = b.ok ? write(s->fd, b.p, b.len) : -1;
        int e = errno;
        if (w < 0 || (size_t)w != b.len) {
            /* A record that did not reach the file is a send that did not
             * happen, as far as anyone reading the file can tell. */
            res->status = PROV_TRANSIENT;
            snprintf(res->error, sizeof res->error, "sink: write to '%s' failed: %s",
                     s->file, w < 0 ? strerror(e) : b.ok ? "short write" : "out of memory");
            gw_log(LOG_WARN, r->name, "%s", res->error);
            res->refs[0] = '\0';
            free(b.p);
            return 0;
        }
        free(b.p);
    }
    res->status = PROV_OK;
    res->parts_sent = parts;
    return 0;
}

static void sink_health(prov_route *r, prov_health *h)
{
    sink *s = r->priv;
    pthread_mutex_lock(&s->lock);
    unsigned long long sent = s->sent;
    pthread_mutex_unlock(&s->lock);
    h->up = 1;
    h->signal_percent = -1;
    snprintf(h->state, sizeof h->state, "sink: %llu accepted", sent);
}

static void sink_close(prov_route *r)
{
    sink *s = r->priv;
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    pthread_mutex_destroy(&s->lock);
    free(s->file);
    free(s);
    r->priv = NULL;
}

const prov_driver prov_sink = {
    .name = "sink",
    .caps = PROV_CAP_SMS,   /* records text only: an MMS goes to an MMS route */
    .keys = sink_keys,
    .open = sink_open,
    .send = sink_send,
    .poll_inbound = NULL,
    .health = sink_health,
    .close = sink_close,
};
