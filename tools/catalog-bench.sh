#!/usr/bin/env bash
# vtrace catalog's goals (issue 25; figures in docs/performance.md):
#
#   tools/catalog-bench.sh [COUNT] [COPIES]
#
# 1. Makes COUNT (default 2,000) traces with tools/fleet-traces.sh (the
#    scenario library and the workloads × faults × seeds).
# 2. Catalogues them into a new catalogue, without and with --replay (all
#    cores), beside `vtrace info` and `vtrace replay --recorded-faults` of the
#    same traces run one by one: wall and CPU seconds, and per trace.
# 3. Makes a catalogue of COUNT × COPIES (default 50: 100,000) traces from the
#    --replay one (synthetic copies: new ids, paths and hashes, 40 made-up
#    commits) and times, best and median of 5, `vtrace catalog query` of a
#    grouping by commit and counter, and of a trend over the timeline.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-2000}
copies=${2:-50}
tools/bootstrap.sh --bench
tools/release-build.sh vtrace
vtrace=$PWD/.build/release/vtrace
work=${TMPDIR:-/tmp}/vtrace-fleet
traces=$work/traces
tools/fleet-traces.sh "$count" "$traces" >&2
mapfile -t files < <(find "$traces" -name '*.vtrace' | sort | head -n "$count")
n=${#files[@]}
echo "== $n traces in $traces ($(du -sh "$traces" | cut -f1)), $(nproc) cores"

# /usr/bin/time's wall, user and system seconds of a command.
timed() { /usr/bin/time -f "%e %U %S" "$@" 2>&1 >/dev/null | tail -1; }
report() {  # label, "wall user sys"
    read -r wall user sys <<<"$2"
    awk -v l="$1" -v w="$wall" -v u="$user" -v s="$sys" -v n="$n" \
        'BEGIN { printf "%-44s %8.2f s wall %8.2f s CPU   %6.2f ms/trace wall %6.2f ms/trace CPU\n", l, w, u + s, 1000 * w / n, 1000 * (u + s) / n }'
}
rm -f "$work"/plain.db* "$work"/replay.db*
report "vtrace catalog add (all cores)" "$(timed "$vtrace" catalog add "$work/plain.db" "${files[@]}")"
report "vtrace catalog add --replay (all cores)" "$(timed "$vtrace" catalog add "$work/replay.db" "${files[@]}" --replay)"
report "vtrace info, one by one" "$(timed bash -c 'for f in "$@"; do "'"$vtrace"'" info "$f" >/dev/null; done' _ "${files[@]}")"
report "vtrace replay --recorded-faults, one by one" \
    "$(timed bash -c 'for f in "$@"; do "'"$vtrace"'" replay --recorded-faults "$f" >/dev/null 2>&1 || [[ $? == 1 ]]; done' _ "${files[@]}")"
report "vtrace catalog add --replay --jobs 1" "$(rm -f "$work"/one.db*; timed "$vtrace" catalog add "$work/one.db" "${files[@]}" --replay --jobs 1)"
"$vtrace" catalog query "$work/replay.db" "SELECT status, replay_status, count(*) AS traces FROM traces GROUP BY 1, 2 ORDER BY 1, 2"

total=$((n * copies))
echo "== $total catalogued traces (synthetic copies of the $n)"
big=$work/synthetic-$total.db
if [[ ! -s $big || $work/replay.db -nt $big ]]; then
    rm -f "$big"*
    python3 - "$work/replay.db" "$big" "$copies" <<'PY'
import shutil, sqlite3, sys
source, target, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
shutil.copy(source, target)
con = sqlite3.connect(target)
con.execute("PRAGMA journal_mode = OFF")
stride = con.execute("SELECT max(id) FROM traces").fetchone()[0] + 1
def columns(table): return [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
# 40 made-up commits, spread over the copies and the originals.
commit = lambda n: f"printf('%012x', ((id + {n}) % 40) * 2654435761)"
special = {
    "traces": lambda n: {"id": f"id + {n} * {stride}", "path": f"path || '#{n}'", "content_sha256": f"content_sha256 || '-{n}'",
                         "recorder_commit": commit(n)},
    "counters": lambda n: {"trace_id": f"trace_id + {n} * {stride}"},
    "timeline": lambda n: {"trace_id": f"trace_id + {n} * {stride}"},
}
con.execute(f"UPDATE traces SET recorder_commit = {commit(0)}")
for table in ["traces", "counters", "timeline"]:
    cols = columns(table)
    for n in range(1, copies):
        exprs = [special[table](n).get(c, c) for c in cols]
        con.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)} FROM {table} WHERE {'id' if table == 'traces' else 'trace_id'} < {stride}")
con.commit()
con.execute("ANALYZE")
con.close()
PY
fi
echo "$(du -h "$big" | cut -f1) on disk; $("$vtrace" catalog query "$big" "SELECT (SELECT count(*) FROM traces) || ' traces, ' || (SELECT count(*) FROM counters) || ' counters rows, ' || (SELECT count(*) FROM timeline) || ' timeline rows'" --format csv | tail -1)"
queries=(
    "SELECT t.recorder_commit, c.counter, count(*) AS traces, sum(c.final_value) AS total FROM counters c JOIN traces t ON t.id = c.trace_id GROUP BY 1, 2"
    "SELECT t.recorder_commit, l.point, avg(l.tx_dropped_no_rx_buffer) AS dropped FROM timeline l JOIN traces t ON t.id = l.trace_id GROUP BY 1, 2"
    "SELECT recorder_commit, count(*) AS runs FROM traces WHERE rx_write_failed > 0 GROUP BY 1"
)
for q in "${queries[@]}"; do
    times=()
    for _ in 1 2 3 4 5; do times+=("$(/usr/bin/time -f %e "$vtrace" catalog query "$big" "$q" --format csv 2>&1 >/dev/null | tail -1)"); done
    rows=$("$vtrace" catalog query "$big" "$q" --format csv | tail -n +2 | wc -l)
    sorted=$(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')
    echo "$(awk -v s="$sorted" 'BEGIN { split(s, a, " "); printf "best %.2f s, median %.2f s", a[1], a[3] }'), $rows rows: $q"
done
