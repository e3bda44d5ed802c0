# bulletin_test.sh -- the mobile bulletin end to end: lists (add, import
# with a validation report), an issue of three slides (Chinese text, a JPEG,
# a PNG) sent over MM7 to two overlapping lists through the MMSC emulator,
# each number once and byte for byte; delivery reports update the figures;
# an sms_only member and a permanently refused MMS get the fallback SMS
# (sink route); an over-budget issue is refused with its part sizes; issue
# numbers are never reused, even by two sends at once. Through the HTTP
# API: the MMSC's delivery reports (POST /v1/inbound/mmsc), the figures
# (GET /v1/bulletins/{title}/{issue}) and an issue sent with its content
# inline (POST /v1/bulletins, a base64 JPEG arriving byte for byte).
set -u
. "$(dirname "$0")/../lib.sh"
T=$TEST_TMP
EMU_PID=
cleanup() { gw_stop_all; [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null; redis_stop; }
trap cleanup EXIT

redis_start "$T/redis" || fail "redis"
"$EMULATORS/mmsc_emu" "$T/emu" 300 > "$T/emu.log" 2>&1 &
EMU_PID=$!
wait_until 10 test -s "$T/emu/port" || fail "emulator did not start"
PORT=$(cat "$T/emu/port")
EMU=http://127.0.0.1:$PORT

TITLE="检察工作通讯"
conf_base "$T/h.conf" bt
cat >> "$T/h.conf" <<CONF
routes = (
  { name = "mmsc"; driver = "mm7"; families = ["bulletin"]; send_timeout_ms = 5000;
    mm7 = { url = "$EMU/mm7"; vaspid = "901234"; vasid = "1065012345"; service_code = "BULLETIN";
            sender_address = "1065012345"; max_recipients = 2; max_size_kb = 100; }; },
  { name = "sms"; driver = "sink"; sink = { file = "$T/sink.jsonl"; }; }
);
bulletin = { titles = ["$TITLE", "预防犯罪"]; link_pattern = "https://example.gov.cn/b/{title}/{issue}"; };
api = { enabled = true; port = 0; admin_token_file = "";
        tokens = ( { name = "office"; token = "bulletin-token-0123456789"; scopes = [ "bulletin" ]; } );
        callbacks = ( { route = "mmsc"; secret = "mm7-secret-0123456789"; format = "mm7"; } ); };
CONF
H() { "$HERALD" -c "$T/h.conf" "$@"; }

# ---- lists ----
H list add deputies 13800000001 --name "张三" --org "市人大" >/dev/null || fail "list add"
H list add deputies "+86 138 0000 0002" --name "李四" --org "市人大" >/dev/null || fail "list add 2"
H list add deputies 13800000009 --name "王五" --sms-only >/dev/null || fail "list add sms_only"
cat > "$T/public.csv" <<'CSV'
phone,name,org,sms_only
13800000002,李四,市人大,0
13800000003,赵六,市民,no
12345,坏号码,市民,0
13800000004,钱七,市民,maybe
"13800000005","孙八, 市民","社区",false
13800000003,重复,市民,0
CSV
H list import public "$T/public.csv" > "$T/import.out"; rc=$?
expect_eq "$rc" 2 "import with refused rows exits 2"
grep -q "^line 4: refused: phone '12345'" "$T/import.out" || fail "bad number not reported: $(cat "$T/import.out")"
grep -q "^line 5: refused: sms_only 'maybe'" "$T/import.out" || fail "bad flag not reported"
grep -q "^line 7: refused: .*repeats line 3" "$T/import.out" || fail "duplicate not reported"
grep -q "3 rows accepted (3 new, 0 updated), 3 refused" "$T/import.out" || fail "summary: $(cat "$T/import.out")"
H list show public --json > "$T/public.json"
expect_eq "$(jget '.2.name' < "$T/public.json")" "孙八, 市民" "quoted CSV field"
expect_eq "$(jget '.#' < "$T/public.json")" 3 "public has 3 members"
expect_eq "$(jget '.0.phone' < "$T/public.json")" "+8613800000002" "numbers are normalised"
H list remove public 13800000009 >/dev/null 2>&1 && fail "removing a non-member succeeded"

# an opted-out number is skipped
H optout add 13800000005 >/dev/null || fail "optout add"

# ---- content: three slides ----
mkdir -p "$T/issue"
printf '本院召开检察开放日活动，邀请人大代表、政协委员参加。\n' > "$T/issue/01.txt"
mkimg jpeg 64 48 "$T/issue/02.jpg" || fail "mkimg jpeg"
printf '图为活动现场。' > "$T/issue/02.txt"
mkimg png 40 30 "$T/issue/03.png" || fail "mkimg png"
printf '第38期 检察开放日\n' > "$T/issue/subject.txt"

gw_start g "$T/h.conf" || fail "gateway"
API=http://127.0.0.1:$(grep -o 'listening on 127.0.0.1:[0-9]*' "$T/g.log" | head -1 | cut -d: -f2)
H bulletin send --title "$TITLE" --content "$T/issue" --list deputies --list public > "$T/send.json" \
    || fail "send: $(cat "$T/send.json")"
ISSUE=$(jget .issue < "$T/send.json")
expect_eq "$ISSUE" 1 "first issue number"
# union: 0001 0002 0009(sms_only) 0003 0005(opted out) -> 4 recipients, 3 MMS
expect_eq "$(jget .recipients < "$T/send.json")" 4 "recipients (union, opted-out skipped)"
expect_eq "$(jget .sms_only < "$T/send.json")" 1 "sms_only members"
expect_eq "$(jget .skipped_optout < "$T/send.json")" 1 "opted out"
expect_eq "$(jget .mms_requests < "$T/send.json")" 2 "3 MMS recipients in groups of 2"

stats() { H bulletin stats --title "$TITLE" --issue "$1" | jget "$2"; }
# is TITLE ISSUE FIELD VALUE: one figure of an issue has that value (for wait_until)
is() { [ "$(H bulletin stats --title "$1" --issue "$2" | jget "$3")" = "$4" ]; }
wait_until 20 is "$TITLE" 1 .mms_sent 3 || fail "mms_sent: $(H bulletin stats --title "$TITLE" --issue 1)"
[ -s "$T/emu/errors" ] && fail "emulator refused requests: $(cat "$T/emu/errors")"

# every number once, across the requests
cat "$T"/emu/req/*/recipients | sort > "$T/got"
printf '13800000001\n13800000002\n13800000003\n' > "$T/want"
diff "$T/want" "$T/got" >/dev/null || fail "recipients: $(cat "$T/got")"
# the content byte for byte, in every request
for d in "$T"/emu/req/*/; do
    cmp "$T/issue/01.txt" "$d/s1.txt" || fail "slide 1 text differs"
    cmp "$T/issue/02.jpg" "$d/s2.jpg" || fail "slide 2 JPEG differs"
    cmp "$T/issue/02.txt" "$d/s2.txt" || fail "slide 2 text differs"
    cmp "$T/issue/03.png" "$d/s3.png" || fail "slide 3 PNG differs"
    expect_eq "$(cat "$d/subject")" "第38期 检察开放日" "subject"
    grep -q '<par dur="8s">' "$d/content.smil" || fail "SMIL par duration"
done

# the sms_only member got the fallback SMS, with title, issue and link
wait_until 10 grep -q '"to":"+8613800000009"' "$T/sink.jsonl" || fail "no fallback SMS to the sms_only member"
grep '"to":"+8613800000009"' "$T/sink.jsonl" | grep -q "检察工作通讯》第1期" || fail "fallback text: $(cat "$T/sink.jsonl")"
grep '"to":"+8613800000009"' "$T/sink.jsonl" | grep -q "https://example.gov.cn/b/%E6%A3%80" || fail "fallback link"
expect_eq "$(grep -c '"to":"+86138000000' "$T/sink.jsonl")" 1 "only the sms_only member got an SMS"

# ---- delivery reports ----
# the request that carried two recipients
R2=$(for d in "$T"/emu/req/*/; do [ "$(wc -l < "$d/recipients")" = 2 ] && echo "$d"; done | head -1)
[ -n "$R2" ] || fail "no request with two recipients"
MID1=$(cat "$R2/mid")
FIRST=$(head -1 "$R2/recipients")
curl -s "$EMU/dlr?mid=$MID1&to=$FIRST&status=Retrieved&txid=tx-9" > "$T/dlr.xml"
H bulletin dlr "$T/dlr.xml" > "$T/dlr.rsp" || fail "dlr refused: $(cat "$T/dlr.rsp")"
grep -q "DeliveryReportRsp" "$T/dlr.rsp" && grep -q "<StatusCode>1000</StatusCode>" "$T/dlr.rsp" \
    || fail "DeliveryReportRsp: $(cat "$T/dlr.rsp")"
grep -q ">tx-9</mm7:TransactionID>" "$T/dlr.rsp" || fail "answer without the same TransactionID"
expect_eq "$(stats 1 .mms_retrieved)" 1 "retrieved after a report"
H bulletin dlr "$T/dlr.xml" > /dev/null || fail "repeated report"
expect_eq "$(stats 1 .mms_retrieved)" 1 "a repeated report counts once"
# an Expired report: failed, and the fallback SMS goes out
SECOND=$(sed -n 2p "$R2/recipients")
curl -s "$EMU/dlr?mid=$MID1&to=$SECOND&status=Expired" | H bulletin dlr - > /dev/null || fail "dlr expired"
expect_eq "$(stats 1 .failed)" 1 "failed after Expired"
wait_until 10 grep -q "\"to\":\"+86$SECOND\"" "$T/sink.jsonl" || fail "no fallback SMS after Expired"
expect_eq "$(stats 1 .sms_fallback)" 2 "sms fallbacks"
curl -s "$EMU/dlr?mid=mid-999&to=$SECOND&status=Retrieved" | H bulletin dlr - > /dev/null 2>&1 \
    && fail "a report for an unknown MessageID was accepted"

# ---- the MMSC's reports through the HTTP API (POST /v1/inbound/mmsc) ----
R1=$(for d in "$T"/emu/req/*/; do [ "$(wc -l < "$d/recipients")" = 1 ] && echo "$d"; done | head -1)
[ -n "$R1" ] || fail "no request with one recipient"
curl -s "$EMU/dlr?mid=$(cat "$R1/mid")&to=86$(cat "$R1/recipients")&status=Retrieved&txid=tx-api" > "$T/dlr2.xml"
mm7post() { curl -s -m 20 -o "$T/api.rsp" -w '%{http_code}' -H "X-Herald-Secret: $1" \
                 -H 'Content-Type: text/xml; charset=utf-8' --data-binary @"$2" "$API/v1/inbound/mmsc"; }
expect_eq "$(mm7post wrong-secret "$T/dlr2.xml")" 401 "MM7 report with a wrong secret"
expect_eq "$(stats 1 .mms_retrieved)" 1 "a refused report changes nothing"
expect_eq "$(mm7post mm7-secret-0123456789 "$T/dlr2.xml")" 200 "MM7 report through the API"
grep -q "DeliveryReportRsp" "$T/api.rsp" && grep -q "<StatusCode>1000</StatusCode>" "$T/api.rsp" \
    && grep -q ">tx-api</mm7:TransactionID>" "$T/api.rsp" || fail "API DeliveryReportRsp: $(cat "$T/api.rsp")"
expect_eq "$(stats 1 .mms_retrieved)" 2 "retrieved after the API's report (8613... recipient form)"
expect_eq "$(mm7post mm7-secret-0123456789 "$T/dlr2.xml")" 200 "the same report again"
expect_eq "$(stats 1 .mms_retrieved)" 2 "a repeated API report counts once"
# a report on a MessageID no bulletin sent is answered and changes nothing
curl -s "$EMU/dlr?mid=mid-998&to=$SECOND&status=Retrieved" > "$T/dlr3.xml"
expect_eq "$(mm7post mm7-secret-0123456789 "$T/dlr3.xml")" 200 "a report on another message"
expect_eq "$(stats 1 .mms_retrieved)" 2 "unchanged by a foreign MessageID"
# the issue's figures through GET /v1/bulletins/{title}/{issue}, as the CLI prints them
ET=$(printf '%s' "$TITLE" | od -An -tx1 -v | tr -d ' \n' | sed 's/../%&/g')
expect_eq "$(curl -s -m 20 -o "$T/st.json" -w '%{http_code}' -H 'Authorization: Bearer bulletin-token-0123456789' "$API/v1/bulletins/$ET/1")" 200 "GET bulletin figures"
H bulletin stats --title "$TITLE" --issue 1 > "$T/st_cli.json"
for f in .recipients .mms_sent .mms_retrieved .failed .sms_fallback .sms_only .skipped_optout; do
    expect_eq "$(jget $f < "$T/st.json")" "$(jget $f < "$T/st_cli.json")" "API figure $f"
done
expect_eq "$(curl -s -m 20 -o "$T/st.json" -w '%{http_code}' -H 'Authorization: Bearer bulletin-token-0123456789' "$API/v1/bulletins/$ET/77")" 404 "unknown issue"
expect_eq "$(jget .error.field < "$T/st.json")" issue "unknown issue names the field"
expect_eq "$(curl -s -m 20 -o "$T/st.json" -w '%{http_code}' -H 'Authorization: Bearer bulletin-token-0123456789' "$API/v1/bulletins/$ET/x1")" 400 "bad issue number"
expect_eq "$(curl -s -m 20 -o /dev/null -w '%{http_code}' "$API/v1/bulletins/$ET/1")" 401 "figures without a token"

# ---- a permanent MMS failure (2002 address error) falls back to SMS ----
H list add one 13800000007 >/dev/null
curl -s -X POST "$EMU/control?mode=fault:2002" > /dev/null
printf '预防犯罪第1期\n警惕电信诈骗。\n' > "$T/single.txt"
H bulletin send --title 预防犯罪 --content "$T/single.txt" --list one > "$T/send2.json" || fail "send 2"
expect_eq "$(jget .issue < "$T/send2.json")" 1 "each title numbers its own issues"
wait_until 20 grep -q '"to":"+8613800000007"' "$T/sink.jsonl" || fail "no fallback after a 2002 fault"
wait_until 10 is 预防犯罪 1 .failed 1 || fail "2002 not counted failed"
curl -s -X POST "$EMU/control?mode=success" > /dev/null

# ---- over budget: refused with every part's size, no number taken ----
mkdir -p "$T/big"
printf '大图\n' > "$T/big/01.txt"
mkimg png 200 200 "$T/big/01.png"
H bulletin send --title "$TITLE" --content "$T/big" --list deputies > "$T/big.out" 2>&1; rc=$?
expect_eq "$rc" 2 "over-budget exit"
grep -q "over the budget of 102400 bytes" "$T/big.out" || fail "budget message: $(cat "$T/big.out")"
grep -q "s1.png (01.png) $(stat -c %s "$T/big/01.png") bytes" "$T/big.out" || fail "image size missing: $(cat "$T/big.out")"
grep -q "s1.txt 7 bytes" "$T/big.out" || fail "text size missing"
expect_eq "$(H bulletin last "$TITLE")" 1 "a refused issue takes no number"

# ---- two sends at once never share a number ----
H bulletin send --title "$TITLE" --content "$T/single.txt" --list one > "$T/r1.json" &
P1=$!
H bulletin send --title "$TITLE" --content "$T/single.txt" --list one > "$T/r2.json" &
P2=$!
wait $P1 || fail "race send 1"
wait $P2 || fail "race send 2"
N1=$(jget .issue < "$T/r1.json"); N2=$(jget .issue < "$T/r2.json")
[ "$N1" != "$N2" ] || fail "two sends got the same issue number $N1"
expect_eq "$(printf '%s\n' "$N1" "$N2" | sort -n | tr '\n' ' ')" "2 3 " "issue numbers after the race"

# ---- a transient fault (3000) is retried: the second attempt goes through ----
curl -s -X POST "$EMU/control?mode=fault1:3000" > /dev/null
H bulletin send --title 预防犯罪 --content "$T/single.txt" --list one > "$T/tr.json" || fail "transient send"
N=$(jget .issue < "$T/tr.json")
wait_until 20 is 预防犯罪 "$N" .mms_sent 1 || fail "a 3000 fault was not retried to success"
TX=$(tail -1 "$T/emu/log" | cut -d' ' -f2)
case "$TX" in *-2) ;; *) fail "the retry is not attempt 2: $TX" ;; esac
grep -q " ${TX%-2}-1 " "$T/emu/log" || fail "the first attempt is not in the emulator's log"
expect_eq "$(H bulletin stats --title 预防犯罪 --issue "$N" | jget .sms_fallback)" 0 "no fallback for a transient fault"

# ---- a slow answer is waited for; a reset leaves the send uncertain (held) ----
curl -s -X POST "$EMU/control?mode=slow:300" > /dev/null
H bulletin send --title 预防犯罪 --content "$T/single.txt" --list one > "$T/slow.json" || fail "slow send"
N=$(jget .issue < "$T/slow.json")
wait_until 20 is 预防犯罪 "$N" .mms_sent 1 || fail "slow answer not taken"
curl -s -X POST "$EMU/control?mode=reset" > /dev/null
H bulletin send --title 预防犯罪 --content "$T/single.txt" --list one > "$T/reset.json" || fail "reset send"
uncertain() { [ "$(H queue stats | jget .uncertain)" = 1 ]; }
wait_until 20 uncertain || fail "a reset MMSC answer is not held as uncertain"
N=$(jget .issue < "$T/reset.json")
expect_eq "$(H bulletin stats --title 预防犯罪 --issue "$N" | jget .mms_sent)" 0 "nothing counted sent after a reset"
expect_eq "$(H bulletin stats --title 预防犯罪 --issue "$N" | jget .sms_fallback)" 0 "no fallback for an uncertain send"
curl -s -X POST "$EMU/control?mode=success" > /dev/null

# bad input
H bulletin send --title 不存在 --content "$T/issue" --list deputies 2>"$T/e1"; expect_eq $? 2 "unknown title"
grep -q "not a configured bulletin title" "$T/e1" || fail "unknown title message"
mkdir -p "$T/badc"; printf 'x' > "$T/badc/01.bmp"
H bulletin send --title "$TITLE" --content "$T/badc" --list deputies 2>"$T/e2"; expect_eq $? 2 "bad content"
grep -q "unexpected file" "$T/e2" || fail "bad content message: $(cat "$T/e2")"

# a fallback SMS that cannot be made (no link) refuses the issue before it takes a number
sed 's|link_pattern = "[^"]*"|link_pattern = ""|' "$T/h.conf" > "$T/nolink.conf"
LAST=$(H bulletin last "$TITLE")
"$HERALD" -c "$T/nolink.conf" bulletin send --title "$TITLE" --content "$T/single.txt" --list one 2>"$T/e3"
expect_eq $? 2 "send without a link pattern"
grep -q "link_pattern is empty" "$T/e3" || fail "no-link message: $(cat "$T/e3")"
expect_eq "$(H bulletin last "$TITLE")" "$LAST" "a refused issue takes no number"

# ---- POST /v1/bulletins: an issue with its content inline (text, a base64 JPEG) ----
bpost() { curl -s -m 30 -o "$T/bp.json" -w '%{http_code}' -H "Authorization: Bearer ${2:-bulletin-token-0123456789}" \
               -H 'Content-Type: application/json' --data-binary @"$1" "$API/v1/bulletins"; }
LAST=$(H bulletin last 预防犯罪)
printf '{"title":"预防犯罪","lists":["one"],"subject":"第9期 防范电诈","slides":[{"text":"警惕冒充公检法的电话。"},{"image":"%s","image_name":"p.jpg","text":"图示"}]}' \
    "$(base64 -w0 "$T/issue/02.jpg")" > "$T/bp_ok.json"
expect_eq "$(bpost "$T/bp_ok.json" wrong-token)" 401 "POST /v1/bulletins with a bad token"
expect_eq "$(bpost "$T/bp_ok.json")" 201 "POST /v1/bulletins: $(cat "$T/bp.json")"
N=$(jget .issue < "$T/bp.json")
expect_eq "$N" $((LAST + 1)) "the API's issue takes the next number"
expect_eq "$(jget .recipients < "$T/bp.json")" 1 "API issue recipients"
expect_eq "$(jget .mms_requests < "$T/bp.json")" 1 "API issue MMS requests"
wait_until 20 is 预防犯罪 "$N" .mms_sent 1 || fail "the API's issue was not sent: $(H bulletin stats --title 预防犯罪 --issue "$N")"
D=$(grep -l "第9期 防范电诈" "$T"/emu/req/*/subject | head -1); D=${D%/subject}
[ -n "$D" ] || fail "no MM7 request with the API's subject"
J=$(ls "$D"/*.jpg 2>/dev/null | head -1)
[ -n "$J" ] && cmp "$T/issue/02.jpg" "$J" || fail "the base64 JPEG did not arrive byte for byte"
grep -q "警惕冒充公检法的电话。" "$D"/*.txt || fail "the API's slide text did not arrive"
# bad input names the field and takes no number
printf '{"title":"预防犯罪","lists":["one"],"slides":[{"image":"!!not base64!!"}]}' > "$T/bp1.json"
expect_eq "$(bpost "$T/bp1.json")" 422 "bad base64"
expect_eq "$(jget .error.field < "$T/bp.json")" "slides[0].image" "bad base64 names the slide"
printf '{"title":"不存在","lists":["one"],"slides":[{"text":"x"}]}' > "$T/bp2.json"
expect_eq "$(bpost "$T/bp2.json")" 422 "unknown title"
expect_eq "$(jget .error.field < "$T/bp.json")" title "unknown title named"
printf '{"title":"预防犯罪","lists":["nobody"],"slides":[{"text":"x"}]}' > "$T/bp3.json"
expect_eq "$(bpost "$T/bp3.json")" 422 "empty list"
expect_eq "$(jget .error.field < "$T/bp.json")" lists "empty list named"
printf '{"title":"预防犯罪","lists":["one"],"slides":[{"text":"大图","image":"%s"}]}' "$(base64 -w0 "$T/big/01.png")" > "$T/bp4.json"
expect_eq "$(bpost "$T/bp4.json")" 422 "over budget"
expect_eq "$(jget .error.field < "$T/bp.json")" content "over budget names the content"
grep -q "over the budget of 102400 bytes" "$T/bp.json" || fail "budget message: $(cat "$T/bp.json")"
printf '{"title":"预防犯罪","lists":["one"],"slides":[]}' > "$T/bp5.json"
expect_eq "$(bpost "$T/bp5.json")" 422 "no slides"
expect_eq "$(jget .error.field < "$T/bp.json")" slides "no slides named"
expect_eq "$(H bulletin last 预防犯罪)" "$N" "refused API sends take no number"

gw_stop g || fail "gateway stop"
echo "bulletin_test: ok"
