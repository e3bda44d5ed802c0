/* cfgkeys.h -- the schema every configuration group is checked against.
 *
 * Each group of herald.conf (and each driver's options group) is described
 * by a NULL-terminated table of cfg_key. cfg_check_group() refuses unknown
 * keys, wrong types and out-of-range values with file:line, the key's full
 * path and what is wrong. Code reads configuration only through these
 * tables, so `herald config keys` can list every key the code reads and a
 * test checks each is documented in docs/configuration.md. */
#ifndef HERALD_CFGKEYS_H
#define HERALD_CFGKEYS_H

#include <stddef.h>
#include <libconfig.h>

typedef enum {
    CFG_STR,      /* string */
    CFG_INT,      /* integer, checked against [min, max] */
    CFG_BOOL,     /* true / false */
    CFG_STRLIST,  /* array of strings */
    CFG_GROUP,    /* a nested group; its keys live in `sub` */
    CFG_LIST      /* a list of groups, each checked against `sub` */
} cfg_type;

typedef struct cfg_key {
    const char *name;
    cfg_type type;
    const char *def;          /* default as text ("" none; NULL = required) */
    long long min, max;       /* CFG_INT range (min == max == 0: unchecked) */
    const struct cfg_key *sub;/* CFG_GROUP / CFG_LIST members */
    const char *doc;          /* one line, for `herald config keys` */
} cfg_key;

/* Checks group `g` (whose full path is `path`, e.g. "routes.[0].gammu")
 * against `keys`: unknown key, wrong type, out of range, missing required.
 * Returns 0, or -1 with "file:line: path.key: what is wrong" in err. */
int cfg_check_group(const config_setting_t *g, const char *path,
                    const cfg_key *keys, char *err, size_t errlen);

/* Typed getters with the table's default. `g` may be NULL (group absent):
 * the default is returned. The returned string belongs to the config (or
 * is the static default): do not free. */
const char *cfg_str(const config_setting_t *g, const cfg_key *keys, const char *name);
long long cfg_int(const config_setting_t *g, const cfg_key *keys, const char *name);
int cfg_bool(const config_setting_t *g, const cfg_key *keys, const char *name);

/* Prints every key path under `prefix` with its type, default and doc,
 * one per line (used by `herald config keys`). */
void cfg_print_keys(const char *prefix, const cfg_key *keys, void *file);

#endif
