#!/usr/bin/env python3
"""An independent decoder of the .vtrace format, written from docs/trace-format.md.

    python3 tools/trace-decoder/vtrace_decode.py TRACE.vtrace

prints what `vtrace dump --json TRACE.vtrace` prints: one JSON object per
event (section "The JSON dump"). It reads complete traces and the .partial
file of a recorder that died, verifies the header CRC, the index CRC, every
entry frame and every chunk's CRC, and exits 2 with a message naming the byte
offset on a malformed file.

Like zstd's educational decoder it is meant to be read next to the document:
one function per structure, each headed by the section it implements.
Standard library only; zstd frames are decompressed by the `zstandard`
module when it is installed, otherwise by the `zstd` command-line tool.
"""

import os
import subprocess
import sys
import zlib

try:
    import zstandard                   # optional; the zstd command otherwise
except ImportError:
    zstandard = None

MASK64 = (1 << 64) - 1


class Corrupt(Exception):
    """A file that breaks the format; the message names where."""


# ---------------------------------------------------------------------------
# "Encodings": little-endian integers, varint (LEB128), zigzag, CRC-32
# ---------------------------------------------------------------------------

def u16(b, at):
    return int.from_bytes(b[at:at + 2], "little")


def u32(b, at):
    return int.from_bytes(b[at:at + 4], "little")


def u64(b, at):
    return int.from_bytes(b[at:at + 8], "little")


def crc32(b):
    # CRC-32/ISO-HDLC (IEEE 802.3, reflected 0xEDB88320, init and xorout
    # 0xFFFFFFFF): zlib's crc32.
    return zlib.crc32(b) & 0xFFFFFFFF


class Bytes:
    """A cursor over bytes; every read checks the bytes left.

    `where` turns a position into the text errors use (the file offset for
    the header, the position in the content for a chunk)."""

    def __init__(self, data, pos=0, end=None, where=lambda p: "byte %d" % p):
        self.data, self.pos = data, pos
        self.end = len(data) if end is None else end
        self.where = where

    def fail(self, what, at=None):
        raise Corrupt("%s: %s" % (self.where(self.pos if at is None else at), what))

    def left(self):
        return self.end - self.pos

    def u8(self):
        if self.pos >= self.end:
            self.fail("the data ends inside a field")
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n, what="field"):
        if n > self.end - self.pos:
            self.fail("%s of %d bytes, %d left" % (what, n, self.end - self.pos))
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def varint(self):
        # Unsigned LEB128: at most 10 bytes; the 10th holds bit 63 only (0 or 1).
        data, pos = self.data, self.pos
        if pos < self.end and data[pos] < 0x80:        # the common one-byte case
            self.pos = pos + 1
            return data[pos]
        start, value, shift = pos, 0, 0
        while True:
            if pos >= self.end:
                self.fail("the data ends inside a varint", start)
            b = data[pos]
            pos += 1
            if shift == 63 and b > 1:
                self.fail("malformed varint (over 64 bits)", start)
            value |= (b & 0x7F) << shift
            if b < 0x80:
                self.pos = pos
                return value
            shift += 7

    def zigzag(self):
        v = self.varint()
        return (v >> 1) ^ -(v & 1)

    def narrow(self, bits, what):
        """A varint that must fit an unsigned field of `bits` bits."""
        at = self.pos
        v = self.varint()
        if v >> bits:
            self.fail("%s %d does not fit %d bits" % (what, v, bits), at)
        return v


# ---------------------------------------------------------------------------
# "Container": frames, magics, sizes
# ---------------------------------------------------------------------------

HEADER_FRAME, ENTRY_FRAME, INDEX_FRAME = 0x184D2A56, 0x184D2A57, 0x184D2A58
FOOTER_MAGIC = 0x58495456              # "VTIX"
FRAME_HEADER, ENTRY_SIZE, FOOTER_SIZE = 8, 44, 24
MAX_HEADER = 1 << 20
MAX_CHUNK = 8 << 20                    # uncompressed bytes of one chunk
MAX_CHUNKS = 1 << 26

FLAG_CHECKPOINT, FLAG_CONTINUATION, FLAG_ENDS_INSIDE_ACCESS = 1, 2, 4


class File:
    def __init__(self, path):
        self.fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self.fd).st_size

    def read(self, at, n):
        """Up to n bytes at `at` (fewer at the end of the file)."""
        return os.pread(self.fd, max(0, n), at) if at < self.size else b""


# ---------------------------------------------------------------------------
# "Header"
# ---------------------------------------------------------------------------

HEADER_MAGIC = b"VTRACE\x00\x01"


def read_header(f):
    """The header frame at byte 0: returns (header fields, bytes of the frame)."""
    head = f.read(0, FRAME_HEADER)
    if len(head) == 0:
        raise Corrupt("byte 0: the file is empty")
    if len(head) < FRAME_HEADER or u32(head, 0) != HEADER_FRAME:
        raise Corrupt("byte 0: not a vtrace trace (no header frame)")
    length = u32(head, 4)
    if length > MAX_HEADER:
        raise Corrupt("byte 4: header frame claims %d bytes (limit %d)" % (length, MAX_HEADER))
    p = f.read(FRAME_HEADER, length)
    if len(p) < length:
        raise Corrupt("byte %d: the file ends inside the header" % (FRAME_HEADER + len(p)))
    if len(p) < 16 or p[:8] != HEADER_MAGIC:
        raise Corrupt("byte 8: not a vtrace trace (no VTRACE magic)")
    major, minor = u16(p, 8), u16(p, 10)
    if major != 1:
        raise Corrupt("trace format %d.%d is not supported: this decoder reads format 1.x" % (major, minor))
    # The CRC covers the payload from "VTRACE" to just before the CRC (not the frame header).
    if crc32(p[:-4]) != u32(p, len(p) - 4):
        raise Corrupt("byte %d: header checksum mismatch" % (FRAME_HEADER + len(p) - 4))
    h = {"major": major, "minor": minor, "memory": [], "faults": [], "transport": "mmio"}
    r = Bytes(p, 12, len(p) - 4, lambda at: "header byte %d" % (FRAME_HEADER + at))
    while r.left() > 0:
        tag_at = r.pos
        tag, n = r.varint(), r.varint()
        v = Bytes(r.take(n, "header field %d" % tag), 0, None, lambda at: "header field at byte %d" % (FRAME_HEADER + tag_at))

        def small(limit):
            x = v.varint()
            if x > limit:
                r.fail("header field %d value %d is over %d" % (tag, x, limit), tag_at)
            return x
        text = lambda: v.data.decode("utf-8", "replace")
        if tag == 1:
            h["nics"] = small(64)
        elif tag == 2:
            h["queue_pairs"] = small(256)
        elif tag == 3:
            if n != 6:
                r.fail("MAC is %d bytes, not 6" % n, tag_at)
            h["mac"] = v.data
        elif tag == 4:
            h["offered_features"] = v.varint()
        elif tag == 5:
            h["max_queue_size"] = small(32768)
        elif tag == 6:
            if len(h["memory"]) >= 1024:
                r.fail("more than 1024 memory regions", tag_at)
            h["memory"].append((v.varint(), v.varint()))
        elif tag == 14:
            if len(h["faults"]) >= 64:
                r.fail("more than 64 faults", tag_at)
            h["faults"].append(text())
        elif tag in (7, 8, 9, 11, 12, 13, 15, 17, 18):
            h[{7: "recorder", 8: "commit", 9: "host", 11: "command", 12: "scenario",
               13: "guest", 15: "transport", 17: "window", 18: "trigger"}[tag]] = text()
        elif tag == 10:
            h["start_time"] = v.varint()
        elif tag == 16:                             # (1.3) a window's first event
            h["first_event"] = v.varint()
        elif tag == 19:                             # (1.3) the snaplen
            h["snaplen"] = small(0xFFFFFFFF)
        # any other tag: a newer minor version's field, skipped
    if h.get("nics", 0) < 1:
        raise Corrupt("byte 8: the header has no NIC count")
    return h, FRAME_HEADER + length


# ---------------------------------------------------------------------------
# "Index entry (44 bytes)"
# ---------------------------------------------------------------------------

def read_entry(b, at=0):
    return {"offset": u64(b, at), "csize": u32(b, at + 8), "usize": u32(b, at + 12),
            "first": u64(b, at + 16), "count": u32(b, at + 24), "time": u64(b, at + 28),
            "flags": u32(b, at + 36), "crc": u32(b, at + 40), "raw": bytes(b[at:at + ENTRY_SIZE])}


def check_entry_frame(f, e, i):
    """"Reading a complete trace", step 4: the 52 bytes before chunk i are an
    entry frame equal to its index entry. Any other frame there is an unknown
    frame: corrupt."""
    at = e["offset"] - FRAME_HEADER - ENTRY_SIZE
    frame = f.read(at, FRAME_HEADER + ENTRY_SIZE)
    if u32(frame, 0) != ENTRY_FRAME or u32(frame, 4) != ENTRY_SIZE:
        raise Corrupt("byte %d (chunk %d): expected a chunk entry frame, found magic 0x%x length %d"
                      % (at, i, u32(frame, 0), u32(frame, 4)))
    if frame[FRAME_HEADER:] != e["raw"]:
        raise Corrupt("byte %d (chunk %d): the entry frame before the chunk differs from the index" % (at, i))


# ---------------------------------------------------------------------------
# "Footer" and "Reading a complete trace"
# ---------------------------------------------------------------------------

def read_index(f, header_end, first_event=0):
    """The chunks of a complete trace, or None when the file has no footer."""
    if f.size < header_end + FRAME_HEADER + FOOTER_SIZE:
        return None
    footer_at = f.size - FOOTER_SIZE
    ft = f.read(footer_at, FOOTER_SIZE)
    if u32(ft, 20) != FOOTER_MAGIC:
        return None
    count, total, flags, crc = u32(ft, 0), u64(ft, 4), u32(ft, 12), u32(ft, 16)
    if count > MAX_CHUNKS:
        raise Corrupt("byte %d: footer claims %d chunks" % (footer_at, count))
    if flags != 1:
        raise Corrupt("byte %d: footer flags are 0x%x, expected 0x1" % (footer_at + 12, flags))
    frame_at = footer_at - count * ENTRY_SIZE - FRAME_HEADER
    if frame_at < header_end:
        raise Corrupt("byte %d: footer claims %d chunks; the index cannot fit before it" % (footer_at, count))
    fh = f.read(frame_at, FRAME_HEADER)
    if u32(fh, 0) != INDEX_FRAME or u32(fh, 4) != count * ENTRY_SIZE + FOOTER_SIZE:
        raise Corrupt("byte %d: the index frame is not where the footer says" % frame_at)
    body = f.read(frame_at + FRAME_HEADER, count * ENTRY_SIZE)
    if crc32(body) != crc:         # the footer's one CRC covers the entries only
        raise Corrupt("byte %d: index checksum mismatch" % frame_at)
    entries, end, event = [], header_end, first_event
    for i in range(count):
        at = frame_at + FRAME_HEADER + i * ENTRY_SIZE
        e = read_entry(body, i * ENTRY_SIZE)
        # Entries tile the file: chunk i starts 52 bytes (its entry frame)
        # after the end of chunk i-1 (or of the header).
        if e["offset"] != end + FRAME_HEADER + ENTRY_SIZE:
            raise Corrupt("byte %d (chunk %d): index entry places the chunk at %d, expected %d"
                          % (at, i, e["offset"], end + FRAME_HEADER + ENTRY_SIZE))
        if e["first"] != event:
            raise Corrupt("byte %d (chunk %d): index entry starts at event %d, expected %d" % (at, i, e["first"], event))
        if e["usize"] > MAX_CHUNK:
            raise Corrupt("byte %d (chunk %d): chunk claims %d uncompressed bytes (limit %d)" % (at, i, e["usize"], MAX_CHUNK))
        end = e["offset"] + e["csize"]
        if end > frame_at:
            raise Corrupt("byte %d (chunk %d): chunk runs past the index" % (at, i))
        check_entry_frame(f, e, i)
        event += e["count"]
        entries.append(e)
    if end != frame_at:
        raise Corrupt("byte %d: %d unindexed bytes before the index" % (end, frame_at - end))
    if total != event - first_event:
        raise Corrupt("byte %d: footer counts %d events, the index %d" % (footer_at, total, event - first_event))
    if entries and entries[-1]["flags"] & FLAG_ENDS_INSIDE_ACCESS:
        raise Corrupt("byte %d (chunk %d): the trace is complete, but its last chunk ends inside an access"
                      % (frame_at + FRAME_HEADER + (count - 1) * ENTRY_SIZE, count - 1))
    return entries


# ---------------------------------------------------------------------------
# "Reading an incomplete trace": walking entry + chunk pairs
# ---------------------------------------------------------------------------

def scan_partial(f, header_end, first_event=0):
    """The chunks of a trace without footer: every entry + chunk pair entirely present."""
    entries, at, event = [], header_end, first_event
    while at < f.size:
        head = f.read(at, FRAME_HEADER + ENTRY_SIZE)
        if len(head) < FRAME_HEADER:
            break                                   # ends inside a frame header
        magic = u32(head, 0)
        if magic == INDEX_FRAME:
            if at + FRAME_HEADER + u32(head, 4) > f.size:
                break                               # died while writing the index
            raise Corrupt("byte %d: an index frame is present but the footer is damaged" % at)
        if magic != ENTRY_FRAME or u32(head, 4) != ENTRY_SIZE:
            raise Corrupt("byte %d (chunk %d): expected a chunk entry frame, found magic 0x%x" % (at, len(entries), magic))
        if len(head) < FRAME_HEADER + ENTRY_SIZE:
            break                                   # ends inside the entry
        e = read_entry(head, FRAME_HEADER)
        if e["offset"] != at + FRAME_HEADER + ENTRY_SIZE or e["first"] != event or e["usize"] > MAX_CHUNK:
            raise Corrupt("byte %d (chunk %d): chunk entry does not fit the chunks before it" % (at, len(entries)))
        if e["offset"] + e["csize"] > f.size:
            break                                   # ends inside the chunk
        entries.append(e)
        event += e["count"]
        at = e["offset"] + e["csize"]
    return entries


# ---------------------------------------------------------------------------
# "Reading a chunk": CRC, zstd frame, sizes
# ---------------------------------------------------------------------------

def zstd_content_size(frame):
    """The content size a zstd frame header declares (RFC 8878 §3.1.1.1), or None."""
    if len(frame) < 6 or u32(frame, 0) != 0xFD2FB528:
        return None
    fhd = frame[4]
    fcs_flag, single_segment, dict_flag = fhd >> 6, (fhd >> 5) & 1, fhd & 3
    at = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[dict_flag]
    size = (1 if single_segment else 0, 2, 4, 8)[fcs_flag]
    if size == 0 or len(frame) < at + size:
        return None
    value = int.from_bytes(frame[at:at + size], "little")
    return value + 256 if size == 2 else value


def decompress(frame):
    if zstandard is not None:
        return zstandard.ZstdDecompressor().decompress(frame)
    run = subprocess.run(["zstd", "-d", "-c", "-q"], input=frame, capture_output=True)
    if run.returncode != 0:
        raise ValueError(run.stderr.decode(errors="replace").strip())
    return run.stdout


def chunk_content(f, e, i):
    """Chunk i's uncompressed content, after the CRC and size checks."""
    frame = f.read(e["offset"], e["csize"])
    if len(frame) < e["csize"]:
        raise Corrupt("byte %d (chunk %d): the chunk is cut short" % (e["offset"] + len(frame), i))
    if crc32(frame) != e["crc"]:
        raise Corrupt("byte %d (chunk %d): chunk checksum mismatch" % (e["offset"], i))
    declared = zstd_content_size(frame)
    if declared != e["usize"]:
        raise Corrupt("byte %d (chunk %d): the zstd frame declares %s bytes, the index says %d"
                      % (e["offset"], i, declared, e["usize"]))
    try:
        content = decompress(frame)
    except Exception as x:
        raise Corrupt("byte %d (chunk %d): zstd: %s" % (e["offset"], i, x))
    if len(content) != e["usize"]:
        raise Corrupt("byte %d (chunk %d): frame held %d bytes, expected %d" % (e["offset"], i, len(content), e["usize"]))
    return content


# ---------------------------------------------------------------------------
# "Checkpoint (per NIC)"
# ---------------------------------------------------------------------------

def read_checkpoint(r):
    c = {"status": r.u8(), "device_features_sel": r.narrow(32, "device_features_sel"),
         "driver_features_sel": r.narrow(32, "driver_features_sel"), "driver_features": r.varint(),
         "queue_sel": r.narrow(32, "queue_sel"), "interrupt_status": r.narrow(32, "interrupt_status"),
         "active_queue_pairs": r.narrow(16, "active_queue_pairs")}
    flags = r.varint()
    c["flags"], c["interrupts_raised"] = flags, r.varint()
    c["counters"] = [r.varint() for _ in range(16)]
    at = r.pos
    n = r.varint()
    if n > 513:
        r.fail("checkpoint lists %d queues (at most 513)" % n, at)
    c["queues"] = []
    for _ in range(n):
        c["queues"].append({"max_size": r.narrow(16, "max_size"), "size": r.narrow(16, "size"), "flags": r.varint(),
                            "desc": r.varint(), "avail": r.varint(), "used": r.varint(),
                            "next_avail": r.narrow(16, "next_avail"), "next_used": r.narrow(16, "next_used")})
    if flags & 4:                                   # (1.2) a drain is paused
        at = r.pos
        queue = r.narrow(16, "drain queue")
        if queue >= n:
            r.fail("paused drain on queue %d of %d" % (queue, n), at)
        c["drain"] = {"queue": queue, "drain_flags": r.varint(), "access_event": r.varint()}
    return c


# ---------------------------------------------------------------------------
# "Chunk content": the content header, then "Records"
# ---------------------------------------------------------------------------

def repeat_slot(address):
    """"Repeat records" (1.4): an address's slot, the top 13 bits of
    (address >> 1) * 0x9E3779B97F4A7C15 modulo 2^64."""
    return (((address >> 1) * 0x9E3779B97F4A7C15) & MASK64) >> 51


def decode_chunk(content, nics, e, i, minor):
    """Yields (number, time, nic, body) for each event of chunk i.

    `body` is a tuple whose first item is the kind's JSON name (section
    "The JSON dump"); `time` and the variables below are the document's
    "Decoding state"."""
    r = Bytes(content, 0, None, lambda at: "chunk %d at byte %d, byte %d of its content" % (i, e["offset"], at))
    first, flags, time, count = r.varint(), r.varint(), r.varint(), r.varint()
    if first != e["first"]:
        r.fail("chunk starts at event %d, the index says %d" % (first, e["first"]), 0)
    if flags != e["flags"]:
        r.fail("chunk flags are 0x%x, the index says 0x%x" % (flags, e["flags"]), 0)
    if time != e["time"]:
        r.fail("chunk base timestamp is %d, the index says %d" % (time, e["time"]), 0)
    if count != nics:
        r.fail("chunk describes %d NICs, the header %d" % (count, nics))
    if flags & FLAG_CHECKPOINT:
        counters = [read_checkpoint(r)["counters"] for _ in range(nics)]
    else:                                           # continuation: counter baselines
        counters = [[r.varint() for _ in range(16)] for _ in range(nics)]

    # "Decoding state": set up per chunk, one for the whole chunk, shared by all NICs.
    nic = vcpu = 0
    read_end = write_end = desc_end = 0
    recent = []             # "Recent reads": (start in content, length), newest first, at most 4
    slots = {}              # (1.4) "Repeat records": slot -> (address, start in content, length)

    accesses = [0]          # (1.5) memory accesses so far
    history = []            # (1.5) "Address codes": (address, length) of every memory access, oldest first
    reach = 4096 if minor >= 6 else 256   # accesses back an address code reaches (1.6: 4096)
    chain = []              # (1.5) the last chain's first four descriptors: (address, length)
    head_read = None        # (1.5) start of the newest successful 2-byte read's bytes
    used = [0, 0]           # (1.5) the used write: id and len of the newest successful 8-byte write
    used_written = False    # (1.5) whether there was one (1.7: not needed)
    index = [[MASK64, 0] for _ in range(4)]  # (1.7) "Ring cursors": the index cache, [address, value]
    index_next = 0          # (1.7) the entry the next address entering the cache takes
    rings = [[MASK64, 0], [MASK64, 0]]       # (1.7) the two ring cursors, [address, value], the one moved last first
    useds = [[MASK64, 0], [MASK64, 0]]       # (1.7) the two used cursors, [address, id], likewise
    code_read = [None]      # (1.5) the address code just read (None: a 1.4 delta or the address itself)

    def remember(address, start, length):           # a successful access of 1 to 16 bytes (1.4)
        if minor >= 4 and 1 <= length <= 16:
            slots[repeat_slot(address)] = (address, start, length)

    def address_of(end, at):
        """A memory record's address: (1.5) its address code, else the zigzag delta from `end`."""
        if minor < 5:
            return (end + r.zigzag()) & MASK64
        v = code_read[0] = r.varint()
        mode, w = v & 3, v >> 2
        if mode == 0:                               # zigzag delta from the end
            return (end + ((w >> 1) ^ -(w & 1))) & MASK64
        if mode in (1, 2):                          # the same address as / the end of access k back
            k = w + 1
            if k > len(history):
                r.fail("address code names memory access %d back; the chunk has %d before it and the history keeps %d"
                       % (k, accesses[0], reach), at)
            a, n = history[-k]
            return a if mode == 1 else (a + n) & MASK64
        if w == 0:                                  # the address itself
            return r.varint()
        j, offset = (w - 1) & 3, (w - 1) >> 2       # in descriptor j of the last chain
        if j >= len(chain):
            r.fail("address code names descriptor %d of the last chain; it has %d (of the first 4)" % (j, len(chain)), at)
        return (chain[j][0] + offset) & MASK64

    def move_ring(j, address, value):               # (1.7) ring cursor j moves, to the front
        if j:
            rings[1] = rings[0]
        rings[0] = [address, value]

    def move_used(j, address, id):                  # (1.7) used cursor j moves, to the front
        if j:
            useds[1] = useds[0]
        useds[0] = [address, id]

    def near(cursors, address):                     # (1.7) the cursor a miss takes: 0 when within 4096 bytes of it, else 1
        return 0 if (address - cursors[0][0] + 4096) & MASK64 < 8192 else 1

    def unzigzag(z, bits):                          # (1.7) a zigzag change, modulo 2^bits
        return ((z >> 1) ^ -(z & 1)) & ((1 << bits) - 1)

    def recent_same():
        """(1.7) Whether the address code just read names the same address as an access fewer than 64 back."""
        v = code_read[0]
        return v is not None and v & 3 == 1 and v >> 2 < 64

    def entered(address, length):                   # (1.5) every memory access enters the history
        if minor >= 5:
            accesses[0] += 1
            history.append((address, length))
            if len(history) > reach:
                del history[0]
    number = first
    data = bytearray(content)   # (1.5) incremented records' bytes are materialised after the content
    while r.pos < r.end:
        at = r.pos
        tag = data[at]
        r.pos += 1
        kind, aux = tag & 15, tag >> 4
        if kind == 0 or kind == 1:                  # MMIO read / write
            width = r.zigzag() if aux == 15 else aux
            offset, value = r.varint(), r.varint()
            time = (time + r.varint()) & MASK64
            body = ("mmio", offset, width, "write" if kind else "read", value, vcpu)
        elif kind == 2:                             # memory read
            address = address_of(read_end, at)
            length = r.varint()
            if aux & 1:                             # failed: no bytes
                if length > 0xFFFFFFFF:
                    r.fail("memory read length %d out of range" % length, at)
                payload = b""
            else:
                start = r.pos
                payload = r.take(length, "memory read")
                if length >= 8:
                    recent = [(start, length)] + recent[:3]
                if length == 2:
                    head_read = start
                    if minor >= 7:                  # not a cursor record nor a repeat: a ring cursor
                        move_ring(near(rings, address), address, u16(data, start))
                remember(address, start, length)
            entered(address, length)
            read_end = (address + length) & MASK64
            body = ("mem-read", address, length, not aux & 1, payload, 0)
        elif kind == 3:                             # memory write
            address = address_of(write_end, at)
            length = r.varint()
            if aux & 2:                             # same bytes as recent read aux>>2 (0 = newest)
                k = aux >> 2
                if k >= len(recent) or recent[k][1] != length:
                    r.fail("memory write refers to a read that is not there", at)
                start = recent[k][0]
                payload = data[start:start + length]
            else:                                   # the bytes, failed or not
                start = r.pos
                payload = r.take(length, "memory write")
            if not aux & 1:
                remember(address, start, length)
                if length == 8:
                    used, used_written = [u32(data, start), u32(data, start + 4)], True
                    if minor >= 7:
                        move_used(near(useds, address), address, used[0])
            entered(address, length)
            write_end = (address + length) & MASK64
            body = ("mem-write", address, length, not aux & 1, payload, 0)
        elif kind == 4:                             # chain popped
            queue, head, n = r.narrow(16, "queue"), r.narrow(16, "head"), r.varint()
            if n > 65535 + 32768 or n > r.left() // 4:
                r.fail("chain claims %d descriptors" % n, at)
            descriptors = []
            for _ in range(n):
                addr = (desc_end + r.zigzag()) & MASK64
                dlen, dflags, dnext = r.narrow(32, "len"), r.narrow(16, "flags"), r.narrow(16, "next")
                desc_end = (addr + dlen) & MASK64
                descriptors.append((addr, dlen, dflags, dnext))
            chain = [(d[0], d[1]) for d in descriptors[:4]]
            body = ("chain", queue, head, descriptors)
        elif kind == 5:                             # used publish
            body = ("used", r.narrow(16, "queue"), r.narrow(32, "id"), r.narrow(32, "len"))
        elif kind == 6:                             # counter: index aux, wrapping increase
            value = counters[nic][aux] = (counters[nic][aux] + r.varint()) & MASK64
            body = ("counter", aux, value)
        elif kind == 7:                             # interrupt
            body = ("irq", r.narrow(32, "interrupt bits") if aux == 15 else aux)
        elif kind == 8:                             # queue poisoned
            queue, code = r.narrow(16, "queue"), r.varint()
            body = ("poison", queue, code, read_details(r, at))
        elif kind == 9:                             # status change: two raw bytes
            body = ("status", r.u8(), r.u8())
        elif kind == 10:                            # driver features change
            body = ("features", r.varint(), r.varint())
        elif kind == 11:                            # active pairs change
            body = ("pairs", r.narrow(16, "old"), r.narrow(16, "new"))
        elif kind == 12:
            body = ("reset",)
        elif kind == 13:                            # warning
            code = r.varint()
            body = ("warning", code, read_details(r, at))
        elif kind == 14:                            # memory binding
            body = ("memory", bool(aux & 1))
        elif aux == 2:                              # kind 15, aux 2: vhost-user operation (1.1)
            code, queue = r.u8(), r.narrow(16, "queue")
            values = read_details(r, at)
            time = (time + r.varint()) & MASK64
            body = ("vhost", code, queue, values)
        elif aux == 3:                              # kind 15, aux 3: a recorder's marker (1.3)
            code = r.varint()
            values = read_details(r, at)
            time = (time + r.varint()) & MASK64
            body = ("marker", code, values)
        elif aux == 4:                              # kind 15, aux 4: a memory access, part of its payload stored (1.3)
            mflags = r.u8()                         # bit 0 write, bit 1 failed
            write, ok = bool(mflags & 1), not mflags & 2
            what = "memory write" if write else "memory read"
            if not write and not ok:
                r.fail("a failed memory read with part of a payload (a failed read stores none)", at)
            address = address_of(write_end if write else read_end, at)
            length, stored = r.varint(), r.varint()
            if length > 0xFFFFFFFF:
                r.fail("%s length %d out of range" % (what, length), at)
            if stored >= length:
                r.fail("%s of %d bytes stores %d of them (a part is fewer)" % (what, length, stored), at)
            payload = r.take(stored, what + "'s stored part")
            entered(address, length)
            if write:                               # not a recent read; no reference to one
                write_end = (address + length) & MASK64
            else:
                read_end = (address + length) & MASK64
            body = ("mem-write" if write else "mem-read", address, length, ok, payload, length - stored)
        elif minor >= 4 and (aux == 5 or aux == 6):  # kind 15, aux 5/6: a read / write repeating its address's last access (1.4)
            write = aux == 6
            address = address_of(write_end if write else read_end, at)
            last = slots.get(repeat_slot(address))
            if last is None or last[0] != address:
                r.fail("repeated %s at 0x%x repeats no access in this chunk" % ("write" if write else "read", address), at)
            _, start, length = last
            payload = data[start:start + length]
            if minor >= 7 and length == 2:          # the index cache takes a recent one; a read else moves the ring cursor
                if recent_same():
                    index[index_next], index_next = [address, u16(data, start)], (index_next + 1) & 3
                elif not write:
                    move_ring(near(rings, address), address, u16(data, start))
            if write:
                if length == 8:
                    used, used_written = [u32(data, start), u32(data, start + 4)], True
                    if minor >= 7:
                        move_used(near(useds, address), address, used[0])
                write_end = (address + length) & MASK64
            else:
                if length >= 8:
                    recent = [(start, length)] + recent[:3]
                if length == 2:
                    head_read = start
                read_end = (address + length) & MASK64
            entered(address, length)
            body = ("mem-write" if write else "mem-read", address, length, True, payload, 0)
        elif minor >= 4 and aux == 7 or minor >= 5 and aux == 8:
            # kind 15, aux 7: a chain whose descriptors were just read (1.4); aux 8: the same at the
            # head the newest 2-byte read holds (1.5)
            queue = r.narrow(16, "queue")
            if aux == 8:
                if head_read is None:
                    r.fail("chain at the ring's head, but no 2-byte read came before it in this chunk", at)
                head = u16(data, head_read)
            else:
                head = r.narrow(16, "head")
            n = r.varint()
            if not 1 <= n <= 4:
                r.fail("chain as read claims %d descriptors (1 to 4)" % n, at)
            descriptors = []
            for k in range(n - 1, -1, -1):          # oldest first: recent read n-1 is descriptor 0
                if k >= len(recent) or recent[k][1] != 16:
                    r.fail("chain as read refers to %d descriptor reads that are not there" % n, at)
                d = recent[k][0]
                descriptors.append((u64(data, d), u32(data, d + 8), u16(data, d + 12), u16(data, d + 14)))
            desc_end = (descriptors[-1][0] + descriptors[-1][1]) & MASK64
            chain = [(d[0], d[1]) for d in descriptors]
            body = ("chain", queue, head, descriptors)
        elif minor >= 5 and (aux == 10 or aux == 11):  # kind 15, aux 10/11: a 2-byte read / write, the last value at its address plus an amount (1.5)
            write = aux == 11
            address = address_of(write_end if write else read_end, at)
            last = slots.get(repeat_slot(address))
            if last is None or last[0] != address or last[2] != 2:
                r.fail("incremented %s at 0x%x follows no 2-byte access in this chunk" % ("write" if write else "read", address), at)
            amount = r.varint()
            if amount > 0xFFFF:
                r.fail("incremented %s adds %d (below 65,536)" % ("write" if write else "read", amount), at)
            start = len(data)                       # materialised after the content
            data += ((u16(data, last[1]) + amount) & 0xFFFF).to_bytes(2, "little")
            payload = bytes(data[start:start + 2])
            remember(address, start, 2)
            entered(address, 2)
            if minor >= 7:                          # as a repeated 2-byte access
                if recent_same():
                    index[index_next], index_next = [address, u16(data, start)], (index_next + 1) & 3
                elif not write:
                    move_ring(near(rings, address), address, u16(data, start))
            if write:
                write_end = (address + 2) & MASK64
            else:
                head_read = start
                read_end = (address + 2) & MASK64
            body = ("mem-write" if write else "mem-read", address, 2, True, payload, 0)
        elif minor >= 6 and aux == 12:              # kind 15, aux 12: a read of recent read i's bytes (1.6)
            address = address_of(read_end, at)
            k = r.varint()
            if k >= len(recent):
                r.fail("recalled read names recent read %d; the chunk has fewer" % k, at)
            start, length = recent[k]
            payload = bytes(data[start:start + length])
            recent = [(start, length)] + recent[:3]
            remember(address, start, length)
            entered(address, length)
            read_end = (address + length) & MASK64
            body = ("mem-read", address, length, True, payload, 0)
        elif minor >= 7 and aux == 13:              # kind 15, aux 13: an access where a ring cursor points (1.7)
            v = r.varint()
            start = len(data)                       # materialised after the content
            j = (v >> 2) & 1
            if v & 3 == 3:                          # the used element after used cursor j's
                length = r.varint()
                if v >> 3 > 0xFFFFFFFF or length > 0xFFFFFFFF:
                    r.fail("used element cursor record of id change code %d and len %d (each below 2^32)" % (v >> 3, length), at)
                address, write, n = (useds[j][0] + 8) & MASK64, True, 8
                used = [(useds[j][1] + unzigzag(v >> 3, 32)) & 0xFFFFFFFF, length]
                move_used(j, address, used[0])
                data += (used[0] | used[1] << 32).to_bytes(8, "little")
            else:
                change = v >> 3 if v & 3 == 1 else v >> 4
                if change > 0xFFFF:
                    r.fail("cursor record's change %d is not below 65,536" % change, at)
                if v & 3 == 1:                      # the avail ring slot after ring cursor j's
                    address, value, write = (rings[j][0] + 2) & MASK64, (rings[j][1] + unzigzag(change, 16)) & 0xFFFF, False
                    move_ring(j, address, value)
                else:                               # index cache entry (v >> 1) & 3; bit 3: a write
                    entry = index[(v >> 1) & 3]
                    entry[1] = (entry[1] + change) & 0xFFFF
                    address, value, write = entry[0], entry[1], bool(v & 8)
                n = 2
                data += value.to_bytes(2, "little")
                if not write:
                    head_read = start
            entered(address, n)
            if write:
                write_end = (address + n) & MASK64
            else:
                read_end = (address + n) & MASK64
            body = ("mem-write" if write else "mem-read", address, n, True, bytes(data[start:start + n]), 0)
        elif minor >= 5 and aux == 9:               # kind 15, aux 9: a used publication of the newest 8-byte write (1.5)
            queue = r.narrow(16, "queue")
            if not used_written and minor < 7:
                r.fail("used as written, but no 8-byte write came before it in this chunk", at)
            body = ("used", queue, used[0], used[1])
        else:                                       # kind 15: context records, not events
            v = r.varint()
            if aux == 0:
                if v >= nics:
                    r.fail("event names NIC %d; the trace has %d" % (v, nics), at)
                nic = v
            elif aux == 1:
                if v > 0xFFFFFFFF:
                    r.fail("vCPU %d out of range" % v, at)
                vcpu = v
            else:
                r.fail("unknown context record %d" % aux, at)
            continue
        yield number, time, nic, body
        number += 1
    if number - first != e["count"]:
        r.fail("chunk holds %d events, the index says %d" % (number - first, e["count"]))


def read_details(r, at):
    """"detail count (<= 3), details": poison, warning and vhost values."""
    n = r.varint()
    if n > 3:
        r.fail("%d details (at most 3)" % n, at)
    return [r.varint() for _ in range(n)]


# ---------------------------------------------------------------------------
# "The JSON dump": names and formats
# ---------------------------------------------------------------------------

# "Counters": the names by index.
COUNTERS = ["tx_packets", "tx_bytes", "rx_packets", "rx_bytes", "tx_dropped_no_rx_buffer",
            "tx_dropped_rx_poisoned", "tx_chain_invalid", "tx_oversize_dropped", "rx_chain_invalid",
            "rx_write_failed", "tx_add_used_failures", "rx_add_used_failures", "invalid_avail_idx_count",
            "ctrl_mq_set", "ctrl_chain_invalid", "ctrl_add_used_failures"]

REGISTERS = {0x000: "MagicValue", 0x004: "Version", 0x008: "DeviceID", 0x00c: "VendorID",
             0x010: "DeviceFeatures", 0x014: "DeviceFeaturesSel", 0x020: "DriverFeatures",
             0x024: "DriverFeaturesSel", 0x030: "QueueSel", 0x034: "QueueNumMax", 0x038: "QueueNum",
             0x044: "QueueReady", 0x050: "QueueNotify", 0x060: "InterruptStatus", 0x064: "InterruptACK",
             0x070: "Status", 0x080: "QueueDescLow", 0x084: "QueueDescHigh", 0x090: "QueueDriverLow",
             0x094: "QueueDriverHigh", 0x0a0: "QueueDeviceLow", 0x0a4: "QueueDeviceHigh",
             0x0fc: "ConfigGeneration"}


def register_name(offset):
    if offset in REGISTERS:
        return REGISTERS[offset]
    return "config+0x%x" % (offset - 0x100) if offset >= 0x100 else "0x%x" % offset


def interrupt_name(bits):
    parts = [name for bit, name in ((1, "vring"), (2, "config")) if bits & bit]
    if bits & ~3:
        parts.append("0x%x" % (bits & ~3))
    return "|".join(parts) or "none"


def padded(details):
    return (details + [0, 0, 0])[:3]


def poison_text(code, details):
    a, b, c = padded(details)
    if code == 0:
        return "queue not ready"
    if code == 1:
        return "avail.idx %d is more than %d ahead of next_avail %d" % (a & 0xFFFF, c & 0xFFFF, b & 0xFFFF)
    if code == 2:
        return "descriptor index %d out of range" % (a & 0xFFFF)
    if code == 3:
        return "ring address overflows"
    if code == 4:   # the length is shown as a signed 64-bit number
        return "guest memory access of %d bytes at 0x%x touches unmapped memory" % (b - (b >> 63 << 64), a)
    return "code %d" % code


def warning_text(code, details):
    a, b, _ = padded(details)
    if code == 0:
        return "queue kick before guest memory was bound; ignored"
    if code == 1:
        return "FEATURES_OK refused: driver features 0x%x, offered 0x%x" % (a, b)
    return "code %d" % code


def vhost_text(code, q, v):
    shape = (code, len(v))
    if shape == (0, 1):
        return "set-features 0x%x" % v[0]
    if shape == (1, 1) and v[0] <= 0xFFFF:
        return "ring-size q%d %d" % (q, v[0])
    if shape == (2, 3):
        return "ring-addresses q%d desc 0x%x avail 0x%x used 0x%x" % (q, v[0], v[1], v[2])
    if shape == (3, 1) and v[0] <= 0xFFFF:
        return "ring-base q%d %d" % (q, v[0])
    if shape == (4, 1) and v[0] <= 1:
        return "ring-enable q%d %d" % (q, v[0])
    if shape in ((5, 0), (6, 0)):
        return "%s q%d" % ("kick" if code == 5 else "ring-stop", q)
    if shape == (7, 0):
        return "reset"
    return "op %d q%d %s" % (code, q, " ".join("0x%x" % x for x in v))


def json_line(number, t, nic, body):
    kind = body[0]
    s = '{"n":%d,"t":%d,"nic":%d,"kind":"%s"' % (number, t, nic, kind)
    if kind == "mmio":
        _, offset, width, op, value, vcpu = body
        s += ',"offset":%d,"register":"%s","width":%d,"op":"%s","value":%d,"vcpu":%d' % (
            offset, register_name(offset), width, op, value, vcpu)
    elif kind == "mem-read" or kind == "mem-write":
        _, address, length, ok, payload, not_stored = body
        s += ',"address":%d,"length":%d,"ok":%s,"bytes":"%s"' % (
            address, length, "true" if ok else "false", payload.hex())
        if not_stored:                              # (1.3) a snaplen left the rest out
            s += ',"not_stored":%d' % not_stored
    elif kind == "chain":
        s += ',"queue":%d,"head":%d,"descriptors":[%s]' % (body[1], body[2], ",".join(
            '{"addr":%d,"len":%d,"flags":%d,"next":%d}' % d for d in body[3]))
    elif kind == "used":
        s += ',"queue":%d,"id":%d,"len":%d' % body[1:]
    elif kind == "counter":
        s += ',"counter":"%s","value":%d' % (COUNTERS[body[1]], body[2])
    elif kind == "irq":
        s += ',"interrupt":"%s","bits":%d' % (interrupt_name(body[1]), body[1])
    elif kind == "poison":
        s += ',"queue":%d,"error":"%s"' % (body[1], poison_text(body[2], body[3]))
    elif kind in ("status", "features", "pairs"):
        s += ',"old":%d,"new":%d' % body[1:]
    elif kind == "warning":
        s += ',"warning":"%s"' % warning_text(body[1], body[2])
    elif kind == "memory":
        s += ',"bound":%s' % ("true" if body[1] else "false")
    elif kind == "vhost":
        _, code, queue, values = body
        s += ',"op":"%s","code":%d,"queue":%d,"values":[%s]' % (
            vhost_text(code, queue, values), code, queue, ",".join("%d" % v for v in values))
    elif kind == "marker":
        _, code, values = body
        s += ',"marker":"%s","code":%d,"values":[%s]' % (
            marker_text(code, values), code, ",".join("%d" % v for v in values))
    return s + "}\n"


def marker_text(code, v):
    if code == 1:
        return "trigger fired" + (" at event %d" % v[0] if v else "")
    return "code %d %s" % (code, " ".join("%d" % x for x in v))


# ---------------------------------------------------------------------------
# The whole file: "A reader tells three states apart"
# ---------------------------------------------------------------------------

def dump(path, out):
    f = File(path)
    header, header_end = read_header(f)
    first_event = header.get("first_event", 0)     # (1.3) where a window starts
    chunks = read_index(f, header_end, first_event)
    if chunks is None:                              # no footer: a recorder died
        chunks = scan_partial(f, header_end, first_event)
    if first_event and chunks and not chunks[0]["flags"] & FLAG_CHECKPOINT:
        raise Corrupt("byte %d (chunk 0): the trace's window starts at event %d, but its first chunk has no checkpoint"
                      % (chunks[0]["offset"], first_event))
    start = chunks[0]["time"] if chunks else 0      # "t" counts from the first chunk's timestamp
    for i, e in enumerate(chunks):
        lines = []
        try:
            for number, time, nic, body in decode_chunk(chunk_content(f, e, i), header["nics"], e, i, header["minor"]):
                lines.append(json_line(number, time - start if time >= start else 0, nic, body))
        finally:
            out.write("".join(lines))


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: vtrace_decode.py TRACE.vtrace\n")
        return 2
    out = open(sys.stdout.fileno(), "w", encoding="ascii", newline="\n", buffering=1 << 20, closefd=False)
    try:
        dump(argv[1], out)
    except Corrupt as x:
        out.flush()
        sys.stderr.write("vtrace_decode: %s: %s\n" % (argv[1], x))
        return 2
    except OSError as x:
        out.flush()
        sys.stderr.write("vtrace_decode: %s: %s\n" % (argv[1], x.strerror or x))
        return 2
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
