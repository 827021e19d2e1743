#!/usr/bin/env bash
# vhost-user throughput and the recorded Linux boot (docs/performance.md).
#
# 1. dpdk-testpmd's virtio-user driver in txonly mode (64-byte frames, one
#    queue pair; its lcores on CPU 1) against, in the same run:
#      (a) DPDK's own net_vhost backend (testpmd rxonly, CPU 0),
#      (b) vtrace serve (CPU 0),
#      (c) vtrace serve --record (CPU 0, its writer thread too: testpmd's
#          poll-mode driver holds CPU 1, and there is no third core),
#      (b') with BASELINE=/path/to/old/vtrace, that build's serve (an A/B),
#      (c') and that build's serve --record (BASELINE_RECORD_ARGS, else RECORD_ARGS).
#    The figure is the driver's Tx-pps (frames the backend took off the ring;
#    the rest are dropped as ring-full), the median of its per-second reports.
# 2. The Linux guest's boot to poweroff with and without --record (tools/linux-guest/boot.sh).
#
#   tools/vhost-bench.sh [SECONDS] [BOOTS]     # default 8 s per backend, 3 boots each (0: none)
#   BASELINE=/path/to/old/vtrace tools/vhost-bench.sh 4 0
#   RECORD_ARGS="--snaplen 0" tools/vhost-bench.sh 8 0   # (c) with recording options
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-8}
boots=${2:-3}
((seconds >= 4)) || { echo "vhost-bench: SECONDS must be at least 4 (testpmd's first per-second report covers its start-up and is not counted)" >&2; exit 2; }
tools/bootstrap.sh --test   # dpdk-testpmd, QEMU, busybox-static
command -v dpdk-testpmd >/dev/null || { echo "vhost-bench: dpdk-testpmd is missing (apt-get install dpdk-dev)" >&2; exit 2; }
tools/release-build.sh vtrace
VT=$(swift build -c release --show-bin-path)/vtrace
dir=$(mktemp -d "${TMPDIR:-/tmp}/vtrace-vhost-bench.XXXXXX")
# However it ends, no backend or driver is left running: each has the socket's
# path (under $dir) on its command line, even those started in a $(...) subshell.
trap 'pkill -TERM -f -- "$dir/vhost.sock" 2>/dev/null || true; rm -rf "$dir"' EXIT
unblock() { python3 -c 'import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execvp(sys.argv[1], sys.argv[1:])' "$@"; }

driver() {  # the virtio-user driver for $seconds; prints the median Tx-pps
    unblock timeout -k 10 -s INT "$seconds" dpdk-testpmd --lcores 0@1,1@1 --no-pci --file-prefix=vtb$$ --no-huge -m 512 \
        --vdev "net_virtio_user0,path=$1,queues=1" -- --forward-mode=txonly --txpkts=64 --stats-period 1 --nb-cores=1 \
        --total-num-mbufs=16384 > "$dir/driver.log" 2>&1 || true
    python3 - "$dir/driver.log" <<'PY'
import re, statistics, sys
pps = [int(x) for x in re.findall(r"Tx-pps:\s+(\d+)", open(sys.argv[1]).read())]
pps = [p for p in pps[1:] if p > 0] or [0]   # the first report covers the start-up
print(int(statistics.median(pps)))
PY
}

sock=$dir/vhost.sock
# (a) DPDK's net_vhost backend.
unblock timeout -k 10 -s INT $((seconds + 6)) dpdk-testpmd --lcores 0@0,1@0 --no-pci --file-prefix=vta$$ --no-huge -m 512 \
    --vdev "net_vhost0,iface=$sock,queues=1" -- --forward-mode=rxonly --stats-period 1 --nb-cores=1 --total-num-mbufs=16384 \
    > "$dir/backend.log" 2>&1 &
backend=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
a=$(driver "$sock")
kill -INT $backend 2>/dev/null || true; wait $backend 2>/dev/null || true
rm -f "$sock"

serve() {  # vtrace serve (args) + the driver; prints the driver's pps
    unblock taskset -c 0 "${SERVE:-$VT}" serve --vhost-user "$sock" --sessions 1 "$@" --json > "$dir/serve.json" 2>/dev/null &
    local s=$!
    for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
    driver "$sock"
    # Its one session ended with the driver; one that never began is stopped (SIGTERM: the report is still written).
    for _ in $(seq 150); do kill -0 $s 2>/dev/null || break; sleep 0.1; done
    pkill -TERM -f -- "serve --vhost-user $sock" 2>/dev/null || true
    wait $s || true
}
b=$(serve)
[[ -n ${BASELINE:-} ]] && base=$(SERVE=$BASELINE serve)
c=$(serve --record "$dir/bench.vtrace" ${RECORD_ARGS:-})
size=$(stat -c %s "$dir/bench.vtrace")
events=$(python3 -c "import json; print(json.load(open('$dir/serve.json'))['recording']['events'])")
if [[ -n ${BASELINE:-} ]]; then
    cb=$(SERVE=$BASELINE serve --record "$dir/base.vtrace" ${BASELINE_RECORD_ARGS:-${RECORD_ARGS:-}})
    cbsize=$(stat -c %s "$dir/base.vtrace")
    cbevents=$(python3 -c "import json; print(json.load(open('$dir/serve.json'))['recording']['events'])")
fi
python3 - "$a" "$b" "$c" "$size" "$events" <<'PY'
import sys
a, b, c, size, events = (int(x) for x in sys.argv[1:])
print(f"testpmd virtio-user txonly, 64-byte frames, 1 pair (median Tx-pps):")
print(f"  (a) DPDK net_vhost        {a:>12,} pps")
print(f"  (b) vtrace serve          {b:>12,} pps   {b / a:.0%} of (a)   (goal 50%)")
print(f"  (c) vtrace serve --record {c:>12,} pps   {c / a:.0%} of (a)   (goal 40%)   {events:,} events, {size / 1e6:.1f} MB")
PY
[[ -n ${BASELINE:-} ]] && python3 -c "import sys; a, b, o = map(int, sys.argv[1:]); print(f\"  (b') baseline serve       {o:>12,} pps   {o / a:.0%} of (a)   (b) / (b') = {b / o:.2f}\")" "$a" "$b" "$base"
[[ -n ${BASELINE:-} ]] && python3 -c "import sys; a, b, c, o, size, ev = map(int, sys.argv[1:]); print(f\"  (c') baseline --record   {o:>12,} pps   {o / a:.0%} of (a)   (c) / (b) = {c / b:.0%}, (c') / (b) = {o / b:.0%}   {ev:,} events, {size / 1e6:.1f} MB\")" "$a" "$b" "$c" "$cb" "$cbsize" "$cbevents"

# 2. The Linux boot, interleaved, with and without recording.
((boots > 0)) || exit 0
plain=() rec=()
for ((i = 0; i < boots; i++)); do
    VTRACE=$VT tools/linux-guest/boot.sh --json "$dir/p.json" >/dev/null 2>&1 || true
    plain+=("$(python3 -c "import json; print(json.load(open('$dir/p.json'))['seconds'])")")
    VTRACE=$VT tools/linux-guest/boot.sh --record "$dir/boot.vtrace" --json "$dir/r.json" >/dev/null 2>&1 || true
    rec+=("$(python3 -c "import json; print(json.load(open('$dir/r.json'))['seconds'])")")
done
python3 - "${plain[*]}" "${rec[*]}" "$(stat -c %s "$dir/boot.vtrace")" <<'PY'
import statistics as st, sys
p = [float(x) for x in sys.argv[1].split()]; r = [float(x) for x in sys.argv[2].split()]
print(f"Linux boot to poweroff ({len(p)} each, interleaved): plain median {st.median(p):.2f} s (best {min(p):.2f}), "
      f"--record median {st.median(r):.2f} s (best {min(r):.2f}): ratio {st.median(r) / st.median(p):.3f} median, "
      f"{min(r) / min(p):.3f} best (goal 1.05); trace {int(sys.argv[3]) / 1e6:.2f} MB")
PY
