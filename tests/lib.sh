# tests/lib.sh -- shared helpers for integration tests (sourced, bash).
#
# redis_start DIR   starts a private redis-server on a unix socket in DIR
#                   (AOF on), waits until it answers PING, exports
#                   REDIS_SOCK and REDIS_PID. redis_stop stops it.
# Every wait is bounded; nothing here sleeps a fixed time to "be sure".

redis_start() {
    local dir=$1
    mkdir -p "$dir"
    cat > "$dir/redis.conf" <<CONF
port 0
unixsocket $dir/redis.sock
unixsocketperm 700
dir $dir
pidfile $dir/redis.pid
appendonly yes
appendfsync everysec
save ""
daemonize no
logfile $dir/redis.log
CONF
    # REDIS_WRAP: a command to run it under (bench/run.sh: callgrind)
    ${REDIS_WRAP:-} redis-server "$dir/redis.conf" &
    REDIS_PID=$!
    REDIS_SOCK=$dir/redis.sock
    export REDIS_SOCK REDIS_PID
    local i
    for i in $(seq 1 200); do
        if redis-cli -s "$REDIS_SOCK" ping 2>/dev/null | grep -q PONG; then
            return 0
        fi
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "redis-server did not start; its log:" >&2
    cat "$dir/redis.log" >&2
    return 1
}

redis_stop() {
    [ -n "${REDIS_PID:-}" ] || return 0
    kill "$REDIS_PID" 2>/dev/null
    local i
    for i in $(seq 1 100); do
        kill -0 "$REDIS_PID" 2>/dev/null || { REDIS_PID=; return 0; }
        sleep 0.05
    done
    kill -9 "$REDIS_PID" 2>/dev/null
    REDIS_PID=
}

# wait_until TIMEOUT_S CMD...: runs CMD every 0.1 s until it succeeds.
wait_until() {
    local limit=$1; shift
    local end=$(( $(date +%s) + limit ))
    while [ "$(date +%s)" -lt "$end" ]; do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

# ---- gateways --------------------------------------------------------
# conf_base FILE INSTANCE [extra gateway lines] writes the redis, gateway,
# retry, lanes and pacing groups of a test config (private redis in
# REDIS_SOCK, shipped templates, fast retries, no quiet hours and no
# recipient caps, so a test's outcome does not depend on the time of day or
# on how often it writes to one number); the test appends its own routes.
conf_base() {
    local file=$1 instance=$2 extra=${3:-}
    cat > "$file" <<CONF
redis = { socket = "$REDIS_SOCK"; prefix = "t"; };
gateway = {
  instance = "$instance";
  workers = 2;
  templates_dir = "$ROOT_DIR/templates/shipped";
  visibility_timeout_ms = 5000;
  shutdown_timeout_ms = 10000;
  housekeeping_interval_ms = 50;
  $extra
};
retry = { max_attempts = 3; backoff_base_ms = 100; backoff_max_ms = 400; jitter_percent = 10; };
lanes = { urgent = { reclaim_policy = "resend"; quiet_hours = ""; }; bulk = { reclaim_policy = "hold"; quiet_hours = ""; }; };
pacing = { recipient_hourly = 0; recipient_daily = 0; };
CONF
}

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
declare -A GW_PID

# gw_start NAME CONF: runs a gateway in the background (log in
# $TEST_TMP/NAME.log) and waits until it says it is running.
gw_start() {
    local name=$1 conf=$2
    "$HERALD" -c "$conf" run --max-runtime 600 >>"$TEST_TMP/$name.log" 2>&1 &
    GW_PID[$name]=$!
    if ! wait_until 30 grep -q "running:" "$TEST_TMP/$name.log"; then
        echo "gateway $name did not start:" >&2
        cat "$TEST_TMP/$name.log" >&2
        return 1
    fi
}

# gw_stop NAME: SIGTERM, and the gateway must exit 0 within 20 s.
gw_stop() {
    local name=$1 pid=${GW_PID[$1]:-}
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    local i
    for i in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "gateway $name did not stop within 20 s" >&2
        kill -9 "$pid"
        return 1
    fi
    wait "$pid"
    local rc=$?
    unset "GW_PID[$name]"
    [ $rc -eq 0 ] || { echo "gateway $name exited $rc" >&2; tail -20 "$TEST_TMP/$name.log" >&2; return 1; }
}

gw_kill9() {
    local pid=${GW_PID[$1]:-}
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    unset "GW_PID[$1]"
    return 0
}

gw_stop_all() {
    local n
    for n in "${!GW_PID[@]}"; do kill -9 "${GW_PID[$n]}" 2>/dev/null; done
}

# field CONF ID PATH: one field of a message's record
field() { "$HERALD" -c "$1" status "$2" | jget "$3"; }

# fail MESSAGE: prints and exits 1
fail() { echo "FAIL: $*" >&2; exit 1; }

# check COND-COMMAND... MESSAGE-LAST-ARG style is hard in bash; tests use
# `expect_eq ACTUAL EXPECTED WHAT`.
expect_eq() { [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"; }

# redis_cli ARGS...: redis-cli on the test's Redis: REDIS_PORT (TCP on
# 127.0.0.1) when set, else the unix socket REDIS_SOCK.
redis_cli() {
    if [ -n "${REDIS_PORT:-}" ]; then
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
    else
        redis-cli -s "$REDIS_SOCK" "$@"
    fi
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on (bounded tries).
free_port() {
    local i p
    for i in $(seq 1 100); do
        p=$(( 20000 + (RANDOM * 7 + i) % 40000 ))
        grep -qx "$p" "$TEST_TMP/.ports" 2>/dev/null && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p" >> "$TEST_TMP/.ports"
            echo "$p"
            return 0
        fi
    done
    return 1
}

# status_of_all IDS_JSONL PREFIX: "id status" for every id in an enqueue
# result file (one JSON object with "id" per line), read straight from
# Redis in one redis-cli session: thousands of records in a second.
status_of_all() {
    local ids=$1 prefix=$2
    grep -o '"id":"[0-9a-f]*"' "$ids" | cut -d'"' -f4 > "$TEST_TMP/.ids"
    sed "s/.*/HGET {$prefix}:msg:& status/" "$TEST_TMP/.ids" \
        | redis_cli > "$TEST_TMP/.st"
    paste -d' ' "$TEST_TMP/.ids" "$TEST_TMP/.st"
}

# sink_counts SINK_JSONL: "id count" for every id the sink recorded.
sink_counts() {
    grep -o '"id":"[0-9a-f]*"' "$1" | cut -d'"' -f4 | sort | uniq -c | awk '{print $2, $1}'
}

# redis_restart: stops the private redis-server cleanly (AOF flushed) and
# starts it again on the same socket and files.
redis_restart() {
    local dir
    dir=$(dirname "$REDIS_SOCK")
    redis_stop
    redis_start "$dir"
}

# make_batch N FILE: N messages as JSONL for `herald enqueue --batch`,
# one in four an urgent case-stage update, the rest bulk surveys; numbers
# 136xxxxxxxx, distinct.
make_batch() {
    local n=$1 file=$2
    awk -v n="$n" 'BEGIN {
        for (i = 1; i <= n; i++) {
            num = sprintf("136%08d", i)
            if (i % 4 == 0)
                printf "{\"template\":\"case_stage_update\",\"to\":\"%s\",\"vars\":{\"name\":\"李%d\",\"case_no\":\"案%d\",\"stage\":\"审查起诉\",\"stage_date\":\"2026年11月27日\",\"office_phone\":\"0571-88888888\"}}\n", num, i, i
            else
                printf "{\"template\":\"evaluation_survey\",\"to\":\"%s\",\"vars\":{\"period\":\"2026年11月\"}}\n", num
        }
    }' > "$file"
}

# audit IDS_JSONL SINK_JSONL PREFIX: the accounting of a run. Every message
# ends sent, uncertain or dead; a sent one reached the sink once (an urgent
# one twice only when its timeline says it was perhaps sent before a
# crash); an uncertain one at most once. Prints
# "sent S uncertain U dead D resent R" and fails on anything else.
audit() {
    local ids=$1 sink=$2 prefix=$3
    grep -o '"id":"[0-9a-f]*"' "$ids" | cut -d'"' -f4 > "$TEST_TMP/.ids"
    sed "s/.*/HMGET {$prefix}:msg:& status lane/" "$TEST_TMP/.ids" \
        | redis_cli | paste -d' ' - - > "$TEST_TMP/.st"
    sink_counts "$sink" > "$TEST_TMP/.sink"
    paste -d' ' "$TEST_TMP/.ids" "$TEST_TMP/.st" | LC_ALL=C sort > "$TEST_TMP/.rows"
    LC_ALL=C join -a1 -e0 -o 0,1.2,1.3,2.2 "$TEST_TMP/.rows" <(LC_ALL=C sort "$TEST_TMP/.sink") > "$TEST_TMP/.audit"
    local sent=0 unc=0 dead=0 resent=0 bad=0 other=0 id st lane n
    while read -r id st lane n; do
        case "$st" in
        sent)
            sent=$((sent + 1))
            if [ "$n" -eq 2 ] && [ "$lane" = urgent ] &&
               redis_cli HGET "{$prefix}:msg:$id" tl | grep -q "perhaps sent"; then
                resent=$((resent + 1))
            elif [ "$n" -ne 1 ]; then
                echo "audit: $id ($lane) sent, reached the sink $n times" >&2; bad=$((bad + 1))
            fi ;;
        uncertain)
            unc=$((unc + 1))
            [ "$lane" = bulk ] && [ "$n" -le 1 ] || { echo "audit: $id ($lane) uncertain, sink $n" >&2; bad=$((bad + 1)); } ;;
        dead) dead=$((dead + 1)) ;;
        *) echo "audit: $id ($lane) ended '$st'" >&2; bad=$((bad + 1)); other=$((other + 1)) ;;
        esac
    done < "$TEST_TMP/.audit"
    echo "sent $sent uncertain $unc dead $dead resent $resent broken $bad"
    # AUDIT_TOLERATE: how many may break the accounting (a documented loss
    # window, e.g. a Sentinel failover under asynchronous replication)
    [ "$bad" -le "${AUDIT_TOLERATE:-0}" ] || fail "audit: $bad messages broke the accounting"
    [ $((sent + unc + dead + other)) -eq "$(wc -l < "$TEST_TMP/.ids")" ] || fail "audit: totals do not balance"
}

# api_base LOG: http://127.0.0.1:PORT of the API a gateway logged it listens on
api_base() {
    local port
    port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$1" | head -1 | cut -d: -f2)
    [ -n "$port" ] && echo "http://127.0.0.1:$port"
}

# req TOKEN METHOD PATH [curl args]: one API request to $U; prints the HTTP
# status, the body goes to $B ('' for no token)
req() {
    local tok=$1 m=$2 p=$3; shift 3
    local auth=()
    [ -n "$tok" ] && auth=(-H "Authorization: Bearer $tok")
    curl -s -m 20 -o "$B" -w '%{http_code}' -X "$m" "${auth[@]}" "$@" "$U$p"
}

# jsq EXPR < JSON: the value of a JavaScript expression over the document d
# (strings raw); for the tests that have node for the browser anyway (a
# fresh machine has no jq)
jsq() {
    node -e 'let s = ""; process.stdin.on("data", (c) => s += c).on("end", () => {
        const d = JSON.parse(s), v = eval(process.argv[1]);
        console.log(typeof v === "string" ? v : JSON.stringify(v)); })' "$1"
}
