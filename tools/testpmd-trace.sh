#!/usr/bin/env bash
# Records an event-dense trace for the replay benchmark (issue 24): DPDK
# testpmd's virtio-user driver in io forwarding over two queue pairs
# (--tx-first: frames circle through the device both ways, 64 bytes each)
# against `vtrace serve --pairs 2 --record`, until the device has taken
# FRAMES frames off its TX rings (a `--trigger 'tx_packets >= FRAMES'` ends
# the recording) or SECONDS have passed.
#
#   tools/testpmd-trace.sh OUT.vtrace [FRAMES] [SECONDS]   # default 4,000,000 frames, at most 120 s
#
# About 21 events and 240 uncompressed bytes a frame (~11 a event). The
# trace is written where the caller says (tools/replay-bench.sh keeps it
# under $TMPDIR, out of git). serve and its writer thread run on CPU 0,
# testpmd's lcores on CPU 1 (as in tools/vhost-bench.sh). Needs a release
# build of vtrace (VTRACE=path, default .build/release/vtrace) and
# dpdk-testpmd (tools/bootstrap.sh --test installs it). RECORD_ARGS adds
# recording options to serve (e.g. RECORD_ARGS="--flush-events 16384").
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: tools/testpmd-trace.sh OUT.vtrace [FRAMES] [SECONDS]}
frames=${2:-4000000}
seconds=${3:-120}
VT=${VTRACE:-.build/release/vtrace}
command -v dpdk-testpmd >/dev/null || { echo "testpmd-trace: dpdk-testpmd is missing (tools/bootstrap.sh --test)" >&2; exit 2; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/vtrace-testpmd-trace.XXXXXX")
sock=$dir/vhost.sock
# However it ends, no backend or driver is left running: each has the socket's path on its command line.
trap 'pkill -TERM -f -- "$sock" 2>/dev/null || true; rm -rf "$dir"' EXIT
unblock() { python3 -c 'import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execvp(sys.argv[1], sys.argv[1:])' "$@"; }

rm -f "$out" "$out.partial"
# The trigger stops serving once it holds (exit 1 by design): testpmd then sees its backend gone.
unblock taskset -c 0 "$VT" serve --vhost-user "$sock" --pairs 2 --sessions 1 --record "$out" \
    --trigger "tx_packets >= $frames" --json ${RECORD_ARGS:-} > "$dir/serve.json" 2> "$dir/serve.err" &
serve=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
unblock timeout -k 10 -s INT "$seconds" dpdk-testpmd --lcores 0@1,1@1,2@1 --no-pci --file-prefix=vtt$$ --no-huge -m 512 \
    --vdev "net_virtio_user0,path=$sock,queues=2,cq=1" -- --forward-mode=io --tx-first --nb-cores=2 --rxq=2 --txq=2 \
    --stats-period 1 --total-num-mbufs=16384 > "$dir/testpmd.log" 2>&1 &
driver=$!
# serve ends at the trigger (or with testpmd's session at the time limit);
# testpmd does not notice a backend gone: timeout passes it a SIGINT.
while kill -0 $serve 2>/dev/null && kill -0 $driver 2>/dev/null; do sleep 0.1; done
kill -TERM $driver 2>/dev/null || true
wait $driver || true
for _ in $(seq 150); do kill -0 $serve 2>/dev/null || break; sleep 0.1; done
kill -TERM $serve 2>/dev/null || true
wait $serve || true
[[ -s $out ]] || { echo "testpmd-trace: no trace written" >&2; cat "$dir/serve.err" "$dir/testpmd.log" >&2; exit 1; }
python3 - "$dir/serve.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rec, c = r["recording"], r["counters"]
print(f"testpmd-trace: {rec['path']}: {c['tx_packets']:,} frames, {rec['events']:,} events, "
      f"{rec['file_bytes'] / 1e6:.1f} MB ({rec['uncompressed_bytes'] / rec['events']:.1f} uncompressed bytes an event)")
PY
