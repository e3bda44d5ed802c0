#!/usr/bin/env bash
# scripts/bench_providers.sh BUILD -- `make bench`: sends per second through
# the aliyun driver against the provider emulator (which checks every
# signature) with 1, 16 and 64 requests in flight, with an emulator that
# answers at once and one that takes 20 ms (as a real provider would), and
# the Redis commands the gateway spends per message (INFO before and after).
# BENCH_MESSAGES (default 2000) messages per run.
# A private redis-server and emulator on loopback; nothing leaves the host.
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export HERALD=$ROOT/$BUILD/herald
export PATH=$ROOT/$BUILD/tools:$PATH
TEST_TMP=$(mktemp -d /tmp/herald-bench.XXXXXX)
. "$ROOT/tests/lib.sh"
N=${BENCH_MESSAGES:-2000}
EMU_PID=
trap 'gw_stop_all; [ -n "$EMU_PID" ] && kill $EMU_PID 2>/dev/null; redis_stop; rm -rf "$TEST_TMP"' EXIT
redis_start "$TEST_TMP/redis" >/dev/null || exit 1
"$ROOT/$BUILD/emulators/provider_emu" --port-file "$TEST_TMP/port" --record /dev/null --max-runtime 900 &
EMU_PID=$!
wait_until 10 test -s "$TEST_TMP/port" || { echo "emulator did not start" >&2; exit 1; }
PORT=$(cat "$TEST_TMP/port")
T=$TEST_TMP/tpl
mkdir -p "$T"
cp "$ROOT"/templates/shipped/*.tpl "$T/"
sed -i 's/^max_parts: 4$/max_parts: 4\nprovider_code: SMS_71390007/' "$T/rights_notice_suspect.tpl"

calls() { redis-cli -s "$REDIS_SOCK" info stats | tr -d '\r' | sed -n 's/^total_commands_processed://p'; }
# calls of one command (commandstats), e.g. evalsha
ncalls() { redis-cli -s "$REDIS_SOCK" info commandstats | tr -d '\r' | sed -n "s/^cmdstat_$1:calls=\([0-9]*\),.*/\1/p" | grep . || echo 0; }
trips() { echo $(( $(ncalls evalsha) + $(ncalls eval) + $(ncalls xreadgroup) )); }

printf '%-11s %-10s %10s %10s %16s %18s\n' latency_ms in_flight messages sends/s redis_cmds/msg round_trips/msg
for latency in 0 20; do
curl -sf "http://127.0.0.1:$PORT/control?target=aliyun&delay_ms=$latency" >/dev/null || { echo "emulator control failed" >&2; exit 1; }
for inflight in 1 16 64; do
    run=$latency-$inflight
    C=$TEST_TMP/b$run.conf
    conf_base "$C" "bench$inflight"
    sed -i "s|templates_dir = .*|templates_dir = \"$T\";|; s|prefix = \"t\"|prefix = \"b$latency-$inflight\"|; s|workers = 2;|workers = $inflight;|" "$C"
    cat >> "$C" <<CONF
routes = ( { name = "ali"; driver = "aliyun"; families = [ "rights_notice" ];
  aliyun = { access_key_id = "testId"; access_key_secret = "testSecret"; sign_name = "某市人民检察院";
             endpoint = "http://127.0.0.1:$PORT/aliyun/"; max_in_flight = $inflight; }; } );
CONF
    for i in $(seq 1 "$N"); do
        echo "{\"template\":\"rights_notice_suspect\",\"to\":\"136$(printf %08d "$i")\",\"vars\":{\"name\":\"张$i\",\"case_no\":\"案$i\",\"accepted_on\":\"2026年11月27日\",\"office\":\"某市人民检察院\",\"office_phone\":\"0571-88888888\"}}"
    done > "$TEST_TMP/batch.jsonl"
    "$HERALD" -c "$C" enqueue --batch "$TEST_TMP/batch.jsonl" > /dev/null || { echo "enqueue failed" >&2; exit 1; }
    c0=$(calls); r0=$(trips)
    gw_start "g$run" "$C" >/dev/null || exit 1
    t0=$(date +%s%N)                # the gateway says it runs (checked every 0.1 s)
    wait_until 600 sh -c "[ \$(redis-cli -s '$REDIS_SOCK' hget '{b$latency-$inflight}:stats' 'sent:rights_notice:ali') = $N ] 2>/dev/null" \
        || { echo "not all sent" >&2; exit 1; }
    t1=$(date +%s%N)
    c1=$(calls); r1=$(trips)
    gw_stop "g$run" >/dev/null
    ms=$(( (t1 - t0) / 1000000 ))
    # the stats polls of this script are Redis commands too: one per 0.1 s
    polls=$(( ms / 100 + 1 ))
    per=$(( (c1 - c0 - polls) * 100 / N ))
    rt=$(( (r1 - r0) * 100 / N ))
    printf '%-11s %-10s %10s %10s %13d.%02d %15d.%02d\n' "$latency" "$inflight" "$N" "$(( N * 1000 / (ms > 0 ? ms : 1) ))" \
        $((per / 100)) $((per % 100)) $((rt / 100)) $((rt % 100))
done
done
echo "latency_ms: how long the emulator takes to answer each request (0, and 20 as a provider would)."
echo "sends/s: from the gateway's \"running\" line to the last message recorded sent (aliyun driver, signature"
echo "checked by the emulator). redis_cmds/msg: every command Redis executed for the gateway, those"
echo "inside its Lua scripts included (INFO total_commands_processed, housekeeping included)."
echo "round_trips/msg: EVALSHA/EVAL and XREADGROUP calls the gateway made, per message."
echo "Run on a shared machine: compare the figures with each other, not with production."
