/* service.h -- what every front end (CLI, HTTP API) does to accept a message:
 * check the template and its variables, normalise the number, render, count
 * parts, derive the idempotency key. Pure: no Redis, no files. */
#ifndef HERALD_SERVICE_H
#define HERALD_SERVICE_H

#include <stddef.h>
#include <jansson.h>
#include "gateway/phone.h"
#include "queue/queue.h"
#include "templates/catalog.h"

#define SVC_KEY_MAX 256
#define SVC_MAX_VARS 64
#define SVC_FIELD_MAX 96

/* Exit codes of the command line: 0 done, 2 bad input, 1 anything else. */
enum { EXIT_DONE = 0, EXIT_FAILURE_OTHER = 1, EXIT_BAD_INPUT = 2 };

typedef struct svc_request {
    const char *template_name;
    const char *to;
    const tpl_var *vars;
    size_t nvars;
    const char *key;          /* idempotency key, NULL = derived */
    long long send_at_ms;     /* 0 = now */
} svc_request;

typedef struct svc_message {
    queue_new_msg msg;        /* ready for queue_enqueue; points into this struct */
    rendered r;
    const tpl_def *def;
    char to[PHONE_MAX];
    char key[SVC_KEY_MAX];
    char *vars_json;
    char case_no[QUEUE_CASE_MAX + 1];   /* the variable case_no, for the case index */
    /* When svc_prepare fails: the request field at fault ("template", "to",
     * "key", "vars", "vars.case_no"), for front ends that name it. */
    char err_field[SVC_FIELD_MAX];
} svc_message;

/* A request read from JSON; rq points into vars and into the JSON value. */
typedef struct svc_json_req {
    svc_request rq;
    tpl_var vars[SVC_MAX_VARS];
} svc_json_req;

/* Prepares one message. Returns 0, or -1 with the reason for the caller in
 * err (unknown template, bad number, missing/unknown variable, too many
 * parts, bad key). Caller frees with svc_message_free() in both cases. */
int svc_prepare(const catalog *cat, const catalog_opts *o, int allow_international,
                const svc_request *rq, long long now_ms, svc_message *out,
                char *err, size_t errlen);
void svc_message_free(svc_message *m);

/* Reads {"template","to","vars":{name:string},"key","send_at"} (send_at a
 * time string as svc_parse_time reads it, or Unix milliseconds) from `j`.
 * Unknown members are refused so a misspelt field never goes unnoticed.
 * Returns 0, or -1 with the reason in err and the member at fault in field
 * ("" when the value itself is wrong). Strings stay owned by j. Shared by
 * `herald enqueue --batch` and the HTTP API. */
int svc_request_from_json(const json_t *j, long long now_ms, svc_json_req *out,
                          char *err, size_t errlen, char field[SVC_FIELD_MAX]);

/* Parses a send time: "+90s", "+5m", "+2h", "+1d", Unix seconds, or ISO
 * 8601 "2026-11-27T10:00:00+08:00" / "...Z" / without offset (local time),
 * "2026-11-27 10:00". Returns 0 and ms in *out, or -1 with err. */
int svc_parse_time(const char *s, long long now_ms, long long *out, char *err, size_t errlen);

/* Milliseconds since the epoch. */
long long svc_now_ms(void);

/* "name=value" into a tpl_var pointing into s (which is modified). */
int svc_parse_var(char *s, tpl_var *v, char *err, size_t errlen);

/* ---- command-line helpers (gateway/main.c, bulletin.c, survey_cli.c) -- */

/* Prints "herald: <message>" on stderr; returns `code` (an exit status). */
int svc_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Connects to Redis, or prints "herald: redis: <why>" and returns NULL. */
queue *svc_connect(const queue_opts *o);
/* Prints j on stdout, indented, keys in their order. */
void svc_print_json(const json_t *j);

#endif
