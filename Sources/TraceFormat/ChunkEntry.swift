//! The index entry of one chunk (written before the chunk and again in the index).

/// Where a chunk is and what it holds. 44 bytes on disk, little-endian:
/// offset u64, compressed size u32, uncompressed size u32, first event u64,
/// event count u32, first timestamp u64, flags u32, CRC-32 of the compressed frame u32.
public struct ChunkEntry: Hashable, Sendable, Codable {
    /// File offset of the chunk's zstd frame.
    public var offset: UInt64
    public var compressedSize: UInt32
    public var uncompressedSize: UInt32
    public var firstEvent: UInt64
    public var eventCount: UInt32
    /// Timestamp of the first MMIO access in the chunk (monotonic ns).
    public var firstTime: UInt64
    public var flags: UInt32
    /// CRC-32 of the compressed frame's bytes.
    public var crc: UInt32

    public init(offset: UInt64, compressedSize: UInt32, uncompressedSize: UInt32, firstEvent: UInt64, eventCount: UInt32,
                firstTime: UInt64, flags: UInt32, crc: UInt32) {
        self.offset = offset
        self.compressedSize = compressedSize
        self.uncompressedSize = uncompressedSize
        self.firstEvent = firstEvent
        self.eventCount = eventCount
        self.firstTime = firstTime
        self.flags = flags
        self.crc = crc
    }

    public var hasCheckpoint: Bool { flags & UInt32(ChunkFlags.checkpoint.rawValue) != 0 }
    /// Whether the chunk ends inside an access (format 1.2): the next chunk continues it.
    public var endsInsideAccess: Bool { flags & UInt32(ChunkFlags.endsInsideAccess.rawValue) != 0 }
    public var endEvent: UInt64 { firstEvent + UInt64(eventCount) }

    func encode(into w: inout ByteWriter) {
        w.fixed(offset)
        w.fixed(compressedSize)
        w.fixed(uncompressedSize)
        w.fixed(firstEvent)
        w.fixed(eventCount)
        w.fixed(firstTime)
        w.fixed(flags)
        w.fixed(crc)
    }

    static func decode(_ r: inout ByteReader) throws(ByteReadError) -> ChunkEntry {
        ChunkEntry(offset: try r.fixed(UInt64.self), compressedSize: try r.fixed(UInt32.self),
                   uncompressedSize: try r.fixed(UInt32.self), firstEvent: try r.fixed(UInt64.self),
                   eventCount: try r.fixed(UInt32.self), firstTime: try r.fixed(UInt64.self),
                   flags: try r.fixed(UInt32.self), crc: try r.fixed(UInt32.self))
    }
}
