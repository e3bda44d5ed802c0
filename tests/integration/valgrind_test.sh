# valgrind_test.sh -- the integration path under valgrind, on the plain
# (not sanitized) build: a gateway with a libgammu dummy modem, a sink and a
# route that refuses on purpose sends, retries, dead-letters and stops on
# SIGTERM; the CLI enqueues, shows and lists. No definite or indirect leak
# and no memory error is allowed anywhere.
set -u
. "$(dirname "$0")/../lib.sh"
PLAIN=${HERALD_PLAIN:?HERALD_PLAIN: the plain build of herald}
command -v valgrind >/dev/null || { echo "valgrind is not installed (scripts/deps.sh installs it)" >&2; exit 1; }
redis_start "$TEST_TMP/redis" || exit 1
trap 'redis_stop' EXIT
C=$TEST_TMP/h.conf
mkdir -p "$TEST_TMP/phone"
conf_base "$C" vg
cat >> "$C" <<CONF
routes = (
  { name = "modem1"; driver = "gammu"; families = [ "rights_notice", "case_stage" ];
    gammu = { model = "dummy"; connection = "none"; device = "$TEST_TMP/phone"; }; },
  { name = "sink1"; driver = "sink"; families = [ "rights_notice", "case_stage", "survey" ];
    sink = { file = "$TEST_TMP/sink.jsonl"; }; },
  { name = "refuser"; driver = "sink"; families = [ "bulletin" ]; sink = { fail = "permanent"; }; }
);
CONF
VG=(valgrind -q --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99)
H() { "${VG[@]}" --log-file="$TEST_TMP/vg-cli.%p.txt" "$PLAIN" -c "$C" "$@"; }

"${VG[@]}" --log-file="$TEST_TMP/vg-gw.txt" "$PLAIN" -c "$C" run --max-runtime 120 > "$TEST_TMP/gw.log" 2>&1 &
gw=$!
wait_until 60 grep -q "running:" "$TEST_TMP/gw.log" || { cat "$TEST_TMP/gw.log"; fail "gateway did not start under valgrind"; exit 1; }

ids=()
P() { "$PLAIN" -c "$C" "$@"; }
for i in 1 2 3 4 5 6; do
    E=P; [ $i -eq 1 ] && E=H     # one through valgrind, the rest only exercise the gateway
    out=$($E enqueue --template case_stage_update --to "1390000000$i" --var name=李四 --var "case_no=案$i" \
          --var stage=审查起诉 --var stage_date=2026年11月27日 --var office_phone=0571-88888888 --json) \
        || fail "enqueue $i: $out"
    ids+=("$(jget .id <<<"$out")")
done
out=$(P enqueue --template evaluation_survey --to 13900000010 --var period=2026年11月 --at "+1s" --json) || fail "scheduled enqueue: $out"
ids+=("$(jget .id <<<"$out")")
dead=$(P enqueue --template bulletin_fallback --to 13900000011 --var title=检察手机报 --var issue_no=38 \
       --var link=https://example.invalid/38 --json | jget .id)
H enqueue --template no_such --to 13900000012 2>/dev/null; expect_eq $? 2 "unknown template under valgrind"

for id in "${ids[@]}"; do
    wait_until 60 sh -c "'$PLAIN' -c '$C' status $id | jget .status | grep -qx sent" || fail "$id not sent: $("$PLAIN" -c "$C" status "$id")"
done
wait_until 30 sh -c "'$PLAIN' -c '$C' status $dead | jget .status | grep -qx dead" || fail "$dead not dead"
H status "${ids[0]}" > /dev/null || fail "status"
H queue stats > /dev/null || fail "queue stats"
H dead list > /dev/null || fail "dead list"

kill -TERM "$gw"
wait "$gw"; rc=$?
expect_eq "$rc" 0 "gateway exit under valgrind"
for f in "$TEST_TMP"/vg-*.txt; do
    if [ -s "$f" ]; then
        echo "valgrind reported in $(basename "$f"):" >&2
        cat "$f" >&2
        fail "valgrind errors"
    fi
done
echo "valgrind_test: ok ($(ls "$TEST_TMP"/vg-*.txt | wc -l) processes checked)"
