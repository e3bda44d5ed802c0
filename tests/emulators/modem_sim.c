/* modem_sim.c -- a GSM modem on a pseudo-terminal, for the tests.
 *
 *   modem_sim DIR [IMEI]
 *
 * libgammu's AT driver (connection = at) talks to it as to a real modem.
 * Everything lives in DIR:
 *   DIR/tty        symlink to the pty slave: the `device` of the route
 *   DIR/ctl        FIFO of commands from the test, one per line (below)
 *   DIR/sent.jsonl every SMS-SUBMIT received, decoded: one JSON line each
 *                  {"n","mr","to","coding","srr","ref","total","seq","text",
 *                   "t0": ms of the AT+CMGS that began this part's exchange,
 *                   "at": ms of the +CMGS answer}
 *   DIR/stored     the number of messages in the modem's storage (SM + ME)
 *   DIR/sim.log    every command and answer, for debugging a test
 *   DIR/ready      written once everything above exists
 *
 * Commands on DIR/ctl:
 *   sms FROM ORDER COPIES TEXT   an inbound SMS (split into concatenated
 *                  parts when long; ORDER fwd|rev; each part stored COPIES times)
 *   part FROM REF TOTAL SEQ TEXT one part of a concatenated inbound SMS
 *   report MR ST   a status report for reference MR with TP-ST ST (hex:
 *                  00 delivered, 41/46... failed); unsolicited +CDS when the
 *                  client asked for that with AT+CNMI (ds=1), else stored
 *                  (announced by +CDSI when ds=2); a stored inbound SMS is
 *                  announced by +CMTI when mt=1; with mt=2 it is not stored
 *                  but sent unsolicited as +CMT
 *   autoreport ST|off   answer every submission that asks for a report
 *   cnmi CAPS | cnmi none   what AT+CNMI=? offers from the next connection
 *                  (default (0-2),(0-3),(0,2),(0-2),(0,1): libgammu 1.42
 *                  picks 2,1,0,2,0, so +CMTI for messages and +CDSI for
 *                  stored reports; with ds (0,1) it picks ds=1: reports come
 *                  unsolicited as +CDS and are not stored); none: AT+CNMI
 *                  answers ERROR, a modem without new-message indications
 *   cms_before CODE N   the next N AT+CMGS answer +CMS ERROR CODE at once
 *   cms_after CODE N    ... after taking the PDU
 *   slow MS        wait MS before answering each PDU
 *   hang           stop answering anything (bytes are read and dropped)
 *   hang_before_prompt  the next AT+CMGS gets no prompt, then hang
 *   hang_after_pdu      the next PDU is taken, then hang
 *   hang_on_delete      the next AT+CMGD deletes nothing, then hang
 *   resume         answer again
 *   noreg / reg    lose / regain the network registration (sends get +CMS 331)
 *   unplug / plug  remove / restore DIR/tty, as a USB modem that went away
 *   quit
 *
 * One client at a time. The simulator keeps the slave open itself (so the
 * master never reads EIO between two clients) and clears the exclusive mode
 * libgammu sets with TIOCEXCL, so the client can reopen it after a close. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "tests/emulators/modem_pdu.h"

#define STORE_SLOTS  40
#define SMSC_NUMBER  "+8613800100500"

typedef struct slot {
    int used;
    int stat;                 /* 0 unread, 1 read */
    char hex[2 * PDU_MAX_OCTETS + 1];
    int tpdu_len;
} slot;

typedef struct sent_rec {
    int mr;
    char to[24];
} sent_rec;

static struct {
    const char *dir;
    int master, slave;
    FILE *log, *sent;
    int echo;
    int cnmi_mt, cnmi_ds;
    char cnmi_caps[96];       /* what AT+CNMI=? offers; "" = ERROR */
    int mem;                  /* 0 SM, 1 ME */
    slot store[2][STORE_SLOTS];
    int next_mr;
    int nsent;
    sent_rec recent[256];     /* by mr */
    int autoreport;           /* -1 off, else TP-ST */
    int cms_before, cms_before_n, cms_after, cms_after_n;
    int slow_ms;
    long long send_t0;        /* when the current send exchange began */
    int hang, hang_before_prompt, hang_after_pdu, hang_on_delete;
    int registered;
    int cops_format;
    char imei[32];
    /* input */
    char line[4096];
    size_t linelen;
    int in_pdu;               /* after "> ", until Ctrl-Z */
    int pdu_len;              /* the <length> of AT+CMGS */
} S;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logf_(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(S.log, "%lld ", now_ms());
    vfprintf(S.log, fmt, ap);
    fputc('\n', S.log);
    fflush(S.log);
    va_end(ap);
}

static void put(const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(S.master, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                usleep(1000);
                continue;
            }
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

static void putf(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    put(buf);
    char shown[1100];
    pdu_json_escape(buf, shown, sizeof shown);
    logf_("> %s", shown);
}

static void ok(void) { putf("\r\nOK\r\n"); }
static void error(void) { putf("\r\nERROR\r\n"); }

static void write_stored(void)
{
    int n = 0;
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < STORE_SLOTS; i++)
            n += S.store[m][i].used;
    char path[512], tmp[520];
    snprintf(path, sizeof path, "%s/stored", S.dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f) {
        fprintf(f, "%d\n", n);
        fclose(f);
        rename(tmp, path);
    }
}

/* Stores a PDU (hex, SMSC in front) in SM; returns its index or -1. */
static int store_pdu(const uint8_t *pdu, int n, int tpdu_len)
{
    for (int i = 0; i < STORE_SLOTS; i++) {
        slot *s = &S.store[0][i];
        if (!s->used) {
            s->used = 1;
            s->stat = 0;
            s->tpdu_len = tpdu_len;
            pdu_to_hex(pdu, n, s->hex);
            write_stored();
            return i + 1;
        }
    }
    logf_("storage full: message dropped");
    return -1;
}

static void announce(int idx)
{
    if (idx > 0 && S.cnmi_mt == 1 && !S.hang)
        putf("\r\n+CMTI: \"SM\",%d\r\n", idx);
}

/* ---- inbound ----------------------------------------------------------- */

static int is_gsm7(const char *text)
{
    uint8_t sept[2048];
    return pdu_gsm7_septets(text, sept, (int)sizeof sept) >= 0;
}

/* Stores one part, `copies` times. */
static void deliver_part(const char *from, int ref, int total, int seq, const char *text, int copies)
{
    uint8_t pdu[PDU_MAX_OCTETS + 32];
    int tl = 0;
    int n = pdu_build_deliver(SMSC_NUMBER, from, text, !is_gsm7(text), ref, total, seq, pdu, &tl);
    if (n < 0) {
        logf_("cannot build a DELIVER for part %d/%d", seq, total);
        return;
    }
    for (int c = 0; c < copies; c++) {
        if (S.cnmi_mt == 2 && !S.hang) {
            /* routed to the client, stored nowhere */
            char hex[2 * (PDU_MAX_OCTETS + 32) + 1];
            pdu_to_hex(pdu, n, hex);
            putf("\r\n+CMT: ,%d\r\n%s\r\n", tl, hex);
        } else {
            announce(store_pdu(pdu, n, tl));
        }
    }
}

/* Splits `text` into parts of `per` characters (UTF-8 code points; a GSM
 * extension character counts 2, which a test text avoids) and delivers them. */
static void deliver_sms(const char *from, const char *order, int copies, const char *text)
{
    int ucs2 = !is_gsm7(text);
    int single = ucs2 ? 70 : 160, per = ucs2 ? 67 : 153;
    const char *starts[64];
    int nchars = 0;
    for (const char *p = text; *p; ) {
        pdu_get_utf8(&p);
        nchars++;
    }
    int total = nchars <= single ? 1 : (nchars + per - 1) / per;
    if (total > 64) {
        logf_("text too long");
        return;
    }
    const char *p = text;
    for (int k = 0; k < total; k++) {
        starts[k] = p;
        for (int c = 0; c < (total == 1 ? nchars : per) && *p; c++)
            pdu_get_utf8(&p);
    }
    static int ref = 0x30;
    ref = (ref + 1) & 0xFF;
    for (int i = 0; i < total; i++) {
        int k = strcmp(order, "rev") == 0 ? total - 1 - i : i;
        const char *end = k + 1 < total ? starts[k + 1] : text + strlen(text);
        char part[PDU_TEXT_MAX];
        size_t l = (size_t)(end - starts[k]);
        if (l >= sizeof part)
            l = sizeof part - 1;
        memcpy(part, starts[k], l);
        part[l] = '\0';
        deliver_part(from, ref, total, k + 1, part, copies);
    }
}

static void status_report(int mr, int st)
{
    uint8_t pdu[PDU_MAX_OCTETS];
    int tl = 0;
    const char *to = S.recent[mr & 0xFF].to[0] ? S.recent[mr & 0xFF].to : "+8613900000000";
    int n = pdu_build_status_report(SMSC_NUMBER, mr, to, st, pdu, &tl);
    if (S.cnmi_ds == 1 && !S.hang) {
        char hex[2 * PDU_MAX_OCTETS + 1];
        pdu_to_hex(pdu, n, hex);
        putf("\r\n+CDS: %d\r\n%s\r\n", tl, hex);
    } else {
        int idx = store_pdu(pdu, n, tl);
        if (idx > 0 && S.cnmi_ds == 2 && !S.hang)
            putf("\r\n+CDSI: \"SM\",%d\r\n", idx);
    }
}

/* ---- sending ----------------------------------------------------------- */

static void record_submit(const pdu_submit *s, int mr)
{
    char text[PDU_TEXT_MAX * 2], to[64];
    pdu_json_escape(s->text, text, sizeof text);
    pdu_json_escape(s->to, to, sizeof to);
    fprintf(S.sent, "{\"n\":%d,\"mr\":%d,\"to\":\"%s\",\"coding\":\"%s\",\"srr\":%d,"
            "\"ref\":%d,\"total\":%d,\"seq\":%d,\"text\":\"%s\",\"t0\":%lld,\"at\":%lld}\n",
            ++S.nsent, mr, to, s->coding, s->srr, s->concat_ref,
            s->concat_total < 0 ? 1 : s->concat_total, s->concat_seq < 0 ? 1 : s->concat_seq,
            text, S.send_t0, now_ms());
    fflush(S.sent);
}

static void handle_pdu(const char *hex, size_t len)
{
    uint8_t pdu[PDU_MAX_OCTETS];
    pdu_submit s;
    char err[128];
    int n = pdu_from_hex(hex, len, pdu, (int)sizeof pdu);
    if (n < 0 || pdu_decode_submit(pdu, n, &s, err, sizeof err) < 0) {
        logf_("bad PDU: %s", n < 0 ? "hex" : err);
        putf("\r\n+CMS ERROR: 304\r\n");
        return;
    }
    if (s.tpdu_len != S.pdu_len)
        logf_("AT+CMGS=%d but the TPDU has %d octets", S.pdu_len, s.tpdu_len);
    if (S.hang_after_pdu) {
        S.hang_after_pdu = 0;
        S.hang = 1;
        logf_("PDU taken, now silent");
        return;
    }
    if (S.slow_ms > 0)
        usleep((useconds_t)S.slow_ms * 1000);
    if (S.cms_after_n > 0) {
        S.cms_after_n--;
        putf("\r\n+CMS ERROR: %d\r\n", S.cms_after);
        return;
    }
    int mr = S.next_mr;
    S.next_mr = (S.next_mr + 1) & 0xFF;
    record_submit(&s, mr);
    S.recent[mr].mr = mr;
    snprintf(S.recent[mr].to, sizeof S.recent[mr].to, "%s", s.to);
    putf("\r\n+CMGS: %d\r\n\r\nOK\r\n", mr);
    if (s.srr && S.autoreport >= 0)
        status_report(mr, S.autoreport);
}

/* ---- AT commands ------------------------------------------------------- */

static void cpms_answer(void)
{
    int used[2] = { 0, 0 };
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < STORE_SLOTS; i++)
            used[m] += S.store[m][i].used;
    int u = used[S.mem];
    putf("\r\n+CPMS: %d,%d,%d,%d,%d,%d\r\n\r\nOK\r\n", u, STORE_SLOTS, u, STORE_SLOTS, u, STORE_SLOTS);
}

static void cmgl(int which)
{
    for (int i = 0; i < STORE_SLOTS; i++) {
        slot *s = &S.store[S.mem][i];
        if (!s->used || (which != 4 && s->stat != which))
            continue;
        putf("\r\n+CMGL: %d,%d,,%d\r\n%s", i + 1, s->stat, s->tpdu_len, s->hex);
        s->stat = 1;
    }
    putf("\r\n\r\nOK\r\n");
}

static void command(char *cmd)
{
    char c[4096];
    size_t n = 0;
    for (char *p = cmd; *p && n + 1 < sizeof c; p++)
        c[n++] = *p;
    c[n] = '\0';
    for (char *p = c; *p && *p != '=' && *p != '?'; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    logf_("< %s", c);
    if (S.hang)
        return;
    if (S.echo)
        putf("%s\r", cmd);
    int a = 0, b = 0;
    if (strncmp(c, "AT+CMGS=", 8) == 0)
        S.send_t0 = now_ms();
    if (strcmp(c, "AT") == 0 || strcmp(c, "ATZ") == 0 || strcmp(c, "AT+CMEE=1") == 0 ||
        strcmp(c, "AT+CFUN=1") == 0 || strcmp(c, "AT+CMGF=0") == 0 ||
        strcmp(c, "AT+CREG=2") == 0 || strcmp(c, "AT+CGREG=2") == 0 ||
        strcmp(c, "AT+CHUP=?") == 0 || strncmp(c, "AT+CSCS=\"", 9) == 0 ||
        strcmp(c, "AT+CSDH=0") == 0) {
        ok();
    } else if (strcmp(c, "ATE1") == 0 || strcmp(c, "ATE0") == 0) {
        S.echo = c[3] == '1';
        ok();
    } else if (strcmp(c, "AT+CSCS?") == 0) {
        putf("\r\n+CSCS: \"GSM\"\r\n\r\nOK\r\n");
    } else if (strcmp(c, "AT+CSCS=?") == 0) {
        putf("\r\n+CSCS: (\"GSM\",\"UCS2\",\"IRA\")\r\n\r\nOK\r\n");
    } else if (strcmp(c, "AT+CGMM") == 0) {
        putf("\r\nHERALD-SIM\r\n\r\nOK\r\n");
    } else if (strcmp(c, "AT+CGMI") == 0) {
        putf("\r\nHerald\r\n\r\nOK\r\n");
    } else if (strcmp(c, "AT+CGMR") == 0) {
        putf("\r\nRevision 1.0\r\n\r\nOK\r\n");
    } else if (strcmp(c, "AT+CGSN") == 0) {
        putf("\r\n%s\r\n\r\nOK\r\n", S.imei);
    } else if (strcmp(c, "AT+CIMI") == 0) {
        putf("\r\n460001234567890\r\n\r\nOK\r\n");
    } else if (strcmp(c, "AT+CPIN?") == 0) {
        putf("\r\n+CPIN: READY\r\n\r\nOK\r\n");
    } else if (strcmp(c, "AT+CSQ") == 0) {
        putf("\r\n+CSQ: %d,99\r\n\r\nOK\r\n", S.registered ? 21 : 0);
    } else if (strcmp(c, "AT+CREG?") == 0 || strcmp(c, "AT+CGREG?") == 0) {
        putf("\r\n%s: 2,%d,\"1A2B\",\"00C3D4E5\"\r\n\r\nOK\r\n", c[4] == 'G' ? "+CGREG" : "+CREG",
             S.registered ? 1 : 0);
    } else if (strcmp(c, "AT+CGATT?") == 0) {
        putf("\r\n+CGATT: %d\r\n\r\nOK\r\n", S.registered);
    } else if (sscanf(c, "AT+COPS=3,%d", &a) == 1) {
        S.cops_format = a;
        ok();
    } else if (strcmp(c, "AT+COPS?") == 0) {
        if (!S.registered)
            putf("\r\n+COPS: 0\r\n\r\nOK\r\n");
        else if (S.cops_format == 2)
            putf("\r\n+COPS: 0,2,\"46000\"\r\n\r\nOK\r\n");
        else
            putf("\r\n+COPS: 0,0,\"CHINA MOBILE\"\r\n\r\nOK\r\n");
    } else if (strcmp(c, "AT+CSCA?") == 0) {
        putf("\r\n+CSCA: \"%s\",145\r\n\r\nOK\r\n", SMSC_NUMBER);
    } else if (strcmp(c, "AT+CNMI=?") == 0) {
        if (*S.cnmi_caps)
            putf("\r\n+CNMI: %s\r\n\r\nOK\r\n", S.cnmi_caps);
        else
            error();
    } else if (strncmp(c, "AT+CNMI=", 8) == 0) {
        /* <mode>,<mt>,<bm>,<ds>,<bfr>; an empty or missing field keeps
         * its value (libgammu may send "AT+CNMI=2,,,1") */
        int v[5] = { 0, S.cnmi_mt, 0, S.cnmi_ds, 0 };
        const char *q = c + 8;
        for (int k = 0; k < 5 && *q; k++) {
            if (*q >= '0' && *q <= '9') {
                char *end;
                v[k] = (int)strtol(q, &end, 10);
                q = end;
            }
            if (*q == ',')
                q++;
            else
                break;
        }
        if (!*S.cnmi_caps) {
            error();
        } else {
            S.cnmi_mt = v[1];
            S.cnmi_ds = v[3];
            ok();
        }
    } else if (strcmp(c, "AT+CPMS=?") == 0) {
        putf("\r\n+CPMS: (\"SM\",\"ME\"),(\"SM\",\"ME\"),(\"SM\",\"ME\")\r\n\r\nOK\r\n");
    } else if (strncmp(c, "AT+CPMS=\"", 9) == 0) {
        if (strncmp(c + 9, "SM", 2) == 0)
            S.mem = 0;
        else if (strncmp(c + 9, "ME", 2) == 0)
            S.mem = 1;
        else {
            putf("\r\n+CMS ERROR: 302\r\n");
            return;
        }
        cpms_answer();
    } else if (strcmp(c, "AT+CPMS?") == 0) {
        int u = 0;
        for (int i = 0; i < STORE_SLOTS; i++)
            u += S.store[S.mem][i].used;
        const char *m = S.mem ? "ME" : "SM";
        putf("\r\n+CPMS: \"%s\",%d,%d,\"%s\",%d,%d,\"%s\",%d,%d\r\n\r\nOK\r\n",
             m, u, STORE_SLOTS, m, u, STORE_SLOTS, m, u, STORE_SLOTS);
    } else if (sscanf(c, "AT+CMGL=%d", &a) == 1) {
        cmgl(a);
    } else if (sscanf(c, "AT+CMGR=%d", &a) == 1) {
        slot *s = a >= 1 && a <= STORE_SLOTS ? &S.store[S.mem][a - 1] : NULL;
        if (!s || !s->used) {
            putf("\r\n+CMS ERROR: 321\r\n");
            return;
        }
        putf("\r\n+CMGR: %d,,%d\r\n%s\r\n\r\nOK\r\n", s->stat, s->tpdu_len, s->hex);
        s->stat = 1;
    } else if (sscanf(c, "AT+CMGD=%d", &a) == 1) {
        if (S.hang_on_delete) {
            S.hang_on_delete = 0;
            S.hang = 1;
            logf_("delete ignored, now silent");
            return;
        }
        if (a >= 1 && a <= STORE_SLOTS && S.store[S.mem][a - 1].used) {
            S.store[S.mem][a - 1].used = 0;
            logf_("deleted %s %d", S.mem ? "ME" : "SM", a);
            write_stored();
        }
        ok();
    } else if (sscanf(c, "AT+CMGS=%d", &a) == 1) {
        if (S.hang_before_prompt) {
            S.hang_before_prompt = 0;
            S.hang = 1;
            logf_("no prompt, now silent");
            return;
        }
        if (!S.registered) {
            putf("\r\n+CMS ERROR: 331\r\n");
            return;
        }
        if (S.cms_before_n > 0) {
            S.cms_before_n--;
            putf("\r\n+CMS ERROR: %d\r\n", S.cms_before);
            return;
        }
        S.pdu_len = a;
        S.in_pdu = 1;
        putf("\r\n> ");
    } else {
        (void)b;
        error();
    }
}

/* Bytes from the client. Commands end with CR; in PDU mode the PDU ends
 * with Ctrl-Z (send) or ESC (cancel). ESC outside PDU mode is ignored. */
static void input(const char *buf, ssize_t n)
{
    for (ssize_t i = 0; i < n; i++) {
        char ch = buf[i];
        if (S.in_pdu) {
            if (ch == 0x1A || ch == 0x1B) {
                S.line[S.linelen] = '\0';
                S.in_pdu = 0;
                logf_("< PDU %s%s", S.line, ch == 0x1B ? " (cancelled)" : "");
                if (ch == 0x1A && !S.hang)
                    handle_pdu(S.line, S.linelen);
                else if (!S.hang)
                    ok();
                S.linelen = 0;
            } else if (ch != '\r' && ch != '\n' && S.linelen + 1 < sizeof S.line) {
                S.line[S.linelen++] = ch;
            }
            continue;
        }
        if (ch == '\r') {
            S.line[S.linelen] = '\0';
            if (S.linelen)
                command(S.line);
            S.linelen = 0;
        } else if (ch == '\n' || ch == 0x1B || ch == 0x1A) {
            /* ignored */
        } else if (S.linelen + 1 < sizeof S.line) {
            S.line[S.linelen++] = ch;
        }
    }
}

/* ---- control ----------------------------------------------------------- */

static void path(char *out, size_t len, const char *name);

static void control(char *l)
{
    char from[64], order[8], text[2048];
    int a = 0, b = 0, c = 0, d = 0;
    unsigned st = 0;
    logf_("ctl %s", l);
    if (sscanf(l, "sms %63s %7s %d %2047[^\n]", from, order, &a, text) == 4) {
        deliver_sms(from, order, a, text);
    } else if (sscanf(l, "part %63s %d %d %d %2047[^\n]", from, &a, &b, &c, text) == 5) {
        deliver_part(from, a, b, c, text, 1);
    } else if (sscanf(l, "report %d %x", &a, &st) == 2) {
        status_report(a, (int)st);
    } else if (strcmp(l, "cnmi none") == 0) {
        S.cnmi_caps[0] = '\0';
    } else if (strncmp(l, "cnmi (", 6) == 0) {
        snprintf(S.cnmi_caps, sizeof S.cnmi_caps, "%.95s", l + 5);
    } else if (strcmp(l, "autoreport off") == 0) {
        S.autoreport = -1;
    } else if (sscanf(l, "autoreport %x", &st) == 1) {
        S.autoreport = (int)st;
    } else if (sscanf(l, "cms_before %d %d", &a, &b) == 2) {
        S.cms_before = a;
        S.cms_before_n = b;
    } else if (sscanf(l, "cms_after %d %d", &a, &b) == 2) {
        S.cms_after = a;
        S.cms_after_n = b;
    } else if (sscanf(l, "slow %d", &a) == 1) {
        S.slow_ms = a;
    } else if (strcmp(l, "hang") == 0) {
        S.hang = 1;
    } else if (strcmp(l, "hang_before_prompt") == 0) {
        S.hang_before_prompt = 1;
    } else if (strcmp(l, "hang_after_pdu") == 0) {
        S.hang_after_pdu = 1;
    } else if (strcmp(l, "hang_on_delete") == 0) {
        S.hang_on_delete = 1;
    } else if (strcmp(l, "resume") == 0) {
        S.hang = S.hang_before_prompt = S.hang_after_pdu = S.hang_on_delete = 0;
        S.in_pdu = 0;
        S.linelen = 0;
    } else if (strcmp(l, "noreg") == 0) {
        S.registered = 0;
    } else if (strcmp(l, "reg") == 0) {
        S.registered = 1;
    } else if (strcmp(l, "unplug") == 0) {
        char p[512];
        path(p, sizeof p, "tty");
        unlink(p);
    } else if (strcmp(l, "plug") == 0) {
        char p[512];
        path(p, sizeof p, "tty");
        unlink(p);
        if (symlink(ptsname(S.master), p) < 0)
            logf_("plug: %s", strerror(errno));
    } else if (strcmp(l, "quit") == 0) {
        exit(0);
    } else {
        logf_("unknown control command");
    }
    (void)d;
}

static void path(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", S.dir, name);
}

static void on_term(int sig)
{
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: modem_sim DIR [IMEI]\n");
        return 2;
    }
    S.dir = argv[1];
    snprintf(S.imei, sizeof S.imei, "%s", argc > 2 ? argv[2] : "356938035643809");
    S.echo = 1;
    S.autoreport = -1;
    S.registered = 1;
    snprintf(S.cnmi_caps, sizeof S.cnmi_caps, "(0-2),(0-3),(0,2),(0-2),(0,1)");
    S.next_mr = 1;
    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);

    char p[512];
    mkdir(S.dir, 0755);
    path(p, sizeof p, "sim.log");
    S.log = fopen(p, "a");
    path(p, sizeof p, "sent.jsonl");
    S.sent = fopen(p, "a");
    if (!S.log || !S.sent) {
        perror("modem_sim: opening files");
        return 1;
    }
    S.master = posix_openpt(O_RDWR | O_NOCTTY);
    if (S.master < 0 || grantpt(S.master) < 0 || unlockpt(S.master) < 0) {
        perror("modem_sim: posix_openpt");
        return 1;
    }
    const char *slave = ptsname(S.master);
    S.slave = open(slave, O_RDWR | O_NOCTTY);
    if (S.slave < 0) {
        perror("modem_sim: opening the slave");
        return 1;
    }
    struct termios t;
    if (tcgetattr(S.slave, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(S.slave, TCSANOW, &t);
    }
    path(p, sizeof p, "tty");
    unlink(p);
    if (symlink(slave, p) < 0) {
        perror("modem_sim: symlink");
        return 1;
    }
    path(p, sizeof p, "ctl");
    unlink(p);
    if (mkfifo(p, 0600) < 0) {
        perror("modem_sim: mkfifo");
        return 1;
    }
    int ctl = open(p, O_RDWR | O_NONBLOCK);   /* RDWR: never EOF, writers never block */
    if (ctl < 0) {
        perror("modem_sim: opening the control FIFO");
        return 1;
    }
    write_stored();
    path(p, sizeof p, "ready");
    FILE *r = fopen(p, "w");
    if (r) {
        fprintf(r, "%s\n", slave);
        fclose(r);
    }
    logf_("modem on %s, imei %s", slave, S.imei);

    char cbuf[8192];
    size_t clen = 0;
    for (;;) {
        struct pollfd fds[2] = { { S.master, POLLIN, 0 }, { ctl, POLLIN, 0 } };
        int pr = poll(fds, 2, 50);
        /* libgammu sets TIOCEXCL; clear it so the next open succeeds */
        ioctl(S.slave, TIOCNXCL);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            perror("modem_sim: poll");
            return 1;
        }
        if (fds[0].revents & POLLIN) {
            char buf[4096];
            ssize_t n = read(S.master, buf, sizeof buf);
            if (n > 0)
                input(buf, n);
        }
        if (fds[1].revents & POLLIN) {
            ssize_t n = read(ctl, cbuf + clen, sizeof cbuf - 1 - clen);
            if (n > 0) {
                clen += (size_t)n;
                char *nl;
                while ((nl = memchr(cbuf, '\n', clen)) != NULL) {
                    *nl = '\0';
                    control(cbuf);
                    size_t used = (size_t)(nl - cbuf) + 1;
                    memmove(cbuf, nl + 1, clen - used);
                    clen -= used;
                }
                if (clen == sizeof cbuf - 1)
                    clen = 0;          /* a line too long: drop it */
            }
        }
    }
}
