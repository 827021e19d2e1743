#!/usr/bin/env bash
# Boots the Linux guest (tools/linux-guest/build.sh) under QEMU's software CPU
# (TCG, microvm) with its NIC served by vtrace over vhost-user, through
# `vtrace record -- qemu-system-x86_64 ...` (which adds the socket, the netdev,
# shared memory and virtio-mmio's modern transport): an unmodified Linux
# virtio_net driver drives the device core, and with --record every message,
# kick, memory access, chain, counter and interrupt goes into the trace.
#
#   tools/linux-guest/boot.sh [--record OUT.vtrace] [--fault SPEC]... [--flush-events N] [--snaplen N] [--append 'vtrace.frames=N ...'] [--json FILE]
#
# Prints the guest's console lines that start with "vtrace-guest:" and the
# device counters; exits 0 when the guest's own eth0 statistics agree with the
# device counters (tx_packets, rx_packets, tx_bytes, rx_bytes), 1 otherwise.
# Without --record the same boot runs with nothing recorded (--no-record).
# VTRACE=path picks the vtrace binary (default: the release build, built if
# needed). QEMU is installed (apt-get) when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
record=(--no-record) recording=() append="" json=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --record) record=(-o "$2"); shift 2 ;;
        --fault|--flush-events|--snaplen) recording+=("$1" "$2"); shift 2 ;;
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
trap 'rm -rf "$dir"' EXIT
# TCG's TSC calibration stalls on a busy host without this (docs/vhost-user.md).
khz=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
# The NIC is ours (vtrace uses a -device on its netdev vtrace0 as it is): 256-entry rings.
# With --json, QEMU's console goes to standard error and the report to standard output.
# A boot that hangs is stopped after 180 s (SIGTERM: vtrace stops QEMU and finishes the trace).
timeout -k 10 180 "$VTRACE" record "${record[@]}" "${recording[@]}" --json -- qemu-system-x86_64 \
    -M microvm,x-option-roms=off,isa-serial=on,rtc=off -accel tcg -m 256M -smp 1 \
    -nodefaults -no-user-config -nographic -no-reboot -serial stdio \
    -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyS0 reboot=t panic=-1 quiet ipv6.disable=1 tsc_early_khz=$khz $append" \
    -device virtio-net-device,netdev=vtrace0,rx_queue_size=256,tx_queue_size=256 \
    > "$dir/report.json" 2> "$dir/console.log" || true
grep -a "vtrace-guest:" "$dir/console.log" || tail -20 "$dir/console.log"
grep -a "^vtrace: " "$dir/console.log" >&2 || true
python3 - "$dir/report.json" "$dir/console.log" "$json" <<'PY'
import json, re, sys
try:
    report = json.load(open(sys.argv[1]))
except ValueError:
    print("boot.sh: vtrace wrote no report", file=sys.stderr)
    sys.exit(1)
console = open(sys.argv[2], errors="replace").read()
c = report["counters"]
m = re.search(r"vtrace-guest: stats (.*)", console)
guest = dict(kv.split("=") for kv in m.group(1).split()) if m else {}
guest = {k: int(v) for k, v in guest.items()}
names = ["tx_packets", "rx_packets", "tx_bytes", "rx_bytes"]
rows = [(k, guest.get(k), c.get(k, 0)) for k in names]
print(f"{'':12s} {'guest eth0':>12s} {'device':>12s}")
for k, g, d in rows:
    print(f"{k:12s} {str(g):>12s} {d:>12d}" + ("" if g == d else "   DISAGREE"))
wall = report["qemu"]["seconds"]
recording = report.get("recording")
print(f"boot to poweroff {wall:.2f} s" + (f"; recorded {recording['events']:,} events to {recording['path']}" if recording else ""))
ok = bool(guest) and all(g == d for _, g, d in rows)
if sys.argv[3]:
    json.dump({"guest": guest, "device": c, "seconds": wall, "agree": ok, "recording": recording}, open(sys.argv[3], "w"))
sys.exit(0 if ok else 1)
PY
