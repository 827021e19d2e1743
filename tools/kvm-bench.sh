#!/usr/bin/env bash
# Recording cost on KVM (docs/performance.md): the same guest workload with and
# without --record, interleaved, best of ROUNDS each; wall time of the run loop
# (from `vtrace run --json`), the ratio, and MMIO exits per second.
#
#   tools/kvm-bench.sh [ROUNDS]       # default 5
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
[[ -r /dev/kvm && -w /dev/kvm ]] || { echo "kvm-bench: /dev/kvm is not usable here" >&2; exit 2; }
swift build -c release --product vtrace >/dev/null
tools/guest/build.sh
VT=.build/release/vtrace
dir=${TMPDIR:-/tmp}/vtrace-kvm-bench
mkdir -p "$dir"
field() { python3 -c "import json,sys; o=json.load(sys.stdin); print(o['$1'])"; }
for workload in "burst:frames=50000,len=64,batch=1" "burst:frames=200000,len=64" "burst:frames=100000,len=1500,descs=2"; do
    best_plain=999 best_rec=999 exits=0 events=0 size=0
    for ((i = 0; i < rounds; i++)); do
        out=$("$VT" run --workload "$workload" --json --timeout 300)
        t=$(field seconds <<<"$out"); exits=$(field mmioExits <<<"$out")
        best_plain=$(python3 -c "print(min($best_plain, $t))")
        out=$("$VT" run --workload "$workload" --json --timeout 300 --record "$dir/bench.vtrace")
        t=$(field seconds <<<"$out"); events=$(field events <<<"$out")
        best_rec=$(python3 -c "print(min($best_rec, $t))")
        size=$(stat -c %s "$dir/bench.vtrace")
    done
    python3 - "$workload" "$best_plain" "$best_rec" "$exits" "$events" "$size" <<'PY'
import sys
w, plain, rec, exits, events, size = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
print(f"{w:42s} plain {plain:.3f} s ({exits / plain:,.0f} MMIO exits/s)   --record {rec:.3f} s ({exits / rec:,.0f}/s)   "
      f"ratio {rec / plain:.2f}   {events:,} events, {size / 1e6:.1f} MB")
PY
done
