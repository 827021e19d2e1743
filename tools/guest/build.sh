#!/usr/bin/env bash
# Builds the guest ELF the KVM VMM loads: tools/guest/guest.c, freestanding,
# no libc, linked at 1 MiB. Rebuilds only when the source is newer.
#
#   tools/guest/build.sh [OUT]     # default .build/guest/vtrace-guest.elf
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-.build/guest/vtrace-guest.elf}
mkdir -p "$(dirname "$out")"
if [[ -s $out && $out -nt tools/guest/guest.c && $out -nt tools/guest/build.sh ]]; then exit 0; fi
command -v gcc >/dev/null || { echo "guest: gcc is needed to build the guest (apt-get install gcc)" >&2; exit 1; }
gcc -std=c11 -O2 -Wall -Wextra -Werror -ffreestanding -fno-builtin -nostdlib -static -fno-pic -no-pie \
    -fno-stack-protector -mno-red-zone -mgeneral-regs-only -fno-asynchronous-unwind-tables \
    -Wl,-Ttext=0x100000 -Wl,-e,_start -Wl,--build-id=none -Wl,-z,noexecstack \
    -o "$out.tmp" tools/guest/guest.c
mv "$out.tmp" "$out"
