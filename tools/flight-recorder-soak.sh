#!/usr/bin/env bash
# A flight recorder under load (docs/performance.md, issue 23): `vtrace serve
# --record --keep SIZE` behind dpdk-testpmd's virtio-user driver (txonly,
# 64-byte frames) for SECONDS, the trace's size and the backend's resident
# memory sampled every second. Then the window kept replays.
#
#   tools/flight-recorder-soak.sh [SECONDS] [SIZE]     # default 600 s, 8MiB
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
keep=${2:-8MiB}
tools/bootstrap.sh --test   # dpdk-testpmd
command -v dpdk-testpmd >/dev/null || { echo "flight-recorder-soak: dpdk-testpmd is missing (apt-get install dpdk-dev)" >&2; exit 2; }
tools/release-build.sh vtrace
VT=$(swift build -c release --show-bin-path)/vtrace
dir=$(mktemp -d "${TMPDIR:-/tmp}/vtrace-soak.XXXXXX")
trap 'pkill -TERM -f -- "$dir/vhost.sock" 2>/dev/null || true; rm -rf "$dir"' EXIT
unblock() { python3 -c 'import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execvp(sys.argv[1], sys.argv[1:])' "$@"; }
sock=$dir/vhost.sock trace=$dir/soak.vtrace
unblock taskset -c 0 "$VT" serve --vhost-user "$sock" --sessions 1 --record "$trace" --keep "$keep" --json > "$dir/serve.json" 2> "$dir/serve.err" &
served=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
# The backend's own pid (the one started above is the shell that runs it).
backend=$(pgrep -f -- "serve --vhost-user $sock" | head -1)
unblock timeout -k 10 -s INT "$seconds" dpdk-testpmd --lcores 0@1,1@1 --no-pci --file-prefix=soak$$ --no-huge -m 512 \
    --vdev "net_virtio_user0,path=$sock,queues=1" -- --forward-mode=txonly --txpkts=64 --stats-period 1 --nb-cores=1 \
    --total-num-mbufs=16384 > "$dir/driver.log" 2>&1 &
driver=$!
# Sample: seconds since start, the trace's size on disk, the backend's RSS (KiB).
start=$(date +%s)
while kill -0 $driver 2>/dev/null; do
    size=$(stat -c %s "$trace.partial" 2>/dev/null || echo 0)
    rss=$(awk '/^VmRSS/ { print $2 }' /proc/$backend/status 2>/dev/null || echo 0)
    echo "$(( $(date +%s) - start )) $size $rss" >> "$dir/samples"
    sleep 1
done
wait $driver || true
for _ in $(seq 150); do kill -0 $served 2>/dev/null || break; sleep 0.1; done
kill -TERM $served 2>/dev/null || true
wait $served || true
python3 - "$dir/samples" "$keep" "$dir/serve.json" <<'PY'
import json, re, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
m = re.fullmatch(r"(\d+)\s*([KMG]?)(i?B)?", sys.argv[2], re.I)
keep = int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2).upper()]
rec = json.load(open(sys.argv[3]))["recording"]
sizes = [s for _, s, _ in rows]
rss = [r for _, _, r in rows if r > 0]
late = rss[len(rss) // 4:] or rss
print(f"{len(rows)} samples over {rows[-1][0]} s; --keep {sys.argv[2]} = {keep:,} bytes")
print(f"trace size: max {max(sizes):,} bytes ({max(sizes) / keep:.3f} of the window), last {sizes[-1]:,}")
print(f"backend RSS: first quarter {min(rss[:max(1, len(rss) // 4)]) // 1024}–{max(rss[:max(1, len(rss) // 4)]) // 1024} MiB, "
      f"after it {min(late) // 1024}–{max(late) // 1024} MiB")
print(f"recorded events {rec['first_event']:,}…{rec['events'] - 1:,} kept ({rec['events'] - rec['first_event']:,}), "
      f"{rec['dropped_chunks']:,} chunks dropped, file {rec['file_bytes']:,} bytes")
PY
"$VT" replay --check "$trace"
