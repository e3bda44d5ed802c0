# redis_restart_test.sh -- Redis restarted (AOF on) in the middle of a
# 20,000-message run on two gateways: the gateways reconnect with backoff
# and carry on; at the end every message is sent exactly once, except those
# the policy recorded as `uncertain` (counted and listed) and urgent ones
# resent after a crash (their timeline says so).
set -u
. "$(dirname "$0")/../lib.sh"
N=${FAULT_N:-20000}
redis_start "$TEST_TMP/redis" || exit 1
trap 'gw_stop_all; redis_stop' EXIT
for g in a b; do
    conf_base "$TEST_TMP/$g.conf" "gw-$g" "batch = 16;"
    cat >> "$TEST_TMP/$g.conf" <<CONF
routes = ( { name = "sink-$g"; driver = "sink"; sink = { file = "$TEST_TMP/sink.jsonl"; latency_ms = 1; }; } );
CONF
done
make_batch "$N" "$TEST_TMP/batch.jsonl"
"$HERALD" -c "$TEST_TMP/a.conf" enqueue --batch "$TEST_TMP/batch.jsonl" > "$TEST_TMP/ids.jsonl" || fail "batch enqueue"
expect_eq "$(grep -c '"id"' "$TEST_TMP/ids.jsonl")" "$N" "accepted"
gw_start a "$TEST_TMP/a.conf" || exit 1
gw_start b "$TEST_TMP/b.conf" || exit 1

# restart when about a quarter has gone out
wait_until 120 sh -c "[ \$(wc -l < '$TEST_TMP/sink.jsonl' 2>/dev/null || echo 0) -ge $((N / 4)) ]" || fail "run did not start"
before=$(wc -l < "$TEST_TMP/sink.jsonl")
redis_restart || fail "redis did not come back"
echo "redis restarted after $before sends"
wait_until 60 grep -q "redis: " "$TEST_TMP/a.log" || fail "gateway a never noticed the restart"

done_count() {
    status_of_all "$TEST_TMP/ids.jsonl" t | awk '$2 == "sent" || $2 == "uncertain" || $2 == "dead"' | wc -l
}
wait_until 300 sh -c "[ \$(wc -l < '$TEST_TMP/sink.jsonl') -ge $((N - 50)) ]" || true
for i in $(seq 1 60); do
    [ "$(done_count)" -ge "$N" ] && break
    sleep 1
done
gw_stop a || exit 1
gw_stop b || exit 1
res=$(audit "$TEST_TMP/ids.jsonl" "$TEST_TMP/sink.jsonl" t) || exit 1
echo "after the restart: $res"
grep -q "uncertain 0 " <<<"$res" || awk '$2 == "uncertain" {print "uncertain:", $1}' "$TEST_TMP/.audit"
for g in a b; do
    grep -q "running:" "$TEST_TMP/$g.log" || fail "gateway $g log"
done
echo "redis_restart_test: ok"
