//! Little-endian, varint and zigzag encoding into and out of byte arrays.

/// An append-only byte buffer with the encodings the trace format uses.
public struct ByteWriter: Sendable {
    public var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    @inlinable
    public mutating func byte(_ v: UInt8) { bytes.append(v) }

    /// Unsigned LEB128: 7 bits per byte, low first, high bit = more.
    @inlinable
    public mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Signed value as zigzag varint (0, -1, 1, -2, … → 0, 1, 2, 3, …).
    @inlinable
    public mutating func zigzag(_ value: Int64) {
        varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// A fixed-width little-endian integer.
    @inlinable
    public mutating func fixed<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func append(_ raw: UnsafeRawBufferPointer) { bytes.append(contentsOf: raw) }
    public mutating func append(_ other: [UInt8]) { bytes.append(contentsOf: other) }

    /// A length-prefixed UTF-8 string.
    public mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        varint(UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    public mutating func removeAll() { bytes.removeAll(keepingCapacity: true) }
}

/// Why a read ran off its data or found a value it cannot accept.
public enum ByteReadError: Error, Hashable, Sendable {
    /// Needed `needed` more bytes at `offset`.
    case truncated(offset: Int, needed: Int)
    /// A varint longer than 10 bytes or over 64 bits, at `offset`.
    case badVarint(offset: Int)
}

/// A bounds-checked reader over bytes; every read either succeeds or throws
/// with the offset where it failed. Never traps on hostile input.
public struct ByteReader {
    public let base: UnsafeRawBufferPointer
    public var offset: Int
    public let end: Int

    public init(_ base: UnsafeRawBufferPointer, from start: Int = 0, to end: Int? = nil) {
        self.base = base
        offset = start
        self.end = min(end ?? base.count, base.count)
    }

    public var remaining: Int { end - offset }
    public var atEnd: Bool { offset >= end }

    @inlinable
    public mutating func byte() throws(ByteReadError) -> UInt8 {
        guard offset < end else { throw .truncated(offset: offset, needed: 1) }
        defer { offset += 1 }
        return base[offset]
    }

    /// Unsigned LEB128. Values of one to three bytes (most of a trace's,
    /// address deltas of up to 2^20 among them) take a short path inline;
    /// longer ones the loop.
    @inlinable @inline(__always)
    public mutating func varint() throws(ByteReadError) -> UInt64 {
        guard offset < end else { throw .truncated(offset: offset, needed: 1) }
        let b = base[offset]
        // (The offsets below are inside the buffer: no overflow to check.)
        if b < 0x80 {
            offset &+= 1
            return UInt64(b)
        }
        if offset &+ 2 < end {
            let b1 = base[offset &+ 1]
            if b1 < 0x80 {
                offset &+= 2
                return UInt64(b & 0x7F) | UInt64(b1) << 7
            }
            let b2 = base[offset &+ 2]
            if b2 < 0x80 {
                offset &+= 3
                return UInt64(b & 0x7F) | UInt64(b1 & 0x7F) << 7 | UInt64(b2) << 14
            }
        }
        return try longVarint()
    }

    @usableFromInline
    mutating func longVarint() throws(ByteReadError) -> UInt64 {
        let start = offset
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < end else { throw .truncated(offset: offset, needed: 1) }
            let b = base[offset]
            offset += 1
            if shift == 63 && b > 1 { throw .badVarint(offset: start) }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw .badVarint(offset: start) }
        }
    }

    @inlinable
    public mutating func zigzag() throws(ByteReadError) -> Int64 {
        let v = try varint()
        return Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
    }

    @inlinable
    public mutating func fixed<T: FixedWidthInteger>(_: T.Type) throws(ByteReadError) -> T {
        let n = MemoryLayout<T>.size
        guard remaining >= n else { throw .truncated(offset: offset, needed: n - remaining) }
        defer { offset += n }
        return T(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// Skips `n` bytes and returns their range.
    @inlinable
    public mutating func skip(_ n: Int) throws(ByteReadError) -> Range<Int> {
        guard n >= 0, remaining >= n else { throw .truncated(offset: offset, needed: n - remaining) }
        defer { offset += n }
        return offset..<(offset + n)
    }

    public mutating func bytes(_ n: Int) throws(ByteReadError) -> [UInt8] {
        let r = try skip(n)
        return Array(base[r])
    }

    public mutating func string(limit: Int = 1 << 20) throws(ByteReadError) -> String {
        let n = try varint()
        guard n <= UInt64(min(limit, remaining)) else { throw .truncated(offset: offset, needed: Int(min(n, UInt64(Int32.max)))) }
        let r = try skip(Int(n))
        return String(decoding: base[r], as: UTF8.self)
    }
}
