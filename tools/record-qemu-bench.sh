#!/usr/bin/env bash
# The hidden cost of recording a CI boot (docs/performance.md, "Capture a CI
# boot (issue 23)"): the Linux guest booted under QEMU's software CPU by
# tools/linux-guest/boot.sh, which runs `vtrace record -o T -- qemu-system-x86_64
# ...`, against the same boot without --record (`vtrace record --no-record`:
# vtrace serves the NIC, nothing is recorded): RUNS of each, interleaved (the
# order alternating from one pair to the next), in the same session. The figure
# is each boot's boot-to-poweroff wall time (QEMU's start to its end, as
# vtrace's --json report gives it); the goal is recorded/plain ≤ 1.05 at the
# median. Also printed: the best boots' ratio and the median of the pairs'
# ratios (each recorded boot against the plain one beside it).
#
#   tools/record-qemu-bench.sh [RUNS] [APPEND]    # default 5 runs each; APPEND: the guest's traffic
#   tools/record-qemu-bench.sh 5 'vtrace.frames=2000 vtrace.large=200'
#
# VTRACE=path picks the vtrace binary (default: the release build, built here).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
append=${2:-}
((runs >= 1)) || { echo "record-qemu-bench: RUNS must be at least 1" >&2; exit 2; }
if [[ -z ${VTRACE:-} ]]; then
    tools/release-build.sh vtrace
    VTRACE=$(swift build -c release --show-bin-path)/vtrace
fi
export VTRACE
dir=$(mktemp -d "${TMPDIR:-/tmp}/vtrace-record-qemu-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT

boot() {  # recorded|plain: one boot; prints its seconds
    local record=()
    [[ $1 == recorded ]] && record=(--record "$dir/boot.vtrace")
    rm -f "$dir/boot.vtrace"
    tools/linux-guest/boot.sh "${record[@]}" --append "$append" --json "$dir/$1.json" > "$dir/boot.log" 2>&1 ||
        { echo "record-qemu-bench: the $1 boot failed:" >&2; tail -20 "$dir/boot.log" >&2; exit 1; }
    python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['seconds'])" "$dir/$1.json"
}

plain=() recorded=()
for ((i = 0; i < runs; i++)); do
    if ((i % 2 == 0)); then
        plain+=("$(boot plain)"); recorded+=("$(boot recorded)")
    else
        recorded+=("$(boot recorded)"); plain+=("$(boot plain)")
    fi
    echo "run $((i + 1)): plain ${plain[-1]} s, recorded ${recorded[-1]} s" >&2
done
python3 - "${plain[*]}" "${recorded[*]}" "$dir/recorded.json" <<'PY'
import json, statistics as st, sys
p = [float(x) for x in sys.argv[1].split()]
r = [float(x) for x in sys.argv[2].split()]
report = json.load(open(sys.argv[3]))
rec, c = report["recording"], report["device"]
print(f"Linux boot to poweroff, {len(p)} each, interleaved ({c['tx_packets']:,} frames sent, {c['rx_packets']:,} received):")
print(f"  --no-record  median {st.median(p):.2f} s  (min {min(p):.2f}, max {max(p):.2f})   {' '.join(f'{x:.2f}' for x in p)}")
print(f"  recorded     median {st.median(r):.2f} s  (min {min(r):.2f}, max {max(r):.2f})   {' '.join(f'{x:.2f}' for x in r)}")
pairs = [b / a for a, b in zip(p, r)]
print(f"  ratio        {st.median(r) / st.median(p):.3f} at the median (goal <= 1.05), {min(r) / min(p):.3f} best to best, "
      f"{st.median(pairs):.3f} the median pair ({' '.join(f'{x:.3f}' for x in pairs)})")
print(f"  trace        {rec['events']:,} events, {rec['chunks']} chunks, {rec['file_bytes'] / 1e6:.2f} MB, {rec['stalls']} stalls")
PY
