#!/usr/bin/env bash
# What the writer's zstd costs on a recorded trace's own chunks, setting by
# setting (docs/performance.md, issue 24, session 10): instructions an event
# (callgrind, counting only the compression: `vtrace-bench --compress`) and
# the bytes each setting writes. A live run's content changes with time (a
# generator's buffer addresses shuffle), so two live runs compare two
# contents; these rows compare settings on the same chunks.
#
#   tools/writer-cost.sh TRACE [CHUNKS]                # default: the first 40 chunks
#   AS=1.6 tools/writer-cost.sh TRACE                  # its events encoded again as format 1.6 first
#   SETTINGS="1:own 1:dfast -4:own" tools/writer-cost.sh TRACE
#
# A setting is LEVEL:FINDER, the finder `own` (the level's: ZSTD_fast at
# levels 1-2 and below 0, ZSTD_dfast at 3-4, ...) or `dfast` (level 3's
# double hash with the level's tables, as the writer's chooser may pick).
set -euo pipefail
cd "$(dirname "$0")/.."
trace=${1:?usage: tools/writer-cost.sh TRACE [CHUNKS]}
chunks=${2:-40}
settings=${SETTINGS:-"1:own 1:dfast 2:own 3:own -1:own -4:own"}
[[ -r $trace ]] || { echo "writer-cost: cannot read $trace" >&2; exit 2; }
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
tools/release-build.sh vtrace-bench
dir=$(mktemp -d "${TMPDIR:-/tmp}/vtrace-writer-cost.XXXXXX")
trap 'rm -rf "$dir"' EXIT
strip --strip-debug "$(swift build -c release --show-bin-path)/vtrace-bench" -o "$dir/vtrace-bench"
echo "zstd on $trace's chunks (the first $chunks${AS:+, encoded again as $AS}): instructions an event counted in compressAll, bytes written"
printf '  %-10s %8s %12s %12s %8s\n' setting events uncompressed compressed instr/event
for s in $settings; do
    level=${s%%:*} finder=${s##*:}
    valgrind --tool=callgrind --callgrind-out-file="$dir/cg" --toggle-collect='*compressAll*' \
        "$dir/vtrace-bench" --compress "$trace" "$level" "$finder" "$chunks" ${AS:+--as "$AS"} > "$dir/out" 2> "$dir/valgrind.log" \
        || { echo "writer-cost: vtrace-bench failed:" >&2; cat "$dir/out" "$dir/valgrind.log" >&2; exit 1; }
    read -r n events raw packed < "$dir/out"
    total=$(awk '/^totals:/ {print $2}' "$dir/cg")
    printf '  %-10s %8s %12s %12s %8.1f\n' "$s" "$events" "$raw" "$packed" "$(python3 -c "print($total / $events)")"
done
