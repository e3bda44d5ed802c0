#!/usr/bin/env bash
# queue_test.sh -- runs the queue unit binary against a private redis-server.
#
# usage: tests/integration/queue_test.sh [BINARY]
#   BINARY defaults to build/san/tests/test_queue (as `make test` builds it).
# Starts redis-server on a unix socket in a mktemp -d folder (tests/lib.sh),
# runs the binary with REDIS_SOCK set, stops redis and removes the folder
# from an EXIT trap. Fails when the binary fails or redis logged an error.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/build/san/tests/test_queue}
# shellcheck source=../lib.sh
. "$root/tests/lib.sh"

if [ ! -x "$bin" ]; then
    echo "queue_test: $bin not built" >&2
    exit 1
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/herald-queue.XXXXXX")
trap 'redis_stop; rm -rf "$dir"' EXIT
redis_start "$dir" || exit 1

"$bin"
rc=$?
if grep -E '# (WARNING .*crash|Bug report|ASSERTION)' "$dir/redis.log" >/dev/null 2>&1; then
    echo "queue_test: redis-server reported a problem:" >&2
    cat "$dir/redis.log" >&2
    rc=1
fi
exit $rc
