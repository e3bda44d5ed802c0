# api_survey_test.sh -- the survey and bulletin endpoints of the HTTP API
# through curl against a running gateway (real redis-server, real
# libmicrohttpd on 127.0.0.1): POST /v1/contacts alone and in a batch with
# the failing field named per item; the batch built from those contacts;
# replies through the inbound stream read back with GET /v1/replies
# (masked for `read`, whole for `contacts`, paged by cursor, since);
# GET /v1/surveys/{period}/report against `herald report survey --json`;
# opt-outs added and removed; bulletin lists; POST /v1/bulletins' input
# checks (its sends are in bulletin_test.sh, beside the MMSC emulator);
# every endpoint's 401 and 403.
set -u
. "$(dirname "$0")/../lib.sh"
redis_start "$TEST_TMP/redis" || exit 1
trap 'gw_stop_all; redis_stop' EXIT
R() { redis-cli -s "$REDIS_SOCK" "$@"; }
C=$TEST_TMP/h.conf
conf_base "$C" apis
CONT=contacts-token-0123456789abcdef
READ=read-token-0123456789abcdef
SEND=send-token-0123456789abcdef
BUL=bulletin-token-0123456789abcdef
cat >> "$C" <<CONF
survey = { skip_recent_days = 0; ack_text = ""; };
routes = ( { name = "good"; driver = "sink"; sink = { file = "$TEST_TMP/sink.jsonl"; }; } );
bulletin = { titles = [ "检察工作通讯" ]; link_pattern = "https://example.gov.cn/b/{title}/{issue}"; };
api = {
  enabled = true;
  port = 0;
  admin_token_file = "";
  tokens = (
    { name = "office"; token = "$CONT"; scopes = [ "contacts" ]; },
    { name = "reader"; token = "$READ"; scopes = [ "read" ]; },
    { name = "case-system"; token = "$SEND"; scopes = [ "send" ]; },
    { name = "press"; token = "$BUL"; scopes = [ "bulletin" ]; }
  );
};
CONF
A="$HERALD -c $C"
# a clock before the run day: the gateway builds nothing by itself
HERALD_SURVEY_CLOCK=2026-11-20T12:00:00+08:00 gw_start apis "$C" || exit 1
PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$TEST_TMP/apis.log" | head -1 | cut -d: -f2)
[ -n "$PORT" ] || fail "no listening line in the log"
U=http://127.0.0.1:$PORT
B=$TEST_TMP/body

req() {
    local tok=$1 m=$2 p=$3; shift 3
    local auth=()
    [ -n "$tok" ] && auth=(-H "Authorization: Bearer $tok")
    curl -s -m 20 -o "$B" -w '%{http_code}' -X "$m" "${auth[@]}" "$@" "$U$p"
}
post() { req "$1" POST "$2" -H 'Content-Type: application/json' --data-binary "$3"; }
expect_err() {
    expect_eq "$(jget .error.code < "$B")" "$1" "error code (body $(cat "$B"))"
    [ -n "${2:-}" ] && expect_eq "$(jget .error.field < "$B")" "$2" "error field (body $(cat "$B"))"
    jget .error.message < "$B" > /dev/null || fail "error without a message: $(cat "$B")"
}
b() { jget "$1" < "$B"; }

# ---- POST /v1/contacts
ONE='{"phone":"13900000001","role":"party","case_no":"A-1","department":"刑检一部","prosecutor":"张三","date":"2026-11-02"}'
expect_eq "$(post "" /v1/contacts "$ONE")" 401 "contacts without a token"
expect_eq "$(post $READ /v1/contacts "$ONE")" 403 "contacts with the read scope"
expect_err forbidden
grep -q "needs contacts" "$B" || fail "403 does not name the scope: $(cat "$B")"
expect_eq "$(post $CONT /v1/contacts "$ONE")" 201 "one contact added"
expect_eq "$(b .result)" added "result"
expect_eq "$(b .phone)" "139****0001" "the answer masks the number"
expect_eq "$(post $CONT /v1/contacts "$ONE")" 200 "the same contact again"
expect_eq "$(b .result)" updated "updated"
expect_eq "$(post $CONT /v1/contacts '{"phone":"13900000002","role":"judge","case_no":"A-2","date":"2026-11-03"}')" 422 "bad role"
expect_err invalid role
expect_eq "$(post $CONT /v1/contacts '{"phone":"13900000002","role":"party","case_no":"A-2","date":"2026-11-31"}')" 422 "bad date"
expect_err invalid date
expect_eq "$(post $CONT /v1/contacts '{"phone":"13900000002","role":"party","case":"A-2","date":"2026-11-03"}')" 422 "unknown member"
expect_err invalid case
expect_eq "$(post $CONT /v1/contacts '{"phone":13900000002,"role":"party","case_no":"A-2","date":"2026-11-03"}')" 422 "phone not a string"
expect_err invalid phone
expect_eq "$(post $CONT /v1/contacts '{"contacts":[]}')" 422 "empty batch"
expect_err invalid contacts
expect_eq "$(post $CONT /v1/contacts '{"contacts":[1}')" 400 "bad JSON"
expect_err bad_json
BATCH='{"contacts":[
 {"phone":"13900000002","role":"lawyer","case_no":"A-2","department":"刑检一部","prosecutor":"张三","date":"2026-10-23"},
 {"phone":"12345","role":"party","case_no":"B-1","date":"2026-11-01"},
 {"phone":"+86 139 0000 0003","role":"当事人","case_no":"A-3","department":"刑检二部","prosecutor":"李四","date":"20261105"},
 {"phone":"13900000004","role":"witness","date":"2026-11-05"},
 "x",
 {"phone":"13900000005","role":"party","case_no":"A-5","department":"刑检二部","prosecutor":"李四","date":"2026/11/07"}]}'
expect_eq "$(post $CONT /v1/contacts "$BATCH")" 200 "batch"
expect_eq "$(b .added)" 3 "batch added"
expect_eq "$(b .rejected)" 3 "batch rejected"
expect_eq "$(b .results.1.error.field)" "contacts[1].phone" "bad phone named in the batch"
expect_eq "$(b .results.3.error.field)" "contacts[3].case_no" "missing case_no named"
expect_eq "$(b .results.4.error.field)" "contacts[4]" "a non-object item named"
expect_eq "$(b .results.2.status)" 201 "item status"
$A contacts list --from 2026-10-01 --to 2026-11-30 > "$TEST_TMP/contacts.json" || fail "contacts list"
expect_eq "$(grep -c '"case_no"' "$TEST_TMP/contacts.json")" 4 "four contacts stored, none of the refused"
grep -q 12345 "$TEST_TMP/contacts.json" && fail "a refused contact was stored"

# ---- the batch from them, then replies through the inbound stream
HERALD_SURVEY_CLOCK=2026-11-23T10:00:00+08:00 $A survey run --period 2026-11 --json > "$TEST_TMP/run.json" || fail "survey run"
expect_eq "$(jget .batch < "$TEST_TMP/run.json")" 4 "batch of the API's contacts"
wait_until 60 sh -c "[ \$(grep -c '\"template\":\"evaluation_survey\"' '$TEST_TMP/sink.jsonl' 2>/dev/null) -ge 4 ]" || fail "surveys not sent"
AT=$(( $(date -u -d 2026-11-23T09:00:00Z +%s) * 1000 ))
add() { R XADD '{t}:inbound' '*' route test from "$1" text "$2" at "$3" >/dev/null; }
add +8613900000001 '1121 希望提高办案效率' $AT
add +8613900000002 '满意' $((AT + 1000))
add +8613900000003 '案件什么时候开庭？' $((AT + 2000))
wait_until 30 sh -c "$A survey replies --period 2026-11 | jget .# | grep -qx 3" || fail "replies not recorded"

# ---- GET /v1/replies
expect_eq "$(req "" GET '/v1/replies?period=2026-11')" 401 "replies without a token"
expect_eq "$(req $SEND GET '/v1/replies?period=2026-11')" 403 "replies with the send scope"
expect_eq "$(req $READ GET '/v1/replies')" 400 "replies without a period"
expect_err bad_request period
expect_eq "$(req $READ GET '/v1/replies?period=2026-13')" 400 "bad period"
expect_err bad_request period
expect_eq "$(req $READ GET '/v1/replies?period=2026-11&since=yesterday')" 400 "bad since"
expect_err bad_request since
expect_eq "$(req $READ GET '/v1/replies?period=2026-11&limit=0')" 400 "bad limit"
expect_err bad_request limit
expect_eq "$(req $READ GET '/v1/replies?period=2026-11&cursor=zzz')" 400 "bad cursor"
expect_err bad_request cursor
expect_eq "$(req $READ GET '/v1/replies?period=2026-11')" 200 "replies"
expect_eq "$(b .replies.#)" 3 "three replies"
expect_eq "$(b .more)" false "one page"
expect_eq "$(b .replies.0.phone)" "139****0001" "masked for the read scope"
expect_eq "$(b .replies.0.ratings)" "[1,1,2,1]" "ratings"
expect_eq "$(b .replies.0.suggestion)" "希望提高办案效率" "suggestion"
expect_eq "$(b .replies.0.case_no)" "A-1" "case number"
expect_eq "$(b .replies.2.status)" unparsed "oldest first; unparsed kept"
grep -q 13900000001 "$B" && fail "a full number for the read scope"
expect_eq "$(req $CONT GET '/v1/replies?period=2026-11')" 200 "replies with the contacts scope"
expect_eq "$(b .replies.0.phone)" "+8613900000001" "whole numbers for the contacts scope"
# pages of one, by cursor
expect_eq "$(req $READ GET '/v1/replies?period=2026-11&limit=2')" 200 "page 1"
expect_eq "$(b .replies.#)" 2 "page 1 size"
expect_eq "$(b .more)" true "more after page 1"
CUR=$(b .next_cursor)
case $CUR in *139000*) fail "the cursor carries a number: $CUR" ;; esac
expect_eq "$(req $READ GET "/v1/replies?period=2026-11&limit=2&cursor=$CUR")" 200 "page 2"
expect_eq "$(b .replies.#)" 1 "page 2 size"
expect_eq "$(b .replies.0.case_no)" "A-3" "page 2 continues after page 1"
expect_eq "$(b .more)" false "last page"
expect_eq "$(req $READ GET "/v1/replies?period=2026-11&since=$AT")" 200 "since (ms)"
expect_eq "$(b .replies.#)" 2 "replies after since"
expect_eq "$(req $READ GET "/v1/replies?period=2026-11&since=2026-11-23T17:00:01%2B08:00")" 200 "since (ISO 8601)"
expect_eq "$(b .replies.#)" 1 "replies after an ISO since"

# ---- GET /v1/surveys/{period}/report: the CLI's figures
expect_eq "$(req "" GET /v1/surveys/2026-11/report)" 401 "report without a token"
expect_eq "$(req $SEND GET /v1/surveys/2026-11/report)" 403 "report with the send scope"
expect_eq "$(req $READ GET /v1/surveys/2026-1x/report)" 400 "report of a bad period"
expect_err bad_request period
expect_eq "$(req $READ GET /v1/surveys/2026-11/report)" 200 "report"
cp "$B" "$TEST_TMP/api_report.json"
$A report survey --period 2026-11 --json > "$TEST_TMP/cli_report.json" || fail "CLI report"
for f in .period .run_state .total.surveys .total.sent .total.replied .total.response_rate \
         .total.aspects.0.counts .total.aspects.2.counts .by_department.刑检一部.surveys \
         .by_prosecutor.李四.replied .suggestions.# .unparsed.# .unparsed.0.phone .optouts_outside_surveys; do
    expect_eq "$(jget $f < "$TEST_TMP/api_report.json")" "$(jget $f < "$TEST_TMP/cli_report.json")" "report figure $f"
done
expect_eq "$(jget .total.replied < "$TEST_TMP/api_report.json")" 3 "replied in the report"

# ---- POST /v1/optouts, DELETE /v1/optouts/{phone}
expect_eq "$(post "" /v1/optouts '{"phone":"13900000009"}')" 401 "opt-out without a token"
expect_eq "$(post $READ /v1/optouts '{"phone":"13900000009"}')" 403 "opt-out with the read scope"
expect_eq "$(post $CONT /v1/optouts '{"phone":"1390000"}')" 422 "bad number"
expect_err invalid phone
expect_eq "$(post $CONT /v1/optouts '{}')" 422 "no number"
expect_err invalid phone
expect_eq "$(post $CONT /v1/optouts '{"phone":"13900000009"}')" 201 "opted out"
expect_eq "$(b .opted_out)" true "opted_out"
$A optout list | jget .+8613900000009 > /dev/null || fail "the API's opt-out is not on the list"
expect_eq "$(post $CONT /v1/optouts '{"phone":"+86 139 0000 0009"}')" 200 "opted out again"
expect_eq "$(b .changed)" false "no change the second time"
expect_eq "$(req $READ DELETE /v1/optouts/13900000009)" 403 "remove with the read scope"
expect_eq "$(req $CONT DELETE /v1/optouts/139x)" 422 "remove a bad number"
expect_err invalid phone
expect_eq "$(req $CONT DELETE /v1/optouts/13900000009)" 200 "opt-out removed"
$A optout list | grep -q 8613900000009 && fail "still on the opt-out list"
expect_eq "$(req $CONT DELETE /v1/optouts/13900000009)" 404 "not on the list"
expect_err not_found phone

# ---- bulletin lists
expect_eq "$(post $READ /v1/lists/deputies/members '{"phone":"13800000001"}')" 403 "list with the read scope"
expect_eq "$(post $BUL /v1/lists/deputies/members '{"phone":"13800000001","name":"张三","org":"市人大"}')" 201 "member added"
expect_eq "$(post $BUL /v1/lists/deputies/members '{"members":[{"phone":"13800000002","sms_only":true},{"phone":"138"},{"phone":"13800000003","sms_only":"yes"}]}')" 200 "members batch"
expect_eq "$(b .added)" 1 "batch added"
expect_eq "$(b .results.1.error.field)" "members[1].phone" "bad member phone named"
expect_eq "$(b .results.2.error.field)" "members[2].sms_only" "bad sms_only named"
$A list show deputies --json > "$TEST_TMP/list.json" || fail "list show"
expect_eq "$(jget .# < "$TEST_TMP/list.json")" 2 "the CLI sees the API's members"
expect_eq "$(jget .1.sms_only < "$TEST_TMP/list.json")" true "sms_only kept"
expect_eq "$(req $BUL GET /v1/lists/deputies)" 200 "list"
expect_eq "$(b .count)" 2 "list count"
expect_eq "$(b .members.0.name)" "张三" "member name"
expect_eq "$(b .members.0.phone)" "138****0001" "masked without the contacts scope"
expect_eq "$(req $BUL GET '/v1/lists/a:b')" 400 "bad list name"
expect_err bad_request list
expect_eq "$(req $BUL DELETE /v1/lists/deputies/members/13800000002)" 200 "member removed"
expect_eq "$(req $BUL DELETE /v1/lists/deputies/members/13800000002)" 404 "member not there"
expect_err not_found phone
expect_eq "$(req $BUL GET /v1/lists/deputies)" 200 "list after removal"
expect_eq "$(b .count)" 1 "one member left"

# ---- POST /v1/bulletins: checks before anything is written (sends: bulletin_test.sh)
expect_eq "$(post $READ /v1/bulletins '{"title":"检察工作通讯"}')" 403 "bulletin with the read scope"
expect_eq "$(post $BUL /v1/bulletins '{}')" 422 "bulletin without a title"
expect_err invalid title
expect_eq "$(post $BUL /v1/bulletins '{"title":"检察工作通讯","lists":["deputies"]}')" 422 "bulletin without slides"
expect_err invalid slides
expect_eq "$(post $BUL /v1/bulletins '{"title":"检察工作通讯","lists":"deputies","slides":[{"text":"x"}]}')" 422 "lists not an array"
expect_err invalid lists
expect_eq "$(post $BUL /v1/bulletins '{"title":"检察工作通讯","lists":["deputies"],"slides":[{"text":"x"}],"content":"/etc"}')" 422 "unknown member"
expect_err invalid content
expect_eq "$(post $BUL /v1/bulletins '{"title":"检察工作通讯","lists":["deputies"],"slides":[{"text":"x","duration_s":0}]}')" 422 "bad duration"
expect_err invalid "slides[0].duration_s"
expect_eq "$(post $BUL /v1/bulletins '{"title":"检察工作通讯","lists":["deputies"],"send_at":"soon","slides":[{"text":"x"}]}')" 422 "bad send_at"
expect_err invalid send_at
expect_eq "$($A bulletin last 检察工作通讯)" 0 "refused requests take no issue number"

# ---- Redis down: 503 at once on every new endpoint; service again when it returns
redis_stop
for call in "$CONT POST /v1/contacts" "$READ GET /v1/replies?period=2026-11" "$READ GET /v1/surveys/2026-11/report" \
            "$CONT POST /v1/optouts" "$CONT DELETE /v1/optouts/13900000009" "$BUL GET /v1/lists/deputies" \
            "$BUL POST /v1/lists/deputies/members" "$BUL DELETE /v1/lists/deputies/members/13800000001"; do
    set -- $call
    if [ "$2" = POST ]; then
        body=$ONE
        [ "$3" = /v1/optouts ] && body='{"phone":"13900000009"}'
        [ "$3" = /v1/lists/deputies/members ] && body='{"phone":"13800000001"}'
        st=$(post "$1" "$3" "$body")
    else
        st=$(req "$1" "$2" "$3")
    fi
    expect_eq "$st" 503 "$2 $3 with redis down (body $(cat "$B"))"
    expect_err unavailable
done
redis_start "$TEST_TMP/redis" || exit 1
wait_until 20 sh -c "curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $READ' '$U/v1/replies?period=2026-11' | grep -qx 200" \
    || fail "replies not served again after redis returned"
expect_eq "$(req $READ GET '/v1/replies?period=2026-11')" 200 "replies after redis returned"
expect_eq "$(b .replies.#)" 3 "the replies are still there"

gw_stop apis || fail "gateway did not stop cleanly"
