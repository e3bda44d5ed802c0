#!/bin/sh
# scripts/deps.sh -- installs the Debian packages Herald needs to build,
# run and test. As root it runs apt-get; otherwise it prints the exact
# apt-get line and stops. `--check` is the same but says why it was called.
set -eu

# chromium-headless-shell and a CJK font: tests/integration/survey_test.sh
# opens the survey report's HTML in a headless browser; nodejs drives it
# for tests/integration/console_test.sh (DevTools protocol on a pipe, no
# npm packages).
PACKAGES="make gcc pkg-config libgammu-dev libcurl4-openssl-dev libhiredis-dev \
libconfig-dev libjansson-dev libssl-dev libmicrohttpd-dev redis-server redis-tools curl valgrind \
clang libclang-rt-14-dev chromium-headless-shell fonts-wqy-microhei nodejs"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

line="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "herald: missing Debian packages:$missing" >&2
    echo "herald: install them as root with:" >&2
    echo "    sudo apt-get update && sudo $line" >&2
    exit 1
fi
echo "herald: installing missing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
if ! $line >/dev/null 2>&1; then
    apt-get update -qq
    $line
fi
