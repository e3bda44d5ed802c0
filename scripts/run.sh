#!/bin/sh
# scripts/run.sh -- what `make run` does after building: make sure the Redis
# named in herald.conf answers (else start a private redis-server with its
# unix socket and AOF under ./run/), then run the gateway in the foreground.
set -eu
cd "$(dirname "$0")/.."
HERALD=./build/herald
CONF=${HERALD_CONFIG:-herald.conf}
mkdir -p run/phone

if ! $HERALD -c "$CONF" ping 2>/dev/null; then
    sock=$(pwd)/run/redis.sock
    echo "herald: the Redis in $CONF does not answer; starting a private redis-server on $sock"
    cat > run/redis.conf <<CONF
port 0
unixsocket $sock
unixsocketperm 700
dir $(pwd)/run
pidfile $(pwd)/run/redis.pid
logfile $(pwd)/run/redis.log
appendonly yes
appendfsync everysec
save ""
daemonize yes
CONF
    redis-server run/redis.conf
    i=0
    until redis-cli -s "$sock" ping >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then
            echo "herald: redis-server did not start; see run/redis.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "herald: private redis-server running (stop it with: redis-cli -s $sock shutdown)"
    # The shipped config names this socket; a config naming another Redis
    # is pointed here through the environment, in this shell and the next.
    if ! $HERALD -c "$CONF" ping >/dev/null 2>&1; then
        HERALD_REDIS_SOCKET=$sock
        export HERALD_REDIS_SOCKET
        echo "herald: in the second terminal, first run: export HERALD_REDIS_SOCKET=$sock"
    fi
fi

cat <<MSG

  Herald is starting on $CONF (modem: libgammu dummy phone in ./run/phone).
  From a second terminal, send a first message:

    ./build/herald enqueue --template rights_notice_suspect --to 13800138000 \\
        --var name=张三 --var case_no=某检刑诉〔2026〕88号 --var accepted_on=2026年11月27日 \\
        --var office=某市人民检察院 --var office_phone=0571-88888888
    ./build/herald status ID        (the id printed by enqueue)
    ./build/herald queue stats

  Stop the gateway with Ctrl-C.

MSG
exec $HERALD run -c "$CONF"
