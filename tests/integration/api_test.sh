# api_test.sh -- the HTTP API through curl against a running gateway (real
# redis-server, real libmicrohttpd on 127.0.0.1, a free port): auth and
# scopes, every error status with the field named, a single message 202 then
# 200 with the same id, the batch with mixed items, GET by id and by key,
# templates and preview (checked against `herald render`), the generic
# provider callback, rate limit, body and depth limits, a slow client,
# health/readiness/metrics, 503 while Redis is down and service again when
# it returns, and a clean SIGTERM.
set -u
. "$(dirname "$0")/../lib.sh"
redis_start "$TEST_TMP/redis" || exit 1
trap 'gw_stop_all; redis_stop' EXIT
C=$TEST_TMP/h.conf
conf_base "$C" api1
# the shipped templates plus one for Kannel clients' free text
mkdir -p "$TEST_TMP/tpl"
cp "$ROOT_DIR"/templates/shipped/*.tpl "$TEST_TMP/tpl/"
cat > "$TEST_TMP/tpl/kannel_text.tpl" <<'TPL'
# Free text from systems built for Kannel (api.kannel.template).
name: kannel_text
family: case_stage
required: text
max_parts: 4
description: Kannel 兼容接口的自由文本
---
{{text}}
TPL
sed -i "s|templates_dir = .*|templates_dir = \"$TEST_TMP/tpl\";|" "$C"
SEND=send-token-0123456789abcdef
READ=read-token-0123456789abcdef
SLOW=rate-token-0123456789abcdef
CB=callback-secret-0123456789
cat >> "$C" <<CONF
routes = (
  { name = "good"; driver = "sink"; sink = { file = "$TEST_TMP/sink.jsonl"; }; },
  { name = "ali"; driver = "sink"; families = [ "bulletin" ]; },
  { name = "tx"; driver = "sink"; families = [ "bulletin" ]; },
  { name = "mmsc"; driver = "sink"; families = [ "bulletin" ]; }
);
api = {
  enabled = true;
  port = 0;
  timeout_s = 2;
  max_body_bytes = 65536;
  admin_token_file = "$TEST_TMP/run/api-token";
  tokens = (
    { name = "case-system"; token = "$SEND"; scopes = [ "send" ]; },
    { name = "reader"; token = "$READ"; scopes = [ "read" ]; },
    { name = "limited"; token = "$SLOW"; scopes = [ "read" ]; rate_per_minute = 3; }
  );
  kannel = { enabled = true; username = "kuser"; password = "kpass-123"; template = "kannel_text"; };
  callbacks = ( { route = "good"; secret = "$CB"; },
                { route = "ali"; secret = "$CB-ali"; format = "aliyun"; },
                { route = "tx"; secret = "$CB-tx"; format = "tencent"; },
                { route = "mmsc"; secret = "$CB-mm7"; format = "mm7"; } );
};
CONF

gw_start api1 "$C" || exit 1
PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$TEST_TMP/api1.log" | head -1 | cut -d: -f2)
[ -n "$PORT" ] || fail "no listening line in the log"
U=http://127.0.0.1:$PORT
B=$TEST_TMP/body

# req TOKEN METHOD PATH [curl args...]: prints the status; the body goes to $B
req() {
    local tok=$1 m=$2 p=$3; shift 3
    local auth=()
    [ -n "$tok" ] && auth=(-H "Authorization: Bearer $tok")
    curl -s -m 20 -o "$B" -w '%{http_code}' -X "$m" "${auth[@]}" "$@" "$U$p"
}
# post TOKEN PATH JSON
post() { req "$1" POST "$2" -H 'Content-Type: application/json' --data-binary "$3"; }
# expect_err STATUS CODE [FIELD]: the last answer was this error
expect_err() {
    expect_eq "$(jget .error.code < "$B")" "$2" "error code (body $(cat "$B"))"
    [ -n "${3:-}" ] && expect_eq "$(jget .error.field < "$B")" "$3" "error field (body $(cat "$B"))"
    jget .error.message < "$B" > /dev/null || fail "error without a message: $(cat "$B")"
}

V='"vars":{"name":"张三","case_no":"某检刑诉〔2026〕1号","accepted_on":"2026年11月27日","office":"某市人民检察院","office_phone":"0571-88888888"}'
MSG="{\"template\":\"rights_notice_suspect\",\"to\":\"+86 138-0013-8000\",$V,\"key\":\"case-1-notice\"}"

# ---- the admin token: generated, private, working
[ -f "$TEST_TMP/run/api-token" ] || fail "admin token file not generated"
expect_eq "$(stat -c %a "$TEST_TMP/run/api-token")" 600 "admin token file mode"
ADMIN=$(cat "$TEST_TMP/run/api-token")
[ ${#ADMIN} -ge 32 ] || fail "admin token too short"
grep -q "$TEST_TMP/run/api-token" "$TEST_TMP/api1.log" || fail "admin token path not printed"

# ---- health: open, no token
expect_eq "$(req "" GET /healthz)" 200 "healthz"
expect_eq "$(jget .status < "$B")" alive "healthz body"
expect_eq "$(req "" GET /readyz)" 200 "readyz: $(cat "$B")"
expect_eq "$(jget .ready < "$B")" true "ready"
expect_eq "$(jget .families.rights_notice.0 < "$B")" good "route up for rights_notice"

# ---- authentication and scopes
expect_eq "$(post "" /v1/messages "$MSG")" 401 "no token"
expect_err 401 unauthorized
curl -s -D - -o /dev/null -X POST "$U/v1/messages" | grep -qi '^WWW-Authenticate: Bearer' || fail "401 without WWW-Authenticate"
expect_eq "$(post not-a-valid-token-at-all /v1/messages "$MSG")" 401 "wrong token"
expect_eq "$(post "$READ" /v1/messages "$MSG")" 403 "read token cannot send"
expect_err 403 forbidden
expect_eq "$(req "$SEND" GET /v1/messages/abc)" 403 "send token cannot read"
expect_eq "$(req "$SEND" GET /metrics)" 403 "send token cannot read metrics"

# ---- routing errors
expect_eq "$(req "$SEND" GET /v1/nothing)" 404 "unknown endpoint"
expect_err 404 not_found
expect_eq "$(req "$SEND" DELETE /v1/messages)" 405 "method not allowed"
expect_err 405 method_not_allowed
curl -s -D - -o /dev/null -X PUT "$U/v1/messages" | grep -qi '^Allow: POST, GET' || fail "405 without Allow"

# ---- bad requests, each naming what is wrong; nothing is written
expect_eq "$(req "$SEND" POST /v1/messages -H 'Content-Type: text/plain' --data-binary "$MSG")" 415 "text/plain"
expect_err 415 unsupported_media_type
expect_eq "$(post "$SEND" /v1/messages '{"template":"rights_notice_suspect",')" 400 "truncated JSON"
expect_err 400 bad_json
grep -q "line 1" "$B" || fail "bad JSON error says not where: $(cat "$B")"
expect_eq "$(post "$SEND" /v1/messages '[1,2]')" 400 "not an object"
expect_eq "$(post "$SEND" /v1/messages '')" 400 "empty body"
expect_eq "$(post "$SEND" /v1/messages "{\"template\":\"rights_notice_suspect\",$V}")" 422 "missing to"
expect_err 422 invalid to
expect_eq "$(post "$SEND" /v1/messages "{\"template\":\"rights_notice_suspect\",\"to\":\"12345\",$V}")" 422 "bad number"
expect_err 422 invalid to
expect_eq "$(post "$SEND" /v1/messages "{\"template\":\"no_such\",\"to\":\"13800138000\",$V}")" 422 "unknown template"
expect_err 422 invalid template
expect_eq "$(post "$SEND" /v1/messages '{"template":"evaluation_survey","to":"13800138000","vars":{"perod":"x"}}')" 422 "unknown variable"
expect_err 422 invalid vars.perod
expect_eq "$(post "$SEND" /v1/messages '{"template":"evaluation_survey","to":"13800138000","vars":{}}')" 422 "missing variable"
expect_err 422 invalid vars.period
expect_eq "$(post "$SEND" /v1/messages '{"template":"evaluation_survey","to":"13800138000","vars":{"period":5}}')" 422 "variable not a string"
expect_err 422 invalid vars.period
expect_eq "$(post "$SEND" /v1/messages "{\"tmplate\":\"x\",\"to\":\"13800138000\"}")" 422 "unknown field"
expect_err 422 invalid tmplate
expect_eq "$(post "$SEND" /v1/messages "{\"template\":\"evaluation_survey\",\"to\":\"13800138000\",\"vars\":{\"period\":\"x\"},\"send_at\":\"tomorrow\"}")" 422 "bad send_at"
expect_err 422 invalid send_at
"$HERALD" -c "$C" queue stats > "$TEST_TMP/s.json"
expect_eq "$(jget .lanes.urgent.depth < "$TEST_TMP/s.json")" 0 "urgent depth after refused input"
expect_eq "$(jget .lanes.bulk.depth < "$TEST_TMP/s.json")" 0 "bulk depth after refused input"

# ---- limits: body size (declared and chunked), nesting depth
head -c 70000 /dev/zero | tr '\0' ' ' > "$TEST_TMP/big"
expect_eq "$(req "$SEND" POST /v1/messages -H 'Content-Type: application/json' --data-binary @"$TEST_TMP/big")" 413 "oversized body"
expect_err 413 too_large
expect_eq "$(req "$SEND" POST /v1/messages -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$TEST_TMP/big")" 413 "oversized chunked body"
bighdr=$(head -c 40000 /dev/zero | tr '\0' a)
expect_eq "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $bighdr" "$U/healthz")" 431 "oversized headers"
deep=$(printf '%.0s[' $(seq 1 40)); deep="{\"messages\":$deep$(printf '%.0s]' $(seq 1 40))}"
expect_eq "$(post "$SEND" /v1/messages "$deep")" 400 "deep JSON"
grep -q "nested" "$B" || fail "deep JSON message: $(cat "$B")"

# ---- one message: 202, then the same key answers 200 with the first id
expect_eq "$(post "$SEND" /v1/messages "$MSG")" 202 "first send: $(cat "$B")"
id=$(jget .id < "$B")
expect_eq "$(jget .encoding < "$B")" ucs2 "encoding"
parts=$(jget .parts < "$B")
expect_eq "$(post "$SEND" /v1/messages "$MSG")" 200 "same key again"
expect_eq "$(jget .id < "$B")" "$id" "same key, same id"
expect_eq "$(jget .duplicate < "$B")" true "duplicate flag"
# the same key for another recipient is a conflict, never a silent no-op
expect_eq "$(post "$SEND" /v1/messages "${MSG/138-0013-8000/139-0000-0099}")" 409 "key reused for another number"
expect_err 409 conflict key
expect_eq "$(jget .error.id < "$B")" "$id" "conflict names the first message"
"$HERALD" -c "$C" render --template rights_notice_suspect --var name=张三 --var "case_no=某检刑诉〔2026〕1号" \
    --var accepted_on=2026年11月27日 --var office=某市人民检察院 --var office_phone=0571-88888888 --json > "$TEST_TMP/r.json"
expect_eq "$parts" "$(jget .parts < "$TEST_TMP/r.json")" "parts vs render"
wait_until 20 sh -c "grep -q '\"$id\"' '$TEST_TMP/sink.jsonl' 2>/dev/null" || fail "message $id not sent"
expect_eq "$(grep -c "\"$id\"" "$TEST_TMP/sink.jsonl")" 1 "sent once"

# ---- GET by id and by key
wait_until 10 sh -c "curl -s -H 'Authorization: Bearer $READ' '$U/v1/messages/$id' | jget .status | grep -qx sent" || fail "status not sent"
expect_eq "$(req "$READ" GET "/v1/messages/$id")" 200 "get by id"
expect_eq "$(jget .id < "$B")" "$id" "record id"
expect_eq "$(jget .to < "$B")" "+8613800138000" "record number"
expect_eq "$(jget .vars.name < "$B")" 张三 "record vars as an object"
expect_eq "$(jget .timeline.# < "$B")" 3 "timeline (queued, sending, sent)"
expect_eq "$(jget .timeline.2.status < "$B")" sent "timeline end"
expect_eq "$(jget .text < "$B")" "$(jget .text < "$TEST_TMP/r.json")" "recorded text"
expect_eq "$(req "$READ" GET "/v1/messages?key=case-1-notice")" 200 "get by key"
expect_eq "$(jget .id < "$B")" "$id" "id by key"
expect_eq "$(req "$READ" GET "/v1/messages?key=never-used")" 404 "unknown key"
expect_err 404 not_found key
expect_eq "$(req "$READ" GET "/v1/messages")" 400 "no key"
expect_err 400 bad_request key
expect_eq "$(req "$READ" GET "/v1/messages/no-such-id")" 404 "unknown id"
expect_err 404 not_found id

# ---- batch: valid and invalid items, a result for each; only the valid are written
BATCH="{\"messages\":[
 {\"template\":\"evaluation_survey\",\"to\":\"13900000001\",\"vars\":{\"period\":\"2026年11月\"},\"key\":\"b-1\"},
 {\"template\":\"evaluation_survey\",\"to\":\"139\",\"vars\":{\"period\":\"2026年11月\"},\"key\":\"b-2\"},
 {\"template\":\"evaluation_survey\",\"to\":\"13900000003\",\"vars\":{\"period\":\"2026年11月\"},\"key\":\"b-3\"},
 {\"template\":\"nope\",\"to\":\"13900000004\",\"key\":\"b-4\"},
 \"not an object\",
 {\"template\":\"evaluation_survey\",\"to\":\"13900000001\",\"vars\":{\"period\":\"2026年11月\"},\"key\":\"b-1\"},
 {\"template\":\"evaluation_survey\",\"to\":\"13900000006\",\"vars\":{\"period\":\"2026年11月\"},\"key\":\"b-1\"}
]}"
expect_eq "$(post "$SEND" /v1/messages "$BATCH")" 200 "batch: $(cat "$B")"
cp "$B" "$TEST_TMP/batch.json"
J() { jget "$1" < "$TEST_TMP/batch.json"; }
expect_eq "$(J .results.#)" 7 "a result per item"
expect_eq "$(J .accepted)" 2 "accepted"
expect_eq "$(J .duplicates)" 1 "duplicates"
expect_eq "$(J .rejected)" 4 "rejected"
expect_eq "$(J .results.0.status)" 202 "item 0"
expect_eq "$(J .results.1.status)" 422 "item 1"
expect_eq "$(J .results.1.error.field)" "messages[1].to" "item 1 field"
expect_eq "$(J .results.2.status)" 202 "item 2"
expect_eq "$(J .results.3.error.field)" "messages[3].template" "item 3 field"
expect_eq "$(J .results.4.error.field)" "messages[4]" "item 4 field"
expect_eq "$(J .results.5.status)" 200 "item 5 (same key as item 0)"
expect_eq "$(J .results.5.id)" "$(J .results.0.id)" "item 5 id"
expect_eq "$(J .results.6.status)" 409 "item 6 (key of item 0, another number)"
expect_eq "$(J .results.6.error.field)" "messages[6].key" "item 6 field"
expect_eq "$(req "$READ" GET "/v1/messages?key=b-2")" 404 "an invalid item wrote nothing"
expect_eq "$(req "$READ" GET "/v1/messages?key=b-4")" 404 "an invalid item wrote nothing (template)"
expect_eq "$(req "$READ" GET "/v1/messages?key=b-3")" 200 "a valid item is findable"
big='{"messages":['; for i in $(seq 1 1001); do big+='{},'; done; big="${big%,}]}"
expect_eq "$(post "$SEND" /v1/messages "$big")" 413 "batch over 1000"
expect_err 413 too_large messages

# ---- templates and preview
expect_eq "$(req "$READ" GET /v1/templates)" 200 "templates"
expect_eq "$(jget .templates.# < "$B")" "$(ls "$TEST_TMP"/tpl/*.tpl | wc -l)" "template count"
expect_eq "$(post "$SEND" /v1/templates/rights_notice_suspect/preview "{$V}")" 200 "preview: $(cat "$B")"
expect_eq "$(jget .text < "$B")" "$(jget .text < "$TEST_TMP/r.json")" "preview text = render text"
expect_eq "$(jget .parts < "$B")" "$(jget .parts < "$TEST_TMP/r.json")" "preview parts"
expect_eq "$(jget .encoding < "$B")" ucs2 "preview encoding"
expect_eq "$(jget .forcing_ucs2.0 < "$B")" "【" "character that forced UCS-2"
expect_eq "$(post "$READ" /v1/templates/evaluation_survey/preview '{"vars":{}}')" 422 "preview missing var"
expect_err 422 invalid vars.period
expect_eq "$(post "$READ" /v1/templates/no_such/preview '{}')" 404 "preview unknown template"
expect_err 404 not_found name

# ---- rate limit: 3 a minute, the 4th is 429 with Retry-After
for i in 1 2 3; do expect_eq "$(req "$SLOW" GET /v1/templates)" 200 "limited token request $i"; done
expect_eq "$(req "$SLOW" GET /v1/templates)" 429 "over the rate"
expect_err 429 rate_limited
ra=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $SLOW" "$U/v1/templates" | tr -d '\r' | sed -n 's/^Retry-After: //Ip')
[ -n "$ra" ] && [ "$ra" -ge 1 ] && [ "$ra" -le 60 ] || fail "Retry-After '$ra'"
expect_eq "$(req "$READ" GET /v1/templates)" 200 "another token is not limited"

# ---- provider callback (generic): a form and JSON in; bad secret, route, number out
expect_eq "$(req "" POST /v1/inbound/good -H "X-Herald-Secret: $CB" --data 'from=13900000009&to=1069000&text=%E6%BB%A1%E6%84%8F+1121')" 200 "callback form"
expect_eq "$(req "" POST "/v1/inbound/good?secret=$CB" -H 'Content-Type: application/json' --data '{"from":"+8613900000008","to":"1069000","text":"不满意"}')" 200 "callback JSON"
expect_eq "$(req "" POST /v1/inbound/good -H "X-Herald-Secret: wrong-secret-0000000000" --data 'from=13900000009&text=x')" 401 "callback bad secret"
expect_err 401 unauthorized
expect_eq "$(req "" POST /v1/inbound/good --data 'from=13900000009&text=x')" 401 "callback no secret"
expect_eq "$(req "" POST /v1/inbound/other -H "X-Herald-Secret: $CB" --data 'from=13900000009&text=x')" 404 "callback unknown route"
expect_eq "$(req "" POST /v1/inbound/good -H "X-Herald-Secret: $CB" --data 'from=abc&text=x')" 422 "callback bad number"
expect_err 422 invalid from
expect_eq "$(req "" POST /v1/inbound/good -H "X-Herald-Secret: $CB" --data 'from=13900000009')" 422 "callback no text"
expect_err 422 invalid text
redis-cli -s "$REDIS_SOCK" XRANGE '{t}:inbound' - + > "$TEST_TMP/inbound.txt"
expect_eq "$(grep -c '^route$' "$TEST_TMP/inbound.txt")" 2 "two inbound stored"
grep -qx "满意 1121" "$TEST_TMP/inbound.txt" || fail "form text not decoded: $(cat "$TEST_TMP/inbound.txt")"
grep -qx "+8613900000009" "$TEST_TMP/inbound.txt" || fail "inbound number not normalised"

# ---- provider formats: Alibaba Cloud (SmsUp, SmsReport) and Tencent Cloud (reply, status)
AJ=(-H 'Content-Type: application/json')
expect_eq "$(req "" POST "/v1/inbound/ali?secret=$CB-ali" "${AJ[@]}" --data '[
  {"phone_number":"13900000011","send_time":"2026-11-27 10:00:00","content":"1121","sign_name":"XX市人民检察院","dest_code":"1234","sequence_id":1},
  {"phone_number":"12","content":"bad number","sequence_id":2}]')" 200 "aliyun SmsUp"
expect_eq "$(jget .code < "$B")" 0 "aliyun answer code"
expect_eq "$(jget .msg < "$B")" "接收成功" "aliyun answer msg"
expect_eq "$(req "" POST "/v1/inbound/ali?secret=$CB-ali" "${AJ[@]}" --data '[
  {"phone_number":"13900000011","send_time":"2026-11-27 10:00:00","report_time":"2026-11-27 10:00:05","success":true,"err_code":"DELIVERED","err_msg":"用户接收成功","sms_size":"1","biz_id":"900001","out_id":"x"}]')" 200 "aliyun SmsReport"
expect_eq "$(jget .code < "$B")" 0 "aliyun report answer"
expect_eq "$(req "" POST "/v1/inbound/ali?secret=wrong-secret-000000000" "${AJ[@]}" --data '[]')" 401 "aliyun bad secret"
expect_eq "$(jget .code < "$B")" 401 "aliyun bad secret answered in its format"
expect_eq "$(req "" POST "/v1/inbound/ali?secret=$CB-ali" "${AJ[@]}" --data '{"not":"an array"}')" 400 "aliyun not an array"
expect_eq "$(req "" POST /v1/inbound/tx -H "X-Herald-Secret: $CB-tx" "${AJ[@]}" --data '{"extend":"","mobile":"13900000012","nationcode":"86","sign":"XX市人民检察院","text":"不满意","time":1796099989}')" 200 "tencent reply"
expect_eq "$(jget .result < "$B")" 0 "tencent answer result"
expect_eq "$(jget .errmsg < "$B")" OK "tencent answer errmsg"
expect_eq "$(req "" POST /v1/inbound/tx -H "X-Herald-Secret: $CB-tx" "${AJ[@]}" --data '[{"user_receive_time":"2026-11-27 10:00:05","nationcode":"86","mobile":"13900000012","report_status":"FAIL","errmsg":"MK:0001","description":"failed","sid":"sid-1"}]')" 200 "tencent status"
expect_eq "$(req "" POST /v1/inbound/tx -H "X-Herald-Secret: $CB" "${AJ[@]}" --data '[]')" 401 "tencent bad secret (another route's)"
expect_eq "$(jget .result < "$B")" 401 "tencent bad secret answered in its format"
MM7='<?xml version="1.0"?>
<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Header>
<mm7:TransactionID xmlns:mm7="http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-5-MM7-1-2" env:mustUnderstand="1">tx-4711</mm7:TransactionID>
</env:Header><env:Body>
<DeliveryReportReq xmlns="http://www.3gpp.org/ftp/Specs/archive/23_series/23.140/schema/REL-5-MM7-1-2">
<MM7Version>5.3.0</MM7Version><MMSRelayServerID>mmsc</MMSRelayServerID><MessageID>mms-0042</MessageID>
<Recipient><Number>13900000014</Number></Recipient><Sender><Number>1065000</Number></Sender>
<Date>2026-11-27T10:00:00+08:00</Date><MMStatus>Retrieved</MMStatus></DeliveryReportReq></env:Body></env:Envelope>'
expect_eq "$(req "" POST /v1/inbound/mmsc -H "X-Herald-Secret: $CB-mm7" -H 'Content-Type: text/xml; charset=utf-8' --data-binary "$MM7")" 200 "MM7 DeliveryReportReq"
grep -q "<StatusCode>1000</StatusCode>" "$B" || fail "MM7 answer: $(cat "$B")"
grep -q ">tx-4711</mm7:TransactionID>" "$B" || fail "MM7 TransactionID not echoed: $(cat "$B")"
grep -q "DeliveryReportRsp" "$B" || fail "MM7 answer is not a DeliveryReportRsp"
expect_eq "$(req "" POST /v1/inbound/mmsc -H "X-Herald-Secret: $CB" -H 'Content-Type: text/xml' --data-binary "$MM7")" 401 "MM7 bad secret"
grep -q "<StatusCode>4000</StatusCode>" "$B" || fail "MM7 401 answer: $(cat "$B")"
expect_eq "$(req "" POST /v1/inbound/mmsc -H "X-Herald-Secret: $CB-mm7" -H 'Content-Type: text/xml' --data-binary '<x/>')" 400 "MM7 not a report"
grep -q "mms-0042.*delivered (Retrieved)\|reference mms-0042): delivered" "$TEST_TMP/api1.log" || fail "MM7 report not logged"
redis-cli -s "$REDIS_SOCK" XRANGE '{t}:inbound' - + > "$TEST_TMP/inbound.txt"
expect_eq "$(grep -c '^route$' "$TEST_TMP/inbound.txt")" 4 "aliyun and tencent replies stored (the bad item skipped)"
grep -qx "+8613900000011" "$TEST_TMP/inbound.txt" || fail "aliyun reply number"
grep -qx "+8613900000012" "$TEST_TMP/inbound.txt" || fail "tencent reply number"
grep -q "aliyun callback: item 1 skipped: from:" "$TEST_TMP/api1.log" || fail "skipped aliyun item not logged"

# ---- Kannel-compatible sendsms: the answer reads as Kannel's
K=/cgi-bin/sendsms
expect_eq "$(req "" GET "$K?username=kuser&password=kpass-123&to=13900000021&text=%E6%82%A8%E7%9A%84%E6%A1%88%E4%BB%B6%E5%B7%B2%E5%8F%97%E7%90%86")" 202 "kannel GET"
expect_eq "$(cat "$B")" "0: Accepted for delivery" "kannel answer"
expect_eq "$(req "" POST "$K" --data 'username=kuser&password=kpass-123&to=13900000022+13900000023&text=hello+from+kannel')" 202 "kannel POST form, two receivers"
expect_eq "$(req "" GET "$K?username=kuser&password=wrong&to=13900000024&text=x")" 403 "kannel wrong password"
expect_eq "$(cat "$B")" "Authorization failed for sendsms" "kannel 403 text"
expect_eq "$(req "" GET "$K?username=kuser&password=kpass-123&text=x")" 400 "kannel no receiver"
expect_eq "$(req "" GET "$K?username=kuser&password=kpass-123&to=13900000025+12&text=x")" 400 "kannel bad receiver"
grep -q "Invalid message: to: " "$B" || fail "kannel bad receiver text: $(cat "$B")"
wait_until 20 sh -c "grep -q '+8613900000023' '$TEST_TMP/sink.jsonl'" || fail "kannel messages not sent"
grep '+8613900000021' "$TEST_TMP/sink.jsonl" | jget .text | grep -qx "【XX市人民检察院】您的案件已受理" || fail "kannel text: $(grep '+8613900000021' "$TEST_TMP/sink.jsonl")"
grep -q '+8613900000022' "$TEST_TMP/sink.jsonl" || fail "kannel first of two receivers"
grep -q '+8613900000025' "$TEST_TMP/sink.jsonl" && fail "a refused kannel request half-wrote"

# ---- metrics: Prometheus text with the queue and counters
expect_eq "$(req "$ADMIN" GET /metrics)" 200 "metrics with the admin token"
grep -q '^herald_queue_depth{lane="urgent"} ' "$B" || fail "no queue depth: $(head -20 "$B")"
grep -q '^herald_queue_oldest_age_seconds{lane="bulk"} ' "$B" || fail "no oldest age"
grep -q '^herald_messages_total{event="sent",family="rights_notice",route="good"} 1$' "$B" || fail "sent counter: $(grep messages_total "$B")"
grep -q '^herald_send_duration_seconds_count [1-9]' "$B" || fail "no send latency"
grep -q '^herald_route_up{route="good",driver="sink"} 1$' "$B" || fail "route up"
grep -q '^herald_inbound_total 4$' "$B" || fail "inbound count: $(grep inbound "$B")"
grep -q '^herald_delivery_reports_total{result="delivered"} 2$' "$B" || fail "delivered reports: $(grep reports "$B")"
grep -q '^herald_delivery_reports_total{result="failed"} 1$' "$B" || fail "failed reports"

# ---- a slow client is cut off after timeout_s (2 s)
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'POST /v1/messages HTTP/1.1\r\nHost: x\r\n' >&3
t0=$(date +%s)
timeout 10 cat <&3 > /dev/null
t1=$(date +%s)
exec 3<&-
[ $((t1 - t0)) -le 6 ] || fail "slow client held the connection $((t1 - t0)) s"

# ---- Redis down: 503 at once, never a hang; service again when it returns
redis_stop
t0=$(date +%s%N)
expect_eq "$(post "$SEND" /v1/messages "{\"template\":\"evaluation_survey\",\"to\":\"13900000010\",\"vars\":{\"period\":\"x\"}}")" 503 "send with redis down"
expect_err 503 unavailable
expect_eq "$(req "$READ" GET "/v1/messages/$id")" 503 "get with redis down"
expect_eq "$(req "" GET /readyz)" 503 "readyz with redis down"
expect_eq "$(jget .ready < "$B")" false "not ready"
grep -q redis "$B" || fail "readyz does not say why: $(cat "$B")"
expect_eq "$(req "" GET /healthz)" 200 "healthz with redis down"
expect_eq "$(req "" POST "/v1/inbound/ali?secret=$CB-ali" -H 'Content-Type: application/json' --data '[{"phone_number":"13900000013","content":"1"}]')" 503 "aliyun SmsUp with redis down"
expect_eq "$(jget .code < "$B")" 503 "aliyun told to retry"
t1=$(date +%s%N)
[ $(( (t1 - t0) / 1000000 )) -lt 5000 ] || fail "answers with redis down took $(( (t1 - t0) / 1000000 )) ms"
redis_start "$TEST_TMP/redis" || exit 1

# ---- Redis stopped while requests arrive: every answer is 2xx or 503, none hangs
load() {   # client number: 40 sends, one status a line
    local i
    for i in $(seq 1 40); do
        curl -s -m 10 -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $SEND" \
             -H 'Content-Type: application/json' "$U/v1/messages" \
             --data "{\"template\":\"evaluation_survey\",\"to\":\"13700000$(printf %03d $i)\",\"vars\":{\"period\":\"load-$1\"}}"
    done > "$TEST_TMP/load.$1"
}
lp=()
for c in 1 2 3 4; do load $c & lp+=($!); done
wait_until 20 sh -c "[ \$(cat '$TEST_TMP'/load.* 2>/dev/null | wc -l) -ge 8 ]" || fail "no answers under load"
redis_stop
wait_until 20 sh -c "[ \$(cat '$TEST_TMP'/load.* | grep -c 503) -ge 4 ]" || fail "no 503 while redis is stopped"
redis_start "$TEST_TMP/redis" || exit 1
wait "${lp[@]}"
cat "$TEST_TMP"/load.* | sort | uniq -c > "$TEST_TMP/load-summary"
expect_eq "$(cat "$TEST_TMP"/load.* | wc -l)" 160 "answers under load"
grep -vqE ' (200|202|503)$' "$TEST_TMP/load-summary" && fail "unexpected answers while redis stopped: $(cat "$TEST_TMP/load-summary")"
grep -qE ' 202$' "$TEST_TMP/load-summary" || fail "no message accepted around the outage"
kill -0 "${GW_PID[api1]}" || fail "the gateway died"
wait_until 10 sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' '$U/readyz')\" = 200 ]" || fail "not ready after redis returned"
expect_eq "$(post "$SEND" /v1/messages "{\"template\":\"evaluation_survey\",\"to\":\"13900000010\",\"vars\":{\"period\":\"x\"}}")" 202 "send after redis returned: $(cat "$B")"
expect_eq "$(req "$READ" GET "/v1/messages/$id")" 200 "the first message survived in the AOF"

gw_stop api1 || exit 1
grep -q "\[api\] stopped" "$TEST_TMP/api1.log" || fail "api not stopped cleanly"
grep -q "ERROR" "$TEST_TMP/api1.log" && fail "errors in the log: $(grep ERROR "$TEST_TMP/api1.log")"
grep -q "13800138000\|13900000001\|13900000009\|13900000011\|13900000012\|13900000014" "$TEST_TMP/api1.log" && fail "unmasked number in the log"
grep -qF -e "$SEND" -e "$READ" -e "$ADMIN" -e "$CB" "$TEST_TMP/api1.log" && fail "a secret in the log"
grep -q "犯罪嫌疑人\|满意" "$TEST_TMP/api1.log" && fail "message text in an info log"
echo "api_test: ok"
