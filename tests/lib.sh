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
    redis-server "$dir/redis.conf" &
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
