/* retention.c -- the retention purge on Redis (see retention.h).
 *
 * Same rules as queue.c: keys are "{prefix}:..." and spelled by rkey()
 * below (the indexes `bodies` and `replytexts` are also spelled where they
 * are written: queue.c's key_kinds[] and survey.c's sv_kinds[]); each batch
 * is one Lua script that gets every key it touches in KEYS[] and checks
 * each item again, so two gateways purging at once do each item once.
 * Scripts go by EVALSHA, re-sent with EVAL on NOSCRIPT. */
#include "queue/retention.h"
#include "queue/internal.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#define DEFAULT_BATCH 500
#define MAX_BATCH 1000

/* ---- keys ------------------------------------------------------------------ */

typedef enum { RK_MSG, RK_BODIES, RK_REPLIES, RK_REPLYTEXTS, RK_OTHER, RK_OTHER_PURGED,
               RK_INBOUND, RK_TOTALS } rkind;

static const char *const rkinds[] = {
    [RK_MSG] = "msg:",
    [RK_BODIES] = "bodies",
    [RK_REPLIES] = "survey:replies:",
    [RK_REPLYTEXTS] = "replytexts",
    [RK_OTHER] = "replies:other",
    [RK_OTHER_PURGED] = "replies:purged",
    [RK_INBOUND] = "inbound",
    [RK_TOTALS] = "retention",
};

/* ---- commands of any length: a batch names up to MAX_BATCH records ---------- */

typedef struct rcmd {
    int n, cap;
    const char **v;
    size_t *l;
    char **own;               /* own[i]: v[i] when this command formatted it */
    int oom;
} rcmd;

static void r_init(rcmd *c) { memset(c, 0, sizeof *c); }

static void r_free(rcmd *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->own[i]);
    free(c->v);
    free(c->l);
    free(c->own);
    memset(c, 0, sizeof *c);
}

static int r_grow(rcmd *c)
{
    if (c->n < c->cap)
        return 0;
    int cap = c->cap ? 2 * c->cap : 32;
    const char **v = realloc(c->v, (size_t)cap * sizeof *v);
    if (v)
        c->v = v;
    size_t *l = realloc(c->l, (size_t)cap * sizeof *l);
    if (l)
        c->l = l;
    char **own = realloc(c->own, (size_t)cap * sizeof *own);
    if (own)
        c->own = own;
    if (!v || !l || !own) {
        c->oom = 1;
        return -1;
    }
    c->cap = cap;
    return 0;
}

/* Pushes s (not copied: it must outlive the command). */
static void r_str(rcmd *c, const char *s, size_t len)
{
    if (r_grow(c) < 0)
        return;
    c->v[c->n] = s;
    c->l[c->n] = len;
    c->own[c->n++] = NULL;
}

static void r_fmt(rcmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void r_fmt(rcmd *c, const char *fmt, ...)
{
    if (r_grow(c) < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int len = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (len < 0) {
        c->oom = 1;
        return;
    }
    c->v[c->n] = s;
    c->l[c->n] = (size_t)len;
    c->own[c->n++] = s;
}

static void r_cstr(rcmd *c, const char *s) { r_str(c, s, strlen(s)); }

static void rkey(rcmd *c, const queue *q, rkind k, const char *suffix)
{
    r_fmt(c, "{%s}:%s%s", queue_int_prefix(q), rkinds[k], suffix ? suffix : "");
}

/* ---- scripts --------------------------------------------------------------- */

/* BODIES (a run of members of {p}:bodies)
 * A member is the ids of one ENQUEUE call joined by ',' (scored by the
 * newest creation time among them), or one id (as written before the
 * grouping); one member an ENQUEUE call costs about 25 bytes a message
 * where a member a message cost 119.
 * KEYS: 1 bodies, 2.. the records, in the order of the members' ids
 * ARGV: 1 cutoff ms, 2 now, 3.. the members
 * A record that is gone leaves the index; one still queued or being sent
 * stays in it (a scheduled message keeps its text until it is sent); any
 * other loses `text` and `vars`, gets `body_purged_at` and a timeline line,
 * and leaves the index. A member whose ids did not all stay is replaced
 * by the ids that stayed, with the same score.
 * Returns {purged, expired, active, members left in place}. */
static const char lua_bodies[] =
"local purged, gone, active, kept = 0, 0, 0, 0\n"
"local k = 2\n"
"for i = 3, #ARGV do\n"
"  local m = ARGV[i]\n"
"  local s = redis.call('ZSCORE', KEYS[1], m)\n"
"  local due = s and tonumber(s) <= tonumber(ARGV[1])\n"
"  local left, n = {}, 0\n"
"  for id in string.gmatch(m, '[^,]+') do\n"
"    local key = KEYS[k]\n"
"    k, n = k + 1, n + 1\n"
"    if due then\n"
"      local r = redis.call('HMGET', key, 'status', 'body_purged_at', 'tl')\n"
"      if not r[1] then\n"
"        gone = gone + 1\n"
"      elseif r[1] == 'queued' or r[1] == 'sending' then\n"
"        active = active + 1\n"
"        left[#left + 1] = id\n"
"      elseif not r[2] then\n"
"        local line = ARGV[2] .. '\\tpurged\\ttext and variables removed (retention)'\n"
"        if r[3] and r[3] ~= '' then line = r[3] .. '\\n' .. line end\n"
"        redis.call('HSET', key, 'text', '', 'vars', '{}', 'body_purged_at', ARGV[2], 'tl', line)\n"
"        purged = purged + 1\n"
"      end\n"
"    end\n"
"  end\n"
"  if due then\n"
"    if #left == n and n > 0 then\n"
"      kept = kept + 1\n"
"    else\n"
"      redis.call('ZREM', KEYS[1], m)\n"
"      if #left > 0 then\n"
"        redis.call('ZADD', KEYS[1], s, table.concat(left, ','))\n"
"        kept = kept + 1\n"
"      end\n"
"    end\n"
"  end\n"
"end\n"
"return {purged, gone, active, kept}\n";

/* REPLIES (one batch of survey answers from {p}:replytexts)
 * KEYS: 1 replytexts, 2.. the replies hash of each member's period
 * ARGV: 1 cutoff ms, 2 now, then per member: its "<period>|<field>", its field
 * An answer whose last reply is still at or before the cutoff loses each
 * raw text and its suggestion; status, ratings, times and routes stay.
 * Returns {purged, gone}. */
static const char lua_replies[] =
"local purged, gone = 0, 0\n"
"for i = 2, #KEYS do\n"
"  local m, f = ARGV[2 * i - 1], ARGV[2 * i]\n"
"  local s = redis.call('ZSCORE', KEYS[1], m)\n"
"  if s and tonumber(s) <= tonumber(ARGV[1]) then\n"
"    local cur = redis.call('HGET', KEYS[i], f)\n"
"    if cur then\n"
"      local rec = cjson.decode(cur)\n"
"      for _, r in ipairs(rec.raw or {}) do r.text = '' end\n"
"      if rec.suggestion and rec.suggestion ~= '' then rec.suggestion_purged = true end\n"
"      rec.suggestion = ''\n"
"      rec.text_purged_at = ARGV[2]\n"
"      redis.call('HSET', KEYS[i], f, cjson.encode(rec))\n"
"      purged = purged + 1\n"
"    else\n"
"      gone = gone + 1\n"
"    end\n"
"    redis.call('ZREM', KEYS[1], m)\n"
"  end\n"
"end\n"
"return {purged, gone}\n";

/* OTHER (one batch of {p}:replies:other)
 * KEYS: 1 replies:other, 2 replies:purged
 * ARGV: 1 cutoff ms, 2 now, 3 batch
 * Each entry at or before the cutoff goes to replies:purged as JSON of its
 * fields without `text` and `suggestion` (plus `entry`, `text_purged_at`,
 * and `suggestion_purged` when it had one), score = its entry time, and is
 * deleted from the stream. Returns the count moved. */
static const char lua_other[] =
"local es = redis.call('XRANGE', KEYS[1], '-', ARGV[1], 'COUNT', ARGV[3])\n"
"for _, e in ipairs(es) do\n"
"  local o = {entry=e[1], text='', text_purged_at=ARGV[2]}\n"
"  local f = e[2]\n"
"  for j = 1, #f, 2 do\n"
"    local k, v = f[j], f[j + 1]\n"
"    if k == 'suggestion' then\n"
"      o.suggestion = ''\n"
"      if v ~= '' then o.suggestion_purged = true end\n"
"    elseif k ~= 'text' then o[k] = v end\n"
"  end\n"
"  local ms = string.match(e[1], '^(%d+)')\n"
"  redis.call('ZADD', KEYS[2], ms, cjson.encode(o))\n"
"  redis.call('XDEL', KEYS[1], e[1])\n"
"end\n"
"return #es\n";

/* INBOUND (one batch of {p}:inbound)
 * KEYS: 1 inbound
 * ARGV: 1 cutoff ms, 2 batch
 * Deletes entries at or before the cutoff that every consumer group has
 * read (at or before its last-delivered id) and acknowledged (before its
 * oldest pending entry); stops at the first one that is not.
 * Returns {deleted, 1 when stopped by an unread or unacknowledged entry}. */
static const char lua_inbound[] =
"local function parse(id)\n"
"  local a, b = string.match(id, '^(%d+)-(%d+)$')\n"
"  return tonumber(a or '0'), tonumber(b or '0')\n"
"end\n"
"local function before(x, y)\n"
"  local xa, xb = parse(x)\n"
"  local ya, yb = parse(y)\n"
"  return xa < ya or (xa == ya and xb < yb)\n"
"end\n"
"if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end\n"
"local limits = {}\n"
"for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do\n"
"  local h = {}\n"
"  for j = 1, #g, 2 do h[g[j]] = g[j + 1] end\n"
"  table.insert(limits, {h['last-delivered-id'], true})\n"
"  if tonumber(h['pending']) > 0 then\n"
"    local p = redis.call('XPENDING', KEYS[1], h['name'])\n"
"    table.insert(limits, {p[2], false})\n"
"  end\n"
"end\n"
"local es = redis.call('XRANGE', KEYS[1], '-', ARGV[1], 'COUNT', ARGV[2])\n"
"local n = 0\n"
"for _, e in ipairs(es) do\n"
"  for _, l in ipairs(limits) do\n"
"    local ok\n"
"    if l[2] then ok = not before(l[1], e[1]) else ok = before(e[1], l[1]) end\n"
"    if not ok then return {n, 1} end\n"
"  end\n"
"  redis.call('XDEL', KEYS[1], e[1])\n"
"  n = n + 1\n"
"end\n"
"return {n, 0}\n";

/* TOTALS  KEYS: 1 retention.  ARGV: 1 now, then name, count pairs */
static const char lua_totals[] =
"for j = 2, #ARGV, 2 do\n"
"  if ARGV[j + 1] ~= '0' then redis.call('HINCRBY', KEYS[1], ARGV[j], ARGV[j + 1]) end\n"
"end\n"
"redis.call('HSET', KEYS[1], 'last_run', ARGV[1])\n"
"return 0\n";

typedef enum { RS_BODIES, RS_REPLIES, RS_OTHER, RS_INBOUND, RS_TOTALS, RS_COUNT } rscript;

static const struct { const char *name, *src; } scripts[RS_COUNT] = {
    [RS_BODIES] = { "purge_bodies", lua_bodies },
    [RS_REPLIES] = { "purge_replies", lua_replies },
    [RS_OTHER] = { "purge_other", lua_other },
    [RS_INBOUND] = { "purge_inbound", lua_inbound },
    [RS_TOTALS] = { "purge_totals", lua_totals },
};

static char shas[RS_COUNT][41];
static pthread_once_t shas_once = PTHREAD_ONCE_INIT;

static void shas_init(void)
{
    for (int s = 0; s < RS_COUNT; s++) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (EVP_Digest(scripts[s].src, strlen(scripts[s].src), md, &len, EVP_sha1(), NULL) != 1 ||
            len != 20) {
            shas[s][0] = '\0';
            continue;
        }
        for (unsigned i = 0; i < 20; i++)
            snprintf(shas[s] + 2 * i, 3, "%02x", md[i]);
    }
}

/* Starts a script call; slots 0 and 1 are filled by r_eval. */
static void r_script(rcmd *c, int nkeys)
{
    r_init(c);
    r_cstr(c, "EVALSHA");
    r_cstr(c, "");
    r_fmt(c, "%d", nkeys);
}

/* Runs the script and checks the reply: 0 with *out, or a QUEUE_ERR_*.
 * Frees the command. */
static int r_eval(queue *q, rcmd *c, rscript s, redisReply **out)
{
    *out = NULL;
    if (c->oom) {
        r_free(c);
        queue_int_seterr(q, "%s: out of memory", scripts[s].name);
        return QUEUE_ERR_PROTO;
    }
    pthread_once(&shas_once, shas_init);
    redisReply *r = NULL;
    if (shas[s][0]) {
        c->v[0] = "EVALSHA"; c->l[0] = 7;
        c->v[1] = shas[s]; c->l[1] = 40;
        r = queue_int_command(q, c->n, c->v, c->l, scripts[s].name);
        if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8)) {
            freeReplyObject(r);
            r = NULL;
        } else {
            goto got;
        }
    }
    c->v[0] = "EVAL"; c->l[0] = 4;
    c->v[1] = scripts[s].src; c->l[1] = strlen(scripts[s].src);
    r = queue_int_command(q, c->n, c->v, c->l, scripts[s].name);
got:
    r_free(c);
    int rc = queue_int_check(q, r, scripts[s].name);
    if (!rc)
        *out = r;
    return rc;
}

static int r_run(queue *q, rcmd *c, const char *what, redisReply **out)
{
    *out = NULL;
    if (c->oom) {
        r_free(c);
        queue_int_seterr(q, "%s: out of memory", what);
        return QUEUE_ERR_PROTO;
    }
    redisReply *r = queue_int_command(q, c->n, c->v, c->l, what);
    r_free(c);
    int rc = queue_int_check(q, r, what);
    if (!rc)
        *out = r;
    return rc;
}

static long long el_int(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return 0;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return 0;
}

static int proto(queue *q, redisReply *r, const char *what)
{
    if (r)
        freeReplyObject(r);
    queue_int_seterr(q, "%s: unexpected reply from redis", what);
    return QUEUE_ERR_PROTO;
}

/* Up to `batch` members of an index scored at or before cutoff, skipping
 * the first `offset` (members left in place by earlier batches). */
static int index_page(queue *q, rkind k, long long cutoff, long long offset, int batch,
                      redisReply **out)
{
    rcmd c;
    r_init(&c);
    r_cstr(&c, "ZRANGEBYSCORE");
    rkey(&c, q, k, NULL);
    r_cstr(&c, "-inf");
    r_fmt(&c, "%lld", cutoff);
    r_cstr(&c, "LIMIT");
    r_fmt(&c, "%lld", offset);
    r_fmt(&c, "%d", batch);
    int rc = r_run(q, &c, "reading a retention index", out);
    if (rc)
        return rc;
    if ((*out)->type != REDIS_REPLY_ARRAY) {
        rc = proto(q, *out, "reading a retention index");
        *out = NULL;
    }
    return rc;
}

/* The ids of a {p}:bodies member ("id" or "id,id,..."), as the BODIES
 * script splits them (empty pieces skipped): with keys set, each one's
 * record key is added to c. Returns the count. */
static size_t member_ids(const redisReply *m, rcmd *c, const queue *q)
{
    size_t n = 0, len = m->str ? m->len : 0;
    for (size_t i = 0; i < len; ) {
        size_t j = i;
        while (j < len && m->str[j] != ',')
            j++;
        if (j > i) {
            n++;
            if (c)
                r_fmt(c, "{%s}:%s%.*s", queue_int_prefix(q), rkinds[RK_MSG], (int)(j - i), m->str + i);
        }
        i = j + 1;
    }
    return n;
}

static int purge_bodies(queue *q, const queue_purge_req *rq, int batch, queue_purge_result *res)
{
    long long offset = 0;
    for (int round = 0; ; round++) {
        if (rq->max_rounds > 0 && round >= rq->max_rounds) {
            res->more = 1;
            return 0;
        }
        redisReply *ms;
        int rc = index_page(q, RK_BODIES, rq->body_before_ms, offset, batch, &ms);
        if (rc)
            return rc;
        size_t n = ms->elements;
        /* one script call a run of members holding up to `batch` ids (a
         * member is never split: its rewrite is one step) */
        for (size_t i = 0, j; i < n; i = j) {
            size_t nids = member_ids(ms->element[i], NULL, q);
            for (j = i + 1; j < n; j++) {
                size_t more = member_ids(ms->element[j], NULL, q);
                if (nids + more > (size_t)batch)
                    break;
                nids += more;
            }
            rcmd c;
            r_script(&c, (int)nids + 1);
            rkey(&c, q, RK_BODIES, NULL);
            for (size_t m = i; m < j; m++)
                member_ids(ms->element[m], &c, q);
            r_fmt(&c, "%lld", rq->body_before_ms);
            r_fmt(&c, "%lld", rq->now_ms);
            for (size_t m = i; m < j; m++)
                r_str(&c, ms->element[m]->str ? ms->element[m]->str : "", ms->element[m]->str ? ms->element[m]->len : 0);
            redisReply *r;
            rc = r_eval(q, &c, RS_BODIES, &r);
            if (!rc && (r->type != REDIS_REPLY_ARRAY || r->elements != 4)) {
                rc = proto(q, r, "purge_bodies");
                r = NULL;
            }
            if (rc) {
                freeReplyObject(ms);
                return rc;
            }
            res->bodies += el_int(r, 0);
            res->bodies_expired += el_int(r, 1);
            res->bodies_active += el_int(r, 2);
            offset += el_int(r, 3);
            freeReplyObject(r);
        }
        freeReplyObject(ms);
        if (n < (size_t)batch)
            return 0;
    }
}

static int purge_replies(queue *q, const queue_purge_req *rq, int batch, queue_purge_result *res)
{
    for (int round = 0; ; round++) {
        if (rq->max_rounds > 0 && round >= rq->max_rounds) {
            res->more = 1;
            return 0;
        }
        redisReply *ms;
        int rc = index_page(q, RK_REPLYTEXTS, rq->reply_before_ms, 0, batch, &ms);
        if (rc)
            return rc;
        size_t n = ms->elements;
        if (n == 0) {
            freeReplyObject(ms);
            return 0;
        }
        rcmd c;
        r_script(&c, (int)n + 1);
        rkey(&c, q, RK_REPLYTEXTS, NULL);
        for (size_t i = 0; i < n; i++) {
            /* "<period>|<field>": the period never holds '|' */
            const char *m = ms->element[i]->str ? ms->element[i]->str : "";
            const char *bar = strchr(m, '|');
            r_fmt(&c, "{%s}:%s%.*s", queue_int_prefix(q), rkinds[RK_REPLIES],
                  (int)(bar ? bar - m : (long)strlen(m)), m);
        }
        r_fmt(&c, "%lld", rq->reply_before_ms);
        r_fmt(&c, "%lld", rq->now_ms);
        for (size_t i = 0; i < n; i++) {
            const char *m = ms->element[i]->str ? ms->element[i]->str : "";
            const char *bar = strchr(m, '|');
            r_cstr(&c, m);
            r_cstr(&c, bar ? bar + 1 : "");
        }
        redisReply *r;
        rc = r_eval(q, &c, RS_REPLIES, &r);
        freeReplyObject(ms);
        if (rc)
            return rc;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
            return proto(q, r, "purge_replies");
        res->survey_replies += el_int(r, 0);
        long long done = el_int(r, 0) + el_int(r, 1);
        freeReplyObject(r);
        if (n < (size_t)batch)
            return 0;
        if (done == 0)      /* a reply came in meanwhile for every one: next run */
            return 0;
    }
}

/* One stream purge (OTHER or INBOUND) until nothing is left before the cutoff. */
static int purge_stream(queue *q, const queue_purge_req *rq, int batch, rscript s,
                        long long *count, long long *blocked)
{
    for (int round = 0; ; round++) {
        if (rq->max_rounds > 0 && round >= rq->max_rounds)
            return 1;
        rcmd c;
        if (s == RS_OTHER) {
            r_script(&c, 2);
            rkey(&c, q, RK_OTHER, NULL);
            rkey(&c, q, RK_OTHER_PURGED, NULL);
            r_fmt(&c, "%lld", rq->reply_before_ms);
            r_fmt(&c, "%lld", rq->now_ms);
        } else {
            r_script(&c, 1);
            rkey(&c, q, RK_INBOUND, NULL);
            r_fmt(&c, "%lld", rq->reply_before_ms);
        }
        r_fmt(&c, "%d", batch);
        redisReply *r;
        int rc = r_eval(q, &c, s, &r);
        if (rc)
            return rc;
        long long n;
        int stop = 0;
        if (s == RS_OTHER) {
            if (r->type != REDIS_REPLY_INTEGER)
                return proto(q, r, scripts[s].name);
            n = r->integer;
        } else {
            if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
                return proto(q, r, scripts[s].name);
            n = el_int(r, 0);
            stop = el_int(r, 1) != 0;
        }
        freeReplyObject(r);
        *count += n;
        if (stop) {
            if (blocked)
                *blocked = 1;
            return 0;
        }
        if (n < batch)
            return 0;
    }
}

static int add_totals(queue *q, const queue_purge_req *rq, const queue_purge_result *res)
{
    rcmd c;
    r_script(&c, 1);
    rkey(&c, q, RK_TOTALS, NULL);
    r_fmt(&c, "%lld", rq->now_ms);
    r_cstr(&c, "bodies"); r_fmt(&c, "%lld", res->bodies);
    r_cstr(&c, "survey_replies"); r_fmt(&c, "%lld", res->survey_replies);
    r_cstr(&c, "other_replies"); r_fmt(&c, "%lld", res->other_replies);
    r_cstr(&c, "inbound"); r_fmt(&c, "%lld", res->inbound);
    redisReply *r;
    int rc = r_eval(q, &c, RS_TOTALS, &r);
    if (!rc)
        freeReplyObject(r);
    return rc;
}

int queue_retention_purge(queue *q, const queue_purge_req *rq, queue_purge_result *res)
{
    queue_int_clearerr(q);
    memset(res, 0, sizeof *res);
    int batch = rq->batch > 0 ? rq->batch : DEFAULT_BATCH;
    if (batch > MAX_BATCH)
        batch = MAX_BATCH;
    int rc = 0;
    if (rq->body_before_ms > 0)
        rc = purge_bodies(q, rq, batch, res);
    if (!rc && rq->reply_before_ms > 0) {
        rc = purge_replies(q, rq, batch, res);
        if (!rc) {
            rc = purge_stream(q, rq, batch, RS_OTHER, &res->other_replies, NULL);
            if (rc == 1) {
                res->more = 1;
                rc = 0;
            }
        }
        if (!rc) {
            long long blocked = 0;
            rc = purge_stream(q, rq, batch, RS_INBOUND, &res->inbound, &blocked);
            if (rc == 1) {
                res->more = 1;
                rc = 0;
            }
            if (blocked)
                res->inbound_unread = 1;
        }
    }
    /* what was done is counted even when a later step failed */
    if (res->bodies || res->survey_replies || res->other_replies || res->inbound || !rc) {
        int trc = add_totals(q, rq, res);
        if (!rc)
            rc = trc;
    }
    return rc;
}

int queue_retention_totals(queue *q, json_t **out)
{
    queue_int_clearerr(q);
    *out = NULL;
    rcmd c;
    r_init(&c);
    r_cstr(&c, "HGETALL");
    rkey(&c, q, RK_TOTALS, NULL);
    redisReply *r;
    int rc = r_run(q, &c, "reading the retention totals", &r);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY)
        return proto(q, r, "reading the retention totals");
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
            json_object_set_new(o, k->str, json_integer(strtoll(v->str, NULL, 10)));
    }
    freeReplyObject(r);
    *out = o;
    return 0;
}
