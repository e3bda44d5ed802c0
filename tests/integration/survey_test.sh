# survey_test.sh -- the monthly evaluation survey end to end, on a real
# redis-server, real gateway processes and libgammu's dummy phone:
#   - contacts imported from a CSV with bad rows (refused, the rest kept);
#   - a gateway down at 10:00 and back at 14:00 catches up; one back after
#     the catch-up hour waits for a person, who runs the period by hand;
#   - two gateways at 10:00 on the 23rd (an injected clock) race for the
#     period: exactly one batch, each survey sent once; a restart builds
#     nothing new;
#   - replies through the inbound stream and through the dummy phone's inbox
#     (a two-part Chinese reply whose parts arrive in reverse order) are
#     parsed and linked to their surveys; a second reply updates the answer;
#   - opt-out (TD) is honoured by bulk families and not by legal notices;
#     opting back in; a reply after the window goes to the latest message;
#   - the report's figures, checked number by number; CSV and HTML written.
set -u
. "$(dirname "$0")/../lib.sh"
redis_start "$TEST_TMP/redis" || exit 1
trap 'gw_stop_all; redis_stop' EXIT
R() { redis-cli -s "$REDIS_SOCK" "$@"; }
PHONE=$TEST_TMP/phone

for g in a b c; do
    conf_base "$TEST_TMP/$g.conf" "gw-$g"
    cat >> "$TEST_TMP/$g.conf" <<CONF
survey = { skip_recent_days = 5; ack_text = "已收到您的评议，感谢您的监督！"; };
routes = (
  { name = "sink-$g"; driver = "sink"; families = [ "rights_notice", "survey", "bulletin" ];
    sink = { file = "$TEST_TMP/sink.jsonl"; }; }
CONF
    if [ $g = a ]; then
        cat >> "$TEST_TMP/$g.conf" <<CONF
  , { name = "modem-a"; driver = "gammu"; families = [ "case_stage" ];
    gammu = { model = "dummy"; connection = "none"; device = "$PHONE"; poll_interval_ms = 200; }; }
CONF
    fi
    echo ");" >> "$TEST_TMP/$g.conf"
done
A="$HERALD -c $TEST_TMP/a.conf"

# ---- a bad survey setting names its line and key
printf 'survey = { timezone = "Mars/Olympus"; };\nroutes = ( { name = "s"; driver = "sink"; } );\n' > "$TEST_TMP/bad.conf"
"$HERALD" -c "$TEST_TMP/bad.conf" config check 2>"$TEST_TMP/bad.out"; expect_eq $? 2 "bad timezone exit"
grep -q "bad.conf:1: survey.timezone: unknown time zone 'Mars/Olympus'" "$TEST_TMP/bad.out" || fail "bad timezone: $(cat "$TEST_TMP/bad.out")"

# ---- contacts: a CSV with bad rows
cat > "$TEST_TMP/contacts.csv" <<'CSV'
phone,role,case_no,department,prosecutor,date
13900000001,party,A-1,刑检一部,张三,2026-11-02
13900000002,lawyer,A-2,刑检一部,张三,2026-10-23
13900000003,witness,A-3,刑检一部,李四,2026-11-05
13900000004,当事人,A-4,刑检二部,李四,2026-11-06
13900000005,party,A-5,刑检二部,王五,2026/11/07
13900000006,辩护律师,"A-6, 附带民事",刑检二部,王五,20261108
13900000007,party,A-7,刑检二部,王五,2026-11-09
13900000008,party,A-8,刑检一部,张三,2026-11-22
13900000001,party,A-9,刑检一部,张三,2026-11-10
12345,party,B-1,刑检一部,张三,2026-11-01
13900000020,judge,B-2,刑检一部,张三,2026-11-01
13900000021,party,,刑检一部,张三,2026-11-01
13900000022,party,B-4,刑检一部,张三,2026-11-31
13900000023,party,B-5,刑检一部
"13900000024,party,B-6,刑检一部,张三,2026-11-01
13900000009,party,A-10,刑检一部,张三,2026-11-23
13900000010,party,O-1,刑检二部,王五,2026-10-01
13900000011,party,O-2,刑检二部,王五,2026-10-20
13900000011,party,A-11,刑检二部,王五,2026-11-11
CSV
$A contacts import "$TEST_TMP/contacts.csv" > "$TEST_TMP/import.out"
expect_eq $? 2 "import with refused rows exits 2"
grep -q 'contacts.csv:11: refused: phone: not a Chinese mobile number' "$TEST_TMP/import.out" || fail "row 11: $(cat "$TEST_TMP/import.out")"
grep -q "contacts.csv:12: refused: role: 'judge'" "$TEST_TMP/import.out" || fail "row 12"
grep -q 'contacts.csv:13: refused: case_no: missing' "$TEST_TMP/import.out" || fail "row 13"
grep -q "contacts.csv:14: refused: date: '2026-11-31'" "$TEST_TMP/import.out" || fail "row 14"
grep -q 'contacts.csv:15: refused: 4 fields, the header has 6' "$TEST_TMP/import.out" || fail "row 15"
grep -q 'contacts.csv:16: refused: unterminated quote' "$TEST_TMP/import.out" || fail "row 16"
grep -q '^19 rows: 13 accepted (13 new, 0 updated), 6 refused$' "$TEST_TMP/import.out" || fail "summary: $(tail -1 "$TEST_TMP/import.out")"
expect_eq "$($A contacts list | jget .#)" 13 "contacts stored"
expect_eq "$($A contacts list --from 2026-11-08 --to 2026-11-08 | jget .0.case_no)" "A-6, 附带民事" "quoted case number"
# a CSV saved by a spreadsheet on Chinese Windows is GBK
printf '号码,角色,案号,部门,承办检察官,日期\n13900000030,当事人,G-1,刑检三部,赵六,2026-12-01\n' | iconv -f UTF-8 -t GBK > "$TEST_TMP/gbk.csv"
$A contacts import "$TEST_TMP/gbk.csv" > "$TEST_TMP/gbk.out" 2>&1 || fail "GBK import: $(cat "$TEST_TMP/gbk.out")"
grep -q 'read as GB18030' "$TEST_TMP/gbk.out" || fail "GBK not noticed"
expect_eq "$($A contacts list --from 2026-12-01 --to 2026-12-01 | jget .0.department)" 刑检三部 "GBK department"
$A contacts add --phone 13900000012 --role witness --case C-1 --date 2026-11-12 >/dev/null || fail "contacts add"
$A contacts add --phone 13900000012 --role bishop --case C-1 --date 2026-11-12 2>"$TEST_TMP/add.err"
expect_eq $? 2 "contacts add with a bad role"
grep -q "role: 'bishop'" "$TEST_TMP/add.err" || fail "bad role not named"
$A optout add 13900000007 || fail "optout add"
$A optout add 13900000012 || fail "optout add"

# ---- a gateway down at 10:00 on the 23rd that is back at 14:00 catches up,
# spreading the batch over what is left of the window
HERALD_SURVEY_CLOCK=2026-09-23T14:00:00+08:00 gw_start c "$TEST_TMP/c.conf" || exit 1
wait_until 20 grep -q "batch 2026-09 built by gw-c" "$TEST_TMP/c.log" || fail "no catch-up at 14:00: $(cat "$TEST_TMP/c.log")"
gw_stop c || exit 1
$A survey status --period 2026-09 > "$TEST_TMP/sep.json" || fail "September status"
expect_eq "$(jget .summary.window_start < "$TEST_TMP/sep.json")" "2026-09-23 14:00 +08:00" "catch-up window start"
expect_eq "$(jget .summary.window_end < "$TEST_TMP/sep.json")" "2026-09-23 16:00 +08:00" "catch-up window end"
expect_eq "$(jget .summary.batch < "$TEST_TMP/sep.json")" 0 "nobody met in September"

# ---- a gateway back after the catch-up hour of the October run waits for a person
HERALD_SURVEY_CLOCK=2026-10-23T17:00:00+08:00 gw_start c "$TEST_TMP/c.conf" || exit 1
wait_until 20 grep -q "the survey batch of 2026-10 was due at 2026-10-23 10:00 +08:00 and no gateway built it before 2026-10-23 16:00 +08:00" "$TEST_TMP/c.log" \
    || fail "no missed-run warning: $(cat "$TEST_TMP/c.log")"
gw_stop c || exit 1
$A survey status --period 2026-10 2>/dev/null; expect_eq $? 2 "no October run yet"
# the plan before the day, then the person's run (in the evening of Nov 20:
# the batch goes out in the next day's window)
HERALD_SURVEY_CLOCK=2026-11-20T12:00:00+08:00 $A survey plan --period 2026-11 --json > "$TEST_TMP/plan.json" || fail "plan"
expect_eq "$(jget .batch < "$TEST_TMP/plan.json")" 8 "planned batch before the October run"
expect_eq "$(jget .window_start < "$TEST_TMP/plan.json")" "2026-11-23 10:00 +08:00" "planned window"
HERALD_SURVEY_CLOCK=2026-11-20T19:00:00+08:00 $A survey run --period 2026-10 --dry-run --json > "$TEST_TMP/dry.json" || fail "dry run"
expect_eq "$(jget .batch < "$TEST_TMP/dry.json")" 2 "October dry run"
expect_eq "$(R EXISTS '{t}:survey:run:2026-10')" 0 "a dry run claims nothing"
HERALD_SURVEY_CLOCK=2026-11-20T19:00:00+08:00 $A survey run --period 2026-10 --json > "$TEST_TMP/oct.json" || fail "October run by hand"
expect_eq "$(jget .batch < "$TEST_TMP/oct.json")" 2 "October batch"
expect_eq "$(jget .window_start < "$TEST_TMP/oct.json")" "2026-11-21 10:00 +08:00" "October window (next day)"
HERALD_SURVEY_CLOCK=2026-11-20T19:00:00+08:00 $A survey run --period 2026-10 2>/dev/null; expect_eq $? 2 "second run of a period"

# ---- two gateways at 10:00 on the 23rd race for November
export HERALD_SURVEY_CLOCK=2026-11-23T10:00:00+08:00
gw_start a "$TEST_TMP/a.conf" || exit 1
gw_start b "$TEST_TMP/b.conf" || exit 1
wait_until 30 sh -c "$A survey status --period 2026-11 2>/dev/null | grep -q '\"state\": \"done\"'" || fail "November batch not built"
$A survey status --period 2026-11 > "$TEST_TMP/nov.json"
expect_eq "$(jget .summary.batch < "$TEST_TMP/nov.json")" 7 "November batch size"
expect_eq "$(jget .summary.contacts < "$TEST_TMP/nov.json")" 11 "contacts in range"
expect_eq "$(jget .summary.duplicates < "$TEST_TMP/nov.json")" 1 "same number twice"
expect_eq "$(jget .summary.skipped_optout < "$TEST_TMP/nov.json")" 2 "opted out"
expect_eq "$(jget .summary.skipped_recent < "$TEST_TMP/nov.json")" 1 "surveyed in October"
expect_eq "$(jget .summary.window_end < "$TEST_TMP/nov.json")" "2026-11-23 16:00 +08:00" "window end"
built=$(cat "$TEST_TMP/a.log" "$TEST_TMP/b.log" | grep -c 'batch 2026-11 built by')
expect_eq "$built" 1 "exactly one gateway built November"
grep -q 'estimated finish 2026-11-23 1[0-6]:' "$TEST_TMP/a.log" "$TEST_TMP/b.log" || fail "no estimated finish logged"
wait_until 60 sh -c "[ \$(grep -c '\"template\":\"evaluation_survey\"' '$TEST_TMP/sink.jsonl') -ge 9 ]" || fail "surveys not all sent"
# a restart at 10:00 builds nothing new
gw_stop a || exit 1
gw_start a "$TEST_TMP/a.conf" || exit 1
sleep 2
expect_eq "$(cat "$TEST_TMP/a.log" "$TEST_TMP/b.log" | grep -c 'batch 2026-11 built by')" 1 "still one batch after a restart"
expect_eq "$(grep -c '"template":"evaluation_survey"' "$TEST_TMP/sink.jsonl")" 9 "each survey sent once (October 2 + November 7)"
expect_eq "$(grep -o '"id":"[0-9a-f]*"' "$TEST_TMP/sink.jsonl" | sort | uniq -d | wc -l)" 0 "no message sent twice"

# ---- replies: through the inbound stream, at 17:00 on the 23rd
AT=$(( $(date -u -d 2026-11-23T09:00:00Z +%s) * 1000 ))      # 17:00 in Beijing
add() { R XADD '{t}:inbound' '*' route test from "$1" text "$2" at "$3" >/dev/null; }
add +8613900000001 '1121 希望提高办案效率' $AT
add +8613900000002 '满意' $AT
add +8613900000003 '1 1 3 1' $AT
add +8613900000004 '案件什么时候开庭？' $AT
add +8613900000005 'ＴＤ' $AT
add +8613900000099 '你好，请问怎么查询案件？' $AT
add +8613900000003 '谢谢' $((AT + 60000))
# ... and a two-part Chinese reply into the dummy phone's inbox, parts reversed
ucs2() { printf '%s' "$1" | iconv -f UTF-8 -t UTF-16BE | od -An -tx1 -v | tr -d ' \n' | tr a-f A-F; }
inject() {   # n, udh, text
    local hex; hex=$(ucs2 "$3")
    {
        echo "[SMSBackup000]"; echo "PDU = Deliver"; echo "State = UnRead"
        echo 'Number = "+8613900000006"'; echo "DateTime = 20261123T090000Z"
        echo 'SMSC = "+8613800100500"'; echo "UDH = $2"
        local i=0 line=0
        while [ $i -lt ${#hex} ]; do printf 'Text%02d = %s\n' $line "${hex:$i:200}"; i=$((i + 200)); line=$((line + 1)); done
        echo "Coding = Unicode_No_Compression"; echo "Folder = 1"
    } > "$PHONE/sms/inject.tmp"
    mv "$PHONE/sms/inject.tmp" "$PHONE/sms/1/$1"
}
P1='２２２２，接待人员态度很好，但是等待的时间太长了，电话也经常打不通，希望以后能够改进工作方式，提高办事效率，'
P2='也希望及时告知案件的进展情况。谢谢！'
inject 1 050003AB0202 "$P2"
inject 2 050003AB0201 "$P1"
wait_until 30 sh -c "$A survey replies --period 2026-11 | jget .# | grep -qx 6" || fail "replies not all recorded: $($A survey replies --period 2026-11)"
wait_until 10 sh -c "$A survey replies --period 2026-11 | jget .+8613900000003.raw.# | grep -qx 2" || fail "second reply not kept"
$A survey replies --period 2026-11 > "$TEST_TMP/replies.json"
r() { jget "$1" < "$TEST_TMP/replies.json"; }
expect_eq "$(r .+8613900000001.status)" parsed "c1 status"
expect_eq "$(r .+8613900000001.ratings)" "[1,1,2,1]" "c1 ratings"
expect_eq "$(r .+8613900000001.suggestion)" "希望提高办案效率" "c1 suggestion"
expect_eq "$(r .+8613900000001.raw.0.route)" test "route kept"
expect_eq "$(r .+8613900000002.ratings)" "[1,1,1,1]" "one word for all four"
expect_eq "$(r .+8613900000003.ratings)" "[1,1,3,1]" "c3 ratings kept after an unparsed second reply"
expect_eq "$(r .+8613900000003.suggestion)" "谢谢" "c3 second reply becomes the suggestion"
expect_eq "$(r .+8613900000003.raw.1.text)" "谢谢" "both raw texts kept"
expect_eq "$(r .+8613900000004.status)" unparsed "c4"
expect_eq "$(r .+8613900000005.status)" optout "c5 opted out"
expect_eq "$(r .+8613900000006.status)" parsed "two-part reply through the modem"
expect_eq "$(r .+8613900000006.ratings)" "[2,2,2,2]" "full-width ratings"
expect_eq "$(r .+8613900000006.raw.0.route)" modem-a "modem route kept"
expect_eq "$(r .+8613900000006.raw.0.text)" "$P1$P2" "parts joined in order"
expect_eq "$(r .+8613900000006.suggestion)" "${P1#２２２２，}$P2" "suggestion after the ratings"
# a malformed inbound entry (no sender) goes to the dead letters with its reason
R XADD '{t}:inbound' '*' route test text 'x' at $AT >/dev/null
wait_until 20 sh -c "$A dead list | grep -q 'inbound entry without a sender'" || fail "malformed inbound entry not dead-lettered"
$A optout list > "$TEST_TMP/optout.json"
jget .+8613900000005 < "$TEST_TMP/optout.json" >/dev/null || fail "TD did not opt out"
# one acknowledgement per answered survey (not for the opt-out, not twice for c3)
wait_until 30 sh -c "[ \$(grep -c '\"template\":\"survey_ack\"' '$TEST_TMP/sink.jsonl') -ge 5 ]" || fail "acknowledgements not sent"
sleep 1
expect_eq "$(grep -c '"template":"survey_ack"' "$TEST_TMP/sink.jsonl")" 5 "acknowledgements"
grep '"template":"survey_ack"' "$TEST_TMP/sink.jsonl" | grep -q '8613900000005' && fail "acknowledged an opt-out"

# ---- opt-out: bulk skipped (counted), legal notices still sent
bul=$($A enqueue --template bulletin_fallback --to 13900000005 --var title=检察手机报 --var issue_no=39 --var link=http://127.0.0.1/b/39 --json | jget .id)
rn=$($A enqueue --template rights_notice_victim --to 13900000005 --var name=王五 --var case_no=A-5 --var accepted_on=2026年11月7日 --var office=某市人民检察院 --var office_phone=0571-88888888 --json | jget .id)
wait_until 30 sh -c "$A status $bul | jget .status | grep -qx skipped" || fail "bulletin to an opted-out number: $($A status "$bul" | jget .status)"
wait_until 30 sh -c "$A status $rn | jget .status | grep -qx sent" || fail "rights notice to an opted-out number not sent"
expect_eq "$(R HGET '{t}:stats' 'skipped:bulletin:-')" 1 "skipped counted"
# its timeline: queued, the attempt (stored by the skip), skipped
$A status "$bul" > "$TEST_TMP/bul.json"
tls() { for i in 0 1 2 3; do jget ".timeline.$i.status" < "$TEST_TMP/bul.json" 2>/dev/null; done | tr '\n' ' '; }
expect_eq "$(tls)" "queued sending skipped " "skipped message's timeline"
# a reply now is past the survey's 7-day window: it answers the latest message (the notice)
# (a field of the UTC day's hash of what went to whom: today's, or
# yesterday's when the send was just before midnight)
noted() {
    local d
    for d in "$(date -u +%Y-%m-%d)" "$(date -u -d '-1 day' +%Y-%m-%d)"; do
        redis-cli -s "$REDIS_SOCK" HGET "{t}:sentday:$d" +8613900000005 | grep -q "$1" && return 0
    done
    return 1
}
wait_until 10 noted "$rn" || fail "notice not noted as sent"
add +8613900000005 '收到' "$((($(date +%s) + 1) * 1000))"
wait_until 20 sh -c "redis-cli -s '$REDIS_SOCK' XRANGE '{t}:replies:other' - + | grep -q $rn" || fail "reply after the window not linked to the notice"
# opting back in
add +8613900000005 ' 订阅。' "$((($(date +%s) + 1) * 1000))"
wait_until 20 sh -c "! $A optout list | grep -q 8613900000005" || fail "opt-in keyword did not opt back in"

# ---- the report, number by number
$A report survey --period 2026-11 --csv "$TEST_TMP/r.csv" --html "$TEST_TMP/r.html" --json > "$TEST_TMP/report.json" || fail "report"
j() { jget "$1" < "$TEST_TMP/report.json"; }
expect_eq "$(j .total.surveys)" 7 "surveys"
expect_eq "$(j .total.sent)" 7 "sent"
expect_eq "$(j .total.replied)" 6 "replied"
expect_eq "$(j .total.optouts)" 1 "opt-outs among replies"
case $(j .total.response_rate) in 0.857*) ;; *) fail "response rate: $(j .total.response_rate)" ;; esac
expect_eq "$(j .total.aspects.0.counts)" "[3,1,0]" "procedure"
expect_eq "$(j .total.aspects.1.counts)" "[3,1,0]" "competence"
expect_eq "$(j .total.aspects.2.counts)" "[1,2,1]" "civility"
expect_eq "$(j .total.aspects.3.counts)" "[3,1,0]" "integrity"
expect_eq "$(j .total.aspects.2.answered)" 4 "civility answered"
expect_eq "$(j .total.aspects.2.satisfaction_rate)" 0.75 "civility satisfaction"
expect_eq "$(j .total.aspects.0.satisfaction_rate)" 1.0 "procedure satisfaction"
expect_eq "$(j .by_department.刑检一部.surveys)" 4 "dept 1 surveys"
expect_eq "$(j .by_department.刑检一部.replied)" 3 "dept 1 replied"
expect_eq "$(j .by_department.刑检一部.aspects.2.counts)" "[1,1,1]" "dept 1 civility"
expect_eq "$(j .by_department.刑检二部.surveys)" 3 "dept 2 surveys"
expect_eq "$(j .by_department.刑检二部.aspects.2.counts)" "[0,1,0]" "dept 2 civility"
expect_eq "$(j .by_prosecutor.张三.surveys)" 3 "张三"
expect_eq "$(j .by_prosecutor.张三.replied)" 2 "张三 replied"
expect_eq "$(j .by_prosecutor.李四.replied)" 2 "李四 replied"
expect_eq "$(j .by_prosecutor.王五.surveys)" 2 "王五"
expect_eq "$(j .suggestions.#)" 3 "suggestions"
expect_eq "$(j .unparsed.#)" 1 "unparsed"
expect_eq "$(j .unparsed.0.phone)" "139****0004" "masked number"
expect_eq "$(j .unparsed.0.case_no)" "A-4" "case number"
expect_eq "$(j .unparsed.0.text)" "案件什么时候开庭？" "unparsed text kept whole"
grep -q '"kind": "unsolicited"' "$TEST_TMP/report.json" || fail "unsolicited text missing from the report"
grep -q '139\*\*\*\*0099' "$TEST_TMP/report.json" || fail "unsolicited number not masked in the report"
grep -q '13900000099' "$TEST_TMP/report.json" "$TEST_TMP/r.csv" "$TEST_TMP/r.html" && fail "a full number in the report"
head -c 3 "$TEST_TMP/r.csv" | od -An -tx1 | grep -q 'ef bb bf' || fail "CSV without BOM"
grep -q '^全部,全部,7,7,0,6,85.7%,100.0%,100.0%,75.0%,100.0%' "$TEST_TMP/r.csv" || fail "CSV totals: $(sed -n 4p "$TEST_TMP/r.csv")"
grep -q '^执法文明,1,2,1,4,75.0%' "$TEST_TMP/r.csv" || fail "CSV civility row"
grep -q '<svg' "$TEST_TMP/r.html" || fail "no chart in the HTML"
grep -qiE '<script|<link|src=|href=|@import|url\(' "$TEST_TMP/r.html" && fail "the HTML is not self-contained"
grep -q '回复率 <b>85.7%</b>' "$TEST_TMP/r.html" || fail "HTML response rate"
# the HTML in headless Chromium (Debian's chromium-headless-shell): it loads
# offline, without console errors, and renders to a screenshot
CH=$(command -v chromium-headless-shell || command -v chromium) || fail "no headless Chromium (scripts/deps.sh installs chromium-headless-shell)"
timeout 120 "$CH" --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$TEST_TMP/chrome" \
    --enable-logging=stderr --v=0 --window-size=1000,1400 --screenshot="$TEST_TMP/r.png" \
    "file://$TEST_TMP/r.html" > "$TEST_TMP/chrome.log" 2>&1 || fail "chromium failed: $(tail -5 "$TEST_TMP/chrome.log")"
grep -E 'CONSOLE|Uncaught|net::ERR' "$TEST_TMP/chrome.log" && fail "the HTML has errors in a browser"
expect_eq "$(head -c 8 "$TEST_TMP/r.png" | od -An -tx1 | tr -d ' ')" 89504e470d0a1a0a "screenshot is a PNG"
[ "$(wc -c < "$TEST_TMP/r.png")" -gt 20000 ] || fail "screenshot suspiciously small"
timeout 120 "$CH" --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$TEST_TMP/chrome" \
    --dump-dom "file://$TEST_TMP/r.html" 2>/dev/null > "$TEST_TMP/dom.html" || fail "chromium --dump-dom"
grep -q '<title>2026年11月执法评议短信统计</title>' "$TEST_TMP/dom.html" || fail "DOM title"
[ "$(grep -o '<svg' "$TEST_TMP/dom.html" | wc -l)" -ge 1 ] || fail "DOM without the chart"
$A report survey --period 2026-11 > "$TEST_TMP/report.txt" || fail "text report"
grep -q 'response rate 85.7%' "$TEST_TMP/report.txt" || fail "text report figures"
$A report survey --period 2026-13 2>/dev/null; expect_eq $? 2 "bad period"

grep -q '13900000001\|+8613900000001' "$TEST_TMP/a.log" "$TEST_TMP/b.log" && fail "a full number in the logs"
gw_stop a || exit 1
gw_stop b || exit 1
echo "survey_test: ok"
