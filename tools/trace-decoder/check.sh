#!/usr/bin/env bash
# Compares the independent Python decoder with `vtrace dump --json`.
#
# usage: tools/trace-decoder/check.sh [TRACE ...]     (default: traces/golden/*.vtrace)
#   VTRACE   the vtrace binary (default .build/debug/vtrace in the checkout)
#   PYTHON   the Python 3 interpreter (default python3)
#
# For each trace both outputs must be byte-identical and both programs must
# succeed. On the first mismatch it prints the first differing line and exits 1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
vtrace=${VTRACE:-$root/.build/debug/vtrace}
[[ $vtrace == */* && $vtrace != /* ]] && vtrace=$PWD/$vtrace      # before any cd
python=${PYTHON:-python3}
decoder=$here/vtrace_decode.py

if [[ $# -eq 0 ]]; then
    cd "$root"
    set -- traces/golden/*.vtrace
fi
if [[ ! -x $vtrace ]] && ! command -v "$vtrace" >/dev/null; then
    echo "check.sh: no vtrace binary at $vtrace (set VTRACE)" >&2
    exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for trace in "$@"; do
    if ! "$vtrace" dump --json "$trace" >"$tmp/expected" 2>"$tmp/expected.err"; then
        echo "FAIL $trace: vtrace dump --json failed:" >&2
        cat "$tmp/expected.err" >&2
        exit 1
    fi
    if ! "$python" "$decoder" "$trace" >"$tmp/actual" 2>"$tmp/actual.err"; then
        echo "FAIL $trace: the Python decoder failed:" >&2
        cat "$tmp/actual.err" >&2
        exit 1
    fi
    if ! cmp -s "$tmp/expected" "$tmp/actual"; then
        # "differ: byte B, line L" names the line; "EOF on FILE" means FILE
        # is a prefix of the other: the first line it lacks differs.
        report=$(cmp "$tmp/expected" "$tmp/actual" 2>&1 || true)
        case $report in
            *"EOF on $tmp/expected"*) line=$(( $(wc -l <"$tmp/expected") + 1 )) ;;
            *"EOF on $tmp/actual"*) line=$(( $(wc -l <"$tmp/actual") + 1 )) ;;
            *) line=$(sed -n 's/.* line \([0-9]*\).*/\1/p' <<<"$report") ;;
        esac
        echo "FAIL $trace: outputs differ at line $line" >&2
        echo "  vtrace dump --json: $(sed -n "${line}p" "$tmp/expected")" >&2
        echo "  vtrace_decode.py:   $(sed -n "${line}p" "$tmp/actual")" >&2
        exit 1
    fi
    echo "ok   $trace ($(wc -l <"$tmp/expected") events)"
done
