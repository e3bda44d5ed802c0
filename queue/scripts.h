/* scripts.h -- the Lua scripts of the queue (internal to queue/).
 *
 * Every change of a message's state is one of these scripts, so a record,
 * its stream entry, the schedule and the counters change together or not
 * at all. queue.c loads them with SCRIPT LOAD once per connection and calls
 * them with EVALSHA (EVAL when Redis answers NOSCRIPT). Each script touches
 * only the keys it is given in KEYS[]; the KEYS and ARGV of each are listed
 * above its text in scripts.c. */
#ifndef HERALD_QUEUE_SCRIPTS_H
#define HERALD_QUEUE_SCRIPTS_H

typedef enum {
    QSCRIPT_ENQUEUE = 0,
    QSCRIPT_BEGIN,
    QSCRIPT_FINISH,
    QSCRIPT_RELEASE,
    QSCRIPT_PROMOTE,
    QSCRIPT_RECLAIM,
    QSCRIPT_LEASE,
    QSCRIPT_UNLEASE,
    QSCRIPT_DEAD_RETRY,
    QSCRIPT_PACE,
    QSCRIPT_PACE_BACKOFF,
    QSCRIPT_DLR_INDEX,
    QSCRIPT_DLR_REPORT,
    QSCRIPT_INBOUND_PART,
    QSCRIPT_INBOUND_FLUSH,
    QSCRIPT_TRIM,
    QSCRIPT_COUNT
} queue_script_id;

typedef struct queue_script {
    const char *name;         /* for error messages */
    const char *src;          /* Lua source */
} queue_script;

/* What RELEASE and RECLAIM return for one entry. */
enum {
    QSR_LEFT = 0,             /* left alone (leased, or not idle any more) */
    QSR_REQUEUED = 1,         /* acked, deleted and added to its lane again */
    QSR_HELD = 2,             /* marked uncertain */
    QSR_DEAD = 3,             /* malformed or record missing: dead letter */
    QSR_ACKED = 4             /* stale or finished: acked and deleted */
};

/* BEGIN stores no `sending` line in a record's timeline: while the attempt
 * lasts, the line is derived from the fields BEGIN writes (`updated` is
 * when it began, `attempts`, `owner`; queue_get shows it), and whoever ends
 * the attempt (FINISH, RECLAIM, the survey's SKIP) writes it first. One
 * rewrite of the timeline an attempt instead of two: measured, 1.2 us of
 * Redis's CPU and 120 AOF bytes a message. attempt(cur, began, n, owner)
 * returns the timeline `cur` with that line added, unless `cur` ends with
 * it already (an attempt begun by a gateway from before this change, which
 * stored the line at once). */
#define LUA_ATTEMPT_LINE \
"-- `cur` with the attempt's line `line` added, unless it is its last line\n" \
"local function with_attempt(cur, line)\n" \
"  if not cur or cur == '' then return line end\n" \
"  -- already its last line? (compared in place: no substring is made)\n" \
"  local at = #cur - #line\n" \
"  if at > 0 and string.byte(cur, at) == 10 and string.find(cur, line, at + 1, true) then\n" \
"    return cur\n" \
"  end\n" \
"  return cur .. '\\n' .. line\n" \
"end\n" \
"local function attempt(cur, began, n, owner)\n" \
"  return with_attempt(cur, (began or '0') .. '\\tsending\\tattempt ' .. (n or '?') .. ' by ' .. (owner or '?'))\n" \
"end\n"

/* Indexed by queue_script_id. */
extern const queue_script queue_scripts[QSCRIPT_COUNT];

#endif
