/* config.c -- the schema of herald.conf and the loader.
 *
 * Layout of the file (all groups optional but `routes`):
 *   redis   = { socket, host, port, password, db, prefix, ... };
 *   gateway = { instance, workers, signature, templates_dir, ... };
 *   retry   = { max_attempts, backoff_base_ms, backoff_max_ms, jitter_percent };
 *   lanes   = { urgent = { reclaim_policy, quiet_hours }; bulk = { ... }; };
 *   pacing  = { timezone, recipient_hourly, recipient_daily };
 *   routing = { rights_notice = [ route or pool names in order ], ... };
 *   bulletin = { titles, link_pattern, slide_duration_s };   (gateway/bulletin.c)
 *   routes  = ( { name, driver, families, pool, rate_per_minute, rate_burst,
 *                 daily_cap, send_timeout_ms, breaker_*, throttle_backoff_ms,
 *                 <driver> = { driver options } }, ... );
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/bulletin.h"
#include "gateway/api.h"
#include "gateway/config.h"
#include "gateway/log.h"
#include "gateway/survey.h"

static const cfg_key redis_keys[] = {
    { "socket", CFG_STR, "", 0, 0, NULL, "unix socket of redis-server; when set, host and port are not used" },
    { "host", CFG_STR, "127.0.0.1", 0, 0, NULL, "redis-server host (when socket is empty)" },
    { "port", CFG_INT, "6379", 1, 65535, NULL, "redis-server TCP port" },
    { "user", CFG_STR, "", 0, 0, NULL, "ACL user name (AUTH user password); empty for the default user" },
    { "password", CFG_STR, "", 0, 0, NULL, "AUTH password; empty for none (never logged)" },
    { "sentinels", CFG_STRLIST, "", 0, 0, NULL, "\"host:port\" of Redis Sentinels; when given, the primary is found through them" },
    { "master_name", CFG_STR, "herald", 0, 0, NULL, "the primary's name at the sentinels (sentinel monitor NAME ...)" },
    { "wait_replicas", CFG_INT, "0", 0, 16, NULL, "WAIT until this many replicas hold each state change; 0 off" },
    { "wait_timeout_ms", CFG_INT, "500", 1, 60000, NULL, "how long WAIT may take before the write counts as not landed" },
    { "db", CFG_INT, "0", 0, 255, NULL, "database number (SELECT)" },
    { "prefix", CFG_STR, "herald", 0, 0, NULL, "key prefix; keys are \"{prefix}:...\", one Redis Cluster slot" },
    { "connect_timeout_ms", CFG_INT, "2000", 10, 600000, NULL, "connect timeout" },
    { "command_timeout_ms", CFG_INT, "5000", 10, 600000, NULL, "timeout of one command" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const cfg_key gateway_keys[] = {
    { "instance", CFG_STR, "", 0, 0, NULL, "name of this gateway process, unique per Redis; default the host name" },
    { "workers", CFG_INT, "4", 1, 256, NULL, "worker threads" },
    { "batch", CFG_INT, "64", 1, 1000, NULL, "stream entries a worker reads at once, at most (and the largest send window)" },
    { "send_window_ms", CFG_INT, "20", 0, 1000, NULL, "bulk lane: the sends of about this long are begun and recorded together (one Redis round trip each); 0: one at a time" },
    { "log_level", CFG_STR, "info", 0, 0, NULL, "debug, info, warn or error; message texts are logged at debug only" },
    { "signature", CFG_STR, "【XX市人民检察院】", 0, 0, NULL, "signature in 【】 put in front of every message" },
    { "optout_line", CFG_STR, "回TD退订", 0, 0, NULL, "appended to bulk families (survey, bulletin); empty for none" },
    { "templates_dir", CFG_STR, "templates/shipped", 0, 0, NULL, "folder of *.tpl template files" },
    { "allow_international", CFG_BOOL, "false", 0, 0, NULL, "accept E.164 numbers outside mainland China" },
    { "retention_days", CFG_INT, "180", 1, 3650, NULL, "lifetime of a message record" },
    { "body_retention_days", CFG_INT, "90", 0, 3650, NULL, "a message's text and variables are purged from its record this many days after creation (at most retention_days; unset: 90 or retention_days if smaller; 0: kept until the record expires)" },
    { "idempotency_window_days", CFG_INT, "30", 1, 3650, NULL, "how long an idempotency key returns the first message" },
    { "shutdown_timeout_ms", CFG_INT, "15000", 100, 600000, NULL, "SIGTERM: longest wait for sends in flight" },
    { "watchdog_ms", CFG_INT, "180000", 0, 86400000, NULL, "a worker with no progress this long is logged and replaced; 0 off" },
    { "visibility_timeout_ms", CFG_INT, "120000", 1000, 86400000, NULL, "a message held this long by a silent worker is reclaimed" },
    { "housekeeping_interval_ms", CFG_INT, "250", 10, 60000, NULL, "period of the promoter (scheduled sends, retries) and lease refresh" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const cfg_key retry_keys[] = {
    { "max_attempts", CFG_INT, "5", 1, 100, NULL, "attempts before a message is dead" },
    { "backoff_base_ms", CFG_INT, "5000", 1, 86400000, NULL, "delay before the 2nd attempt; doubles each time" },
    { "backoff_max_ms", CFG_INT, "900000", 1, 86400000, NULL, "longest delay between attempts" },
    { "jitter_percent", CFG_INT, "20", 0, 100, NULL, "random spread added to each delay" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const cfg_key urgent_keys[] = {
    { "reclaim_policy", CFG_STR, "resend", 0, 0, NULL, "resend or hold a message found `sending` after a crash" },
    { "quiet_hours", CFG_STR, "", 0, 0, NULL, "\"HH:MM-HH:MM\" local time when the lane waits (\"\" = never)" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};
static const cfg_key bulk_keys[] = {
    { "reclaim_policy", CFG_STR, "hold", 0, 0, NULL, "resend or hold (status uncertain) a message found `sending` after a crash" },
    { "quiet_hours", CFG_STR, "21:00-08:00", 0, 0, NULL, "\"HH:MM-HH:MM\" local time when the lane waits (\"\" = never)" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};
static const cfg_key lanes_keys[] = {
    { "urgent", CFG_GROUP, "", 0, 0, urgent_keys, "lane of rights notices and case-stage updates" },
    { "bulk", CFG_GROUP, "", 0, 0, bulk_keys, "lane of surveys and bulletins" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const cfg_key pacing_keys[] = {
    { "timezone", CFG_STR, "Asia/Shanghai", 0, 0, NULL, "time zone of quiet hours and daily caps (a tz database name)" },
    { "recipient_hourly", CFG_INT, "5", 0, 100000, NULL, "most messages to one number in any hour; 0 = no cap" },
    { "recipient_daily", CFG_INT, "20", 0, 100000, NULL, "most messages to one number in any 24 hours; 0 = no cap" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const cfg_key routing_keys[] = {
    { "rights_notice", CFG_STRLIST, "", 0, 0, NULL, "routes or pools tried in order for rights notices (default: every route serving the family)" },
    { "case_stage", CFG_STRLIST, "", 0, 0, NULL, "routes or pools tried in order for case-stage updates" },
    { "survey", CFG_STRLIST, "", 0, 0, NULL, "routes or pools tried in order for surveys (default: the routes serving it, modems first)" },
    { "bulletin", CFG_STRLIST, "", 0, 0, NULL, "routes or pools tried in order for bulletins" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* The route table ends with one group per compiled-in driver, filled at
 * run time from prov_drivers[]. */
#define ROUTE_FIXED_KEYS 11
static cfg_key route_keys[ROUTE_FIXED_KEYS + 16 + 1] = {
    { "name", CFG_STR, NULL, 0, 0, NULL, "route name, unique (appears in logs and records)" },
    { "driver", CFG_STR, NULL, 0, 0, NULL, "gammu (GSM modem), http, aliyun, tencent, mm7 (MMSC), or sink (records, sends nothing)" },
    { "families", CFG_STRLIST, "all", 0, 0, NULL, "families served: rights_notice, case_stage, survey, bulletin (cloud providers: all but survey)" },
    { "pool", CFG_STR, "", 0, 0, NULL, "pool name; routes of one pool share the load and one place in routing (\"\" = the route's name)" },
    { "rate_per_minute", CFG_INT, "0", 0, 1000000, NULL, "most messages per minute through this route, shared by every gateway; 0 unlimited" },
    { "rate_burst", CFG_INT, "1", 1, 100000, NULL, "messages that may go at once before the rate applies" },
    { "daily_cap", CFG_INT, "0", 0, 10000000, NULL, "most messages per local day through this route (a SIM's limit); 0 none" },
    { "send_timeout_ms", CFG_INT, "60000", 100, 600000, NULL, "longest time one send may take" },
    { "breaker_failures", CFG_INT, "5", 1, 1000, NULL, "consecutive failures that open the route's circuit breaker" },
    { "breaker_probe_ms", CFG_INT, "30000", 100, 86400000, NULL, "an open breaker lets one probe through after this long" },
    { "throttle_backoff_ms", CFG_INT, "60000", 0, 86400000, NULL, "a throttled route rests this long when the provider does not say (Retry-After)" },
};

static const cfg_key top_keys[] = {
    { "redis", CFG_GROUP, "", 0, 0, redis_keys, "where the queue lives" },
    { "gateway", CFG_GROUP, "", 0, 0, gateway_keys, "the daemon" },
    { "retry", CFG_GROUP, "", 0, 0, retry_keys, "retries of transient failures" },
    { "lanes", CFG_GROUP, "", 0, 0, lanes_keys, "per-lane policies" },
    { "pacing", CFG_GROUP, "", 0, 0, pacing_keys, "caps per recipient, time zone" },
    { "routing", CFG_GROUP, "", 0, 0, routing_keys, "per family, the routes tried in order" },
    { "routes", CFG_LIST, NULL, 0, 0, route_keys, "the providers messages go out through" },
    { "bulletin", CFG_GROUP, "", 0, 0, gw_bulletin_keys, "mobile bulletins (MMS): titles, fallback link" },
    { "survey", CFG_GROUP, "", 0, 0, survey_cfg_keys, "the monthly evaluation survey and its replies (gateway/survey.c)" },
    { "api", CFG_GROUP, "", 0, 0, api_cfg_keys, "the HTTP API (gateway/api.c)" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static void route_keys_init(void)
{
    static int done;
    if (done)
        return;
    int i = ROUTE_FIXED_KEYS;
    for (const prov_driver *const *d = prov_drivers; *d && i < ROUTE_FIXED_KEYS + 16; d++, i++)
        route_keys[i] = (cfg_key){ (*d)->name, CFG_GROUP, "", 0, 0, (*d)->keys,
                                   "options of this driver" };
    done = 1;
}

const char *gw_config_locate(const char *flag, char *err, size_t errlen)
{
    if (flag && *flag)
        return flag;
    const char *env = getenv("HERALD_CONFIG");
    if (env && *env)
        return env;
    if (access("herald.conf", R_OK) == 0)
        return "herald.conf";
    if (access("/etc/herald/herald.conf", R_OK) == 0)
        return "/etc/herald/herald.conf";
    snprintf(err, errlen, "no configuration: give -c FILE, set HERALD_CONFIG, "
             "or create ./herald.conf or /etc/herald/herald.conf");
    return NULL;
}

static int bad(const config_setting_t *s, const char *key, char *err, size_t errlen,
               const char *fmt, const char *val)
{
    const char *file = config_setting_source_file(s);
    char what[256];
    snprintf(what, sizeof what, fmt, val);
    snprintf(err, errlen, "%s:%u: %s: %s", file ? file : "(config)",
             (unsigned)config_setting_source_line(s), key, what);
    return -1;
}

/* "21:00-08:00" into minutes after midnight; "" is none (from == to). */
static int parse_quiet(const char *s, int *from, int *to)
{
    *from = *to = 0;
    if (!*s)
        return 0;
    int h1, m1, h2, m2, n = 0;
    if (sscanf(s, "%d:%d-%d:%d%n", &h1, &m1, &h2, &m2, &n) != 4 || s[n] != '\0'
        || h1 < 0 || h1 > 23 || h2 < 0 || h2 > 24 || m1 < 0 || m1 > 59 || m2 < 0 || m2 > 59)
        return -1;
    *from = h1 * 60 + m1;
    *to = h2 * 60 + m2;
    if (*to == 1440)
        *to = 0;
    return 0;
}

static int load_policy(gw_config *c, tpl_lane lane, const cfg_key *keys, char *err, size_t errlen)
{
    const config_setting_t *g = config_lookup(&c->cfg, lane == LANE_URGENT ? "lanes.urgent" : "lanes.bulk");
    const char *qh = cfg_str(g, keys, "quiet_hours");
    if (parse_quiet(qh, &c->quiet_from_min[lane], &c->quiet_to_min[lane]) < 0)
        return bad(config_setting_get_member(g, "quiet_hours"),
                   lane == LANE_URGENT ? "lanes.urgent.quiet_hours" : "lanes.bulk.quiet_hours",
                   err, errlen, "'%s' is not \"HH:MM-HH:MM\" (or \"\" for none)", qh);
    const char *p = cfg_str(g, keys, "reclaim_policy");
    if (strcmp(p, "resend") == 0)
        c->policy[lane] = RECLAIM_RESEND;
    else if (strcmp(p, "hold") == 0)
        c->policy[lane] = RECLAIM_HOLD;
    else
        return bad(config_setting_get_member(g, "reclaim_policy"),
                   lane == LANE_URGENT ? "lanes.urgent.reclaim_policy" : "lanes.bulk.reclaim_policy",
                   err, errlen, "'%s' is not resend or hold", p);
    return 0;
}

static int load_routes(gw_config *c, char *err, size_t errlen)
{
    const config_setting_t *list = config_lookup(&c->cfg, "routes");
    int n = config_setting_length(list);
    if (n == 0)
        return bad(list, "routes", err, errlen, "%sat least one route is needed", "");
    if (n > GW_MAX_ROUTES)
        return bad(list, "routes", err, errlen, "%stoo many routes (at most 32)", "");
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        gw_route_cfg *r = &c->routes[i];
        char key[64];
        r->name = cfg_str(g, route_keys, "name");
        snprintf(key, sizeof key, "routes.[%d].name", i);
        if (!*r->name || strlen(r->name) >= 64 || strpbrk(r->name, " \t/:"))
            return bad(config_setting_get_member(g, "name"), key, err, errlen,
                       "'%s' must be 1-63 characters without spaces, '/' or ':'", r->name);
        for (int j = 0; j < i; j++)
            if (strcmp(c->routes[j].name, r->name) == 0)
                return bad(config_setting_get_member(g, "name"), key, err, errlen,
                           "route name '%s' is used twice", r->name);
        const char *drv = cfg_str(g, route_keys, "driver");
        char derr[256];
        r->driver = prov_find_driver(drv, derr, sizeof derr);
        snprintf(key, sizeof key, "routes.[%d].driver", i);
        if (!r->driver)
            return bad(config_setting_get_member(g, "driver"), key, err, errlen, "%s", derr);
        /* options of another driver than the route's own are a mistake */
        for (const prov_driver *const *d = prov_drivers; *d; d++) {
            const config_setting_t *o = config_setting_get_member(g, (*d)->name);
            if (o && *d != r->driver) {
                snprintf(key, sizeof key, "routes.[%d].%s", i, (*d)->name);
                return bad(o, key, err, errlen, "options for driver '%s' in a route whose driver is another", (*d)->name);
            }
        }
        r->opts = config_setting_get_member(g, r->driver->name);
        r->rate_per_minute = (int)cfg_int(g, route_keys, "rate_per_minute");
        r->rate_burst = (int)cfg_int(g, route_keys, "rate_burst");
        r->daily_cap = (int)cfg_int(g, route_keys, "daily_cap");
        r->send_timeout_ms = (int)cfg_int(g, route_keys, "send_timeout_ms");
        r->breaker_failures = (int)cfg_int(g, route_keys, "breaker_failures");
        r->breaker_probe_ms = (int)cfg_int(g, route_keys, "breaker_probe_ms");
        r->throttle_backoff_ms = (int)cfg_int(g, route_keys, "throttle_backoff_ms");
        r->pool = cfg_str(g, route_keys, "pool");
        if (!*r->pool)
            r->pool = r->name;
        const config_setting_t *fam = config_setting_get_member(g, "families");
        if (!fam) {
            r->families = (1u << FAMILY_COUNT) - 1;
            /* cloud providers' template rules forbid survey content, and
             * replies must come back to numbers the office reads */
            if (r->driver->caps & PROV_CAP_PROVIDER_TEMPLATES)
                r->families &= ~(1u << FAMILY_SURVEY);
        } else {
            r->families = 0;
            for (int j = 0; j < config_setting_length(fam); j++) {
                const char *f = config_setting_get_string_elem(fam, (unsigned)j);
                int fi = family_parse(f);
                snprintf(key, sizeof key, "routes.[%d].families", i);
                if (fi < 0)
                    return bad(fam, key, err, errlen,
                               "unknown family '%s' (rights_notice, case_stage, survey, bulletin)", f);
                r->families |= 1u << fi;
            }
        }
    }
    c->nroutes = n;
    return 0;
}

static int cloud(const gw_route_cfg *r) { return (r->driver->caps & PROV_CAP_PROVIDER_TEMPLATES) != 0; }

/* routing.<family>: names of routes or pools, in order. Without it, every
 * route serving the family shares one tier, and cloud providers come after
 * (they did not exist when routes were only pools of modems and sinks). */
static int load_routing(gw_config *c, char *err, size_t errlen)
{
    const config_setting_t *rg = config_lookup(&c->cfg, "routing");
    for (int f = 0; f < FAMILY_COUNT; f++) {
        gw_family_routing *fr = &c->routing[f];
        memset(fr, 0, sizeof *fr);
        const char *fname = family_name((tpl_family)f);
        const config_setting_t *list = rg ? config_setting_get_member(rg, fname) : NULL;
        char key[64];
        snprintf(key, sizeof key, "routing.%s", fname);
        if (!list || config_setting_length(list) == 0) {
            for (int pass = 0; pass < 2; pass++) {
                int t = fr->ntiers;
                for (int i = 0; i < c->nroutes; i++)
                    if ((c->routes[i].families & (1u << f)) && cloud(&c->routes[i]) == pass)
                        fr->tier[t][fr->tier_len[t]++] = i;
                if (fr->tier_len[t])
                    fr->ntiers++;
            }
            continue;
        }
        unsigned used = 0;
        for (int j = 0; j < config_setting_length(list) && fr->ntiers < GW_MAX_TIERS; j++) {
            const char *name = config_setting_get_string_elem(list, (unsigned)j);
            int t = fr->ntiers, found = 0;
            for (int i = 0; i < c->nroutes; i++) {
                const gw_route_cfg *r = &c->routes[i];
                if (strcmp(r->pool, name) != 0 && strcmp(r->name, name) != 0)
                    continue;
                found = 1;
                if (!(r->families & (1u << f)))
                    return bad(list, key, err, errlen, "route '%s' does not serve this family "
                               "(add it to its families)", r->name);
                if (used & (1u << i))
                    return bad(list, key, err, errlen, "route '%s' is listed twice", r->name);
                used |= 1u << i;
                fr->tier[t][fr->tier_len[t]++] = i;
            }
            if (!found)
                return bad(list, key, err, errlen, "'%s' is no route or pool name", name);
            fr->ntiers++;
        }
    }
    return 0;
}

/* A tz database name must exist (glibc silently falls back to UTC). */
static int load_pacing(gw_config *c, char *err, size_t errlen)
{
    const config_setting_t *pg = config_lookup(&c->cfg, "pacing");
    c->timezone = cfg_str(pg, pacing_keys, "timezone");
    c->recipient_hourly = (int)cfg_int(pg, pacing_keys, "recipient_hourly");
    c->recipient_daily = (int)cfg_int(pg, pacing_keys, "recipient_daily");
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", c->timezone);
    int posix = strpbrk(c->timezone, "0123456789") != NULL && !strchr(c->timezone, '/');
    if (!*c->timezone || strstr(c->timezone, "..") || (!posix && stat(path, &st) != 0
        && strcmp(c->timezone, "Asia/Shanghai") != 0 && strcmp(c->timezone, "UTC") != 0))
        return bad(config_setting_get_member(pg, "timezone") ? config_setting_get_member(pg, "timezone")
                   : config_root_setting(&c->cfg), "pacing.timezone", err, errlen,
                   "'%s' is not a time zone known here (e.g. Asia/Shanghai)", c->timezone);
    return 0;
}

int gw_config_load(gw_config *c, const char *path, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    route_keys_init();
    config_init(&c->cfg);
    snprintf(c->path, sizeof c->path, "%s", path);
    if (config_read_file(&c->cfg, path) != CONFIG_TRUE) {
        if (config_error_type(&c->cfg) == CONFIG_ERR_FILE_IO)
            snprintf(err, errlen, "%s: cannot read the configuration file", path);
        else
            snprintf(err, errlen, "%s:%d: syntax error: %s",
                     config_error_file(&c->cfg) ? config_error_file(&c->cfg) : path,
                     config_error_line(&c->cfg), config_error_text(&c->cfg));
        config_destroy(&c->cfg);
        return -1;
    }
    config_setting_t *root = config_root_setting(&c->cfg);
    if (cfg_check_group(root, "", top_keys, err, errlen) < 0)
        goto fail;

    const config_setting_t *rg = config_lookup(&c->cfg, "redis");
    c->queue.socket = cfg_str(rg, redis_keys, "socket");
    /* `make run` points the gateway at its private redis-server this way
     * when the configured one does not answer. */
    const char *env_sock = getenv("HERALD_REDIS_SOCKET");
    if (env_sock && *env_sock)
        c->queue.socket = env_sock;
    c->queue.host = cfg_str(rg, redis_keys, "host");
    c->queue.port = (int)cfg_int(rg, redis_keys, "port");
    c->queue.user = cfg_str(rg, redis_keys, "user");
    c->queue.password = cfg_str(rg, redis_keys, "password");
    c->queue.master_name = cfg_str(rg, redis_keys, "master_name");
    c->queue.wait_replicas = (int)cfg_int(rg, redis_keys, "wait_replicas");
    c->queue.wait_timeout_ms = (int)cfg_int(rg, redis_keys, "wait_timeout_ms");
    const config_setting_t *sl = rg ? config_setting_get_member(rg, "sentinels") : NULL;
    if (sl) {
        int n = config_setting_length(sl);
        if (n > GW_MAX_SENTINELS) {
            bad(sl, "redis.sentinels", err, errlen, "%s", "at most 16 sentinels");
            goto fail;
        }
        for (int i = 0; i < n; i++) {
            const char *s = config_setting_get_string_elem(sl, (unsigned)i);
            const char *colon = s ? strrchr(s, ':') : NULL;
            if (!colon || colon == s || atoi(colon + 1) < 1 || atoi(colon + 1) > 65535) {
                bad(sl, "redis.sentinels", err, errlen, "'%s' is not host:port", s ? s : "");
                goto fail;
            }
            c->sentinels[i] = s;
        }
        c->queue.sentinels = c->sentinels;
        c->queue.nsentinels = n;
    }
    c->queue.db = (int)cfg_int(rg, redis_keys, "db");
    c->queue.prefix = cfg_str(rg, redis_keys, "prefix");
    c->queue.connect_timeout_ms = (int)cfg_int(rg, redis_keys, "connect_timeout_ms");
    c->queue.command_timeout_ms = (int)cfg_int(rg, redis_keys, "command_timeout_ms");
    if (!*c->queue.prefix || strpbrk(c->queue.prefix, "{}: \t")) {
        bad(config_setting_get_member(rg, "prefix"), "redis.prefix", err, errlen,
            "'%s' must be non-empty without braces, ':' or spaces", c->queue.prefix);
        goto fail;
    }

    const config_setting_t *gg = config_lookup(&c->cfg, "gateway");
    const char *inst = cfg_str(gg, gateway_keys, "instance");
    if (*inst) {
        if (strlen(inst) >= sizeof c->instance || strpbrk(inst, " \t/:{}")) {
            bad(config_setting_get_member(gg, "instance"), "gateway.instance", err, errlen,
                "'%s' must be 1-63 characters without spaces, '/', ':' or braces", inst);
            goto fail;
        }
        snprintf(c->instance, sizeof c->instance, "%s", inst);
    } else {
        if (gethostname(c->instance, sizeof c->instance) != 0 || !*c->instance)
            snprintf(c->instance, sizeof c->instance, "herald");
        c->instance[sizeof c->instance - 1] = '\0';
    }
    c->workers = (int)cfg_int(gg, gateway_keys, "workers");
    c->batch = (int)cfg_int(gg, gateway_keys, "batch");
    c->send_window_ms = cfg_int(gg, gateway_keys, "send_window_ms");
    const char *lvl = cfg_str(gg, gateway_keys, "log_level");
    c->log_level = gw_log_level_parse(lvl);
    if (c->log_level < 0) {
        bad(config_setting_get_member(gg, "log_level"), "gateway.log_level", err, errlen,
            "'%s' is not debug, info, warn or error", lvl);
        goto fail;
    }
    c->signature = cfg_str(gg, gateway_keys, "signature");
    c->optout_line = cfg_str(gg, gateway_keys, "optout_line");
    c->templates_dir = cfg_str(gg, gateway_keys, "templates_dir");
    c->allow_international = cfg_bool(gg, gateway_keys, "allow_international");
    c->queue.retention_ms = cfg_int(gg, gateway_keys, "retention_days") * 86400000LL;
    c->queue.idem_window_ms = cfg_int(gg, gateway_keys, "idempotency_window_days") * 86400000LL;
    {
        long long rd = cfg_int(gg, gateway_keys, "retention_days");
        long long bd = cfg_int(gg, gateway_keys, "body_retention_days");
        const config_setting_t *bs = gg ? config_setting_get_member(gg, "body_retention_days") : NULL;
        if (bs && bd > rd) {
            char what[160];
            snprintf(what, sizeof what, "%lld is more than gateway.retention_days (%lld): the "
                     "record, text and all, expires first", bd, rd);
            bad(bs, "gateway.body_retention_days", err, errlen, "%s", what);
            goto fail;
        }
        if (!bs && bd > rd)
            bd = rd;      /* the default never exceeds a shorter record lifetime */
        c->body_retention_ms = bd * 86400000LL;
    }
    c->shutdown_timeout_ms = (int)cfg_int(gg, gateway_keys, "shutdown_timeout_ms");
    c->watchdog_ms = cfg_int(gg, gateway_keys, "watchdog_ms");
    c->visibility_timeout_ms = (int)cfg_int(gg, gateway_keys, "visibility_timeout_ms");
    c->housekeeping_interval_ms = (int)cfg_int(gg, gateway_keys, "housekeeping_interval_ms");

    const config_setting_t *tg = config_lookup(&c->cfg, "retry");
    c->max_attempts = (int)cfg_int(tg, retry_keys, "max_attempts");
    c->backoff_base_ms = (int)cfg_int(tg, retry_keys, "backoff_base_ms");
    c->backoff_max_ms = (int)cfg_int(tg, retry_keys, "backoff_max_ms");
    c->jitter_percent = (int)cfg_int(tg, retry_keys, "jitter_percent");

    if (load_policy(c, LANE_URGENT, urgent_keys, err, errlen) < 0
        || load_policy(c, LANE_BULK, bulk_keys, err, errlen) < 0
        || load_routes(c, err, errlen) < 0
        || load_routing(c, err, errlen) < 0
        || load_pacing(c, err, errlen) < 0)
        goto fail;
    /* the survey group is read where it is used; here it is only checked */
    survey_settings ss;
    if (survey_settings_load(&c->cfg, &ss, err, errlen) < 0)
        goto fail;
    c->reply_text_retention_ms = ss.reply_text_retention_ms;
    survey_settings_free(&ss);
    api_config ac;   /* checked now so `config check` and start-up refuse a bad api group */
    if (api_config_parse(c, &ac, err, errlen) < 0)
        goto fail;
    return 0;
fail:
    config_destroy(&c->cfg);
    return -1;
}

/* A key holding a secret, by its name: passwords, tokens, provider keys. */
static int secret_name(const char *name)
{
    static const char *const words[] = { "password", "secret", "token", "passwd", NULL };
    if (name && (strstr(name, "_file") || strstr(name, "_path")))
        return 0;                 /* where a secret is kept, not the secret */
    for (int i = 0; words[i]; i++)
        if (name && strstr(name, words[i]))
            return 1;
    return 0;
}

/* Depth-first: the path of the first non-empty secret under s. */
static int find_secret(const config_setting_t *s, char *path, size_t len)
{
    int n = config_setting_length(s);
    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(s, (unsigned)i);
        const char *name = config_setting_name(m);
        if (config_setting_is_aggregate(m)) {
            if (find_secret(m, path, len))
                return 1;
        } else if (secret_name(name)) {
            const char *v = config_setting_type(m) == CONFIG_TYPE_STRING ? config_setting_get_string(m) : "x";
            if (v && *v) {
                snprintf(path, len, "%s (line %d)", name, config_setting_source_line(m));
                return 1;
            }
        }
    }
    return 0;
}

int gw_config_secret_exposed(const gw_config *c, char *which, size_t len)
{
    struct stat st;
    if (stat(c->path, &st) != 0 || !(st.st_mode & S_IROTH))
        return 0;
    return find_secret(config_root_setting(&c->cfg), which, len);
}

void gw_config_free(gw_config *c)
{
    if (c)
        config_destroy(&c->cfg);
}

void gw_config_print_keys(void *file)
{
    route_keys_init();
    cfg_print_keys("", top_keys, file);
}
