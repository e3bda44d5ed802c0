# config_test.sh -- a bad configuration stops start-up with file:line, the
# key and what is wrong (exit 2); every key the code reads is documented in
# docs/configuration.md and present in the shipped herald.conf.
set -u
. "$(dirname "$0")/../lib.sh"
bad() {   # name, expected message fragment, config text
    printf '%s\n' "$3" > "$TEST_TMP/$1.conf"
    "$HERALD" -c "$TEST_TMP/$1.conf" run > "$TEST_TMP/$1.out" 2>&1
    rc=$?
    expect_eq "$rc" 2 "exit code for $1"
    grep -q -- "$2" "$TEST_TMP/$1.out" || fail "$1: expected '$2' in: $(cat "$TEST_TMP/$1.out")"
}
R='routes = ( { name = "s"; driver = "sink"; } );'
bad syntax "syntax.conf:2: syntax error" "gateway = { workers = 2; };
gateway = { workers = ;"
bad unknown "unknown.conf:1: gateway.wrokers: unknown key" "gateway = { wrokers = 4; }; $R"
bad type "type.conf:1: gateway.workers: must be an integer" "gateway = { workers = \"four\"; }; $R"
bad range "range.conf:1: redis.port: 70000 is out of range" "redis = { port = 70000; }; $R"
bad noroutes "routes: required key is missing" "gateway = { workers = 1; };"
bad driver "driver.conf:1: routes.\[0\].driver: unknown driver 'carrier-pigeon'" 'routes = ( { name = "x"; driver = "carrier-pigeon"; } );'
bad drvkey "routes.\[0\].sink.flie: unknown key" 'routes = ( { name = "x"; driver = "sink"; sink = { flie = "/tmp/x"; }; } );'
bad family "unknown family 'surveys'" 'routes = ( { name = "x"; driver = "sink"; families = [ "surveys" ]; } );'
bad policy "lanes.bulk.reclaim_policy: 'maybe'" "lanes = { bulk = { reclaim_policy = \"maybe\"; }; }; $R"
bad level "gateway.log_level: 'loud'" "gateway = { log_level = \"loud\"; }; $R"
bad quiet "lanes.bulk.quiet_hours: '9pm' is not" "lanes = { bulk = { quiet_hours = \"9pm\"; }; }; $R"
bad routing "routing.survey: 'nope' is no route or pool name" "routing = { survey = [ \"nope\" ]; }; $R"
bad routefam "routing.survey: route 'c' does not serve this family" 'routing = { survey = [ "c" ]; }; routes = ( { name = "c"; driver = "aliyun"; aliyun = { access_key_id = "a"; access_key_secret = "b"; sign_name = "c"; }; } );'
bad tz "pacing.timezone: 'Mars/Olympus' is not a time zone" "pacing = { timezone = \"Mars/Olympus\"; }; $R"
bad dupname "route name 's' is used twice" 'routes = ( { name = "s"; driver = "sink"; }, { name = "s"; driver = "sink"; } );'
"$HERALD" -c "$TEST_TMP/missing.conf" run 2>"$TEST_TMP/m.out"; expect_eq $? 2 "missing file exit"
grep -q "missing.conf" "$TEST_TMP/m.out" || fail "missing file not named"

# the shipped config is valid and every key is documented and shown
"$HERALD" -c "$ROOT_DIR/herald.conf" config check >/dev/null || fail "shipped herald.conf does not load"
"$HERALD" config keys > "$TEST_TMP/keys"
[ "$(wc -l < "$TEST_TMP/keys")" -gt 30 ] || fail "too few keys listed"
missing=0
while IFS=$'\t' read -r path _; do
    grep -qF "\`$path\`" "$ROOT_DIR/docs/configuration.md" || { echo "undocumented key: $path" >&2; missing=1; }
    leaf=${path##*.}
    [ "$leaf" = "[]" ] && continue
    grep -qE "(^|[ #{])$leaf *=" "$ROOT_DIR/herald.conf" || { echo "key not shown in herald.conf: $path" >&2; missing=1; }
done < "$TEST_TMP/keys"
[ $missing -eq 0 ] || fail "configuration keys missing from docs/configuration.md or herald.conf"

# HERALD_CONFIG and -c pick the file
(cd "$TEST_TMP" && HERALD_CONFIG="$ROOT_DIR/herald.conf" "$HERALD" config check >/dev/null) || fail "HERALD_CONFIG not used"
(cd "$TEST_TMP" && env -u HERALD_CONFIG "$HERALD" config check 2>/dev/null); rc=$?
[ -f /etc/herald/herald.conf ] || expect_eq $rc 2 "no config anywhere"
echo "config_test: ok"
