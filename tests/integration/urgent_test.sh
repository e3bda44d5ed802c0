# urgent_test.sh -- an urgent notice enqueued behind a 20,000-message bulk
# batch goes out within a few seconds, while the bulk batch is still waiting.
set -u
. "$(dirname "$0")/../lib.sh"
redis_start "$TEST_TMP/redis" || exit 1
trap 'gw_stop_all; redis_stop' EXIT
C=$TEST_TMP/h.conf
conf_base "$C" prio
cat >> "$C" <<CONF
routes = (
  { name = "bulk-sink"; driver = "sink"; families = [ "survey", "bulletin" ]; sink = { latency_ms = 2; }; },
  { name = "urgent-sink"; driver = "sink"; families = [ "rights_notice", "case_stage" ];
    sink = { file = "$TEST_TMP/urgent.jsonl"; }; }
);
CONF
H() { "$HERALD" -c "$C" "$@"; }
# (seq writes the 20,000 lines itself: a subshell a line took 40-100 s)
seq -f '{"template":"evaluation_survey","to":"135%08g","vars":{"period":"2026年11月"}}' 1 20000 \
    > "$TEST_TMP/bulk.jsonl"
H enqueue --batch "$TEST_TMP/bulk.jsonl" > /dev/null || fail "bulk enqueue"
gw_start g "$C" || exit 1
sleep 1     # the workers are busy with bulk
t0=$(date +%s%N)
u=$(H enqueue --template rights_notice_suspect --to 13800138000 --var name=张三 --var case_no=案1 \
     --var accepted_on=2026年11月27日 --var office=某市人民检察院 --var office_phone=0571-88888888 --json | jget .id)
wait_until 30 sh -c "grep -q '\"$u\"' '$TEST_TMP/urgent.jsonl' 2>/dev/null" || fail "urgent notice not sent in 30 s"
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
depth=$(H queue stats | jget .lanes.bulk.depth)
echo "urgent notice sent ${ms} ms after enqueue; bulk still waiting: $depth"
[ "$ms" -le 3000 ] || fail "urgent notice took ${ms} ms behind the bulk batch"
[ "$depth" -gt 1000 ] || fail "bulk batch drained already ($depth): the test shows nothing"
gw_stop g || exit 1
echo "urgent_test: ok"
