# providers_test.sh -- the HTTP drivers and routing against the provider
# emulator (tests/emulators/provider_emu.c), which checks every request the
# way the provider would (Aliyun's RPC signature, Tencent's TC3 signature,
# the required fields) and records what it accepted with a timestamp:
#   - a Chinese SignName and TemplateParam through aliyun, tencent and http;
#     a wrong secret refused by the emulator (SignatureDoesNotMatch);
#   - throttling fails over to the next route; a Retry-After is respected;
#   - a permanent error is a dead letter with the provider's code, no failover;
#     Tencent's per-number refusal inside an HTTP 200 likewise;
#   - a provider that hangs: timeout, then retried (urgent lane: resend);
#     a connection reset after the request: the same (libcurl's own resend
#     of a dead kept-alive connection is refused, never sent twice);
#     a garbage HTTP 200 on the bulk lane: held as uncertain;
#   - failover from a pool that is down, the breaker opening, its probe,
#     closing, and the pool used again; `herald routes`;
#   - the recipient cap: the 6th message in an hour waits;
#   - a rate limit shared by two gateway processes, measured from the
#     emulator's timestamps (within 10% of the limit);
#   - in a pool, a message over one route's rate goes to another route free now.
set -u
. "$(dirname "$0")/../lib.sh"
redis_start "$TEST_TMP/redis" || exit 1
EMU_PID=
trap 'gw_stop_all; [ -n "$EMU_PID" ] && kill $EMU_PID 2>/dev/null; redis_stop' EXIT

REC=$TEST_TMP/emu.jsonl
"$EMULATORS/provider_emu" --port-file "$TEST_TMP/port" --record "$REC" --max-runtime 300 \
    --aliyun-id testId --aliyun-secret testSecret --tencent-id AKIDtest --tencent-key tcSecretKey \
    --tencent-app 1400000000 --http-token s3cret > "$TEST_TMP/emu.log" 2>&1 &
EMU_PID=$!
wait_until 10 test -s "$TEST_TMP/port" || fail "emulator did not start: $(cat "$TEST_TMP/emu.log")"
PORT=$(cat "$TEST_TMP/port")
E=http://127.0.0.1:$PORT
ctl() { curl -sf "$E/control?$1" >/dev/null || fail "control $1"; }

# Templates with provider codes (the shipped ones have none).
T=$TEST_TMP/tpl
mkdir -p "$T"
cp "$ROOT_DIR"/templates/shipped/*.tpl "$T/"
sed -i 's/^max_parts: 4$/max_parts: 4\nprovider_code: SMS_71390007\nprovider_params: name=name, case=case_no, office=office, phone=office_phone, date=accepted_on/' "$T/rights_notice_suspect.tpl"
sed -i 's/^description:/provider_code: 1234567\nprovider_params: 1=name, 2=case_no, 3=stage\ndescription:/' "$T/case_stage_update.tpl"
grep -q provider_code "$T/rights_notice_suspect.tpl" && grep -q provider_code "$T/case_stage_update.tpl" \
    || fail "test templates not prepared"

mkconf() {   # file instance [aliyun secret] [tencent key]
    local f=$1 inst=$2 secret=${3:-testSecret} tckey=${4:-tcSecretKey}
    conf_base "$f" "$inst" "log_level = \"info\";"
    sed -i "s|templates_dir = .*|templates_dir = \"$T\";|; s|recipient_hourly = 0; recipient_daily = 0;|recipient_hourly = 5; recipient_daily = 20;|" "$f"
    grep -q "recipient_hourly = 5" "$f" || fail "caps not set in $f"
    cat >> "$f" <<CONF
routing = {
  rights_notice = [ "ali", "tc" ];
  case_stage = [ "modems", "tc" ];
  bulletin = [ "gen" ];
  survey = [ "paced" ];
};
routes = (
  { name = "ali"; driver = "aliyun"; send_timeout_ms = 1500; throttle_backoff_ms = 4000;
    aliyun = { access_key_id = "testId"; access_key_secret = "$secret"; sign_name = "某市人民检察院";
               endpoint = "$E/aliyun/"; connect_timeout_ms = 1000; }; },
  { name = "tc"; driver = "tencent"; send_timeout_ms = 3000;
    families = [ "rights_notice", "case_stage" ];
    tencent = { secret_id = "AKIDtest"; secret_key = "$tckey"; sdk_app_id = "1400000000";
                sign_name = "某市人民检察院"; endpoint = "$E/tencent/"; }; },
  { name = "mdm"; driver = "http"; pool = "modems"; families = [ "case_stage" ];
    breaker_failures = 2; breaker_probe_ms = 6000;
    http = { url = "$E/http2/send"; encoding = "form"; headers = [ "Authorization: Bearer s3cret" ];
             params = [ "to={{to}}", "text={{text}}", "ref={{id}}" ];
             success_match = "\"result\":0"; id_json = "data.msgid"; error_json = "result";
             throttled_codes = [ "1008" ]; permanent_codes = [ "1003" ]; }; },
  { name = "gen"; driver = "http"; families = [ "bulletin" ];
    http = { url = "$E/http/send"; encoding = "json"; headers = [ "Authorization: Bearer s3cret" ];
             params = [ "to={{to_national}}", "text={{text}}", "ref={{id}}", "parts:={{parts}}" ];
             success_match = "\"result\":0"; id_json = "data.msgid"; error_json = "result";
             permanent_codes = [ "1003" ]; }; },
  { name = "paced"; driver = "http"; families = [ "survey" ]; rate_per_minute = 300;
    http = { url = "$E/http2/send"; headers = [ "Authorization: Bearer s3cret" ];
             params = [ "to={{to}}", "text={{text}}", "ref={{id}}" ];
             success_match = "\"result\":0"; id_json = "data.msgid"; }; }
);
CONF
}
C=$TEST_TMP/g1.conf
mkconf "$C" g1
H() { "$HERALD" -c "$C" "$@"; }
"$HERALD" -c "$C" config check >/dev/null || fail "config: $("$HERALD" -c "$C" config check 2>&1)"

notice() {   # to name -> id
    H enqueue --template rights_notice_suspect --to "$1" --var "name=$2" --var "case_no=某检刑诉〔2026〕1号" \
      --var accepted_on=2026年11月27日 --var office=某市人民检察院 --var office_phone=0571-88888888 --json | jget .id
}
stage() {    # to stage -> id
    H enqueue --template case_stage_update --to "$1" --var name=李四 --var "case_no=某检刑诉〔2026〕2号" \
      --var "stage=$2" --var stage_date=2026年11月27日 --var office_phone=0571-88888888 --json | jget .id
}
bulletin() { H enqueue --template bulletin_fallback --to "$1" --var title=检察手机报 --var "issue_no=$2" \
      --var link=http://127.0.0.1/b/1 --json | jget .id; }
status_is() { [ "$("$HERALD" -c "$C" status "$1" | jget .status)" = "$2" ]; }
rec() { grep "\"id\":\"$1\"" "$REC" | grep -v rejected; }      # accepted records of a message

gw_start g1 "$C" || exit 1

# ---- Chinese SignName and TemplateParam through each driver
a=$(notice 13800000001 张三)
wait_until 15 status_is "$a" sent || fail "aliyun message not sent: $(H status "$a")"
expect_eq "$(rec "$a" | jget .provider)" aliyun "aliyun: provider"
expect_eq "$(rec "$a" | jget .sign_name)" 某市人民检察院 "aliyun: SignName as the emulator decoded it"
expect_eq "$(rec "$a" | jget .to)" 13800000001 "aliyun: PhoneNumbers without +86"
expect_eq "$(rec "$a" | jget .template)" SMS_71390007 "aliyun: TemplateCode"
expect_eq "$(rec "$a" | jget .params.name)" 张三 "aliyun: TemplateParam mapped by provider_params"
expect_eq "$(rec "$a" | jget .params.case)" "某检刑诉〔2026〕1号" "aliyun: TemplateParam case"
expect_eq "$(H status "$a" | jget .refs)" "$(rec "$a" | jget .ref)" "aliyun: BizId recorded as ref"
H status "$a" | jget .text | grep -q "张三" || fail "the rendered text is still on the record"

ctl "target=http2&mode=ok"
s=$(stage 13800000002 审查起诉)
wait_until 15 status_is "$s" sent || fail "case stage not sent: $(H status "$s")"
expect_eq "$(rec "$s" | jget .provider)" http2 "case stage goes to the modem pool first"

b=$(bulletin 13800000003 38)
wait_until 15 status_is "$b" sent || fail "bulletin not sent: $(H status "$b")"
expect_eq "$(rec "$b" | jget .provider)" http "generic driver"
rec "$b" | jget .params.text | grep -q "检察手机报" || fail "generic: text as sent: $(rec "$b")"
expect_eq "$(rec "$b" | jget .to)" 13800000003 "generic: {{to_national}}"

# ---- tencent (its route is second for case stages: take the pool down for one)
ctl "target=http2&mode=5xx&count=1"
t=$(stage 13800000004 提起公诉)
wait_until 15 status_is "$t" sent || fail "tencent message not sent: $(H status "$t")"
expect_eq "$(rec "$t" | jget .provider)" tencent "failover from the pool to tencent"
expect_eq "$(rec "$t" | jget .to)" +8613800000004 "tencent: PhoneNumberSet in E.164"
expect_eq "$(rec "$t" | jget .params.2)" 提起公诉 "tencent: TemplateParamSet in provider_params order"
expect_eq "$(rec "$t" | jget .sign_name)" 某市人民检察院 "tencent: SignName"
expect_eq "$(H status "$t" | jget .route)" tc "route recorded"

# ---- throttling: aliyun says slow down -> the same attempt goes to tencent
ctl "target=aliyun&mode=throttle&count=1"
t_throttle=$(date +%s%3N)
th=$(notice 13800000005 王五)
wait_until 15 status_is "$th" sent || fail "throttled message not sent: $(H status "$th")"
expect_eq "$(rec "$th" | jget .provider)" tencent "throttling fails over"
expect_eq "$(H status "$th" | jget .attempts)" 1 "failover within one attempt"
grep -q "\[ali\].*throttled by the provider: resting 4000 ms" "$TEST_TMP/g1.log" || fail "no back-off logged"
# while ali rests, the next notice goes to tencent without asking ali
r2=$(notice 13800000006 赵六)
wait_until 15 status_is "$r2" sent || fail "notice during the rest not sent"
expect_eq "$(rec "$r2" | jget .provider)" tencent "a resting route is skipped"
# (the rest is 4 s, long enough that a loaded machine still sends r2 within
# it; r3 waits it out from the throttle)
while [ $(( $(date +%s%3N) - t_throttle )) -lt 4200 ]; do sleep 0.2; done
r3=$(notice 13800000007 钱七)
wait_until 15 status_is "$r3" sent || fail "notice after the rest not sent"
expect_eq "$(rec "$r3" | jget .provider)" aliyun "the route is used again after its rest"

# ---- Retry-After: ali fails, tencent answers 429 with Retry-After: 2; the
# retry waits for it (the last route asked for longer than our backoff)
ctl "target=aliyun&mode=5xx&count=1"
ctl "target=tencent&mode=throttle&count=1&retry_after=2"
t429=$(date +%s%3N)
ra=$(notice 13800000008 吴十)
wait_until 20 status_is "$ra" sent || fail "Retry-After message not sent: $(H status "$ra")"
sent_at=$(rec "$ra" | jget .at)
[ $((sent_at - t429)) -ge 1800 ] || fail "sent $((sent_at - t429)) ms after a 429 asking for 2 s"
H status "$ra" | grep -q "RequestLimitExceeded" || fail "throttle not in the timeline"
grep -q "\[tc\].*throttled by the provider: resting 2000 ms" "$TEST_TMP/g1.log" || fail "Retry-After not taken"
ctl "target=tencent&retry_after=0"

# ---- tencent refuses one number inside an HTTP 200: that message is dead
ctl "target=aliyun&mode=5xx&count=1"
ctl "target=tencent&mode=permanent&count=1"
tp=$(notice 13800000013 冯二)
wait_until 15 status_is "$tp" dead || fail "tencent per-number refusal not dead: $(H status "$tp")"
H status "$tp" | jget .error | grep -q "InvalidParameterValue.IncorrectPhoneNumber" || fail "tencent code not in the reason"

# ---- permanent: dead at once with the provider's code, no failover
ctl "target=aliyun&mode=permanent&count=1"
p=$(notice 13800000009 孙八)
wait_until 15 status_is "$p" dead || fail "permanent failure not dead: $(H status "$p")"
expect_eq "$(H status "$p" | jget .attempts)" 1 "permanent: one attempt"
H dead list | grep -q "isv.MOBILE_NUMBER_ILLEGAL" || fail "dead letter lacks the provider's code: $(H dead list)"
[ -z "$(rec "$p")" ] || fail "a permanent failure must not fail over: $(rec "$p")"

# ---- a provider that hangs: timeout (1.5 s), perhaps sent, urgent lane resends
ctl "target=aliyun&mode=hang&count=1"
hg=$(notice 13800000010 周九)
wait_until 20 status_is "$hg" sent || fail "hung message not retried: $(H status "$hg")"
expect_eq "$(H status "$hg" | jget .attempts)" 2 "hang: second attempt sent it"
H status "$hg" | grep -q "timed out\|Timeout" || fail "timeout not in the timeline: $(H status "$hg")"
expect_eq "$(rec "$hg" | jget .provider)" aliyun "a perhaps-sent message does not fail over"

# ---- a connection reset after the request: perhaps sent, resent (urgent)
ctl "target=aliyun&mode=reset&count=1"
rs=$(notice 13800000014 郑一)
wait_until 20 status_is "$rs" sent || fail "reset message not retried: $(H status "$rs")"
expect_eq "$(H status "$rs" | jget .attempts)" 2 "reset: second attempt sent it"

# ---- garbage HTTP 200 on the bulk lane: held as uncertain, not resent
ctl "target=http&mode=garbage&count=1"
gb=$(bulletin 13800000011 39)
wait_until 15 status_is "$gb" uncertain || fail "garbage answer not uncertain: $(H status "$gb")"

# ---- wrong signature: the emulator refuses it (checked with another secret)
C2=$TEST_TMP/bad.conf
mkconf "$C2" bad wrongSecret wrongKey
sed -i 's/max_attempts = 3/max_attempts = 1/' "$C2"
sed -i 's/rights_notice = \[ "ali", "tc" \]/rights_notice = [ "ali" ]/; s/case_stage = \[ "modems", "tc" \]/case_stage = [ "tc" ]/' "$C2"
sed -i 's/prefix = "t"/prefix = "bad"/' "$C2"
gw_start bad "$C2" || exit 1
bs=$("$HERALD" -c "$C2" enqueue --template rights_notice_suspect --to 13800000012 --var name=张三 \
     --var case_no=1 --var accepted_on=1 --var office=1 --var office_phone=1 --json | jget .id)
wait_until 15 sh -c "$HERALD -c '$C2' status $bs | jget .status | grep -qx dead" || fail "bad signature not refused"
"$HERALD" -c "$C2" status "$bs" | grep -q SignatureDoesNotMatch || fail "no SignatureDoesNotMatch: $("$HERALD" -c "$C2" status "$bs")"
grep -q '"rejected":"SignatureDoesNotMatch"' "$REC" || fail "emulator did not record the refusal"
bt=$("$HERALD" -c "$C2" enqueue --template case_stage_update --to 13800000015 --var name=张三 --var case_no=1 \
     --var stage=1 --var stage_date=1 --var office_phone=1 --json | jget .id)
wait_until 15 sh -c "$HERALD -c '$C2' status $bt | jget .status | grep -qx dead" || fail "bad TC3 signature not refused"
"$HERALD" -c "$C2" status "$bt" | grep -q "AuthFailure.SignatureFailure" || fail "no AuthFailure: $("$HERALD" -c "$C2" status "$bt")"
gw_stop bad || exit 1

# ---- the breaker: the pool fails twice -> open -> skipped -> probe -> closed
ctl "target=http2&mode=ok"
ok0=$(stage 13800000020 起点)                 # a success resets the failure count
wait_until 15 status_is "$ok0" sent || fail "pool message not sent"
ctl "target=http2&mode=5xx"
before=$(curl -sf "$E/stats" | jget .http2.rejected)
for i in 1 2 3; do
    id=$(stage 1380000002$i 审查起诉$i)
    wait_until 15 status_is "$id" sent || fail "breaker message $i not sent"
    expect_eq "$(rec "$id" | jget .provider)" tencent "pool down: message $i fails over"
done
after=$(curl -sf "$E/stats" | jget .http2.rejected)
expect_eq $((after - before)) 2 "requests to the pool: the breaker opened after 2 failures"
wait_until 5 sh -c "$HERALD -c '$C' routes | jget .g1/mdm.breaker | grep -qx open" \
    || fail "routes does not show the open breaker: $(H routes)"
H routes | jget .g1/mdm.error_rate | grep -q '^0\.\|^1' || fail "routes: error rate"
expect_eq "$(H routes | jget .g1/mdm.stale)" false "routes: a running gateway's entry is fresh"
ctl "target=http2&mode=ok"
sleep 6.1   # breaker_probe_ms: the breaker stays open (and shown open) this long,
            # which the three messages and the routes check above must fit in
pr=$(stage 13800000030 复核)
wait_until 15 status_is "$pr" sent || fail "probe message not sent"
expect_eq "$(rec "$pr" | jget .provider)" http2 "the probe goes to the recovered pool"
grep -q "\[mdm\].*circuit breaker closed" "$TEST_TMP/g1.log" || fail "breaker close not logged"
nx=$(stage 13800000031 复核2)
wait_until 15 status_is "$nx" sent || fail "message after recovery not sent"
expect_eq "$(rec "$nx" | jget .provider)" http2 "back on the pool after recovery"
wait_until 5 sh -c "$HERALD -c '$C' routes | jget .g1/mdm.breaker | grep -qx closed" || fail "routes: breaker not closed"

# ---- the recipient cap: 5 an hour; the 6th waits (and is not dropped)
ids=()
for i in 1 2 3 4 5 6; do ids+=("$(bulletin 13900000077 "7$i")"); done
for i in 0 1 2 3 4; do wait_until 15 status_is "${ids[$i]}" sent || fail "capped number: message $i not sent"; done
sleep 0.5
wait_until 10 sh -c "$HERALD -c '$C' status ${ids[5]} | grep -q 'recipient hourly cap'" \
    || fail "6th message to one number not held by the cap: $(H status "${ids[5]}")"
expect_eq "$(H status "${ids[5]}" | jget .status)" queued "over the cap a message waits"
expect_eq "$(H status "${ids[5]}" | jget .attempts)" 0 "waiting costs no attempt"

# ---- the rate limit shared by two gateways: 300/min = 5/s on "paced"
C3=$TEST_TMP/g2.conf
mkconf "$C3" g2
gw_start g2 "$C3" || exit 1
: > "$TEST_TMP/survey.jsonl"
for i in $(seq 1 26); do
    echo "{\"template\":\"evaluation_survey\",\"to\":\"1370000$(printf %04d $i)\",\"vars\":{\"period\":\"2026年11月\"}}"
done > "$TEST_TMP/survey.jsonl"
H enqueue --batch "$TEST_TMP/survey.jsonl" > "$TEST_TMP/survey.ids" || fail "survey batch"
wait_until 40 sh -c "[ \$(grep -c '\"provider\":\"http2\".*\"to\":\"+861370000' '$REC') -ge 26 ]" \
    || fail "surveys not all sent: $(grep -c '+861370000' "$REC")"
grep '"to":"+861370000' "$REC" | grep -v rejected | while read -r l; do jget .at <<<"$l"; done | sort -n > "$TEST_TMP/at"
n=$(wc -l < "$TEST_TMP/at"); first=$(head -1 "$TEST_TMP/at"); last=$(tail -1 "$TEST_TMP/at")
rate_mhz=$(( (n - 1) * 1000000 / (last - first) ))     # messages per 1000 s
echo "shared rate: $n messages in $((last - first)) ms: $((rate_mhz / 1000)).$(printf %03d $((rate_mhz % 1000)))/s (limit 5/s)"
[ "$rate_mhz" -ge 4500 ] && [ "$rate_mhz" -le 5500 ] || fail "measured rate $rate_mhz/1000 s is not within 10% of 5/s"
grep -q "sent .* (.* ms)" "$TEST_TMP/g2.log" || fail "the second gateway sent none: the test shows nothing"
# both gateways took part (by the routes' owners in the timelines)
owners=$(while read -r l; do H status "$(jget .id <<<"$l")" | grep -o 'by g[12]/'; done < "$TEST_TMP/survey.ids" \
         | sort -u | wc -l)
expect_eq "$owners" 2 "surveys sent by both gateways"

gw_stop g2 || exit 1

# ---- a pool with one slow route: a message over px's rate goes to py, free now
C4=$TEST_TMP/pool.conf
conf_base "$C4" pool
sed -i 's/prefix = "t"/prefix = "pool"/' "$C4"
cat >> "$C4" <<CONF
routing = { bulletin = [ "bp" ]; };
routes = (
  { name = "px"; driver = "http"; pool = "bp"; rate_per_minute = 6;
    http = { url = "$E/http2/send"; headers = [ "Authorization: Bearer s3cret" ];
             params = [ "to={{to}}", "text={{text}}", "ref={{id}}" ]; success_match = "\"result\":0"; }; },
  { name = "py"; driver = "http"; pool = "bp";
    http = { url = "$E/http2/send"; headers = [ "Authorization: Bearer s3cret" ];
             params = [ "to={{to}}", "text={{text}}", "ref={{id}}" ]; success_match = "\"result\":0"; }; }
);
CONF
gw_start pool "$C4" || exit 1
t0=$(date +%s)
pids=()
for i in 1 2 3 4 5 6; do
    pids+=("$("$HERALD" -c "$C4" enqueue --template bulletin_fallback --to "1350000000$i" --var title=检察手机报 \
               --var issue_no=5$i --var link=http://127.0.0.1/b/5 --json | jget .id)")
done
for id in "${pids[@]}"; do
    wait_until 8 sh -c "$HERALD -c '$C4' status $id | jget .status | grep -qx sent" \
        || fail "pool: $id not sent within 8 s (px allows one per 10 s): $("$HERALD" -c "$C4" status "$id")"
done
[ $(( $(date +%s) - t0 )) -le 9 ] || fail "pool: too slow"
npx=$(for id in "${pids[@]}"; do "$HERALD" -c "$C4" status "$id" | jget .route; done | grep -c '^px$')
[ "$npx" -le 1 ] || fail "pool: px sent $npx within its 10 s interval"
gw_stop pool || exit 1
gw_stop g1 || exit 1
grep -q "ERROR" "$TEST_TMP/g1.log" && fail "errors in the gateway log: $(grep ERROR "$TEST_TMP/g1.log")"
grep -q "13800000001\|testSecret\|tcSecretKey" "$TEST_TMP/g1.log" && fail "a number or a secret in the log"
echo "providers_test: ok"
