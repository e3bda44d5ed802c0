# redis_outage_test.sh -- Redis unreachable for 30 s (FAULT_OUTAGE_S): the
# CLI exits 1 with a clear message, the gateway's workers wait without
# spinning (CPU time measured from /proc) and nothing crashes; when Redis
# returns everything resumes and every message is sent once.
set -u
. "$(dirname "$0")/../lib.sh"
OUTAGE=${FAULT_OUTAGE_S:-30}
redis_start "$TEST_TMP/redis" || exit 1
trap 'gw_stop_all; redis_stop' EXIT
C=$TEST_TMP/h.conf
conf_base "$C" outage
cat >> "$C" <<CONF
routes = ( { name = "sink1"; driver = "sink"; sink = { file = "$TEST_TMP/sink.jsonl"; latency_ms = 2; }; } );
CONF
H() { "$HERALD" -c "$C" "$@"; }
make_batch 400 "$TEST_TMP/before.jsonl"
H enqueue --batch "$TEST_TMP/before.jsonl" > "$TEST_TMP/ids.jsonl" || fail "enqueue before"
gw_start g "$C" || exit 1
pid=${GW_PID[g]}
wait_until 60 sh -c "[ \$(wc -l < '$TEST_TMP/sink.jsonl' 2>/dev/null || echo 0) -ge 100 ]" || fail "nothing sent"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
redis_stop
t0=$(cpu_ticks "$pid")
start=$(date +%s)
# the CLI: exit 1 and a message that names Redis
H enqueue --template evaluation_survey --to 13900000001 --var period=2026年11月 2>"$TEST_TMP/e"
expect_eq $? 1 "enqueue exit while Redis is down"
grep -q "redis" "$TEST_TMP/e" || fail "enqueue error does not name Redis: $(cat "$TEST_TMP/e")"
H queue stats >/dev/null 2>"$TEST_TMP/e"; expect_eq $? 1 "queue stats exit while Redis is down"
H status 0123 >/dev/null 2>&1; expect_eq $? 1 "status exit while Redis is down"
while [ $(( $(date +%s) - start )) -lt "$OUTAGE" ]; do
    kill -0 "$pid" 2>/dev/null || fail "gateway died during the outage"
    sleep 1
done
t1=$(cpu_ticks "$pid")
hz=$(getconf CLK_TCK)
cpu_ms=$(( (t1 - t0) * 1000 / hz ))
echo "outage of ${OUTAGE} s: gateway used ${cpu_ms} ms of CPU"
# waiting, not spinning: under 5% of one core (ASan build included)
[ "$cpu_ms" -lt $(( OUTAGE * 50 )) ] || fail "gateway spun during the outage: ${cpu_ms} ms CPU in ${OUTAGE} s"
grep -q "retrying in" "$TEST_TMP/g.log" || fail "no reconnect backoff logged"

redis_start "$TEST_TMP/redis" || fail "redis did not come back"
make_batch 410 "$TEST_TMP/all.jsonl"
sed -n '401,410p' "$TEST_TMP/all.jsonl" > "$TEST_TMP/after.jsonl"
H enqueue --batch "$TEST_TMP/after.jsonl" >> "$TEST_TMP/ids.jsonl" || fail "enqueue after the outage"
for i in $(seq 1 60); do
    [ "$(status_of_all "$TEST_TMP/ids.jsonl" t | awk '$2 == "sent" || $2 == "uncertain"' | wc -l)" -ge 410 ] && break
    sleep 1
done
gw_stop g || exit 1
res=$(audit "$TEST_TMP/ids.jsonl" "$TEST_TMP/sink.jsonl" t) || exit 1
echo "after the outage: $res"
echo "redis_outage_test: ok"
