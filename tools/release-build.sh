#!/usr/bin/env bash
# Builds release products (all of them, or the ones named) quietly: prints the
# compiler's warnings, and on failure its errors (or the log's tail) and exits 1.
# The scripts call this rather than hiding a failed build behind `|| true`.
# Arguments after `--` go to every `swift build` (another package, sanitizers).
#
#   tools/release-build.sh                    # every product
#   tools/release-build.sh vtrace vtrace-bench
#   tools/release-build.sh FuzzVhost -- --package-path tools/fuzz --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer
set -euo pipefail
cd "$(dirname "$0")/.."
products=() extra=()
while (($#)); do
    if [[ $1 == -- ]]; then shift; extra=("$@"); break; fi
    products+=("$1"); shift
done
build() {
    local log
    log=$(mktemp)
    if ! swift build -c release "$@" "${extra[@]}" > "$log" 2>&1; then
        grep -E "error" "$log" >&2 || tail -30 "$log" >&2
        echo "release build failed: swift build -c release $* ${extra[*]}" >&2
        rm -f "$log"
        exit 1
    fi
    grep -E "warning: " "$log" | sort -u >&2 || true
    rm -f "$log"
}
if ((${#products[@]})); then
    for product in "${products[@]}"; do build --product "$product"; done
else
    build
fi
