/* console.h -- the office console: a web page served by the API's HTTP
 * server under /console/, and the few read-only JSON routes it alone
 * needs under /v1/console/ (docs/console.md, docs/api.md).
 *
 * The page's files (console/index.html, app.js, app.css) are built into
 * the binary: gateway/console_files.c is generated from them by
 * scripts/embed-console.sh (console_test.sh checks it is up to date), so
 * the office network needs nothing from outside. The static files need no
 * token; the page signs in with an API token kept in sessionStorage and
 * calls the JSON API with it. */
#ifndef HERALD_CONSOLE_H
#define HERALD_CONSOLE_H

#include <stddef.h>
#include <microhttpd.h>
#include "gateway/api.h"

typedef struct console_file {
    const char *name;             /* "index.html" */
    const char *type;             /* its Content-Type */
    const char *data;
    size_t len;
} console_file;
extern const console_file console_files[];    /* ends with a NULL name */

/* 1 when the console answers `url` (/console, /console/..., /v1/console/...). */
int console_wants(const char *url);
/* Answers one request. scopes: the bearer token's scopes, or -1 when the
 * request has no valid token. Queues the response on conn. */
enum MHD_Result console_handle(struct MHD_Connection *conn, const char *method, const char *url,
                               const api_env *env, long scopes);
/* The JSON routes the console adds (for the documentation check). */
const api_route_info *console_route_table(size_t *n);

#endif
