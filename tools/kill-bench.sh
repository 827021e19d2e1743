#!/usr/bin/env bash
# Crash safety under the busiest workload, and what it costs (docs/performance.md).
#
# 1. ROUNDS times: `vtrace serve --record` (default settings) under DPDK
#    testpmd io forwarding (a polling driver that refills the ring as fast as
#    the device drains it, so one kick's drain lasts seconds), killed with
#    SIGKILL 0.8-3 s after frames start to flow. Each leftover .partial must
#    pass `vtrace verify` and `vtrace replay --check` (exit 0); the script
#    counts both, and the chunks with checkpoints.
# 2. With BASELINE=/path/to/old/vtrace, COST_ROUNDS interleaved recordings of
#    the same workload for SECONDS each (testpmd stopped by SIGINT, so the
#    traces are complete) by this build and the baseline: frames the
#    recording backend forwarded per second, bytes per event on disk and with
#    every chunk recompressed alone at zstd level 1 (tools/chunk-size.py: the
#    recorder's adaptive level makes sizes on disk follow the machine's load),
#    chunks with checkpoints. Medians.
#
#   tools/kill-bench.sh [ROUNDS]                     # default 100
#   VTRACE=/path/to/old/vtrace tools/kill-bench.sh 12  # the same rounds with another build
#   BASELINE=/path/to/old/vtrace COST_ROUNDS=5 SECONDS_PER_RUN=6 tools/kill-bench.sh 0
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-100}
cost_rounds=${COST_ROUNDS:-5}
seconds=${SECONDS_PER_RUN:-6}
tools/bootstrap.sh --test
command -v dpdk-testpmd >/dev/null || { echo "kill-bench: dpdk-testpmd is missing (apt-get install dpdk-dev)" >&2; exit 2; }
tools/release-build.sh vtrace
VT=${VTRACE:-$(swift build -c release --show-bin-path)/vtrace}
dir=$(mktemp -d "${TMPDIR:-/tmp}/vtrace-kill-bench.XXXXXX")
trap 'pkill -KILL -f -- "$dir/" 2>/dev/null || true; rm -rf "$dir"' EXIT
unblock() { python3 -c 'import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execvp(sys.argv[1], sys.argv[1:])' "$@"; }

testpmd() {  # io forwarding against $1 until killed
    dpdk-testpmd --lcores 0@0,1@1 --no-pci --file-prefix=vtk$$ --no-huge -m 512 --vdev "net_virtio_user0,path=$1,queues=1" \
        -- --forward-mode=io --tx-first --stats-period 1 --total-num-mbufs=16384 > "$dir/testpmd.log" 2>&1
}

size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }

if ((rounds > 0)); then
    verified=0 replayed=0 chunks=0 checkpoints=0 cut=0
    for r in $(seq "$rounds"); do
        sock=$dir/k.sock trace=$dir/k.vtrace
        rm -f "$sock" "$trace" "$trace.partial"
        "$VT" serve --vhost-user "$sock" --sessions 1 --record "$trace" > /dev/null 2>&1 &
        serve=$!
        for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
        testpmd "$sock" &
        pmd=$!
        for _ in $(seq 300); do (($(size_of "$trace.partial") > 100000)) && break; sleep 0.02; done
        sleep "$(python3 -c 'import random; print(round(random.uniform(0.8, 3.0), 3))')"
        kill -KILL $serve; wait $serve 2>/dev/null || true
        kill -KILL $pmd 2>/dev/null; wait $pmd 2>/dev/null || true
        pkill -KILL -f -- "path=$sock" 2>/dev/null || true
        "$VT" verify "$trace.partial" --json > "$dir/verify.json" 2>&1 || true
        read -r ok c k o < <(python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(int(j["ok"]), j["chunks"], j.get("checkpointChunks", -1), 1 if j.get("cut") else 0)' "$dir/verify.json" || echo "0 0 0 0")
        ((ok)) && verified=$((verified + 1)) || { echo "round $r: verify failed"; cat "$dir/verify.json"; }
        "$VT" replay --check "$trace.partial" > "$dir/replay.txt" 2>&1 && replayed=$((replayed + 1)) || { echo "round $r: replay --check failed"; cat "$dir/replay.txt"; }
        # An older build's verify does not count checkpoints: its info does (slowly).
        ((k >= 0)) || k=$("$VT" info "$trace.partial" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["checkpointChunks"])')
        chunks=$((chunks + c)) checkpoints=$((checkpoints + k)) cut=$((cut + o))
        printf '\rround %d/%d: %d verified, %d replayed (--check 0)' "$r" "$rounds" "$verified" "$replayed" >&2
    done
    echo >&2
    echo "kill -9 of serve --record under testpmd io forwarding, $rounds rounds:"
    echo "  verify OK: $verified/$rounds   replay --check exit 0: $replayed/$rounds   ended inside a drain: $cut/$rounds"
    echo "  chunks with checkpoints: $checkpoints of $chunks"
fi

if [[ -n ${BASELINE:-} ]] && ((cost_rounds > 0)); then
    record() {  # $1 = vtrace binary; prints "pps bytes-per-event level-1-bytes-per-event checkpoints chunks"
        local sock=$dir/c.sock trace=$dir/c.vtrace
        rm -f "$sock" "$trace" "$trace.partial"
        "$1" serve --vhost-user "$sock" --sessions 1 --record "$trace" --json > "$dir/serve.json" 2>/dev/null &
        local serve=$!
        for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
        unblock timeout -k 5 -s INT "$seconds" dpdk-testpmd --lcores 0@0,1@1 --no-pci --file-prefix=vtc$$ --no-huge -m 512 \
            --vdev "net_virtio_user0,path=$sock,queues=1" -- --forward-mode=io --tx-first --stats-period 1 \
            --total-num-mbufs=16384 > "$dir/testpmd.log" 2>&1 || true
        wait $serve || true
        python3 - "$dir/serve.json" "$seconds" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
rec = j["recording"]
print(j["counters"]["tx_packets"] / j["seconds"], rec["fileBytes"] / max(1, rec["events"]), end=" ")
PY
        python3 tools/chunk-size.py "$trace" 1 | awk '{printf "%s ", $1}'
        "$1" info "$trace" --json | python3 -c 'import json, sys; j = json.load(sys.stdin); print(j["checkpointChunks"], j["chunks"])'
    }
    : > "$dir/new.txt"; : > "$dir/old.txt"
    for _ in $(seq "$cost_rounds"); do
        record "$VT" >> "$dir/new.txt"
        record "$BASELINE" >> "$dir/old.txt"
    done
    python3 - "$dir/new.txt" "$dir/old.txt" <<'PY'
import statistics, sys
def load(p):
    rows = [list(map(float, l.split())) for l in open(p) if l.strip()]
    return [statistics.median(c) for c in zip(*rows)], rows
(new, nr), (old, orows) = load(sys.argv[1]), load(sys.argv[2])
print(f"recording testpmd io forwarding, medians of {len(nr)} interleaved runs:")
for name, m in (("this build", new), ("baseline", old)):
    print(f"  {name:<10}  {m[0]:>10,.0f} frames/s   {m[1]:.3f} bytes/event on disk, {m[2]:.3f} at level 1   {m[3]:.0f} of {m[4]:.0f} chunks with checkpoints")
print(f"  this/baseline: throughput {new[0] / old[0]:.3f}, bytes per event {new[1] / old[1]:.3f} on disk, {new[2] / old[2]:.3f} at level 1")
PY
fi
