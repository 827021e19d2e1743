#!/usr/bin/env bash
# What `vtrace serve` costs a frame, plain and recording, in instructions
# (docs/performance.md, issue 24): the wall clock of tools/vhost-bench.sh
# jumps between levels on a shared machine; instruction counts do not.
#
# Each configuration runs `vtrace serve` under callgrind (--separate-threads,
# a `strip --strip-debug` copy: valgrind cannot read Swift's full debug
# info), pinned to CPU 0, against dpdk-testpmd's virtio-user driver in
# txonly mode (64-byte frames, its lcores on CPU 1) for SECONDS; under
# valgrind serve is the bottleneck, so the ring stays full. Each thread's
# instructions divided by the frames the device took (tx_packets) give the
# cost a frame: the device's thread, the writer's (zstd), their sum, and
# plain serve's share of it (the issue's goal: 50%). Only the backend's
# event handling (`wake`) and the writer's loop are counted
# (--toggle-collect): start-up (some 40-90 M instructions, the same for
# both) would otherwise weigh on the recording's fewer frames.
#
#   tools/serve-cost.sh [SECONDS]                      # default 10 s each
#   RECORD_ARGS="--snaplen 0" tools/serve-cost.sh      # recording options
#   BASELINE=/path/to/old/vtrace tools/serve-cost.sh   # the same rows for an older build
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
tools/bootstrap.sh --test   # dpdk-testpmd
command -v dpdk-testpmd >/dev/null || { echo "serve-cost: dpdk-testpmd is missing (apt-get install dpdk-dev)" >&2; exit 2; }
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
tools/release-build.sh vtrace
dir=$(mktemp -d "${TMPDIR:-/tmp}/vtrace-serve-cost.XXXXXX")
trap 'pkill -TERM -f -- "$dir/vhost.sock" 2>/dev/null || true; rm -rf "$dir"' EXIT
unblock() { python3 -c 'import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execvp(sys.argv[1], sys.argv[1:])' "$@"; }
strip --strip-debug "$(swift build -c release --show-bin-path)/vtrace" -o "$dir/vtrace"
[[ -n ${BASELINE:-} ]] && strip --strip-debug "$BASELINE" -o "$dir/baseline"

cost() {  # NAME BINARY [serve args]: prints "NAME frames device writer"
    local name=$1 bin=$2 sock=$dir/vhost.sock
    shift 2
    rm -f "$dir"/cg.* "$sock"
    unblock taskset -c 0 valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$dir/cg.%p" \
        --toggle-collect='*BackendC4wake_*' --toggle-collect='*WriterC3runyyF' \
        "$bin" serve --vhost-user "$sock" --sessions 1 "$@" --json > "$dir/serve.json" 2> "$dir/valgrind.log" &
    local s=$!
    for _ in $(seq 600); do [[ -S $sock ]] && break; sleep 0.1; done
    unblock timeout -k 10 -s INT "$seconds" dpdk-testpmd --lcores 0@1,1@1 --no-pci --file-prefix=vsc$$ --no-huge -m 512 \
        --vdev "net_virtio_user0,path=$sock,queues=1" -- --forward-mode=txonly --txpkts=64 --stats-period 1 --nb-cores=1 \
        --total-num-mbufs=16384 > "$dir/driver.log" 2>&1 || true
    wait $s || true
    python3 - "$name" "$dir" <<'PY'
import glob, json, sys
name, d = sys.argv[1:3]
frames = json.load(open(d + "/serve.json"))["counters"]["tx_packets"]
threads = []
for f in glob.glob(d + "/cg.*-*"):
    total = next((int(l.split()[1]) for l in open(f) if l.startswith("totals:")), 0)
    threads.append(total)
threads.sort(reverse=True)   # the device's thread does the most, then the writer's; the rest is start-up
print(name, frames, threads[0], threads[1] if len(threads) > 1 and threads[1] > frames else 0)
PY
}

rows=("$(cost plain "$dir/vtrace")" "$(cost record "$dir/vtrace" --record "$dir/t.vtrace" ${RECORD_ARGS:-})")
if [[ -n ${BASELINE:-} ]]; then
    rows+=("$(cost "baseline plain" "$dir/baseline")" "$(cost "baseline record" "$dir/baseline" --record "$dir/b.vtrace" ${RECORD_ARGS:-})")
fi
printf '%s\n' "${rows[@]}" | python3 <(cat <<'PY'
import sys
rows = [l.rsplit(None, 3) for l in sys.stdin.read().splitlines()]
print("vtrace serve under testpmd txonly, 64-byte frames: instructions a frame (callgrind)")
print("  %-16s %10s %8s %8s %8s   plain / both" % ("", "frames", "device", "writer", "both"))
plain = {}
for name, frames, device, writer in rows:
    f = int(frames); d = int(device) / f; w = int(writer) / f
    base = name.rsplit(" ", 1)[0] if " " in name else ""
    if name.endswith("plain"):
        plain[base] = d + w
    share = "%.1f%%" % (100 * plain[base] / (d + w)) if base in plain and not name.endswith("plain") else ""
    print("  %-16s %10s %8.0f %8.0f %8.0f   %s" % (name, format(f, ","), d, w, d + w, share))
PY
)
