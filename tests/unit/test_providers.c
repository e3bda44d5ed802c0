/* test_providers.c -- the driver registry, the sink driver, and the gammu
 * driver against libgammu's real dummy phone (a folder of smsbackup files).
 *
 * Nothing here needs a modem or a network: the dummy phone accepts every
 * send with reference 255, and inbound messages are injected as files into
 * <folder>/sms/1/ (written to a temporary name, then renamed). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/log.h"
#include "providers/gammu_rx.h"
#include "providers/provider.h"
#include "tests/unit/test.h"

/* ---- helpers ------------------------------------------------------------ */

/* Parses `text` (which defines a group `opts`) into cfg; returns that group,
 * or NULL when the text does not define it. The caller destroys cfg. */
static config_setting_t *opts_from(config_t *cfg, const char *text)
{
    config_init(cfg);
    if (config_read_string(cfg, text) != CONFIG_TRUE) {
        fprintf(stderr, "config: %s at line %d\n", config_error_text(cfg),
                config_error_line(cfg));
        return NULL;
    }
    return config_lookup(cfg, "opts");
}

static prov_route route_named(const char *name, const prov_driver *d)
{
    prov_route r;
    memset(&r, 0, sizeof r);
    snprintf(r.name, sizeof r.name, "%s", name);
    r.driver = d;
    r.send_timeout_ms = 10000;
    return r;
}

static prov_msg msg_make(const char *id, const char *to, const char *text, int parts, int attempt)
{
    prov_msg m = {
        .id = id, .to = to, .text = text, .encoding = "ucs2", .parts = parts,
        .family = "rights_notice", .template_name = "rights.accept",
        .provider_code = NULL, .vars_json = "{}", .attempt = attempt,
    };
    return m;
}

/* Reads a whole file into a malloc'd string ("" when missing). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    return buf;
}

static int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

static char *repeat(const char *unit, int n)
{
    size_t l = strlen(unit);
    char *s = malloc(l * (size_t)n + 1);
    for (int i = 0; i < n; i++)
        memcpy(s + l * (size_t)i, unit, l);
    s[l * (size_t)n] = '\0';
    return s;
}

/* UTF-8 (BMP only, enough for the tests) -> UCS-2 big-endian hex. */
static void ucs2_hex(const char *utf8, char *out, size_t outlen)
{
    const unsigned char *p = (const unsigned char *)utf8;
    size_t o = 0;
    while (*p && o + 5 < outlen) {
        unsigned cp;
        if (*p < 0x80) { cp = *p; p += 1; }
        else if ((*p & 0xE0) == 0xC0) { cp = ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu); p += 2; }
        else { cp = ((p[0] & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu); p += 3; }
        o += (size_t)snprintf(out + o, outlen - o, "%04X", cp);
    }
    out[o] = '\0';
}

/* Writes an smsbackup file into <dir>/sms/1/<n> via a temporary name.
 * `body` is the section's content after the [SMSBackup000] line. */
static void inject(const char *dir, int n, const char *body)
{
    char tmp[512], dst[512];
    snprintf(tmp, sizeof tmp, "%s/sms/inject.tmp", dir);
    snprintf(dst, sizeof dst, "%s/sms/1/%d", dir, n);
    FILE *f = fopen(tmp, "w");
    fprintf(f, "[SMSBackup000]\n%s", body);
    fclose(f);
    if (rename(tmp, dst) != 0)
        perror("rename");
}

/* One Deliver part; `udh` may be NULL. Text is split into 200-hex lines. */
static void inject_deliver(const char *dir, int n, const char *from, const char *udh,
                           const char *text_utf8)
{
    char hex[4096], body[8192];
    ucs2_hex(text_utf8, hex, sizeof hex);
    size_t o = (size_t)snprintf(body, sizeof body,
        "PDU = Deliver\nState = UnRead\nNumber = \"%s\"\nDateTime = 20261127T041156Z\n"
        "SMSC = \"+8613800100500\"\n", from);
    if (udh)
        o += (size_t)snprintf(body + o, sizeof body - o, "UDH = %s\n", udh);
    size_t hl = strlen(hex);
    for (size_t i = 0, line = 0; i < hl; i += 200, line++)
        o += (size_t)snprintf(body + o, sizeof body - o, "Text%02zu = %.200s\n", line, hex + i);
    snprintf(body + o, sizeof body - o, "Coding = Unicode_No_Compression\nFolder = 1\n");
    inject(dir, n, body);
}

static int file_exists(const char *dir, const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    return access(p, F_OK) == 0;
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", path);
}

/* ---- registry ----------------------------------------------------------- */

static void test_registry(void)
{
    char err[256];
    CHECK(prov_find_driver("gammu", err, sizeof err) == &prov_gammu);
    CHECK(prov_find_driver("sink", err, sizeof err) == &prov_sink);
    CHECK(prov_find_driver("mm7", err, sizeof err) == &prov_mm7);
    CHECK(prov_find_driver("aliyun", err, sizeof err) == &prov_aliyun);
    CHECK(prov_find_driver("nokia", err, sizeof err) == NULL);
    CHECK_STR(err, "unknown driver 'nokia' (known: gammu, sink, mm7, http, aliyun, tencent)");
    CHECK(prov_find_driver("", err, sizeof err) == NULL);
    CHECK(prov_find_driver(NULL, err, sizeof err) == NULL);

    int n = 0;
    for (const prov_driver *const *d = prov_drivers; *d; d++, n++) {
        CHECK((*d)->name && (*d)->open && (*d)->send && (*d)->close && (*d)->keys);
        CHECK(((*d)->poll_inbound != NULL) == (((*d)->caps & PROV_CAP_INBOUND) != 0));
    }
    CHECK_INT(n, 6);

    CHECK_STR(prov_status_name(PROV_OK), "ok");
    CHECK_STR(prov_status_name(PROV_TRANSIENT), "transient");
    CHECK_STR(prov_status_name(PROV_THROTTLED), "throttled");
    CHECK_STR(prov_status_name(PROV_PERMANENT), "permanent");
    CHECK_STR(prov_status_name(PROV_UNCERTAIN), "uncertain");
    CHECK_STR(prov_status_name((prov_status)99), "unknown");
}

/* ---- sink --------------------------------------------------------------- */

static int sink_open_with(prov_route *r, const char *conf, char *err, size_t errlen)
{
    config_t cfg;
    config_setting_t *o = opts_from(&cfg, conf);
    int rc = prov_sink.open(r, o, err, errlen);
    config_destroy(&cfg);               /* the driver keeps copies only */
    return rc;
}

static void test_sink_record(const char *dir)
{
    char file[512], conf[700], err[256];
    snprintf(file, sizeof file, "%s/sink.jsonl", dir);
    snprintf(conf, sizeof conf, "opts = { file = \"%s\"; };", file);
    prov_route r = route_named("demo", &prov_sink);
    CHECK_INT(sink_open_with(&r, conf, err, sizeof err), 0);

    prov_result res;
    prov_msg m = msg_make("m-1", "+8613800138000", "【XX检察】您的案件已受理", 2, 1);
    CHECK_INT(prov_sink.send(&r, &m, &res), 0);
    CHECK_INT(res.status, PROV_OK);
    CHECK_INT(res.parts_sent, 2);
    CHECK_STR(res.refs, "sink-1,sink-2");

    prov_msg q = msg_make("m-2", "+8613800138001", "say \"hi\"\n\\ok", 1, 3);
    q.template_name = NULL;
    CHECK_INT(prov_sink.send(&r, &q, &res), 0);
    CHECK_STR(res.refs, "sink-3");

    prov_health h;
    prov_sink.health(&r, &h);
    CHECK_INT(h.up, 1);
    CHECK_INT(h.signal_percent, -1);
    CHECK_HAS(h.state, "2 accepted");
    prov_sink.close(&r);
    CHECK(r.priv == NULL);

    char *all = slurp(file);
    CHECK_INT(count_char(all, '\n'), 2);
    CHECK_HAS(all, "{\"id\":\"m-1\",\"to\":\"+8613800138000\",\"text\":\"【XX检察】您的案件已受理\","
                   "\"parts\":2,\"encoding\":\"ucs2\",\"family\":\"rights_notice\","
                   "\"template\":\"rights.accept\",\"attempt\":1,\"route\":\"demo\","
                   "\"ref\":\"sink-1,sink-2\",\"at\":");
    CHECK_HAS(all, "\"text\":\"say \\\"hi\\\"\\n\\\\ok\"");
    CHECK_HAS(all, "\"template\":null,\"attempt\":3");
    free(all);
}

static void test_sink_fail_modes(void)
{
    static const struct { const char *mode; prov_status st; } cases[] = {
        { "transient", PROV_TRANSIENT },
        { "permanent", PROV_PERMANENT },
        { "throttled", PROV_THROTTLED },
    };
    char conf[200], err[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(conf, sizeof conf, "opts = { fail = \"%s\"; };", cases[i].mode);
        prov_route r = route_named("failing", &prov_sink);
        CHECK_INT(sink_open_with(&r, conf, err, sizeof err), 0);
        prov_result res;
        prov_msg m = msg_make("m", "+8613800138000", "x", 1, 1);
        prov_sink.send(&r, &m, &res);
        CHECK_INT(res.status, cases[i].st);
        CHECK_INT(res.parts_sent, 0);
        CHECK_STR(res.refs, "");
        CHECK_HAS(res.error, cases[i].mode);
        prov_sink.close(&r);
    }

    prov_route r = route_named("bad", &prov_sink);
    CHECK_INT(sink_open_with(&r, "opts = { fail = \"sometimes\"; };", err, sizeof err), -1);
    CHECK_HAS(err, "route 'bad'");
    CHECK_HAS(err, "sometimes");
    CHECK_INT(sink_open_with(&r, "opts = { colour = \"red\"; };", err, sizeof err), -1);
    CHECK_HAS(err, "opts.colour");
    CHECK_HAS(err, "unknown key");
    CHECK_INT(sink_open_with(&r, "opts = { latency_ms = \"fast\"; };", err, sizeof err), -1);
    CHECK_HAS(err, "latency_ms");
    CHECK_INT(sink_open_with(&r, "opts = { file = \"/nonexistent-dir/x.jsonl\"; };", err, sizeof err), -1);
    CHECK_HAS(err, "/nonexistent-dir/x.jsonl");

    /* an absent options group means all defaults */
    CHECK_INT(prov_sink.open(&r, NULL, err, sizeof err), 0);
    prov_sink.close(&r);
}

static void test_sink_fail_first(void)
{
    char err[256];
    prov_route r = route_named("flaky", &prov_sink);
    CHECK_INT(sink_open_with(&r, "opts = { fail_first = 2; latency_ms = 1; };", err, sizeof err), 0);
    prov_result res;
    for (int attempt = 1; attempt <= 3; attempt++) {
        prov_msg m = msg_make("m", "+8613800138000", "x", 1, attempt);
        prov_sink.send(&r, &m, &res);
        CHECK_INT(res.status, attempt <= 2 ? PROV_TRANSIENT : PROV_OK);
    }
    CHECK_STR(res.refs, "sink-1");
    /* another message starts again at attempt 1 */
    prov_msg m = msg_make("n", "+8613800138000", "x", 1, 1);
    prov_sink.send(&r, &m, &res);
    CHECK_INT(res.status, PROV_TRANSIENT);
    prov_sink.close(&r);
}

typedef struct { prov_route *r; int n; int ok; } sink_worker;

static void *sink_thread(void *arg)
{
    sink_worker *w = arg;
    for (int i = 0; i < w->n; i++) {
        prov_result res;
        prov_msg m = msg_make("c", "+8613800138000", "并发", 1, 1);
        prov_sink.send(w->r, &m, &res);
        w->ok += res.status == PROV_OK;
    }
    return NULL;
}

static void test_sink_threads(const char *dir)
{
    char file[512], conf[700], err[256];
    snprintf(file, sizeof file, "%s/sink-threads.jsonl", dir);
    snprintf(conf, sizeof conf, "opts = { file = \"%s\"; };", file);
    /* two routes on one file: as two processes would share it */
    prov_route r1 = route_named("a", &prov_sink), r2 = route_named("b", &prov_sink);
    CHECK_INT(sink_open_with(&r1, conf, err, sizeof err), 0);
    CHECK_INT(sink_open_with(&r2, conf, err, sizeof err), 0);
    pthread_t t[4];
    sink_worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (sink_worker){ i % 2 ? &r2 : &r1, 100, 0 };
        pthread_create(&t[i], NULL, sink_thread, &w[i]);
    }
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ok += w[i].ok;
    }
    CHECK_INT(ok, 400);
    prov_sink.close(&r1);
    prov_sink.close(&r2);
    char *all = slurp(file);
    CHECK_INT(count_char(all, '\n'), 400);
    /* every line whole: starts with {"id" and ends with } */
    int whole = 0;
    for (char *line = all, *nl; (nl = strchr(line, '\n')); line = nl + 1)
        whole += strncmp(line, "{\"id\":", 6) == 0 && nl[-1] == '}';
    CHECK_INT(whole, 400);
    CHECK_HAS(all, "\"ref\":\"sink-200\"");
    free(all);
}

/* ---- gammu with the dummy phone ----------------------------------------- */

typedef struct got {
    int messages, reports;
    char from[64];
    char text[2048];
    char joined[4096], keys[512];   /* every text / concat key, '|' / ';' after each */
    int part, parts;
    int ref, delivered;
    char detail[32];
} got;

static int on_message(const char *route, const prov_inbound *m, void *ud)
{
    got *g = ud;
    g->messages++;
    snprintf(g->from, sizeof g->from, "%s", m->from);
    snprintf(g->text, sizeof g->text, "%s", m->text);
    g->part = m->part;
    g->parts = m->parts;
    size_t l = strlen(g->joined);
    snprintf(g->joined + l, sizeof g->joined - l, "%s|", m->text);
    l = strlen(g->keys);
    snprintf(g->keys + l, sizeof g->keys - l, "%s;", m->concat_key ? m->concat_key : "");
    CHECK_STR(route, "modem1");
    CHECK(m->received_ms > 0);
    CHECK(m->identity != NULL);
    return 0;
}

static int on_report(const char *route, const prov_report *r, void *ud)
{
    got *g = ud;
    g->reports++;
    g->ref = r->ref;
    g->delivered = r->delivered;
    snprintf(g->detail, sizeof g->detail, "%s", r->detail);
    return 0;
}

static int gammu_open_with(prov_route *r, const char *conf, char *err, size_t errlen)
{
    config_t cfg;
    config_setting_t *o = opts_from(&cfg, conf);
    int rc = prov_gammu.open(r, o, err, errlen);
    config_destroy(&cfg);
    return rc;
}

typedef struct { prov_route *r; int ok; } gammu_worker;

static void *gammu_thread(void *arg)
{
    gammu_worker *w = arg;
    for (int i = 0; i < 5; i++) {
        prov_result res;
        prov_msg m = msg_make("t", "+8613800138000", "并发发送", 1, 1);
        prov_gammu.send(w->r, &m, &res);
        w->ok += res.status == PROV_OK && strcmp(res.refs, "255") == 0;
    }
    return NULL;
}

static void test_gammu_dummy(const char *base)
{
    char dir[512], conf[1024], err[256];
    /* the folder does not exist yet: open() creates it (mkdir -p) */
    snprintf(dir, sizeof dir, "%s/phone/a", base);
    snprintf(conf, sizeof conf,
             "opts = { model = \"dummy\"; connection = \"none\"; device = \"%s\"; "
             "poll_interval_ms = 0; };", dir);
    prov_route r = route_named("modem1", &prov_gammu);
    CHECK_INT(gammu_open_with(&r, conf, err, sizeof err), 0);
    if (!r.priv) {
        fprintf(stderr, "gammu open failed: %s\n", err);
        return;
    }

    /* 71 Chinese characters: UCS-2, 67 + 4, two parts */
    char *long_zh = repeat("检", 71);
    prov_result res;
    prov_msg m = msg_make("zh-1", "+8613800138000", long_zh, 2, 1);
    CHECK_INT(prov_gammu.send(&r, &m, &res), 0);
    CHECK_INT(res.status, PROV_OK);
    CHECK_INT(res.parts_sent, 2);
    CHECK_STR(res.refs, "255,255");
    CHECK_STR(res.error, "");
    free(long_zh);

    /* GSM 7-bit, one part (the count mismatch only logs a warning) */
    prov_msg g7 = msg_make("gsm-1", "+8613800138000", "Your case {2026} is accepted.", 2, 1);
    g7.encoding = "gsm7";
    CHECK_INT(prov_gammu.send(&r, &g7, &res), 0);
    CHECK_INT(res.status, PROV_OK);
    CHECK_INT(res.parts_sent, 1);
    CHECK_STR(res.refs, "255");

    /* 161 'a': two parts in 7-bit */
    char *a161 = repeat("a", 161);
    prov_msg a = msg_make("gsm-2", "+8613800138000", a161, 2, 1);
    prov_gammu.send(&r, &a, &res);
    CHECK_INT(res.status, PROV_OK);
    CHECK_STR(res.refs, "255,255");
    free(a161);

    /* '{' is an escape (2 septets) and moves whole to part 2: 152 + 11 */
    char *brace = repeat("a", 152);
    char buf[256];
    snprintf(buf, sizeof buf, "%s{bbbbbbbbbb", brace);
    prov_msg bm = msg_make("gsm-3", "+8613800138000", buf, 2, 1);
    prov_gammu.send(&r, &bm, &res);
    CHECK_INT(res.status, PROV_OK);
    CHECK_STR(res.refs, "255,255");
    free(brace);

    /* exactly 50 UCS-2 parts fit; one character more would be cut short by
     * libgammu (it stops at 50 parts and says ERR_NONE): permanent */
    char *fits = repeat("检", 67 * 50);
    prov_msg fm = msg_make("fits", "+8613800138000", fits, 50, 1);
    prov_gammu.send(&r, &fm, &res);
    CHECK_INT(res.status, PROV_OK);
    CHECK_INT(res.parts_sent, 50);
    free(fits);
    char *huge = repeat("检", 67 * 50 + 1);
    prov_msg hm = msg_make("huge", "+8613800138000", huge, 51, 1);
    prov_gammu.send(&r, &hm, &res);
    CHECK_INT(res.status, PROV_PERMANENT);
    CHECK_INT(res.parts_sent, 0);
    CHECK_HAS(res.error, "50 parts");
    free(huge);
    char *huge7 = repeat("a", 153 * 50 + 1);
    prov_msg h7 = msg_make("huge7", "+8613800138000", huge7, 51, 1);
    prov_gammu.send(&r, &h7, &res);
    CHECK_INT(res.status, PROV_PERMANENT);
    free(huge7);

    /* several workers at once */
    pthread_t t[4];
    gammu_worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (gammu_worker){ &r, 0 };
        pthread_create(&t[i], NULL, gammu_thread, &w[i]);
    }
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        ok += w[i].ok;
    }
    CHECK_INT(ok, 20);

    prov_health h;
    prov_gammu.health(&r, &h);
    CHECK_INT(h.up, 1);
    CHECK_STR(h.state, "connected");
    CHECK_INT(h.signal_percent, 42);          /* what the dummy phone reports */

    /* inbound: an empty inbox */
    got g;
    memset(&g, 0, sizeof g);
    prov_inbound_cb cb = { .message = on_message, .report = on_report, .ud = &g };
    CHECK_INT(prov_gammu.poll_inbound(&r, &cb), 0);
    CHECK_INT(g.messages + g.reports, 0);

    /* a 2-part UCS-2 reply, parts injected in reverse order, and a report */
    const char *p1 = "满意。感谢检察院的及时告知，办案人员态度很好，程序也清楚明白，"
                     "希望今后继续保持这样的工作作风，也希望能够更快地告知案件进展情况和办理期限";
    const char *p2 = "。谢谢！";
    inject_deliver(dir, 1, "+8613900000006", "050003AB0202", p2);
    inject_deliver(dir, 2, "+8613900000006", "050003AB0201", p1);
    inject(dir, 3, "PDU = Status_Report\nState = UnRead\nNumber = \"+8613800138000\"\n"
                   "DateTime = 20261127T041200Z\nSMSC = \"+8613800100500\"\n"
                   "MessageReference = 42\nFolder = 1\n");
    /* an incomplete sequence: part 1 of 2 only */
    inject_deliver(dir, 4, "+8613900000007", "050003CD0201", "第一部分");

    /* every part goes to the gateway on its own (it joins them), and off the modem */
    CHECK_INT(prov_gammu.poll_inbound(&r, &cb), 0);
    CHECK_INT(g.messages, 3);
    CHECK_STR(g.from, "+8613900000007");
    CHECK_STR(g.text, "第一部分");
    CHECK_INT(g.part, 1);
    CHECK_INT(g.parts, 2);
    CHECK_STR(g.joined, "。谢谢！|满意。感谢检察院的及时告知，办案人员态度很好，程序也清楚明白，"
                        "希望今后继续保持这样的工作作风，也希望能够更快地告知案件进展情况和办理期限|第一部分|");
    CHECK_STR(g.keys, "+8613900000006|171|2;+8613900000006|171|2;+8613900000007|205|2;");
    CHECK_INT(g.reports, 1);
    CHECK_INT(g.ref, 42);
    CHECK_INT(g.delivered, 1);
    CHECK_STR(g.detail, "TP-ST 0x00");
    CHECK(!file_exists(dir, "sms/1/1"));
    CHECK(!file_exists(dir, "sms/1/2"));
    CHECK(!file_exists(dir, "sms/1/3"));
    CHECK(!file_exists(dir, "sms/1/4"));

    /* delivered once: a second poll finds nothing new */
    CHECK_INT(prov_gammu.poll_inbound(&r, &cb), 0);
    CHECK_INT(g.messages, 3);
    CHECK_INT(g.reports, 1);

    /* the missing part arrives later, on its own */
    inject_deliver(dir, 1, "+8613900000007", "050003CD0202", "第二部分");
    CHECK_INT(prov_gammu.poll_inbound(&r, &cb), 0);
    CHECK_INT(g.messages, 4);
    CHECK_STR(g.text, "第二部分");
    CHECK_INT(g.part, 2);
    CHECK(!file_exists(dir, "sms/1/1"));

    /* a single part without UDH, 7-bit style ASCII, from a non-mobile number */
    inject_deliver(dir, 1, "10086", NULL, "1121");
    CHECK_INT(prov_gammu.poll_inbound(&r, &cb), 0);
    CHECK_INT(g.messages, 5);
    CHECK_INT(g.parts, 1);
    CHECK_STR(g.text, "1121");
    CHECK_STR(g.from, "10086");

    prov_gammu.close(&r);
    CHECK(r.priv == NULL);
}

static void test_gammu_poll_interval(const char *base)
{
    char dir[512], conf[1024], err[256];
    snprintf(dir, sizeof dir, "%s/phone/b", base);
    snprintf(conf, sizeof conf,
             "opts = { model = \"dummy\"; connection = \"none\"; device = \"%s\"; "
             "poll_interval_ms = 60000; delivery_reports = false; smsc = \"+8613800100500\"; };", dir);
    prov_route r = route_named("modem1", &prov_gammu);
    CHECK_INT(gammu_open_with(&r, conf, err, sizeof err), 0);
    got g;
    memset(&g, 0, sizeof g);
    prov_inbound_cb cb = { .message = on_message, .report = on_report, .ud = &g };
    CHECK_INT(prov_gammu.poll_inbound(&r, &cb), 0);   /* first poll reads */
    inject_deliver(dir, 1, "+8613900000006", NULL, "好");
    CHECK_INT(prov_gammu.poll_inbound(&r, &cb), 0);   /* too soon: skipped */
    CHECK_INT(g.messages, 0);
    CHECK(file_exists(dir, "sms/1/1"));
    prov_result res;
    prov_msg m = msg_make("x", "+8613800138000", "ok", 1, 1);
    prov_gammu.send(&r, &m, &res);
    CHECK_INT(res.status, PROV_OK);
    prov_gammu.close(&r);
}

static void test_gammu_errors(const char *base)
{
    char conf[1024], err[256];
    prov_route r = route_named("modem9", &prov_gammu);

    CHECK_INT(gammu_open_with(&r, "opts = { model = \"dummy\"; device = \"/tmp/x\"; bogus = 1; };",
                              err, sizeof err), -1);
    CHECK_HAS(err, "route 'modem9'");
    CHECK_HAS(err, "opts.bogus");
    CHECK_HAS(err, "unknown key");

    /* the error names the key by its full path in herald.conf */
    config_t cfg;
    config_init(&cfg);
    CHECK_INT(config_read_string(&cfg, "routes = ( { name = \"m\"; },\n"
                                 "  { name = \"modem9\"; gammu = { device = \"/x\"; speed = 9600; }; } );"),
              CONFIG_TRUE);
    CHECK_INT(prov_gammu.open(&r, config_lookup(&cfg, "routes.[1].gammu"), err, sizeof err), -1);
    CHECK_HAS(err, ":2: routes.[1].gammu.speed: unknown key");
    config_destroy(&cfg);

    CHECK_INT(gammu_open_with(&r, "opts = { model = \"dummy\"; };", err, sizeof err), -1);
    CHECK_HAS(err, "device");
    CHECK_INT(prov_gammu.open(&r, NULL, err, sizeof err), -1);
    CHECK_HAS(err, "device");

    CHECK_INT(gammu_open_with(&r, "opts = { device = \"/dev/null\"; reconnect_min_ms = 5000; "
                              "reconnect_max_ms = 100; };", err, sizeof err), -1);
    CHECK_HAS(err, "reconnect_max_ms");

    CHECK_INT(gammu_open_with(&r, "opts = { device = \"/dev/null\"; delivery_reports = 1; };",
                              err, sizeof err), -1);
    CHECK_HAS(err, "delivery_reports");

    /* a dummy folder that cannot be created */
    CHECK_INT(gammu_open_with(&r, "opts = { model = \"dummy\"; connection = \"none\"; "
                              "device = \"/proc/herald/none\"; };", err, sizeof err), -1);
    CHECK_HAS(err, "/proc/herald/none");

    /* a serial device that is not there: open succeeds, the route is down,
     * sends fail transiently at once, health says it is reconnecting */
    snprintf(conf, sizeof conf, "opts = { connection = \"at\"; device = \"%s/no-such-tty\"; "
             "reconnect_min_ms = 200; reconnect_max_ms = 400; };", base);
    CHECK_INT(gammu_open_with(&r, conf, err, sizeof err), 0);
    prov_result res;
    prov_msg m = msg_make("x", "+8613800138000", "hello", 1, 1);
    prov_gammu.send(&r, &m, &res);
    CHECK_INT(res.status, PROV_TRANSIENT);
    CHECK_HAS(res.error, "not connected");
    prov_gammu.send(&r, &m, &res);
    CHECK_INT(res.status, PROV_TRANSIENT);
    prov_health h;
    prov_gammu.health(&r, &h);
    CHECK_INT(h.up, 0);
    CHECK_INT(h.signal_percent, -1);
    CHECK(strncmp(h.state, "reconnecting", 12) == 0 || strcmp(h.state, "connecting") == 0);
    got g;
    memset(&g, 0, sizeof g);
    prov_inbound_cb cb = { .message = on_message, .report = on_report, .ud = &g };
    CHECK_INT(prov_gammu.poll_inbound(&r, &cb), -1);
    prov_gammu.close(&r);
}

/* A modem that never answers: the slave side of a pty nobody serves. The
 * first connection attempt hangs in libgammu, so a send queues behind it and
 * times out before anything was written: PROV_TRANSIENT, never UNCERTAIN.
 * Closing the master makes the attempt fail so close() can finish. */
static void test_gammu_silent_modem(void)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) {
        fprintf(stderr, "no pty here; skipping the silent-modem test\n");
        if (master >= 0)
            close(master);
        return;
    }
    char conf[512], err[256];
    snprintf(conf, sizeof conf, "opts = { connection = \"at\"; device = \"%s\"; "
             "reconnect_min_ms = 60000; reconnect_max_ms = 60000; };", ptsname(master));
    prov_route r = route_named("silent", &prov_gammu);
    r.send_timeout_ms = 300;
    CHECK_INT(gammu_open_with(&r, conf, err, sizeof err), 0);
    prov_result res;
    prov_msg m = msg_make("x", "+8613800138000", "hello", 1, 1);
    prov_gammu.send(&r, &m, &res);
    CHECK_INT(res.status, PROV_TRANSIENT);
    CHECK_HAS(res.error, "timed out waiting");
    prov_health h;
    prov_gammu.health(&r, &h);
    CHECK_INT(h.up, 0);
    CHECK_STR(h.state, "connecting");
    close(master);
    prov_gammu.close(&r);
}

/* UCS-2 units (big-endian) into a libgammu string. */
static void ucs2_set(unsigned char *dst, const unsigned *u, int n)
{
    for (int i = 0; i < n; i++) {
        dst[2 * i] = (unsigned char)(u[i] >> 8);
        dst[2 * i + 1] = (unsigned char)(u[i] & 0xFF);
    }
    dst[2 * n] = dst[2 * n + 1] = 0;
}

/* What the driver makes of one SMS (gammu_rx.h), on inputs fuzz_pdu
 * found: a surrogate without its pair becomes U+FFFD (libgammu would write
 * CESU-8); a year past 9999 is no date (it overflowed the milliseconds);
 * a long sender does not cut the text off the identity. */
static void test_gammu_rx(void)
{
    GSM_SMSMessage *s = calloc(1, sizeof *s);
    inbound_item it;
    memset(&it, 0, sizeof it);
    s->PDU = SMS_Deliver;
    s->Coding = SMS_Coding_Unicode_No_Compression;
    s->UDH.Type = UDH_NoUDH;
    const unsigned text[] = { 0xD83D, 0x0041, 0xD83D, 0xDE00, 0xDC00 };
    ucs2_set(s->Text, text, 5);
    const unsigned num[] = { '1', '3', '9', '0', '0', '0', '0', '0', '0', '1', '1' };
    ucs2_set(s->Number, num, 11);
    s->DateTime = (GSM_DateTime){ .Year = 2147483647, .Month = 12, .Day = 31, .Hour = 23 };
    CHECK_INT(gammu_rx_message(&it, s, 1234), 0);
    CHECK_STR(it.text, "\xEF\xBF\xBD" "A" "\xF0\x9F\x98\x80" "\xEF\xBF\xBD");
    CHECK_STR(it.from, "+8613900000011");
    CHECK(it.at_ms == 1234);
    CHECK_INT(it.part, 1);
    CHECK_INT(it.nparts_msg, 1);
    gammu_rx_clear(&it);

    unsigned longnum[200];
    for (int i = 0; i < 200; i++)
        longnum[i] = 0x4E00 + (unsigned)i;               /* not a number: kept as sent */
    ucs2_set(s->Number, longnum, 200);
    const unsigned t2[] = { 'o', 'k' };
    ucs2_set(s->Text, t2, 2);
    s->DateTime = (GSM_DateTime){ .Year = 2026, .Month = 11, .Day = 27, .Hour = 10, .Timezone = 28800 };
    CHECK_INT(gammu_rx_message(&it, s, 1234), 0);
    CHECK(strlen(it.from) == 600);
    size_t il = strlen(it.identity);
    CHECK(il > 600 && strcmp(it.identity + il - 3, "|ok") == 0);
    CHECK(it.at_ms == 1795744800000LL);          /* 10:00 at +08:00 */
    gammu_rx_clear(&it);

    s->PDU = SMS_Status_Report;
    s->DeliveryStatus = 0x41;
    s->MessageReference = 42;
    CHECK_INT(gammu_rx_report(&it, s, 1), 0);
    CHECK_INT(it.delivered, 0);
    CHECK_INT(it.ref, 42);
    CHECK_STR(it.detail, "TP-ST 0x41");
    gammu_rx_clear(&it);
    free(s);
}

int main(void)
{
    gw_log_level = getenv("TEST_VERBOSE") ? LOG_DEBUG : LOG_ERROR + 1;
    char tmpl[] = "/tmp/herald-prov-XXXXXX";
    char *base = mkdtemp(tmpl);
    if (!base) {
        perror("mkdtemp");
        return 2;
    }
    test_registry();
    test_gammu_rx();
    test_sink_record(base);
    test_sink_fail_modes();
    test_sink_fail_first();
    test_sink_threads(base);
    test_gammu_dummy(base);
    test_gammu_poll_interval(base);
    test_gammu_errors(base);
    test_gammu_silent_modem();
    rm_rf(base);
    return TEST_REPORT();
}
