# modem_notify_test.sh -- new-message indications (AT+CNMI) through
# libgammu's AT driver against the modem simulator. Every modem here has
# poll_interval_ms = 60000, so a storage read on the interval cannot explain
# anything that happens within seconds:
#   - a modem offering the usual AT+CNMI=? (libgammu sets 2,1,0,2,0): a reply
#     announced by +CMTI is in {t}:inbound within 5 s and off the modem; a
#     status report stored and announced by +CDSI makes its message
#     `delivered` within 5 s;
#   - a modem that routes everything to the client (ds=1, mt=2): a reply
#     that comes whole as +CMT is stored, a 2-part message whose status
#     reports come as +CDS right after each part (before the worker has
#     recorded the references) becomes `delivered`; nothing is ever stored
#     on the modem;
#   - a modem that refuses AT+CNMI: said once at info, and replies are still
#     read by polling.
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

NSIM=0
sim_start() {   # name [cnmi capabilities | none]
    NSIM=$((NSIM + 1))
    "$EMULATORS/modem_sim" "$TEST_TMP/sim-$1" "35693803564382$NSIM" > "$TEST_TMP/sim-$1.out" 2>&1 &
    SIM_PID[$1]=$!
    wait_until 10 test -e "$TEST_TMP/sim-$1/ready" || fail "simulator $1 did not start"
    [ -z "${2:-}" ] || echo "cnmi $2" > "$TEST_TMP/sim-$1/ctl"
}
sim() { local s=$1; shift; echo "$*" > "$TEST_TMP/sim-$s/ctl"; }
conf() {   # file route sim poll_ms
    conf_base "$1" gw1
    cat >> "$1" <<CONF
routes = (
  { name = "$2"; driver = "gammu"; send_timeout_ms = 10000;
    gammu = { connection = "at"; device = "$TEST_TMP/sim-$3/tty"; smsc = "+8613800100500";
              poll_interval_ms = $4; }; }
);
CONF
}
R() { redis-cli -s "$REDIS_SOCK" "$@"; }
inbound_is() { [ "$(R XLEN '{t}:inbound')" -ge "$1" ]; }
last_text() { R XREVRANGE '{t}:inbound' + - COUNT 1 | awk 'p { print; exit } $0 == "text" { p = 1 }'; }
stored_is() { [ "$(cat "$TEST_TMP/sim-$1/stored")" = "$2" ]; }
reads() { grep -c "< AT+CMGL" "$TEST_TMP/sim-$1/sim.log"; }
# the gateway's first storage read after connecting is done
first_read_done() { [ "$(reads "$1")" -ge 1 ]; }
enqueue() {
    "$HERALD" -c "$C" enqueue --template case_stage_update --to "$1" --var name=李四 \
        --var "case_no=某检刑诉〔2026〕$2号" --var stage=审查起诉 --var stage_date=2026年11月27日 \
        --var office_phone=0571-88888888 --json | jget .id
}
status_is() { [ "$("$HERALD" -c "$C" status "$1" | jget .status)" = "$2" ]; }

# ---- +CMTI and +CDSI
sim_start n
C=$TEST_TMP/n.conf
conf "$C" modemN n 60000
gw_start gw1 "$C" || exit 1
wait_until 30 grep -q "\[modemN\] modem connected" "$TEST_TMP/gw1.log" || fail "modem N not connected"
grep -q "\[modemN\] modem announces new messages" "$TEST_TMP/gw1.log" || fail "indications not enabled: $(cat "$TEST_TMP/gw1.log")"
grep -q "< AT+CNMI=2,1,0,2,0" "$TEST_TMP/sim-n/sim.log" || fail "AT+CNMI not as expected: $(grep CNMI "$TEST_TMP/sim-n/sim.log")"
wait_until 10 first_read_done n || fail "no first storage read"
before=$(reads n)
sim n sms +8613900000021 fwd 1 "1 满意"
wait_until 5 inbound_is 1 || fail "a reply announced by +CMTI not stored within 5 s (reads: $before -> $(reads n))"
expect_eq "$(last_text)" "1 满意" "reply text"
grep -q '+CMTI: \\"SM\\"' "$TEST_TMP/sim-n/sim.log" || fail "the simulator sent no +CMTI"
wait_until 5 stored_is n 0 || fail "reply left on the modem"

id=$(enqueue 13900000022 22) || fail "enqueue"
wait_until 30 status_is "$id" sent || fail "not sent: $("$HERALD" -c "$C" status "$id")"
for mr in $("$HERALD" -c "$C" status "$id" | jget .refs | tr , ' '); do sim n report "$mr" 00; done
wait_until 5 status_is "$id" delivered || fail "a report announced by +CDSI did not make the message delivered within 5 s"
grep -q '+CDSI: \\"SM\\"' "$TEST_TMP/sim-n/sim.log" || fail "the simulator sent no +CDSI"
wait_until 5 stored_is n 0 || fail "status report left on the modem"
gw_stop gw1 || exit 1

# ---- +CMT and +CDS: nothing is stored on the modem
sim_start d "(0-2),(0,2),(0,2),(0,1),(0,1)"
C=$TEST_TMP/d.conf
conf "$C" modemD d 60000
gw_start gw1 "$C" || exit 1
wait_until 30 grep -q "\[modemD\] modem connected" "$TEST_TMP/gw1.log" || fail "modem D not connected"
grep -q "< AT+CNMI=2,2,0,1,0" "$TEST_TMP/sim-d/sim.log" || fail "AT+CNMI not as expected: $(grep CNMI "$TEST_TMP/sim-d/sim.log")"
wait_until 10 first_read_done d || fail "no first storage read"
sim d sms +8613900000023 fwd 1 "2 不满意"
wait_until 5 inbound_is 2 || fail "a reply that came as +CMT not stored within 5 s"
expect_eq "$(last_text)" "2 不满意" "reply text (+CMT)"
grep -q "+CMT: ," "$TEST_TMP/sim-d/sim.log" || fail "the simulator sent no +CMT"

# reports right after each part, before the worker recorded the references
sim d autoreport 00
id=$("$HERALD" -c "$C" enqueue --template rights_notice_victim --to 13900000024 --var name=张三 \
     --var "case_no=某检刑诉〔2026〕24号" --var accepted_on=2026年11月27日 \
     --var office=某市人民检察院 --var office_phone=0571-88888888 --json | jget .id) || fail "enqueue"
wait_until 30 status_is "$id" delivered || fail "+CDS reports did not make the message delivered: $("$HERALD" -c "$C" status "$id")"
n=$(grep -c "+CDS: " "$TEST_TMP/sim-d/sim.log")
[ "$n" -ge 3 ] || fail "the simulator sent $n +CDS"
expect_eq "$(R HGET '{t}:stats' report_unmatched:-:modemD)" "" "reports counted unmatched"
stored_is d 0 || fail "something was stored on modem D"
gw_stop gw1 || exit 1

# ---- a modem without indications: said once, polling carries on
sim_start x none
C=$TEST_TMP/x.conf
conf "$C" modemX x 500
gw_start gw1 "$C" || exit 1
wait_until 30 grep -q "\[modemX\] modem connected" "$TEST_TMP/gw1.log" || fail "modem X not connected"
grep -q " info  \[modemX\] modem does not announce new messages" "$TEST_TMP/gw1.log" \
    || fail "refusal not logged at info: $(grep modemX "$TEST_TMP/gw1.log")"
sim x sms +8613900000025 fwd 1 "3 基本满意"
wait_until 10 inbound_is 3 || fail "reply not read by polling"
expect_eq "$(last_text)" "3 基本满意" "reply text (polled)"
expect_eq "$(grep -c "modem does not announce" "$TEST_TMP/gw1.log")" 1 "refusal logged"
gw_stop gw1 || exit 1
echo "modem notify test passed"
