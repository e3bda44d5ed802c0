# messages_test.sh -- through a running gateway: a message sent once with its
# text and parts; bad input refused with exit 2 and nothing queued; the
# idempotency key (given and derived); a scheduled send; retry then
# dead-letter through routes that fail on purpose; `herald dead retry`.
set -u
. "$(dirname "$0")/../lib.sh"
redis_start "$TEST_TMP/redis" || exit 1
trap 'gw_stop_all; redis_stop' EXIT
C=$TEST_TMP/h.conf
conf_base "$C" gw1
cat >> "$C" <<CONF
routes = (
  { name = "good"; driver = "sink"; families = [ "rights_notice", "survey" ];
    sink = { file = "$TEST_TMP/sink.jsonl"; }; },
  { name = "flaky"; driver = "sink"; families = [ "bulletin" ]; sink = { fail = "transient"; }; },
  { name = "refuser"; driver = "sink"; families = [ "case_stage" ]; sink = { fail = "permanent"; }; }
);
CONF
H() { "$HERALD" -c "$C" "$@"; }
V=(--var name=张三 --var "case_no=某检刑诉〔2026〕1号" --var accepted_on=2026年11月27日
   --var office=某市人民检察院 --var office_phone=0571-88888888)

# ---- bad input: exit 2, the reason, nothing queued
H enqueue --template no_such --to 13800138000 "${V[@]}" 2>"$TEST_TMP/e"; expect_eq $? 2 "unknown template exit"
grep -q "unknown template 'no_such'" "$TEST_TMP/e" || fail "unknown template message: $(cat "$TEST_TMP/e")"
H enqueue --template rights_notice_suspect --to 12345 "${V[@]}" 2>"$TEST_TMP/e"; expect_eq $? 2 "bad number exit"
grep -q "to: " "$TEST_TMP/e" || fail "bad number message: $(cat "$TEST_TMP/e")"
H enqueue --template rights_notice_suspect --to 13800138000 --var name=张三 2>"$TEST_TMP/e"; expect_eq $? 2 "missing var exit"
grep -q "case_no" "$TEST_TMP/e" || fail "missing var message: $(cat "$TEST_TMP/e")"
H enqueue --template rights_notice_suspect --to 13800138000 "${V[@]}" --var nmae=x 2>"$TEST_TMP/e"; expect_eq $? 2 "unknown var exit"
grep -q "nmae" "$TEST_TMP/e" || fail "unknown var message: $(cat "$TEST_TMP/e")"
H enqueue --template rights_notice_suspect --to 13800138000 "${V[@]}" --at tomorrow 2>"$TEST_TMP/e"; expect_eq $? 2 "bad time exit"
H queue stats > "$TEST_TMP/s.json"
expect_eq "$(jget .lanes.urgent.depth < "$TEST_TMP/s.json")" 0 "urgent depth after refused input"
expect_eq "$(jget .scheduled < "$TEST_TMP/s.json")" 0 "scheduled after refused input"

# ---- one message, sent once, right text and parts
gw_start gw1 "$C" || exit 1
out=$(H enqueue --template rights_notice_suspect --to "+86 138-0013-8000" "${V[@]}" --json) || fail "enqueue: $out"
id=$(jget .id <<<"$out"); parts=$(jget .parts <<<"$out")
expect_eq "$(jget .encoding <<<"$out")" ucs2 "encoding"
H render --template rights_notice_suspect "${V[@]}" --json > "$TEST_TMP/r.json"
expect_eq "$parts" "$(jget .parts < "$TEST_TMP/r.json")" "parts vs render"
wait_until 20 sh -c "grep -q '\"$id\"' '$TEST_TMP/sink.jsonl' 2>/dev/null" || fail "message $id not sent"
wait_until 10 sh -c "$HERALD -c '$C' status $id | jget .status | grep -qx sent" || fail "status of $id not sent"
H status "$id" > "$TEST_TMP/st.json"
expect_eq "$(jget .to < "$TEST_TMP/st.json")" "+8613800138000" "canonical number"
expect_eq "$(jget .route < "$TEST_TMP/st.json")" good "route"
expect_eq "$(jget .text < "$TEST_TMP/st.json")" "$(jget .text < "$TEST_TMP/r.json")" "recorded text"
grep "\"$id\"" "$TEST_TMP/sink.jsonl" | jget .text > "$TEST_TMP/sent.txt"
expect_eq "$(cat "$TEST_TMP/sent.txt")" "$(jget .text < "$TEST_TMP/r.json")" "text the route got"
case "$(cat "$TEST_TMP/sent.txt")" in "【XX市人民检察院】"*) ;; *) fail "signature missing";; esac
expect_eq "$(jget .timeline.# < "$TEST_TMP/st.json")" 3 "timeline length (queued, sending, sent)"

# ---- idempotency: the same key answers the first id and sends nothing new
k1=$(H enqueue --template rights_notice_suspect --to 13900000001 "${V[@]}" --key case-1-notice --json | jget .id)
k2=$(H enqueue --template rights_notice_suspect --to 13900000001 "${V[@]}" --key case-1-notice --json)
expect_eq "$(jget .id <<<"$k2")" "$k1" "same key, same id"
expect_eq "$(jget .duplicate <<<"$k2")" true "duplicate flag"
d1=$(H enqueue --template rights_notice_suspect --to 13900000002 "${V[@]}" --json | jget .id)
d2=$(H enqueue --template rights_notice_suspect --to 13900000002 "${V[@]}" --json | jget .id)
expect_eq "$d2" "$d1" "derived key: same template, number and variables"
d3=$(H enqueue --template rights_notice_suspect --to 13900000002 "${V[@]/张三/李四}" --json | jget .id)
[ "$d3" != "$d1" ] || fail "different variables must be a new message"
wait_until 20 sh -c "[ \$(grep -c '\"$k1\"' '$TEST_TMP/sink.jsonl') -ge 1 ] && grep -q '\"$d3\"' '$TEST_TMP/sink.jsonl'" || fail "keyed messages not sent"
expect_eq "$(grep -c "\"$k1\"" "$TEST_TMP/sink.jsonl")" 1 "keyed message sent once"
expect_eq "$(grep -c "\"$d1\"" "$TEST_TMP/sink.jsonl")" 1 "derived-key message sent once"

# ---- scheduled send: waits, then goes
s=$(H enqueue --template evaluation_survey --to 13900000003 --var period=2026年11月 --at +3s --json)
sid=$(jget .id <<<"$s"); due=$(jget .send_at <<<"$s")
expect_eq "$(field "$C" "$sid" .status)" queued "scheduled message status"
sleep 1
grep -q "\"$sid\"" "$TEST_TMP/sink.jsonl" && fail "scheduled message sent early"
wait_until 15 sh -c "grep -q '\"$sid\"' '$TEST_TMP/sink.jsonl'" || fail "scheduled message never sent"
sent_at=$(grep "\"$sid\"" "$TEST_TMP/sink.jsonl" | jget .at)
[ "$sent_at" -ge "$due" ] || fail "scheduled message sent at $sent_at before $due"
grep -q "回TD退订" <<<"$(field "$C" "$sid" .text)" || fail "bulk family without opt-out line"

# ---- transient failures: retried with backoff, then dead after max_attempts (3)
b=$(H enqueue --template bulletin_fallback --to 13900000004 --var title=检察手机报 --var issue_no=38 --var link=http://127.0.0.1/b/38 --json | jget .id)
wait_until 20 sh -c "$HERALD -c '$C' status $b | jget .status | grep -qx dead" || fail "flaky message not dead: $(H status "$b")"
expect_eq "$(field "$C" "$b" .attempts)" 3 "attempts before dead"
H status "$b" | grep -c '"status": "sending"' | grep -qx 3 || fail "timeline must show 3 attempts"
# ---- permanent failure: dead at once
p=$(H enqueue --template case_stage_update --to 13900000005 --var name=张三 --var "case_no=某检刑诉〔2026〕1号" \
      --var stage=审查起诉 --var stage_date=2026年11月27日 --var office_phone=0571-88888888 --json | jget .id)
wait_until 20 sh -c "$HERALD -c '$C' status $p | jget .status | grep -qx dead" || fail "refused message not dead"
expect_eq "$(field "$C" "$p" .attempts)" 1 "a permanent failure is not retried"
H dead list > "$TEST_TMP/dead.json"
grep -q "$b" "$TEST_TMP/dead.json" && grep -q "$p" "$TEST_TMP/dead.json" || fail "dead list: $(cat "$TEST_TMP/dead.json")"
H dead retry "$p" >/dev/null || fail "dead retry"
wait_until 20 sh -c "$HERALD -c '$C' status $p | grep -q 'retried by operator'" || fail "retry not in timeline"
H dead retry "$id" 2>/dev/null; expect_eq $? 2 "retry of a message that is not dead"
H status no-such-id 2>/dev/null; expect_eq $? 2 "status of an unknown id"

gw_stop gw1 || exit 1
grep -q "ERROR" "$TEST_TMP/gw1.log" && fail "errors in the gateway log: $(grep ERROR "$TEST_TMP/gw1.log")"
# personal data: numbers masked, no texts above debug
grep -q "13800138000\|13900000001" "$TEST_TMP/gw1.log" && fail "unmasked number in the log"
grep -q "犯罪嫌疑人\|权利" "$TEST_TMP/gw1.log" && fail "message text in an info log"
echo "messages_test: ok"
