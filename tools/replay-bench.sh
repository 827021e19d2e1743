#!/usr/bin/env bash
# Replay speed beside `zstd -d`, measured in the same run (docs/performance.md).
#
#   tools/replay-bench.sh [REPEATS] [ROUNDS]
#
# Writes a scenario of REPEATS (default 30,000) rounds of the traffic
# workload's four lines (two pairs, 8-frame bursts, mixed sizes; about 333
# events per round: 30,000 rounds ≈ 10 million events), records it with
# `vtrace record`, then runs `vtrace-bench --replay` on the trace: zstd -d,
# decompression, decoding, single-threaded replay, parallel keep-going replay,
# and bisect, best of ROUNDS (default 5); `vtrace-bench --debug` on the
# trace (reverse steps of the debugger). Then, best of 3 with peak memory:
# diff against a recording with three faults, pcapng export and plot.
#
#   tools/replay-bench.sh --testpmd [FRAMES] [ROUNDS]
#
# The event-dense trace of issue 24 instead: DPDK testpmd io forwarding over
# two queue pairs against `vtrace serve --pairs 2 --record`, FRAMES frames
# (default 4,000,000: about 84 M events, 11 uncompressed bytes an event;
# recorded once by tools/testpmd-trace.sh and kept in $TMPDIR, out of git),
# then `vtrace-bench --replay` on it (best of ROUNDS, default 3) and
# CLI_ROUNDS (default 7) interleaved rounds of `zstd -d`, `vtrace replay
# --threads 1`, `--threads 2` and `--keep-going`: each round's ratios to its
# own `zstd -d`, their medians and ranges, and peak memory. FORMAT=1.N
# records the trace in that format instead of the newest (FORMAT=1.3 is the
# kind the issue was written against: ~11 uncompressed bytes an event, where
# 1.7 writes ~4), kept beside the other as testpmd-io-2pairs-FRAMES-1.N.vtrace.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${TMPDIR:-/tmp}/vtrace-replay-bench
mkdir -p "$dir"
best() {  # best wall time and its peak RSS over 3 runs of "$@"
    local out t m bt=999999 bm=0
    for _ in 1 2 3; do
        out=$( { /usr/bin/time -f "%e %M" "$@" >/dev/null; } 2>&1 | tail -1 )
        t=${out% *}; m=${out#* }
        if awk -v a="$t" -v b="$bt" 'BEGIN { exit !(a < b) }'; then bt=$t; bm=$m; fi
    done
    echo "$bt s, peak $((bm / 1024)) MB"
}
if [[ ${1:-} == --testpmd ]]; then
    frames=${2:-4000000}
    rounds=${3:-3}
    tools/bootstrap.sh --test   # zstd, /usr/bin/time, dpdk-testpmd
    tools/release-build.sh vtrace vtrace-bench
    trace=$dir/testpmd-io-2pairs-$frames${FORMAT:+-$FORMAT}.vtrace
    if [[ ! -s $trace ]]; then RECORD_ARGS="${FORMAT:+--format $FORMAT}" tools/testpmd-trace.sh "$trace" "$frames"; fi
    .build/release/vtrace-bench --replay "$trace" --rounds "$rounds"
    # The CLI beside zstd -d, interleaved: this machine's speed drifts by
    # tens of percent within minutes, so each round's ratios are taken
    # against the zstd -d of the same round, and their medians reported.
    cli_rounds=${CLI_ROUNDS:-7}
    timing=$(mktemp)
    for _ in $(seq "$cli_rounds"); do
        for run in "zstd" "threads-1" "threads-2" "keep-going"; do
            case $run in
                zstd) cmd=(zstd -d -c "$trace") ;;
                threads-1) cmd=(.build/release/vtrace replay --threads 1 "$trace") ;;
                threads-2) cmd=(.build/release/vtrace replay --threads 2 "$trace") ;;
                keep-going) cmd=(.build/release/vtrace replay --keep-going "$trace") ;;
            esac
            { /usr/bin/time -f "$run %e %M" "${cmd[@]}" >/dev/null; } 2>&1 | tail -1 >> "$timing"
        done
    done
    python3 - "$timing" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
rounds = [rows[i:i + 4] for i in range(0, len(rows), 4)]
print(f"CLI, {len(rounds)} interleaved rounds (seconds; ratio to that round's zstd -d):")
for name in ("zstd", "threads-1", "threads-2", "keep-going"):
    secs = [float(r[1]) for rd in rounds for r in rd if r[0] == name]
    ratios = [float(r[1]) / float(rd[0][1]) for rd in rounds for r in rd if r[0] == name]
    peak = max(int(r[2]) for rd in rounds for r in rd if r[0] == name) // 1024
    label = "zstd -d" if name == "zstd" else "vtrace replay --" + name.replace("threads-", "threads ")
    line = f"  {label:<30} median {statistics.median(secs):.2f} s"
    if name != "zstd":
        line += f"  {statistics.median(ratios):.2f}x median ({min(ratios):.2f}-{max(ratios):.2f}x)"
    print(line + f", peak {peak} MB")
PY
    rm -f "$timing"
    exit 0
fi
repeats=${1:-30000}
rounds=${2:-5}
tools/bootstrap.sh --bench   # zstd, and /usr/bin/time (peak memory)
tools/release-build.sh vtrace vtrace-bench
scenario=$dir/traffic-$repeats.scenario
trace=$dir/traffic-$repeats.vtrace
awk -v n="$repeats" 'BEGIN {
    print "# replay benchmark: " n " rounds of two-pair traffic"
    print "device queue_pairs=2"
    print "driver init qsize=64"
    print "ctrl mq pairs=2"
    for (i = 0; i < n; i++) {
        print "rx post count=8"
        print "tx send count=8 len=" 60 + (i * 37) % 1240
        print "rx post pair=1 count=7"
        print "tx send pair=1 count=8 len=" 60 + (i * 53 + 17) % 1240
    }
}' > "$scenario.new"
# Keep the old file (and so the recorded traces) when nothing changed.
if cmp -s "$scenario.new" "$scenario"; then rm "$scenario.new"; else mv "$scenario.new" "$scenario"; fi
if [[ ! -s $trace || $scenario -nt $trace ]]; then
    /usr/bin/time -f "recorded in %e s" .build/release/vtrace record --scenario "$scenario" -o "$trace" --flush-ms 600000
fi
.build/release/vtrace-bench --replay "$trace" --rounds "$rounds"
# The debugger on the same trace: reverse steps, a watchpoint's scans.
.build/release/vtrace-bench --debug "$trace"

# Diff: the same scenario recorded with three faults (a lost RX delivery, a
# counter bumped twice, a used element not published), against the clean
# trace; wall time and peak memory of `vtrace diff` beside `vtrace replay`.
faulty=$dir/traffic-$repeats-faults.vtrace
if [[ ! -s $faulty || $scenario -nt $faulty ]]; then
    .build/release/vtrace record --scenario "$scenario" -o "$faulty" --flush-ms 600000 \
        --fault drop-rx:$((repeats * 10 / 3)) --fault count-twice:tx_packets:$((repeats * 20 / 3)) \
        --fault skip-used:$((repeats * 25 / 3)) >/dev/null || true
fi
echo "zstd -d A                                $(best zstd -d -c "$trace")"
echo "vtrace replay A                          $(best .build/release/vtrace replay "$trace")"
echo "vtrace diff A B (B: 3 faults)            $(best .build/release/vtrace diff "$trace" "$faulty")"

# Showing it: every frame as pcapng, and the two traces drawn as one HTML page
# (two counter walks, the diff and a close-up of the split).
echo "vtrace export A --format pcapng          $(best .build/release/vtrace export "$trace" --format pcapng -o "$dir/a.pcapng")"
echo "    $(.build/release/vtrace export "$trace" --format pcapng -o "$dir/a.pcapng" 2>&1 | sed 's/^vtrace: //'), $(( $(stat -c %s "$dir/a.pcapng") / 1048576 )) MiB"
echo "vtrace plot A B -o split.html            $(best .build/release/vtrace plot "$trace" "$faulty" -o "$dir/split.html")"
echo "vtrace plot A -o a.svg                   $(best .build/release/vtrace plot "$trace" -o "$dir/a.svg")"
