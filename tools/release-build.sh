#!/usr/bin/env bash
# Builds release products (all of them, or the ones named) quietly: prints the
# compiler's warnings, and on failure its errors (or the log's tail) and exits 1.
# The scripts call this rather than hiding a failed build behind `|| true`.
#
#   tools/release-build.sh                    # every product
#   tools/release-build.sh vtrace vtrace-bench
set -euo pipefail
cd "$(dirname "$0")/.."
build() {
    local log
    log=$(mktemp)
    if ! swift build -c release "$@" > "$log" 2>&1; then
        grep -E "error" "$log" >&2 || tail -30 "$log" >&2
        echo "release build failed: swift build -c release $*" >&2
        rm -f "$log"
        exit 1
    fi
    grep -E "warning: " "$log" | sort -u >&2 || true
    rm -f "$log"
}
if (($#)); then
    for product in "$@"; do build --product "$product"; done
else
    build
fi
