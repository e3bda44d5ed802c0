#!/usr/bin/env bash
# tests/run.sh BUILD_DIR [unit|integration|faults|all] -- runs the test suites
# against the binaries in BUILD_DIR (built with ASan and UBSan by `make test`).
#
# Unit binaries print "N passed, N failed"; those that need Redis get the
# unix socket of a private redis-server started here in REDIS_SOCK.
# Integration scripts (tests/integration/*.sh) start their own servers.
# The last line is the total: "N passed, N failed" (tests, not checks).
set -u
cd "$(dirname "$0")/.."
BUILD=${1:?usage: tests/run.sh BUILD_DIR [unit|integration|all]}
WHAT=${2:-all}
ROOT=$(pwd)
. tests/lib.sh

TMP=$(mktemp -d /tmp/herald-test.XXXXXX)
cleanup() { redis_stop; rm -rf "$TMP"; }
trap cleanup EXIT

export HERALD=$ROOT/$BUILD/herald
# the plain (not sanitized) build, for the test under valgrind
export HERALD_PLAIN=${HERALD_PLAIN:-$ROOT/build/herald}
export EMULATORS=$ROOT/$BUILD/emulators
# the test tools, built plain by `make test` (they are not under test)
export TOOLS=${TOOLS:-$ROOT/build/tools}
export PATH=$TOOLS:$PATH
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=24
export LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp:print_suppressions=0

passed=0
failed=0
failures=()

summary() {   # the figure a test prints last: checks passed, or fuzz executions
    { grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -1
      grep -E '^stat::number_of_executed_units' "$1" | tail -1 | awk '{print $2, "executions"}'; } | head -1
}

report() {   # name, log, exit status, seconds
    local name=$1 log=$2 rc=$3 secs=$4
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        printf 'ok   %-40s %3ds  %s\n' "$name" "$secs" "$(summary "$log")"
    else
        failed=$((failed + 1))
        failures+=("$name")
        printf 'FAIL %-40s %3ds\n' "$name" "$secs"
        tail -n 40 "$log" | sed 's/^/     | /'
    fi
}

run_one() {   # name, log, command...
    local name=$1 log=$2; shift 2
    local start=$SECONDS rc=0
    "$@" >"$log" 2>&1 || rc=$?
    report "$name" "$log" "$rc" $((SECONDS - start))
}

if [ "$WHAT" = unit ] || [ "$WHAT" = all ]; then
    redis_start "$TMP/redis" || exit 1
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        run_one "unit/$(basename "$t")" "$TMP/$(basename "$t").log" "$t"
    done
    redis_stop
fi

# integration: the scripts in tests/integration; faults: tests/faults (each
# starts everything it needs and stops by itself). ONLY=NAME runs one script.
for suite in integration faults; do
    [ "$WHAT" = "$suite" ] || [ "$WHAT" = all ] || continue
    for t in tests/$suite/*.sh; do
        [ -e "$t" ] || continue
        name=$(basename "$t" .sh)
        [ -z "${ONLY:-}" ] || [ "$ONLY" = "$name" ] || continue
        mkdir -p "$TMP/$name"
        run_one "$suite/$name" "$TMP/$name.log" env TEST_TMP="$TMP/$name" bash "$t"
    done
done

# fuzz: each libFuzzer harness (built by `make test` into build/fuzz with
# clang) for FUZZ_TEST_SECONDS from its seed corpus; new inputs go to a
# scratch folder, crashes to build/fuzz/crashes/.
# Two harnesses run at a time (each is one single-threaded process).
fuzz_one() {   # harness: runs it, leaves NAME.log and NAME.rc in $TMP
    local f=$1 name rc=0
    name=$(basename "$f")
    mkdir -p "$TMP/$name"
    "$f" -max_total_time="${FUZZ_TEST_SECONDS:-5}" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$ROOT/build/fuzz/crashes/$name-" \
        "$TMP/$name" "tests/fuzz/corpus/${name#fuzz_}" > "$TMP/$name.log" 2>&1 || rc=$?
    echo "$rc" > "$TMP/$name.rc"
}
if [ "$WHAT" = fuzz ] || [ "$WHAT" = all ]; then
    mkdir -p build/fuzz/crashes
    harnesses=()
    for f in build/fuzz/fuzz/fuzz_*; do
        [ -x "$f" ] || continue
        [ -z "${ONLY:-}" ] || [ "$ONLY" = "$(basename "$f")" ] || continue
        harnesses+=("$f")
    done
    for ((i = 0; i < ${#harnesses[@]}; i += 2)); do
        pair=("${harnesses[@]:i:2}")
        start=$SECONDS
        for f in "${pair[@]}"; do fuzz_one "$f" & done
        wait
        for f in "${pair[@]}"; do
            name=$(basename "$f")
            report "fuzz/$name" "$TMP/$name.log" "$(cat "$TMP/$name.rc" 2>/dev/null || echo 1)" $((SECONDS - start))
        done
    done
fi

echo
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
