# watchdog_test.sh -- a driver that never returns from a send (a sink that
# takes ten minutes) holds the only worker; the watchdog notices that the
# worker made no progress for gateway.watchdog_ms, logs it, and replaces it,
# so urgent notices keep going out; SIGTERM still stops the gateway in
# bounded time, and the hung message stays `sending` (the lane policy
# applies once its lease runs out), never lost and never marked sent.
set -u
. "$(dirname "$0")/../lib.sh"
redis_start "$TEST_TMP/redis" || exit 1
trap 'gw_stop_all; redis_stop' EXIT
C=$TEST_TMP/h.conf
conf_base "$C" dog "watchdog_ms = 2000;"
sed -i 's/  workers = 2;/  workers = 1;/' "$C"
cat >> "$C" <<CONF
routes = (
  { name = "hang"; driver = "sink"; families = [ "bulletin" ]; sink = { latency_ms = 600000; }; },
  { name = "ok"; driver = "sink"; families = [ "rights_notice", "case_stage", "survey" ];
    sink = { file = "$TEST_TMP/sink.jsonl"; }; }
);
CONF
H() { "$HERALD" -c "$C" "$@"; }
gw_start g "$C" || exit 1
stuck=$(H enqueue --template bulletin_fallback --to 13700000001 --var title=检察手机报 --var issue_no=38 \
        --var link=http://127.0.0.1/38 --json | jget .id)
wait_until 10 sh -c "$HERALD -c '$C' status $stuck | jget .status | grep -qx sending" || fail "the hung send never began"
ids=()
for i in 1 2 3; do
    ids+=("$(H enqueue --template case_stage_update --to "1380000000$i" --var name=李四 --var "case_no=案$i" \
             --var stage=审查起诉 --var stage_date=2026年11月27日 --var office_phone=0571-88888888 --json | jget .id)")
done
for id in "${ids[@]}"; do
    wait_until 20 grep -q "\"$id\"" "$TEST_TMP/sink.jsonl" || fail "urgent $id not sent while a worker hangs"
done
grep -q "\[watchdog\] worker dog/w0 made no progress for [0-9]* s (last route hang): replaced by dog/w0.1" "$TEST_TMP/g.log" \
    || fail "the watchdog did not log the replacement: $(grep watchdog "$TEST_TMP/g.log")"
t0=$(date +%s)
gw_stop g || fail "gateway did not stop with a hung worker"
echo "stopped in $(( $(date +%s) - t0 )) s with a hung worker"
expect_eq "$(H status "$stuck" | jget .status)" sending "the hung message"
echo "watchdog_test: ok"
