/* config.h -- herald.conf: loading, checking, and the values the gateway uses.
 *
 * The file is libconfig syntax. Every key is described by a cfg_key table
 * (gateway/cfgkeys.h) in config.c or in a driver; docs/configuration.md
 * documents each and a test keeps the two in step. */
#ifndef HERALD_CONFIG_H
#define HERALD_CONFIG_H

#include <libconfig.h>
#include "queue/queue.h"
#include "templates/catalog.h"
#include "providers/provider.h"

#define GW_MAX_ROUTES 32

typedef struct gw_route_cfg {
    const char *name;
    const prov_driver *driver;
    unsigned families;                 /* bit per tpl_family */
    int rate_per_minute;
    int rate_burst;
    int daily_cap;                     /* sends per local day; 0 = none */
    int send_timeout_ms;
    int breaker_failures;              /* consecutive failures that open the breaker */
    int breaker_probe_ms;              /* open this long, then one probe */
    int throttle_backoff_ms;           /* when a throttling answer says not how long */
    const char *pool;                  /* routes of one pool share a place in routing */
    const config_setting_t *opts;      /* the driver's group, may be NULL */
} gw_route_cfg;

/* The routes a family tries, in order: tiers of route indexes; the routes
 * of one tier (a pool) share the load, the next tier is the failover. */
#define GW_MAX_TIERS GW_MAX_ROUTES
typedef struct gw_family_routing {
    int ntiers;
    int tier_len[GW_MAX_TIERS];
    int tier[GW_MAX_TIERS][GW_MAX_ROUTES];
} gw_family_routing;

typedef struct gw_config {
    config_t cfg;
    char path[1024];

    queue_opts queue;
#define GW_MAX_SENTINELS 16   /* keep in step with the message in config.c */
    const char *sentinels[GW_MAX_SENTINELS];   /* strings owned by cfg */
    char instance[64];
    int workers;
    int batch;
    int log_level;
    const char *signature;
    const char *optout_line;
    const char *templates_dir;
    int allow_international;
    int shutdown_timeout_ms;
    long long watchdog_ms;
    long long send_window_ms;   /* bulk sends begun and recorded together; 0 one at a time */
    int visibility_timeout_ms;
    int housekeeping_interval_ms;
    long long body_retention_ms;       /* text and vars of a record purged after; 0 never */
    long long reply_text_retention_ms; /* raw text of replies purged after; 0 never
                                          (survey.reply_text_retention_days) */

    int max_attempts;
    int backoff_base_ms;
    int backoff_max_ms;
    int jitter_percent;
    reclaim_policy policy[LANE_COUNT];
    int quiet_from_min[LANE_COUNT];    /* quiet hours, minutes after local midnight; */
    int quiet_to_min[LANE_COUNT];      /* from == to: none */

    const char *timezone;              /* "Asia/Shanghai" */
    int recipient_hourly;              /* 0 = no cap */
    int recipient_daily;
    gw_family_routing routing[FAMILY_COUNT];

    int nroutes;
    gw_route_cfg routes[GW_MAX_ROUTES];
} gw_config;

/* Picks the config file: `flag` (-c), else $HERALD_CONFIG, else
 * ./herald.conf, else /etc/herald/herald.conf. Returns the path (static
 * or flag) or NULL when none exists (err says which were tried). */
const char *gw_config_locate(const char *flag, char *err, size_t errlen);

/* Reads and checks `path`. Returns 0, or -1 with "file:line: key: what"
 * in err. On success the caller frees with gw_config_free(). */
int gw_config_load(gw_config *c, const char *path, char *err, size_t errlen);
void gw_config_free(gw_config *c);
/* 1 when the config file can be read by any user and holds a secret (a
 * non-empty password, secret or token); `which` names the first one. */
int gw_config_secret_exposed(const gw_config *c, char *which, size_t len);

/* Prints every key the code reads (for `herald config keys`). */
void gw_config_print_keys(void *file);

#endif
