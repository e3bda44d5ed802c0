/* provider.c -- the registry of compiled-in drivers and small helpers every
 * driver shares.
 *
 * The gateway looks a route's `driver` value up here (prov_find_driver);
 * config.c also walks prov_drivers[] to know each driver's options group.
 * Adding a driver: write providers/<name>.c exporting one prov_driver,
 * declare it in provider.h and list it in prov_drivers[] below. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "providers/provider.h"

const prov_driver *const prov_drivers[] = {
    &prov_gammu,
    &prov_sink,
    &prov_mm7,
    &prov_http,
    &prov_aliyun,
    &prov_tencent,
    NULL
};

/* Drivers the project knows of (STYLE.md's layout), so a build without one
 * can say "not compiled in" rather than "unknown". */
static const char *const known_names[] = {
    "gammu", "http", "aliyun", "tencent", "mm7", "sink", NULL
};

const char *prov_status_name(prov_status s)
{
    switch (s) {
    case PROV_OK:        return "ok";
    case PROV_TRANSIENT: return "transient";
    case PROV_THROTTLED: return "throttled";
    case PROV_PERMANENT: return "permanent";
    case PROV_UNCERTAIN: return "uncertain";
    }
    return "unknown";
}

const prov_driver *prov_find_driver(const char *name, char *err, size_t errlen)
{
    if (!name || !*name) {
        snprintf(err, errlen, "no driver named");
        return NULL;
    }
    for (const prov_driver *const *d = prov_drivers; *d; d++)
        if (strcmp((*d)->name, name) == 0)
            return *d;
    for (const char *const *k = known_names; *k; k++)
        if (strcmp(*k, name) == 0) {
            snprintf(err, errlen, "%s support not compiled in", name);
            return NULL;
        }
    char known[256] = "";
    for (const prov_driver *const *d = prov_drivers; *d; d++) {
        size_t l = strlen(known);
        snprintf(known + l, sizeof known - l, "%s%s", l ? ", " : "", (*d)->name);
    }
    snprintf(err, errlen, "unknown driver '%s' (known: %s)", name, known);
    return NULL;
}

/* Writes the setting's path from the root ("routes.[0].gammu") into buf.
 * Recursion depth is the nesting depth of the config, a handful. */
static void setting_path(const config_setting_t *s, char *buf, size_t len)
{
    const config_setting_t *parent = config_setting_parent(s);
    if (!parent) {                      /* the root group has no name */
        buf[0] = '\0';
        return;
    }
    setting_path(parent, buf, len);
    size_t l = strlen(buf);
    const char *name = config_setting_name(s);
    if (name)
        snprintf(buf + l, len - l, "%s%s", l ? "." : "", name);
    else
        snprintf(buf + l, len - l, "%s[%d]", l ? "." : "", config_setting_index(s));
}

int prov_check_options(const prov_route *r, const config_setting_t *opts,
                       const cfg_key *keys, char *err, size_t errlen)
{
    const char *route = r ? r->name : "?";
    if (!opts) {
        for (const cfg_key *k = keys; k && k->name; k++)
            if (k->def == NULL) {
                snprintf(err, errlen, "route '%s': options group is missing; "
                         "it needs at least '%s'", route, k->name);
                return -1;
            }
        return 0;
    }
    char path[256], msg[PROV_ERR_MAX];
    setting_path(opts, path, sizeof path);
    if (cfg_check_group(opts, path, keys, msg, sizeof msg) < 0) {
        snprintf(err, errlen, "route '%s': %s", route, msg);
        return -1;
    }
    return 0;
}

long long prov_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void prov_oneline(char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}
