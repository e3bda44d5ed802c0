/* catalog.c -- template files as data, and the set of compiled templates.
 *
 * At start-up the gateway calls catalog_load_dir() on its template folder
 * (the shipped set lives in templates/shipped/); that is the only function
 * here that touches the file system. Each file is parsed by tpl_def_parse()
 * from a buffer: header, "---", body (format in catalog.h). Workers then
 * call catalog_render() per message: it checks the caller's variables
 * against the template's declaration, renders, adds the carrier signature
 * (and, for the bulk families, the opt-out line), and counts SMS parts with
 * templates/segment.c so an over-long text is refused before it is queued.
 *
 * The catalog keeps its templates sorted by name; lookup is a binary
 * search. A catalog is built once and then only read, so it may be shared
 * by worker threads without a lock. */
#include "templates/catalog.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_PARTS_LIMIT 50          /* libgammu sends at most 50 parts */
#define MAX_FILE_BYTES  (64 * 1024) /* a template is a few hundred bytes */

struct catalog {
    tpl_def **defs;                 /* sorted by name */
    size_t n, cap;
};

static const char *const family_names[FAMILY_COUNT] = {
    [FAMILY_RIGHTS_NOTICE] = "rights_notice",
    [FAMILY_CASE_STAGE]    = "case_stage",
    [FAMILY_SURVEY]        = "survey",
    [FAMILY_BULLETIN]      = "bulletin",
};

static const char *const lane_names[LANE_COUNT] = {
    [LANE_URGENT] = "urgent",
    [LANE_BULK]   = "bulk",
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *family_name(tpl_family f)
{
    return (unsigned)f < FAMILY_COUNT ? family_names[f] : "?";
}

int family_parse(const char *s)
{
    for (int i = 0; i < FAMILY_COUNT; i++)
        if (s && strcmp(s, family_names[i]) == 0)
            return i;
    return -1;
}

const char *lane_name(tpl_lane l)
{
    return (unsigned)l < LANE_COUNT ? lane_names[l] : "?";
}

int lane_parse(const char *s)
{
    for (int i = 0; i < LANE_COUNT; i++)
        if (s && strcmp(s, lane_names[i]) == 0)
            return i;
    return -1;
}

tpl_lane family_default_lane(tpl_family f)
{
    /* Legal notices and stage updates are transactional and time-bound;
     * surveys and bulletins are batch sends that may wait. */
    return (f == FAMILY_SURVEY || f == FAMILY_BULLETIN) ? LANE_BULK : LANE_URGENT;
}

void tpl_def_free(tpl_def *d)
{
    if (!d)
        return;
    free(d->name);
    for (int i = 0; i < d->nrequired; i++)
        free(d->required[i]);
    for (int i = 0; i < d->noptional; i++)
        free(d->optional[i]);
    free(d->provider_code);
    free(d->provider_params);
    free(d->description);
    free(d->source);
    tpl_free(d->body);
    free(d);
}

/* ---- header parsing ---------------------------------------------------- */

static int is_ident(const char *s)
{
    if (!s[0] || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
                   s[0] == '_'))
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    return 1;
}

/* Trims spaces and tabs at both ends, in place. */
static char *trim(char *s)
{
    char *e;
    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    *e = '\0';
    return s;
}

static int declared(const tpl_def *d, const char *name)
{
    for (int i = 0; i < d->nrequired; i++)
        if (strcmp(d->required[i], name) == 0)
            return 1;
    for (int i = 0; i < d->noptional; i++)
        if (strcmp(d->optional[i], name) == 0)
            return 1;
    return 0;
}

/* Parses "a, b, c" into list (strdup'd names). Checks each is a name, not
 * listed twice and not declared already. An empty value is an empty list;
 * an empty item ("a,,b", "a,") is an error. */
static int parse_list(tpl_def *d, char *value, char **list, int *n,
                      const char *where, char *err, size_t errlen)
{
    char *item = trim(value);
    if (*item == '\0')
        return 0;
    for (;;) {
        char *comma = strchr(item, ',');
        if (comma)
            *comma = '\0';
        char *name = trim(item);
        if (!is_ident(name)) {
            set_err(err, errlen, "%s: '%s' is not a variable name", where, name);
            return -1;
        }
        if (declared(d, name)) {
            set_err(err, errlen, "%s: variable '%s' declared twice", where, name);
            return -1;
        }
        if (*n >= TPL_MAX_VARS) {
            set_err(err, errlen, "%s: more than %d variables", where, TPL_MAX_VARS);
            return -1;
        }
        list[*n] = strdup(name);
        if (!list[*n]) {
            set_err(err, errlen, "%s: out of memory", where);
            return -1;
        }
        (*n)++;
        if (!comma)
            return 0;
        item = comma + 1;
    }
}

/* Checks "param=var, ..." against the declared variables. */
static int check_provider_params(const tpl_def *d, const char *value,
                                 const char *where, char *err, size_t errlen)
{
    char *copy = strdup(value), *save = NULL;
    int rc = 0;
    if (!copy) {
        set_err(err, errlen, "%s: out of memory", where);
        return -1;
    }
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            set_err(err, errlen, "%s: provider_params entry '%s' is not param=var",
                    where, trim(tok));
            rc = -1;
            break;
        }
        *eq = '\0';
        char *param = trim(tok), *var = trim(eq + 1);
        if (!*param || !is_ident(var)) {
            set_err(err, errlen, "%s: provider_params entry '%s=%s' is not param=var",
                    where, param, var);
            rc = -1;
            break;
        }
        if (!declared(d, var)) {
            set_err(err, errlen, "%s: provider_params uses undeclared variable '%s'",
                    where, var);
            rc = -1;
            break;
        }
    }
    free(copy);
    return rc;
}

/* Header keys, with the line each was seen on (0: not seen). */
enum { K_NAME, K_FAMILY, K_LANE, K_REQUIRED, K_OPTIONAL, K_MAX_PARTS,
       K_PROVIDER_CODE, K_PROVIDER_PARAMS, K_DESCRIPTION, K_COUNT };
static const char *const key_names[K_COUNT] = {
    "name", "family", "lane", "required", "optional", "max_parts",
    "provider_code", "provider_params", "description",
};

/* Context for the declared-but-unused check. */
typedef struct use_check {
    const tpl_def *d;
    const char *bad;
} use_check;

static void find_undeclared(const char *name, void *ud)
{
    use_check *u = ud;
    if (!u->bad && !declared(u->d, name))
        u->bad = name;
}

tpl_def *tpl_def_parse(const char *buf, size_t len, const char *source,
                       char *err, size_t errlen)
{
    char where[512];
    int seen[K_COUNT] = { 0 };
    int line = 0, lane = -1, body_line = 0;
    char *copy = NULL, *provider_params = NULL;
    size_t pos = 0, body_at = 0;
    tpl_def *d = calloc(1, sizeof *d);

    if (!source)
        source = "(template)";
    if (!d || !(d->source = strdup(source))) {
        set_err(err, errlen, "%s: out of memory", source);
        goto fail;
    }
    if (memchr(buf, '\0', len)) {
        set_err(err, errlen, "%s: NUL byte in file", source);
        goto fail;
    }

    /* Header: one line at a time until "---". */
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - buf) : len;
        line++;
        snprintf(where, sizeof where, "%s:%d", source, line);
        free(copy);
        copy = strndup(buf + pos, end - pos);
        if (!copy) {
            set_err(err, errlen, "%s: out of memory", where);
            goto fail;
        }
        pos = nl ? end + 1 : len;
        char *l = trim(copy);
        if (strcmp(l, "---") == 0) {
            body_line = line + 1;
            body_at = pos;
            break;
        }
        if (*l == '\0' || *l == '#')
            continue;
        char *colon = strchr(l, ':');
        if (!colon) {
            set_err(err, errlen, "%s: expected 'key: value', got '%s'", where, l);
            goto fail;
        }
        *colon = '\0';
        char *key = trim(l), *value = trim(colon + 1);
        int k;
        for (k = 0; k < K_COUNT; k++)
            if (strcmp(key, key_names[k]) == 0)
                break;
        if (k == K_COUNT) {
            set_err(err, errlen, "%s: unknown header key '%s'", where, key);
            goto fail;
        }
        if (seen[k]) {
            set_err(err, errlen, "%s: '%s' given twice (first on line %d)",
                    where, key, seen[k]);
            goto fail;
        }
        seen[k] = line;
        switch (k) {
        case K_NAME:
            if (!is_ident(value)) {
                set_err(err, errlen, "%s: name '%s' must be letters, digits and '_'",
                        where, value);
                goto fail;
            }
            d->name = strdup(value);
            break;
        case K_FAMILY: {
            int f = family_parse(value);
            if (f < 0) {
                set_err(err, errlen, "%s: unknown family '%s' (rights_notice, "
                        "case_stage, survey or bulletin)", where, value);
                goto fail;
            }
            d->family = (tpl_family)f;
            break;
        }
        case K_LANE:
            lane = lane_parse(value);
            if (lane < 0) {
                set_err(err, errlen, "%s: unknown lane '%s' (urgent or bulk)",
                        where, value);
                goto fail;
            }
            break;
        case K_REQUIRED:
            if (parse_list(d, value, d->required, &d->nrequired, where, err, errlen) < 0)
                goto fail;
            break;
        case K_OPTIONAL:
            if (parse_list(d, value, d->optional, &d->noptional, where, err, errlen) < 0)
                goto fail;
            break;
        case K_MAX_PARTS: {
            char *endp;
            errno = 0;
            long v = strtol(value, &endp, 10);
            if (errno || endp == value || *endp || v < 1 || v > MAX_PARTS_LIMIT) {
                set_err(err, errlen, "%s: max_parts '%s' is not a number from 1 to %d",
                        where, value, MAX_PARTS_LIMIT);
                goto fail;
            }
            d->max_parts = (int)v;
            break;
        }
        case K_PROVIDER_CODE:
            if (!*value) {
                set_err(err, errlen, "%s: provider_code is empty", where);
                goto fail;
            }
            d->provider_code = strdup(value);
            break;
        case K_PROVIDER_PARAMS:
            /* Checked once all variables are declared. */
            provider_params = strdup(value);
            d->provider_params = strdup(value);
            break;
        case K_DESCRIPTION:
            d->description = strdup(value);
            break;
        }
        if ((k == K_NAME && !d->name) || (k == K_PROVIDER_CODE && !d->provider_code) ||
            (k == K_PROVIDER_PARAMS && (!provider_params || !d->provider_params)) ||
            (k == K_DESCRIPTION && !d->description)) {
            set_err(err, errlen, "%s: out of memory", where);
            goto fail;
        }
    }
    if (!body_line) {
        set_err(err, errlen, "%s:%d: no '---' line between header and body",
                source, line);
        goto fail;
    }
    static const int must[] = { K_NAME, K_FAMILY, K_MAX_PARTS };
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++) {
        if (!seen[must[i]]) {
            set_err(err, errlen, "%s:%d: header has no '%s'", source, body_line - 1,
                    key_names[must[i]]);
            goto fail;
        }
    }
    d->lane = lane >= 0 ? (tpl_lane)lane : family_default_lane(d->family);
    if (provider_params) {
        snprintf(where, sizeof where, "%s:%d", source, seen[K_PROVIDER_PARAMS]);
        if (check_provider_params(d, provider_params, where, err, errlen) < 0)
            goto fail;
    }

    /* Body: the file's final line break(s) are not part of the message. */
    size_t body_len = len - body_at;
    while (body_len && (buf[body_at + body_len - 1] == '\n' ||
                        buf[body_at + body_len - 1] == '\r'))
        body_len--;
    if (body_len == 0) {
        set_err(err, errlen, "%s:%d: empty body", source, body_line);
        goto fail;
    }
    char terr[256];
    d->body = tpl_compile(buf + body_at, body_len, terr, sizeof terr);
    if (!d->body) {
        int bl = 0, off = 0;
        if (sscanf(terr, "line %d: %n", &bl, &off) == 1 && off > 0)
            set_err(err, errlen, "%s:%d: %s", source, body_line + bl - 1, terr + off);
        else
            set_err(err, errlen, "%s:%d: %s", source, body_line, terr);
        goto fail;
    }
    use_check u = { d, NULL };
    tpl_each_var(d->body, find_undeclared, &u);
    if (u.bad) {
        set_err(err, errlen, "%s:%d: body uses '%s', which is neither required "
                "nor optional", source, body_line + tpl_var_line(d->body, u.bad) - 1,
                u.bad);
        goto fail;
    }
    for (int i = 0; i < d->nrequired + d->noptional; i++) {
        int req = i < d->nrequired;
        const char *name = req ? d->required[i] : d->optional[i - d->nrequired];
        if (!tpl_var_line(d->body, name)) {
            set_err(err, errlen, "%s:%d: %s variable '%s' is never used in the body",
                    source, seen[req ? K_REQUIRED : K_OPTIONAL],
                    req ? "required" : "optional", name);
            goto fail;
        }
    }
    free(copy);
    free(provider_params);
    return d;
fail:
    free(copy);
    free(provider_params);
    tpl_def_free(d);
    return NULL;
}

/* ---- the catalog ------------------------------------------------------- */

catalog *catalog_new(void)
{
    return calloc(1, sizeof(catalog));
}

void catalog_free(catalog *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        tpl_def_free(c->defs[i]);
    free(c->defs);
    free(c);
}

/* Index of name in c, or of where it would go; *found says which. */
static size_t find_slot(const catalog *c, const char *name, int *found)
{
    size_t lo = 0, hi = c->n;
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(c->defs[mid]->name, name);
        if (cmp == 0) {
            *found = 1;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int catalog_add(catalog *c, tpl_def *d, char *err, size_t errlen)
{
    int found;
    size_t at = find_slot(c, d->name, &found);

    if (found) {
        set_err(err, errlen, "%s: template '%s' is already defined in %s",
                d->source ? d->source : "(template)", d->name,
                c->defs[at]->source ? c->defs[at]->source : "(template)");
        return -1;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        tpl_def **p = realloc(c->defs, cap * sizeof *p);
        if (!p) {
            set_err(err, errlen, "out of memory adding template '%s'", d->name);
            return -1;
        }
        c->defs = p;
        c->cap = cap;
    }
    memmove(c->defs + at + 1, c->defs + at, (c->n - at) * sizeof *c->defs);
    c->defs[at] = d;
    c->n++;
    return 0;
}

const tpl_def *catalog_find(const catalog *c, const char *name)
{
    int found;
    size_t at;
    if (!c || !name)
        return NULL;
    at = find_slot(c, name, &found);
    return found ? c->defs[at] : NULL;
}

size_t catalog_count(const catalog *c)
{
    return c ? c->n : 0;
}

const tpl_def *catalog_at(const catalog *c, size_t i)
{
    return c && i < c->n ? c->defs[i] : NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads path whole into a malloc'd buffer. */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (!f) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(MAX_FILE_BYTES + 1);
    if (!buf) {
        set_err(err, errlen, "%s: out of memory", path);
        goto out;
    }
    *len = fread(buf, 1, MAX_FILE_BYTES + 1, f);
    if (ferror(f)) {
        set_err(err, errlen, "%s: read error: %s", path, strerror(errno));
        free(buf);
        buf = NULL;
    } else if (*len > MAX_FILE_BYTES) {
        set_err(err, errlen, "%s: larger than %d bytes", path, MAX_FILE_BYTES);
        free(buf);
        buf = NULL;
    }
out:
    fclose(f);
    return buf;
}

catalog *catalog_load_dir(const char *dir, char *err, size_t errlen)
{
    DIR *dh = opendir(dir);
    char **names = NULL;
    size_t nnames = 0, cap = 0;
    catalog *c = NULL;
    struct dirent *de;

    if (!dh) {
        set_err(err, errlen, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    /* Collect and sort the names first, so that errors and duplicate
     * reports come out the same on every machine. */
    while ((de = readdir(dh)) != NULL) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' || n <= 4 || strcmp(de->d_name + n - 4, ".tpl") != 0)
            continue;
        if (nnames == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **p = realloc(names, ncap * sizeof *p);
            if (!p)
                goto oom;
            names = p;
            cap = ncap;
        }
        if (!(names[nnames] = strdup(de->d_name)))
            goto oom;
        nnames++;
    }
    closedir(dh);
    dh = NULL;
    if (nnames == 0) {
        set_err(err, errlen, "%s: no *.tpl template files", dir);
        goto fail;
    }
    qsort(names, nnames, sizeof *names, cmp_str);

    if (!(c = catalog_new()))
        goto oom;
    for (size_t i = 0; i < nnames; i++) {
        char *path = NULL, *buf;
        size_t len = 0;
        struct stat st;
        if (asprintf(&path, "%s/%s", dir, names[i]) < 0)
            goto oom;
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        buf = read_file(path, &len, err, errlen);
        if (!buf) {
            free(path);
            goto fail;
        }
        tpl_def *d = tpl_def_parse(buf, len, path, err, errlen);
        free(buf);
        free(path);
        if (!d || catalog_add(c, d, err, errlen) < 0) {
            tpl_def_free(d);
            goto fail;
        }
    }
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    return c;
oom:
    set_err(err, errlen, "%s: out of memory", dir);
fail:
    if (dh)
        closedir(dh);
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    catalog_free(c);
    return NULL;
}

/* ---- rendering --------------------------------------------------------- */

static int is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return 0;
    return 1;
}

/* The opt-out line goes straight after Chinese text (no space costs a
 * character there), but after ASCII text a space keeps it from gluing on
 * to a link or a number the body ends with. */
static const char *optout_join(const char *body)
{
    size_t n = strlen(body);
    if (n == 0)
        return "";
    unsigned char last = (unsigned char)body[n - 1];
    return (last < 0x80 && last != ' ' && last != '\n') ? " " : "";
}

int catalog_render(const tpl_def *d, const catalog_opts *o,
                   const tpl_var *vars, size_t nvars,
                   rendered *out, char *err, size_t errlen)
{
    char *body = NULL, *text = NULL;
    char serr[128];
    int rc = -1;

    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < nvars; i++) {
        if (!vars[i].name || !declared(d, vars[i].name)) {
            set_err(err, errlen, "unknown variable '%s' for template '%s'",
                    vars[i].name ? vars[i].name : "(null)", d->name);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(vars[j].name, vars[i].name) == 0) {
                set_err(err, errlen, "variable '%s' given twice", vars[i].name);
                return -1;
            }
        }
        const char *v = vars[i].value ? vars[i].value : "";
        seg_info probe;
        if (seg_count(v, strlen(v), &probe, serr, sizeof serr) < 0) {
            set_err(err, errlen, "variable '%s': %s", vars[i].name, serr);
            return -1;
        }
    }
    for (int r = 0; r < d->nrequired; r++) {
        size_t i;
        for (i = 0; i < nvars; i++)
            if (strcmp(vars[i].name, d->required[r]) == 0)
                break;
        if (i == nvars) {
            set_err(err, errlen, "missing required variable '%s'", d->required[r]);
            return -1;
        }
        if (!vars[i].value || is_blank(vars[i].value)) {
            set_err(err, errlen, "required variable '%s' is empty", d->required[r]);
            return -1;
        }
    }

    body = tpl_render(d->body, vars, nvars);
    if (!body) {
        set_err(err, errlen, "out of memory rendering '%s'", d->name);
        goto out;
    }
    const char *sig = o && o->signature ? o->signature : "";
    const char *optout = "", *join = "";
    if ((d->family == FAMILY_SURVEY || d->family == FAMILY_BULLETIN) &&
        o && o->optout_line && *o->optout_line) {
        optout = o->optout_line;
        join = optout_join(body);
    }
    if (asprintf(&text, "%s%s%s%s", sig, body, join, optout) < 0) {
        text = NULL;
        set_err(err, errlen, "out of memory rendering '%s'", d->name);
        goto out;
    }
    if (seg_count(text, strlen(text), &out->seg, serr, sizeof serr) < 0) {
        set_err(err, errlen, "template '%s': %s", d->name, serr);
        goto out;
    }
    if (out->seg.parts > d->max_parts) {
        set_err(err, errlen, "text needs %d parts, template allows %d",
                out->seg.parts, d->max_parts);
        goto out;
    }
    out->text = text;
    text = NULL;
    rc = 0;
out:
    free(body);
    free(text);
    return rc;
}
