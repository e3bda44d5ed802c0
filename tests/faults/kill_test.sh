# kill_test.sh -- three gateways share one Redis and a batch; gateways are
# killed with SIGKILL at random moments (24 kills), each restarted under its
# own instance name; the last one killed stays dead, and the other two take
# over its messages after the visibility timeout (a message it was sending,
# once its lease has run out: the route's 2 s send timeout + 30 s). At the end the accounting
# balances: enqueued = sent + dead + uncertain, each message once (an urgent
# one resent after a crash says so in its timeline).
set -u
. "$(dirname "$0")/../lib.sh"
N=${FAULT_N:-5000}
KILLS=24
redis_start "$TEST_TMP/redis" || exit 1
trap 'gw_stop_all; redis_stop' EXIT
for g in a b c; do
    conf_base "$TEST_TMP/$g.conf" "gw-$g" "batch = 8;"
    cat >> "$TEST_TMP/$g.conf" <<CONF
routes = ( { name = "sink-$g"; driver = "sink"; send_timeout_ms = 2000; sink = { file = "$TEST_TMP/sink.jsonl"; latency_ms = 25; }; } );
CONF
done
make_batch "$N" "$TEST_TMP/batch.jsonl"
"$HERALD" -c "$TEST_TMP/a.conf" enqueue --batch "$TEST_TMP/batch.jsonl" > "$TEST_TMP/ids.jsonl" || fail "batch enqueue"
for g in a b c; do gw_start "$g" "$TEST_TMP/$g.conf" || exit 1; done

RANDOM=42
for k in $(seq 1 $KILLS); do
    g=$(printf 'a\nb\nc\n' | sed -n "$((RANDOM % 3 + 1))p")
    sleep "0.$((RANDOM % 8 + 2))"
    gw_kill9 "$g"
    [ "$k" -eq $KILLS ] && break          # the last one stays dead
    gw_start "$g" "$TEST_TMP/$g.conf" || exit 1
done
echo "killed $KILLS times; $g stays dead with $(wc -l < "$TEST_TMP/sink.jsonl") sent so far"

finished() {
    [ "$(status_of_all "$TEST_TMP/ids.jsonl" t | awk '$2 == "sent" || $2 == "uncertain" || $2 == "dead"' | wc -l)" -ge "$N" ]
}
for i in $(seq 1 120); do finished && break; sleep 1; done
finished || fail "not finished: $(status_of_all "$TEST_TMP/ids.jsonl" t | awk '{print $2}' | sort | uniq -c | tr '\n' ' ')"
for g in a b c; do gw_stop "$g" || exit 1; done
res=$(audit "$TEST_TMP/ids.jsonl" "$TEST_TMP/sink.jsonl" t) || exit 1
echo "after $KILLS kills: $res"
expect_eq "$(grep -c '' "$TEST_TMP/ids.jsonl")" "$N" "enqueued"
echo "kill_test: ok"
