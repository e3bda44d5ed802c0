# modem_pool_test.sh -- two simulated modems (libgammu's AT driver on two
# ptys) serving the same families:
#   - a reply whose second part never comes is stored after
#     multipart_timeout with what came, flagged partial;
#   - one answers every AT+CMGS with +CMS ERROR 500: every message goes out
#     on the other, none is lost or dead;
#   - one falls silent and goes away: its work drains through the other,
#     within a bounded time, nothing is left in the lane, and after 3 failed
#     recoveries it is quarantined (`herald modems` shows it, by IMEI);
#   - it comes back: the probe takes it back and it sends again; its
#     circuit breaker (opened by the +CMS errors, resting far longer than
#     this test runs) is probed at once because the modem went down and
#     came back up.
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

imei_a=356938035643801 imei_b=356938035643802
"$EMULATORS/modem_sim" "$TEST_TMP/sim-a" $imei_a > "$TEST_TMP/sim-a.out" 2>&1 &
SIM_PID[a]=$!
"$EMULATORS/modem_sim" "$TEST_TMP/sim-b" $imei_b > "$TEST_TMP/sim-b.out" 2>&1 &
SIM_PID[b]=$!
for s in a b; do
    wait_until 10 test -e "$TEST_TMP/sim-$s/ready" || fail "simulator $s did not start"
done
sim() { local s=$1; shift; echo "$*" > "$TEST_TMP/sim-$s/ctl"; }
sent_lines() { wc -l < "$TEST_TMP/sim-$1/sent.jsonl"; }

C=$TEST_TMP/h.conf
conf_base "$C" gw1
sed -i 's/^retry = .*/retry = { max_attempts = 40; backoff_base_ms = 100; backoff_max_ms = 500; jitter_percent = 10; };/' "$C"
cat >> "$C" <<CONF
routes = (
  { name = "modemA"; driver = "gammu"; send_timeout_ms = 6000; breaker_probe_ms = 600000;
    gammu = { connection = "at"; device = "$TEST_TMP/sim-a/tty"; smsc = "+8613800100500";
              delivery_reports = false; reconnect_min_ms = 500; reconnect_max_ms = 2000;
              quarantine_after = 3; health_interval_ms = 1000; }; },
  { name = "modemB"; driver = "gammu"; send_timeout_ms = 6000;
    gammu = { connection = "at"; device = "$TEST_TMP/sim-b/tty"; smsc = "+8613800100500";
              delivery_reports = false; reconnect_min_ms = 500; reconnect_max_ms = 2000;
              poll_interval_ms = 300; multipart_timeout = 3; }; }
);
CONF
H() { "$HERALD" -c "$C" "$@"; }
status_is() { [ "$(H status "$1" | jget .status)" = "$2" ]; }
all_sent() { local i; for i in "$@"; do status_is "$i" sent || return 1; done; }

enqueue_n() {   # N FIRST_NUMBER: N case-stage updates, ids into $TEST_TMP/ids
    local n=$1 first=$2 i
    : > "$TEST_TMP/batch.jsonl"
    for i in $(seq 0 $((n - 1))); do
        echo "{\"template\":\"case_stage_update\",\"to\":\"$((first + i))\",\"vars\":{\"name\":\"王$i\",\"case_no\":\"某检刑诉〔2026〕$i号\",\"stage\":\"审查起诉\",\"stage_date\":\"2026年11月27日\",\"office_phone\":\"0571-88888888\"}}"
    done >> "$TEST_TMP/batch.jsonl"
    H enqueue --batch "$TEST_TMP/batch.jsonl" | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4 > "$TEST_TMP/ids"
    expect_eq "$(wc -l < "$TEST_TMP/ids")" "$n" "messages queued"
}

gw_start gw1 "$C" || exit 1
wait_until 30 sh -c "[ \$(grep -c 'modem connected' '$TEST_TMP/gw1.log') -ge 2 ]" || fail "modems not connected"

# ---- a reply whose second part never comes: stored after multipart_timeout, flagged
R() { redis-cli -s "$REDIS_SOCK" "$@"; }
sim b part +8613900000011 90 2 1 "只有第一部分"
partial_stored() { [ "$(R XLEN '{t}:inbound')" = 1 ]; }
wait_until 20 partial_stored || fail "incomplete reply not stored after multipart_timeout"
R XRANGE '{t}:inbound' - + > "$TEST_TMP/inbound.txt"
grep -qx "只有第一部分" "$TEST_TMP/inbound.txt" || fail "partial text: $(cat "$TEST_TMP/inbound.txt")"
grep -A1 -x partial "$TEST_TMP/inbound.txt" | grep -qx 1 || fail "not flagged partial: $(cat "$TEST_TMP/inbound.txt")"
grep -q "1 multipart message(s) stored with parts missing" "$TEST_TMP/gw1.log" || fail "partial store not logged"

# ---- +CMS ERROR 500 on modem A: everything goes out on B
sim a cms_before 500 1000
enqueue_n 6 13900000100
ids=$(cat "$TEST_TMP/ids")
wait_until 60 all_sent $ids || fail "not all sent while A refuses: $(for i in $ids; do H status "$i" | jget .status; done | sort | uniq -c)"
expect_eq "$(sent_lines a)" 0 "PDUs accepted by modem A"
for i in $ids; do
    expect_eq "$(H status "$i" | jget .route)" modemB "route of $i"
done
grep -q '\[modemA\] failed .*GSM_SendSMS' "$TEST_TMP/gw1.log" || fail "modem A was never tried"
b_before=$(sent_lines b)

# ---- modem A silent, then gone: its work drains through B, A is quarantined
sim a cms_before 500 0
sim a hang
sim a unplug
start=$(date +%s)
enqueue_n 6 13900000200
ids=$(cat "$TEST_TMP/ids")
wait_until 90 all_sent $ids || fail "not all sent with A silent: $(for i in $ids; do H status "$i" | jget .status; done | sort | uniq -c)"
echo "6 messages drained through B in $(( $(date +%s) - start )) s with A silent"
for i in $ids; do
    expect_eq "$(H status "$i" | jget .route)" modemB "route of $i"
done
[ "$(sent_lines b)" -gt "$b_before" ] || fail "B recorded nothing"
H queue stats > "$TEST_TMP/stats.json"
expect_eq "$(jget .lanes.urgent.depth < "$TEST_TMP/stats.json")" 0 "nothing left in the lane"
expect_eq "$(jget .dead < "$TEST_TMP/stats.json")" 0 "nothing dead"
# the breaker may keep sends off A; then its health reads notice the silence
# (libgammu's AT driver gives up on a silent line after its own retries:
# about 25 s here, longer on a loaded machine)
modem_a_log() { grep '\[modemA\]' "$TEST_TMP/gw1.log" | tail -n 15; tail -n 5 "$TEST_TMP/sim-a.out"; }
wait_until 120 grep -q "\[modemA\].*\(no answer\|timed out\|not connected\|connection failed\|link lost\)" "$TEST_TMP/gw1.log" \
    || fail "modem A's silence was not noticed: $(modem_a_log)"

# (an idle modem's silence shows at its next health read or inbox poll)
wait_until 90 grep -q "\[modemA\] modem quarantined after 3 failed recoveries" "$TEST_TMP/gw1.log" \
    || fail "modem A not quarantined: $(modem_a_log)"
modems_has() { H modems > "$TEST_TMP/modems.txt" && grep -q "$1" "$TEST_TMP/modems.txt"; }
wait_until 10 modems_has "^$imei_a .*modemA .*no .*quarantined" \
    || fail "herald modems: A not shown quarantined: $(cat "$TEST_TMP/modems.txt")"
grep -q "^$imei_b .*modemB .*yes .*connected" "$TEST_TMP/modems.txt" \
    || fail "herald modems: B not shown by IMEI: $(cat "$TEST_TMP/modems.txt")"

# ---- A comes back: probed, taken back, sends again
sim a resume
sim a plug
wait_until 30 grep -q "\[modemA\] modem answers again: taken back from quarantine" "$TEST_TMP/gw1.log" \
    || fail "modem A not taken back"
wait_until 10 grep -q "\[modemA\] route is up again after being down: breaker probe now" "$TEST_TMP/gw1.log" \
    || fail "modem A's breaker not probed when it came back"
a_before=$(sent_lines a)
enqueue_n 6 13900000300
ids=$(cat "$TEST_TMP/ids")
wait_until 60 all_sent $ids || fail "not all sent after A came back"
[ "$(sent_lines a)" -gt "$a_before" ] || fail "A took no share after it came back"

gw_stop gw1 || exit 1
echo "modem pool test passed"
