#!/usr/bin/env bash
# Installs what vtrace needs on a fresh Debian machine, only when it is missing.
# Safe to run repeatedly; used by tools/test (with --test), tools/demo and the benchmarks.
#
#   tools/bootstrap.sh          # build and demo: git, pkg-config, zstd, python3, gcc (the KVM guest), libzstd-dev,
#                               # libsqlite3-dev and libssl-dev (vtrace catalog: SQLite, SHA-256)
#   tools/bootstrap.sh --bench  # also time (/usr/bin/time: the benchmarks' peak memory; --test installs it too)
#   tools/bootstrap.sh --test   # also what the tests check output with, when it can be had:
#                               # gdb, tshark (pcapng), chromium (renders the plot's HTML),
#                               # tmux (a real terminal for `vtrace debug`'s line editor),
#                               # qemu-system-x86 + busybox-static + cpio (the Linux guest over
#                               # vhost-user), dpdk-dev (dpdk-testpmd's virtio-user);
#                               # from PyPI, DuckDB and its SQLite reader (vtrace catalog's export)
set -euo pipefail

need_apt=()
# Debian packages the build and tests use: command -> package.
declare -A tools=( [git]=git [pkg-config]=pkg-config [zstd]=zstd [gcc]=gcc )
for cmd in "${!tools[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || need_apt+=("${tools[$cmd]}")
done
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# Headers: libzstd for the trace format.
[[ -f /usr/include/zstd.h ]] || need_apt+=(libzstd-dev)
# vtrace catalog: SQLite, and libcrypto's SHA-256 (a trace's identity).
[[ -f /usr/include/sqlite3.h ]] || need_apt+=(libsqlite3-dev)
[[ -f /usr/include/openssl/evp.h ]] || need_apt+=(libssl-dev)

# Test-only tools: the tests that use them skip with a message when they are absent,
# so failing to install them is a warning, not an error.
want_apt=()
if [[ "${1:-}" == "--test" ]]; then
    declare -A test_tools=( [gdb]=gdb [tshark]=tshark [chromium]=chromium [qemu-system-x86_64]=qemu-system-x86
                            [dpdk-testpmd]=dpdk-dev [cpio]=cpio [tmux]=tmux )
    for cmd in "${!test_tools[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || want_apt+=("${test_tools[$cmd]}")
    done
    dpkg -s busybox-static >/dev/null 2>&1 || want_apt+=(busybox-static)
    # The tests run /usr/bin/python3 by path, whatever python3 is first on PATH.
    [[ -x /usr/bin/python3 ]] || want_apt+=(python3)
    # The Linux guest's kernel comes from the package index (tools/linux-guest/build.sh).
    if [[ $(id -u) -eq 0 ]] && ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then need_index=1; fi
fi

# /usr/bin/time: the benchmarks' peak memory, and the tests' (CLI.runMeasured).
if [[ ! -x /usr/bin/time ]] && [[ "${1:-}" == "--bench" || "${1:-}" == "--test" ]]; then need_apt+=(time); fi

updated=0
apt_install() {
    if ((updated == 0)); then
        apt-get update -qq
        updated=1
    fi
    # wireshark-common asks whether non-root users may capture; answer for it.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ((${#need_apt[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "bootstrap: missing packages ${need_apt[*]}; run as root or: sudo apt-get install -y ${need_apt[*]}" >&2
        exit 1
    fi
    echo "bootstrap: installing ${need_apt[*]}" >&2
    apt_install "${need_apt[@]}"
fi

if [[ -n ${need_index:-} ]] && ((updated == 0)); then
    apt-get update -qq && updated=1
fi

if ((${#want_apt[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "bootstrap: not root, so not installing ${want_apt[*]}; the tests that use them will say SKIPPED" >&2
    else
        echo "bootstrap: installing test tools ${want_apt[*]}" >&2
        # One package that cannot be had (a mirror without it, a broken
        # dependency) must not keep the others out: on failure, one at a time.
        if ! apt_install "${want_apt[@]}"; then
            for pkg in "${want_apt[@]}"; do
                apt_install "$pkg" || echo "bootstrap: could not install $pkg; the tests that use it will say SKIPPED" >&2
            done
        fi
    fi
fi

# DuckDB reads vtrace catalog's exports and SQLite file in the tests (CatalogDuckDBTests):
# the engine and its sqlite_scanner extension from PyPI, at matching versions
# (an extension loads only into its own DuckDB version).
if [[ "${1:-}" == "--test" ]] && ! python3 -c 'import duckdb, duckdb_extension_sqlite_scanner' >/dev/null 2>&1; then
    duckdb_packages=(duckdb==1.5.5 duckdb-extension-sqlite-scanner==1.5.5)
    if ! python3 -m pip --version >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then apt_install python3-pip || true; fi
    echo "bootstrap: installing ${duckdb_packages[*]} from PyPI" >&2
    # Debian's own python3 refuses pip installs outside a virtual environment
    # (PEP 668) unless told: the packages are for this machine's tests only.
    python3 -m pip install --quiet --disable-pip-version-check "${duckdb_packages[@]}" 2>/dev/null \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "${duckdb_packages[@]}" \
        || echo "bootstrap: could not install DuckDB; its test will say SKIPPED" >&2
fi

if ! command -v swift >/dev/null 2>&1; then
    echo "bootstrap: swift 6.x is required and is not on PATH (it is not a Debian package;" >&2
    echo "           install a toolchain from swift.org, then re-run)" >&2
    exit 1
fi
