# retention_test.sh -- texts leave Redis after their days, the figures stay.
# Real redis-server, a real gateway (sink route, libgammu's dummy phone for
# a reply), the clock injected with `herald retention purge --now` and, for
# the housekeeper, $HERALD_RETENTION_CLOCK:
#   - a body retention longer than the record's is refused, naming the key;
#   - messages are sent, a survey batch goes out and is answered (through
#     the inbound stream and the dummy phone), an unsolicited text comes in;
#   - the Chinese texts are in Redis (every key of the prefix read back by
#     type), then a purge "now" changes nothing, one "200 days later"
#     removes every message text and reply text, and a second one nothing
#     more; a message still scheduled keeps its text;
#   - what remains: status and timeline, the survey's report figures
#     (identical), ratings, reply counts; the purged texts are marked;
#   - a gateway's housekeeper purges by itself (clock 200 days on);
#   - a purged dead message cannot be retried; an inbound text no reader
#     has acknowledged is kept.
set -u
. "$(dirname "$0")/../lib.sh"
redis_start "$TEST_TMP/redis" || exit 1
trap 'gw_stop_all; redis_stop' EXIT
R() { redis-cli -s "$REDIS_SOCK" "$@"; }
PHONE=$TEST_TMP/phone

conf_base "$TEST_TMP/a.conf" gw-a
cat >> "$TEST_TMP/a.conf" <<CONF
survey = { enabled = false; skip_recent_days = 0; };
routes = (
  { name = "sink-a"; driver = "sink"; families = [ "rights_notice", "survey", "bulletin" ];
    sink = { file = "$TEST_TMP/sink.jsonl"; }; },
  { name = "modem-a"; driver = "gammu"; families = [ "case_stage" ];
    gammu = { model = "dummy"; connection = "none"; device = "$PHONE"; poll_interval_ms = 200; }; }
);
CONF
A="$HERALD -c $TEST_TMP/a.conf"

# ---- configuration: days checked against the record's lifetime
conf_base "$TEST_TMP/bad.conf" gw-bad "retention_days = 180; body_retention_days = 200;"
echo 'routes = ( { name = "s"; driver = "sink"; } );' >> "$TEST_TMP/bad.conf"
"$HERALD" -c "$TEST_TMP/bad.conf" config check 2>"$TEST_TMP/bad.out"; expect_eq $? 2 "body retention over record retention"
grep -q 'bad.conf:[0-9]*: gateway.body_retention_days: 200 is more than gateway.retention_days (180)' "$TEST_TMP/bad.out" \
    || fail "bad body retention: $(cat "$TEST_TMP/bad.out")"
conf_base "$TEST_TMP/short.conf" gw-short "retention_days = 30;"
echo 'routes = ( { name = "s"; driver = "sink"; } );' >> "$TEST_TMP/short.conf"
"$HERALD" -c "$TEST_TMP/short.conf" retention status > "$TEST_TMP/short.json" || fail "retention status"
expect_eq "$(jget .message_text_days < "$TEST_TMP/short.json")" 30 "default text days capped by a shorter record lifetime"
expect_eq "$($A retention status | jget .message_text_days)" 90 "default text days"
expect_eq "$($A retention status | jget .reply_text_days)" 90 "default reply text days"
$A retention purge --now yesterday 2>"$TEST_TMP/now.err"; expect_eq $? 2 "bad --now"
grep -q -- "--now: 'yesterday'" "$TEST_TMP/now.err" || fail "bad --now not named: $(cat "$TEST_TMP/now.err")"

# ---- messages: two notices sent, one scheduled far ahead (still queued)
gw_start a "$TEST_TMP/a.conf" || exit 1
notice() {   # to, name, [--at]
    $A enqueue --template rights_notice_victim --to "$1" --var name="$2" --var case_no=X-1 \
        --var accepted_on=2026年11月2日 --var office=某市人民检察院 --var office_phone=0571-88888888 "${@:3}" --json | jget .id
}
n1=$(notice 13900000101 欧阳明远) || fail "enqueue"
n2=$(notice 13900000102 司马青云) || fail "enqueue"
later=$(notice 13900000103 诸葛长风 --at +300d) || fail "enqueue scheduled"
wait_until 30 sh -c "$A status $n1 | jget .status | grep -qx sent && $A status $n2 | jget .status | grep -qx sent" \
    || fail "notices not sent"

# ---- a survey (November, run by hand at 10:00 on the 23rd) and its replies
cat > "$TEST_TMP/contacts.csv" <<'CSV'
phone,role,case_no,department,prosecutor,date
13900000001,party,A-1,刑检一部,张三,2026-11-02
13900000002,lawyer,A-2,刑检一部,张三,2026-11-03
13900000003,party,A-3,刑检二部,李四,2026-11-05
13900000004,party,A-4,刑检二部,李四,2026-11-06
CSV
$A contacts import "$TEST_TMP/contacts.csv" > /dev/null || fail "contacts import"
HERALD_SURVEY_CLOCK=2026-11-23T10:00:00+08:00 $A survey run --period 2026-11 --json > "$TEST_TMP/run.json" || fail "survey run"
expect_eq "$(jget .batch < "$TEST_TMP/run.json")" 4 "survey batch"
wait_until 60 sh -c "[ \$(grep -c '\"template\":\"evaluation_survey\"' '$TEST_TMP/sink.jsonl') -ge 4 ]" || fail "surveys not sent"
AT=$(( $(date -u -d 2026-11-23T09:00:00Z +%s) * 1000 ))      # 17:00 in Beijing
add() { R XADD '{t}:inbound' '*' route test from "$1" text "$2" at "$3" >/dev/null; }
add +8613900000001 '1121 希望提高办案效率' $AT
add +8613900000002 '案件什么时候开庭？' $AT
add +8613900000099 '你好，请问怎么查询案件？' $AT
# ... and one into the dummy phone's inbox (UCS-2, one part)
ucs2() { printf '%s' "$1" | iconv -f UTF-8 -t UTF-16BE | od -An -tx1 -v | tr -d ' \n' | tr a-f A-F; }
mkdir -p "$PHONE/sms/1"
{
    echo "[SMSBackup000]"; echo "PDU = Deliver"; echo "State = UnRead"
    echo 'Number = "+8613900000003"'; echo "DateTime = 20261123T090000Z"
    echo 'SMSC = "+8613800100500"'
    echo "Text00 = $(ucs2 '２２１２，接待窗口的指引牌不够清楚')"
    echo "Coding = Unicode_No_Compression"; echo "Folder = 1"
} > "$PHONE/sms/inject.tmp"
mv "$PHONE/sms/inject.tmp" "$PHONE/sms/1/1"
wait_until 30 sh -c "$A survey replies --period 2026-11 | jget .# | grep -qx 3" || fail "replies not recorded: $($A survey replies --period 2026-11)"
wait_until 20 sh -c "[ \$(redis-cli -s '$REDIS_SOCK' XLEN '{t}:replies:other') -ge 1 ]" || fail "unsolicited text not recorded"
wait_until 20 sh -c "[ \"\$(redis-cli -s '$REDIS_SOCK' XPENDING '{t}:inbound' survey | head -1)\" = 0 ]" || fail "inbound not all acked"
gw_stop a || exit 1

# every value of every key of the prefix, read back by type (not DUMP: its
# strings may be compressed)
dump_all() {
    R --scan --pattern '{t}:*' | while IFS= read -r k; do
        case $(R TYPE "$k") in
        string) R GET "$k" ;;
        hash) R HGETALL "$k" ;;
        zset) R ZRANGE "$k" 0 -1 WITHSCORES ;;
        set) R SMEMBERS "$k" ;;
        list) R LRANGE "$k" 0 -1 ;;
        stream) R XRANGE "$k" - + ;;
        esac
    done
}
TEXTS=(欧阳明远 司马青云 诚邀您对本院 希望提高办案效率 案件什么时候开庭 你好，请问怎么查询案件 接待窗口的指引牌)
dump_all > "$TEST_TMP/before.txt"
for t in "${TEXTS[@]}" 诸葛长风; do
    grep -q "$t" "$TEST_TMP/before.txt" || fail "'$t' not in Redis before the purge (the check below could not fail)"
done

report() { $A report survey --period 2026-11 --json; }
figures() {   # everything in the report but the time it was made and the texts
    local f=$1
    for p in .total .by_department .by_prosecutor .suggestions.# .unparsed.# .outside_surveys.# \
             .optouts_outside_surveys .run_state; do
        printf '%s %s\n' "$p" "$(jget "$p" < "$f")"
    done
}
report > "$TEST_TMP/report1.json" || fail "report"
figures "$TEST_TMP/report1.json" > "$TEST_TMP/figures1.txt"
expect_eq "$(jget .total.replied < "$TEST_TMP/report1.json")" 3 "replied"
$A survey replies --period 2026-11 > "$TEST_TMP/replies1.json"
other1=$(R XLEN '{t}:replies:other')
inbound1=$(R XLEN '{t}:inbound')
nbodies=$(R ZRANGE '{t}:bodies' 0 -1 | tr ',' '\n' | grep -c .)   # a member is an enqueue call's ids
expect_eq "$nbodies" 7 "messages in the text index (3 notices, 4 surveys)"

# ---- a purge now: nothing is old enough
$A retention purge --now "$(date +%s)" > "$TEST_TMP/p0.json" || fail "purge now"
for k in message_texts survey_replies other_replies inbound; do
    expect_eq "$(jget .purged.$k < "$TEST_TMP/p0.json")" 0 "purge now: $k"
done
dump_all > "$TEST_TMP/after0.txt"
for t in "${TEXTS[@]}"; do grep -q "$t" "$TEST_TMP/after0.txt" || fail "'$t' purged too early"; done

# ---- 200 days later
$A retention purge --now +200d > "$TEST_TMP/p1.json" || fail "purge +200d"
j() { jget "$1" < "$TEST_TMP/p1.json"; }
expect_eq "$(j .purged.message_texts)" 6 "message texts purged (2 notices, 4 surveys)"
expect_eq "$(j .index.active)" 1 "the scheduled message keeps its text"
expect_eq "$(j .purged.survey_replies)" 3 "survey replies purged"
expect_eq "$(j .purged.other_replies)" 1 "other replies purged"
expect_eq "$(j .purged.inbound)" "$inbound1" "inbound entries deleted"
expect_eq "$(j .inbound_unread)" false "nothing left unread"
dump_all > "$TEST_TMP/after1.txt"
for t in "${TEXTS[@]}"; do
    grep -q "$t" "$TEST_TMP/after1.txt" && fail "'$t' still in Redis after the purge: $(grep -a "$t" "$TEST_TMP/after1.txt" | head -3)"
done
grep -q 诸葛长风 "$TEST_TMP/after1.txt" || fail "the scheduled message lost its text"
expect_eq "$($A status "$later" | jget .status)" queued "scheduled message untouched"

# ... and what stays
$A status "$n1" > "$TEST_TMP/n1.json"
expect_eq "$(jget .status < "$TEST_TMP/n1.json")" sent "status after the purge"
expect_eq "$(jget .text < "$TEST_TMP/n1.json")" "" "text emptied"
expect_eq "$(jget .vars < "$TEST_TMP/n1.json")" "{}" "variables emptied"
jget .body_purged_at < "$TEST_TMP/n1.json" | grep -qE '^[0-9]{13}$' || fail "no body_purged_at marker"
expect_eq "$(jget .parts < "$TEST_TMP/n1.json")" "$(jget .parts < <($A status "$n2"))" "parts kept"
expect_eq "$(jget .route < "$TEST_TMP/n1.json")" sink-a "route kept"
jget .timeline < "$TEST_TMP/n1.json" | grep -q '"status": *"sent"' || fail "timeline lost its sent line: $(jget .timeline < "$TEST_TMP/n1.json")"
jget .timeline < "$TEST_TMP/n1.json" | grep -q 'text and variables removed (retention)' || fail "timeline does not say the text was purged"
report > "$TEST_TMP/report2.json" || fail "report after the purge"
figures "$TEST_TMP/report2.json" > "$TEST_TMP/figures2.txt"
diff "$TEST_TMP/figures1.txt" "$TEST_TMP/figures2.txt" > "$TEST_TMP/figures.diff" || fail "report figures changed: $(cat "$TEST_TMP/figures.diff")"
grep -q '原文已过保留期限删除' "$TEST_TMP/report2.json" || fail "the report does not say the texts were purged"
$A survey replies --period 2026-11 > "$TEST_TMP/replies2.json"
for p in .# .+8613900000001.ratings .+8613900000001.status .+8613900000002.status \
         .+8613900000003.ratings .+8613900000003.raw.# .+8613900000003.raw.0.route; do
    expect_eq "$(jget $p < "$TEST_TMP/replies2.json")" "$(jget $p < "$TEST_TMP/replies1.json")" "reply $p"
done
expect_eq "$(jget .+8613900000003.raw.0.text < "$TEST_TMP/replies2.json")" "" "raw text emptied"
expect_eq "$(jget .+8613900000001.suggestion_purged < "$TEST_TMP/replies2.json")" true "suggestion marked purged"
expect_eq "$(( $(R XLEN '{t}:replies:other') + $(R ZCARD '{t}:replies:purged') ))" "$other1" "other replies counted the same"
expect_eq "$(R HGET '{t}:retention' survey_replies)" 3 "totals kept"

# ---- once more: nothing left to purge
$A retention purge --now +200d > "$TEST_TMP/p2.json" || fail "second purge"
for k in message_texts survey_replies other_replies inbound; do
    expect_eq "$(jget .purged.$k < "$TEST_TMP/p2.json")" 0 "second purge: $k"
done
# a dead message whose text is gone cannot be sent again (made dead by hand here)
R HSET "{t}:msg:$n2" status dead > /dev/null
$A dead retry "$n2" 2>"$TEST_TMP/retry.err"; expect_eq $? 2 "retry of a purged message"
grep -q 'its text was purged (retention)' "$TEST_TMP/retry.err" || fail "retry refusal: $(cat "$TEST_TMP/retry.err")"
expect_eq "$(R HGET "{t}:msg:$n2" status)" dead "purged message not requeued"

# ---- the housekeeper purges by itself (its clock 200 days on)
gw_start a "$TEST_TMP/a.conf" || exit 1
n3=$(notice 13900000104 上官飞燕) || fail "enqueue"
wait_until 30 sh -c "$A status $n3 | jget .status | grep -qx sent" || fail "third notice not sent"
add +8613900000099 '再问一次：何时结案？' $AT
wait_until 20 sh -c "[ \$(redis-cli -s '$REDIS_SOCK' XLEN '{t}:replies:other') -ge 1 ]" || fail "second unsolicited text not recorded"
gw_stop a || exit 1
dump_all | grep -q 上官飞燕 || fail "third notice's text not in Redis"
HERALD_RETENTION_CLOCK=+200d gw_start a "$TEST_TMP/a.conf" || exit 1
wait_until 20 grep -q 'retention.*purged the text of 1 messages, 0 survey replies, 1 other replies; 1 inbound entries deleted' "$TEST_TMP/a.log" \
    || fail "housekeeper did not purge: $(grep retention "$TEST_TMP/a.log")"
gw_stop a || exit 1
dump_all > "$TEST_TMP/after3.txt"
for t in 上官飞燕 何时结案; do grep -q "$t" "$TEST_TMP/after3.txt" && fail "'$t' still in Redis after the housekeeper's purge"; done
expect_eq "$($A status "$n3" | jget .status)" sent "third notice still sent"

# ---- an inbound text no reader has taken yet stays, however old
add +8613900000098 '尚未读取的短信' $AT
$A retention purge --now +400d > "$TEST_TMP/p4.json" || fail "purge with an unread entry"
expect_eq "$(jget .purged.inbound < "$TEST_TMP/p4.json")" 0 "unread inbound entry deleted"
expect_eq "$(jget .inbound_unread < "$TEST_TMP/p4.json")" true "unread inbound entry not reported"
R XRANGE '{t}:inbound' - + | grep -q 尚未读取的短信 || fail "unread inbound text lost"
grep -q '欧阳明远\|司马青云\|上官飞燕' "$TEST_TMP/a.log" && fail "a message text in the log"
echo "retention_test: ok"
