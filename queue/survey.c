/* survey.c -- the survey store on Redis (see survey.h).
 *
 * Same rules as queue.c: every key is "{prefix}:..." and spelled only by
 * sv_key() below; each change that must be atomic is one Lua script that
 * gets every key it touches in KEYS[]; replies are freed here, once.
 * Scripts are called with EVALSHA (the SHA-1 of the source, computed once)
 * and re-sent with EVAL when Redis answers NOSCRIPT. */
#include "queue/survey.h"
#include "queue/internal.h"
#include "queue/scripts.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#define SV_ARGS 48
#define SV_CHUNK 256
#define OTHER_MAXLEN "1000000"

/* ---- commands -------------------------------------------------------------- */

typedef struct sv_cmd {
    int n;
    const char *v[SV_ARGS];
    size_t l[SV_ARGS];
    char *own[SV_ARGS];
    int nown;
} sv_cmd;

static void c_init(sv_cmd *c) { c->n = c->nown = 0; }

static void c_free(sv_cmd *c)
{
    for (int i = 0; i < c->nown; i++)
        free(c->own[i]);
    c->n = c->nown = 0;
}

static void c_str(sv_cmd *c, const char *s)
{
    if (c->n >= SV_ARGS)
        return;
    c->v[c->n] = s ? s : "";
    c->l[c->n++] = strlen(s ? s : "");
}

static void c_fmt(sv_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void c_fmt(sv_cmd *c, const char *fmt, ...)
{
    if (c->n >= SV_ARGS)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int len = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    c->own[c->nown++] = s;
    c->v[c->n] = s;
    c->l[c->n++] = (size_t)len;
}

static void c_ll(sv_cmd *c, long long v) { c_fmt(c, "%lld", v); }

/* ---- keys: the one place that spells the survey keys ------------------------ */

typedef enum {
    SK_CONTACTS, SK_CONTACTS_DATE, SK_OPTOUT, SK_RUN, SK_ITEMS, SK_REPLIES,
    SK_TO, SK_LAST, SK_SENT, SK_SENTDAY, SK_OTHER, SK_INBOUND, SK_MSG, SK_STATS,
    SK_LANE_URGENT, SK_LANE_BULK, SK_DEAD, SK_REPLYTEXTS, SK_OTHER_PURGED
} sv_kind;

/* The last six belong to queue.c's layout (queue.h); they are repeated
 * here for the scripts that must name them, and must stay in step. */
static const char *const sv_kinds[] = {
    [SK_CONTACTS] = "contacts",
    [SK_CONTACTS_DATE] = "contacts:date",
    [SK_OPTOUT] = "optout",
    [SK_RUN] = "survey:run:",
    [SK_ITEMS] = "survey:items:",
    [SK_REPLIES] = "survey:replies:",
    [SK_TO] = "survey:to:",
    [SK_LAST] = "survey:last",
    [SK_SENT] = "sent:",            /* before the day hashes: read until it expires */
    [SK_SENTDAY] = "sentday:",      /* written by queue.c's FINISH */
    [SK_OTHER] = "replies:other",
    [SK_INBOUND] = "inbound",
    [SK_MSG] = "msg:",
    [SK_STATS] = "stats",
    [SK_LANE_URGENT] = "lane:urgent",
    [SK_LANE_BULK] = "lane:bulk",
    [SK_DEAD] = "dead",
    [SK_REPLYTEXTS] = "replytexts",   /* also spelled in queue/retention.c */
    [SK_OTHER_PURGED] = "replies:purged",   /* written by queue/retention.c */
};

static void sv_key(sv_cmd *c, const queue *q, sv_kind k, const char *suffix)
{
    c_fmt(c, "{%s}:%s%s", queue_int_prefix(q), sv_kinds[k], suffix ? suffix : "");
}

/* ---- scripts --------------------------------------------------------------- */

/* CONTACT_PUT  KEYS: 1 contacts, 2 contacts:date
 * ARGV: 1 member, 2 JSON, 3 date YYYYMMDD.  Returns 1 new, 0 replaced. */
static const char lua_contact_put[] =
"local new = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
"redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])\n"
"return new\n";

/* CLAIM  KEYS: 1 run.  ARGV: 1 owner, 2 now, 3 stale ms.
 * Returns 0 ours, 1 busy (another builder), 2 done. */
static const char lua_claim[] =
"local st = redis.call('HGET', KEYS[1], 'state')\n"
"if st == 'done' then return 2 end\n"
"if st == 'building' then\n"
"  local owner = redis.call('HGET', KEYS[1], 'owner')\n"
"  local at = tonumber(redis.call('HGET', KEYS[1], 'claimed') or '0')\n"
"  if owner ~= ARGV[1] and at + tonumber(ARGV[3]) > tonumber(ARGV[2]) then return 1 end\n"
"  redis.call('HINCRBY', KEYS[1], 'takeovers', owner ~= ARGV[1] and 1 or 0)\n"
"end\n"
"redis.call('HSET', KEYS[1], 'state', 'building', 'owner', ARGV[1], 'claimed', ARGV[2])\n"
"return 0\n";

/* DONE  KEYS: 1 run.  ARGV: 1 owner, 2 summary JSON, 3 now.
 * Returns 0, or 1 when the claim is not ours (any more). */
static const char lua_done[] =
"if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] or\n"
"   redis.call('HGET', KEYS[1], 'state') ~= 'building' then return 1 end\n"
"redis.call('HSET', KEYS[1], 'state', 'done', 'summary', ARGV[2], 'done', ARGV[3])\n"
"return 0\n";

/* ITEM  KEYS: 1 items, 2 survey:to:<phone>, 3 survey:last
 * ARGV: 1 field, 2 JSON, 3 send_at, 4 "<period>|<field>", 5 phone, 6 period */
static const char lua_item[] =
"redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
"redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])\n"
"redis.call('HSET', KEYS[3], ARGV[5], ARGV[6] .. '|' .. ARGV[3])\n"
"return 0\n";

/* SKIP (a bulk message to a number that opted out)
 * KEYS: 1 record, 2 lane, 3 stats
 * ARGV: 1 entry, 2 now, 3 family, 4 detail.  Returns 0, or 1 when the
 * record is not `sending` through this entry (then nothing changes). */
static const char lua_skip[] = LUA_ATTEMPT_LINE
"local r = redis.call('HMGET', KEYS[1], 'status', 'entry', 'tl', 'updated', 'attempts', 'owner')\n"
"if r[1] ~= 'sending' or r[2] ~= ARGV[1] then return 1 end\n"
"local line = attempt(r[3], r[4], r[5], r[6]) .. '\\n' .. ARGV[2] .. '\\tskipped\\t' .. ARGV[4]\n"
"redis.call('HSET', KEYS[1], 'status', 'skipped', 'error', ARGV[4], 'entry', '',\n"
"  'owner', '', 'lease_until', '0', 'updated', ARGV[2], 'tl', line)\n"
"redis.call('XACK', KEYS[2], 'herald', ARGV[1])\n"
"redis.call('XDEL', KEYS[2], ARGV[1])\n"
"redis.call('HINCRBY', KEYS[3], 'skipped:' .. ARGV[3] .. ':-', 1)\n"
"return 0\n";

/* REPLY  KEYS: 1 inbound, 2 target (replies:<period> hash, or the
 * replies:other stream), 3 optout, 4 replytexts (survey answers by the time
 * of their last reply, for the retention purge: queue/retention.c)
 * ARGV: 1 entry, 2 group, 3 mode 'survey'|'other', 4 field, 5 verdict
 *       JSON, 6 from, 7 text, 8 at, 9 route, 10 optout '1'|'-1'|'0',
 *       11 kind, 12 msg id, 13 family, 14 now, 15 other maxlen, 16 period
 * Returns {first (1/0), 'ok'|'seen'}. Times are kept as strings: cjson
 * prints numbers with 14 digits. */
static const char lua_reply[] =
"local v = cjson.decode(ARGV[5])\n"
"local first = 0\n"
"if ARGV[3] == 'survey' then\n"
"  local raw = {text=ARGV[7], at=ARGV[8], route=ARGV[9], entry=ARGV[1], status=v.status}\n"
"  local cur = redis.call('HGET', KEYS[2], ARGV[4])\n"
"  local rec\n"
"  if cur then\n"
"    rec = cjson.decode(cur)\n"
"    for _, r in ipairs(rec.raw) do\n"
"      if r.entry == ARGV[1] then\n"
"        redis.call('XACK', KEYS[1], ARGV[2], ARGV[1])\n"
"        return {0, 'seen'}\n"
"      end\n"
"    end\n"
"    table.insert(rec.raw, raw)\n"
"    if v.status == 'parsed' or v.status == 'partial' or v.status == 'optout' then\n"
"      rec.status = v.status\n"
"      rec.ratings = v.ratings\n"
"      if v.suggestion ~= '' then rec.suggestion = v.suggestion end\n"
"    elseif v.status == 'unparsed' and v.suggestion ~= '' then\n"
"      if rec.suggestion ~= '' then rec.suggestion = rec.suggestion .. ' / ' .. v.suggestion\n"
"      else rec.suggestion = v.suggestion end\n"
"    end\n"
"    rec.at = ARGV[8]\n"
"  else\n"
"    first = 1\n"
"    rec = {status=v.status, ratings=v.ratings, suggestion=v.suggestion, phone=ARGV[6],\n"
"           first_at=ARGV[8], at=ARGV[8], raw={raw}}\n"
"  end\n"
"  redis.call('HSET', KEYS[2], ARGV[4], cjson.encode(rec))\n"
"  redis.call('ZADD', KEYS[4], ARGV[8], ARGV[16] .. '|' .. ARGV[4])\n"
"else\n"
"  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[15], '*', 'kind', ARGV[11], 'from', ARGV[6],\n"
"    'text', ARGV[7], 'at', ARGV[8], 'route', ARGV[9], 'msg', ARGV[12], 'family', ARGV[13],\n"
"    'status', v.status, 'suggestion', v.suggestion)\n"
"end\n"
"if ARGV[10] == '1' then redis.call('HSET', KEYS[3], ARGV[6], ARGV[14])\n"
"elseif ARGV[10] == '-1' then redis.call('HDEL', KEYS[3], ARGV[6]) end\n"
"redis.call('XACK', KEYS[1], ARGV[2], ARGV[1])\n"
"return {first, 'ok'}\n";

/* BURY (an inbound entry that cannot be recorded)
 * KEYS: 1 inbound, 2 dead.  ARGV: 1 entry, 2 group, 3 reason, 4 now */
static const char lua_bury[] =
"redis.call('XADD', KEYS[2], '*', 'id', ARGV[1], 'reason', ARGV[3], 'lane', 'inbound',\n"
"  'family', '', 'at', ARGV[4])\n"
"redis.call('XACK', KEYS[1], ARGV[2], ARGV[1])\n"
"return 0\n";

/* SENT_LATEST (the latest note of what was sent to a number, at or before
 * a time)
 * KEYS: 1 the number's sorted set of earlier versions ({p}:sent:<phone>,
 *       "family|id" by ms), then the day hashes ({p}:sentday:<UTC day>,
 *       field phone -> "ms|family|id" joined by ' ', oldest first), newest
 *       day first
 * ARGV: 1 phone, 2 at (ms)
 * Returns "family|id" or nil. A day's notes are all older than a later
 * day's, so the first day with one at or before `at` holds the latest. */
static const char lua_sent_latest[] =
"local at, best, bms = tonumber(ARGV[2]), nil, -1\n"
"for i = 2, #KEYS do\n"
"  local v = redis.call('HGET', KEYS[i], ARGV[1])\n"
"  if v then\n"
"    for ms, what in string.gmatch(v, '(%d+)|(%S+)') do\n"
"      local t = tonumber(ms)\n"
"      if t <= at and t > bms then best, bms = what, t end\n"
"    end\n"
"    if best then break end\n"
"  end\n"
"end\n"
"local old = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[2], '-inf', 'WITHSCORES', 'LIMIT', 0, 1)\n"
"if old[1] and tonumber(old[2]) > bms then best = old[1] end\n"
"return best or false\n";

typedef enum { S_CONTACT, S_CLAIM, S_DONE, S_ITEM, S_SKIP, S_REPLY, S_BURY, S_SENT_LATEST,
               S_COUNT } sv_script;

static const struct { const char *name, *src; } scripts[S_COUNT] = {
    [S_CONTACT] = { "contact_put", lua_contact_put },
    [S_CLAIM] = { "survey_claim", lua_claim },
    [S_DONE] = { "survey_done", lua_done },
    [S_ITEM] = { "survey_item", lua_item },
    [S_SKIP] = { "skip_optout", lua_skip },
    [S_REPLY] = { "reply_record", lua_reply },
    [S_BURY] = { "inbound_bury", lua_bury },
    [S_SENT_LATEST] = { "sent_latest", lua_sent_latest },
};

static char shas[S_COUNT][41];
static pthread_once_t shas_once = PTHREAD_ONCE_INIT;

/* SHA-1 of each source: what Redis calls the script by. */
static void shas_init(void)
{
    for (int s = 0; s < S_COUNT; s++) {
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

/* Starts a script call: slots 0 and 1 are filled by sv_eval. */
static void c_script(sv_cmd *c, int nkeys)
{
    c_init(c);
    c_str(c, "EVALSHA");
    c_str(c, "");
    c_ll(c, nkeys);
}

static int is_noscript(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8);
}

static redisReply *sv_eval(queue *q, sv_cmd *c, sv_script s)
{
    pthread_once(&shas_once, shas_init);
    if (shas[s][0]) {
        c->v[0] = "EVALSHA"; c->l[0] = 7;
        c->v[1] = shas[s]; c->l[1] = 40;
        redisReply *r = queue_int_command(q, c->n, c->v, c->l, scripts[s].name);
        if (!is_noscript(r))
            return r;
        freeReplyObject(r);
    }
    c->v[0] = "EVAL"; c->l[0] = 4;
    c->v[1] = scripts[s].src; c->l[1] = strlen(scripts[s].src);
    return queue_int_command(q, c->n, c->v, c->l, scripts[s].name);
}

static redisReply *sv_run(queue *q, sv_cmd *c, const char *what)
{
    return queue_int_command(q, c->n, c->v, c->l, what);
}

/* Runs a plain command or a script and checks the reply; *out gets it. */
static int done_cmd(queue *q, sv_cmd *c, redisReply *r, const char *what, redisReply **out)
{
    c_free(c);
    int rc = queue_int_check(q, r, what);
    *out = rc ? NULL : r;
    return rc;
}

static long long r_int(const redisReply *r)
{
    if (!r)
        return 0;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

static const char *r_str(const redisReply *r)
{
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) ? r->str : NULL;
}

static int proto(queue *q, redisReply *r, const char *what)
{
    if (r)
        freeReplyObject(r);
    queue_int_seterr(q, "%s: unexpected reply from redis", what);
    return QUEUE_ERR_PROTO;
}

/* ---- contacts ---------------------------------------------------------------- */

int queue_contact_put(queue *q, const queue_contact *ct, long long now_ms)
{
    queue_int_clearerr(q);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I}", "phone", ct->phone,
                          "role", ct->role ? ct->role : "other", "case_no", ct->case_no ? ct->case_no : "",
                          "department", ct->department ? ct->department : "",
                          "prosecutor", ct->prosecutor ? ct->prosecutor : "", "date", ct->date,
                          "added", (json_int_t)now_ms);
    char *js = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!js) {
        queue_int_seterr(q, "out of memory");
        return QUEUE_ERR_PROTO;
    }
    sv_cmd c;
    c_script(&c, 2);
    sv_key(&c, q, SK_CONTACTS, NULL);
    sv_key(&c, q, SK_CONTACTS_DATE, NULL);
    c_fmt(&c, "%s|%s", ct->phone, ct->case_no ? ct->case_no : "");
    c_str(&c, js);
    c_fmt(&c, "%d", ct->date);
    redisReply *r;
    int rc = done_cmd(q, &c, sv_eval(q, &c, S_CONTACT), "storing a contact", &r);
    free(js);
    if (rc)
        return rc;
    rc = r_int(r) ? 1 : 0;
    freeReplyObject(r);
    return rc;
}

/* HMGET of `members` from hash `k` in chunks, parsing each value as JSON
 * into arr (values that are missing or not JSON are skipped). */
static int hmget_json(queue *q, sv_kind k, const char *suffix, redisReply *members,
                      json_t *arr, const char *what)
{
    for (size_t base = 0; base < members->elements; base += SV_CHUNK) {
        size_t m = members->elements - base < SV_CHUNK ? members->elements - base : SV_CHUNK;
        const char **argv = calloc(m + 2, sizeof *argv);
        size_t *lens = calloc(m + 2, sizeof *lens);
        char key[256];
        snprintf(key, sizeof key, "{%s}:%s%s", queue_int_prefix(q), sv_kinds[k], suffix ? suffix : "");
        if (!argv || !lens) {
            free(argv); free(lens);
            queue_int_seterr(q, "out of memory");
            return QUEUE_ERR_PROTO;
        }
        argv[0] = "HMGET"; lens[0] = 5;
        argv[1] = key; lens[1] = strlen(key);
        for (size_t i = 0; i < m; i++) {
            const redisReply *e = members->element[base + i];
            argv[i + 2] = e->str ? e->str : "";
            lens[i + 2] = e->str ? e->len : 0;
        }
        redisReply *r = queue_int_command(q, (int)m + 2, argv, lens, what);
        free(argv);
        free(lens);
        int rc = queue_int_check(q, r, what);
        if (rc)
            return rc;
        for (size_t i = 0; i < r->elements; i++) {
            const char *s = r_str(r->element[i]);
            json_t *v = s ? json_loads(s, 0, NULL) : NULL;
            if (v)
                json_array_append_new(arr, v);
        }
        freeReplyObject(r);
    }
    return 0;
}

int queue_contacts_between(queue *q, int from, int to, json_t **out)
{
    queue_int_clearerr(q);
    *out = NULL;
    sv_cmd c;
    c_init(&c);
    c_str(&c, "ZRANGEBYSCORE");
    sv_key(&c, q, SK_CONTACTS_DATE, NULL);
    c_fmt(&c, "%d", from);
    c_fmt(&c, "%d", to);
    redisReply *r;
    int rc = done_cmd(q, &c, sv_run(q, &c, "listing contacts"), "listing contacts", &r);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY)
        return proto(q, r, "listing contacts");
    json_t *arr = json_array();
    rc = hmget_json(q, SK_CONTACTS, NULL, r, arr, "reading contacts");
    freeReplyObject(r);
    if (rc) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* ---- opt-out ------------------------------------------------------------------ */

int queue_optout_set(queue *q, const char *phone, int on, long long now_ms)
{
    queue_int_clearerr(q);
    sv_cmd c;
    c_init(&c);
    c_str(&c, on ? "HSET" : "HDEL");
    sv_key(&c, q, SK_OPTOUT, NULL);
    c_str(&c, phone);
    if (on)
        c_ll(&c, now_ms);
    redisReply *r;
    int rc = done_cmd(q, &c, sv_run(q, &c, "opt-out list"), "opt-out list", &r);
    if (!rc)
        freeReplyObject(r);
    return rc;
}

int queue_optout_has(queue *q, const char *phone)
{
    queue_int_clearerr(q);
    sv_cmd c;
    c_init(&c);
    c_str(&c, "HEXISTS");
    sv_key(&c, q, SK_OPTOUT, NULL);
    c_str(&c, phone);
    redisReply *r;
    int rc = done_cmd(q, &c, sv_run(q, &c, "opt-out check"), "opt-out check", &r);
    if (rc)
        return rc;
    rc = r_int(r) ? 1 : 0;
    freeReplyObject(r);
    return rc;
}

/* HGETALL of one hash into a JSON object; values parsed as JSON when
 * `json_values`, else kept as integers (ms). */
static int hgetall(queue *q, sv_kind k, const char *suffix, int json_values, json_t **out,
                   const char *what)
{
    *out = NULL;
    sv_cmd c;
    c_init(&c);
    c_str(&c, "HGETALL");
    sv_key(&c, q, k, suffix);
    redisReply *r;
    int rc = done_cmd(q, &c, sv_run(q, &c, what), what, &r);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY)
        return proto(q, r, what);
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *f = r_str(r->element[i]), *v = r_str(r->element[i + 1]);
        if (!f || !v)
            continue;
        json_t *jv = json_values ? json_loads(v, 0, NULL) : json_integer(strtoll(v, NULL, 10));
        if (jv)
            json_object_set_new(o, f, jv);
    }
    freeReplyObject(r);
    *out = o;
    return 0;
}

int queue_optout_list(queue *q, json_t **out)
{
    queue_int_clearerr(q);
    return hgetall(q, SK_OPTOUT, NULL, 0, out, "listing opt-outs");
}

int queue_skip_optout(queue *q, const queue_entry *e, const char *msg_id,
                      const char *family, long long now_ms)
{
    queue_int_clearerr(q);
    sv_cmd c;
    c_script(&c, 3);
    sv_key(&c, q, SK_MSG, msg_id);
    sv_key(&c, q, e->lane == LANE_BULK ? SK_LANE_BULK : SK_LANE_URGENT, NULL);
    sv_key(&c, q, SK_STATS, NULL);
    c_str(&c, e->entry_id);
    c_ll(&c, now_ms);
    c_str(&c, family);
    c_str(&c, "the number opted out (TD): bulk messages are not sent to it");
    redisReply *r;
    int rc = done_cmd(q, &c, sv_eval(q, &c, S_SKIP), "skipping an opted-out number", &r);
    if (rc)
        return rc;
    rc = r_int(r) ? QUEUE_ERR_STATE : 0;
    freeReplyObject(r);
    return rc;
}

/* ---- monthly runs ---------------------------------------------------------------- */

int queue_survey_claim(queue *q, const char *period, const char *owner, long long now_ms,
                       long long stale_ms)
{
    queue_int_clearerr(q);
    sv_cmd c;
    c_script(&c, 1);
    sv_key(&c, q, SK_RUN, period);
    c_str(&c, owner);
    c_ll(&c, now_ms);
    c_ll(&c, stale_ms);
    redisReply *r;
    int rc = done_cmd(q, &c, sv_eval(q, &c, S_CLAIM), "claiming the survey run", &r);
    if (rc)
        return rc;
    rc = (int)r_int(r);
    freeReplyObject(r);
    return rc;
}

int queue_survey_done(queue *q, const char *period, const char *owner,
                      const char *summary_json, long long now_ms)
{
    queue_int_clearerr(q);
    sv_cmd c;
    c_script(&c, 1);
    sv_key(&c, q, SK_RUN, period);
    c_str(&c, owner);
    c_str(&c, summary_json);
    c_ll(&c, now_ms);
    redisReply *r;
    int rc = done_cmd(q, &c, sv_eval(q, &c, S_DONE), "closing the survey run", &r);
    if (rc)
        return rc;
    rc = r_int(r) ? QUEUE_ERR_STATE : 0;
    if (rc)
        queue_int_seterr(q, "the run of %s is no longer claimed by %s", period, owner);
    freeReplyObject(r);
    return rc;
}

int queue_survey_run_get(queue *q, const char *period, json_t **out)
{
    queue_int_clearerr(q);
    *out = NULL;
    sv_cmd c;
    c_init(&c);
    c_str(&c, "HGETALL");
    sv_key(&c, q, SK_RUN, period);
    redisReply *r;
    int rc = done_cmd(q, &c, sv_run(q, &c, "reading the survey run"), "reading the survey run", &r);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY)
        return proto(q, r, "reading the survey run");
    if (r->elements == 0) {
        freeReplyObject(r);
        return QUEUE_ERR_NOTFOUND;
    }
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const char *f = r_str(r->element[i]), *v = r_str(r->element[i + 1]);
        if (!f || !v)
            continue;
        if (strcmp(f, "summary") == 0) {
            json_t *s = json_loads(v, 0, NULL);
            if (s)
                json_object_set_new(o, f, s);
        } else if (strcmp(f, "claimed") == 0 || strcmp(f, "done") == 0 || strcmp(f, "takeovers") == 0) {
            json_object_set_new(o, f, json_integer(strtoll(v, NULL, 10)));
        } else {
            json_object_set_new(o, f, json_string(v));
        }
    }
    freeReplyObject(r);
    *out = o;
    return 0;
}

/* Runs n script calls (all of script s) in one pipeline, EVALSHA after
 * making sure Redis has the script. Returns 0 or the first error. */
static int eval_pipeline(queue *q, sv_script s, sv_cmd *cs, size_t n, const char *what)
{
    pthread_once(&shas_once, shas_init);
    /* SCRIPT LOAD is idempotent and cheap: the pipeline can use EVALSHA */
    const char *la[] = { "SCRIPT", "LOAD", scripts[s].src };
    size_t ll[] = { 6, 4, strlen(scripts[s].src) };
    redisReply *r = queue_int_command(q, 3, la, ll, what);
    int rc = queue_int_check(q, r, what);
    if (rc)
        return rc;
    freeReplyObject(r);
    int *argcs = calloc(n, sizeof *argcs);
    const char *const **argvs = calloc(n, sizeof *argvs);
    const size_t **lens = calloc(n, sizeof *lens);
    redisReply **out = calloc(n, sizeof *out);
    if (!argcs || !argvs || !lens || !out) {
        queue_int_seterr(q, "out of memory");
        rc = QUEUE_ERR_PROTO;
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        cs[i].v[0] = "EVALSHA"; cs[i].l[0] = 7;
        cs[i].v[1] = shas[s]; cs[i].l[1] = 40;
        argcs[i] = cs[i].n;
        argvs[i] = cs[i].v;
        lens[i] = cs[i].l;
    }
    rc = queue_int_pipeline(q, n, argcs, argvs, lens, out, what);
    for (size_t i = 0; i < n; i++) {
        if (!rc && out[i] && out[i]->type == REDIS_REPLY_ERROR) {
            rc = queue_int_check(q, out[i], what);
            out[i] = NULL;
        }
        if (out[i])
            freeReplyObject(out[i]);
    }
done:
    free(argcs); free(argvs); free(lens); free(out);
    return rc;
}

int queue_survey_items_put(queue *q, const char *period, const queue_survey_item *it, size_t n)
{
    queue_int_clearerr(q);
    sv_cmd *cs = calloc(SV_CHUNK, sizeof *cs);
    if (!cs) {
        queue_int_seterr(q, "out of memory");
        return QUEUE_ERR_PROTO;
    }
    int rc = 0;
    for (size_t base = 0; base < n && !rc; base += SV_CHUNK) {
        size_t m = n - base < SV_CHUNK ? n - base : SV_CHUNK;
        for (size_t i = 0; i < m; i++) {
            const queue_survey_item *x = &it[base + i];
            c_script(&cs[i], 3);
            sv_key(&cs[i], q, SK_ITEMS, period);
            sv_key(&cs[i], q, SK_TO, x->phone);
            sv_key(&cs[i], q, SK_LAST, NULL);
            c_str(&cs[i], x->field);
            c_str(&cs[i], x->json);
            c_ll(&cs[i], x->send_at_ms);
            c_fmt(&cs[i], "%s|%s", period, x->field);
            c_str(&cs[i], x->phone);
            c_str(&cs[i], period);
        }
        rc = eval_pipeline(q, S_ITEM, cs, m, "storing survey items");
        for (size_t i = 0; i < m; i++)
            c_free(&cs[i]);
    }
    free(cs);
    return rc;
}

int queue_survey_items_get(queue *q, const char *period, json_t **out)
{
    queue_int_clearerr(q);
    return hgetall(q, SK_ITEMS, period, 1, out, "reading survey items");
}

int queue_survey_last(queue *q, const char *const *phones, size_t n, char **out)
{
    queue_int_clearerr(q);
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    char key[256];
    snprintf(key, sizeof key, "{%s}:%s", queue_int_prefix(q), sv_kinds[SK_LAST]);
    for (size_t base = 0; base < n; base += SV_CHUNK) {
        size_t m = n - base < SV_CHUNK ? n - base : SV_CHUNK;
        const char *argv[SV_CHUNK + 2];
        size_t lens[SV_CHUNK + 2];
        argv[0] = "HMGET"; lens[0] = 5;
        argv[1] = key; lens[1] = strlen(key);
        for (size_t i = 0; i < m; i++) {
            argv[i + 2] = phones[base + i];
            lens[i + 2] = strlen(phones[base + i]);
        }
        redisReply *r = queue_int_command(q, (int)m + 2, argv, lens, "last surveys");
        int rc = queue_int_check(q, r, "last surveys");
        if (rc)
            return rc;
        for (size_t i = 0; i < m && i < r->elements; i++) {
            const char *s = r_str(r->element[i]);
            out[base + i] = s ? strdup(s) : NULL;
        }
        freeReplyObject(r);
    }
    return 0;
}

/* ---- sent messages and correlation ------------------------------------------------ */

/* The highest-scored member of zset k:suffix within [lo, hi]. */
static int zlatest(queue *q, sv_kind k, const char *suffix, long long lo, long long hi,
                   char *buf, size_t len, const char *what)
{
    queue_int_clearerr(q);
    sv_cmd c;
    c_init(&c);
    c_str(&c, "ZREVRANGEBYSCORE");
    sv_key(&c, q, k, suffix);
    c_ll(&c, hi);
    if (lo < 0)
        c_str(&c, "-inf");
    else
        c_ll(&c, lo);
    c_str(&c, "LIMIT"); c_str(&c, "0"); c_str(&c, "1");
    redisReply *r;
    int rc = done_cmd(q, &c, sv_run(q, &c, what), what, &r);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY)
        return proto(q, r, what);
    if (r->elements == 0 || !r_str(r->element[0])) {
        freeReplyObject(r);
        return QUEUE_ERR_NOTFOUND;
    }
    snprintf(buf, len, "%s", r->element[0]->str);
    freeReplyObject(r);
    return 0;
}

int queue_survey_match(queue *q, const char *phone, long long at_ms, long long window_ms,
                       char *buf, size_t len)
{
    return zlatest(q, SK_TO, phone, at_ms - window_ms, at_ms, buf, len, "matching a survey");
}

int queue_sent_latest(queue *q, const char *phone, long long at_ms, char *buf, size_t len)
{
    static const char what[] = "matching a sent message";
    queue_int_clearerr(q);
    long long first = at_ms / 86400000, last = (at_ms - QUEUE_SENT_NOTE_MS) / 86400000;
    sv_cmd c;
    c_script(&c, (int)(first - last + 2));
    sv_key(&c, q, SK_SENT, phone);
    for (long long d = first; d >= last; d--) {
        char day[16];
        queue_utc_day(d * 86400000, day);
        sv_key(&c, q, SK_SENTDAY, day);
    }
    c_str(&c, phone);
    c_ll(&c, at_ms);
    redisReply *r;
    int rc = done_cmd(q, &c, sv_eval(q, &c, S_SENT_LATEST), what, &r);
    if (rc)
        return rc;
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return QUEUE_ERR_NOTFOUND;
    }
    if (r->type != REDIS_REPLY_STRING)
        return proto(q, r, what);
    snprintf(buf, len, "%s", r->str);
    freeReplyObject(r);
    return 0;
}

/* ---- the reply consumer ------------------------------------------------------------ */

static int ensure_group(queue *q)
{
    sv_cmd c;
    c_init(&c);
    c_str(&c, "XGROUP"); c_str(&c, "CREATE");
    sv_key(&c, q, SK_INBOUND, NULL);
    c_str(&c, QUEUE_SURVEY_GROUP); c_str(&c, "0"); c_str(&c, "MKSTREAM");
    redisReply *r = sv_run(q, &c, "XGROUP CREATE");
    c_free(&c);
    if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "BUSYGROUP", 9)) {
        freeReplyObject(r);
        return 0;
    }
    int rc = queue_int_check(q, r, "creating the reply consumer group");
    if (!rc)
        freeReplyObject(r);
    return rc;
}

void queue_inbound_msg_clear(queue_inbound_msg *m)
{
    free(m->route);
    free(m->from);
    free(m->text);
    memset(m, 0, sizeof *m);
}

static char *field_dup(const redisReply *fields, const char *name)
{
    for (size_t i = 0; fields && i + 1 < fields->elements; i += 2) {
        const char *f = r_str(fields->element[i]);
        if (f && strcmp(f, name) == 0) {
            const redisReply *v = fields->element[i + 1];
            if (v->type == REDIS_REPLY_STRING) {
                char *s = malloc(v->len + 1);
                if (s) {
                    memcpy(s, v->str, v->len);
                    s[v->len] = '\0';
                }
                return s;
            }
        }
    }
    return strdup("");
}

int queue_inbound_read(queue *q, const char *consumer, int pending, int max, int block_ms,
                       queue_inbound_msg *out, int *n)
{
    queue_int_clearerr(q);
    *n = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        sv_cmd c;
        c_init(&c);
        c_str(&c, "XREADGROUP"); c_str(&c, "GROUP"); c_str(&c, QUEUE_SURVEY_GROUP);
        c_str(&c, consumer);
        c_str(&c, "COUNT"); c_fmt(&c, "%d", max);
        if (!pending && block_ms > 0) {
            c_str(&c, "BLOCK");
            c_fmt(&c, "%d", block_ms);
        }
        c_str(&c, "STREAMS");
        sv_key(&c, q, SK_INBOUND, NULL);
        c_str(&c, pending ? "0" : ">");
        redisReply *r = sv_run(q, &c, "reading inbound");
        c_free(&c);
        if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOGROUP", 7) && attempt == 0) {
            freeReplyObject(r);
            int rc = ensure_group(q);
            if (rc)
                return rc;
            continue;
        }
        int rc = queue_int_check(q, r, "reading inbound");
        if (rc)
            return rc;
        if (r->type == REDIS_REPLY_NIL) {
            freeReplyObject(r);
            return 0;
        }
        if (r->type != REDIS_REPLY_ARRAY)
            return proto(q, r, "reading inbound");
        /* [[stream, [[id, [f, v, ...]], ...]]] (RESP2) */
        for (size_t s = 0; s < r->elements; s++) {
            const redisReply *st = r->element[s];
            const redisReply *entries = st->type == REDIS_REPLY_ARRAY && st->elements == 2 ? st->element[1] : NULL;
            for (size_t e = 0; entries && e < entries->elements && *n < max; e++) {
                const redisReply *en = entries->element[e];
                if (en->type != REDIS_REPLY_ARRAY || en->elements < 1 || !r_str(en->element[0]))
                    continue;
                queue_inbound_msg *m = &out[*n];
                memset(m, 0, sizeof *m);
                snprintf(m->entry, sizeof m->entry, "%s", en->element[0]->str);
                const redisReply *f = en->elements > 1 && en->element[1]->type == REDIS_REPLY_ARRAY ? en->element[1] : NULL;
                m->route = field_dup(f, "route");
                m->from = field_dup(f, "from");
                m->text = field_dup(f, "text");
                char *at = field_dup(f, "at");
                m->at_ms = at ? strtoll(at, NULL, 10) : 0;
                free(at);
                (*n)++;
            }
        }
        freeReplyObject(r);
        return 0;
    }
    return 0;
}

int queue_inbound_ack(queue *q, const char *entry)
{
    queue_int_clearerr(q);
    sv_cmd c;
    c_init(&c);
    c_str(&c, "XACK");
    sv_key(&c, q, SK_INBOUND, NULL);
    c_str(&c, QUEUE_SURVEY_GROUP);
    c_str(&c, entry);
    redisReply *r;
    int rc = done_cmd(q, &c, sv_run(q, &c, "XACK inbound"), "XACK inbound", &r);
    if (!rc)
        freeReplyObject(r);
    return rc;
}

int queue_inbound_bury(queue *q, const char *entry, const char *reason, long long now_ms)
{
    queue_int_clearerr(q);
    sv_cmd c;
    c_script(&c, 2);
    sv_key(&c, q, SK_INBOUND, NULL);
    sv_key(&c, q, SK_DEAD, NULL);
    c_str(&c, entry);
    c_str(&c, QUEUE_SURVEY_GROUP);
    c_str(&c, reason);
    c_ll(&c, now_ms);
    redisReply *r;
    int rc = done_cmd(q, &c, sv_eval(q, &c, S_BURY), "dead-lettering an inbound entry", &r);
    if (!rc)
        freeReplyObject(r);
    return rc;
}

int queue_reply_record(queue *q, const queue_reply_rec *x, int *first)
{
    queue_int_clearerr(q);
    if (first)
        *first = 0;
    int survey = x->period && x->field;
    sv_cmd c;
    c_script(&c, 4);
    sv_key(&c, q, SK_INBOUND, NULL);
    if (survey)
        sv_key(&c, q, SK_REPLIES, x->period);
    else
        sv_key(&c, q, SK_OTHER, NULL);
    sv_key(&c, q, SK_OPTOUT, NULL);
    sv_key(&c, q, SK_REPLYTEXTS, NULL);
    c_str(&c, x->entry);
    c_str(&c, QUEUE_SURVEY_GROUP);
    c_str(&c, survey ? "survey" : "other");
    c_str(&c, survey ? x->field : "");
    c_str(&c, x->verdict_json);
    c_str(&c, x->from);
    c_str(&c, x->text);
    c_ll(&c, x->at_ms);
    c_str(&c, x->route);
    c_str(&c, x->optout > 0 ? "1" : x->optout < 0 ? "-1" : "0");
    c_str(&c, x->kind ? x->kind : "");
    c_str(&c, x->msg_id ? x->msg_id : "");
    c_str(&c, x->family ? x->family : "");
    c_ll(&c, x->now_ms);
    c_str(&c, OTHER_MAXLEN);
    c_str(&c, survey ? x->period : "");
    redisReply *r;
    int rc = done_cmd(q, &c, sv_eval(q, &c, S_REPLY), "recording a reply", &r);
    if (rc)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        return proto(q, r, "recording a reply");
    if (first)
        *first = r_int(r->element[0]) == 1;
    freeReplyObject(r);
    return 0;
}

int queue_survey_replies_get(queue *q, const char *period, json_t **out)
{
    queue_int_clearerr(q);
    return hgetall(q, SK_REPLIES, period, 1, out, "reading survey replies");
}

/* Replies outside surveys whose text the retention purge removed
 * (queue/retention.c moved them from the stream into {p}:replies:purged,
 * scored by their entry time): appended to arr, oldest first. */
static int replies_purged(queue *q, long long from_ms, long long to_ms, json_t *arr)
{
    for (long long off = 0; off < 100000000; off += 500) {
        sv_cmd c;
        c_init(&c);
        c_str(&c, "ZRANGEBYSCORE");
        sv_key(&c, q, SK_OTHER_PURGED, NULL);
        c_ll(&c, from_ms);
        c_fmt(&c, "(%lld", to_ms);
        c_str(&c, "LIMIT"); c_ll(&c, off); c_str(&c, "500");
        redisReply *r;
        int rc = done_cmd(q, &c, sv_run(q, &c, "reading purged replies"), "reading purged replies", &r);
        if (rc)
            return rc;
        if (r->type != REDIS_REPLY_ARRAY)
            return proto(q, r, "reading purged replies");
        size_t got = r->elements;
        for (size_t e = 0; e < r->elements; e++) {
            const char *s = r_str(r->element[e]);
            json_t *o = s ? json_loads(s, 0, NULL) : NULL;
            if (!json_is_object(o)) {
                json_decref(o);
                continue;
            }
            const char *at = json_string_value(json_object_get(o, "at"));
            if (at)
                json_object_set_new(o, "at", json_integer(strtoll(at, NULL, 10)));
            const char *pa = json_string_value(json_object_get(o, "text_purged_at"));
            if (pa)
                json_object_set_new(o, "text_purged_at", json_integer(strtoll(pa, NULL, 10)));
            json_array_append_new(arr, o);
        }
        freeReplyObject(r);
        if (got < 500)
            break;
    }
    return 0;
}

int queue_replies_other(queue *q, long long from_ms, long long to_ms, json_t **out)
{
    queue_int_clearerr(q);
    *out = NULL;
    json_t *arr = json_array();
    int prc = replies_purged(q, from_ms, to_ms, arr);
    if (prc) {
        json_decref(arr);
        return prc;
    }
    char start[48];
    snprintf(start, sizeof start, "%lld", from_ms);
    /* pages of 500 through the stream, by entry time */
    for (int page = 0; page < 10000; page++) {
        sv_cmd c;
        c_init(&c);
        c_str(&c, "XRANGE");
        sv_key(&c, q, SK_OTHER, NULL);
        c_str(&c, start);
        c_fmt(&c, "%lld", to_ms - 1);
        c_str(&c, "COUNT"); c_str(&c, "500");
        redisReply *r;
        int rc = done_cmd(q, &c, sv_run(q, &c, "reading other replies"), "reading other replies", &r);
        if (rc) {
            json_decref(arr);
            return rc;
        }
        if (r->type != REDIS_REPLY_ARRAY) {
            json_decref(arr);
            return proto(q, r, "reading other replies");
        }
        size_t got = r->elements;
        for (size_t e = 0; e < r->elements; e++) {
            const redisReply *en = r->element[e];
            if (en->type != REDIS_REPLY_ARRAY || en->elements < 2)
                continue;
            json_t *o = json_object();
            const redisReply *f = en->element[1];
            for (size_t i = 0; i + 1 < f->elements; i += 2) {
                const char *k = r_str(f->element[i]), *v = r_str(f->element[i + 1]);
                if (!k || !v)
                    continue;
                if (strcmp(k, "at") == 0)
                    json_object_set_new(o, k, json_integer(strtoll(v, NULL, 10)));
                else
                    json_object_set_new(o, k, json_string(v));
            }
            json_array_append_new(arr, o);
            if (e + 1 == r->elements && r_str(en->element[0]))
                snprintf(start, sizeof start, "(%s", en->element[0]->str);
        }
        freeReplyObject(r);
        if (got < 500)
            break;
    }
    *out = arr;
    return 0;
}
