#!/usr/bin/env python3
"""Counts the pixels of a PNG that have each given colour (stdlib only).

    tools/png-colours.py FILE.png 1f77b4 e8710a   ->   "WIDTH HEIGHT COUNT1 COUNT2"

Used by the tests to check that a headless browser drew the plot's lines.
Handles 8-bit RGB and RGBA, non-interlaced (what Chromium writes)."""
import struct, sys, zlib

def pixels(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit("not a PNG")
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise SystemExit("unsupported PNG layout")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    prev, rows, at = bytearray(stride), [], 0
    for _ in range(height):
        kind, line = raw[at], bytearray(raw[at + 1:at + 1 + stride])
        at += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1: line[i] = (line[i] + a) & 255
            elif kind == 2: line[i] = (line[i] + b) & 255
            elif kind == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return width, height, bpp, rows

width, height, bpp, rows = pixels(sys.argv[1])
wanted = [bytes.fromhex(h) for h in sys.argv[2:]]
counts = [0] * len(wanted)
for line in rows:
    for x in range(0, len(line), bpp):
        px = bytes(line[x:x + 3])
        for k, w in enumerate(wanted):
            if px == w:
                counts[k] += 1
print(width, height, *counts)
