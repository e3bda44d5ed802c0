/* scripts.c -- the Lua scripts of the queue, as C strings.
 *
 * Conventions shared by all scripts:
 *   - every key comes in KEYS[]; numbers come as decimal strings in ARGV
 *     and are stored as given (never formatted by Lua, which would print
 *     1.7e+12);
 *   - the timeline field `tl` holds lines "ms\tstatus\tdetail" joined by
 *     "\n"; details are cleaned of tabs and newlines. Two lines are not
 *     stored but derived by its reader (queue_get()): the first line of a
 *     message queued at once, and the `sending` line of an attempt in
 *     progress (written when the attempt ends: LUA_ATTEMPT_LINE);
 *   - a stream entry that leaves its lane any other way than by FINISH
 *     is XACKed and XDELed; FINISH only XACKs it and ends by cutting the
 *     lane's acknowledged head in one XTRIM (trim() below; TRIM does the
 *     same after a reclaim). A lane's XLEN is what waits plus
 *     what is in flight, plus entries finished after the oldest one
 *     still in flight (until that one finishes);
 *   - state problems are returned as values ({code, text}), never raised:
 *     an error reply always means Redis itself refused (OOM, WRONGTYPE...).
 * See docs/redis-keys.md for the key layout. */
#include "queue/scripts.h"

/* Helpers prepended to every script. */
#define LUA_PRELUDE \
"local function clean(s)\n" \
"  s = s or ''\n" \
"  -- plain finds before gsub: most details are clean, gsub copies every\n" \
"  -- one, and a pattern costs more than three plain searches\n" \
"  if string.find(s, '\\n', 1, true) or string.find(s, '\\t', 1, true) or string.find(s, '\\r', 1, true) then\n" \
"    s = string.gsub(s, '[\\t\\r\\n]', ' ')\n" \
"  end\n" \
"  return s\n" \
"end\n" \
"-- one concatenation: one new Lua string\n" \
"local function tline(cur, now, status, detail)\n" \
"  if cur and cur ~= '' then return cur .. '\\n' .. now .. '\\t' .. status .. '\\t' .. clean(detail) end\n" \
"  return now .. '\\t' .. status .. '\\t' .. clean(detail)\n" \
"end\n" \
LUA_ATTEMPT_LINE \
"-- the timeline of a record whose attempt ends now, with `status` added\n" \
"local function tl_ended(rec, now, status, detail)\n" \
"  local a = redis.call('HMGET', rec, 'tl', 'updated', 'attempts', 'owner')\n" \
"  return tline(attempt(a[1], a[2], a[3], a[4]), now, status, detail)\n" \
"end\n" \
"local function tl(rec, now, status, detail)\n" \
"  redis.call('HSET', rec, 'tl', tline(redis.call('HGET', rec, 'tl'), now, status, detail),\n" \
"             'updated', now)\n" \
"end\n" \
"local function drop(lane, entry)\n" \
"  redis.call('XACK', lane, 'herald', entry)\n" \
"  redis.call('XDEL', lane, entry)\n" \
"end\n" \
"local function bury(dead, id, reason, lane, family, now)\n" \
"  return redis.call('XADD', dead, '*', 'id', id, 'reason', clean(reason),\n" \
"                    'lane', lane or '', 'family', family or '', 'at', now)\n" \
"end\n" \
"local terminal = {sent=true, delivered=true, failed=true, dead=true, uncertain=true}\n" \
"-- counters added up over a batch: t[key][field] = n, then written once a field\n" \
"local function add(t, key, field)\n" \
"  local m = t[key]\n" \
"  if not m then m = {}; t[key] = m end\n" \
"  m[field] = (m[field] or 0) + 1\n" \
"end\n" \
"local function incr_all(t, ttl)\n" \
"  for key, m in pairs(t) do\n" \
"    for field, k in pairs(m) do\n" \
"      if redis.call('HINCRBY', key, field, k) == k and ttl then redis.call('PEXPIRE', key, ttl) end\n" \
"    end\n" \
"  end\n" \
"end\n"

/* ENQUEUE (a batch of new messages, one call)
 * KEYS: 1 urgent lane, 2 bulk lane, 3 sched, 4 bodies (the call's new ids
 *       joined by ',' as one member, scored by the newest creation time,
 *       for the retention purge of the text: queue/retention.c), then for
 *       message i from 4+4(i-1)+1: record, idem, case index, day counters
 * ARGV: 1 retention ms, 2 idem window ms, 3 day counters ttl ms, 4 count n,
 *       then for message i 16 values from 5+16(i-1): id, family, template,
 *       to, text, encoding, parts, lane name, vars, provider code, idem key,
 *       now, send_at, send_at as text, case number ('' = none),
 *       now - retention
 * The messages are taken in order (a key repeated in the batch is a
 * duplicate of its first use); the bodies index is written once and the
 * day's counters once per field.
 * Returns per message the id (a new message: a plain string, no table to
 * make and probe), {1, first id} (a duplicate) or {2, why} (refused). */
static const char lua_enqueue[] = LUA_PRELUDE
"local days, bodies, newest, newest_s = {}, {}, 0, nil\n"
"-- the fields a sparse record holds only when they differ from their\n"
"-- default, as arguments (no table a message in the common cases); `line`\n"
"-- is the timeline's first line of a scheduled message\n"
"local function optional(code, key, send_at, now, line)\n"
"  if code == '' and send_at == now then\n"
"    if key == '' then return end\n"
"    return 'key', key\n"
"  end\n"
"  local f = {}\n"
"  if code ~= '' then f[#f + 1] = 'code'; f[#f + 1] = code end\n"
"  if key ~= '' then f[#f + 1] = 'key'; f[#f + 1] = key end\n"
"  if send_at ~= now then f[#f + 1] = 'send_at'; f[#f + 1] = send_at end\n"
"  if line then f[#f + 1] = 'tl'; f[#f + 1] = line end\n"
"  return unpack(f)\n"
"end\n"
"-- a message's 16 values come as arguments (unpacked onto the stack, not\n"
"-- into a table of their own)\n"
"local function one(rec, idem, case, day, id, fam, tpl, to, text, enc, parts, lname, vars,\n"
"                   code, key, now, send_at, send_s, case_no, cutoff)\n"
"  -- the key is claimed, or its first message's id comes back, in one call\n"
"  local prev = redis.call('SET', idem, id, 'PX', ARGV[2], 'NX', 'GET')\n"
"  if prev then return {1, prev} end\n"
"  if redis.call('EXISTS', rec) == 1 then\n"
"    redis.call('DEL', idem)\n"
"    return {2, 'message id collision: ' .. id}\n"
"  end\n"
"  -- the timeline's first line: a scheduled message's is stored; a queued\n"
"  -- one's (`created`, queued, `lane <lane>`) is not, its readers derive it\n"
"  -- from the record (queue_get()), as they derive an attempt in progress\n"
"  local e, line = '', nil\n"
"  if tonumber(send_at) > tonumber(now) then\n"
"    redis.call('ZADD', KEYS[3], send_at, id)\n"
"    line = tline(nil, now, 'scheduled', 'for ' .. send_s)\n"
"  else\n"
"    e = redis.call('XADD', lname == 'bulk' and KEYS[2] or KEYS[1], '*', 'id', id)\n"
"  end\n"
"  -- a sparse record: what a field would hold by default is not stored\n"
"  -- (readers fill it in: record_defaults() in queue.c)\n"
"  redis.call('HSET', rec, 'family', fam, 'template', tpl, 'to', to, 'text', text,\n"
"    'encoding', enc, 'parts', parts, 'lane', lname, 'vars', vars,\n"
"    'status', 'queued', 'created', now, 'entry', e, optional(code, key, send_at, now, line))\n"
"  redis.call('PEXPIRE', rec, ARGV[1])\n"
"  if tonumber(now) > newest then newest, newest_s = tonumber(now), now end\n"
"  bodies[#bodies + 1] = id\n"
"  -- console: the case number's index (ids past retention leave it) and\n"
"  -- the local day's count of messages queued per family\n"
"  if case_no ~= '' then\n"
"    redis.call('ZADD', case, now, id)\n"
"    redis.call('ZREMRANGEBYSCORE', case, '-inf', '(' .. cutoff)\n"
"    redis.call('PEXPIRE', case, ARGV[1])\n"
"  end\n"
"  add(days, day, fam .. ':queued')\n"
"  return id\n"
"end\n"
"local out = {}\n"
"for i = 1, tonumber(ARGV[4]) do\n"
"  local k, a = 4 + 4 * (i - 1), 5 + 16 * (i - 1)\n"
"  out[i] = one(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], unpack(ARGV, a, a + 15))\n"
"end\n"
"-- the retention index: one member a call, its ids joined by ',' and scored\n"
"-- by the newest (queue/retention.c splits it)\n"
"if #bodies > 0 then redis.call('ZADD', KEYS[4], newest_s, table.concat(bodies, ',')) end\n"
"incr_all(days, ARGV[3])\n"
"return out\n";

/* BEGIN (begin_send of a window of entries, one call)
 * KEYS: 1 dead, 2 opt-out hash, 3 urgent lane, 4 bulk lane, then 4+i the
 *       record of message i
 * ARGV: 1 consumer, 2 now, 3 lease_until, 4 count n, then for each message
 *       3 values from 5+3(i-1): entry id, msg id ('' when the entry is
 *       malformed), lane name
 * Returns one reply per message: {0, opted out (1/0, bulk lane only),
 * family, template, to, text, encoding, vars, code, parts, lane, attempts}
 * (the record's HMGET answer reused: no table of its own),
 * {1, why} (skip) or {2, why} (dead letter). The opt-out answer rides on
 * this call (one HMGET of the list for the call's bulk messages) so the
 * worker spends no round trip of its own on it. */
static const char lua_begin[] = LUA_PRELUDE
"local consumer, now, lease = ARGV[1], ARGV[2], ARGV[3]\n"
"local function to_dead(lane, entry, id, lname, why, family)\n"
"  local d = bury(KEYS[1], id, why, lname, family, now)\n"
"  drop(lane, entry)\n"
"  return d\n"
"end\n"
"local function one(rec, entry, id, lname)\n"
"  local lane = lname == 'bulk' and KEYS[4] or KEYS[3]\n"
"  if id == '' then\n"
"    local why = 'malformed stream entry: no valid id field'\n"
"    to_dead(lane, entry, id, lname, why, '')\n"
"    return {2, why}\n"
"  end\n"
"  local r = redis.call('HMGET', rec, 'status', 'entry', 'family', 'template',\n"
"    'to', 'text', 'encoding', 'vars', 'code', 'parts', 'lane', 'attempts')\n"
"  local st = r[1]\n"
"  if not st then\n"
"    local why = 'message record missing (expired or never written)'\n"
"    to_dead(lane, entry, id, lname, why, '')\n"
"    return {2, why}\n"
"  end\n"
"  if r[2] ~= entry then drop(lane, entry); return {1, 'stale entry'} end\n"
"  if st == 'sending' then\n"
"    return {1, 'being sent by ' .. (redis.call('HGET', rec, 'owner') or '?')}\n"
"  end\n"
"  if terminal[st] then drop(lane, entry); return {1, 'already ' .. st} end\n"
"  if st ~= 'queued' or not r[5] or r[5] == '' or not r[6] then\n"
"    local why = 'record lacks to or text'\n"
"    if st ~= 'queued' then why = 'record has unknown status ' .. st end\n"
"    local d = to_dead(lane, entry, id, lname, why, r[3])\n"
"    redis.call('HSET', rec, 'status', 'dead', 'error', why, 'dead_entry', d, 'entry', '')\n"
"    tl(rec, now, 'dead', why)\n"
"    return {2, why}\n"
"  end\n"
"  local n = (tonumber(r[12]) or 0) + 1\n"
"  -- no timeline line: `updated`, `attempts` and `owner` say it (LUA_ATTEMPT_LINE)\n"
"  redis.call('HSET', rec, 'status', 'sending', 'owner', consumer, 'lease_until', lease,\n"
"    'attempts', tostring(n), 'updated', now)\n"
"  r[1], r[2], r[12] = 0, 0, n\n"
"  return r\n"
"end\n"
"local out, bulk, tos = {}, {}, {}\n"
"for i = 1, tonumber(ARGV[4]) do\n"
"  local a = 5 + 3 * (i - 1)\n"
"  local o = one(KEYS[4 + i], ARGV[a], ARGV[a + 1], ARGV[a + 2])\n"
"  out[i] = o\n"
"  if o[1] == 0 and o[11] == 'bulk' then\n"
"    bulk[#bulk + 1] = o\n"
"    tos[#tos + 1] = o[5]\n"
"  end\n"
"end\n"
"-- the opt-out list, once for the call's bulk messages\n"
"if #tos > 0 then\n"
"  local v = redis.call('HMGET', KEYS[2], unpack(tos))\n"
"  for j, o in ipairs(bulk) do if v[j] then o[2] = 1 end end\n"
"end\n"
"return out\n";

/* The lane trim of TRIM and FINISH: every entry before both the group's
 * oldest pending entry and the first entry it has not read yet is
 * acknowledged, and one XTRIM MINID drops them. An XDEL per finished entry
 * cost 3.3 us of Redis's CPU on this host; this costs about 0.07 us an
 * entry (whole stream nodes are freed at once). */
#define LUA_TRIM \
"local function trim(lane)\n" \
"  if redis.call('EXISTS', lane) == 0 then return 0 end\n" \
"  local ld\n" \
"  for _, g in ipairs(redis.call('XINFO', 'GROUPS', lane)) do\n" \
"    local h = {}\n" \
"    for j = 1, #g, 2 do h[g[j]] = g[j + 1] end\n" \
"    if h['name'] == 'herald' then ld = h['last-delivered-id'] end\n" \
"  end\n" \
"  if not ld then return 0 end\n" \
"  local p = redis.call('XPENDING', lane, 'herald')\n" \
"  local minid = p[2]\n" \
"  if p[1] == 0 or not minid then\n" \
"    local ms, seq = string.match(ld, '^(%d+)-(%d+)$')\n" \
"    if not ms then return 0 end\n" \
"    minid = ms .. '-' .. string.format('%d', tonumber(seq) + 1)\n" \
"  end\n" \
"  return redis.call('XTRIM', lane, 'MINID', minid)\n" \
"end\n"

/* FINISH (the outcomes of a window of sends, one call)
 * KEYS: 1 sched, 2 dead, 3 stats, 4 uncertain, 5 urgent lane, 6 bulk lane,
 *       then for each message i: 6+3i-2 record, 6+3i-1 the day's sent
 *       notes (hash {p}:sentday:<UTC day>; the record key again when there
 *       is no note), 6+3i day counters
 * ARGV: 1 day counters ttl ms, 2 count n, then for each message 13 values
 *       from 3+13(i-1): entry id, kind (sent|retry|dead|uncertain|wait),
 *       route, refs, detail, retry_at, now, msg id, retry_at as text,
 *       when the day's notes expire (unix ms; '0' = no note), lane ('u' or
 *       'b'), the recipient, the attempt's timeline line ("began\tsending\t
 *       attempt n by owner", made by the worker from what its BEGIN wrote;
 *       '' = made here from the record's `updated`, `attempts`, `owner`)
 * Each message: a `sent` outcome with a note also notes what went to whom
 * (the replies link a later answer to it): "now|family|id" appended to the
 * recipient's field of the day's hash, the day's last 16 kept; one
 * PEXPIREAT a day's hash a call. The stream entries are XACKed
 * (one XACK a lane) and the lanes' acknowledged heads trimmed; the
 * counters of {p}:stats and the day's are added up and written once per
 * field.
 * Returns one reply per message: 0 (a plain integer: Redis turns every
 * table a script returns into a reply by probing it for seven special
 * fields first), {-3, why} (no record) or {-4, why} (not ours to finish).
 * allow-oom: the outcome of a message that left already must be recorded
 * even at maxmemory (the script also frees the entry), or it is resent. */
static const char lua_finish[] = "#!lua flags=allow-oom\n" LUA_PRELUDE LUA_TRIM
"local acks, stats, days, notes = {u = {}, b = {}}, {}, {}, {}\n"
"-- a finished attempt's record: its fields, then the bookkeeping deleted\n"
"-- (`error` too when `also` names it)\n"
"local function set(rec, route, now, tlv, also, ...)\n"
"  redis.call('HSET', rec, 'route', route, 'updated', now, 'tl', tlv, ...)\n"
"  if also then redis.call('HDEL', rec, 'entry', 'owner', 'lease_until', also)\n"
"  else redis.call('HDEL', rec, 'entry', 'owner', 'lease_until') end\n"
"end\n"
"-- a message's 13 values come as arguments (on the stack, not in a table)\n"
"local function one(rec, note, day, entry, kind, route, refs, detail, retry_at, now, id,\n"
"                   retry_s, note_at, ln, to, att)\n"
"  local r = redis.call('HMGET', rec, 'status', 'entry', 'family', 'tl')\n"
"  if not r[1] then return {-3, 'no such message'} end\n"
"  if r[1] ~= 'sending' or r[2] ~= entry then\n"
"    local why = 'message is ' .. r[1]\n"
"    if r[2] ~= entry then why = why .. ' and the entry is stale' end\n"
"    return {-4, why}\n"
"  end\n"
"  local ack = acks[ln] or acks.u\n"
"  ack[#ack + 1] = entry\n"
"  local fam = r[3] or ''\n"
"  local ctr = fam .. ':' .. (route == '' and '-' or route)\n"
"  -- one HSET of the record: the route, the time, the outcome's fields and\n"
"  -- the timeline (the attempt's `sending` line, then the outcome's); one\n"
"  -- HDEL of the attempt's bookkeeping (an absent field holds its default:\n"
"  -- the record is sparse, see ENQUEUE), through set(). The attempt's\n"
"  -- line: the worker's (what its BEGIN wrote, this record being still\n"
"  -- that attempt's), or made from the record\n"
"  local began, n\n"
"  if att ~= '' then\n"
"    began = with_attempt(r[4], att)\n"
"  else\n"
"    local b = redis.call('HMGET', rec, 'updated', 'attempts', 'owner')\n"
"    began, n = attempt(r[4], b[1], b[2], b[3]), b[2]\n"
"  end\n"
"  if kind == 'sent' then\n"
"    set(rec, route, now, tline(began, now, 'sent', 'via ' .. route .. ': ' .. refs), 'error',\n"
"        'status', 'sent', 'refs', refs)\n"
"    if note_at ~= '0' then\n"
"      -- a field of the day's hash, not a key a recipient: no key, no\n"
"      -- expiry entry of its own (the reader: queue_sent_latest())\n"
"      local e, v = now .. '|' .. fam .. '|' .. id, redis.call('HGET', note, to)\n"
"      if v then\n"
"        local _, older = string.gsub(v, ' ', ' ')\n"
"        if older >= 15 then v = string.sub(v, string.find(v, ' ', 1, true) + 1) end\n"
"        e = v .. ' ' .. e\n"
"      end\n"
"      redis.call('HSET', note, to, e)\n"
"      notes[note] = note_at\n"
"    end\n"
"  elseif kind == 'retry' then\n"
"    set(rec, route, now, tline(began, now, 'retry', 'at ' .. retry_s .. ': ' .. detail), nil,\n"
"        'status', 'queued', 'error', detail)\n"
"    redis.call('ZADD', KEYS[1], retry_at, id)\n"
"  elseif kind == 'wait' then\n"
"    -- pacing, a cap or quiet hours: nothing was sent, the attempt is given back\n"
"    n = (tonumber(n or string.match(att, '\\tattempt (%d+) by ')) or 1) - 1\n"
"    set(rec, route, now, tline(began, now, 'waiting', 'until ' .. retry_s .. ': ' .. detail), nil,\n"
"        'status', 'queued', 'waiting', detail, 'attempts', tostring(n < 0 and 0 or n))\n"
"    redis.call('ZADD', KEYS[1], retry_at, id)\n"
"  elseif kind == 'uncertain' then\n"
"    set(rec, route, now, tline(began, now, 'uncertain', 'perhaps sent via ' .. route .. ', held: ' .. detail),\n"
"        nil, 'status', 'uncertain', 'error', detail)\n"
"    redis.call('ZADD', KEYS[4], now, id)\n"
"  else\n"
"    kind = 'dead'\n"
"    local d = bury(KEYS[2], id, detail, ln == 'b' and 'bulk' or 'urgent', fam, now)\n"
"    set(rec, route, now, tline(began, now, 'dead', detail), nil,\n"
"        'status', 'dead', 'error', detail, 'dead_entry', d)\n"
"  end\n"
"  add(stats, KEYS[3], kind .. ':' .. ctr)\n"
"  -- console: the local day's counters per family\n"
"  add(days, day, fam .. ':' .. kind)\n"
"  return 0\n"
"end\n"
"local out = {}\n"
"for i = 1, tonumber(ARGV[2]) do\n"
"  local a = 3 + 13 * (i - 1)\n"
"  out[i] = one(KEYS[6 + 3 * i - 2], KEYS[6 + 3 * i - 1], KEYS[6 + 3 * i],\n"
"               unpack(ARGV, a, a + 12))\n"
"end\n"
"for ln, key in pairs({u = KEYS[5], b = KEYS[6]}) do\n"
"  if #acks[ln] > 0 then\n"
"    redis.call('XACK', key, 'herald', unpack(acks[ln]))\n"
"    trim(key)\n"
"  end\n"
"end\n"
"incr_all(stats)\n"
"incr_all(days, ARGV[1])\n"
"for key, at in pairs(notes) do redis.call('PEXPIREAT', key, at) end\n"
"return out\n";

/* TRIM (a lane's acknowledged head; after a reclaim)
 * KEYS: 1 lane
 * Returns the count trimmed. */
static const char lua_trim[] = "#!lua flags=allow-oom\n" LUA_TRIM
"return trim(KEYS[1])\n";

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
"  if st == 'queued' then\n"
"    redis.call('HSET', KEYS[2], 'status', 'queued', 'entry', e, 'owner', '', 'lease_until', '0')\n"
"    tl(KEYS[2], ARGV[3], 'requeued', 'put back after its reader stopped')\n"
"  else\n"
"    local line = tl_ended(KEYS[2], ARGV[3], 'queued', 'reclaimed after a crash: perhaps sent, resending')\n"
"    redis.call('HSET', KEYS[2], 'status', 'queued', 'entry', e, 'owner', '', 'lease_until', '0',\n"
"      'tl', line, 'updated', ARGV[3])\n"
"  end\n"
"  return 1\n"
"end\n"
"if st == 'sending' then\n"
"  drop(KEYS[1], ARGV[1])\n"
"  local line = tl_ended(KEYS[2], ARGV[3], 'uncertain', 'reclaimed after a crash: perhaps sent, held for an operator')\n"
"  redis.call('HSET', KEYS[2], 'status', 'uncertain', 'entry', '', 'owner', '', 'lease_until', '0',\n"
"    'tl', line, 'updated', ARGV[3])\n"
"  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])\n"
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
    [QSCRIPT_TRIM]       = { .name = "trim",       .src = lua_trim },
};
