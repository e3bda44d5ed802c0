/* internal.h -- what queue.c shares with the other files of queue/
 * (bulletin.c, survey.c).
 *
 * queue.c owns the connection, the error text and the key prefix; the
 * other stores talk to Redis through these few calls, so they neither open
 * their own connection nor reach into struct queue. Not for use outside
 * queue/: the rest of Herald never sees hiredis. Every redisReply handed
 * out here is freed by the caller, once. */
#ifndef HERALD_QUEUE_INTERNAL_H
#define HERALD_QUEUE_INTERNAL_H

#include <stddef.h>
#include <hiredis/hiredis.h>
#include "queue/queue.h"

/* Runs one command on q's connection, connecting first when needed.
 * Returns the reply (caller frees with freeReplyObject) or NULL when the
 * connection failed; an error reply is translated into a QUEUE_ERR_* and
 * freed, and NULL returned with *rc set. *rc is 0 on success. */
redisReply *queue_internal_command(queue *q, int argc, const char **argv,
                                   const size_t *lens, const char *what, int *rc);
/* The key prefix without braces ("herald"). */
const char *queue_internal_prefix(const queue *q);
/* Sets the error text of q (first failure wins, as in queue.c). */
void queue_internal_seterr(queue *q, const char *msg);
/* Clears the error text at the start of an API call. */
void queue_internal_clearerr(queue *q);

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
