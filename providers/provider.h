/* provider.h -- the contract between the gateway and a provider driver.
 *
 * A *driver* is the code for one kind of provider (gammu.c, sink.c, ...);
 * a *route* is one configured instance of a driver: one modem, one account.
 * Each driver exports exactly one symbol, a `prov_driver` table filled with
 * designated initializers; everything else in its file is static.
 * provider.c holds the registry (prov_find_driver) and the route life cycle.
 *
 * What a driver MUST do
 *   - open(): validate its own options group with cfg_check_group() against
 *     its `keys` table (unknown keys are errors, never ignored), allocate its
 *     state into route->priv and return 0; or return -1 with one line in err
 *     naming the route, the key and what is wrong. open() may start threads.
 *   - send(): hand one message to the provider and report what happened in
 *     `res`. It is called from worker threads, several at a time on the same
 *     route, so it MUST be thread-safe; it MAY block, but never longer than
 *     the route's send_timeout_ms (plus the time to notice it). It MUST NOT
 *     keep or change the message it is handed: copy what it needs.
 *   - classify every failure:
 *       PROV_TRANSIENT  the message may succeed later: modem busy, silent or
 *                       timed out, connection refused, HTTP 5xx, network error.
 *       PROV_THROTTLED  the provider asks us to slow down (HTTP 429, a rate
 *                       or quota code); retried like a transient one.
 *       PROV_PERMANENT  retrying cannot help: invalid number, text refused,
 *                       unknown template, account barred.
 *     When in doubt whether a message left, the driver says PROV_UNCERTAIN
 *     (e.g. the PDU was written and the modem fell silent) and the lane's
 *     reclaim policy decides.
 *   - fill res->refs with the provider's reference for each part, comma
 *     separated, in part order (the modem's TP-MR, the provider's BizId...).
 *   - close(): stop its threads, free route->priv. Called once, after the
 *     last send() has returned.
 * What a driver SHOULD do
 *   - log with the route name: gw_log(LOG_WARN, route->name, ...), masking
 *     numbers with phone_mask() and logging texts only at LOG_DEBUG.
 *   - implement health() so the gateway can report signal and state.
 * What a driver MAY do
 *   - poll_inbound(): deliver received messages and status reports through
 *     the callbacks; called from the gateway's inbound thread only, on the
 *     route's poll interval. Drivers without PROV_CAP_INBOUND leave it NULL.
 *     A callback returns 0 once the item is stored durably; only then may
 *     the driver delete it at the provider (a modem's storage), so nothing
 *     is lost between the two. A driver that can tell two copies of one
 *     message apart from two messages gives each an `identity`: the
 *     gateway stores one message per identity.
 *
 * Ownership: the gateway owns prov_msg and prov_result; strings in prov_msg
 * are valid during the call only. The driver owns route->priv. */
#ifndef HERALD_PROVIDER_H
#define HERALD_PROVIDER_H

#include <stddef.h>
#include <libconfig.h>
#include "gateway/cfgkeys.h"

/* Capabilities (curl's `supports` bitfield). */
#define PROV_CAP_SMS                (1u << 0)
#define PROV_CAP_MMS                (1u << 1)
#define PROV_CAP_DLR                (1u << 2)  /* delivery reports */
#define PROV_CAP_INBOUND            (1u << 3)  /* receives replies */
#define PROV_CAP_PROVIDER_TEMPLATES (1u << 4)  /* sends template codes, not text */

typedef enum {
    PROV_OK = 0,
    PROV_TRANSIENT = 1,
    PROV_THROTTLED = 2,
    PROV_PERMANENT = 3,
    PROV_UNCERTAIN = 4
} prov_status;

const char *prov_status_name(prov_status s);
/* Makes s one printable line: control characters (a provider's message
 * may hold newlines) become spaces. For prov_result.error. */
void prov_oneline(char *s);

/* One message to send. Valid only during send(). */
typedef struct prov_msg {
    const char *id;           /* Herald's message id */
    const char *to;           /* canonical E.164, "+8613800138000" */
    const char *text;         /* rendered UTF-8, signature included */
    const char *encoding;     /* "gsm7" or "ucs2", as counted at enqueue */
    int parts;                /* parts counted at enqueue */
    const char *family;
    const char *template_name;
    const char *provider_code;/* approved template code, or NULL */
    const char *vars_json;    /* the variables as a JSON object */
    const char *provider_params; /* the template header's "param=var, ..." map,
                                    or NULL: provider parameters = variables */
    int attempt;              /* 1 on the first try */
    /* MMS (a bulletin issue for a PROV_CAP_MMS route; see gateway/bulletin.c):
     * NULL / 0 for an SMS. `to` is recipients[0]. */
    const char *mms_type;     /* Content-Type of mms_body (multipart/related) */
    const char *mms_body;     /* the composed content (templates/mms.h) */
    size_t mms_len;
    const char *subject;      /* the MMS Subject */
    const char *const *recipients;  /* every recipient of this request */
    int nrecipients;
} prov_msg;

#define PROV_REFS_MAX  512
#define PROV_ERR_MAX   256

typedef struct prov_result {
    prov_status status;
    int parts_sent;                   /* parts the provider accepted */
    char refs[PROV_REFS_MAX];         /* per-part references, comma separated */
    char error[PROV_ERR_MAX];         /* one line, no personal data */
    long long retry_after_ms;         /* THROTTLED: how long the provider asks us
                                         to leave the route alone (0 = unsaid) */
} prov_result;

/* Something a route received. */
typedef struct prov_inbound {
    const char *from;         /* canonical number when it could be normalised */
    const char *text;         /* UTF-8: the whole text, or this part's */
    long long received_ms;
    const char *identity;     /* same for every copy of this SMS (part); NULL: none */
    /* One part of a concatenated SMS (parts > 1): the gateway keeps the
     * parts in Redis and stores the message once all `parts` arrived, or
     * with what arrived part_timeout_ms after the first (flagged partial). */
    int part, parts;          /* 1-based part and count; parts 0 or 1: whole */
    const char *concat_key;   /* the same for every part of one message */
    long long part_timeout_ms;
} prov_inbound;

typedef struct prov_report {
    int ref;                  /* message reference the report is about */
    const char *to;           /* the recipient it names (canonical), or NULL */
    int last_chance;          /* 1: the driver will not offer it again, so a
                                 report matching nothing must be kept now */
    int delivered;            /* 1 delivered, 0 failed, -1 still pending */
    const char *detail;       /* e.g. "TP-ST 0x00" */
    long long at_ms;
} prov_report;

typedef struct prov_inbound_cb {
    /* each returns 0 when stored, -1 when not (the driver keeps the item) */
    int (*message)(const char *route, const prov_inbound *m, void *ud);
    int (*report)(const char *route, const prov_report *r, void *ud);
    void *ud;
} prov_inbound_cb;

typedef struct prov_health {
    int up;                   /* 1 when the route can send now */
    int signal_percent;       /* -1 when unknown */
    char state[64];           /* "connected", "reconnecting in 8s", ... */
    /* optional (a driver that does not know leaves them "" / -1 / 0): */
    char device_id[32];       /* what the device is known by: a modem's IMEI */
    char imsi[32];            /* the SIM */
    char operator_name[64];
    int registered;           /* network registration: 1, 0, or -1 unknown */
    long long sent, failed, received;   /* since the route opened */
    char last_error[128];
} prov_health;

typedef struct prov_route prov_route;

typedef struct prov_driver {
    const char *name;                 /* the `driver` value in the config */
    unsigned caps;
    const cfg_key *keys;              /* the keys of its options group */
    int  (*open)(prov_route *r, const config_setting_t *opts, char *err, size_t errlen);
    int  (*send)(prov_route *r, const prov_msg *m, prov_result *res);
    int  (*poll_inbound)(prov_route *r, const prov_inbound_cb *cb);   /* may be NULL */
    void (*health)(prov_route *r, prov_health *h);                    /* may be NULL */
    void (*close)(prov_route *r);
} prov_driver;

/* A configured route. Filled by the gateway before open(). */
struct prov_route {
    char name[64];
    const prov_driver *driver;
    unsigned families;                /* bit (1 << tpl_family) per family served */
    int rate_per_minute;              /* 0 = unlimited (enforced by the gateway) */
    int send_timeout_ms;
    void *priv;                       /* the driver's state */
};

/* The drivers compiled in. */
extern const prov_driver prov_gammu;
extern const prov_driver prov_sink;
extern const prov_driver prov_mm7;
extern const prov_driver prov_http;
extern const prov_driver prov_aliyun;
extern const prov_driver prov_tencent;

/* Finds a driver by name; NULL with "unknown driver 'x' (known: gammu,
 * sink)" or "x support not compiled in" in err. */
const prov_driver *prov_find_driver(const char *name, char *err, size_t errlen);
/* The NULL-terminated list of compiled-in drivers. */
extern const prov_driver *const prov_drivers[];

/* For drivers' open(): checks `opts` (the route's options group, NULL when
 * absent) against `keys` with cfg_check_group(), using the group's own path
 * in the config ("routes.[0].gammu"). Returns 0, or -1 with "route 'name':
 * file:line: path.key: what is wrong" in err. An absent group is an error
 * only when `keys` has a required key (def == NULL). */
int prov_check_options(const prov_route *r, const config_setting_t *opts,
                       const cfg_key *keys, char *err, size_t errlen);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME), for received_ms/at_ms. */
long long prov_now_ms(void);

#endif
