# console_survey_test.sh -- the office console's survey, bulletin and
# waiting figures end to end in Debian's headless Chromium (driven by
# console_drive.js, as console_test.sh), against a running gateway with
# real redis-server, libgammu's dummy phone and the MMSC emulator:
#   - a survey run for 2026-11 over contacts of two departments and three
#     prosecutors, sent through a sink route; replies arrive through the
#     dummy phone's inbox (ratings, a Chinese suggestion, an unparsed text)
#     and are waited for through GET /v1/replies;
#   - signed in, the survey panel shows the report's figures (sent,
#     delivered, replied, response rate), a chart per aspect whose bars
#     carry the report's counts, the suggestion and the unparsed reply with
#     masked numbers and case numbers, newest first, the rows by department
#     and by prosecutor; no whole number anywhere in the page's text;
#   - one more reply dropped into the phone shows up without a reload (the
#     page refreshes every ?refresh=2 s);
#   - 打印报告 calls window.print with the print stylesheet keeping only
#     the survey's report;
#   - a bulletin issue sent over MM7 is listed (GET /v1/bulletins, its
#     400s and scopes) and its row shows the issue's figures;
#   - messages waiting in the urgent lane behind a slow route, and one
#     scheduled, appear per family in the today panel (等待, 定时) as
#     in GET /v1/console/summary;
#   - no uncaught exception, console error or CSP violation on the page.
# Screenshots: $TEST_TMP/survey.png, print.png, waiting.png.
set -u
. "$(dirname "$0")/../lib.sh"
CH=$(command -v chromium-headless-shell || command -v chromium) || fail "no headless Chromium (scripts/deps.sh installs chromium-headless-shell)"
command -v node >/dev/null || fail "no node (scripts/deps.sh installs nodejs)"
DRIVE="node $ROOT_DIR/tests/integration/console_drive.js $CH"
T=$TEST_TMP
EMU_PID=
cleanup() { gw_stop_all; [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null; redis_stop; }
trap cleanup EXIT

redis_start "$T/redis" || exit 1
"$EMULATORS/mmsc_emu" "$T/emu" 300 > "$T/emu.log" 2>&1 &
EMU_PID=$!
wait_until 10 test -s "$T/emu/port" || fail "MMSC emulator did not start"
EMU=http://127.0.0.1:$(cat "$T/emu/port")
PHONE=$T/phone
mkdir -p "$PHONE/sms/1"
TITLE="检察工作通讯"
C=$T/h.conf
conf_base "$C" cs1 "batch = 1;"
ADMIN=admin-token-0123456789abcdef
READ=read-token-0123456789abcdef
SEND=send-token-0123456789abcdef
cat >> "$C" <<CONF
survey = { skip_recent_days = 0; ack_text = ""; };
routes = (
  { name = "good"; driver = "sink"; families = [ "survey" ]; sink = { file = "$T/sink.jsonl"; }; },
  { name = "slow"; driver = "sink"; families = [ "case_stage" ]; sink = { file = "$T/slow.jsonl"; latency_ms = 4000; }; },
  { name = "modem"; driver = "gammu"; families = [ "rights_notice" ];
    gammu = { model = "dummy"; connection = "none"; device = "$PHONE"; poll_interval_ms = 200; }; },
  { name = "mmsc"; driver = "mm7"; families = [ "bulletin" ]; send_timeout_ms = 5000;
    mm7 = { url = "$EMU/mm7"; vaspid = "901234"; vasid = "1065012345"; service_code = "BULLETIN";
            sender_address = "1065012345"; max_recipients = 2; max_size_kb = 100; }; }
);
bulletin = { titles = [ "$TITLE" ]; link_pattern = "https://example.gov.cn/b/{title}/{issue}"; };
api = {
  enabled = true;
  port = 0;
  admin_token_file = "";
  tokens = (
    { name = "office"; token = "$ADMIN"; scopes = [ "read", "admin" ]; },
    { name = "viewer"; token = "$READ"; scopes = [ "read" ]; },
    { name = "case-system"; token = "$SEND"; scopes = [ "send" ]; }
  );
};
CONF
A="$HERALD -c $C"

# ---- contacts in two departments, three prosecutors; the survey of 2026-11
cat > "$T/contacts.csv" <<'CSV'
phone,role,case_no,department,prosecutor,date
13900000001,party,A-1,刑检一部,张三,2026-11-02
13900000002,lawyer,A-2,刑检一部,张三,2026-11-03
13900000003,party,A-3,刑检二部,李四,2026-11-05
13900000004,party,A-4,刑检二部,李四,2026-11-06
13900000005,party,A-5,刑检二部,王五,2026-11-07
CSV
$A contacts import "$T/contacts.csv" > "$T/import.out" || fail "contacts import: $(cat "$T/import.out")"
# a clock before the run day: the gateway builds nothing by itself
HERALD_SURVEY_CLOCK=2026-11-20T12:00:00+08:00 gw_start cs1 "$C" || exit 1
U=$(api_base "$T/cs1.log") || fail "no listening line in the log"
B=$T/body
HERALD_SURVEY_CLOCK=2026-11-23T10:00:00+08:00 $A survey run --period 2026-11 --json > "$T/run.json" || fail "survey run"
expect_eq "$(jget .batch < "$T/run.json")" 5 "a batch of the five contacts"

# ---- a bulletin issue over MM7 to two subscribers
$A list add deputies 13800000001 --name "张三" >/dev/null || fail "list add"
$A list add deputies 13800000002 --name "李四" >/dev/null || fail "list add"
mkdir -p "$T/issue"
printf '本院召开检察开放日活动。\n' > "$T/issue/01.txt"
printf '第1期 检察开放日\n' > "$T/issue/subject.txt"
$A bulletin send --title "$TITLE" --content "$T/issue" --list deputies > "$T/send.json" || fail "bulletin send: $(cat "$T/send.json")"

wait_until 30 sh -c "[ \$(grep -c '\"template\":\"evaluation_survey\"' '$T/sink.jsonl' 2>/dev/null) -ge 5 ]" || fail "surveys not sent"

# ---- replies through the dummy phone's inbox (UCS-2 smsbackup files)
# inject FILE NUMBER DATETIME TEXT: a script, so that the browser step run:
# can drop a reply while the page stays open
cat > "$T/inject.sh" <<'SH'
#!/bin/bash
phone=$1 file=$2 number=$3 when=$4 text=$5
hex=$(printf '%s' "$text" | iconv -f UTF-8 -t UTF-16BE | od -An -tx1 -v | tr -d ' \n' | tr a-f A-F)
i=0 line=0
{
    echo "[SMSBackup000]"; echo "PDU = Deliver"; echo "State = UnRead"
    echo "Number = \"$number\""; echo "DateTime = $when"; echo 'SMSC = "+8613800100500"'
    while [ $i -lt ${#hex} ]; do printf 'Text%02d = %s\n' $line "${hex:$i:200}"; i=$((i + 200)); line=$((line + 1)); done
    echo "Coding = Unicode_No_Compression"; echo "Folder = 1"
} > "$phone/sms/inject-$file.tmp"
mv "$phone/sms/inject-$file.tmp" "$phone/sms/1/$file"
SH
inject() { bash "$T/inject.sh" "$PHONE" "$@"; }
SUGG='希望提高办案效率，及时告知进展'
UNP='案件什么时候开庭？'
LATE='窗口指引清楚，谢谢'
inject 1 +8613900000001 20261123T090000Z "1121 $SUGG"
inject 2 +8613900000002 20261123T090100Z "1111"
inject 3 +8613900000003 20261123T090200Z "2213"
inject 4 +8613900000004 20261123T090300Z "$UNP"
nreplies() { curl -s -H "Authorization: Bearer $READ" "$U/v1/replies?period=2026-11" | jsq 'd.replies.length'; }
wait_until 30 sh -c "[ \"\$(curl -s -H 'Authorization: Bearer $READ' '$U/v1/replies?period=2026-11' | grep -o '\"status\"' | wc -l)\" -ge 4 ]" \
    || fail "replies not recorded: $(nreplies) of 4"
expect_eq "$(nreplies)" 4 "four replies recorded"
expect_eq "$(req $READ GET /v1/surveys/2026-11/report)" 200 "the report"
cp "$B" "$T/report.json"
R() { jsq "$1" < "$T/report.json"; }
expect_eq "$(R d.total.replied)" 4 "report: replied"
expect_eq "$(R d.suggestions.length)" 1 "report: one suggestion"
expect_eq "$(R d.unparsed.length)" 1 "report: one unparsed reply"

# ---- GET /v1/bulletins
wait_until 20 sh -c "curl -s -H 'Authorization: Bearer $READ' '$U/v1/bulletins' | grep -q '\"mms_sent\":2'" \
    || fail "the issue's MMS not sent: $(curl -s -H "Authorization: Bearer $READ" "$U/v1/bulletins")"
expect_eq "$(req $READ GET /v1/bulletins)" 200 "bulletins list"
expect_eq "$(jsq 'd.count + " " + d.bulletins[0].title + " " + d.bulletins[0].issue + " " + d.bulletins[0].recipients' < "$B")" \
    "1 $TITLE 1 2" "bulletins list: the issue"
expect_eq "$(jsq '"parts" in d.bulletins[0] || "statuses" in d.bulletins[0]' < "$B")" false "the listing reads no recipients"
expect_eq "$(req $READ GET '/v1/bulletins?max=0')" 400 "max 0"
expect_eq "$(jsq d.error.field < "$B")" max "max 0: the field"
expect_eq "$(req $READ GET '/v1/bulletins?max=x')" 400 "max not a number"
expect_eq "$(req $SEND GET /v1/bulletins)" 403 "the listing needs read or bulletin"
expect_eq "$(req '' GET /v1/bulletins)" 401 "the listing needs a token"

# what the page must show, from the report
TOTAL="$(R '[d.total.sent, d.total.delivered, d.total.replied, (d.total.response_rate * 100).toFixed(1) + "%"].join("|")')"
ASPECTS="$(R 'd.total.aspects.map((a) => a.key + "=" + a.counts.join("/")).join(",")')"
DEPTS="$(R 'Object.entries(d.by_department).sort((p, q) => p[0].localeCompare(q[0], "zh")).map(([n, g]) => n + ":" + g.sent + "/" + g.replied).join(",")')"
PROS="$(R 'Object.entries(d.by_prosecutor).sort((p, q) => p[0].localeCompare(q[0], "zh")).map(([n, g]) => n + ":" + g.sent + "/" + g.replied).join(",")')"
expect_eq "$(R 'Object.keys(d.by_department).length')" 2 "two departments"
expect_eq "$(R 'Object.keys(d.by_prosecutor).length')" 3 "three prosecutors"

# ---- the page
D=$T/drive.out
SUG_LI="[...document.querySelectorAll('#survey-suggestions li')]"
START=$(date +%s)
$DRIVE "$T/chrome" \
    "nav:$U/console/?refresh=2" \
    "do:document.getElementById('token').value='$ADMIN'; document.getElementById('signin-form').requestSubmit()" \
    "wait:document.querySelector('#families tr[data-family=survey] td[data-event=waiting]')" \
    "do:window.__page = 'same'; { const p = document.getElementById('period'); p.value = '2026-11'; p.dispatchEvent(new Event('change')); }" \
    "wait:document.querySelector('#survey-title') && document.querySelector('#survey-title').textContent.includes('2026-11') && document.querySelectorAll('#replies-list li').length === 4" \
    "eval:['sent', 'delivered', 'replied', 'response_rate'].map((k) => document.querySelector('#survey-total [data-k=' + k + ']').textContent).join('|')" \
    "eval:[...document.querySelectorAll('#survey-aspects figure')].map((f) => f.dataset.aspect + '=' + [...f.querySelectorAll('rect[data-count]')].map((r) => r.dataset.count).join('/')).join(',')" \
    "eval:[...document.querySelectorAll('#survey-by-department tr[data-name]')].map((r) => r.dataset.name + ':' + r.querySelector('[data-k=sent]').textContent + '/' + r.querySelector('[data-k=replied]').textContent).join(',')" \
    "eval:[...document.querySelectorAll('#survey-by-prosecutor tr[data-name]')].map((r) => r.dataset.name + ':' + r.querySelector('[data-k=sent]').textContent + '/' + r.querySelector('[data-k=replied]').textContent).join(',')" \
    "eval:$SUG_LI.map((li) => li.dataset.kind + ' ' + li.textContent.replace(/^[0-9: -]+/, '')).join('\\n')" \
    "eval:/1[3-9][0-9]{9}/.test(document.body.innerText)" \
    "eval:document.querySelector('#survey-aspects rect[data-count] title').textContent" \
    "shot:$T/survey.png" \
    "run:bash '$T/inject.sh' '$PHONE' 5 +8613900000005 20261123T091000Z '1112 $LATE'" \
    "wait:$SUG_LI.length === 3 && document.getElementById('survey-suggestions').textContent.includes('$LATE')" \
    "eval:window.__page + ' ' + document.querySelector('#survey-total [data-k=replied]').textContent + ' ' + $SUG_LI.map((li) => li.dataset.kind).join(',')" \
    "eval:$SUG_LI[0].textContent.includes('139****0005') && $SUG_LI[0].textContent.includes('A-5')" \
    "do:window.print = () => { window.__printed = (window.__printed || 0) + 1; }; document.getElementById('survey-print').click()" \
    "eval:window.__printed === 1 && document.body.classList.contains('print-survey')" \
    "media:print" \
    "eval:['today', 'dead', 'bulletins', 'replies-body'].map((id) => getComputedStyle(document.getElementById(id)).display).join(',') + ' ' + getComputedStyle(document.getElementById('survey-body')).display" \
    "shot:$T/print.png" \
    "media:" \
    "do:document.body.classList.remove('print-survey')" \
    "wait:document.querySelector('#bulletins-table tr[data-issue=\"1\"] td[data-k=mms_sent]')" \
    "eval:['recipients', 'mms_sent', 'mms_retrieved', 'failed', 'sms_fallback'].map((k) => document.querySelector('#bulletins-table tr[data-issue=\"1\"] td[data-k=' + k + ']').textContent).join('|') + ' ' + document.querySelector('#bulletins-table tr[data-issue=\"1\"]').dataset.title" \
    "run:for k in 1 2 3 4; do curl -s -o /dev/null -H 'Authorization: Bearer $SEND' -H 'Content-Type: application/json' --data-binary '{\"template\":\"case_stage_update\",\"to\":\"1380013800'\$k'\",\"key\":\"stage-'\$k'\",\"vars\":{\"name\":\"张三\",\"case_no\":\"C-'\$k'\",\"stage\":\"审查起诉\",\"stage_date\":\"2026年11月28日\",\"office_phone\":\"0571-88888888\"}}' $U/v1/messages; done" \
    "run:curl -s -o /dev/null -H 'Authorization: Bearer $SEND' -H 'Content-Type: application/json' --data-binary '{\"template\":\"rights_notice_suspect\",\"to\":\"13800138009\",\"key\":\"later-1\",\"send_at\":\"2030-01-01T09:00:00+08:00\",\"vars\":{\"name\":\"张三\",\"case_no\":\"D-1\",\"accepted_on\":\"2026年11月27日\",\"office\":\"某市人民检察院\",\"office_phone\":\"0571-88888888\"}}' $U/v1/messages" \
    "wait:document.querySelector('#families tr[data-family=case_stage] td[data-event=waiting]').textContent === '2' && document.querySelector('#families tr[data-family=rights_notice] td[data-event=scheduled]').textContent === '1'" \
    "eval:['rights_notice', 'case_stage', 'survey', 'bulletin'].map((f) => document.querySelector('#families tr[data-family=' + f + '] td[data-event=waiting]').textContent + '/' + document.querySelector('#families tr[data-family=' + f + '] td[data-event=scheduled]').textContent).join(',')" \
    "shot:$T/waiting.png" \
    > "$D" 2> "$T/drive.err" || fail "the page: $(cat "$T/drive.err") (output so far: $(cat "$D"))"
echo "browser: $(( $(date +%s) - START )) s"
cat "$D"
L() { sed -n "${1}p" "$D"; }
expect_eq "$(L 1)" "\"$TOTAL\"" "page: survey figures (sent|delivered|replied|rate) as the report"
expect_eq "$(L 2)" "\"$ASPECTS\"" "page: each aspect's bars carry the report's counts"
expect_eq "$(L 3)" "\"$DEPTS\"" "page: by department"
expect_eq "$(L 4)" "\"$PROS\"" "page: by prosecutor"
case "$(L 5)" in "\"unparsed 未识别 139****0004 A-4 · 刑检二部 · 李四：$UNP\\nsuggestion 意见建议 139****0001 A-1 · 刑检一部 · 张三：$SUGG\"") ;;
    *) fail "page: suggestions and unparsed replies, newest first: $(L 5)";; esac
expect_eq "$(L 6)" false "page: no whole number in the page's text"
case "$(L 7)" in *": "[0-9]*'"') ;; *) fail "page: a bar's title says its count: $(L 7)";; esac
expect_eq "$(L 8)" '"same 5 suggestion,unparsed,suggestion"' "page: the new reply shown without a reload, newest first"
expect_eq "$(L 9)" true "page: the new reply's masked number and case number"
expect_eq "$(L 10)" true "page: 打印报告 prints with the survey stylesheet"
expect_eq "$(L 11)" '"none,none,none,none block"' "page: printed, only the survey's report"
req $READ GET /v1/bulletins > /dev/null
ISS="$(jsq '["recipients", "mms_sent", "mms_retrieved", "failed", "sms_fallback"].map((k) => d.bulletins[0][k]).join("|")' < "$B")"
expect_eq "$(L 12)" "\"$ISS $TITLE\"" "page: the bulletin's row"
expect_eq "$(L 13)" '"0/1,2/0,0/0,0/0"' "page: waiting and scheduled per family"
req $READ GET /v1/console/summary > /dev/null
expect_eq "$(jsq 'd.stats.scheduled_by_family.rights_notice + " " + d.stats.waiting_scan.exact' < "$B")" "1 true" "summary: scheduled per family, exact"
for p in survey print waiting; do
    expect_eq "$(head -c 8 "$T/$p.png" | od -An -tx1 | tr -d ' ')" 89504e470d0a1a0a "$p.png is a PNG"
    [ "$(wc -c < "$T/$p.png")" -gt 10000 ] || fail "$p.png suspiciously small"
done
# the report after the late reply
expect_eq "$(req $READ GET /v1/surveys/2026-11/report)" 200 "the report again"
expect_eq "$(jsq d.total.replied < "$B")" 5 "report: five replies"

gw_stop cs1 || fail "gateway did not stop cleanly"
echo "console survey: figures, charts, live replies, print, bulletins and waiting checked in Chromium; screenshots in $T"
