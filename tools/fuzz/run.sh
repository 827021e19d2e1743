#!/usr/bin/env bash
# Builds the libFuzzer targets (with AddressSanitizer) and runs one.
#
#   tools/fuzz/run.sh [TARGET] [SECONDS]     # default: FuzzDevice for 60 s
#
# Crashes land in tools/fuzz/crashes/TARGET/; the corpus grows in
# tools/fuzz/corpus/TARGET/ (seeded from tools/fuzz/seeds/TARGET/).
# Re-run one input: .build-fuzz/release/TARGET tools/fuzz/crashes/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")"
target=${1:-FuzzDevice}
seconds=${2:-60}
export SWIFT_BACKTRACE=enable=no
# A failed build stops here (never fuzzes an old binary); its errors are shown.
../release-build.sh "$target" -- --package-path tools/fuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
mkdir -p "corpus/$target" "crashes/$target"
seeds=()
[[ -d "seeds/$target" ]] && seeds=("seeds/$target")
../../.build-fuzz/release/"$target" "corpus/$target" "${seeds[@]}" \
    -max_total_time="$seconds" -max_len=${MAX_LEN:-8192} -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="crashes/$target/" -print_final_stats=1 2>&1 | grep -E "^#[0-9]+.*(DONE|pulse)|stat::|ERROR|SUMMARY|Test unit written" | tail -12
