/* cfgkeys.c -- checking libconfig groups against cfg_key tables.
 *
 * libconfig parses; this file decides what is allowed. Unknown keys are
 * errors so that a typo never falls back to a default silently. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/cfgkeys.h"

static const cfg_key *find_key(const cfg_key *keys, const char *name)
{
    for (const cfg_key *k = keys; k && k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

static const char *type_name(cfg_type t)
{
    switch (t) {
    case CFG_STR: return "a string";
    case CFG_INT: return "an integer";
    case CFG_BOOL: return "true or false";
    case CFG_STRLIST: return "an array of strings";
    case CFG_GROUP: return "a group { ... }";
    case CFG_LIST: return "a list ( { ... }, ... )";
    }
    return "?";
}

static void where(const config_setting_t *s, char *buf, size_t len)
{
    const char *file = config_setting_source_file(s);
    snprintf(buf, len, "%s:%u", file ? file : "(config)",
             (unsigned)config_setting_source_line(s));
}

static int fail(const config_setting_t *s, const char *path, const char *key,
                char *err, size_t errlen, const char *what)
{
    char loc[512];
    where(s, loc, sizeof loc);
    snprintf(err, errlen, "%s: %s%s%s: %s", loc, path, *path ? "." : "", key, what);
    return -1;
}

static int type_ok(const config_setting_t *s, cfg_type t)
{
    int st = config_setting_type(s);
    switch (t) {
    case CFG_STR: return st == CONFIG_TYPE_STRING;
    case CFG_INT: return st == CONFIG_TYPE_INT || st == CONFIG_TYPE_INT64;
    case CFG_BOOL: return st == CONFIG_TYPE_BOOL;
    case CFG_STRLIST:
        if (st != CONFIG_TYPE_ARRAY && st != CONFIG_TYPE_LIST)
            return 0;
        for (int i = 0; i < config_setting_length(s); i++)
            if (config_setting_type(config_setting_get_elem(s, (unsigned)i)) != CONFIG_TYPE_STRING)
                return 0;
        return 1;
    case CFG_GROUP: return st == CONFIG_TYPE_GROUP;
    case CFG_LIST: return st == CONFIG_TYPE_LIST;
    }
    return 0;
}

int cfg_check_group(const config_setting_t *g, const char *path,
                    const cfg_key *keys, char *err, size_t errlen)
{
    char msg[512];
    if (!g)
        return 0;
    for (int i = 0; i < config_setting_length(g); i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(s);
        const cfg_key *k = name ? find_key(keys, name) : NULL;
        if (!k) {
            snprintf(msg, sizeof msg, "unknown key (known here:");
            for (const cfg_key *kk = keys; kk && kk->name; kk++) {
                size_t l = strlen(msg);
                snprintf(msg + l, sizeof msg - l, " %s", kk->name);
            }
            size_t l = strlen(msg);
            snprintf(msg + l, sizeof msg - l, ")");
            return fail(s, path, name ? name : "?", err, errlen, msg);
        }
        if (!type_ok(s, k->type)) {
            snprintf(msg, sizeof msg, "must be %s", type_name(k->type));
            return fail(s, path, name, err, errlen, msg);
        }
        if (k->type == CFG_INT && (k->min != 0 || k->max != 0)) {
            long long v = config_setting_get_int64(s);
            if (v < k->min || v > k->max) {
                snprintf(msg, sizeof msg, "%lld is out of range [%lld, %lld]", v, k->min, k->max);
                return fail(s, path, name, err, errlen, msg);
            }
        }
        if (k->type == CFG_GROUP && k->sub) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", name);
            if (cfg_check_group(s, sub, k->sub, err, errlen) < 0)
                return -1;
        }
        if (k->type == CFG_LIST && k->sub) {
            for (int j = 0; j < config_setting_length(s); j++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned)j);
                char sub[256];
                snprintf(sub, sizeof sub, "%s%s%s.[%d]", path, *path ? "." : "", name, j);
                if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
                    char loc[512];
                    where(e, loc, sizeof loc);
                    snprintf(err, errlen, "%s: %s: must be a group { ... }", loc, sub);
                    return -1;
                }
                if (cfg_check_group(e, sub, k->sub, err, errlen) < 0)
                    return -1;
            }
        }
    }
    for (const cfg_key *k = keys; k && k->name; k++) {
        if (k->def == NULL && !config_setting_get_member(g, k->name))
            return fail(g, path, k->name, err, errlen, "required key is missing");
    }
    return 0;
}

static const config_setting_t *member(const config_setting_t *g, const cfg_key *keys,
                                      const char *name, const cfg_key **kout)
{
    const cfg_key *k = find_key(keys, name);
    if (!k) {
        /* A programming error: the code asks for a key its table lacks,
         * which would also escape the documentation check. */
        fprintf(stderr, "herald: internal error: config key '%s' is not in its table\n", name);
        abort();
    }
    *kout = k;
    return g ? config_setting_get_member(g, name) : NULL;
}

const char *cfg_str(const config_setting_t *g, const cfg_key *keys, const char *name)
{
    const cfg_key *k;
    const config_setting_t *s = member(g, keys, name, &k);
    if (s && config_setting_type(s) == CONFIG_TYPE_STRING)
        return config_setting_get_string(s);
    return k->def ? k->def : "";
}

long long cfg_int(const config_setting_t *g, const cfg_key *keys, const char *name)
{
    const cfg_key *k;
    const config_setting_t *s = member(g, keys, name, &k);
    if (s && (config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64))
        return config_setting_get_int64(s);
    return k->def ? strtoll(k->def, NULL, 10) : 0;
}

int cfg_bool(const config_setting_t *g, const cfg_key *keys, const char *name)
{
    const cfg_key *k;
    const config_setting_t *s = member(g, keys, name, &k);
    if (s && config_setting_type(s) == CONFIG_TYPE_BOOL)
        return config_setting_get_bool(s);
    return k->def && strcmp(k->def, "true") == 0;
}

void cfg_print_keys(const char *prefix, const cfg_key *keys, void *file)
{
    FILE *f = file;
    for (const cfg_key *k = keys; k && k->name; k++) {
        char path[256];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", k->name);
        if (k->type == CFG_GROUP || k->type == CFG_LIST) {
            fprintf(f, "%s\t%s\t\t%s\n", path, k->type == CFG_GROUP ? "group" : "list", k->doc ? k->doc : "");
            if (k->sub) {
                char sub[sizeof path + 4];
                snprintf(sub, sizeof sub, "%s%s", path, k->type == CFG_LIST ? ".[]" : "");
                cfg_print_keys(sub, k->sub, f);
            }
            continue;
        }
        fprintf(f, "%s\t%s\t%s\t%s\n", path,
                k->type == CFG_STR ? "string" : k->type == CFG_INT ? "int" :
                k->type == CFG_BOOL ? "bool" : "string[]",
                k->def ? (*k->def ? k->def : "\"\"") : "(required)", k->doc ? k->doc : "");
    }
}
