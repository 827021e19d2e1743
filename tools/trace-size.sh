#!/usr/bin/env bash
# Trace size and compression-level measurements (docs/performance.md).
#
#   tools/trace-size.sh     # prints the tables; takes about a minute
#
# 1. The scenario library, each scenario recorded at the default level: events,
#    bytes on disk, bytes/event, bytes/event without memory payload bytes, and
#    the same events as JSON Lines (`vtrace dump --json`) compressed with zstd -19.
# 2. The traffic workload at zstd levels 1, 3, 6, 9 and 19: size and recording time.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/bootstrap.sh
tools/release-build.sh vtrace
VT=.build/release/vtrace
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

measure() {  # name scenario [record options...]
    local name=$1 scenario=$2; shift 2
    local start end
    start=$(date +%s.%N)
    "$VT" record --scenario "$scenario" -o "$work/$name.vtrace" "$@" >/dev/null || true
    end=$(date +%s.%N)
    python3 -c "print($end - $start)" > "$work/$name.seconds"
    "$VT" info "$work/$name.vtrace" --json > "$work/$name.json"
    "$VT" dump "$work/$name.vtrace" --json > "$work/$name.jsonl"
    zstd -q -19 -f "$work/$name.jsonl" -o "$work/$name.jsonl.zst"
    python3 - "$work/$name.json" "$(stat -c %s "$work/$name.jsonl.zst")" "$(stat -c %s "$work/$name.jsonl")" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(d["events"], d["fileBytes"], d["nonPayloadBytesPerEvent"] * d["events"], sys.argv[2], sys.argv[3])
PY
}

echo "== scenario library (default level 3)"
total_events=0 total_bytes=0 total_nonpayload=0 total_jsonl=0 total_raw=0
for f in traces/scenarios/*.scenario; do
    read -r events bytes nonpayload jsonl raw < <(measure "$(basename "$f" .scenario)" "$f")
    total_events=$((total_events + events)); total_bytes=$((total_bytes + bytes))
    total_nonpayload=$(python3 -c "print($total_nonpayload + $nonpayload)")
    total_jsonl=$((total_jsonl + jsonl)); total_raw=$((total_raw + raw))
done
python3 - <<PY
e, b, n, j, r = $total_events, $total_bytes, $total_nonpayload, $total_jsonl, $total_raw
print(f"library: {e} events in 38 traces; .vtrace {b} bytes = {b/e:.2f} B/event (headers and indexes included);")
print(f"  without memory payload bytes: {n/e:.2f} B/event; JSON Lines {r} bytes, zstd -19 of it {j} bytes = {j/e:.2f} B/event")
PY

echo "== traffic workload (4,000 frames) by level"
printf "%6s %10s %10s %12s %12s %10s\n" level events bytes "B/event" "non-payload" "record s"
for level in 1 3 6 9 19; do
    read -r events bytes nonpayload jsonl raw < <(measure "traffic-$level" traces/workloads/traffic-4k.scenario --level "$level")
    seconds=$(cat "$work/traffic-$level.seconds")
    python3 -c "print(f'{$level:6d} {$events:10d} {$bytes:10d} {$bytes/$events:12.2f} {$nonpayload/$events:12.2f} {$seconds:10.2f}')"
done
echo "traffic workload as JSON Lines: $raw bytes; zstd -19: $jsonl bytes = $(python3 -c "print(f'{$jsonl/$events:.2f}')") B/event"
