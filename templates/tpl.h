/* tpl.h -- the template engine: a mustache subset, memory in, memory out.
 *
 * Supported: {{var}}, {{#section}}...{{/section}} (rendered when the
 * variable is set and not empty, "0" or "false"), {{^inverted}}...{{/inverted}}
 * (rendered when it is not), {{! comment}}. No HTML escaping, no partials,
 * no lambdas. The engine never opens a file. Variables are flat string
 * key/value pairs. */
#ifndef HERALD_TPL_H
#define HERALD_TPL_H

#include <stddef.h>

typedef struct tpl tpl;            /* a compiled template body */

typedef struct tpl_var {
    const char *name;
    const char *value;             /* UTF-8 */
} tpl_var;

/* Compiles `src` (len bytes, UTF-8). Returns NULL with "line N: what" in
 * err on unclosed/mismatched sections, empty or malformed tags, invalid
 * UTF-8. Caller frees with tpl_free(). */
tpl *tpl_compile(const char *src, size_t len, char *err, size_t errlen);
void tpl_free(tpl *t);              /* accepts NULL */

/* Calls fn once for every distinct variable name the template refers to
 * (in tags and sections), in order of first appearance. */
void tpl_each_var(const tpl *t, void (*fn)(const char *name, void *ud), void *ud);

/* The line (1-based, within the compiled source) where `name` is first
 * used, or 0 when the template does not use it. For error messages. */
int tpl_var_line(const tpl *t, const char *name);

/* Renders with `vars` (nvars entries; a name absent is empty). Returns a
 * malloc'd NUL-terminated UTF-8 string the caller frees, or NULL on
 * allocation failure. */
char *tpl_render(const tpl *t, const tpl_var *vars, size_t nvars);

#endif
