//! A write position inside an encoder's buffer, for one record at a time.

/// Where the next byte of a record goes. An encoder reserves room for a whole
/// record once (``EncoderBuffer/tail(reserving:)``), writes its fields through
/// this pointer, which stays in a register, and sets the buffer's count once
/// at the end (``EncoderBuffer/commit(_:)``): no capacity check or count
/// update per field.
@usableFromInline struct RecordCursor {
    @usableFromInline var p: UnsafeMutableRawPointer

    @inlinable @inline(__always)
    init(_ p: UnsafeMutableRawPointer) { self.p = p }

    /// Most bytes a varint takes.
    @inlinable static var maxVarint: Int { 10 }

    @inlinable @inline(__always)
    mutating func byte(_ v: UInt8) {
        p.storeBytes(of: v, as: UInt8.self)
        p += 1
    }

    /// Unsigned LEB128 (as ``ByteWriter/varint(_:)``).
    @inlinable @inline(__always)
    mutating func varint(_ value: UInt64) {
        if value < 0x80 {
            p.storeBytes(of: UInt8(truncatingIfNeeded: value), as: UInt8.self)
            p += 1
            return
        }
        if value < 0x4000 {
            // Two bytes in one store: most address deltas and lengths.
            let pair = UInt16(truncatingIfNeeded: value & 0x7F | 0x80 | (value >> 7) << 8)
            p.storeBytes(of: pair.littleEndian, toByteOffset: 0, as: UInt16.self)
            p += 2
            return
        }
        var v = value
        while v >= 0x80 {
            p.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, as: UInt8.self)
            p += 1
            v >>= 7
        }
        p.storeBytes(of: UInt8(truncatingIfNeeded: v), as: UInt8.self)
        p += 1
    }

    /// A signed value as a zigzag varint.
    @inlinable @inline(__always)
    mutating func zigzag(_ value: Int64) { varint(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }

    /// `raw`'s bytes (``copyBytes(from:to:count:)``).
    @inlinable @inline(__always)
    mutating func copy(_ raw: UnsafeRawBufferPointer) {
        let n = raw.count
        if n == 0 { return }
        copyBytes(from: raw.baseAddress!, to: p, count: n)
        p += n
    }
}
