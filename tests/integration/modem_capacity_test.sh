# modem_capacity_test.sh -- a pool's capacity is used: two simulated modems,
# each send slowed, two-part messages queued at once. Each modem must be
# busy (a message's exchange in progress, from the AT+CMGS of its first part
# to the +CMGS answer of its last, as the simulator saw it) at least 95% of
# the time between its first and its last send: the gateway never leaves a
# free modem idle while work waits. Both modems take a share.
#
# Size, from the environment:
#   CAPACITY_MSGS    messages queued (default 8)
#   CAPACITY_SLOW_S  seconds each PDU is held by the simulator (default 2)
# The defaults are a scaled-down run that keeps `make test` short. The
# issue's figures are the full run (about 2 1/2 minutes):
#   CAPACITY_MSGS=40 CAPACITY_SLOW_S=3 ONLY=modem_capacity_test \
#       ./tests/run.sh build/san integration
set -u
. "$(dirname "$0")/../lib.sh"
redis_start "$TEST_TMP/redis" || exit 1
declare -A SIM_PID
cleanup() {
    gw_stop_all
    local s
    for s in "${SIM_PID[@]}"; do kill "$s" 2>/dev/null; done
    redis_stop
}
trap cleanup EXIT

"$EMULATORS/modem_sim" "$TEST_TMP/sim-a" 356938035643811 > "$TEST_TMP/sim-a.out" 2>&1 &
SIM_PID[a]=$!
"$EMULATORS/modem_sim" "$TEST_TMP/sim-b" 356938035643812 > "$TEST_TMP/sim-b.out" 2>&1 &
SIM_PID[b]=$!
N=${CAPACITY_MSGS:-8}
SLOW_S=${CAPACITY_SLOW_S:-2}
case "$N$SLOW_S" in *[!0-9]*) fail "CAPACITY_MSGS and CAPACITY_SLOW_S must be whole numbers";; esac
[ "$N" -ge 4 ] || fail "CAPACITY_MSGS must be at least 4 (each modem must take a share)"
[ "$SLOW_S" -ge 1 ] && [ "$SLOW_S" -le 10 ] || fail "CAPACITY_SLOW_S must be 1..10"
echo "capacity run: $N two-part messages, each PDU held $SLOW_S s, two modems"
for s in a b; do
    wait_until 10 test -e "$TEST_TMP/sim-$s/ready" || fail "simulator $s did not start"
    echo "slow $((SLOW_S * 1000))" > "$TEST_TMP/sim-$s/ctl"
done

C=$TEST_TMP/h.conf
conf_base "$C" gw1 "batch = 1;"
sed -i 's/^  workers = 2;/  workers = 3;/' "$C"
cat >> "$C" <<CONF
routes = (
  { name = "modemA"; driver = "gammu"; send_timeout_ms = $((SLOW_S * 2000 + 16000));
    gammu = { connection = "at"; device = "$TEST_TMP/sim-a/tty"; smsc = "+8613800100500"; }; },
  { name = "modemB"; driver = "gammu"; send_timeout_ms = $((SLOW_S * 2000 + 16000));
    gammu = { connection = "at"; device = "$TEST_TMP/sim-b/tty"; smsc = "+8613800100500"; }; }
);
CONF
H() { "$HERALD" -c "$C" "$@"; }
gw_start gw1 "$C" || exit 1
wait_until 30 sh -c "[ \$(grep -c 'modem connected' '$TEST_TMP/gw1.log') -ge 2 ]" || fail "modems not connected"

: > "$TEST_TMP/batch.jsonl"
for i in $(seq 1 $N); do
    echo "{\"template\":\"case_stage_update\",\"to\":\"$((13900000400 + i))\",\"vars\":{\"name\":\"王$i\",\"case_no\":\"某检刑诉〔2026〕$i号\",\"stage\":\"审查起诉\",\"stage_date\":\"2026年11月27日\",\"office_phone\":\"0571-88888888\"}}"
done >> "$TEST_TMP/batch.jsonl"
H enqueue --batch "$TEST_TMP/batch.jsonl" > "$TEST_TMP/ids.jsonl" || fail "enqueue"
expect_eq "$(grep -c '"parts":2' "$TEST_TMP/ids.jsonl")" $N "two-part messages queued"

total_lines() { cat "$TEST_TMP"/sim-*/sent.jsonl | wc -l; }
all_parts() { [ "$(total_lines)" -ge $((2 * N)) ]; }
# two parts of (SLOW_S + ~0.8 s) each per message, two modems, plus slack
limit=$(( N * (SLOW_S + 1) + 60 ))
wait_until $limit all_parts || fail "only $(total_lines) of $((2 * N)) parts sent"
gw_stop gw1 || exit 1

# busy time per modem, from what each simulator recorded
for s in a b; do
    f=$TEST_TMP/sim-$s/sent.jsonl
    n=$(wc -l < "$f")
    [ "$n" -ge $((N / 2)) ] || fail "modem $s took $n parts: no fair share"
    busy=0 first=0 last=0 start=0
    while IFS= read -r line; do
        seq=$(jget .seq <<<"$line"); total=$(jget .total <<<"$line")
        t0=$(jget .t0 <<<"$line"); at=$(jget .at <<<"$line")
        [ "$seq" = 1 ] && start=$t0
        [ "$first" = 0 ] && first=$t0
        if [ "$seq" = "$total" ]; then
            busy=$((busy + at - start))
            last=$at
        fi
    done < "$f"
    elapsed=$((last - first))
    pct=$((busy * 1000 / elapsed))
    echo "modem $s: $n parts, busy $busy ms of $elapsed ms ($((pct / 10)).$((pct % 10))%)"
    [ "$pct" -ge 950 ] || fail "modem $s busy only $((pct / 10)).$((pct % 10))% of the time"
done
t_first=$(cat "$TEST_TMP"/sim-*/sent.jsonl | while IFS= read -r l; do jget .t0 <<<"$l"; done | sort -n | head -1)
t_last=$(cat "$TEST_TMP"/sim-*/sent.jsonl | while IFS= read -r l; do jget .at <<<"$l"; done | sort -n | tail -1)
echo "all $((2 * N)) parts in $((t_last - t_first)) ms, first AT+CMGS to last +CMGS"
echo "modem capacity test passed"
