#!/usr/bin/env bash
# Builds the Linux guest of the vhost-user demo and tests from Debian packages,
# without installing anything into the system: the kernel package is fetched
# with `apt-get download` and unpacked with `dpkg-deb -x`; busybox-static is
# the userland. The result is cached outside the repository, so a second run
# only prints the paths:
#
#   $VTRACE_CACHE (default ~/.cache/vtrace)/linux-guest/vmlinuz
#   $VTRACE_CACHE/linux-guest/initrd.cpio.gz
#
# The initramfs's init (tools/linux-guest/init) loads virtio_mmio and
# virtio_net, brings eth0 up, sends ARP, a pktgen burst and MTU-sized frames
# to itself (the device loops them back), prints eth0's statistics and powers
# off. Kernel command-line keys choose the traffic (see init).
#
#   tools/linux-guest/build.sh            # build (or reuse) and print the two paths
#   tools/linux-guest/build.sh --force    # rebuild the initramfs
#
# Exit status: 0 built (or cached); 3 what it needs cannot be had here (the
# kernel package or busybox-static: offline, not root, not in the index);
# anything else a failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${VTRACE_CACHE:-$HOME/.cache/vtrace}/linux-guest
mkdir -p "$cache"
force=${1:-}

need() { command -v "$1" >/dev/null 2>&1; }
sudo_apt() {  # never prompts: without root or password-less sudo it fails, saying so
    if [[ $(id -u) -eq 0 ]]; then apt-get "$@"
    elif sudo -n true 2>/dev/null; then sudo -n apt-get "$@"
    else echo "linux-guest: needs root (or password-less sudo) for: apt-get $*" >&2; return 1; fi
}
if ! dpkg -s busybox-static >/dev/null 2>&1; then
    echo "linux-guest: installing busybox-static" >&2
    { sudo_apt update -qq >/dev/null && sudo_apt install -y -qq busybox-static cpio >/dev/null; } ||
        { echo "linux-guest: busybox-static cannot be installed here" >&2; exit 3; }
fi
need cpio || sudo_apt install -y -qq cpio >/dev/null || { echo "linux-guest: cpio cannot be installed here" >&2; exit 3; }

# The kernel and its modules: fetched again when the module list changes.
# Everything is built in $work and moved into place, the stamp last, so an
# interrupted run leaves no half-made cache that a later run would trust.
modules=(virtio_ring virtio virtio_mmio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net pktgen)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
newest() {  # the newest 6.1 kernel image package the apt index has
    apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -1
}
fetch() { (cd "$work" && rm -f ./*.deb && apt-get -o APT::Sandbox::User=root download "$1" >/dev/null); }
if [[ ! -f $cache/vmlinuz || ! -d $cache/modules || $(cat "$cache/modules.list" 2>/dev/null) != "${modules[*]}" ]]; then
    pkg=$(newest)
    # A stale index names a package the mirror no longer has: update, retry once.
    if [[ -z $pkg ]] || ! fetch "$pkg"; then
        echo "linux-guest: ${pkg:-no linux-image-6.1.0-*-amd64 package} not available; updating the apt index" >&2
        # Exit 3: the kernel cannot be had here (offline, no root, no such
        # package); the test that boots the guest skips on 3 and fails on others.
        sudo_apt update -qq >/dev/null || { echo "linux-guest: apt-get update failed (offline?)" >&2; exit 3; }
        pkg=$(newest)
        [[ -n $pkg ]] || { echo "linux-guest: no linux-image-6.1.0-*-amd64 package in the apt index" >&2; exit 3; }
        fetch "$pkg" || { echo "linux-guest: apt-get download $pkg failed" >&2; exit 3; }
    fi
    echo "linux-guest: fetched $pkg" >&2
    dpkg-deb -x "$work"/*.deb "$work/root"
    kver=$(ls "$work/root/lib/modules")
    mkdir -p "$work/modules"
    for m in "${modules[@]}"; do
        f=$(find "$work/root/lib/modules/$kver" -name "$m.ko*" | head -1)
        [[ -n $f ]] || { echo "linux-guest: module $m not found in $pkg" >&2; exit 2; }
        cp "$f" "$work/modules/"
    done
    rm -f "$cache/modules.list"
    staged=$(mktemp "$cache/vmlinuz.XXXXXX")
    cp "$work/root/boot/vmlinuz-$kver" "$staged" && chmod 644 "$staged" && mv -f "$staged" "$cache/vmlinuz"
    rm -rf "$cache/modules" && mv "$work/modules" "$cache/modules"
    echo "$kver" > "$cache/kernel-version"
    echo "${modules[*]}" > "$cache/modules.list"
    force=--force   # new modules: a new initramfs
fi

if [[ ! -f $cache/initrd.cpio.gz || $force == --force || $here/init -nt $cache/initrd.cpio.gz || $0 -nt $cache/initrd.cpio.gz ]]; then
    root=$work/initrd
    mkdir -p "$root"/{bin,sbin,proc,sys,dev,modules,tmp}
    cp /bin/busybox "$root/bin/busybox"
    for t in sh mount insmod ip cat echo sleep poweroff ls grep sed awk printf arping ping uname dmesg tr head; do
        ln -s busybox "$root/bin/$t"
    done
    cp "$cache"/modules/* "$root/modules/"
    # Compressed modules (.ko.xz) are unpacked here: busybox insmod takes plain ones.
    for f in "$root"/modules/*.ko.xz; do [[ -e $f ]] && xz -d "$f"; done
    cp "$here/init" "$root/init"
    chmod +x "$root/init"
    staged=$(mktemp "$cache/initrd.XXXXXX")
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) > "$staged"
    chmod 644 "$staged"
    mv -f "$staged" "$cache/initrd.cpio.gz"
fi
echo "$cache/vmlinuz"
echo "$cache/initrd.cpio.gz"
