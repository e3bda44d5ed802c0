# privacy_test.sh -- secrets and personal data stay out of the logs. A full
# scenario (Redis with an ACL user and a password, urgent and bulk
# messages, a dead letter, refused input, the command line) runs at log
# level info; then every log line is scanned for full phone numbers, the
# password and the message texts. The gateway also warns when its config
# holds a secret and is readable by every user.
set -u
. "$(dirname "$0")/../lib.sh"
redis_start "$TEST_TMP/redis" || exit 1
trap 'gw_stop_all; redis_stop' EXIT
PW='s3cret-Pa55-for-herald'
redis-cli -s "$REDIS_SOCK" ACL SETUSER herald on ">$PW" '~*' '&*' '+@all' >/dev/null || fail "ACL SETUSER"
redis-cli -s "$REDIS_SOCK" ACL SETUSER default off >/dev/null || fail "default user off"
C=$TEST_TMP/h.conf
conf_base "$C" priv
sed -i "s|^redis = { socket = \"\\([^\"]*\\)\";|redis = { socket = \"\\1\"; user = \"herald\"; password = \"$PW\";|" "$C"
grep -q "password = \"$PW\"" "$C" || fail "config not rewritten: $(head -1 "$C")"
cat >> "$C" <<CONF
routes = (
  { name = "sink1"; driver = "sink"; families = [ "rights_notice", "case_stage", "survey" ]; sink = { file = "$TEST_TMP/sink.jsonl"; }; },
  { name = "refuser"; driver = "sink"; families = [ "bulletin" ]; sink = { fail = "permanent"; }; }
);
CONF
chmod 644 "$C"
H() { "$HERALD" -c "$C" "$@" 2>>"$TEST_TMP/cli.log"; }

# a wrong password: a clear error, exit 1, and the password not echoed
sed "s|$PW|wrong-password|" "$C" > "$TEST_TMP/bad.conf"
"$HERALD" -c "$TEST_TMP/bad.conf" queue stats >/dev/null 2>"$TEST_TMP/bad.err"
expect_eq $? 1 "exit with a wrong password"
grep -qi "AUTH" "$TEST_TMP/bad.err" || fail "wrong password error unclear: $(cat "$TEST_TMP/bad.err")"
grep -q "wrong-password" "$TEST_TMP/bad.err" && fail "the password was printed"

gw_start g "$C" || exit 1
grep -q "holds secrets (password" "$TEST_TMP/g.log" || fail "no warning about a world-readable config with a password"
V=(--var name=张三 --var "case_no=某检刑诉〔2026〕5号" --var accepted_on=2026年11月27日
   --var office=某市人民检察院 --var office_phone=0571-88888888)
ids=()
ids+=("$(H enqueue --template rights_notice_suspect --to 13812345678 "${V[@]}" --json | jget .id)")
ids+=("$(H enqueue --template evaluation_survey --to "+86 139-8765-4321" --var period=2026年11月 --json | jget .id)")
ids+=("$(H enqueue --template bulletin_fallback --to 13700001111 --var title=检察手机报 --var issue_no=38 --var link=http://127.0.0.1/38 --json | jget .id)")
H enqueue --template rights_notice_suspect --to 12345 "${V[@]}" >/dev/null
H enqueue --template rights_notice_suspect --to 13812345678 --var name=张三 >/dev/null
for id in "${ids[@]}"; do
    wait_until 20 sh -c "$HERALD -c '$C' status $id 2>/dev/null | jget .status | grep -qx -e sent -e dead" || fail "$id not finished"
done
H status "${ids[0]}" >/dev/null
H dead list >/dev/null
H queue stats >/dev/null
gw_stop g || exit 1

logs=("$TEST_TMP/g.log" "$TEST_TMP/cli.log")
lines=$(cat "${logs[@]}" | wc -l)
[ "$lines" -gt 5 ] || fail "too few log lines to judge ($lines)"
if grep -nE '(^|[^0-9])1[3-9][0-9]{9}([^0-9]|$)' "${logs[@]}"; then fail "a full phone number in a log"; fi
if grep -n -- "$PW" "${logs[@]}"; then fail "the Redis password in a log"; fi
if grep -n "您有权委托辩护人\|执法程序\|检察手机报" "${logs[@]}"; then fail "a message text in a log above debug"; fi
grep -q "138\*\*\*\*5678" "$TEST_TMP/g.log" || fail "masked numbers expected in the gateway log"
echo "privacy_test: ok ($lines log lines scanned)"
