/* scripts.c -- the Lua scripts of the queue, as C strings.
 *
 * Conventions shared by all scripts:
 *   - every key comes in KEYS[]; numbers come as decimal strings in ARGV
 *     and are stored as given (never formatted by Lua, which would print
 *     1.7e+12);
 *   - the timeline field `tl` holds lines "ms\tstatus\tdetail" joined by
 *     "\n"; details are cleaned of tabs and newlines;
 *   - a finished stream entry is XACKed and XDELed, so a lane's XLEN is
 *     what waits plus what is in flight;
 *   - state problems are returned as values ({code, text}), never raised:
 *     an error reply always means Redis itself refused (OOM, WRONGTYPE...).
 * See docs/redis-keys.md for the key layout. */
#include "queue/scripts.h"

/* Helpers prepended to every script. */
#define LUA_PRELUDE \
"local function clean(s) return (string.gsub(s or '', '[\\t\\r\\n]', ' ')) end\n" \
"local function tline(cur, now, status, detail)\n" \
"  local line = now .. '\\t' .. status .. '\\t' .. clean(detail)\n" \
"  if cur and cur ~= '' then line = cur .. '\\n' .. line end\n" \
"  return line\n" \
"end\n" \
"local function tl(rec, now, status, detail)\n" \
"  redis.call('HSET', rec, 'tl', tline(redis.call('HGET', rec, 'tl'), now, status, detail),\n" \
"             'updated', now)\n" \
"end\n" \
"local function count_day(key, field, ttl)\n" \
"  if redis.call('HINCRBY', key, field, 1) == 1 then redis.call('PEXPIRE', key, ttl) end\n" \
"end\n" \
"local function drop(lane, entry)\n" \
"  redis.call('XACK', lane, 'herald', entry)\n" \
"  redis.call('XDEL', lane, entry)\n" \
"end\n" \
"local function bury(dead, id, reason, lane, family, now)\n" \
"  return redis.call('XADD', dead, '*', 'id', id, 'reason', clean(reason),\n" \
"                    'lane', lane or '', 'family', family or '', 'at', now)\n" \
"end\n" \
"local terminal = {sent=true, delivered=true, failed=true, dead=true, uncertain=true}\n"

/* ENQUEUE
 * KEYS: 1 record, 2 idem, 3 lane, 4 sched, 5 case index, 6 day counters,
 *       7 bodies (ids by creation, for the retention purge of the text:
 *       queue/retention.c)
 * ARGV: 1 id, 2 family, 3 template, 4 to, 5 text, 6 encoding, 7 parts,
 *       8 lane name, 9 vars, 10 provider code, 11 idem key, 12 now,
 *       13 send_at, 14 retention ms, 15 idem window ms, 16 send_at as text,
 *       17 case number ('' = none), 18 now - retention, 19 day counters ttl ms
 * Returns {0, id} or {1, first id} for a duplicate. */
static const char lua_enqueue[] = LUA_PRELUDE
"local prev = redis.call('GET', KEYS[2])\n"
"if prev then return {1, prev} end\n"
"if redis.call('EXISTS', KEYS[1]) == 1 then\n"
"  return redis.error_reply('ERR message id collision: ' .. ARGV[1])\n"
"end\n"
"local e, line = '', nil\n"
"if tonumber(ARGV[13]) > tonumber(ARGV[12]) then\n"
"  redis.call('ZADD', KEYS[4], ARGV[13], ARGV[1])\n"
"  line = tline(nil, ARGV[12], 'scheduled', 'for ' .. ARGV[16])\n"
"else\n"
"  e = redis.call('XADD', KEYS[3], '*', 'id', ARGV[1])\n"
"  line = tline(nil, ARGV[12], 'queued', 'lane ' .. ARGV[8])\n"
"end\n"
"redis.call('HSET', KEYS[1], 'id', ARGV[1], 'family', ARGV[2], 'template', ARGV[3],\n"
"  'to', ARGV[4], 'text', ARGV[5], 'encoding', ARGV[6], 'parts', ARGV[7],\n"
"  'lane', ARGV[8], 'vars', ARGV[9], 'code', ARGV[10], 'key', ARGV[11],\n"
"  'status', 'queued', 'attempts', '0', 'route', '', 'refs', '', 'error', '',\n"
"  'created', ARGV[12], 'updated', ARGV[12], 'send_at', ARGV[13], 'entry', e,\n"
"  'owner', '', 'lease_until', '0', 'tl', line)\n"
"redis.call('PEXPIRE', KEYS[1], ARGV[14])\n"
"redis.call('ZADD', KEYS[7], ARGV[12], ARGV[1])\n"
"redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[15])\n"
"-- console: the case number's index (ids past retention leave it) and\n"
"-- the local day's count of messages queued per family\n"
"if ARGV[17] ~= '' then\n"
"  redis.call('ZADD', KEYS[5], ARGV[12], ARGV[1])\n"
"  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. ARGV[18])\n"
"  redis.call('PEXPIRE', KEYS[5], ARGV[14])\n"
"end\n"
"count_day(KEYS[6], ARGV[2] .. ':queued', ARGV[19])\n"
"return {0, ARGV[1]}\n";

/* BEGIN (begin_send)
 * KEYS: 1 record, 2 lane, 3 dead, 4 opt-out hash
 * ARGV: 1 entry id, 2 consumer, 3 now, 4 lease_until, 5 msg id ('' when
 *       the entry is malformed), 6 lane name
 * Returns {0, family, template, to, text, encoding, vars, code, parts,
 * lane, attempts, opted out (1/0, bulk lane only)}, {1, why} (skip) or
 * {2, why} (dead letter). The opt-out answer rides on this call so the
 * worker spends no round trip of its own on it. */
static const char lua_begin[] = LUA_PRELUDE
"local function to_dead(why, family)\n"
"  local d = bury(KEYS[3], ARGV[5], why, ARGV[6], family, ARGV[3])\n"
"  drop(KEYS[2], ARGV[1])\n"
"  return d\n"
"end\n"
"if ARGV[5] == '' then\n"
"  local why = 'malformed stream entry: no valid id field'\n"
"  to_dead(why, '')\n"
"  return {2, why}\n"
"end\n"
"local r = redis.call('HMGET', KEYS[1], 'status', 'entry', 'family', 'template',\n"
"  'to', 'text', 'encoding', 'vars', 'code', 'parts', 'lane', 'owner', 'attempts', 'tl')\n"
"local st = r[1]\n"
"if not st then\n"
"  local why = 'message record missing (expired or never written)'\n"
"  to_dead(why, '')\n"
"  return {2, why}\n"
"end\n"
"if r[2] ~= ARGV[1] then drop(KEYS[2], ARGV[1]); return {1, 'stale entry'} end\n"
"if st == 'sending' then return {1, 'being sent by ' .. (r[12] or '?')} end\n"
"if terminal[st] then drop(KEYS[2], ARGV[1]); return {1, 'already ' .. st} end\n"
"if st ~= 'queued' or not r[5] or r[5] == '' or not r[6] then\n"
"  local why = 'record lacks to or text'\n"
"  if st ~= 'queued' then why = 'record has unknown status ' .. st end\n"
"  local d = to_dead(why, r[3])\n"
"  redis.call('HSET', KEYS[1], 'status', 'dead', 'error', why, 'dead_entry', d, 'entry', '')\n"
"  tl(KEYS[1], ARGV[3], 'dead', why)\n"
"  return {2, why}\n"
"end\n"
"local n = (tonumber(r[13]) or 0) + 1\n"
"redis.call('HSET', KEYS[1], 'status', 'sending', 'owner', ARGV[2], 'lease_until', ARGV[4],\n"
"  'attempts', tostring(n), 'updated', ARGV[3],\n"
"  'tl', tline(r[14], ARGV[3], 'sending', 'attempt ' .. n .. ' by ' .. ARGV[2]))\n"
"local oo = 0\n"
"if r[11] == 'bulk' and KEYS[4] then oo = redis.call('HEXISTS', KEYS[4], r[5]) end\n"
"return {0, r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], n, oo}\n";

/* FINISH
 * KEYS: 1 record, 2 lane, 3 sched, 4 dead, 5 stats, 6 uncertain, 7 day counters,
 *       [8 the recipient's sent note (zset "family|id" by time)]
 * ARGV: 1 entry id, 2 kind (sent|retry|dead|uncertain|wait), 3 route, 4 refs, 5 detail,
 *       6 retry_at, 7 now, 8 msg id, 9 retry_at as text, 10 day counters ttl ms,
 *       [11 how long the sent note keeps an entry, ms]
 * With key 8, a `sent` outcome also notes what went to whom (the replies
 * link a later answer to it) in the same call.
 * Returns {0}, {-3, why} (no record) or {-4, why} (not ours to finish).
 * allow-oom: the outcome of a message that left already must be recorded
 * even at maxmemory (the script also frees the entry), or it is resent. */
static const char lua_finish[] = "#!lua flags=allow-oom\n" LUA_PRELUDE
"local r = redis.call('HMGET', KEYS[1], 'status', 'entry', 'family', 'lane', 'attempts', 'tl')\n"
"if not r[1] then return {-3, 'no such message'} end\n"
"if r[1] ~= 'sending' or r[2] ~= ARGV[1] then\n"
"  local why = 'message is ' .. r[1]\n"
"  if r[2] ~= ARGV[1] then why = why .. ' and the entry is stale' end\n"
"  return {-4, why}\n"
"end\n"
"drop(KEYS[2], ARGV[1])\n"
"local fam = r[3] or ''\n"
"local route = ARGV[3]\n"
"local ctr = fam .. ':' .. (route == '' and '-' or route)\n"
"-- one HSET of the record: these fields, the outcome's and the timeline\n"
"local f = {'entry', '', 'owner', '', 'lease_until', '0', 'route', route, 'updated', ARGV[7]}\n"
"local function set(status, detail, ...)\n"
"  for _, v in ipairs({...}) do f[#f + 1] = v end\n"
"  f[#f + 1] = 'tl'\n"
"  f[#f + 1] = tline(r[6], ARGV[7], status, detail)\n"
"  redis.call('HSET', KEYS[1], unpack(f))\n"
"end\n"
"if ARGV[2] == 'sent' then\n"
"  set('sent', 'via ' .. route .. ': ' .. ARGV[4], 'status', 'sent', 'refs', ARGV[4], 'error', '')\n"
"  redis.call('HINCRBY', KEYS[5], 'sent:' .. ctr, 1)\n"
"  if KEYS[8] then\n"
"    redis.call('ZADD', KEYS[8], ARGV[7], fam .. '|' .. ARGV[8])\n"
"    redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', '(' .. (tonumber(ARGV[7]) - tonumber(ARGV[11])))\n"
"    redis.call('PEXPIRE', KEYS[8], ARGV[11])\n"
"  end\n"
"elseif ARGV[2] == 'retry' then\n"
"  set('retry', 'at ' .. ARGV[9] .. ': ' .. ARGV[5], 'status', 'queued', 'error', ARGV[5])\n"
"  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[8])\n"
"  redis.call('HINCRBY', KEYS[5], 'retry:' .. ctr, 1)\n"
"elseif ARGV[2] == 'wait' then\n"
"  -- pacing, a cap or quiet hours: nothing was sent, the attempt is given back\n"
"  local n = (tonumber(r[5]) or 1) - 1\n"
"  set('waiting', 'until ' .. ARGV[9] .. ': ' .. ARGV[5], 'status', 'queued', 'waiting', ARGV[5],\n"
"      'attempts', tostring(n < 0 and 0 or n))\n"
"  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[8])\n"
"  redis.call('HINCRBY', KEYS[5], 'wait:' .. ctr, 1)\n"
"elseif ARGV[2] == 'uncertain' then\n"
"  set('uncertain', 'perhaps sent via ' .. route .. ', held: ' .. ARGV[5], 'status', 'uncertain',\n"
"      'error', ARGV[5])\n"
"  redis.call('ZADD', KEYS[6], ARGV[7], ARGV[8])\n"
"  redis.call('HINCRBY', KEYS[5], 'uncertain:' .. ctr, 1)\n"
"else\n"
"  local d = bury(KEYS[4], ARGV[8], ARGV[5], r[4], fam, ARGV[7])\n"
"  set('dead', ARGV[5], 'status', 'dead', 'error', ARGV[5], 'dead_entry', d)\n"
"  redis.call('HINCRBY', KEYS[5], 'dead:' .. ctr, 1)\n"
"end\n"
"-- console: the local day's counters per family\n"
"local ev = ({sent='sent', retry='retry', wait='wait', uncertain='uncertain'})[ARGV[2]] or 'dead'\n"
"count_day(KEYS[7], fam .. ':' .. ev, ARGV[10])\n"
"return {0}\n";

/* RELEASE (an entry read but not begun goes to the end of its lane)
 * KEYS: 1 record, 2 lane, 3 dead
 * ARGV: 1 entry id, 2 msg id, 3 now, 4 lane name
 * Returns a QSR_* code. */
static const char lua_release[] = LUA_PRELUDE
"if ARGV[2] == '' then\n"
"  bury(KEYS[3], '', 'malformed stream entry: no valid id field', ARGV[4], '', ARGV[3])\n"
"  drop(KEYS[2], ARGV[1])\n"
"  return 3\n"
"end\n"
"local r = redis.call('HMGET', KEYS[1], 'status', 'entry')\n"
"if not r[1] then\n"
"  bury(KEYS[3], ARGV[2], 'message record missing (expired or never written)', ARGV[4], '', ARGV[3])\n"
"  drop(KEYS[2], ARGV[1])\n"
"  return 3\n"
"end\n"
"if r[2] ~= ARGV[1] then drop(KEYS[2], ARGV[1]); return 4 end\n"
"if r[1] == 'queued' then\n"
"  drop(KEYS[2], ARGV[1])\n"
"  local e = redis.call('XADD', KEYS[2], '*', 'id', ARGV[2])\n"
"  redis.call('HSET', KEYS[1], 'entry', e)\n"
"  tl(KEYS[1], ARGV[3], 'requeued', 'released unsent by its worker')\n"
"  return 1\n"
"end\n"
"if r[1] == 'sending' then return 0 end\n"
"drop(KEYS[2], ARGV[1])\n"
"return 4\n";

/* PROMOTE (one scheduled id; the ZREM decides who promotes it)
 * KEYS: 1 sched, 2 record, 3 urgent lane, 4 bulk lane
 * ARGV: 1 msg id, 2 now
 * Returns 1 when this call promoted it, else 0. */
static const char lua_promote[] = LUA_PRELUDE
"if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end\n"
"local r = redis.call('HMGET', KEYS[2], 'status', 'lane')\n"
"if r[1] ~= 'queued' then return 0 end\n"
"local lane = KEYS[3]\n"
"if r[2] == 'bulk' then lane = KEYS[4] end\n"
"local e = redis.call('XADD', lane, '*', 'id', ARGV[1])\n"
"redis.call('HSET', KEYS[2], 'entry', e)\n"
"tl(KEYS[2], ARGV[2], 'promoted', 'to lane ' .. (r[2] or 'urgent'))\n"
"return 1\n";

/* RECLAIM (one pending entry of a lane)
 * KEYS: 1 lane, 2 record, 3 uncertain, 4 dead
 * ARGV: 1 entry id, 2 msg id ('' if malformed), 3 now, 4 policy
 *       (resend|hold), 5 min idle ms, 6 lane name
 * Returns a QSR_* code. A message being sent under a valid lease is left
 * alone before anything is claimed. */
static const char lua_reclaim[] = LUA_PRELUDE
"local r = {false, false, false, false}\n"
"if ARGV[2] ~= '' then\n"
"  r = redis.call('HMGET', KEYS[2], 'status', 'entry', 'lease_until', 'family')\n"
"end\n"
"local st = r[1]\n"
"if st == 'sending' and r[2] == ARGV[1] and tonumber(r[3] or '0') > tonumber(ARGV[3]) then\n"
"  return 0\n"
"end\n"
"local c = redis.call('XCLAIM', KEYS[1], 'herald', 'reclaimer', ARGV[5], ARGV[1], 'JUSTID')\n"
"if #c == 0 then return 0 end\n"
"if not st then\n"
"  local why = 'message record missing (expired or never written)'\n"
"  if ARGV[2] == '' then why = 'malformed stream entry: no valid id field' end\n"
"  bury(KEYS[4], ARGV[2], why, ARGV[6], '', ARGV[3])\n"
"  drop(KEYS[1], ARGV[1])\n"
"  return 3\n"
"end\n"
"if r[2] ~= ARGV[1] then drop(KEYS[1], ARGV[1]); return 4 end\n"
"if st == 'queued' or (st == 'sending' and ARGV[4] == 'resend') then\n"
"  drop(KEYS[1], ARGV[1])\n"
"  local e = redis.call('XADD', KEYS[1], '*', 'id', ARGV[2])\n"
"  redis.call('HSET', KEYS[2], 'status', 'queued', 'entry', e, 'owner', '', 'lease_until', '0')\n"
"  if st == 'queued' then\n"
"    tl(KEYS[2], ARGV[3], 'requeued', 'put back after its reader stopped')\n"
"  else\n"
"    tl(KEYS[2], ARGV[3], 'queued', 'reclaimed after a crash: perhaps sent, resending')\n"
"  end\n"
"  return 1\n"
"end\n"
"if st == 'sending' then\n"
"  drop(KEYS[1], ARGV[1])\n"
"  redis.call('HSET', KEYS[2], 'status', 'uncertain', 'entry', '', 'owner', '', 'lease_until', '0')\n"
"  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])\n"
"  tl(KEYS[2], ARGV[3], 'uncertain', 'reclaimed after a crash: perhaps sent, held for an operator')\n"
"  return 2\n"
"end\n"
"drop(KEYS[1], ARGV[1])\n"
"return 4\n";

/* LEASE: KEYS 1 gw key; ARGV 1 token, 2 ttl ms, 3 token of a holder known
 * to be dead (or empty). 0 taken/refreshed, 1 held by another. */
static const char lua_lease[] =
"local v = redis.call('GET', KEYS[1])\n"
"if v and v ~= ARGV[1] and v ~= ARGV[3] then return 1 end\n"
"redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
"return 0\n";

/* UNLEASE: KEYS 1 gw key; ARGV 1 token. 0 released (or absent), 1 held by another. */
static const char lua_unlease[] =
"local v = redis.call('GET', KEYS[1])\n"
"if not v then return 0 end\n"
"if v ~= ARGV[1] then return 1 end\n"
"redis.call('DEL', KEYS[1])\n"
"return 0\n";

/* DEAD_RETRY (operator requeues a dead or uncertain message)
 * KEYS: 1 record, 2 dead, 3 urgent lane, 4 bulk lane, 5 uncertain
 * ARGV: 1 msg id, 2 now
 * Returns {0}, {-3, why} or {-4, why}. */
static const char lua_dead_retry[] = LUA_PRELUDE
"local r = redis.call('HMGET', KEYS[1], 'status', 'lane', 'dead_entry', 'body_purged_at')\n"
"if not r[1] then return {-3, 'no such message'} end\n"
"if r[4] then return {-4, 'its text was purged (retention)'} end\n"
"if r[1] ~= 'dead' and r[1] ~= 'uncertain' then\n"
"  return {-4, 'message is ' .. r[1] .. ', not dead or uncertain'}\n"
"end\n"
"if r[3] and r[3] ~= '' then redis.call('XDEL', KEYS[2], r[3]) end\n"
"redis.call('ZREM', KEYS[5], ARGV[1])\n"
"local lane = KEYS[3]\n"
"if r[2] == 'bulk' then lane = KEYS[4] end\n"
"local e = redis.call('XADD', lane, '*', 'id', ARGV[1])\n"
"redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', '0', 'error', '',\n"
"  'dead_entry', '', 'entry', e, 'owner', '', 'lease_until', '0')\n"
"tl(KEYS[1], ARGV[2], 'queued', 'retried by operator (was ' .. r[1] .. ')')\n"
"return {0}\n";

/* PACE (rate limit per route, caps per recipient and per route and day)
 * KEYS: 1 route bucket, 2 recipient's sends (zset id -> ms), 3 route's count
 *       of the local day, 4 the message's reservation
 * ARGV: 1 now, 2 interval ms (0 = no rate limit), 3 burst tolerance ms,
 *       4 recipient hourly cap, 5 recipient daily cap, 6 route daily cap
 *       (0 = none for each), 7 ms until the next local midnight, 8 route,
 *       9 msg id, 10 reserve ('1': a send that must wait reserves its slot;
 *       '0': it only learns when it could go, and nothing changes)
 * The bucket is GCRA: it holds the theoretical arrival time (TAT) of the
 * next send, shared by every gateway. A send that cannot go now reserves
 * the first free slot (the TAT moves on) and the message waits in the
 * schedule until then; coming back, it finds its reservation and goes
 * without taking a second slot. A throttled route's TAT is pushed to the
 * end of its back-off (PACE_BACKOFF), so every gateway leaves it alone.
 * Returns {slot, reason}: slot <= now means send now (counted against the
 * caps); otherwise wait until slot. */
static const char lua_pace[] = LUA_PRELUDE
"local now = tonumber(ARGV[1])\n"
"local res = redis.call('GET', KEYS[4])\n"
"if res then\n"
"  local sp = string.find(res, ' ', 1, true)\n"
"  if sp and string.sub(res, 1, sp - 1) == ARGV[8] then\n"
"    local at = tonumber(string.sub(res, sp + 1))\n"
"    if at > now then return {at, 'rate limit of route ' .. ARGV[8]} end\n"
"    redis.call('DEL', KEYS[4])\n"
"    return {now, ''}\n"
"  end\n"
"end\n"
"local hcap, dcap, rcap = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])\n"
"if hcap > 0 or dcap > 0 then\n"
"  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 86400000)\n"
"  local function over(cap, window, what)\n"
"    if cap <= 0 then return nil end\n"
"    local inwin = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. (now - window), '+inf', 'WITHSCORES')\n"
"    local n = #inwin / 2\n"
"    if redis.call('ZSCORE', KEYS[2], ARGV[9]) then return nil end\n"
"    if n < cap then return nil end\n"
"    -- the (n - cap + 1)th oldest send must leave the window first\n"
"    return tonumber(inwin[2 * (n - cap + 1)]) + window, what\n"
"  end\n"
"  local w, why = over(hcap, 3600000, 'recipient hourly cap')\n"
"  if w then return {w, why} end\n"
"  w, why = over(dcap, 86400000, 'recipient daily cap')\n"
"  if w then return {w, why} end\n"
"end\n"
"if rcap > 0 then\n"
"  local c = tonumber(redis.call('GET', KEYS[3]) or '0')\n"
"  if c >= rcap then return {now + tonumber(ARGV[7]), 'daily cap of route ' .. ARGV[8]} end\n"
"end\n"
"local interval, tol = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
"local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
"local slot = now\n"
"if interval > 0 then\n"
"  if tat < now then tat = now end\n"
"  if tat - tol > now then slot = tat - tol end\n"
"  if slot > now and ARGV[10] ~= '1' then return {slot, 'rate limit of route ' .. ARGV[8]} end\n"
"  local nt = tat + interval\n"
"  redis.call('SET', KEYS[1], string.format('%d', nt), 'PX', math.floor(nt - now + interval + 1000))\n"
"elseif tat > now then\n"
"  slot = tat\n"
"  if ARGV[10] ~= '1' then return {slot, 'route ' .. ARGV[8] .. ' is resting (throttled)'} end\n"
"end\n"
"if hcap > 0 or dcap > 0 then\n"
"  redis.call('ZADD', KEYS[2], string.format('%d', slot), ARGV[9])\n"
"  redis.call('PEXPIRE', KEYS[2], math.floor(slot - now + 86400000 + 1000))\n"
"end\n"
"if rcap > 0 then\n"
"  redis.call('INCR', KEYS[3])\n"
"  redis.call('PEXPIRE', KEYS[3], 2 * 86400000)\n"
"end\n"
"if slot > now then\n"
"  redis.call('SET', KEYS[4], ARGV[8] .. ' ' .. string.format('%d', slot), 'PX', math.floor(slot - now + 86400000))\n"
"  return {slot, 'rate limit of route ' .. ARGV[8]}\n"
"end\n"
"return {now, ''}\n";

/* PACE_BACKOFF (a provider said "slow down")
 * KEYS: 1 route bucket   ARGV: 1 until (ms), 2 now
 * Moves the route's TAT to `until` unless it is later already. */
static const char lua_pace_backoff[] =
"local tat = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
"local u = tonumber(ARGV[1])\n"
"if u > tat then\n"
"  redis.call('SET', KEYS[1], ARGV[1], 'PX', math.floor(u - tonumber(ARGV[2]) + 60000))\n"
"end\n"
"return 0\n";

/* DLR_INDEX (one key per part: route, recipient and reference -> part)
 * KEYS: the index keys, one per part, in part order
 * ARGV: 1 msg id, 2 window ms, 3 now
 * Each key holds "<id> <part>"; a later send with the same route,
 * recipient and reference replaces it (references wrap at 256).
 * Returns {0}. */
static const char lua_dlr_index[] =
"for i, k in ipairs(KEYS) do\n"
"  redis.call('SET', k, ARGV[1] .. ' ' .. i, 'PX', ARGV[2])\n"
"end\n"
"return {0}\n";

/* DLR_REPORT (a status report matched to one part of a message)
 * KEYS: 1 record, 2 stats, 3 uncertain, 4 day counters
 * ARGV: 1 part (1-based), 2 outcome D|F|P, 3 detail, 4 now, 5 route, 6 msg id,
 *       7 day counters ttl ms
 * The record's field `dlr` holds one character per part: '.' no report
 * yet, 'P' pending, 'D' delivered, 'F' failed. All parts D -> `delivered`;
 * any F -> `failed`. A report for a part already final changes nothing.
 * Returns {0, status after} or {-3, why}. */
static const char lua_dlr_report[] = "#!lua flags=allow-oom\n" LUA_PRELUDE
"local r = redis.call('HMGET', KEYS[1], 'status', 'parts', 'family', 'dlr')\n"
"if not r[1] then return {-3, 'no such message'} end\n"
"local n = tonumber(r[2]) or 1\n"
"if n < 1 then n = 1 end\n"
"local p = tonumber(ARGV[1]) or 0\n"
"if p < 1 or p > n then return {-3, 'no part ' .. ARGV[1]} end\n"
"local d = r[4]\n"
"if not d or #d ~= n then d = string.rep('.', n) end\n"
"local cur = string.sub(d, p, p)\n"
"if cur == 'D' or cur == 'F' then return {0, r[1]} end\n"
"d = string.sub(d, 1, p - 1) .. ARGV[2] .. string.sub(d, p + 1)\n"
"redis.call('HSET', KEYS[1], 'dlr', d)\n"
"local word = ({D='delivered', F='failed', P='pending'})[ARGV[2]] or ARGV[2]\n"
"tl(KEYS[1], ARGV[4], 'report', 'part ' .. p .. '/' .. n .. ' ' .. word .. ' (' .. ARGV[3] .. ')')\n"
"local st = r[1]\n"
"local ctr = (r[3] or '') .. ':' .. ARGV[5]\n"
"if st == 'sent' or st == 'uncertain' or st == 'delivered' then\n"
"  local new = nil\n"
"  if ARGV[2] == 'F' then new = 'failed'\n"
"  elseif not string.find(d, '[^D]') then new = 'delivered' end\n"
"  if new and new ~= st then\n"
"    redis.call('HSET', KEYS[1], 'status', new)\n"
"    if st == 'uncertain' then redis.call('ZREM', KEYS[3], ARGV[6]) end\n"
"    tl(KEYS[1], ARGV[4], new, 'status report' .. (n > 1 and 's for all parts' or ''))\n"
"    redis.call('HINCRBY', KEYS[2], new .. ':' .. ctr, 1)\n"
"    redis.call('HINCRBY', KEYS[4], (r[3] or '') .. ':' .. new, 1)\n"
"    redis.call('PEXPIRE', KEYS[4], ARGV[7])\n"
"    st = new\n"
"  end\n"
"end\n"
"return {0, st}\n";

/* INBOUND_PART (one part of an inbound SMS; a whole SMS is part 1 of 1)
 * KEYS: 1 seen key of this part, 2 parts hash, 3 due zset, 4 inbound stream
 * ARGV: 1 window ms, 2 maxlen, 3 route, 4 from, 5 text, 6 at, 7 part,
 *       8 parts, 9 deadline ms, 10 due member
 * A part seen within the window (another copy) changes nothing. The parts
 * hash holds p<i> = text and route, from, at, n; when all n are there the
 * message goes onto the stream and the hash is deleted.
 * Returns {1, ''} for a copy, {0, 'waiting'} or {0, 'stored'}. */
static const char lua_inbound_part[] =
"if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return {1, ''} end\n"
"local n = tonumber(ARGV[8]) or 1\n"
"if n <= 1 then\n"
"  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', 'route', ARGV[3],\n"
"    'from', ARGV[4], 'text', ARGV[5], 'at', ARGV[6], 'partial', '0')\n"
"  return {0, 'stored'}\n"
"end\n"
"redis.call('HSETNX', KEYS[2], 'p' .. ARGV[7], ARGV[5])\n"
"redis.call('HSETNX', KEYS[2], 'route', ARGV[3])\n"
"redis.call('HSETNX', KEYS[2], 'from', ARGV[4])\n"
"redis.call('HSETNX', KEYS[2], 'at', ARGV[6])\n"
"redis.call('HSETNX', KEYS[2], 'n', ARGV[8])\n"
"redis.call('PEXPIRE', KEYS[2], ARGV[1])\n"
"redis.call('ZADD', KEYS[3], 'NX', ARGV[9], ARGV[10])\n"
"local t = {}\n"
"for i = 1, n do\n"
"  local v = redis.call('HGET', KEYS[2], 'p' .. i)\n"
"  if not v then return {0, 'waiting'} end\n"
"  t[i] = v\n"
"end\n"
"local h = redis.call('HMGET', KEYS[2], 'route', 'from', 'at')\n"
"redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', 'route', h[1], 'from', h[2],\n"
"  'text', table.concat(t), 'at', h[3], 'partial', '0')\n"
"redis.call('DEL', KEYS[2])\n"
"redis.call('ZREM', KEYS[3], ARGV[10])\n"
"return {0, 'stored'}\n";

/* INBOUND_FLUSH (a multipart SMS whose parts did not all come in time)
 * KEYS: 1 parts hash, 2 due zset, 3 inbound stream
 * ARGV: 1 due member, 2 maxlen
 * Stores what arrived, in part order, flagged partial. Returns 1, or 0 when
 * there was nothing (already stored or expired). */
static const char lua_inbound_flush[] =
"redis.call('ZREM', KEYS[2], ARGV[1])\n"
"local h = redis.call('HMGET', KEYS[1], 'route', 'from', 'at', 'n')\n"
"if not h[4] then return 0 end\n"
"local t = {}\n"
"for i = 1, tonumber(h[4]) do\n"
"  local v = redis.call('HGET', KEYS[1], 'p' .. i)\n"
"  if v then t[#t + 1] = v end\n"
"end\n"
"redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'route', h[1], 'from', h[2],\n"
"  'text', table.concat(t), 'at', h[3], 'partial', '1')\n"
"redis.call('DEL', KEYS[1])\n"
"return 1\n";

const queue_script queue_scripts[QSCRIPT_COUNT] = {
    [QSCRIPT_ENQUEUE]    = { .name = "enqueue",    .src = lua_enqueue },
    [QSCRIPT_BEGIN]      = { .name = "begin_send", .src = lua_begin },
    [QSCRIPT_FINISH]     = { .name = "finish",     .src = lua_finish },
    [QSCRIPT_RELEASE]    = { .name = "release",    .src = lua_release },
    [QSCRIPT_PROMOTE]    = { .name = "promote",    .src = lua_promote },
    [QSCRIPT_RECLAIM]    = { .name = "reclaim",    .src = lua_reclaim },
    [QSCRIPT_LEASE]      = { .name = "lease",      .src = lua_lease },
    [QSCRIPT_UNLEASE]    = { .name = "unlease",    .src = lua_unlease },
    [QSCRIPT_DEAD_RETRY] = { .name = "dead_retry", .src = lua_dead_retry },
    [QSCRIPT_PACE]       = { .name = "pace",       .src = lua_pace },
    [QSCRIPT_PACE_BACKOFF] = { .name = "pace_backoff", .src = lua_pace_backoff },
    [QSCRIPT_DLR_INDEX]  = { .name = "dlr_index",  .src = lua_dlr_index },
    [QSCRIPT_DLR_REPORT] = { .name = "dlr_report", .src = lua_dlr_report },
    [QSCRIPT_INBOUND_PART] = { .name = "inbound_part", .src = lua_inbound_part },
    [QSCRIPT_INBOUND_FLUSH] = { .name = "inbound_flush", .src = lua_inbound_flush },
};
