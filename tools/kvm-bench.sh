#!/usr/bin/env bash
# Recording cost on KVM (docs/performance.md): the same guest workload with and
# without --record, interleaved, ROUNDS each; wall time of the run loop (from
# `vtrace run --json`): best and median, their ratios, and MMIO exits per
# second. This machine's speed swings by 30% within minutes: read the median
# ratio over many rounds, and the instruction counts in performance.md, not
# one best time.
#
#   tools/kvm-bench.sh [ROUNDS]                 # default 5
#   BASELINE=/path/to/old/vtrace tools/kvm-bench.sh 12
#       also records with an older build in the same rounds (an A/B of two commits)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
[[ -r /dev/kvm && -w /dev/kvm ]] || { echo "kvm-bench: /dev/kvm is not usable here" >&2; exit 2; }
tools/bootstrap.sh
tools/release-build.sh vtrace
tools/guest/build.sh
VT=.build/release/vtrace
BASE=${BASELINE:-}
dir=${TMPDIR:-/tmp}/vtrace-kvm-bench
mkdir -p "$dir"
field() { python3 -c "import json,sys; o=json.load(sys.stdin); print(o['$1'])"; }
for workload in "burst:frames=50000,len=64,batch=1" "burst:frames=200000,len=64" "burst:frames=100000,len=1500,descs=2"; do
    plain=() rec=() base=() exits=0 events=0 size=0
    for ((i = 0; i < rounds; i++)); do
        out=$("$VT" run --workload "$workload" --json --timeout 300)
        plain+=("$(field seconds <<<"$out")"); exits=$(field mmioExits <<<"$out")
        if [[ -n $BASE ]]; then
            base+=("$("$BASE" run --workload "$workload" --json --timeout 300 --record "$dir/base.vtrace" | field seconds)")
        fi
        out=$("$VT" run --workload "$workload" --json --timeout 300 --record "$dir/bench.vtrace")
        rec+=("$(field seconds <<<"$out")"); events=$(field events <<<"$out")
        size=$(stat -c %s "$dir/bench.vtrace")
    done
    python3 - "$workload" "${plain[*]}" "${rec[*]}" "${base[*]:-}" "$exits" "$events" "$size" <<'PY'
import sys, statistics as st
w, exits, events, size = sys.argv[1], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
plain, rec = [[float(x) for x in a.split()] for a in sys.argv[2:4]]
base = [float(x) for x in sys.argv[4].split()]
def cols(name, xs):
    return (f"{name} best {min(xs):.3f} s median {st.median(xs):.3f} s, ratio {min(xs) / min(plain):.2f} best / "
            f"{st.median(xs) / st.median(plain):.2f} median")
print(f"{w}  ({len(plain)} rounds, {events:,} events, {size / 1e6:.1f} MB)")
print(f"  plain    best {min(plain):.3f} s median {st.median(plain):.3f} s ({exits / min(plain):,.0f} MMIO exits/s)")
print("  " + cols("--record", rec) + f" ({exits / min(rec):,.0f} exits/s)")
if base:
    print("  " + cols("baseline", base))
PY
done
