# pipeline_test.sh -- 1,000 mixed messages through two gateway processes on
# one Redis: rights notices and stage updates go out through GSM modems
# (libgammu's dummy phone, one per gateway), surveys and bulletin fallbacks
# through a sink. Every message is sent exactly once, with the text and part
# count it was enqueued with.
set -u
. "$(dirname "$0")/../lib.sh"
redis_start "$TEST_TMP/redis" || exit 1
trap 'gw_stop_all; redis_stop' EXIT
N=1000
for g in a b; do
    conf_base "$TEST_TMP/$g.conf" "gw-$g" "batch = 8;"
    cat >> "$TEST_TMP/$g.conf" <<CONF
routes = (
  { name = "modem-$g"; driver = "gammu"; families = [ "rights_notice", "case_stage" ];
    gammu = { model = "dummy"; connection = "none"; device = "$TEST_TMP/phone-$g"; }; },
  { name = "sink-$g"; driver = "sink"; families = [ "survey", "bulletin" ];
    sink = { file = "$TEST_TMP/sink.jsonl"; }; }
);
CONF
done

# The batch: a mix of all four families, Chinese and long texts.
: > "$TEST_TMP/batch.jsonl"
for i in $(seq 1 $N); do
    n=$(printf '139%08d' "$i")
    case $((i % 4)) in
    0) echo "{\"template\":\"rights_notice_victim\",\"to\":\"$n\",\"vars\":{\"name\":\"王$i\",\"case_no\":\"某检刑诉〔2026〕$i号\",\"accepted_on\":\"2026年11月27日\",\"office\":\"某市人民检察院\",\"office_phone\":\"0571-88888888\"}}" ;;
    1) echo "{\"template\":\"case_stage_update\",\"to\":\"$n\",\"vars\":{\"name\":\"李$i\",\"case_no\":\"某检刑诉〔2026〕$i号\",\"stage\":\"审查起诉\",\"stage_date\":\"2026年11月27日\",\"deadline\":\"2026年12月27日\",\"office_phone\":\"0571-88888888\"}}" ;;
    2) echo "{\"template\":\"evaluation_survey\",\"to\":\"$n\",\"vars\":{\"period\":\"2026年11月\",\"name\":\"赵$i\"}}" ;;
    3) echo "{\"template\":\"bulletin_fallback\",\"to\":\"$n\",\"vars\":{\"title\":\"检察手机报\",\"issue_no\":\"$i\",\"link\":\"http://127.0.0.1/b/$i\"}}" ;;
    esac
done >> "$TEST_TMP/batch.jsonl"

gw_start a "$TEST_TMP/a.conf" || exit 1
gw_start b "$TEST_TMP/b.conf" || exit 1
"$HERALD" -c "$TEST_TMP/a.conf" enqueue --batch "$TEST_TMP/batch.jsonl" > "$TEST_TMP/ids.jsonl" || fail "batch enqueue"
expect_eq "$(grep -c '"id"' "$TEST_TMP/ids.jsonl")" $N "accepted"

sent_count() {
    cat "$TEST_TMP/a.log" "$TEST_TMP/b.log" | grep -o ' sent [0-9a-f]* to ' | sort -u | wc -l
}
wait_until 240 sh -c "[ \$(cat '$TEST_TMP/a.log' '$TEST_TMP/b.log' | grep -c ' sent [0-9a-f]* to ') -ge $N ]" \
    || fail "only $(sent_count) of $N sent"
sleep 1   # let a duplicate, if any, show itself
gw_stop a || exit 1
gw_stop b || exit 1

# exactly once: one "sent" log line per id across both gateways, and one sink line per bulk id
cat "$TEST_TMP/a.log" "$TEST_TMP/b.log" | grep -o ' sent [0-9a-f]* to ' | sort | uniq -d > "$TEST_TMP/dups"
[ -s "$TEST_TMP/dups" ] && fail "sent twice: $(head "$TEST_TMP/dups")"
expect_eq "$(sent_count)" $N "distinct messages sent"
grep -o '"id":"[0-9a-f]*"' "$TEST_TMP/sink.jsonl" | sort | uniq -d > "$TEST_TMP/sdups"
[ -s "$TEST_TMP/sdups" ] && fail "sink got a message twice"
expect_eq "$(wc -l < "$TEST_TMP/sink.jsonl")" $((N / 2)) "bulk messages through the sink"
# both gateways and both modems took a share
for g in a b; do
    c=$(grep -c "\[modem-$g\] sent " "$TEST_TMP/$g.log")
    [ "$c" -gt 0 ] || fail "modem-$g sent nothing"
done

# every record: sent, right text and part count, modem refs one per part
line=0
while IFS= read -r res; do
    line=$((line + 1))
    [ $((line % 50)) -eq 1 ] || continue          # a sample of 20 records, all four families
    id=$(jget .id <<<"$res")
    "$HERALD" -c "$TEST_TMP/a.conf" status "$id" > "$TEST_TMP/st.json"
    expect_eq "$(jget .status < "$TEST_TMP/st.json")" sent "status of line $line"
    expect_eq "$(jget .parts < "$TEST_TMP/st.json")" "$(jget .parts <<<"$res")" "parts of line $line"
    sed -n "${line}p" "$TEST_TMP/batch.jsonl" > "$TEST_TMP/one.json"
    tname=$(jget .template < "$TEST_TMP/one.json")
    vars=()
    for k in name case_no accepted_on office office_phone stage stage_date deadline period title issue_no link; do
        v=$(jget .vars.$k < "$TEST_TMP/one.json") && vars+=(--var "$k=$v")
    done
    expect_eq "$(jget .text < "$TEST_TMP/st.json")" \
        "$("$HERALD" -c "$TEST_TMP/a.conf" render --template "$tname" "${vars[@]}" --json | jget .text)" "text of line $line"
    case $(jget .route < "$TEST_TMP/st.json") in
    modem-*)
        refs=$(jget .refs < "$TEST_TMP/st.json")
        expect_eq "$(tr ',' '\n' <<<"$refs" | grep -c '^255$')" "$(jget .parts < "$TEST_TMP/st.json")" "one modem reference per part (line $line)" ;;
    sink-*) ;;
    *) fail "route of line $line: $(jget .route < "$TEST_TMP/st.json")" ;;
    esac
done < "$TEST_TMP/ids.jsonl"
"$HERALD" -c "$TEST_TMP/a.conf" queue stats > "$TEST_TMP/s.json"
expect_eq "$(jget .lanes.urgent.depth < "$TEST_TMP/s.json")" 0 "urgent lane empty"
expect_eq "$(jget .lanes.bulk.depth < "$TEST_TMP/s.json")" 0 "bulk lane empty"
expect_eq "$(jget .dead < "$TEST_TMP/s.json")" 0 "no dead letters"
echo "pipeline_test: ok"
