# crash_test.sh -- kill -9 of a gateway in the middle of its work, then a
# restart: nothing is lost; a message caught `sending` follows its lane's
# policy (urgent: resend; bulk: hold as `uncertain`, never resent).
set -u
. "$(dirname "$0")/../lib.sh"
redis_start "$TEST_TMP/redis" || exit 1
trap 'gw_stop_all; redis_stop' EXIT
C=$TEST_TMP/h.conf
mkconf() {   # latency of the sink in ms
    conf_base "$C" crashy
    cat >> "$C" <<CONF
routes = ( { name = "sink1"; driver = "sink"; sink = { file = "$TEST_TMP/sink.jsonl"; latency_ms = $1; }; } );
CONF
}
H() { "$HERALD" -c "$C" "$@"; }
V=(--var name=张三 --var "case_no=某检刑诉〔2026〕7号" --var accepted_on=2026年11月27日
   --var office=某市人民检察院 --var office_phone=0571-88888888)

# ---- 1. one urgent and one bulk message caught inside the send
mkconf 5000
gw_start g1 "$C" || exit 1
u=$(H enqueue --template rights_notice_suspect --to 13800000001 "${V[@]}" --json | jget .id)
b=$(H enqueue --template evaluation_survey --to 13800000002 --var period=2026年11月 --json | jget .id)
wait_until 10 sh -c "$HERALD -c '$C' status $u | jget .status | grep -qx sending && $HERALD -c '$C' status $b | jget .status | grep -qx sending" \
    || fail "messages never reached sending"
gw_kill9 g1
mkconf 0
gw_start g2 "$C" || exit 1
wait_until 20 sh -c "$HERALD -c '$C' status $u | jget .status | grep -qx sent" || fail "urgent message not resent: $(H status "$u")"
H status "$u" | grep -q "perhaps sent" || fail "the resend is not explained in the timeline"
wait_until 10 sh -c "$HERALD -c '$C' status $b | jget .status | grep -qx uncertain" || fail "bulk message not held: $(H status "$b")"
expect_eq "$(H queue stats | jget .uncertain)" 1 "uncertain count"
sleep 1
grep -q "\"$b\"" "$TEST_TMP/sink.jsonl" && fail "held bulk message was sent"
gw_stop g2 || exit 1

# ---- 2. a batch, killed at random moments, restarted each time
mkconf 15
: > "$TEST_TMP/batch.jsonl"
for i in $(seq 1 300); do
    if [ $((i % 2)) -eq 0 ]; then
        echo "{\"template\":\"case_stage_update\",\"to\":\"137$(printf %08d $i)\",\"vars\":{\"name\":\"李$i\",\"case_no\":\"案$i\",\"stage\":\"审查起诉\",\"stage_date\":\"2026年11月27日\",\"office_phone\":\"0571-88888888\"}}"
    else
        echo "{\"template\":\"evaluation_survey\",\"to\":\"137$(printf %08d $i)\",\"vars\":{\"period\":\"2026年11月\"}}"
    fi
done > "$TEST_TMP/batch.jsonl"
H enqueue --batch "$TEST_TMP/batch.jsonl" > "$TEST_TMP/ids.jsonl" || fail "batch enqueue"
for k in 1 2 3; do
    gw_start "k$k" "$C" || exit 1
    sleep 0.$((RANDOM % 7 + 3))
    gw_kill9 "k$k"
done
gw_start final "$C" || exit 1
wait_until 120 sh -c "s=\$($HERALD -c '$C' queue stats); [ \$(echo \"\$s\" | jget .lanes.urgent.depth) -eq 0 ] && [ \$(echo \"\$s\" | jget .lanes.bulk.depth) -eq 0 ] && [ \$(echo \"\$s\" | jget .scheduled) -eq 0 ]" \
    || fail "queue never drained: $(H queue stats)"
gw_stop final || exit 1

res=$(audit "$TEST_TMP/ids.jsonl" "$TEST_TMP/sink.jsonl" t) || exit 1
held=$(awk '{print $4}' <<<"$res")
expect_eq "$(H queue stats | jget .uncertain)" $((held + 1)) "uncertain count (with the one of part 1)"
grep -q "^sent 0 \| dead [1-9]" <<<"$res" && fail "accounting: $res"
echo "crash_test: ok ($res)"
