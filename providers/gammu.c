/* gammu.c -- the "gammu" driver: one GSM modem per route, through libgammu.
 *
 *   routes = ( { name = "modem1"; driver = "gammu"; send_timeout_ms = 60000;
 *                gammu = { connection = "at115200"; device = "/dev/ttyUSB0";
 *                          smsc = "+8613800100500"; }; } );
 *   (model = "dummy"; connection = "none"; device = "/some/folder" gives
 *    libgammu's file-backed dummy phone, for tests.)
 *
 * Threads and ownership
 *   Each route owns one `modem` (route->priv) with one thread, the modem
 *   thread, which alone owns the libgammu state machine: it connects,
 *   reconnects with exponential backoff, sends, reads the inbox and deletes
 *   from it, and samples the signal. send() and poll_inbound() run on the
 *   gateway's threads: they post a `job` on the modem's queue and wait on a
 *   condition variable, bounded by route->send_timeout_ms.
 *
 *   A job is shared by its caller and the modem thread under modem->qlock.
 *   If the caller gives up, it marks the job `abandoned` and the modem thread
 *   frees it when done; so the thread never writes into memory the caller has
 *   freed, and the caller's copies of the message (to, text) outlive it. A
 *   send job abandoned before its first PDU went out is never sent (the caller
 *   answered PROV_TRANSIENT, so a retry will come); one abandoned after is
 *   finished (the caller answered PROV_UNCERTAIN).
 *
 *   libgammu keeps static buffers (DecodeUnicodeString, date formatting), so
 *   its text helpers (DecodeUTF8/EncodeUTF8, GSM_EncodeMultiPartSMS, the
 *   decoding of what was read) run under the one global `gammu_lock`. Calls
 *   that talk to a real modem (InitConnection, SendSMS, ReadDevice,
 *   GetNextSMS, DeleteSMS...) do not: each runs on its modem's own thread
 *   and state machine, and a silent modem keeps libgammu inside one call for
 *   20-30 s, which under a global lock would stall the whole pool. The
 *   static buffers libgammu touches on those paths serve its debug output
 *   (off here); the dummy phone, whose I/O is instant, keeps the global
 *   lock for its I/O too (IO_LOCK). Lock order: a thread may take
 *   gammu_lock while holding no qlock, never the reverse. The send-status
 *   and incoming-SMS callbacks run inside whatever libgammu call read the
 *   line (GSM_SendSMS, GSM_ReadDevice, GSM_GetNextSMS...) on the modem
 *   thread, only touch fields the modem thread owns and take no lock (the
 *   dummy phone's I/O runs under gammu_lock); take_unsolicited() looks at
 *   what the incoming-SMS callback copied afterwards, outside libgammu.
 *
 * Inbound: poll_inbound() asks the modem thread to read and decode the inbox
 * (every SMS part on its own, and status reports), delivers them through the
 * callbacks on the caller's thread, then asks the modem thread to delete
 * exactly what the gateway stored (callback returned 0). The gateway joins
 * the parts of long replies in Redis and stores each part once by its
 * identity, so a crash between delivery and deletion, which delivers again,
 * stores nothing twice. A status report nobody claims is offered again for
 * REPORT_POLLS polls (the sending worker may not have indexed its parts
 * yet), then kept as unmatched.
 *
 * Notifications: after connecting, GSM_SetIncomingSMS(TRUE) has libgammu
 * set AT+CNMI. While idle the modem thread reads the line every
 * IDLE_READ_MS (woken at once by a job). +CMTI / +CDSI (stored, announced)
 * make the next storage read due at once (poll_due): poll_interval_ms is
 * the fallback. +CDS / +CMT (sent whole, stored nowhere) are decoded into
 * m->pend and handed over by gammu_poll() through the same callbacks, so a
 * +CDS report meets the same matching (route, recipient, reference, time
 * window) as a polled one; unclaimed, it is offered again with growing
 * gaps for as long as a send may take, then kept as unmatched.
 *
 * GSM_InitLocales() is deliberately not called: it runs setlocale(LC_ALL, "")
 * for the whole process (changing LC_NUMERIC under other threads), and this
 * driver only uses libgammu's locale-free converters (DecodeUTF8/EncodeUTF8). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <gammu.h>

#include "gateway/log.h"
#include "gateway/phone.h"
#include "providers/gammu_rx.h"
#include "providers/provider.h"

#define MAX_INBOX        1000     /* messages read per poll, at most */
#define MAX_TEXT_UNITS   (GSM_MAX_MULTI_SMS * 153)   /* beyond: 50+ parts */
#define CB_MIN_WAIT_MS   5000     /* wait for a send callback at least this */
#define STALL_MS         15000    /* a job without progress this long: not answering */
#define MAX_HELD         64       /* unclaimed status reports remembered */
#define REPORT_POLLS     3        /* an unclaimed report is offered this often */
#define MAX_UNSOL        32       /* unsolicited SMS kept between two looks at them */
#define MAX_PENDING      256      /* received unsolicited, not yet stored by the gateway */
#define IDLE_READ_MS     200      /* an idle modem's line is read this often */
#define PENDING_HOLD_MS  300000   /* an unclaimed +CDS report is kept at most this long */

static pthread_mutex_t gammu_lock = PTHREAD_MUTEX_INITIALIZER;

static int is_dummy_model(const char *model) { return strcmp(model, "dummy") == 0; }

/* I/O on a modem's own state machine. A real modem's calls are NOT made
 * under gammu_lock: a silent modem keeps libgammu inside one call for
 * 20-30 s, and under one global lock that would stop every other modem of
 * the pool. The dummy phone's I/O is instant file access: it keeps the
 * global lock. See the note at the top of the file. */
#define IO_LOCK(m)   do { if (is_dummy_model((m)->model)) pthread_mutex_lock(&gammu_lock); } while (0)
#define IO_UNLOCK(m) do { if (is_dummy_model((m)->model)) pthread_mutex_unlock(&gammu_lock); } while (0)

typedef enum { JOB_SEND, JOB_POLL, JOB_DELETE } job_kind;

/* Something remembered across polls by the modem thread (held_find). */
typedef struct held {
    char key[160];
    long long first_ms;        /* monotonic: first seen */
    int polls;
    int seen;
} held;

/* A request to the modem thread. Fields below `shared` are guarded by the
 * modem's qlock; the rest are written by the caller before posting and then
 * read (send inputs) or written (outputs) by the modem thread alone; the
 * caller reads outputs only after `done`. */
typedef struct job {
    job_kind kind;
    struct job *next;
    long long deadline;        /* monotonic ms: when the caller gives up */
    /* JOB_SEND: copies of the message */
    char *id, *to, *text;
    int expect_parts;
    prov_result res;
    /* JOB_POLL output, JOB_DELETE input */
    inbound_item *items;
    int nitems;
    int rc;
    /* shared */
    int queued, started, done, abandoned;
} job;

typedef struct modem {
    char route[64];
    /* configuration, copied at open; read-only afterwards */
    char *model, *connection, *device, *smsc;
    int dlr, rmin, rmax, poll_ms, multipart_timeout, health_ms, quarantine_after;

    /* owned by the modem thread */
    GSM_StateMachine *sm;
    GSM_SMSC smsc_num;         /* Location 0 + Number, or Location 1 = ask */
    int cb_fired, cb_status, cb_ref;
    int need_reconnect;
    int notify;                /* new-message indications on, this connection */
    int notify_said;           /* logged: 0 nothing yet, 1 on, 2 off */
    GSM_SMSMessage *unsol;     /* filled by on_incoming_sms, MAX_UNSOL */
    int nunsol, unsol_lost;
    int backoff_ms;
    held held[MAX_HELD];
    int nheld;
    long long next_signal;

    /* shared, under qlock */
    pthread_mutex_t qlock;
    pthread_cond_t wake;       /* the modem thread waits on it */
    pthread_cond_t done;       /* callers wait on it */
    job *head, *tail;
    int stop;
    int connected, connecting;
    int busy;                  /* the modem thread is running a job... */
    long long progress_ms;     /* ...and last made progress then (monotonic) */
    long long next_attempt;    /* monotonic ms */
    char last_error[128];
    int signal;
    char imei[32], imsi[32], op[64];
    int registered;            /* 1, 0, -1 unknown */
    long long n_sent, n_failed, n_received;
    int fail_streak;           /* connection attempts failed in a row */
    int quarantined;
    long long last_poll;
    int poll_due;              /* the modem announced a stored SMS: read now */
    int n_connects;
    inbound_item *pend;        /* came unsolicited (+CDS, +CMT), not yet stored */
    int npend;
    pthread_t thread;
} modem;

static const cfg_key gammu_keys[] = {
    { "model", CFG_STR, "", 0, 0, NULL,
      "phone model for libgammu (\"\" = auto; \"dummy\" = file-backed test phone)" },
    { "connection", CFG_STR, "at", 0, 0, NULL,
      "libgammu connection: at, at115200, ... (none for the dummy phone)" },
    { "device", CFG_STR, NULL, 0, 0, NULL,
      "serial device (/dev/ttyUSB0), or the folder of the dummy phone" },
    { "smsc", CFG_STR, "", 0, 0, NULL,
      "SMS centre number; \"\" = ask the SIM (GSM_GetSMSC)" },
    { "delivery_reports", CFG_BOOL, "true", 0, 0, NULL,
      "request a status report for each part" },
    { "reconnect_min_ms", CFG_INT, "1000", 10, 3600000, NULL,
      "first wait before reconnecting a failed modem (doubles each time)" },
    { "reconnect_max_ms", CFG_INT, "60000", 10, 3600000, NULL,
      "longest wait between reconnection attempts" },
    { "poll_interval_ms", CFG_INT, "5000", 0, 3600000, NULL,
      "longest time between two storage reads; a modem that announces a new "
      "message (+CMTI) is read at once (an empty dummy poll costs ~43 ms)" },
    { "health_interval_ms", CFG_INT, "30000", 100, 3600000, NULL,
      "how often signal, network registration and operator are read" },
    { "quarantine_after", CFG_INT, "5", 1, 1000, NULL,
      "failed recoveries in a row after which the modem is quarantined "
      "(probed every reconnect_max_ms, sent nothing)" },
    { "multipart_timeout", CFG_INT, "3600", 1, 604800, NULL,
      "seconds to wait for the missing parts of an inbound message before storing "
      "it incomplete (flagged partial)" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ms_to_timespec(long long ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ms / 1000);
    ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

static void sleep_ms(int ms)
{
    struct timespec ts;
    ms_to_timespec(ms, &ts);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- jobs --------------------------------------------------------------- */

void gammu_rx_clear(inbound_item *it)
{
    free(it->from);
    free(it->text);
    free(it->identity);
    free(it->concat_key);
    free(it->to);
    free(it->parts);
    memset(it, 0, sizeof *it);
}

static void items_free(inbound_item *it, int n)
{
    for (int i = 0; i < n; i++)
        gammu_rx_clear(&it[i]);
    free(it);
}

static void job_free(job *j)
{
    if (!j)
        return;
    free(j->id);
    free(j->to);
    free(j->text);
    items_free(j->items, j->nitems);
    free(j);
}

/* Called by the modem thread with qlock held: the job is finished. */
static void job_finish_locked(modem *m, job *j)
{
    j->done = 1;
    if (j->abandoned)
        job_free(j);
    else
        pthread_cond_broadcast(&m->done);
}

static void queue_remove_locked(modem *m, job *j)
{
    job **pp = &m->head;
    m->tail = NULL;
    while (*pp) {
        if (*pp == j)
            *pp = j->next;
        else {
            m->tail = *pp;
            pp = &(*pp)->next;
        }
    }
    j->queued = 0;
    j->next = NULL;
}

/* Posts `j` and waits until it is done or its deadline passes. Returns 1
 * when done (outputs valid, the caller frees j), 0 when the caller gave up:
 * then *started tells whether the modem thread had begun writing, and j is
 * no longer the caller's (freed here, or by the modem thread later). A
 * route that is reconnecting refuses jobs at once: returns -1, j untouched. */
/* With qlock held: the modem thread has been inside one job without
 * progress for STALL_MS (a silent modem: libgammu gives up after ~30 s).
 * The modem counts as down meanwhile, so work goes to other routes. */
static int stalled_locked(const modem *m, long long now)
{
    return m->busy && now - m->progress_ms > STALL_MS;
}

static int job_run(modem *m, job *j, int *started)
{
    struct timespec ts;
    pthread_mutex_lock(&m->qlock);
    if (m->stop || (!m->connected && !m->connecting) || stalled_locked(m, mono_ms())) {
        pthread_mutex_unlock(&m->qlock);
        return -1;
    }
    j->queued = 1;
    if (m->tail)
        m->tail->next = j;
    else
        m->head = j;
    m->tail = j;
    pthread_cond_signal(&m->wake);
    ms_to_timespec(j->deadline, &ts);
    while (!j->done) {
        if (pthread_cond_timedwait(&m->done, &m->qlock, &ts) == ETIMEDOUT && !j->done)
            break;
    }
    if (j->done) {
        pthread_mutex_unlock(&m->qlock);
        return 1;
    }
    *started = j->started;
    if (j->queued) {
        queue_remove_locked(m, j);
        job_free(j);
    } else {
        j->abandoned = 1;             /* the modem thread frees it */
    }
    pthread_mutex_unlock(&m->qlock);
    return 0;
}

/* ---- libgammu, on the modem thread -------------------------------------- */

static void on_sms_sent(GSM_StateMachine *sm, int status, int ref, void *ud)
{
    modem *m = ud;
    (void)sm;
    m->cb_fired = 1;
    m->cb_status = status;
    m->cb_ref = ref;
}

/* New-message indications (after GSM_SetIncomingSMS): +CMTI / +CDSI name a
 * stored SMS by location (PDU 0, or a status report with a Location); +CDS
 * and +CMT carry a decoded SMS that is stored nowhere. Runs inside whatever
 * libgammu call read the line, on the modem thread: it only copies, into a
 * buffer the modem thread owns; take_unsolicited() looks at it later,
 * outside libgammu and free to take locks. */
static void on_incoming_sms(GSM_StateMachine *sm, GSM_SMSMessage *sms, void *ud)
{
    modem *m = ud;
    (void)sm;
    if (m->nunsol < MAX_UNSOL)
        m->unsol[m->nunsol++] = *sms;
    else
        m->unsol_lost++;
}

static int is_link_error(GSM_Error e)
{
    switch (e) {
    case ERR_TIMEOUT: case ERR_NOTCONNECTED:
    case ERR_DEVICEOPENERROR: case ERR_DEVICELOCKED: case ERR_DEVICENOTEXIST:
    case ERR_DEVICEBUSY: case ERR_DEVICENOPERMISSION: case ERR_DEVICENODRIVER:
    case ERR_DEVICENOTWORK: case ERR_DEVICEDTRRTSERROR: case ERR_DEVICECHANGESPEEDERROR:
    case ERR_DEVICEWRITEERROR: case ERR_DEVICEREADERROR: case ERR_DEVICEPARITYERROR:
        return 1;
    default:
        return 0;
    }
}

/* A +CMS error code from the send-status callback. Codes that say the
 * destination or the message itself is refused (3GPP TS 24.011 RP-cause,
 * TS 23.040 TP-FCS, TS 27.005 ME errors about our PDU) cannot succeed on a
 * retry; everything else (network, SIM, memory, timeouts) may. */
static prov_status classify_cms(int code)
{
    switch (code) {
    case 1:    /* unassigned (unallocated) number */
    case 8:    /* operator determined barring */
    case 10:   /* call barred */
    case 21:   /* short message transfer rejected */
    case 27:   /* destination out of order */
    case 28:   /* unidentified subscriber */
    case 29:   /* facility rejected */
    case 30:   /* unknown subscriber */
    case 50:   /* requested facility not subscribed */
    case 96: case 97: case 98: case 99:   /* invalid / unknown message */
    case 0x80: case 0x81: case 0x8F:      /* TP-PID errors */
    case 0x90: case 0x91: case 0x9F:      /* TP-DCS errors */
    case 0xC1: case 0xC2: case 0xC3: case 0xC4:   /* TP-command errors */
    case 304:  /* invalid PDU mode parameter */
    case 305:  /* invalid text mode parameter */
        return PROV_PERMANENT;
    default:
        return PROV_TRANSIENT;
    }
}

static void refresh_signal(modem *m);
static void take_unsolicited(modem *m);

static void gm_disconnect(modem *m)
{
    if (!m->sm)
        return;
    IO_LOCK(m);
    if (GSM_IsConnected(m->sm))
        GSM_TerminateConnection(m->sm);
    GSM_FreeStateMachine(m->sm);
    IO_UNLOCK(m);
    m->sm = NULL;
}

/* mkdir -p; returns 0 or -1 with errno set. */
static int mkdir_p(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return -1;
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                int e = errno;
                free(p);
                errno = e;
                return -1;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static int is_dummy(const modem *m)
{
    return is_dummy_model(m->model);
}

/* Opens the modem: a fresh state machine each time, so nothing survives
 * from a connection that went bad. Returns 0, or -1 with m->last_error set
 * (the caller holds no lock; last_error is written under qlock). */
static int gm_connect(modem *m)
{
    char why[128] = "";
    if (is_dummy(m) && mkdir_p(m->device) != 0) {
        snprintf(why, sizeof why, "cannot create %s: %s", m->device, strerror(errno));
        goto fail;
    }
    IO_LOCK(m);
    GSM_StateMachine *sm = GSM_AllocStateMachine();
    if (!sm) {
        IO_UNLOCK(m);
        snprintf(why, sizeof why, "out of memory");
        goto fail;
    }
    GSM_Config *c = GSM_GetConfig(sm, 0);
    free(c->Device);
    free(c->Connection);
    c->Device = strdup(m->device);         /* freed by GSM_FreeStateMachine */
    c->Connection = strdup(m->connection);
    snprintf(c->Model, sizeof c->Model, "%s", m->model);
    c->DebugLevel[0] = '\0';
    /* -1: let the AT driver choose the AT+CNMI values from AT+CNMI=?.
     * GSM_ReadConfig sets this; a config filled by hand has 0 there, and
     * with <mode> 0 GSM_SetIncomingSMS answers "not supported". */
    for (size_t k = 0; k < sizeof c->CNMIParams / sizeof c->CNMIParams[0]; k++)
        c->CNMIParams[k] = -1;
    GSM_SetConfigNum(sm, 1);
    GSM_Error err = (c->Device && c->Connection) ? GSM_InitConnection(sm, 1) : ERR_MOREMEMORY;
    if (err != ERR_NONE) {
        snprintf(why, sizeof why, "%s", GSM_ErrorString(err));
        GSM_FreeStateMachine(sm);
        IO_UNLOCK(m);
        goto fail;
    }
    /* After InitConnection: registered before, it is reset. */
    GSM_SetSendSMSStatusCallback(sm, on_sms_sent, m);

    memset(&m->smsc_num, 0, sizeof m->smsc_num);
    if (*m->smsc) {
        DecodeUTF8(m->smsc_num.Number, m->smsc, strlen(m->smsc));
        m->smsc_num.Location = 0;
    } else {
        GSM_SMSC q;
        memset(&q, 0, sizeof q);
        q.Location = 1;
        err = GSM_GetSMSC(sm, &q);
        if (err == ERR_NONE && UnicodeLength(q.Number) > 0) {
            CopyUnicodeString(m->smsc_num.Number, q.Number);
            m->smsc_num.Location = 0;
        } else {
            /* let the phone driver look it up when sending */
            m->smsc_num.Location = 1;
            gw_log(LOG_WARN, m->route, "cannot read the SMS centre number (%s); "
                   "set smsc in the route's options",
                   err == ERR_NONE ? "empty" : GSM_ErrorString(err));
        }
    }
    char imei[GSM_MAX_IMEI_LENGTH + 1] = "", imsi[GSM_MAX_INFO_LENGTH + 1] = "";
    if (GSM_GetIMEI(sm, imei) != ERR_NONE)
        imei[0] = '\0';
    if (GSM_GetSIMIMSI(sm, imsi) != ERR_NONE)
        imsi[0] = '\0';
    /* New-message indications (AT+CNMI): the inbox is read when the modem
     * announces a message, polling stays as the fallback. The dummy phone
     * announces nothing. */
    GSM_Error nerr = ERR_NOTSUPPORTED;
    m->nunsol = 0;
    if (!is_dummy(m)) {
        GSM_SetIncomingSMSCallback(sm, on_incoming_sms, m);
        nerr = GSM_SetIncomingSMS(sm, TRUE);
    }
    m->notify = nerr == ERR_NONE;
    IO_UNLOCK(m);
    if (m->notify_said != (m->notify ? 1 : 2)) {
        m->notify_said = m->notify ? 1 : 2;
        if (m->notify)
            gw_log(LOG_INFO, m->route, "modem announces new messages: storage read when it does, "
                   "and every %d ms", m->poll_ms);
        else
            gw_log(LOG_INFO, m->route, "modem does not announce new messages (%s): storage read "
                   "every %d ms", is_dummy(m) ? "dummy phone" : GSM_ErrorString(nerr), m->poll_ms);
    }

    m->sm = sm;
    pthread_mutex_lock(&m->qlock);
    snprintf(m->imei, sizeof m->imei, "%.31s", imei);
    snprintf(m->imsi, sizeof m->imsi, "%.31s", imsi);
    m->last_error[0] = '\0';
    pthread_mutex_unlock(&m->qlock);
    refresh_signal(m);
    return 0;

fail:
    pthread_mutex_lock(&m->qlock);
    snprintf(m->last_error, sizeof m->last_error, "%s", why);
    pthread_mutex_unlock(&m->qlock);
    return -1;
}

/* Signal, network registration and operator: read at connect and every
 * health_interval_ms. A modem without registration sends nothing. */
static void refresh_signal(modem *m)
{
    GSM_SignalQuality sq;
    GSM_NetworkInfo ni;
    memset(&sq, 0, sizeof sq);
    memset(&ni, 0, sizeof ni);
    IO_LOCK(m);
    GSM_Error err = GSM_GetSignalQuality(m->sm, &sq);
    GSM_Error nerr = is_link_error(err) ? err : GSM_GetNetworkInfo(m->sm, &ni);
    IO_UNLOCK(m);
    if (is_link_error(err) || is_link_error(nerr))
        m->need_reconnect = 1;
    char op[64] = "";
    int reg = -1;
    if (nerr == ERR_NONE) {
        reg = ni.State == GSM_HomeNetwork || ni.State == GSM_RoamingNetwork ? 1 :
              ni.State == GSM_NetworkStatusUnknown ? -1 : 0;
        pthread_mutex_lock(&gammu_lock);
        char name[sizeof ni.NetworkName * 2 + 1];
        EncodeUTF8(name, ni.NetworkName);
        pthread_mutex_unlock(&gammu_lock);
        snprintf(op, sizeof op, "%.40s%s%.12s", name, *name && ni.NetworkCode[0] ? " " : "",
                 ni.NetworkCode);
    }
    pthread_mutex_lock(&m->qlock);
    m->signal = err == ERR_NONE ? sq.SignalPercent : -1;
    if (reg == 0 && m->registered != 0)
        gw_log(LOG_WARN, m->route, "modem lost its network registration: sending nothing until it is back");
    else if (reg == 1 && m->registered == 0)
        gw_log(LOG_INFO, m->route, "modem registered on the network again");
    m->registered = reg;
    if (*op || reg == 0)
        snprintf(m->op, sizeof m->op, "%s", op);
    pthread_mutex_unlock(&m->qlock);
    m->next_signal = mono_ms() + m->health_ms;
}

static void set_result(prov_result *res, prov_status st, const char *fmt, const char *arg)
{
    res->status = st;
    snprintf(res->error, sizeof res->error, fmt, arg);
}

/* Appends one part's reference to res->refs. */
static void add_ref(prov_result *res, int ref)
{
    size_t l = strlen(res->refs);
    snprintf(res->refs + l, sizeof res->refs - l, "%s%d", l ? "," : "", ref);
}

static void do_send(modem *m, job *j)
{
    prov_result *res = &j->res;
    size_t tlen = strlen(j->text), nlen = strlen(j->to);
    GSM_MultiSMSMessage *multi = calloc(1, sizeof *multi);
    unsigned char *ucs2 = malloc(2 * tlen + 2);   /* each UTF-8 byte: <= 1 unit */
    GSM_MultiPartSMSInfo info;
    int abandoned_early = 0;

    res->status = PROV_TRANSIENT;
    if (!multi || !ucs2) {
        free(ucs2);
        set_result(res, PROV_TRANSIENT, "%s", "out of memory");
        goto out;
    }
    if (nlen == 0 || nlen > GSM_MAX_NUMBER_LENGTH) {
        free(ucs2);
        set_result(res, PROV_PERMANENT, "%s", "destination number empty or too long");
        goto out;
    }

    pthread_mutex_lock(&m->qlock);
    int unregistered = m->registered == 0;
    pthread_mutex_unlock(&m->qlock);
    if (unregistered) {
        free(ucs2);
        set_result(res, PROV_TRANSIENT, "%s", "no network registration");
        goto out;
    }
    pthread_mutex_lock(&gammu_lock);
    DecodeUTF8(ucs2, j->text, tlen);
    if (UnicodeLength(ucs2) > MAX_TEXT_UNITS) {
        pthread_mutex_unlock(&gammu_lock);
        free(ucs2);
        set_result(res, PROV_PERMANENT, "%s", "text too long: it does not fit in 50 parts");
        goto out;
    }
    GSM_ClearMultiPartSMSInfo(&info);
    info.EntriesNum = 1;
    info.UnicodeCoding = FALSE;
    info.Class = -1;
    info.Entries[0].ID = SMS_ConcatenatedAutoTextLong;
    info.Entries[0].Buffer = ucs2;              /* freed by FreeMultiPartSMSInfo */
    size_t units = UnicodeLength(ucs2), carried = 0;
    GSM_Error err = GSM_EncodeMultiPartSMS(GSM_GetGlobalDebug(), &info, multi);
    GSM_FreeMultiPartSMSInfo(&info);
    for (int i = 0; err == ERR_NONE && i < multi->Number; i++)
        carried += UnicodeLength(multi->SMS[i].Text);
    pthread_mutex_unlock(&gammu_lock);
    if (err != ERR_NONE) {
        set_result(res, PROV_PERMANENT, "cannot encode the text: %s", GSM_ErrorString(err));
        goto out;
    }
    /* libgammu 1.42 stops at 50 parts and still answers ERR_NONE: a text
     * that does not fit would go out cut short. */
    if (carried < units) {
        set_result(res, PROV_PERMANENT, "%s", "text too long: it does not fit in 50 parts");
        goto out;
    }
    if (multi->Number < 1 || multi->Number > GSM_MAX_MULTI_SMS) {
        set_result(res, PROV_PERMANENT, "%s", "text encodes to no part or too many");
        goto out;
    }
    if (j->expect_parts > 0 && multi->Number != j->expect_parts)
        gw_log(LOG_WARN, m->route, "message %s: encoded into %d parts, counted %d at enqueue",
               j->id ? j->id : "?", multi->Number, j->expect_parts);

    for (int i = 0; i < multi->Number; i++) {
        GSM_SMSMessage *part = &multi->SMS[i];
        DecodeUTF8(part->Number, j->to, nlen);
        part->SMSC = m->smsc_num;
        part->PDU = m->dlr ? SMS_Status_Report : SMS_Submit;
    }

    for (int i = 0; i < multi->Number; i++) {
        if (i == 0) {
            /* From here on the PDU may reach the network: a caller that gave
             * up before this point answered TRANSIENT, so do not send. */
            pthread_mutex_lock(&m->qlock);
            if (j->abandoned)
                abandoned_early = 1;
            else
                j->started = 1;
            pthread_mutex_unlock(&m->qlock);
            if (abandoned_early)
                goto out;
        }
        if (i > 0) {
            pthread_mutex_lock(&m->qlock);
            m->progress_ms = mono_ms();
            pthread_mutex_unlock(&m->qlock);
        }
        m->cb_fired = 0;
        m->cb_status = 0;
        m->cb_ref = -1;
        IO_LOCK(m);
        err = GSM_SendSMS(m->sm, &multi->SMS[i]);
        IO_UNLOCK(m);
        if (err != ERR_NONE) {
            if (is_link_error(err))
                m->need_reconnect = 1;
            if (err == ERR_NETWORK_ERROR)
                m->next_signal = 0;          /* is it still registered? look now */
            /* Earlier parts are out: resending all would duplicate them. */
            set_result(res, i == 0 ? PROV_TRANSIENT : PROV_UNCERTAIN,
                       "GSM_SendSMS: %s", GSM_ErrorString(err));
            goto out;
        }
        long long now = mono_ms();
        long long until = j->deadline > now + CB_MIN_WAIT_MS ? j->deadline : now + CB_MIN_WAIT_MS;
        while (!m->cb_fired && mono_ms() < until) {
            IO_LOCK(m);
            int got = GSM_ReadDevice(m->sm, TRUE);
            IO_UNLOCK(m);
            if (got <= 0 && !m->cb_fired)
                sleep_ms(10);                /* nothing came: do not spin */
        }
        take_unsolicited(m);    /* a +CDS for the part before may have come */
        if (!m->cb_fired) {
            /* The PDU was written and the modem fell silent. */
            m->need_reconnect = 1;
            set_result(res, PROV_UNCERTAIN, "%s", "no answer from the modem after the PDU");
            goto out;
        }
        if (m->cb_status != 0) {
            char code[32];
            snprintf(code, sizeof code, "%d", m->cb_status);
            prov_status st = classify_cms(m->cb_status);
            if (i > 0 && st == PROV_TRANSIENT)
                st = PROV_UNCERTAIN;
            set_result(res, st, "+CMS ERROR %s", code);
            goto out;
        }
        if (m->cb_ref < 0 && !is_dummy(m)) {
            /* libgammu reports "sent" with reference -1 from a stale buffer
             * after a modem recovered: nothing says this part left. */
            set_result(res, PROV_UNCERTAIN, "%s", "modem answered without a message reference");
            goto out;
        }
        add_ref(res, m->cb_ref);
        res->parts_sent = i + 1;
    }
    res->status = PROV_OK;
    res->error[0] = '\0';

out:
    free(multi);
    if (!abandoned_early) {
        pthread_mutex_lock(&m->qlock);
        if (res->status == PROV_OK)
            m->n_sent++;
        else
            m->n_failed++;
        if (res->status != PROV_OK && res->error[0])
            snprintf(m->last_error, sizeof m->last_error, "%.127s", res->error);
        pthread_mutex_unlock(&m->qlock);
    }
    if (res->status != PROV_OK && !abandoned_early) {
        char masked[PHONE_MAX];
        gw_log(LOG_WARN, m->route, "send %s to %s: %s (%s)", j->id ? j->id : "?",
               phone_mask(j->to, masked), prov_status_name(res->status), res->error);
    }
}

/* GSM_DateTime -> ms since the epoch; `fallback` when unset or not a
 * date (a field out of its range: a year past 9999 overflowed the
 * milliseconds). */
static long long dt_ms(const GSM_DateTime *d, long long fallback)
{
    if (d->Year < 1970 || d->Year > 9999 || d->Month < 1 || d->Month > 12 || d->Day < 1 || d->Day > 31
        || d->Hour < 0 || d->Hour > 23 || d->Minute < 0 || d->Minute > 59 || d->Second < 0 || d->Second > 60
        || d->Timezone < -86400 || d->Timezone > 86400)
        return fallback;
    struct tm tm = {
        .tm_year = d->Year - 1900, .tm_mon = d->Month - 1, .tm_mday = d->Day,
        .tm_hour = d->Hour, .tm_min = d->Minute, .tm_sec = d->Second,
    };
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return fallback;
    return ((long long)t - d->Timezone) * 1000;
}

/* Copies `units` UCS-2 units (libgammu's big-endian pairs) to out,
 * terminated, with every surrogate that is not half of a pair replaced by
 * U+FFFD: EncodeUTF8 writes a lone one as CESU-8, which is not UTF-8 (a
 * broken phone, or a part cut in the middle of an emoji). */
static void ucs2_clean(const unsigned char *in, size_t units, unsigned char *out)
{
    for (size_t i = 0; i < units; i++) {
        unsigned u = (unsigned)in[2 * i] << 8 | in[2 * i + 1];
        unsigned n = i + 1 < units ? (unsigned)in[2 * i + 2] << 8 | in[2 * i + 3] : 0;
        if (u >= 0xD800 && u <= 0xDBFF && n >= 0xDC00 && n <= 0xDFFF) {
            memcpy(out + 2 * i, in + 2 * i, 4);          /* a pair */
            i++;
            continue;
        }
        if (u >= 0xD800 && u <= 0xDFFF)
            u = 0xFFFD;
        out[2 * i] = (unsigned char)(u >> 8);
        out[2 * i + 1] = (unsigned char)(u & 0xFF);
    }
    out[2 * units] = out[2 * units + 1] = 0;
}

/* UCS-2 -> UTF-8 appended to *buf (malloc'd, grown). Under gammu_lock. */
static int append_utf8(char **buf, const unsigned char *ucs2)
{
    size_t have = *buf ? strlen(*buf) : 0;
    size_t units = UnicodeLength(ucs2);
    unsigned char *clean = malloc((units + 1) * 2);
    char *p = clean ? realloc(*buf, have + units * 3 + 1) : NULL;   /* <= 3 bytes per unit */
    if (!p) {
        free(clean);
        return -1;
    }
    ucs2_clean(ucs2, units, clean);
    p[have] = '\0';
    EncodeUTF8(p + have, clean);
    free(clean);
    *buf = p;
    return 0;
}

/* Remembers things seen across polls (a status report nobody claimed yet)
 * by key; the modem thread alone uses it.
 * Entries not seen in a poll are forgotten at its end. */
static held *held_find(modem *m, const char *key)
{
    for (int i = 0; i < m->nheld; i++)
        if (strcmp(m->held[i].key, key) == 0) {
            m->held[i].seen = 1;
            return &m->held[i];
        }
    if (m->nheld == MAX_HELD)
        return NULL;
    held *h = &m->held[m->nheld++];
    snprintf(h->key, sizeof h->key, "%s", key);
    h->first_ms = mono_ms();
    h->polls = 0;
    h->seen = 1;
    return h;
}

static void held_sweep(modem *m)
{
    int k = 0;
    for (int i = 0; i < m->nheld; i++)
        if (m->held[i].seen) {
            m->held[k] = m->held[i];
            m->held[k++].seen = 0;
        }
    m->nheld = k;
}

static int is_concat(const GSM_SMSMessage *s)
{
    return (s->UDH.Type == UDH_ConcatenatedMessages ||
            s->UDH.Type == UDH_ConcatenatedMessages16bit) && s->UDH.AllParts > 1 &&
           s->UDH.PartNumber >= 1 && s->UDH.PartNumber <= s->UDH.AllParts;
}

static int concat_ref(const GSM_SMSMessage *s)
{
    return s->UDH.ID16bit >= 0 ? s->UDH.ID16bit : s->UDH.ID8bit;
}

/* The sender (or a report's recipient) as UTF-8, normalised when possible. */
static char *number_of(const GSM_SMSMessage *s)
{
    char raw[(GSM_MAX_NUMBER_LENGTH + 1) * 3 + 1];
    unsigned char clean[sizeof s->Number];
    size_t units = UnicodeLength(s->Number);
    if (units > GSM_MAX_NUMBER_LENGTH)
        units = GSM_MAX_NUMBER_LENGTH;
    ucs2_clean(s->Number, units, clean);
    EncodeUTF8(raw, clean);
    char canon[PHONE_MAX], perr[128];
    return strdup(phone_normalize(raw, 1, canon, perr, sizeof perr) == 0 ? canon : raw);
}

/* Adds the parts `idx` (n of them, copies of `all`) to the item. */
static int item_parts(inbound_item *it, const GSM_SMSMessage *all, const int *idx, int n)
{
    it->parts = malloc((size_t)n * sizeof *it->parts);
    if (!it->parts)
        return -1;
    for (int i = 0; i < n; i++)
        it->parts[i] = all[idx[i]];
    it->nparts = n;
    return 0;
}

int gammu_rx_message(inbound_item *it, const GSM_SMSMessage *s, long long now_ms)
{
    if (s->Coding != SMS_Coding_8bit && append_utf8(&it->text, s->Text) < 0)
        return -1;
    if (!it->text && !(it->text = strdup("")))
        return -1;
    it->from = number_of(s);
    it->at_ms = dt_ms(&s->DateTime, now_ms);
    int concat = is_concat(s);
    it->part = concat ? s->UDH.PartNumber : 1;
    it->nparts_msg = concat ? s->UDH.AllParts : 1;
    /* sender and text whole: a cut identity would make two SMS one */
    size_t len = strlen(it->text) + (it->from ? strlen(it->from) : 0) + 160;
    it->identity = malloc(len);
    it->concat_key = malloc(160);
    if (!it->from || !it->identity || !it->concat_key)
        return -1;
    /* Two copies of one SMS share sender, centre timestamp, concatenation
     * reference, part and text; two SMS that share all five are one. */
    const GSM_DateTime *d = &s->DateTime;
    snprintf(it->identity, len, "%s|%04d%02d%02d%02d%02d%02d|%d|%d|%d|%s", it->from,
             d->Year, d->Month, d->Day, d->Hour, d->Minute, d->Second,
             concat ? concat_ref(s) : -1, it->nparts_msg, it->part, it->text);
    snprintf(it->concat_key, 160, "%.100s|%d|%d", it->from, concat ? concat_ref(s) : -1,
             it->nparts_msg);
    return 0;
}

int gammu_rx_report(inbound_item *it, const GSM_SMSMessage *s, long long now_ms)
{
    int st = s->DeliveryStatus;
    it->is_report = 1;
    it->ref = s->MessageReference;
    it->delivered = st < 0x20 ? 1 : (st & 0x40) ? 0 : -1;
    snprintf(it->detail, sizeof it->detail, "TP-ST 0x%02x", (unsigned)st);
    it->at_ms = dt_ms(&s->DateTime, now_ms);
    it->to = number_of(s);
    return it->to ? 0 : -1;
}

static void read_inbox(modem *m, job *j)
{
    GSM_MultiSMSMessage *cur = calloc(1, sizeof *cur);
    GSM_SMSMessage *all = NULL;
    int n = 0, cap = 0;
    char *used = NULL;
    int *idx = NULL;
    long long now_ms = prov_now_ms();

    j->rc = -1;
    if (!cur)
        return;
    IO_LOCK(m);
    cur->SMS[0].Folder = 0;
    cur->SMS[0].Location = 0;
    for (gboolean start = TRUE; n < MAX_INBOX; start = FALSE) {
        GSM_Error err = GSM_GetNextSMS(m->sm, cur, start);
        if (err == ERR_EMPTY)
            break;
        if (err != ERR_NONE) {
            gw_log(LOG_WARN, m->route, "reading the inbox: %s", GSM_ErrorString(err));
            if (is_link_error(err))
                m->need_reconnect = 1;
            break;
        }
        for (int i = 0; i < cur->Number && n < MAX_INBOX; i++) {
            if (n == cap) {
                int nc = cap ? cap * 2 : 16;
                GSM_SMSMessage *p = realloc(all, (size_t)nc * sizeof *p);
                if (!p)
                    break;
                all = p;
                cap = nc;
            }
            all[n++] = cur->SMS[i];
        }
    }
    IO_UNLOCK(m);
    if (n == 0) {
        held_sweep(m);
        j->rc = 0;
        goto done;
    }
    used = calloc((size_t)n, 1);
    idx = malloc((size_t)n * sizeof *idx);
    j->items = calloc((size_t)n, sizeof *j->items);
    if (!used || !idx || !j->items)
        goto done;
    pthread_mutex_lock(&gammu_lock);         /* decoding: libgammu's helpers */
    for (int k = 0; k < n; k++) {
        GSM_SMSMessage *s = &all[k];
        if (used[k])
            continue;
        used[k] = 1;
        inbound_item *it = &j->items[j->nitems];
        memset(it, 0, sizeof *it);
        if (s->PDU == SMS_Status_Report) {
            char key[96];
            snprintf(key, sizeof key, "r|%d|%d|%d", s->Folder, s->Location, s->MessageReference);
            held *h = held_find(m, key);
            int last_chance = !h || ++h->polls >= REPORT_POLLS;
            idx[0] = k;
            if (gammu_rx_report(it, s, now_ms) < 0 || item_parts(it, all, idx, 1) < 0) {
                gammu_rx_clear(it);
                continue;
            }
            it->last_chance = last_chance;
            j->nitems++;
            continue;
        }
        if (s->PDU != SMS_Deliver)
            continue;                    /* outbox, drafts: not ours to take */
        /* Each part goes to the gateway on its own: the parts of a long
         * reply wait in Redis, not on the SIM, whatever order they come in. */
        idx[0] = k;
        if (item_parts(it, all, idx, 1) < 0 || gammu_rx_message(it, s, now_ms) < 0) {
            gammu_rx_clear(it);
            continue;
        }
        j->nitems++;
    }
    pthread_mutex_unlock(&gammu_lock);
    held_sweep(m);
    j->rc = 0;

done:
    free(idx);
    free(used);
    free(all);
    free(cur);
}

/* Adds a decoded unsolicited item to the pending list (qlock held). */
static void pend_add_locked(modem *m, inbound_item *it)
{
    if (m->npend == MAX_PENDING) {
        gw_log(LOG_WARN, m->route, "%d unsolicited messages/reports wait for the gateway: "
               "the oldest is dropped", MAX_PENDING);
        gammu_rx_clear(&m->pend[0]);
        memmove(&m->pend[0], &m->pend[1], (size_t)(MAX_PENDING - 1) * sizeof *m->pend);
        m->npend--;
    }
    m->pend[m->npend++] = *it;
    memset(it, 0, sizeof *it);
}

/* On the modem thread, holding no lock: what on_incoming_sms copied.
 * A stored SMS announced (+CMTI, +CDSI) makes the next storage read due at
 * once; a status report or message that came whole (+CDS, +CMT) is stored
 * nowhere on the modem: it is decoded here and waits in m->pend until
 * gammu_poll() hands it to the gateway. */
static void take_unsolicited(modem *m)
{
    if (m->nunsol == 0 && m->unsol_lost == 0)
        return;
    inbound_item got[MAX_UNSOL];
    int ngot = 0, announced = m->unsol_lost > 0;
    long long now_ms = prov_now_ms(), mono = mono_ms();
    if (m->unsol_lost)
        gw_log(LOG_WARN, m->route, "%d new-message indication(s) came faster than they could be "
               "taken: reading the storage now (a +CDS report among them is lost)", m->unsol_lost);
    pthread_mutex_lock(&gammu_lock);         /* decoding: libgammu's helpers */
    for (int i = 0; i < m->nunsol; i++) {
        const GSM_SMSMessage *s = &m->unsol[i];
        inbound_item *it = &got[ngot];
        memset(it, 0, sizeof *it);
        if (s->PDU == SMS_Status_Report && s->Location == 0) {
            if (gammu_rx_report(it, s, now_ms) < 0) {
                gammu_rx_clear(it);
                continue;
            }
        } else if (s->PDU == SMS_Deliver) {
            if (gammu_rx_message(it, s, now_ms) < 0) {
                gammu_rx_clear(it);
                continue;
            }
        } else {
            announced = 1;                   /* +CMTI / +CDSI: stored at s->Location */
            continue;
        }
        it->first_ms = it->next_ms = mono;
        ngot++;
    }
    pthread_mutex_unlock(&gammu_lock);
    m->nunsol = 0;
    m->unsol_lost = 0;
    pthread_mutex_lock(&m->qlock);
    if (announced)
        m->poll_due = 1;
    for (int i = 0; i < ngot; i++)
        pend_add_locked(m, &got[i]);
    pthread_mutex_unlock(&m->qlock);
    for (int i = 0; i < ngot; i++)
        gammu_rx_clear(&got[i]);
}

static void delete_items(modem *m, job *j)
{
    int failed = 0;
    IO_LOCK(m);
    for (int i = 0; i < j->nitems; i++)
        for (int p = 0; j->items[i].stored && p < j->items[i].nparts; p++) {
            /* a copy: the dummy driver rewrites Location in place */
            GSM_SMSMessage one = j->items[i].parts[p];
            GSM_Error err = GSM_DeleteSMS(m->sm, &one);
            if (err != ERR_NONE) {
                failed++;
                gw_log(LOG_WARN, m->route, "deleting message at location %d: %s",
                       j->items[i].parts[p].Location, GSM_ErrorString(err));
                if (is_link_error(err))
                    m->need_reconnect = 1;
            }
        }
    IO_UNLOCK(m);
    j->rc = failed ? -1 : 0;
}

static void run_job(modem *m, job *j)
{
    switch (j->kind) {
    case JOB_SEND:   do_send(m, j); break;
    case JOB_POLL:   read_inbox(m, j); break;
    case JOB_DELETE: delete_items(m, j); break;
    }
}

static void fail_job(job *j, const char *why)
{
    j->rc = -1;
    j->res.status = PROV_TRANSIENT;
    snprintf(j->res.error, sizeof j->res.error, "%s", why);
}

/* Called with qlock held: the modem is down, so every waiting job fails. */
static void fail_queue_locked(modem *m, const char *why)
{
    while (m->head) {
        job *j = m->head;
        m->head = j->next;
        j->queued = 0;
        j->next = NULL;
        fail_job(j, why);
        job_finish_locked(m, j);
    }
    m->tail = NULL;
}

static void schedule_reconnect_locked(modem *m)
{
    m->connected = 0;
    m->next_attempt = mono_ms() + m->backoff_ms;
    m->backoff_ms = m->backoff_ms * 2 > m->rmax ? m->rmax : m->backoff_ms * 2;
}

static void *modem_main(void *arg)
{
    modem *m = arg;
    pthread_mutex_lock(&m->qlock);
    while (!m->stop) {
        long long now = mono_ms();
        if (!m->connected && now >= m->next_attempt) {
            m->connecting = 1;
            pthread_mutex_unlock(&m->qlock);
            int rc = gm_connect(m);
            pthread_mutex_lock(&m->qlock);
            m->connecting = 0;
            if (rc == 0) {
                pthread_mutex_unlock(&m->qlock);
                take_unsolicited(m);
                pthread_mutex_lock(&m->qlock);
                m->connected = 1;
                if (m->n_connects++ > 0)
                    m->poll_due = 1;  /* what came while it was away was not announced */
                m->backoff_ms = m->rmin;
                m->fail_streak = 0;
                if (m->quarantined)
                    gw_log(LOG_INFO, m->route, "modem answers again: taken back from quarantine");
                m->quarantined = 0;
                gw_log(LOG_INFO, m->route, "modem connected: IMEI %s, IMSI %s, operator %s, "
                       "signal %d%%", *m->imei ? m->imei : "?", *m->imsi ? m->imsi : "?",
                       *m->op ? m->op : "?", m->signal);
            } else {
                m->fail_streak++;
                if (m->fail_streak >= m->quarantine_after && !m->quarantined) {
                    m->quarantined = 1;
                    m->backoff_ms = m->rmax;
                    gw_log(LOG_ERROR, m->route, "modem quarantined after %d failed recoveries (%s); "
                           "probing it every %d ms", m->fail_streak, m->last_error, m->rmax);
                } else if (!m->quarantined) {
                    gw_log(LOG_WARN, m->route, "modem connection failed: %s; retrying in %d ms",
                           m->last_error, m->backoff_ms);
                }
                schedule_reconnect_locked(m);
                fail_queue_locked(m, m->quarantined ? "modem quarantined" : "modem not connected");
            }
            continue;
        }
        if (m->head) {
            job *j = m->head;
            m->head = j->next;
            if (!m->head)
                m->tail = NULL;
            j->queued = 0;
            j->next = NULL;
            if (!m->connected) {
                fail_job(j, "modem not connected");
                job_finish_locked(m, j);
                continue;
            }
            m->busy = 1;
            m->progress_ms = mono_ms();
            pthread_mutex_unlock(&m->qlock);
            run_job(m, j);
            pthread_mutex_lock(&m->qlock);
            m->busy = 0;
            job_finish_locked(m, j);
            pthread_mutex_unlock(&m->qlock);
            take_unsolicited(m);
            pthread_mutex_lock(&m->qlock);
        } else if (m->connected && now >= m->next_signal) {
            pthread_mutex_unlock(&m->qlock);
            refresh_signal(m);
            take_unsolicited(m);
            pthread_mutex_lock(&m->qlock);
        } else {
            long long until = m->connected ? m->next_signal : m->next_attempt;
            /* With indications on, an idle modem's line is read every
             * IDLE_READ_MS, so +CMTI / +CDS are seen as they come. The wait
             * ends at once when a job is posted: sends are not delayed. */
            int idle_read = m->connected && m->notify;
            if (idle_read && until > now + IDLE_READ_MS)
                until = now + IDLE_READ_MS;
            struct timespec ts;
            ms_to_timespec(until, &ts);
            pthread_cond_timedwait(&m->wake, &m->qlock, &ts);
            if (idle_read && !m->head && !m->stop) {
                pthread_mutex_unlock(&m->qlock);
                IO_LOCK(m);
                GSM_ReadDevice(m->sm, FALSE);
                IO_UNLOCK(m);
                take_unsolicited(m);
                pthread_mutex_lock(&m->qlock);
            }
        }
        if (m->need_reconnect) {
            m->need_reconnect = 0;
            snprintf(m->last_error, sizeof m->last_error, "link error, reconnecting");
            pthread_mutex_unlock(&m->qlock);
            gm_disconnect(m);
            pthread_mutex_lock(&m->qlock);
            gw_log(LOG_WARN, m->route, "modem link lost; reconnecting in %d ms", m->backoff_ms);
            schedule_reconnect_locked(m);
            fail_queue_locked(m, "modem not connected");
        }
    }
    fail_queue_locked(m, "route closing");
    m->connected = 0;
    pthread_mutex_unlock(&m->qlock);
    gm_disconnect(m);
    return NULL;
}

/* ---- the driver --------------------------------------------------------- */

static void modem_free(modem *m)
{
    if (!m)
        return;
    free(m->model);
    free(m->connection);
    free(m->device);
    free(m->smsc);
    free(m->unsol);
    if (m->pend)
        items_free(m->pend, m->npend);
    free(m);
}

static int gammu_open(prov_route *r, const config_setting_t *opts, char *err, size_t errlen)
{
    if (prov_check_options(r, opts, gammu_keys, err, errlen) < 0)
        return -1;
    modem *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "route '%s': out of memory", r->name);
        return -1;
    }
    snprintf(m->route, sizeof m->route, "%s", r->name);
    m->model = strdup(cfg_str(opts, gammu_keys, "model"));
    m->connection = strdup(cfg_str(opts, gammu_keys, "connection"));
    m->device = strdup(cfg_str(opts, gammu_keys, "device"));
    m->smsc = strdup(cfg_str(opts, gammu_keys, "smsc"));
    m->dlr = cfg_bool(opts, gammu_keys, "delivery_reports");
    m->rmin = (int)cfg_int(opts, gammu_keys, "reconnect_min_ms");
    m->rmax = (int)cfg_int(opts, gammu_keys, "reconnect_max_ms");
    m->poll_ms = (int)cfg_int(opts, gammu_keys, "poll_interval_ms");
    m->multipart_timeout = (int)cfg_int(opts, gammu_keys, "multipart_timeout");
    m->health_ms = (int)cfg_int(opts, gammu_keys, "health_interval_ms");
    m->quarantine_after = (int)cfg_int(opts, gammu_keys, "quarantine_after");
    m->unsol = calloc(MAX_UNSOL, sizeof *m->unsol);
    m->pend = calloc(MAX_PENDING, sizeof *m->pend);
    if (!m->model || !m->connection || !m->device || !m->smsc || !m->unsol || !m->pend) {
        snprintf(err, errlen, "route '%s': out of memory", r->name);
        modem_free(m);
        return -1;
    }
    if (!*m->device) {
        snprintf(err, errlen, "route '%s': gammu.device must not be empty", r->name);
        modem_free(m);
        return -1;
    }
    if (m->rmax < m->rmin) {
        snprintf(err, errlen, "route '%s': gammu.reconnect_max_ms (%d) is below "
                 "reconnect_min_ms (%d)", r->name, m->rmax, m->rmin);
        modem_free(m);
        return -1;
    }
    if (is_dummy(m) && mkdir_p(m->device) != 0) {
        snprintf(err, errlen, "route '%s': gammu.device: cannot create folder '%s': %s",
                 r->name, m->device, strerror(errno));
        modem_free(m);
        return -1;
    }
    m->backoff_ms = m->rmin;
    m->signal = -1;
    m->registered = -1;
    m->last_poll = -1;

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&m->qlock, NULL);
    pthread_cond_init(&m->wake, &ca);
    pthread_cond_init(&m->done, &ca);
    pthread_condattr_destroy(&ca);
    /* The thread's first act is to connect; until it is done, jobs queue. */
    m->connecting = 1;
    int rc = pthread_create(&m->thread, NULL, modem_main, m);
    if (rc != 0) {
        snprintf(err, errlen, "route '%s': cannot start the modem thread: %s",
                 r->name, strerror(rc));
        pthread_cond_destroy(&m->wake);
        pthread_cond_destroy(&m->done);
        pthread_mutex_destroy(&m->qlock);
        modem_free(m);
        return -1;
    }
    r->priv = m;
    return 0;
}

static int route_timeout_ms(const prov_route *r)
{
    return r->send_timeout_ms > 0 ? r->send_timeout_ms : 60000;
}

static int gammu_send(prov_route *r, const prov_msg *msg, prov_result *res)
{
    modem *m = r->priv;
    res->status = PROV_TRANSIENT;
    res->parts_sent = 0;
    res->refs[0] = '\0';
    res->error[0] = '\0';
    if (!msg->to || !msg->text) {
        res->status = PROV_PERMANENT;
        snprintf(res->error, sizeof res->error, "message without number or text");
        return 0;
    }
    job *j = calloc(1, sizeof *j);
    if (!j || !(j->to = strdup(msg->to)) || !(j->text = strdup(msg->text)) ||
        (msg->id && !(j->id = strdup(msg->id)))) {
        job_free(j);
        snprintf(res->error, sizeof res->error, "out of memory");
        return 0;
    }
    j->kind = JOB_SEND;
    j->expect_parts = msg->parts;
    j->deadline = mono_ms() + route_timeout_ms(r);

    int started = 0;
    int rc = job_run(m, j, &started);
    if (rc == 1) {
        *res = j->res;
        job_free(j);
    } else if (rc == 0) {
        res->status = started ? PROV_UNCERTAIN : PROV_TRANSIENT;
        snprintf(res->error, sizeof res->error, "%s", started
                 ? "timed out after the PDU was handed to the modem"
                 : "timed out waiting for the modem");
    } else {
        job_free(j);
        pthread_mutex_lock(&m->qlock);
        snprintf(res->error, sizeof res->error, "modem not connected%s%s",
                 *m->last_error ? ": " : "", m->last_error);
        pthread_mutex_unlock(&m->qlock);
    }
    return 0;
}

/* Hands what came unsolicited (+CDS reports, +CMT messages) to the
 * gateway. Nothing of it is on the modem to delete. A message the gateway
 * could not store waits for the next call; a report nobody claims yet (the
 * worker that sent the part may not have recorded its reference) is offered
 * again, 1, 2, 4, 8 s apart, for as long as a send may take, then kept as
 * unmatched (last_chance) like a polled one. */
static void deliver_pending(prov_route *r, modem *m, const prov_inbound_cb *cb)
{
    long long now = mono_ms();
    long long hold = (long long)REPORT_POLLS * m->poll_ms;
    if (hold < route_timeout_ms(r) + 5000)
        hold = route_timeout_ms(r) + 5000;
    if (hold > PENDING_HOLD_MS)
        hold = PENDING_HOLD_MS;
    pthread_mutex_lock(&m->qlock);
    int n = 0;
    for (int i = 0; i < m->npend; i++)
        n += m->pend[i].next_ms <= now;
    if (n == 0) {
        pthread_mutex_unlock(&m->qlock);
        return;
    }
    inbound_item *due = calloc((size_t)n, sizeof *due);
    if (!due) {
        pthread_mutex_unlock(&m->qlock);
        return;
    }
    int k = 0, left = 0;
    for (int i = 0; i < m->npend; i++) {
        if (m->pend[i].next_ms <= now)
            due[k++] = m->pend[i];
        else
            m->pend[left++] = m->pend[i];
    }
    m->npend = left;
    pthread_mutex_unlock(&m->qlock);

    for (int i = 0; i < n; i++) {
        inbound_item *it = &due[i];
        if (it->is_report) {
            it->last_chance = now - it->first_ms >= hold;
            prov_report rep = { .ref = it->ref, .to = it->to, .delivered = it->delivered,
                                .detail = it->detail, .at_ms = it->at_ms,
                                .last_chance = it->last_chance };
            it->stored = cb && cb->report ? cb->report(r->name, &rep, cb->ud) == 0 : 0;
            if (it->last_chance)
                it->stored = 1;              /* offered for the last time: done */
        } else {
            prov_inbound in = { .from = it->from, .text = it->text, .received_ms = it->at_ms,
                                .identity = it->identity, .part = it->part, .parts = it->nparts_msg,
                                .concat_key = it->concat_key,
                                .part_timeout_ms = (long long)m->multipart_timeout * 1000 };
            it->stored = cb && cb->message ? cb->message(r->name, &in, cb->ud) == 0 : 0;
            if (it->stored) {
                pthread_mutex_lock(&m->qlock);
                m->n_received++;
                pthread_mutex_unlock(&m->qlock);
            }
        }
        if (!it->stored) {
            int step = it->offers < 3 ? 1000 << it->offers : 8000;
            it->offers++;
            it->next_ms = now + step;
        }
    }
    /* what is left goes back into the list */
    pthread_mutex_lock(&m->qlock);
    for (int i = 0; i < n; i++) {
        if (due[i].stored)
            gammu_rx_clear(&due[i]);
        else
            pend_add_locked(m, &due[i]);
    }
    pthread_mutex_unlock(&m->qlock);
    free(due);
}

static int gammu_poll(prov_route *r, const prov_inbound_cb *cb)
{
    modem *m = r->priv;
    deliver_pending(r, m, cb);
    long long now = mono_ms();
    pthread_mutex_lock(&m->qlock);
    /* poll_interval_ms is the fallback: a modem that announced a stored
     * message (+CMTI, +CDSI) is read at once */
    int skip = !m->poll_due && m->last_poll >= 0 && now - m->last_poll < m->poll_ms;
    if (!skip) {
        m->last_poll = now;
        m->poll_due = 0;
    }
    pthread_mutex_unlock(&m->qlock);
    if (skip)
        return 0;

    job *j = calloc(1, sizeof *j);
    if (!j)
        return -1;
    j->kind = JOB_POLL;
    j->deadline = now + route_timeout_ms(r);
    int started = 0;
    int jr = job_run(m, j, &started);
    if (jr != 1) {
        if (jr < 0)
            job_free(j);      /* never posted; 0: job_run or the modem thread frees it */
        pthread_mutex_lock(&m->qlock);
        m->poll_due = 1;      /* not read: an announced message still waits */
        pthread_mutex_unlock(&m->qlock);
        return -1;
    }
    /* rc -1 with some items: deliver what was read, report the error */
    int rc = j->rc, reports = 0;
    for (int i = 0; i < j->nitems; i++)
        reports += j->items[i].is_report;
    if (j->nitems)
        gw_log(LOG_INFO, r->name, "inbox: %d message(s), %d status report(s)",
               j->nitems - reports, reports);
    int stored = 0;
    for (int i = 0; i < j->nitems; i++) {
        inbound_item *it = &j->items[i];
        if (it->is_report) {
            prov_report rep = { .ref = it->ref, .to = it->to, .delivered = it->delivered,
                                .detail = it->detail, .at_ms = it->at_ms,
                                .last_chance = it->last_chance };
            it->stored = cb && cb->report ? cb->report(r->name, &rep, cb->ud) == 0 : 0;
        } else {
            prov_inbound in = { .from = it->from, .text = it->text, .received_ms = it->at_ms,
                                .identity = it->identity, .part = it->part, .parts = it->nparts_msg,
                                .concat_key = it->concat_key,
                                .part_timeout_ms = (long long)m->multipart_timeout * 1000 };
            it->stored = cb && cb->message ? cb->message(r->name, &in, cb->ud) == 0 : 0;
            if (it->stored) {
                pthread_mutex_lock(&m->qlock);
                m->n_received++;
                pthread_mutex_unlock(&m->qlock);
            }
        }
        stored += it->stored;
    }
    if (stored == 0) {
        job_free(j);
        return rc < 0 ? -1 : 0;
    }
    /* Delivered: now remove them from the modem. The same job, reused. */
    j->kind = JOB_DELETE;
    j->done = 0;
    j->rc = 0;
    j->deadline = mono_ms() + route_timeout_ms(r);
    int drc = job_run(m, j, &started);
    if (drc == 1) {
        if (j->rc < 0)
            rc = -1;
        job_free(j);
    } else {
        if (drc < 0)
            job_free(j);
        gw_log(LOG_WARN, r->name, "could not delete delivered messages from the modem; "
               "they will be delivered again");
        rc = -1;
    }
    return rc < 0 ? -1 : 0;
}

static void gammu_health(prov_route *r, prov_health *h)
{
    modem *m = r->priv;
    long long now = mono_ms();
    pthread_mutex_lock(&m->qlock);
    int stalled = stalled_locked(m, now);
    h->up = m->connected && !stalled && m->registered != 0;
    h->signal_percent = m->connected ? m->signal : -1;
    if (m->connected && stalled)
        snprintf(h->state, sizeof h->state, "not answering for %llds",
                 (now - m->progress_ms) / 1000);
    else if (m->connected && m->registered == 0)
        snprintf(h->state, sizeof h->state, "no network registration");
    else if (m->connected)
        snprintf(h->state, sizeof h->state, "connected");
    else if (m->connecting)
        snprintf(h->state, sizeof h->state, "%s", m->quarantined ? "quarantined, probing"
                                                                  : "connecting");
    else
    {
        long long in_s = (m->next_attempt - now + 999) / 1000;
        int secs = in_s < 0 ? 0 : in_s > 99999 ? 99999 : (int)in_s;
        snprintf(h->state, sizeof h->state, "%s in %ds", m->quarantined
                 ? "quarantined, next probe" : "reconnecting", secs);
    }
    snprintf(h->device_id, sizeof h->device_id, "%s", m->imei);
    snprintf(h->imsi, sizeof h->imsi, "%s", m->imsi);
    snprintf(h->operator_name, sizeof h->operator_name, "%s", m->op);
    h->registered = m->connected ? m->registered : -1;
    h->sent = m->n_sent;
    h->failed = m->n_failed;
    h->received = m->n_received;
    snprintf(h->last_error, sizeof h->last_error, "%s", m->last_error);
    pthread_mutex_unlock(&m->qlock);
}

static void gammu_close(prov_route *r)
{
    modem *m = r->priv;
    if (!m)
        return;
    pthread_mutex_lock(&m->qlock);
    m->stop = 1;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->qlock);
    /* may wait for a send in progress (an AT modem can take ~30 s to time out) */
    pthread_join(m->thread, NULL);
    pthread_cond_destroy(&m->wake);
    pthread_cond_destroy(&m->done);
    pthread_mutex_destroy(&m->qlock);
    modem_free(m);
    r->priv = NULL;
}

const prov_driver prov_gammu = {
    .name = "gammu",
    .caps = PROV_CAP_SMS | PROV_CAP_DLR | PROV_CAP_INBOUND,
    .keys = gammu_keys,
    .open = gammu_open,
    .send = gammu_send,
    .poll_inbound = gammu_poll,
    .health = gammu_health,
    .close = gammu_close,
};
