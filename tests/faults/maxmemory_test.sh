# maxmemory_test.sh -- Redis at maxmemory with noeviction: enqueue (single
# and batch) is refused with a clear error and exit 1, nothing already
# accepted is lost, and once memory is raised every accepted message is
# sent. Filling Redis to the brim first also shows the edge: a batch that
# hits the limit half-way reports each refused line and exits 1.
set -u
. "$(dirname "$0")/../lib.sh"
redis_start "$TEST_TMP/redis" || exit 1
trap 'gw_stop_all; redis_stop' EXIT
C=$TEST_TMP/h.conf
conf_base "$C" full
cat >> "$C" <<CONF
routes = ( { name = "sink1"; driver = "sink"; sink = { file = "$TEST_TMP/sink.jsonl"; }; } );
CONF
H() { "$HERALD" -c "$C" "$@"; }
R() { redis-cli -s "$REDIS_SOCK" "$@"; }
used_memory() { R info memory | awk -F: '/^used_memory:/ {print $2+0}'; }
R config set maxmemory-policy noeviction >/dev/null

# 1. the edge: a limit a little above what is used, then a big batch
R config set maxmemory $(( $(used_memory) + 400000 )) >/dev/null
make_batch 3000 "$TEST_TMP/batch.jsonl"
H enqueue --batch "$TEST_TMP/batch.jsonl" > "$TEST_TMP/ids.jsonl" 2>"$TEST_TMP/e"
expect_eq $? 1 "exit status of a batch that hit maxmemory"
refused=$(grep -c '"error":"redis refused the message: .*OOM' "$TEST_TMP/ids.jsonl")
accepted=$(grep -c '"id"' "$TEST_TMP/ids.jsonl")
expect_eq $((refused + accepted)) 3000 "every line answered"
[ "$refused" -gt 0 ] && [ "$accepted" -gt 0 ] || fail "the limit was not reached half-way ($accepted accepted, $refused refused)"
grep -q "maxmemory" "$TEST_TMP/e" || fail "stderr does not say why: $(cat "$TEST_TMP/e")"
echo "at the edge: $accepted accepted, $refused refused with the reason"

# 2. full: below what is used, every write is refused
R config set maxmemory $(( $(used_memory) / 2 )) >/dev/null
H enqueue --template evaluation_survey --to 13900000001 --var period=2026年11月 >/dev/null 2>"$TEST_TMP/e1"
expect_eq $? 1 "single enqueue exit when full"
grep -qi "memory" "$TEST_TMP/e1" || fail "single refusal unclear: $(cat "$TEST_TMP/e1")"
make_batch 10 "$TEST_TMP/small.jsonl"
H enqueue --batch "$TEST_TMP/small.jsonl" > "$TEST_TMP/small.out" 2>/dev/null
expect_eq $? 1 "batch exit when full"
expect_eq "$(grep -c '"id"' "$TEST_TMP/small.out")" 0 "accepted while full"

# nothing accepted is lost: every id has its record, queued
expect_eq "$(status_of_all "$TEST_TMP/ids.jsonl" t | awk '$2 != "queued"' | wc -l)" 0 "accepted messages not queued"

# 3. memory back: everything accepted goes out once
R config set maxmemory 0 >/dev/null
gw_start g "$C" || exit 1
for i in $(seq 1 90); do
    [ "$(status_of_all "$TEST_TMP/ids.jsonl" t | awk '$2 == "sent"' | wc -l)" -ge "$accepted" ] && break
    sleep 1
done
gw_stop g || exit 1
res=$(audit "$TEST_TMP/ids.jsonl" "$TEST_TMP/sink.jsonl" t) || exit 1
echo "after maxmemory: $res"
echo "maxmemory_test: ok"
