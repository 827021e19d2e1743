#!/usr/bin/env python3
"""Bytes per event of a complete trace with every chunk recompressed at one
zstd level, each chunk alone (as the recorder compresses them).

A recorder drops to faster zstd levels while its compressor falls behind, so
two recordings of the same traffic differ in size by how busy the machine
was. Recompressing every chunk at one level leaves what the format and the
chunking cost. Used by tools/kill-bench.sh (docs/performance.md).

  tools/chunk-size.py TRACE [LEVEL]     # default level 1 (vtrace serve's)
"""
import struct
import subprocess
import sys

ENTRY = 44
FOOTER = 24


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    data = open(sys.argv[1], "rb").read()
    level = sys.argv[2] if len(sys.argv) > 2 else "1"
    if len(data) < FOOTER or struct.unpack_from("<I", data, len(data) - 4)[0] != 0x58495456:
        sys.exit(f"{sys.argv[1]}: not a complete trace (no footer)")
    count = struct.unpack_from("<I", data, len(data) - FOOTER)[0]
    index = len(data) - FOOTER - ENTRY * count
    compressed = raw = events = 0
    for i in range(count):
        offset, size, _, _, n, _, _, _ = struct.unpack_from("<QIIQIQII", data, index + ENTRY * i)
        content = subprocess.run(["zstd", "-dc"], input=data[offset:offset + size], capture_output=True, check=True).stdout
        again = subprocess.run(["zstd", f"-{level}", "-c"], input=content, capture_output=True, check=True).stdout
        compressed += len(again) + 8 + ENTRY  # the chunk and its entry frame
        raw += len(content)
        events += n
    print(f"{compressed / events:.3f} {raw / events:.3f} {count} {events}")


main()
