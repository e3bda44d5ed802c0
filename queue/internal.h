/* internal.h -- what queue.c shares with the other files of queue/.
 *
 * queue.c owns the connection, the error text and the key prefix; the
 * survey store (queue/survey.c) talks to Redis through these few calls so
 * it neither opens its own connection nor reaches into struct queue. Not
 * for use outside queue/. Every redisReply handed out here is freed by the
 * caller, once. */
#ifndef HERALD_QUEUE_INTERNAL_H
#define HERALD_QUEUE_INTERNAL_H

#include <stddef.h>
#include <hiredis/hiredis.h>
#include "queue/queue.h"

/* The configured prefix, without braces ("herald"). */
const char *queue_int_prefix(const queue *q);

/* Error text of the current call (first failure wins; see queue_errstr). */
void queue_int_clearerr(queue *q);
void queue_int_seterr(queue *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs one command, connecting first if needed. NULL when the connection
 * failed (the error is set and the connection dropped). */
redisReply *queue_int_command(queue *q, int argc, const char **argv, const size_t *lens,
                              const char *what);

/* Sends n commands in one pipeline; out[i] gets each reply (NULL for the
 * ones not read when the connection failed). Returns 0 or QUEUE_ERR_CONN. */
int queue_int_pipeline(queue *q, size_t n, const int *argcs, const char *const *const *argvs,
                       const size_t *const *lens, redisReply **out, const char *what);

/* 0 when r is a usable reply; otherwise frees r (if any) and returns the
 * QUEUE_ERR_* for it, with Redis's text kept as the error. */
int queue_int_check(queue *q, redisReply *r, const char *what);

#endif
