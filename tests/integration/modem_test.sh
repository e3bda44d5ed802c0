# modem_test.sh -- the gammu driver through libgammu's real AT driver
# (connection = at) against the modem simulator on a pty
# (tests/emulators/modem_sim.c), which decodes every PDU it receives:
#   - a 3-part Chinese notice goes out as UCS-2 with one concatenation
#     reference, the right recipient and text; each part's TP-MR is on the
#     record; status reports for the three parts make it `delivered`;
#   - a failed report for one part makes a message `failed`; a report that
#     matches nothing is kept and counted; +CMS ERROR 500 after the PDU is
#     a transient failure: retried, then sent;
#   - inbound: a 3-part reply delivered in reverse order is stored once,
#     whole; the same reply stored twice on the modem is recorded once; a
#     multipart reply split by a gateway restart is joined (its first part
#     waits in Redis, not on the SIM); nothing stays on the modem once
#     stored; kill -9 between storing and deleting, then a
#     restart: stored once;
#   - the modem takes a PDU and falls silent: the send is not reported
#     `sent` on faith, the modem is reconnected when it answers again, and
#     the message goes out (resend policy) with nothing stuck;
#   - it loses its network registration: nothing is sent until it is back;
#     `herald modems` shows it by IMEI with its state and counters.
set -u
. "$(dirname "$0")/../lib.sh"
redis_start "$TEST_TMP/redis" || exit 1
SIM=$TEST_TMP/sim
SIM_PID=
cleanup() { gw_stop_all; [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null; redis_stop; }
trap cleanup EXIT

"$EMULATORS/modem_sim" "$SIM" > "$TEST_TMP/sim.out" 2>&1 &
SIM_PID=$!
wait_until 10 test -e "$SIM/ready" || fail "the simulator did not start: $(cat "$TEST_TMP/sim.out")"
sim() { echo "$*" > "$SIM/ctl"; }

C=$TEST_TMP/h.conf
conf_base "$C" gw1
# a modem that is being reconnected fails sends transiently: give retries room
sed -i 's/^retry = .*/retry = { max_attempts = 30; backoff_base_ms = 200; backoff_max_ms = 1000; jitter_percent = 10; };/' "$C"
cat >> "$C" <<CONF
routes = (
  { name = "modem1"; driver = "gammu"; send_timeout_ms = 8000;
    gammu = { connection = "at"; device = "$SIM/tty"; smsc = "+8613800100500";
              poll_interval_ms = 300; reconnect_min_ms = 300; reconnect_max_ms = 2000;
              health_interval_ms = 500; }; }
);
CONF
H() { "$HERALD" -c "$C" "$@"; }
R() { redis-cli -s "$REDIS_SOCK" "$@"; }
status_is() { [ "$(H status "$1" | jget .status)" = "$2" ]; }
stored_is() { [ "$(cat "$SIM/stored")" = "$1" ]; }
V=(--var name=张三 --var "case_no=某检刑诉〔2026〕1号" --var accepted_on=2026年11月27日
   --var office=某市人民检察院 --var office_phone=0571-88888888)

gw_start gw1 "$C" || exit 1
wait_until 30 grep -q "\[modem1\] modem connected" "$TEST_TMP/gw1.log" || fail "modem not connected"

# ---- a 3-part Chinese notice, as the modem decoded it
out=$(H enqueue --template rights_notice_victim --to 13900000001 "${V[@]}" --json) || fail "enqueue: $out"
id=$(jget .id <<<"$out")
expect_eq "$(jget .parts <<<"$out")" 3 "parts counted at enqueue"
wait_until 30 status_is "$id" sent || fail "not sent: $(H status "$id")"
H status "$id" > "$TEST_TMP/rec.json"
text=$(jget .text < "$TEST_TMP/rec.json")
expect_eq "$(wc -l < "$SIM/sent.jsonl")" 3 "PDUs the modem received"
for i in 1 2 3; do
    line=$(sed -n "${i}p" "$SIM/sent.jsonl")
    expect_eq "$(jget .to <<<"$line")" "+8613900000001" "part $i recipient"
    expect_eq "$(jget .coding <<<"$line")" ucs2 "part $i coding"
    expect_eq "$(jget .total <<<"$line")" 3 "part $i total"
    expect_eq "$(jget .seq <<<"$line")" "$i" "part $i sequence"
    expect_eq "$(jget .srr <<<"$line")" 1 "part $i asks for a status report"
done
expect_eq "$(sed -n 1p "$SIM/sent.jsonl" | jget .ref)" "$(sed -n 3p "$SIM/sent.jsonl" | jget .ref)" "one concatenation reference"
joined=$(for i in 1 2 3; do sed -n "${i}p" "$SIM/sent.jsonl" | jget .text; done | tr -d '\n')
expect_eq "$joined" "$text" "text as the modem decoded it"
refs=$(for i in 1 2 3; do sed -n "${i}p" "$SIM/sent.jsonl" | jget .mr; done | paste -sd,)
expect_eq "$(jget .refs < "$TEST_TMP/rec.json")" "$refs" "references recorded per part"

# status reports for the three parts -> delivered
for mr in ${refs//,/ }; do sim report "$mr" 00; done
wait_until 20 status_is "$id" delivered || fail "not delivered after 3 reports: $(H status "$id")"
H status "$id" > "$TEST_TMP/rec.json"
grep -q '"part 3/3 delivered' "$TEST_TMP/rec.json" || fail "no timeline entry for the reports: $(cat "$TEST_TMP/rec.json")"
wait_until 10 stored_is 0 || fail "status reports left on the modem: $(cat "$SIM/stored")"

# one failed part -> failed
out=$(H enqueue --template rights_notice_victim --to 13900000002 "${V[@]}" --json) || fail "enqueue 2: $out"
id2=$(jget .id <<<"$out")
wait_until 30 status_is "$id2" sent || fail "second not sent: $(H status "$id2")"
refs2=$(H status "$id2" | jget .refs)
set -- ${refs2//,/ }
sim report "$1" 00
sim report "$2" 46
wait_until 20 status_is "$id2" failed || fail "not failed after a failed report: $(H status "$id2")"

# a report nobody sent: kept and counted, not dropped
sim report 200 00
unmatched_is() { [ "$(R HGET '{t}:stats' report_unmatched:-:modem1)" = "$1" ]; }
wait_until 20 unmatched_is 1 \
    || fail "unmatched report not counted"
expect_eq "$(R XLEN '{t}:reports:unmatched')" 1 "unmatched reports kept"

# +CMS ERROR 500 after the PDU: not sent, retried, then sent
sim cms_after 500 1
out=$(H enqueue --template case_stage_update --to 13900000005 --var name=李四 --var "case_no=某检刑诉〔2026〕5号" \
      --var stage=审查起诉 --var stage_date=2026年11月27日 --var office_phone=0571-88888888 --json) || fail "enqueue 5: $out"
id5=$(jget .id <<<"$out")
wait_until 30 status_is "$id5" sent || fail "not sent after +CMS ERROR 500: $(H status "$id5")"
H status "$id5" | grep -q "+CMS ERROR 500" || fail "the +CMS ERROR is not in the timeline: $(H status "$id5")"

# ---- inbound
LONG="您好，关于某检刑诉〔2026〕1号案件的评议：执法程序满意，执法能力满意，执法文明基本满意，廉洁执法满意。另外想咨询一下案件目前的办理进度以及下一步需要我配合做些什么，谢谢。我的联系电话不变，如有需要请随时与我联系。再次感谢检察院的工作人员耐心细致的解答，也希望今后能继续通过短信及时了解案件的办理情况。祝工作顺利。"
[ ${#LONG} -gt 134 ] || fail "the test reply must take 3 parts (${#LONG} characters)"
inbound_count() { R XLEN '{t}:inbound'; }
inbound_is() { [ "$(inbound_count)" -ge "$1" ]; }
last_text() { R XREVRANGE '{t}:inbound' + - COUNT 1 | awk 'p { print; exit } $0 == "text" { p = 1 }'; }
sim sms +8613900000006 rev 1 "$LONG"
wait_until 20 inbound_is 1 || fail "reversed 3-part reply not stored"
got=$(last_text)
expect_eq "$got" "$LONG" "reversed reply joined"
wait_until 10 stored_is 0 || fail "reply parts left on the modem"

# the same reply stored twice on the modem (single and multipart): once each
sim sms +8613900000007 fwd 2 "1121 满意"
sim sms +8613900000008 fwd 2 "$LONG"
wait_until 20 inbound_is 3 || fail "duplicated replies not stored"
wait_until 10 stored_is 0 || fail "copies left on the modem"
sleep 1
expect_eq "$(inbound_count)" 3 "copies stored once"

# a multipart reply split by a gateway restart
sim part +8613900000009 77 3 3 "第三部分"
wait_until 20 grep -q "received part 3 of 3 from 139\*\*\*\*0009" "$TEST_TMP/gw1.log" || fail "part 3 not taken"
wait_until 10 stored_is 0 || fail "part 3 left on the modem"
gw_stop gw1 || exit 1
expect_eq "$(inbound_count)" 3 "an incomplete reply is not stored"
expect_eq "$(R ZCARD '{t}:inparts:due')" 1 "the part waits in Redis"
sim part +8613900000009 77 3 1 "第一部分"
gw_start gw1 "$C" || exit 1
sim part +8613900000009 77 3 2 "第二部分"
wait_until 30 inbound_is 4 || fail "reply split by a restart not stored"
got=$(last_text)
expect_eq "$got" "第一部分第二部分第三部分" "reply split by a restart"
wait_until 10 stored_is 0 || fail "parts left on the modem after the restart"

# kill -9 after the reply is in Redis, before the modem deleted it: after a
# restart it is read again, and stored once
sim hang_on_delete
sim sms +8613900000010 fwd 1 "2 不满意"
wait_until 20 inbound_is 5 || fail "reply before the kill not stored"
wait_until 20 grep -q "delete ignored, now silent" "$SIM/sim.log" || fail "no delete attempted"
gw_kill9 gw1
expect_eq "$(cat "$SIM/stored")" 1 "the reply is still on the modem after the kill"
sim resume
gw_start gw1 "$C" || exit 1
wait_until 30 stored_is 0 || fail "reply not deleted after the restart"
wait_until 10 grep -q "already had a message from 139\*\*\*\*0010" "$TEST_TMP/gw1.log" || fail "re-read not recognised"
expect_eq "$(inbound_count)" 5 "reply stored once across kill -9"
expect_eq "$(last_text)" "2 不满意" "reply text"

# ---- the modem takes a PDU and falls silent
sim hang_after_pdu
before=$(wc -l < "$SIM/sent.jsonl")
out=$(H enqueue --template case_stage_update --to 13900000003 --var name=李四 --var "case_no=某检刑诉〔2026〕2号" \
      --var stage=审查起诉 --var stage_date=2026年11月27日 --var office_phone=0571-88888888 --json) || fail "enqueue 3: $out"
id3=$(jget .id <<<"$out")
wait_until 30 grep -q "no answer from the modem after the PDU" "$TEST_TMP/gw1.log" || fail "silence not noticed"
status_is "$id3" sent && fail "a message was reported sent by a silent modem"
sim resume
wait_until 60 status_is "$id3" sent || fail "not sent after the modem came back: $(H status "$id3")"
grep -q "modem link lost; reconnecting\|modem connection failed" "$TEST_TMP/gw1.log" || fail "no reconnection logged"
after=$(wc -l < "$SIM/sent.jsonl")
[ "$after" -gt "$before" ] || fail "nothing recorded by the modem after it came back"
H queue stats > "$TEST_TMP/stats.json"
expect_eq "$(jget .lanes.urgent.depth < "$TEST_TMP/stats.json")" 0 "nothing stuck in the lane"

# ---- lost network registration: nothing is sent until it is back
modems_has() { H modems | grep -q "$1"; }
wait_until 10 modems_has "^356938035643809 .*modem1 .*yes .*connected .*CHINA MOBILE" \
    || fail "herald modems: $(H modems)"
sim noreg
wait_until 10 grep -q "modem lost its network registration" "$TEST_TMP/gw1.log" || fail "lost registration not noticed"
wait_until 10 modems_has "modem1 .*no .*no network registration" || fail "herald modems: $(H modems)"
before=$(wc -l < "$SIM/sent.jsonl")
out=$(H enqueue --template rights_notice_victim --to 13900000004 "${V[@]}" --json) || fail "enqueue 4: $out"
id4=$(jget .id <<<"$out")
wait_until 10 grep -q "failed $id4 .*no network registration" "$TEST_TMP/gw1.log" || fail "sent without registration?"
expect_eq "$(wc -l < "$SIM/sent.jsonl")" "$before" "PDUs sent without registration"
sim reg
wait_until 30 status_is "$id4" sent || fail "not sent once registered again: $(H status "$id4")"
# (published every 2 s: wait for the send above to show)
modems_sent_is() { H modems --json > "$TEST_TMP/modems.json" && [ "$(jget .356938035643809.sent < "$TEST_TMP/modems.json")" = "$1" ]; }
wait_until 10 modems_sent_is 2 || fail "herald modems: sent counter: $(cat "$TEST_TMP/modems.json")"
# counters since this gateway started (after the kill above): the reply read
# again; the messages of the silence and registration tests
expect_eq "$(jget .356938035643809.received < "$TEST_TMP/modems.json")" 1 "herald modems: received counter"
[ "$(jget .356938035643809.failed < "$TEST_TMP/modems.json")" -ge 2 ] || fail "herald modems: failed counter"
expect_eq "$(jget .356938035643809.imsi < "$TEST_TMP/modems.json")" 460001234567890 "herald modems: IMSI"

gw_stop gw1 || exit 1
echo "modem test passed"
