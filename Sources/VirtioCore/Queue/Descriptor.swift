//! The split-ring descriptor (virtio v1.2 §2.7.5).

/// One 16-byte split-ring descriptor: `addr` le64, `len` le32, `flags` le16, `next` le16.
public struct Descriptor: Hashable, Sendable, Codable {
    /// Flag bits of a descriptor (virtio v1.2 §2.7.5).
    public struct Flags: OptionSet, Hashable, Sendable, Codable {
        public var rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        /// VIRTQ_DESC_F_NEXT: the chain continues at `next`.
        public static let next = Flags(rawValue: 1)
        /// VIRTQ_DESC_F_WRITE: the buffer is device-writable.
        public static let write = Flags(rawValue: 2)
        /// VIRTQ_DESC_F_INDIRECT: the buffer is a table of descriptors.
        public static let indirect = Flags(rawValue: 4)
    }

    public var addr: UInt64
    public var len: UInt32
    public var flags: Flags
    public var next: UInt16

    public init(addr: UInt64, len: UInt32, flags: Flags = [], next: UInt16 = 0) {
        self.addr = addr
        self.len = len
        self.flags = flags
        self.next = next
    }

    /// Size of a descriptor in the table: 16 bytes.
    public static let size: UInt64 = 16

    /// Whether the device may write the buffer.
    @inlinable public var isWriteOnly: Bool { flags.contains(.write) }

    /// Decodes the 16-byte little-endian wire form.
    @inlinable
    public init(wire: UnsafeRawBufferPointer) {
        addr = UInt64(littleEndian: wire.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        len = UInt32(littleEndian: wire.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        flags = Flags(rawValue: UInt16(littleEndian: wire.loadUnaligned(fromByteOffset: 12, as: UInt16.self)))
        next = UInt16(littleEndian: wire.loadUnaligned(fromByteOffset: 14, as: UInt16.self))
    }

    /// The 16-byte little-endian wire form.
    public var wireBytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        out.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: addr.littleEndian, toByteOffset: 0, as: UInt64.self)
            raw.storeBytes(of: len.littleEndian, toByteOffset: 8, as: UInt32.self)
            raw.storeBytes(of: flags.rawValue.littleEndian, toByteOffset: 12, as: UInt16.self)
            raw.storeBytes(of: next.littleEndian, toByteOffset: 14, as: UInt16.self)
        }
        return out
    }
}

/// Ring layout constants (virtio v1.2 §2.7.6, §2.7.8).
public enum RingLayout {
    /// avail ring: flags (le16) + idx (le16) before the ring entries.
    public static let availHeaderSize: UInt64 = 4
    /// avail ring entry: one le16 descriptor index.
    public static let availElementSize: UInt64 = 2
    /// used ring: flags (le16) + idx (le16) before the ring entries.
    public static let usedHeaderSize: UInt64 = 4
    /// used ring entry: id (le32) + len (le32).
    public static let usedElementSize: UInt64 = 8
    /// Required alignments of the three areas (virtio v1.2 §2.7, table "Virtqueue Part Alignment").
    public static let descAlignment: UInt64 = 16
    public static let availAlignment: UInt64 = 2
    public static let usedAlignment: UInt64 = 4

    /// Bytes taken by a descriptor table of `size` entries.
    public static func descTableBytes(size: UInt16) -> UInt64 { UInt64(size) * Descriptor.size }
    /// Bytes taken by an avail ring of `size` entries (with used_event).
    public static func availRingBytes(size: UInt16) -> UInt64 { availHeaderSize + UInt64(size) * availElementSize + 2 }
    /// Bytes taken by a used ring of `size` entries (with avail_event).
    public static func usedRingBytes(size: UInt16) -> UInt64 { usedHeaderSize + UInt64(size) * usedElementSize + 2 }
}
