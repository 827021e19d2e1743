#!/usr/bin/env bash
# Installs what vtrace needs on a fresh Debian machine, only when it is missing.
# Safe to run repeatedly; used by tools/test and tools/demo.
set -euo pipefail

need_apt=()
# Debian packages the build and tests use: command -> package.
declare -A tools=( [git]=git [pkg-config]=pkg-config [zstd]=zstd [python3]=python3 )
for cmd in "${!tools[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || need_apt+=("${tools[$cmd]}")
done
# Headers: libzstd for the trace format.
[[ -f /usr/include/zstd.h ]] || need_apt+=(libzstd-dev)

if ((${#need_apt[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "bootstrap: missing packages ${need_apt[*]}; run as root or: sudo apt-get install -y ${need_apt[*]}" >&2
        exit 1
    fi
    echo "bootstrap: installing ${need_apt[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "bootstrap: swift 6.x is required and is not on PATH (it is not a Debian package;" >&2
    echo "           install a toolchain from swift.org, then re-run)" >&2
    exit 1
fi
