/* catalog.h -- template files as data, and the set of compiled templates.
 *
 * A template file is a header, a line "---", then the body:
 *
 *   name: rights_notice_suspect
 *   family: rights_notice          (rights_notice|case_stage|survey|bulletin)
 *   lane: urgent                   (urgent|bulk; default from the family)
 *   required: name, case_no, accepted_on, office, office_phone
 *   optional: deadline
 *   max_parts: 4
 *   provider_code: SMS_123456      (optional: the provider's approved template)
 *   provider_params: name=name, case=case_no   (param=var, optional)
 *   description: one line for `herald templates`
 *   ---
 *   body in mustache subset (templates/tpl.h)
 *
 * Lines starting with '#' in the header are comments. Parsing works on a
 * buffer; catalog_load_dir() is the one function that reads files. */
#ifndef HERALD_CATALOG_H
#define HERALD_CATALOG_H

#include <stddef.h>
#include "templates/tpl.h"
#include "templates/segment.h"

#define TPL_MAX_VARS 32

typedef enum {
    FAMILY_RIGHTS_NOTICE = 0, FAMILY_CASE_STAGE, FAMILY_SURVEY, FAMILY_BULLETIN,
    FAMILY_COUNT
} tpl_family;

typedef enum { LANE_URGENT = 0, LANE_BULK = 1, LANE_COUNT } tpl_lane;

typedef struct tpl_def {
    char *name;
    tpl_family family;
    tpl_lane lane;
    char *required[TPL_MAX_VARS]; int nrequired;
    char *optional[TPL_MAX_VARS]; int noptional;
    int max_parts;
    char *provider_code;          /* NULL when none */
    char *provider_params;        /* "param=var, ..." as written, or NULL */
    char *description;            /* may be NULL */
    char *source;                 /* file name it came from, for errors */
    tpl *body;
} tpl_def;

typedef struct catalog catalog;

/* What the gateway adds to every rendered text. */
typedef struct catalog_opts {
    const char *signature;        /* "【XX市人民检察院】", prefixed to every message */
    const char *optout_line;      /* appended to bulk families (survey, bulletin) */
} catalog_opts;

const char *family_name(tpl_family f);           /* "rights_notice", ... */
int family_parse(const char *s);                 /* -1 when unknown */
const char *lane_name(tpl_lane l);               /* "urgent" / "bulk" */
int lane_parse(const char *s);
tpl_lane family_default_lane(tpl_family f);

/* Parses one template file held in memory. `source` names it in errors.
 * Returns a tpl_def the caller frees with tpl_def_free(), or NULL with
 * "source:line: what" in err. Checks: required header keys, unknown header
 * keys, that every variable the body uses is declared required or optional,
 * and that every declared variable is used. */
tpl_def *tpl_def_parse(const char *buf, size_t len, const char *source,
                       char *err, size_t errlen);
void tpl_def_free(tpl_def *d);                   /* accepts NULL */

catalog *catalog_new(void);
void catalog_free(catalog *c);                   /* accepts NULL */
/* Adds d (the catalog takes ownership). -1 if the name exists already. */
int catalog_add(catalog *c, tpl_def *d, char *err, size_t errlen);
/* Loads every *.tpl file of `dir`. On any error returns NULL and err names
 * the file and line; nothing half-loaded is returned. */
catalog *catalog_load_dir(const char *dir, char *err, size_t errlen);
const tpl_def *catalog_find(const catalog *c, const char *name);
size_t catalog_count(const catalog *c);
const tpl_def *catalog_at(const catalog *c, size_t i);  /* sorted by name */

/* The result of rendering a message. */
typedef struct rendered {
    char *text;                   /* malloc'd: signature + body (+ opt-out) */
    seg_info seg;
} rendered;

/* Checks vars against d (unknown variable, missing required, empty
 * required), renders, adds signature and opt-out line, counts parts and
 * checks max_parts. Returns 0, or -1 with a message for the caller in err
 * ("missing required variable 'case_no'", "unknown variable 'nmae'",
 * "text needs 5 parts, template allows 4"). Caller frees out->text. */
int catalog_render(const tpl_def *d, const catalog_opts *o,
                   const tpl_var *vars, size_t nvars,
                   rendered *out, char *err, size_t errlen);

#endif
