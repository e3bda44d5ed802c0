#!/usr/bin/env bash
# bench/run.sh BUILD -- the driver of `make bench` (docs/performance.md).
#
# Runs each benchmark against its own private redis-server (unix socket,
# AOF everysec: tests/lib.sh redis_start), the gateway under test being the
# plain -O2 build (BUILD/herald) with sink or gammu-dummy routes; the
# measuring is done by BUILD/bench/herald_bench. Prints one table and
# writes bench/results/<time>.json (raw output of every step) and
# bench/results/latest.json (flat figures).
#
# Environment:
#   N=200000        messages of the end-to-end, processing and bulk-enqueue runs
#                   (the latency batch is N/2, single enqueue N/10)
#   N_MODEM=2000    messages through the gammu dummy modem
#   N_RENDER=200000 templates rendered
#   E2E_RUNS=3      back-to-back end-to-end runs on one gateway (RSS growth)
#   PEERS=1         also run ../shared/bench/peers/{kannel,bullmq,gammu_smsd}.sh
#   PEERS_DIR=...   where those scripts are (default: found from the git
#                   checkout, see peers_dir below)
#   PEER_RUNS=1     runs per peer configuration (their scripts take the median)
#   SEND_WINDOW_MS=  gateway.send_window_ms of the gateways under test
#                   (unset: the default, 20; 0: every message one at a time)
#   BATCH=          gateway.batch of the gateways under test (unset: the default)
#   N_IR=5000       messages of the instruction counts (redis-server under
#                   callgrind: bench_instr)
#   N_API=20000     requests of each API run; API_RUNS=3 runs, the median is the figure
#   N_API_C1=5000   requests from one client (and Kannel's sendsms at C=1);
#   N_API_BATCH=400 batch-form requests of 100 messages
#   LISTPACK_VALUE=1024  hash-max-listpack-value of the benchmarks' redis
#                   (docs/redis-keys.md); the processing run uses Redis's defaults
# For a quick look: N=20000 E2E_RUNS=1 make bench
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${1:-build}
HERALD=$ROOT/$BUILD/herald
HB=$ROOT/$BUILD/bench/herald_bench
N=${N:-200000}
N_MODEM=${N_MODEM:-2000}
N_RENDER=${N_RENDER:-200000}
E2E_RUNS=${E2E_RUNS:-3}
PEER_RUNS=${PEER_RUNS:-1}
N_LAT=$((N / 2)); N_SINGLE=$((N / 10))
# The shipped configuration's worker count is "the configured number".
WORKERS=$(sed -n 's/^[[:space:]]*workers[[:space:]]*=[[:space:]]*\([0-9]*\);.*/\1/p' herald.conf | head -1)
WORKERS=${WORKERS:-2}
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)
W=$ROOT/tmp/bench/$RUN_ID
RES=$ROOT/bench/results
mkdir -p "$W" "$RES"
export BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-240}

source "$ROOT/tests/lib.sh"
TEST_TMP=$W

GW=""            # pid of the gateway under test, if any
REDIS_DIR=""     # data of the current private redis-server
# Stops the private redis-server and drops its data (the AOF of a run of
# 200,000 messages is about a gigabyte); its log stays.
redis_drop() {
    redis_stop
    [ -n "$REDIS_DIR" ] && rm -rf "$REDIS_DIR/appendonlydir" "$REDIS_DIR"/*.rdb
    REDIS_DIR=""
}
cleanup() {
    [ -n "$GW" ] && kill -9 "$GW" 2>/dev/null
    redis_drop
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

declare -A FIG        # flat figures -> latest.json
declare -A WHY        # reasons for null figures
RAW=""                # "name": {...}, ... -> the raw results file

raw_add() { RAW+="${RAW:+,}\"$1\":$2"; }
# jnum JSON KEY: a top-level number of herald_bench's one-line output
jnum() { printf '%s' "$1" | grep -o "\"$2\":[-0-9.e+]*" | head -1 | cut -d: -f2; }

# fresh_redis NAME [default]: a new private redis-server (AOF everysec),
# configured as docs/redis-keys.md recommends for a deployment (records
# kept in Redis's compact hash encoding), or with Redis's defaults.
LISTPACK_VALUE=${LISTPACK_VALUE:-1024}
fresh_redis() {
    redis_drop
    REDIS_DIR=$W/redis-$1
    redis_start "$REDIS_DIR" >&2 || { log "redis-server did not start"; exit 1; }
    if [ "${2:-}" != default ]; then
        redis-cli -s "$REDIS_SOCK" CONFIG SET hash-max-listpack-value "$LISTPACK_VALUE" >/dev/null
    fi
}

# write_conf FILE WORKERS ROUTES... : a gateway on the current private redis
write_conf() {
    local file=$1 workers=$2; shift 2
    cat > "$file" <<CONF
redis = { socket = "$REDIS_SOCK"; prefix = "hb";${REDIS_TIMEOUT_MS:+ command_timeout_ms = $REDIS_TIMEOUT_MS;} };
gateway = {
  instance = "bench";
  workers = $workers;
  templates_dir = "$ROOT/templates/shipped";
  signature = "【XX市人民检察院】";${SEND_WINDOW_MS:+
  send_window_ms = $SEND_WINDOW_MS;}${BATCH:+
  batch = $BATCH;}
};
lanes = { urgent = { quiet_hours = ""; }; bulk = { quiet_hours = ""; }; };
pacing = { recipient_hourly = 0; recipient_daily = 0; };
routes = ( $(IFS=,; echo "$*") );
CONF
}
SINK_ROUTE='{ name = "sink"; driver = "sink"; rate_per_minute = 0; }'

# gw_up CONF NAME: starts the gateway, waits until it runs; sets GW
gw_up() {
    "$HERALD" -c "$1" run --max-runtime 900 >"$W/$2.log" 2>&1 &
    GW=$!
    wait_until 30 grep -q "running:" "$W/$2.log" || { log "gateway did not start: $(tail -3 "$W/$2.log")"; exit 1; }
}
gw_down() {
    [ -n "$GW" ] || return 0
    kill -TERM "$GW" 2>/dev/null
    local i
    for i in $(seq 1 200); do kill -0 "$GW" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$GW" 2>/dev/null
    wait "$GW" 2>/dev/null
    GW=""
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{if(NR==0)print ""; else if(NR%2)print a[(NR+1)/2]; else printf "%.0f\n",(a[NR/2]+a[NR/2+1])/2}'; }

# ---- the benchmarks: one function each --------------------------------

# What one pipelined SET costs redis-server here, now: the unit that makes
# the CPU figures of different machines and loads comparable.
bench_calibrate() {
    fresh_redis calibrate
    local c0 c1
    cpu() { redis-cli -s "$REDIS_SOCK" INFO cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/{s+=$2} END{printf "%.4f", s}'; }
    c0=$(cpu)
    redis-benchmark -s "$REDIS_SOCK" -n 200000 -P 16 -r 1000000 -q -t set >/dev/null 2>&1 || return 1
    c1=$(cpu)
    FIG[redis_set_p16_cpu_us]=$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", (b-a)*1e6/200000}')
    log "calibration: a pipelined SET costs redis ${FIG[redis_set_p16_cpu_us]} us of CPU"
}

bench_render() {
    log "render: $N_RENDER survey texts"
    local out; out=$("$HB" render "$N_RENDER") || return 1
    raw_add render "$out"
    FIG[render_per_s]=$(jnum "$out" render_per_s)
}

bench_enqueue() {
    fresh_redis enqueue
    write_conf "$W/enqueue.conf" "$WORKERS" "$SINK_ROUTE"
    log "enqueue: $N_SINGLE single, $N in batches of 1000 (no gateway)"
    local s b
    s=$("$HB" enqueue "$W/enqueue.conf" "$N_SINGLE" 1 evaluation_survey s) || return 1
    b=$("$HB" enqueue "$W/enqueue.conf" "$N" 1000 evaluation_survey b) || return 1
    raw_add enqueue_single "$s"; raw_add enqueue_bulk "$b"
    FIG[enqueue_single_msgs_per_s]=$(jnum "$s" msgs_per_s)
    FIG[enqueue_bulk_msgs_per_s]=$(jnum "$b" msgs_per_s)
    FIG[redis_bytes_per_queued_msg]=$(jnum "$b" redis_bytes_per_queued_msg)
    FIG[enqueue_redis_cmds_per_msg]=$(jnum "$b" redis_cmds_per_msg)
    FIG[enqueue_redis_cpu_us_per_msg]=$(jnum "$b" redis_cpu_us_per_msg)
}

# On a redis-server with Redis's default configuration: also shows what a
# record costs when its hash is not in the compact encoding.
bench_process() {
    fresh_redis process default
    write_conf "$W/process.conf" "$WORKERS" "$SINK_ROUTE"
    log "processing alone: $N pre-filled, $WORKERS workers (redis defaults)"
    local p
    p=$("$HB" process "$W/process.conf" "$N" evaluation_survey p sink bench \
        "$HERALD" -c "$W/process.conf" run --max-runtime 900 2>"$W/process-gw.log") || return 1
    raw_add process "$p"
    FIG[process_msgs_per_s]=$(jnum "$p" msgs_per_s)
    FIG[process_redis_cmds_per_msg]=$(jnum "$p" redis_cmds_per_msg)
    FIG[process_redis_cpu_us_per_msg]=$(jnum "$p" redis_cpu_us_per_msg)
    FIG[redis_bytes_per_finished_msg_redis_defaults]=$(jnum "$p" redis_bytes_per_finished_msg)
}

# End-to-end: the library's bulk path enqueues N while the gateway runs.
bench_e2e() {
    fresh_redis e2e1
    write_conf "$W/e2e1.conf" 1 "$SINK_ROUTE"
    gw_up "$W/e2e1.conf" e2e-w1
    log "end-to-end: $N messages, 1 worker"
    local o; o=$("$HB" e2e "$W/e2e1.conf" "$N" 1000 evaluation_survey w1 sink "$GW") || return 1
    gw_down
    raw_add e2e_1_worker "$o"
    FIG[e2e_1_worker_msgs_per_s]=$(jnum "$o" msgs_per_s)

    fresh_redis e2e
    write_conf "$W/e2e.conf" "$WORKERS" "$SINK_ROUTE"
    gw_up "$W/e2e.conf" e2e
    sleep 1
    FIG[rss_idle_kb]=$(awk '/^VmRSS:/{print $2}' "/proc/$GW/status")
    local r rates=() rss=() first=""
    for r in $(seq 1 "$E2E_RUNS"); do
        log "end-to-end: $N messages, $WORKERS workers, run $r of $E2E_RUNS"
        o=$("$HB" e2e "$W/e2e.conf" "$N" 1000 evaluation_survey "r$r" sink "$GW") || return 1
        raw_add "e2e_run$r" "$o"
        rates+=("$(jnum "$o" msgs_per_s)")
        rss+=("$(jnum "$o" gw_rss_after_kb)")
        [ -n "$first" ] || first=$o
    done
    FIG[rss_peak_kb]=$(awk '/^VmHWM:/{print $2}' "/proc/$GW/status")
    gw_down
    FIG[e2e_msgs_per_s]=$(median "${rates[@]}")
    FIG[e2e_runs_msgs_per_s]="\"${rates[*]}\""
    FIG[rss_after_runs_kb]="\"${rss[*]}\""
    FIG[rss_growth_kb]=$(( ${rss[${#rss[@]}-1]} - ${rss[0]} ))
    # Redis's cost, from the first run (a fresh database)
    FIG[redis_cmds_per_msg]=$(jnum "$first" redis_cmds_per_msg)
    FIG[redis_scripts_per_msg]=$(jnum "$first" redis_scripts_per_msg)
    FIG[redis_round_trips_per_msg]=$(jnum "$first" redis_round_trips_per_msg)
    FIG[redis_cpu_us_per_msg]=$(jnum "$first" redis_cpu_us_per_msg)
    FIG[redis_bytes_per_finished_msg]=$(jnum "$first" redis_bytes_per_finished_msg)
    FIG[gw_cpu_us_per_msg]=$(jnum "$first" gw_cpu_us_per_msg)
    FIG[enqueuer_cpu_us_per_msg]=$(jnum "$first" enqueuer_cpu_us_per_msg)
}

# Redis's instructions per message: redis-server under callgrind, its
# counters zeroed before and dumped after each workload (callgrind_control),
# so only the workload counts. Unlike its CPU time, an instruction count
# hardly depends on how busy the machine is: runs back to back agree to
# about 0.3 %, over an hour they drift by up to 2 % (how the windows fill
# depends on timing), so alternate two trees to compare them. User space
# only: the kernel's work for Redis is not in it. The unit measured beside
# it: a SET pipelined 16 deep. N_IR messages end to end (the configured
# workers), then enqueued alone.
N_IR=${N_IR:-5000}
ir_take() { # prints the instructions since the last zeroing
    local f
    callgrind_control -d "$REDIS_PID" >/dev/null 2>&1 || return 1
    f=$(ls -t "$REDIS_DIR"/cg.out.* 2>/dev/null | head -1)
    [ -n "$f" ] && awk '/^summary:/{print $2}' "$f"
}
bench_instr() {
    command -v callgrind_control >/dev/null || { WHY[redis_instr_per_msg]="valgrind missing"; return 1; }
    REDIS_WRAP="valgrind --tool=callgrind --log-file=$W/redis-instr/valgrind.log --callgrind-out-file=$W/redis-instr/cg.out" fresh_redis instr
    local set e2e enq o
    log "instructions: $N_IR messages end to end, then enqueued alone (redis-server under callgrind)"
    callgrind_control -z "$REDIS_PID" >/dev/null 2>&1 || return 1
    redis-benchmark -s "$REDIS_SOCK" -n 20000 -P 16 -r 1000000 -q -t set >/dev/null 2>&1 || return 1
    set=$(ir_take) || return 1
    redis-cli -s "$REDIS_SOCK" FLUSHALL >/dev/null
    REDIS_TIMEOUT_MS=60000 write_conf "$W/instr.conf" "$WORKERS" "$SINK_ROUTE"
    gw_up "$W/instr.conf" instr
    sleep 1
    callgrind_control -z "$REDIS_PID" >/dev/null 2>&1 || return 1
    o=$("$HB" e2e "$W/instr.conf" "$N_IR" 1000 evaluation_survey i sink "$GW") || return 1
    e2e=$(ir_take) || return 1
    raw_add instr_e2e "$o"
    gw_down
    redis-cli -s "$REDIS_SOCK" FLUSHALL >/dev/null
    callgrind_control -z "$REDIS_PID" >/dev/null 2>&1 || return 1
    o=$("$HB" enqueue "$W/instr.conf" "$N_IR" 1000 evaluation_survey j) || return 1
    enq=$(ir_take) || return 1
    raw_add instr_enqueue "$o"
    redis_drop
    FIG[redis_instr_per_set_p16]=$(awk -v a="$set" 'BEGIN{printf "%.0f", a/20000}')
    FIG[redis_instr_per_msg]=$(awk -v a="$e2e" -v n="$N_IR" 'BEGIN{printf "%.0f", a/n}')
    FIG[enqueue_redis_instr_per_msg]=$(awk -v a="$enq" -v n="$N_IR" 'BEGIN{printf "%.0f", a/n}')
    FIG[redis_instr_per_msg_in_sets]=$(awk -v a="${FIG[redis_instr_per_msg]}" -v b="${FIG[redis_instr_per_set_p16]}" 'BEGIN{printf "%.1f", a/b}')
}

# Urgent notices trickled at 100/s while a bulk batch of N/2 drains.
bench_latency() {
    fresh_redis latency
    write_conf "$W/latency.conf" "$WORKERS" \
        '{ name = "bulk"; driver = "sink"; families = [ "survey", "bulletin" ]; }' \
        "{ name = \"urgent\"; driver = \"sink\"; families = [ \"rights_notice\", \"case_stage\" ]; sink = { file = \"$W/urgent.jsonl\"; }; }"
    gw_up "$W/latency.conf" latency
    log "latency: urgent at 100/s behind $N_LAT bulk"
    local o; o=$("$HB" latency "$W/latency.conf" "$N_LAT" 100 l bulk "$W/urgent.jsonl") || return 1
    gw_down
    raw_add latency "$o"
    FIG[urgent_p50_ms]=$(jnum "$o" urgent_p50_ms)
    FIG[urgent_p99_ms]=$(jnum "$o" urgent_p99_ms)
}

# The modem path: one gammu route on libgammu's dummy phone.
bench_modem() {
    fresh_redis modem
    mkdir -p "$W/phone"
    write_conf "$W/modem.conf" "$WORKERS" \
        "{ name = \"modem\"; driver = \"gammu\"; rate_per_minute = 0; gammu = { model = \"dummy\"; connection = \"none\"; device = \"$W/phone\"; delivery_reports = false; }; }"
    gw_up "$W/modem.conf" modem
    # the modem thread connects after the gateway says "running": a few
    # messages first, so the figure is the send path, not the connect
    "$HB" e2e "$W/modem.conf" 20 20 case_stage_update warm modem "$GW" >/dev/null || return 1
    log "modem: $N_MODEM messages through the gammu dummy phone"
    local o; o=$("$HB" e2e "$W/modem.conf" "$N_MODEM" 100 case_stage_update m modem "$GW") || return 1
    gw_down
    raw_add modem "$o"
    FIG[modem_dummy_msgs_per_s]=$(jnum "$o" msgs_per_s)
}

# The HTTP API: POST /v1/messages (single messages, each its own key and
# number) from 20 keep-alive clients (tests/tools/apibench, libcurl), into
# a gateway whose route is a sink: FIG[api_req_per_s_c20]; then from one
# keep-alive client, FIG[api_req_per_s_c1], and the batch form (100
# messages a request, 20 clients), FIG[api_batch_msgs_per_s].
bench_api() {
    local AB=$ROOT/$BUILD/tools/apibench
    if [ ! -x "$AB" ]; then
        WHY[api_req_per_s_c20]="tests/tools/apibench not built"
        WHY[api_req_per_s_c1]="tests/tools/apibench not built"
        WHY[api_batch_msgs_per_s]="tests/tools/apibench not built"
        return 0
    fi
    local token=bench-token-0123456789abcdef
    write_conf "$W/api.conf" "$WORKERS" "$SINK_ROUTE"
    cat >> "$W/api.conf" <<CONF
api = { enabled = true; port = 0;
        tokens = ( { name = "bench"; token = "$token"; scopes = [ "send" ]; } ); };
CONF
    gw_up "$W/api.conf" api
    local port
    port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$W/api.log" | head -1 | cut -d: -f2)
    # a run lasts a few seconds: the median of API_RUNS (3) is the figure
    local o r rates=()
    for r in $(seq 1 "${API_RUNS:-3}"); do
        o=$("$AB" "http://127.0.0.1:$port/v1/messages" "$token" 20 "${N_API:-20000}" 0) || { gw_down; return 1; }
        raw_add "api_run$r" "$o"
        rates+=("$("$ROOT/$BUILD/tools/jget" .rps <<<"$o")")
    done
    FIG[api_req_per_s_c20]=$(median "${rates[@]}")
    FIG[api_runs_req_per_s]="\"${rates[*]}\""
    o=$("$AB" "http://127.0.0.1:$port/v1/messages" "$token" 1 "${N_API_C1:-5000}" 0) || { gw_down; return 1; }
    raw_add api_c1 "$o"
    FIG[api_req_per_s_c1]=$("$ROOT/$BUILD/tools/jget" .rps <<<"$o")
    o=$("$AB" "http://127.0.0.1:$port/v1/messages" "$token" 20 "${N_API_BATCH:-400}" 100) || { gw_down; return 1; }
    raw_add api_batch "$o"
    FIG[api_batch_msgs_per_s]=$("$ROOT/$BUILD/tools/jget" .mps <<<"$o")
    gw_down
}

# ---- peers ---------------------------------------------------------------

# ../shared/bench/peers next to the main checkout: a worktree's common git
# dir is <main>/.git, so <main>/../shared.
peers_dir() {
    if [ -n "${PEERS_DIR:-}" ]; then echo "$PEERS_DIR"; return; fi
    local common
    common=$(git -C "$ROOT" rev-parse --path-format=absolute --git-common-dir 2>/dev/null)
    if [ -n "$common" ] && [ -d "$(dirname "$common")/../shared/bench/peers" ]; then
        (cd "$(dirname "$common")/../shared/bench/peers" && pwd)
    else
        echo "$ROOT/../shared/bench/peers"
    fi
}

# rget LINE KEY: KEY=value out of a RESULT line
rget() { printf '%s' "$1" | grep -o "$2=[0-9.]*" | head -1 | cut -d= -f2; }

run_peer() { # NAME ENV... : runs NAME.sh with ENV, echoes its RESULT lines
    local name=$1 dir; shift
    dir=$(peers_dir)
    if [ ! -x "$dir/$name.sh" ] && [ ! -f "$dir/$name.sh" ]; then
        log "peer $name: $dir/$name.sh not found, skipped"
        return 1
    fi
    log "peer $name ($dir/$name.sh)"
    env "$@" timeout 600 bash "$dir/$name.sh" >"$W/peer-$name.log" 2>&1
    grep '^RESULT' "$W/peer-$name.log"
}

bench_peers() {
    local out line
    if out=$(run_peer kannel RUNS="$PEER_RUNS" STORES="none file"); then
        raw_add peer_kannel "\"$(printf '%s' "$out" | tr '\n' '|' | sed 's/"/\\"/g')\""
        line=$(printf '%s\n' "$out" | grep 'store=none')
        FIG[kannel_submit_msgs_per_s]=$(rget "$line" sendsms_http_msgs_per_s)
        FIG[kannel_delivered_msgs_per_s]=$(rget "$line" e2e_msgs_per_s)
        line=$(printf '%s\n' "$out" | grep 'store=file')
        FIG[kannel_file_store_delivered_msgs_per_s]=$(rget "$line" e2e_msgs_per_s)
        # sendsms from one keep-alive connection, beside api_req_per_s_c1
        if out=$(run_peer kannel RUNS=1 STORES=none C=1 N="${N_API_C1:-5000}"); then
            raw_add peer_kannel_c1 "\"$(printf '%s' "$out" | tr '\n' '|' | sed 's/"/\\"/g')\""
            FIG[kannel_submit_c1_msgs_per_s]=$(rget "$out" sendsms_http_msgs_per_s)
        else
            WHY[kannel_submit_c1_msgs_per_s]="kannel.sh at C=1 failed"
        fi
    else
        WHY[kannel_submit_msgs_per_s]="kannel.sh missing or failed"
        WHY[kannel_delivered_msgs_per_s]="kannel.sh missing or failed"
    fi
    if out=$(run_peer bullmq RUNS="$PEER_RUNS" PERSIST=aof); then
        raw_add peer_bullmq "\"$(printf '%s' "$out" | tr '\n' '|' | sed 's/"/\\"/g')\""
        local c1 c50
        c1=$(rget "$out" process_c1_jobs_per_s); c50=$(rget "$out" process_c50_jobs_per_s)
        FIG[bullmq_process_jobs_per_s]=$(printf '%s\n' $c1 $c50 | sort -g | tail -1)
        FIG[bullmq_process_c1_jobs_per_s]=$c1
        FIG[bullmq_enqueue_jobs_per_s]=$(rget "$out" enqueue_addBulk_jobs_per_s)
    else
        WHY[bullmq_process_jobs_per_s]="bullmq.sh missing or failed"
    fi
    if out=$(run_peer gammu_smsd RUNS="$PEER_RUNS" PROFILES=fast M=500); then
        raw_add peer_gammu_smsd "\"$(printf '%s' "$out" | tr '\n' '|' | sed 's/"/\\"/g')\""
        FIG[gammu_smsd_msgs_per_s]=$(rget "$out" drain_msgs_per_s)
    else
        WHY[gammu_smsd_msgs_per_s]="gammu_smsd.sh missing or failed"
    fi
}

# ---- run -----------------------------------------------------------------

T0=$(date +%s)
log "herald bench $RUN_ID: N=$N, $WORKERS workers, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
for b in ${BENCH_ONLY:-calibrate render enqueue process e2e instr latency modem api}; do
    if ! "bench_$b"; then
        log "$b failed (see $W)"
        WHY[$b]="failed"
        gw_down
    fi
done
redis_drop
if [ "${PEERS:-}" = 1 ]; then
    bench_peers
fi
FIG[bench_seconds]=$(( $(date +%s) - T0 ))

# ---- results -------------------------------------------------------------

KEYS=(e2e_msgs_per_s e2e_1_worker_msgs_per_s process_msgs_per_s enqueue_bulk_msgs_per_s
      enqueue_single_msgs_per_s redis_cmds_per_msg redis_scripts_per_msg redis_round_trips_per_msg
      redis_cpu_us_per_msg redis_bytes_per_finished_msg redis_bytes_per_finished_msg_redis_defaults
      redis_bytes_per_queued_msg redis_set_p16_cpu_us gw_cpu_us_per_msg enqueuer_cpu_us_per_msg
      enqueue_redis_cmds_per_msg enqueue_redis_cpu_us_per_msg process_redis_cmds_per_msg
      process_redis_cpu_us_per_msg redis_instr_per_msg enqueue_redis_instr_per_msg
      redis_instr_per_set_p16 redis_instr_per_msg_in_sets urgent_p50_ms urgent_p99_ms rss_idle_kb rss_peak_kb
      rss_growth_kb rss_after_runs_kb e2e_runs_msgs_per_s modem_dummy_msgs_per_s render_per_s
      api_req_per_s_c20 api_runs_req_per_s api_req_per_s_c1 api_batch_msgs_per_s)
if [ "${PEERS:-}" = 1 ]; then
    KEYS+=(kannel_submit_msgs_per_s kannel_submit_c1_msgs_per_s kannel_delivered_msgs_per_s
           kannel_file_store_delivered_msgs_per_s
           bullmq_process_jobs_per_s bullmq_process_c1_jobs_per_s bullmq_enqueue_jobs_per_s
           gammu_smsd_msgs_per_s)
fi
{
    printf '{"run":"%s","n":%s,"workers":%s,"cores":%s' "$RUN_ID" "$N" "$WORKERS" "$(nproc)"
    printf ',"bench_seconds":%s' "${FIG[bench_seconds]}"
    for k in "${KEYS[@]}"; do
        v=${FIG[$k]:-}
        if [ -n "$v" ]; then printf ',"%s":%s' "$k" "$v"
        else printf ',"%s":null,"%s_why":"%s"' "$k" "$k" "${WHY[$k]:-not measured}"; fi
    done
    printf '}\n'
} > "$RES/latest.json.tmp"
mv "$RES/latest.json.tmp" "$RES/latest.json"
printf '{"figures":%s,"raw":{%s}}\n' "$(cat "$RES/latest.json")" "$RAW" > "$RES/$RUN_ID.json"

# figure, the peer's figure (or the target), and the ratio
row() { # LABEL VALUE PEER_LABEL PEER_VALUE TARGET
    local ratio="-"
    if [ -n "$2" ] && [ -n "$4" ]; then
        ratio=$(awk -v a="$2" -v b="$4" 'BEGIN{ if (b+0 == 0) print "-"; else printf "%.2fx", a/b }')
    fi
    printf '%-34s %12s   %-30s %12s %8s   %s\n' "$1" "${2:-null}" "$3" "${4:--}" "$ratio" "$5"
}
echo
printf '%-34s %12s   %-30s %12s %8s   %s\n' "herald ($RUN_ID)" "figure" "compared with" "value" "ratio" "target"
printf '%s\n' "$(printf '%.0s-' $(seq 1 120))"
K=${FIG[kannel_delivered_msgs_per_s]:-}; B=${FIG[bullmq_process_jobs_per_s]:-}
row "e2e msgs/s ($WORKERS workers)" "${FIG[e2e_msgs_per_s]:-}" "kannel delivered msgs/s" "$K" ">= 3x"
row "" "${FIG[e2e_msgs_per_s]:-}" "bullmq process jobs/s (AOF)" "$B" ">= 2x"
row "e2e msgs/s (1 worker)" "${FIG[e2e_1_worker_msgs_per_s]:-}" "bullmq process c1 jobs/s" "${FIG[bullmq_process_c1_jobs_per_s]:-}" ""
row "processing alone msgs/s" "${FIG[process_msgs_per_s]:-}" "bullmq process jobs/s (AOF)" "$B" ""
row "enqueue bulk msgs/s" "${FIG[enqueue_bulk_msgs_per_s]:-}" "bullmq addBulk jobs/s" "${FIG[bullmq_enqueue_jobs_per_s]:-}" ""
row "enqueue single msgs/s" "${FIG[enqueue_single_msgs_per_s]:-}" "" "" ""
row "api req/s at c=20" "${FIG[api_req_per_s_c20]:-}" "kannel sendsms req/s" "${FIG[kannel_submit_msgs_per_s]:-}" ">= 2x ${WHY[api_req_per_s_c20]:+(${WHY[api_req_per_s_c20]})}"
row "api req/s at c=1" "${FIG[api_req_per_s_c1]:-}" "kannel sendsms req/s at c=1" "${FIG[kannel_submit_c1_msgs_per_s]:-}" ""
row "api batch msgs/s (100 a request)" "${FIG[api_batch_msgs_per_s]:-}" "target" "100000" ">= 100000"
row "modem dummy msgs/s" "${FIG[modem_dummy_msgs_per_s]:-}" "gammu-smsd msgs/s" "${FIG[gammu_smsd_msgs_per_s]:-}" ">= 10x"
row "redis cmds/msg (e2e)" "${FIG[redis_cmds_per_msg]:-}" "" "" ""
row "redis round trips/msg (e2e)" "${FIG[redis_round_trips_per_msg]:-}" "target" "1" "< 1"
row "redis cpu us/msg (e2e)" "${FIG[redis_cpu_us_per_msg]:-}" "target" "15" "<= 15"
row "redis instructions/msg (e2e)" "${FIG[redis_instr_per_msg]:-}" "pipelined SETs" "${FIG[redis_instr_per_set_p16]:-}" ""
row "  of which the enqueue" "${FIG[enqueue_redis_instr_per_msg]:-}" "" "" ""
row "redis bytes/finished msg" "${FIG[redis_bytes_per_finished_msg]:-}" "target" "1000" "<= 1000"
row "  same, redis default config" "${FIG[redis_bytes_per_finished_msg_redis_defaults]:-}" "target" "1000" "<= 1000"
row "redis bytes/queued msg" "${FIG[redis_bytes_per_queued_msg]:-}" "" "" ""
row "  redis cpu us per pipelined SET" "${FIG[redis_set_p16_cpu_us]:-}" "" "" ""
row "gateway cpu us/msg (e2e)" "${FIG[gw_cpu_us_per_msg]:-}" "" "" ""
row "enqueuer cpu us/msg (e2e)" "${FIG[enqueuer_cpu_us_per_msg]:-}" "" "" ""
row "urgent p50 ms" "${FIG[urgent_p50_ms]:-}" "" "" ""
row "urgent p99 ms" "${FIG[urgent_p99_ms]:-}" "target" "50" "< 50"
row "gateway rss idle kB" "${FIG[rss_idle_kb]:-}" "target" "20480" "< 20 MB"
row "gateway rss peak kB" "${FIG[rss_peak_kb]:-}" "target" "65536" "< 64 MB"
row "rss growth over $E2E_RUNS runs kB" "${FIG[rss_growth_kb]:-}" "" "" "no growth"
row "render/s (survey, 2 parts)" "${FIG[render_per_s]:-}" "" "" ""
echo
echo "bench: $RES/latest.json, raw: $RES/$RUN_ID.json, logs: $W (${FIG[bench_seconds]} s)"
