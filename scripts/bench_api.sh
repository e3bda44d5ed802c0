#!/usr/bin/env bash
# scripts/bench_api.sh BUILD_DIR -- `make bench`: requests per second of
# POST /v1/messages (keep-alive, 1 and 32 concurrent clients, single and
# batch form), each beside the enqueue rate of `herald enqueue --batch` in
# the same run, against a private redis-server and a gateway whose route is
# a sink (so sending costs nothing and enqueueing is what is measured).
# Sizes can be set with BENCH_N (single requests) and BENCH_BATCHES.
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
. tests/lib.sh
export HERALD=$PWD/$BUILD/herald
BENCH=$PWD/$BUILD/tools/apibench
export PATH=$PWD/$BUILD/tools:$PATH
N=${BENCH_N:-4000}
NB=${BENCH_BATCHES:-40}
TEST_TMP=$(mktemp -d /tmp/herald-bench.XXXXXX)
export TEST_TMP
trap 'gw_stop_all; redis_stop; rm -rf "$TEST_TMP"' EXIT
redis_start "$TEST_TMP/redis" || exit 1
C=$TEST_TMP/h.conf
conf_base "$C" bench
TOKEN=bench-token-0123456789abcdef
cat >> "$C" <<CONF
routes = ( { name = "sink"; driver = "sink"; } );
api = { enabled = true; port = 0;
        tokens = ( { name = "bench"; token = "$TOKEN"; scopes = [ "send" ]; } ); };
CONF
gw_start bench "$C" || exit 1
PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$TEST_TMP/bench.log" | head -1 | cut -d: -f2)
U=http://127.0.0.1:$PORT/v1/messages

cli_rate() {   # n: messages/s of `herald enqueue --batch` for n new messages
    local n=$1 f=$TEST_TMP/cli.jsonl i
    for i in $(seq 1 "$n"); do
        echo "{\"template\":\"evaluation_survey\",\"to\":\"137$(printf '%08d' "$i")\",\"vars\":{\"period\":\"2026年11月\"},\"key\":\"cli-$RANDOM$RANDOM-$i\"}"
    done > "$f"
    local t0 t1
    t0=$(date +%s%N)
    "$HERALD" -c "$C" enqueue --batch "$f" > /dev/null 2>&1 || { echo "cli enqueue failed" >&2; return 1; }
    t1=$(date +%s%N)
    echo $(( n * 1000000000 / (t1 - t0) ))
}

printf '%-34s %10s %12s %16s\n' "case" "req/s" "messages/s" "CLI messages/s"
row() {   # label, clients, requests, batch
    local out rate cli
    out=$("$BENCH" "$U" "$TOKEN" "$2" "$3" "$4") || { echo "apibench failed: $out" >&2; exit 1; }
    cli=$(cli_rate 2000)
    printf '%-34s %10s %12s %16s\n' "$1" "$(jget .rps <<<"$out")" "$(jget .mps <<<"$out")" "$cli"
}
row "single, 1 client (keep-alive)" 1 "$N" 0
row "single, 32 clients (keep-alive)" 32 "$N" 0
row "batch of 100, 1 client" 1 "$NB" 100
row "batch of 100, 32 clients" 32 "$((NB > 32 ? NB : 32))" 100
gw_stop bench || exit 1
