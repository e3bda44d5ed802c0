# sighup_test.sh -- SIGHUP reloads the templates; a broken template file
# keeps the old set and the log says why; SIGTERM exits 0.
set -u
. "$(dirname "$0")/../lib.sh"
redis_start "$TEST_TMP/redis" || exit 1
trap 'gw_stop_all; redis_stop' EXIT
mkdir -p "$TEST_TMP/tpl"
cp "$ROOT_DIR"/templates/shipped/*.tpl "$TEST_TMP/tpl/"
n=$(ls "$TEST_TMP/tpl" | wc -l)
C=$TEST_TMP/h.conf
conf_base "$C" hup
sed -i "s|templates_dir = .*|templates_dir = \"$TEST_TMP/tpl\";|" "$C"
echo 'routes = ( { name = "s"; driver = "sink"; } );' >> "$C"
gw_start g "$C" || exit 1
grep -q "$n templates" "$TEST_TMP/g.log" || fail "start-up does not report $n templates"

printf 'name: broken_one\nfamily: rights_notice\nrequired: name\n---\n{{#name}}unclosed section\n' > "$TEST_TMP/tpl/broken.tpl"
kill -HUP "${GW_PID[g]}"
wait_until 10 grep -q "reload failed, keeping the $n templates" "$TEST_TMP/g.log" || fail "broken reload not reported: $(tail -5 "$TEST_TMP/g.log")"
grep "reload failed" "$TEST_TMP/g.log" | grep -q "broken.tpl" || fail "the error does not name the file"
kill -0 "${GW_PID[g]}" || fail "gateway died on a broken template"

rm "$TEST_TMP/tpl/broken.tpl"
printf 'name: extra_notice\nfamily: case_stage\nrequired: name\nmax_parts: 2\n---\n{{name}}，您好，请留意案件进展。\n' > "$TEST_TMP/tpl/extra.tpl"
kill -HUP "${GW_PID[g]}"
wait_until 10 grep -q "reloaded $((n + 1)) templates" "$TEST_TMP/g.log" || fail "good reload not reported: $(tail -5 "$TEST_TMP/g.log")"
gw_stop g || exit 1
grep -q "stopped" "$TEST_TMP/g.log" || fail "no clean stop"
echo "sighup_test: ok"
