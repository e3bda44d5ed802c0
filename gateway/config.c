/* config.c -- the schema of herald.conf and the loader.
 *
 * Layout of the file (all groups optional but `routes`):
 *   redis   = { socket, host, port, password, db, prefix, ... };
 *   gateway = { instance, workers, signature, templates_dir, ... };
 *   retry   = { max_attempts, backoff_base_ms, backoff_max_ms, jitter_percent };
 *   lanes   = { urgent = { reclaim_policy }; bulk = { reclaim_policy }; };
 *   routes  = ( { name, driver, families, rate_per_minute, send_timeout_ms,
 *                 <driver> = { driver options } }, ... );
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/api.h"
#include "gateway/config.h"
#include "gateway/log.h"

static const cfg_key redis_keys[] = {
    { "socket", CFG_STR, "", 0, 0, NULL, "unix socket of redis-server; when set, host and port are not used" },
    { "host", CFG_STR, "127.0.0.1", 0, 0, NULL, "redis-server host (when socket is empty)" },
    { "port", CFG_INT, "6379", 1, 65535, NULL, "redis-server TCP port" },
    { "password", CFG_STR, "", 0, 0, NULL, "AUTH password; empty for none (never logged)" },
    { "db", CFG_INT, "0", 0, 255, NULL, "database number (SELECT)" },
    { "prefix", CFG_STR, "herald", 0, 0, NULL, "key prefix; keys are \"{prefix}:...\", one Redis Cluster slot" },
    { "connect_timeout_ms", CFG_INT, "2000", 10, 600000, NULL, "connect timeout" },
    { "command_timeout_ms", CFG_INT, "5000", 10, 600000, NULL, "timeout of one command" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const cfg_key gateway_keys[] = {
    { "instance", CFG_STR, "", 0, 0, NULL, "name of this gateway process, unique per Redis; default the host name" },
    { "workers", CFG_INT, "4", 1, 256, NULL, "worker threads" },
    { "batch", CFG_INT, "16", 1, 1000, NULL, "stream entries a worker reads at once" },
    { "log_level", CFG_STR, "info", 0, 0, NULL, "debug, info, warn or error; message texts are logged at debug only" },
    { "signature", CFG_STR, "【XX市人民检察院】", 0, 0, NULL, "signature in 【】 put in front of every message" },
    { "optout_line", CFG_STR, "回TD退订", 0, 0, NULL, "appended to bulk families (survey, bulletin); empty for none" },
    { "templates_dir", CFG_STR, "templates/shipped", 0, 0, NULL, "folder of *.tpl template files" },
    { "allow_international", CFG_BOOL, "false", 0, 0, NULL, "accept E.164 numbers outside mainland China" },
    { "retention_days", CFG_INT, "180", 1, 3650, NULL, "lifetime of a message record" },
    { "idempotency_window_days", CFG_INT, "30", 1, 3650, NULL, "how long an idempotency key returns the first message" },
    { "shutdown_timeout_ms", CFG_INT, "15000", 100, 600000, NULL, "SIGTERM: longest wait for sends in flight" },
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
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};
static const cfg_key bulk_keys[] = {
    { "reclaim_policy", CFG_STR, "hold", 0, 0, NULL, "resend or hold (status uncertain) a message found `sending` after a crash" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};
static const cfg_key lanes_keys[] = {
    { "urgent", CFG_GROUP, "", 0, 0, urgent_keys, "lane of rights notices and case-stage updates" },
    { "bulk", CFG_GROUP, "", 0, 0, bulk_keys, "lane of surveys and bulletins" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* The route table ends with one group per compiled-in driver, filled at
 * run time from prov_drivers[]. */
#define ROUTE_FIXED_KEYS 5
static cfg_key route_keys[ROUTE_FIXED_KEYS + 16 + 1] = {
    { "name", CFG_STR, NULL, 0, 0, NULL, "route name, unique (appears in logs and records)" },
    { "driver", CFG_STR, NULL, 0, 0, NULL, "gammu (GSM modem) or sink (records, sends nothing)" },
    { "families", CFG_STRLIST, "all", 0, 0, NULL, "families served: rights_notice, case_stage, survey, bulletin" },
    { "rate_per_minute", CFG_INT, "0", 0, 1000000, NULL, "most messages per minute through this route; 0 unlimited" },
    { "send_timeout_ms", CFG_INT, "60000", 100, 600000, NULL, "longest time one send may take" },
};

static const cfg_key top_keys[] = {
    { "redis", CFG_GROUP, "", 0, 0, redis_keys, "where the queue lives" },
    { "gateway", CFG_GROUP, "", 0, 0, gateway_keys, "the daemon" },
    { "retry", CFG_GROUP, "", 0, 0, retry_keys, "retries of transient failures" },
    { "lanes", CFG_GROUP, "", 0, 0, lanes_keys, "per-lane policies" },
    { "routes", CFG_LIST, NULL, 0, 0, route_keys, "the providers messages go out through" },
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

static int load_policy(gw_config *c, tpl_lane lane, const cfg_key *keys, char *err, size_t errlen)
{
    const config_setting_t *g = config_lookup(&c->cfg, lane == LANE_URGENT ? "lanes.urgent" : "lanes.bulk");
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
        r->send_timeout_ms = (int)cfg_int(g, route_keys, "send_timeout_ms");
        const config_setting_t *fam = config_setting_get_member(g, "families");
        if (!fam) {
            r->families = (1u << FAMILY_COUNT) - 1;
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
    c->queue.password = cfg_str(rg, redis_keys, "password");
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
    c->shutdown_timeout_ms = (int)cfg_int(gg, gateway_keys, "shutdown_timeout_ms");
    c->visibility_timeout_ms = (int)cfg_int(gg, gateway_keys, "visibility_timeout_ms");
    c->housekeeping_interval_ms = (int)cfg_int(gg, gateway_keys, "housekeeping_interval_ms");

    const config_setting_t *tg = config_lookup(&c->cfg, "retry");
    c->max_attempts = (int)cfg_int(tg, retry_keys, "max_attempts");
    c->backoff_base_ms = (int)cfg_int(tg, retry_keys, "backoff_base_ms");
    c->backoff_max_ms = (int)cfg_int(tg, retry_keys, "backoff_max_ms");
    c->jitter_percent = (int)cfg_int(tg, retry_keys, "jitter_percent");

    if (load_policy(c, LANE_URGENT, urgent_keys, err, errlen) < 0
        || load_policy(c, LANE_BULK, bulk_keys, err, errlen) < 0
        || load_routes(c, err, errlen) < 0)
        goto fail;
    api_config ac;   /* checked now so `config check` and start-up refuse a bad api group */
    if (api_config_parse(c, &ac, err, errlen) < 0)
        goto fail;
    return 0;
fail:
    config_destroy(&c->cfg);
    return -1;
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
