/* internal.h -- what other files of queue/ (bulletin.c) borrow from queue.c.
 *
 * Not for use outside queue/: the rest of Herald never sees hiredis. */
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

#endif
