#!/usr/bin/env bash
# Boots the Linux guest (tools/linux-guest/build.sh) under QEMU's software CPU
# (TCG, microvm, memfd shared memory) with its NIC served by
# `vtrace serve --vhost-user`: an unmodified Linux virtio_net driver drives the
# device core, and with --record every message, kick, memory access, chain,
# counter and interrupt goes into the trace.
#
#   tools/linux-guest/boot.sh [--record OUT.vtrace] [--fault SPEC]... [--flush-events N] [--snaplen N] [--append 'vtrace.frames=N ...'] [--json FILE]
#
# Prints the guest's console lines that start with "vtrace-guest:" and the
# device counters; exits 0 when the guest's own eth0 statistics agree with the
# device counters (tx_packets, rx_packets, tx_bytes, rx_bytes), 1 otherwise.
# VTRACE=path picks the vtrace binary (default: the release build, built if
# needed). QEMU is installed (apt-get) when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
record=() serve_args=() append="" json=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --record) record=(--record "$2"); shift 2 ;;
        --fault) serve_args+=(--fault "$2"); shift 2 ;;
        --flush-events) serve_args+=(--flush-events "$2"); shift 2 ;;
        --snaplen) serve_args+=(--snaplen "$2"); shift 2 ;;
        --append) append=$2; shift 2 ;;
        --json) json=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "boot.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if ! command -v qemu-system-x86_64 >/dev/null; then
    echo "boot.sh: installing qemu-system-x86" >&2
    if [[ $(id -u) -eq 0 ]]; then apt-get update -qq && apt-get install -y -qq qemu-system-x86 >/dev/null
    else sudo apt-get update -qq && sudo apt-get install -y -qq qemu-system-x86 >/dev/null; fi
fi
mapfile -t guest < <(tools/linux-guest/build.sh)
kernel=${guest[0]} initrd=${guest[1]}
if [[ -z ${VTRACE:-} ]]; then
    tools/release-build.sh vtrace
    VTRACE=$(swift build -c release --show-bin-path)/vtrace
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/vtrace-boot.XXXXXX")
served=""
# However the script ends (an error, ^C), the backend does not outlive it.
# (And is waited for: with --record it finishes the trace before we return.)
trap 'if [[ -n $served ]]; then kill -TERM "$served" 2>/dev/null || true; wait "$served" 2>/dev/null || true; fi; rm -rf "$dir"' EXIT
sock=$dir/vhost.sock
"$VTRACE" serve --vhost-user "$sock" --sessions 1 "${record[@]}" "${serve_args[@]}" --json > "$dir/serve.json" 2> "$dir/serve.err" &
served=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
[[ -S $sock ]] || { cat "$dir/serve.err" >&2; echo "boot.sh: vtrace serve did not start" >&2; exit 1; }
# TCG's TSC calibration stalls on a busy host without this (docs/vhost-user.md).
khz=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
start=$(date +%s.%N)
timeout -k 5 180 qemu-system-x86_64 \
    -M microvm,x-option-roms=off,isa-serial=on,rtc=off,memory-backend=mem -accel tcg \
    -m 256M -object memory-backend-memfd,id=mem,size=256M,share=on -smp 1 \
    -nodefaults -no-user-config -nographic -no-reboot -serial stdio \
    -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyS0 reboot=t panic=-1 quiet ipv6.disable=1 tsc_early_khz=$khz $append" \
    -chardev socket,id=c0,path="$sock" -netdev vhost-user,id=n0,chardev=c0 \
    -device virtio-net-device,netdev=n0,rx_queue_size=256,tx_queue_size=256 \
    -global virtio-mmio.force-legacy=false > "$dir/console.log" 2>&1 || true
end=$(date +%s.%N)
# QEMU is gone; a backend still waiting for its session (QEMU never connected) is told to stop.
for _ in $(seq 50); do kill -0 "$served" 2>/dev/null || break; sleep 0.1; done
kill -TERM "$served" 2>/dev/null || true
wait "$served" || true
served=""
grep "vtrace-guest:" "$dir/console.log" || { tail -20 "$dir/console.log"; }
cat "$dir/serve.err" >&2
python3 - "$dir/serve.json" "$dir/console.log" "$start" "$end" "$json" <<'PY'
import json, re, sys
serve = json.load(open(sys.argv[1]))
console = open(sys.argv[2], errors="replace").read()
c = serve["counters"]
m = re.search(r"vtrace-guest: stats (.*)", console)
guest = dict(kv.split("=") for kv in m.group(1).split()) if m else {}
guest = {k: int(v) for k, v in guest.items()}
names = ["tx_packets", "rx_packets", "tx_bytes", "rx_bytes"]
rows = [(k, guest.get(k), c.get(k, 0)) for k in names]
print(f"{'':12s} {'guest eth0':>12s} {'device':>12s}")
for k, g, d in rows:
    print(f"{k:12s} {str(g):>12s} {d:>12d}" + ("" if g == d else "   DISAGREE"))
wall = float(sys.argv[4]) - float(sys.argv[3])
print(f"boot to poweroff {wall:.2f} s" + (f"; recorded {serve['recording']['events']:,} events to {serve['recording']['path']}" if serve.get("recording") else ""))
ok = bool(guest) and all(g == d for _, g, d in rows)
if sys.argv[5]:
    json.dump({"guest": guest, "device": c, "seconds": wall, "agree": ok, "recording": serve.get("recording")}, open(sys.argv[5], "w"))
sys.exit(0 if ok else 1)
PY
