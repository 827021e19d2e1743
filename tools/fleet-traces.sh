#!/usr/bin/env bash
# Makes a fleet of traces for `vtrace catalog` (docs/fleet.md, docs/performance.md):
# the scenario library and the workloads × faults × seeds, recorded with
# `vtrace record`, two at a time.
#
#   tools/fleet-traces.sh [COUNT] [DIR]     # default 2000 traces in $TMPDIR/vtrace-fleet/traces
#
# Per seed S (1, 2, ...), every scenario of traces/scenarios and
# traces/workloads is recorded with no fault, drop-rx:S, skip-used:S,
# count-twice:rx_packets:S and no-poison, cutting a chunk every 16·S events
# (so the seeds differ in chunking too), until COUNT traces exist. The file
# name says which: SCENARIO.FAULT.sS.vtrace. Existing files are kept, so a
# second run only adds what is missing. A scenario whose expectations a fault
# breaks still writes its trace (record exits 1): that is a failing CI run.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-2000}
dir=${2:-${TMPDIR:-/tmp}/vtrace-fleet/traces}
[[ -x .build/release/vtrace ]] || tools/release-build.sh vtrace
vtrace=$PWD/.build/release/vtrace
mkdir -p "$dir"
scenarios=(traces/scenarios/*.scenario traces/workloads/*.scenario)
jobs=$(mktemp)
trap 'rm -f "$jobs"' EXIT
n=0
for ((seed = 1; n < count; seed++)); do
    for scenario in "${scenarios[@]}"; do
        for fault in none drop-rx:$seed skip-used:$seed count-twice:rx_packets:$seed no-poison; do
            ((n < count)) || break 2
            n=$((n + 1))
            name=$(basename "$scenario" .scenario).${fault//:/-}.s$seed.vtrace
            [[ -s $dir/$name ]] && continue
            args=(record --scenario "$scenario" -o "$dir/$name" --flush-events $((16 * seed)) --guest "fleet seed $seed")
            [[ $fault == none ]] || args+=(--fault "$fault")
            printf '%s\0' "${args[@]}" >> "$jobs"
            printf '\0' >> "$jobs"   # an empty argument ends a job
        done
    done
done
# One `vtrace record` per job, two at a time; exit 1 (expectations a fault
# broke) is expected, 2 is not.
python3 - "$vtrace" "$jobs" <<'PY'
import subprocess, sys
from concurrent.futures import ThreadPoolExecutor
vtrace, path = sys.argv[1], sys.argv[2]
items = open(path, 'rb').read().split(b'\0')
jobs, current = [], []
for item in items:
    if item == b'':
        if current: jobs.append(current)
        current = []
    else:
        current.append(item.decode())
def run(args):
    r = subprocess.run([vtrace] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode not in (0, 1):
        sys.stderr.write(f"fleet-traces: vtrace {' '.join(args)}: exit {r.returncode}: {r.stderr.decode()}\n")
        return False
    return True
with ThreadPoolExecutor(2) as pool:
    results = list(pool.map(run, jobs))
done = sum(results)
print(f"fleet-traces: recorded {done} traces ({len(jobs) - done} failed)", file=sys.stderr)
sys.exit(0 if all(results) else 1)
PY
echo "$dir: $(find "$dir" -name '*.vtrace' | wc -l) traces, $(du -sh "$dir" | cut -f1)"
