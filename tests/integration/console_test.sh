# console_test.sh -- the office console end to end in Debian's headless
# Chromium, driven through its DevTools protocol (console_drive.js, on a
# pipe), against a running gateway (real redis-server, real HTTP on
# 127.0.0.1):
#   - the page's files are built into the binary and match console/
#     (gateway/console_files.c is what scripts/embed-console.sh makes);
#   - served without a token, with a Content-Security-Policy that allows
#     nothing from outside; the JSON routes need read (admin to requeue);
#   - signed in with a read+admin token: the per-family figures are the
#     local day's counters ({p}:day:<day> in Asia/Shanghai, the configured
#     zone) and match what was sent today, the lanes and routes appear; a
#     message's timeline found by id, by idempotency key and by case number
#     (the case's list, then one message's story); a dead letter requeued from the
#     page, then two at once by ticking them (their timelines then say
#     "retried by operator"); the survey panel
#     shows the report's figures, or "not available" while the endpoint
#     does not exist; a waiting figure per family (the survey panel,
#     waiting and bulletins with data: console_survey_test.sh); a
#     phone-sized screenshot;
#   - no uncaught exception, console error or CSP violation on the page;
#   - a token without the read scope sees nothing but the sign-in;
#   - GET /v1/messages?case_no= and `herald case` list a case's messages,
#     newest first, numbers masked.
# Screenshots: $TEST_TMP/*.png.
set -u
. "$(dirname "$0")/../lib.sh"
CH=$(command -v chromium-headless-shell || command -v chromium) || fail "no headless Chromium (scripts/deps.sh installs chromium-headless-shell)"
command -v node >/dev/null || fail "no node (scripts/deps.sh installs nodejs)"
DRIVE="node $ROOT_DIR/tests/integration/console_drive.js $CH"

# ---- the embedded files are the sources
sh "$ROOT_DIR/scripts/embed-console.sh" "$TEST_TMP/files.c" || fail "embed-console.sh failed"
cmp -s "$ROOT_DIR/gateway/console_files.c" "$TEST_TMP/files.c" \
    || fail "gateway/console_files.c is stale: run scripts/embed-console.sh and rebuild"

redis_start "$TEST_TMP/redis" || exit 1
trap 'gw_stop_all; redis_stop' EXIT
C=$TEST_TMP/h.conf
conf_base "$C" con1
ADMIN=admin-token-0123456789abcdef
READ=read-token-0123456789abcdef
SEND=send-token-0123456789abcdef
cat >> "$C" <<CONF
routes = (
  { name = "good"; driver = "sink"; families = [ "rights_notice", "survey", "bulletin" ];
    sink = { file = "$TEST_TMP/sink.jsonl"; }; },
  { name = "refusing"; driver = "sink"; families = [ "case_stage" ]; sink = { fail = "permanent"; }; }
);
api = {
  enabled = true;
  port = 0;
  tokens = (
    { name = "office"; token = "$ADMIN"; scopes = [ "read", "admin" ]; },
    { name = "viewer"; token = "$READ"; scopes = [ "read" ]; },
    { name = "case-system"; token = "$SEND"; scopes = [ "send" ]; }
  );
};
CONF
gw_start con1 "$C" || exit 1
U=$(api_base "$TEST_TMP/con1.log") || fail "no listening line in the log"
B=$TEST_TMP/body
send() {  # KEY TEMPLATE VARS_JSON: prints the id
    req $SEND POST /v1/messages -H 'Content-Type: application/json' --data-binary \
        "{\"template\":\"$2\",\"to\":\"13800138000\",\"key\":\"$1\",\"vars\":$3}" >/dev/null
    jget .id < "$B"
}

# ---- static files: no token, built in, strict CSP
expect_eq "$(req '' GET /console/)" 200 "GET /console/"
grep -q '<html lang="zh-CN">' "$B" || fail "index.html is not the console page"
cmp -s "$B" "$ROOT_DIR/console/index.html" || fail "served index.html differs from console/index.html"
expect_eq "$(req '' GET /console/app.js)" 200 "GET /console/app.js"
cmp -s "$B" "$ROOT_DIR/console/app.js" || fail "served app.js differs from console/app.js"
expect_eq "$(req '' GET /console)" 301 "GET /console redirects"
expect_eq "$(req '' GET /console/nope.js)" 404 "unknown console file"
curl -s -D - -o /dev/null "$U/console/app.css" | grep -qi "content-security-policy: default-src 'self'" || fail "no CSP header"
grep -Eq 'https?://' "$ROOT_DIR/console/index.html" "$ROOT_DIR/console/app.css" && fail "an outside URL in the page"
grep -Eo 'https?://[^"]*' "$ROOT_DIR/console/app.js" | grep -v '^http://www.w3.org/2000/svg$' && fail "an outside URL in app.js"
# ---- the JSON routes' scopes
expect_eq "$(req '' GET /v1/console/summary)" 401 "summary without a token"
expect_eq "$(req $SEND GET /v1/console/summary)" 403 "summary with a send token"
expect_eq "$(req $READ GET /v1/console/summary)" 200 "summary with read"
expect_eq "$(req $READ POST /v1/console/dead/0123abcd/requeue)" 403 "requeue needs admin"
expect_eq "$(req $ADMIN POST /v1/console/dead/0123abcd/requeue)" 404 "requeue of an unknown id"
expect_eq "$(req $ADMIN GET /v1/console/dead/0123abcd/requeue)" 405 "requeue is a POST"

# ---- a scenario: notices sent, one case-stage message refused for good
V='{"name":"张三","case_no":"某检刑诉〔2026〕88号","accepted_on":"2026年11月27日","office":"某市人民检察院","office_phone":"0571-88888888"}'
ID1=$(send case-88-suspect rights_notice_suspect "$V")
ID2=$(send case-88-victim rights_notice_victim "$V")
ID3=$(send case-88-stage case_stage_update '{"name":"张三","case_no":"某检刑诉〔2026〕88号","stage":"审查起诉","stage_date":"2026年11月28日","office_phone":"0571-88888888"}')
ID4=$(send case-89-stage case_stage_update '{"name":"李四","case_no":"某检刑诉〔2026〕89号","stage":"审查起诉","stage_date":"2026年11月28日","office_phone":"0571-88888888"}')
[ -n "$ID1" ] && [ -n "$ID2" ] && [ -n "$ID3" ] && [ -n "$ID4" ] || fail "enqueue failed: $(cat "$B")"
wait_until 20 sh -c "curl -s -H 'Authorization: Bearer $READ' $U/v1/messages/$ID1 | grep -q '\"status\":\"sent\"'" || fail "$ID1 not sent"
wait_until 20 sh -c "curl -s -H 'Authorization: Bearer $READ' $U/v1/messages/$ID3 | grep -q '\"status\":\"dead\"'" || fail "$ID3 not dead"
wait_until 20 sh -c "curl -s -H 'Authorization: Bearer $READ' $U/v1/messages/$ID2 | grep -q '\"status\":\"sent\"'" || fail "$ID2 not sent"
wait_until 20 sh -c "curl -s -H 'Authorization: Bearer $READ' $U/v1/messages/$ID4 | grep -q '\"status\":\"dead\"'" || fail "$ID4 not dead"
req $READ GET /v1/console/summary >/dev/null
SENT_RN=$(jget .stats.counters.sent:rights_notice:good < "$B")
expect_eq "$SENT_RN" 2 "the queue counted two rights notices sent"
# today's counters: the key of the local day in the configured zone
DAY=$(TZ=Asia/Shanghai date +%F)
expect_eq "$(jget .stats.today.day < "$B")" "$DAY" "summary: today is the Shanghai day"
expect_eq "$(jget .timezone < "$B")" Asia/Shanghai "summary: the time zone"
TODAY_SENT=$(redis_cli HGET "{t}:day:$DAY" rights_notice:sent)
expect_eq "$TODAY_SENT" 2 "{t}:day:$DAY counts the two notices sent today"
expect_eq "$(jget .stats.today.counters.rights_notice:sent < "$B")" "$TODAY_SENT" "summary: today's sent"
expect_eq "$(redis_cli HGET "{t}:day:$DAY" rights_notice:queued)" 2 "today: two notices queued"
expect_eq "$(redis_cli HGET "{t}:day:$DAY" case_stage:dead)" 2 "today: two case-stage dead letters"
DAY_TTL=$(redis_cli PTTL "{t}:day:$DAY")
[ "$DAY_TTL" -gt $((39 * 86400000)) ] || fail "the day's counters expire in 40 days, PTTL $DAY_TTL"
# an older day's counters are not today's
redis_cli HSET "{t}:day:2020-01-01" rights_notice:sent 99 >/dev/null

# ---- the case number index
CASE88='某检刑诉〔2026〕88号'
CASE88_Q=$(node -e 'console.log(encodeURIComponent(process.argv[1]))' "$CASE88")
expect_eq "$(req $READ GET "/v1/messages?case_no=$CASE88_Q")" 200 "case lookup"
expect_eq "$(jsq 'd.messages.map((m) => m.id).join()' < "$B")" "$ID3,$ID2,$ID1" "case 88: its three messages, newest first"
expect_eq "$(jsq d.count < "$B")" 3 "case 88: count"
expect_eq "$(jsq 'd.messages[0].to' < "$B")" "$(jsq 'd.messages[2].to' < "$B")" "case 88: one number"
case "$(jsq 'd.messages[0].to' < "$B")" in *8000) ;; *) fail "case list: number: $(cat "$B")";; esac
jsq 'd.messages.map((m) => m.to).join("\n")' < "$B" | grep -q 13800138000 && fail "case list: the number is not masked: $(cat "$B")"
expect_eq "$(jsq '[d.messages[0].family, d.messages[0].template, d.messages[0].status].join(" ")' < "$B")" "case_stage case_stage_update dead" "case 88: newest"
expect_eq "$(req $READ GET "/v1/messages?case_no=$CASE88_Q&max=1")" 200 "case lookup, max 1"
expect_eq "$(jsq 'd.messages.map((m) => m.id).join()' < "$B")" "$ID3" "case 88, max 1: the newest"
expect_eq "$(req $READ GET "/v1/messages?case_no=nosuchcase")" 200 "unknown case number"
expect_eq "$(jsq d.messages < "$B")" '[]' "unknown case number: no messages"
expect_eq "$(req $READ GET "/v1/messages?case_no=$CASE88_Q&max=0")" 400 "case lookup, max 0"
expect_eq "$(jsq d.error.field < "$B")" max "max 0: the field"
expect_eq "$(req $READ GET "/v1/messages?case_no=$CASE88_Q&key=case-88-victim")" 400 "key and case_no"
expect_eq "$(req $SEND GET "/v1/messages?case_no=$CASE88_Q")" 403 "case lookup needs read"
CL=$("$HERALD" -c "$C" case "$CASE88" --json) || fail "herald case failed"
expect_eq "$(printf %s "$CL" | jsq 'd.map((m) => m.id).join()')" "$ID3,$ID2,$ID1" "herald case --json"
"$HERALD" -c "$C" case "$CASE88" | grep -q "$ID1.*rights_notice_suspect.*sent.*138\*\*\*\*8000" \
    || fail "herald case: the table: $("$HERALD" -c "$C" case "$CASE88")"
"$HERALD" -c "$C" case 2>/dev/null; expect_eq $? 2 "herald case without a case number"
PERIOD=$(date +%Y-%m)
SURVEY=$(req $READ GET "/v1/surveys/$PERIOD/report")
[ "$SURVEY" = 200 ] && SURVEY_SENT=$(jget .total.sent < "$B")

# ---- the page, signed in as the office
D=$TEST_TMP/drive.out
$DRIVE "$TEST_TMP/chrome" \
    "nav:$U/console/" \
    "wait:!document.getElementById('signin').hidden && document.getElementById('app').hidden" \
    "shot:$TEST_TMP/signin.png" \
    "do:document.getElementById('token').value='$ADMIN'; document.getElementById('signin-form').requestSubmit()" \
    "wait:document.querySelector('#families tr[data-family=rights_notice] td[data-event=sent]')" \
    "wait:document.querySelector('#dead-table tr[data-id=\"$ID3\"]')" \
    "eval:document.querySelector('#families tr[data-family=rights_notice] td[data-event=sent]').textContent" \
    "eval:document.querySelector('#families tr[data-family=case_stage] td[data-event=dead]').textContent" \
    "eval:document.querySelectorAll('#families-chart svg rect').length > 4" \
    "eval:[...document.querySelectorAll('#routes tr[data-route]')].map(r => r.dataset.route + '=' + r.children[2].textContent).join(',')" \
    "eval:document.querySelectorAll('#lanes tr[data-lane]').length" \
    "eval:document.querySelector('#dead-table tr[data-id=\"$ID3\"]').children[2].textContent" \
    "wait:document.getElementById('survey-body').textContent.length > 0" \
    "eval:document.getElementById('survey-body').textContent" \
    "shot:$TEST_TMP/today.png" \
    "do:document.getElementById('story-q').value='$ID1'; document.getElementById('story-form').requestSubmit()" \
    "wait:document.querySelectorAll('#story-timeline li').length >= 3" \
    "eval:document.getElementById('story-timeline').textContent" \
    "eval:document.getElementById('story-record').textContent" \
    "do:document.getElementById('story-q').value='case-88-victim'; document.getElementById('story-form').requestSubmit()" \
    "wait:document.getElementById('story-record') && document.getElementById('story-record').textContent.includes('$ID2')" \
    "shot:$TEST_TMP/story.png" \
    "do:document.getElementById('story-q').value='$CASE88'; document.getElementById('story-form').requestSubmit()" \
    "wait:document.querySelectorAll('#case-table tr[data-id]').length === 3" \
    "eval:[...document.querySelectorAll('#case-table tr[data-id]')].map(r => r.dataset.id).join(',')" \
    "eval:document.getElementById('case-title').textContent" \
    "do:document.querySelector('#case-table tr[data-id=\"$ID1\"] a').click()" \
    "wait:document.getElementById('story-record') && document.getElementById('story-record').textContent.includes('$ID1')" \
    "eval:document.getElementById('story-timeline').textContent" \
    "shot:$TEST_TMP/case.png" \
    "do:document.getElementById('story-q').value='某检刑诉〔2026〕89号'; document.getElementById('story-form').requestSubmit()" \
    "wait:document.getElementById('story-record') && document.getElementById('story-record').textContent.includes('$ID4')" \
    "eval:document.querySelectorAll('#case-table tr[data-id]').length" \
    "do:document.getElementById('story-q').value='某检刑诉〔2026〕90号'; document.getElementById('story-form').requestSubmit()" \
    "wait:document.getElementById('story-body').textContent.includes('没有找到')" \
    "eval:document.getElementById('today-day').textContent" \
    "do:document.querySelector('#dead-table tr[data-id=\"$ID3\"] button.requeue').click()" \
    "wait:document.getElementById('status').textContent.includes('已重新入队 1 条')" \
    "shot:$TEST_TMP/requeued.png" \
    "wait:document.querySelector('#dead-table tr[data-id=\"$ID3\"]') || (document.getElementById('dead-refresh').click(), false)" \
    "do:document.querySelectorAll('#dead-table input[type=checkbox]').forEach(c => { c.checked = true; })" \
    "do:document.getElementById('dead-requeue-sel').click()" \
    "wait:document.getElementById('status').textContent.includes('已重新入队 2 条')" \
    "size:390,844,m" \
    "eval:document.documentElement.scrollWidth <= 400" \
    "eval:[...document.querySelectorAll('#families tr[data-family] td[data-event=waiting]')].map((td) => td.textContent).join(',')" \
    "shot:$TEST_TMP/phone.png" \
    > "$D" 2> "$TEST_TMP/drive.err" || fail "the signed-in page: $(cat "$TEST_TMP/drive.err")"
cat "$D"
L() { sed -n "${1}p" "$D"; }
expect_eq "$(L 1)" "\"$TODAY_SENT\"" "page: rights notices sent today ({t}:day:$DAY)"
expect_eq "$(L 2)" '"2"' "page: case-stage dead letters"
expect_eq "$(L 3)" true "page: the families chart has bars"
expect_eq "$(L 4)" '"good=正常,refusing=正常"' "page: routes and their state"
expect_eq "$(L 5)" 2 "page: two lanes"
case "$(L 6)" in *permanent*|*refus*|*fail*) ;; *) fail "page: dead letter reason: $(L 6)";; esac
if [ "$SURVEY" = 200 ]; then
    case "$(L 7)" in *"发出$SURVEY_SENT"*) ;; *) fail "page: survey figures: $(L 7)";; esac
else
    case "$(L 7)" in *暂不可用*) ;; *) fail "page: the survey panel should say not available: $(L 7)";; esac
fi
case "$(L 8)" in *排队*已发送*"via good"*) ;; *) fail "page: timeline: $(L 8)";; esac
case "$(L 9)" in *"$ID1"*"某检刑诉〔2026〕88号"*case-88-suspect*) ;; *) fail "page: record: $(L 9)";; esac
expect_eq "$(L 10)" "\"$ID3,$ID2,$ID1\"" "page: the case's messages, newest first"
case "$(L 11)" in *"$CASE88"*3*) ;; *) fail "page: case title: $(L 11)";; esac
case "$(L 12)" in *排队*已发送*"via good"*) ;; *) fail "page: the case message's timeline: $(L 12)";; esac
expect_eq "$(L 13)" 1 "page: case 89 has one message, its story shown"
expect_eq "$(L 14)" "\"$DAY，Asia/Shanghai\"" "page: today's day and zone"
expect_eq "$(L 15)" true "page: fits a phone's width"
# a waiting figure per family (their values are checked in console_survey_test.sh)
case "$(L 16)" in '"'[0-9]*,[0-9]*,[0-9]*,[0-9]*'"') ;; *) fail "page: a waiting figure per family: $(L 16)";; esac
# the requeue went through the queue: the timeline says so
req $READ GET "/v1/messages/$ID3" >/dev/null
grep -q 'retried by operator' "$B" || fail "requeue not in the timeline: $(cat "$B")"
expect_eq "$(grep -o 'retried by operator' "$B" | wc -l)" 2 "$ID3 requeued twice (alone, then with the selection)"
req $READ GET "/v1/messages/$ID4" >/dev/null
grep -q 'retried by operator' "$B" || fail "$ID4 not requeued with the selection: $(cat "$B")"
grep -q "dead letter $ID3 requeued" "$TEST_TMP/con1.log" || fail "requeue not logged"
for p in signin today story case requeued phone; do
    expect_eq "$(head -c 8 "$TEST_TMP/$p.png" | od -An -tx1 | tr -d ' ')" 89504e470d0a1a0a "$p.png is a PNG"
    [ "$(wc -c < "$TEST_TMP/$p.png")" -gt 10000 ] || fail "$p.png suspiciously small"
done

# ---- a token without the read scope sees nothing but the sign-in
$DRIVE "$TEST_TMP/chrome2" \
    "nav:$U/console/" \
    "do:document.getElementById('token').value='$SEND'; document.getElementById('signin-form').requestSubmit()" \
    "wait:document.getElementById('signin-error').textContent.length > 0" \
    "eval:document.getElementById('signin-error').textContent" \
    "eval:document.getElementById('app').hidden && !document.getElementById('signin').hidden && document.getElementById('nav').hidden" \
    "eval:document.querySelectorAll('#families tr, #dead-table tr, #story-timeline li').length" \
    "eval:sessionStorage.getItem('herald.token')" \
    "shot:$TEST_TMP/no-read.png" \
    > "$D" 2> "$TEST_TMP/drive2.err" || fail "the send-only page: $(cat "$TEST_TMP/drive2.err")"
cat "$D"
case "$(L 1)" in *权限不足*) ;; *) fail "no-read: error shown: $(L 1)";; esac
expect_eq "$(L 2)" true "no-read: only the sign-in is visible"
expect_eq "$(L 3)" 0 "no-read: no data in the page"
expect_eq "$(L 4)" null "no-read: the token is not kept"

gw_stop con1 || fail "gateway did not stop cleanly"
echo "console: figures, timeline, requeue and scopes checked in Chromium; screenshots in $TEST_TMP"
