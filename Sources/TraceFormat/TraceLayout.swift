//! Magic numbers, sizes and limits of the container (docs/trace-format.md).

/// Constants of the .vtrace container. The file is a valid zstd stream:
/// metadata lives in zstd skippable frames (magic 0x184D2A50–0x184D2A5F,
/// then a u32 little-endian length), events in ordinary zstd frames.
public enum TraceLayout {
    /// Skippable-frame magic of the header frame (first in the file).
    public static let headerFrameMagic: UInt32 = 0x184D_2A56
    /// Skippable-frame magic of a chunk entry (precedes each chunk).
    public static let entryFrameMagic: UInt32 = 0x184D_2A57
    /// Skippable-frame magic of the final index.
    public static let indexFrameMagic: UInt32 = 0x184D_2A58
    /// Magic of an ordinary zstd frame.
    public static let zstdFrameMagic: UInt32 = 0xFD2F_B528
    /// First 8 bytes of the header payload.
    public static let headerMagic: [UInt8] = Array("VTRACE\u{0}\u{1}".utf8)
    /// Last 4 bytes of a complete trace ("VTIX").
    public static let footerMagic: UInt32 = 0x5849_5456
    /// Bytes of one index entry.
    public static let entrySize = 44
    /// Bytes of the footer at the end of the index frame.
    public static let footerSize = 24
    /// Skippable frame header: magic u32 + length u32.
    public static let frameHeaderSize = 8

    /// A chunk is cut at the first access boundary past this many uncompressed bytes.
    public static let chunkTargetSize = 1 << 20
    /// Hard limit of one chunk's uncompressed size; a reader refuses more, so a
    /// hostile file cannot make it allocate more. A single access that
    /// produces more events than this is split into continuation chunks.
    public static let chunkHardLimit = 8 << 20
    /// Largest header frame a reader accepts.
    public static let maxHeaderSize = 1 << 20
    public static let maxNICs = 64
    public static let maxMemoryRegions = 1024
    /// Largest chunk count a reader accepts from an index (a 2^32-chunk index would be 176 GiB).
    public static let maxChunks = 1 << 26
}
