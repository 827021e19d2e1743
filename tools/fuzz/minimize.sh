#!/usr/bin/env bash
# Minimises a fuzz target's corpus in place: libFuzzer's merge keeps the
# smallest set of inputs that reaches every feature (edge and comparison
# coverage) the whole corpus reaches, and the corpus is replaced by it.
#
#   tools/fuzz/minimize.sh TARGET     # e.g. FuzzDevice; after tools/fuzz/run.sh
#
# The old corpus is kept as tools/fuzz/corpus/TARGET.before-minimize until
# the merge has finished, so an interrupted run loses nothing.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: tools/fuzz/minimize.sh TARGET}
export SWIFT_BACKTRACE=enable=no
[[ -d corpus/$target ]] || { echo "minimize: no corpus at tools/fuzz/corpus/$target (run tools/fuzz/run.sh $target first)" >&2; exit 2; }
../release-build.sh "$target" -- --package-path tools/fuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
before=corpus/$target.before-minimize
merged=corpus/$target.minimized
rm -rf "$merged"
[[ -d $before ]] || mv "corpus/$target" "$before"
mkdir -p "$merged"
# No input is cut: the length limit is the longest input's (a campaign may have run with MAX_LEN above 8192).
longest=$(find "$before" -type f -printf '%s\n' | sort -n | tail -1)
../../.build-fuzz/release/"$target" -merge=1 -max_len=$(( ${longest:-0} > 8192 ? longest : 8192 )) -timeout=10 -rss_limit_mb=2048 \
    "$merged" "$before" 2>&1 | grep -E "MERGE-OUTER: [0-9]+ new files|ERROR" || true
[[ -n $(ls -A "$merged") ]] || { echo "minimize: the merge kept nothing; the corpus stays at $before" >&2; exit 1; }
rm -rf "corpus/$target"
mv "$merged" "corpus/$target"
echo "minimize: $target: $(ls "$before" | wc -l) inputs ($(du -sh "$before" | cut -f1)) -> $(ls "corpus/$target" | wc -l) ($(du -sh "corpus/$target" | cut -f1))"
rm -rf "$before"
