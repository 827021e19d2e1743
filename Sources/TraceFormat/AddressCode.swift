//! How a memory record of format 1.5 names its address.

/// A 1.5 memory record (kinds 2 and 3, the partial record, the repeated
/// read and write) names its address with one varint `v` whose low two bits
/// say how (docs/trace-format.md, *Address codes*):
///
/// - 0 (``delta``): `v >> 2` is the zigzag delta from the previous read's
///   end (a read) or write's end (a write), as in 1.4;
/// - 1 (``same``): the address of the memory access `k = (v >> 2) + 1`
///   back in this chunk (reads and writes alike, every memory record);
/// - 2 (``end``): the end (address + length) of access `k` back;
/// - 3 (``other``): `v >> 2 == 0`: the address follows as a varint;
///   otherwise `w = (v >> 2) - 1` names descriptor `w & 3` of the chunk's
///   last chain event, at offset `w >> 2` into its buffer.
///
/// A ring slot, a descriptor and a used element are the next after the one
/// the device touched a frame before; a ring index is the same address as a
/// frame before; a frame's bytes are inside the chain just popped. Where a
/// driver repeats itself, its frames then encode to the same bytes, which
/// zstd compresses in long matches (docs/performance.md, issue 24).
public enum AddressCode {
    public static let delta: UInt64 = 0
    public static let same: UInt64 = 1
    public static let end: UInt64 = 2
    public static let other: UInt64 = 3
    /// Most accesses back a code reaches: 256 in format 1.5, 4096 from 1.6
    /// (``RepeatTable/historySize``), so that a ring slot or used element
    /// the device touched once round a 256-entry ring before is the same
    /// access (``same``) rather than the end of its neighbour's.
    @inlinable public static func reach(recalls: Bool) -> Int { recalls ? RepeatTable.historySize : 256 }
    /// Descriptors of the last chain a code can name.
    public static var chainDescriptors: Int { RecentChain.capacity }
    /// The code of offset `offset` (below 2^58) into descriptor `index` of the last chain.
    @inlinable @inline(__always)
    static func inChain(_ index: Int, offset: UInt64) -> UInt64 { (1 &+ (UInt64(index) | offset << 2)) << 2 | other }
}

/// The buffers of the chunk's last chain event (up to its first four
/// descriptors), which a 1.5 address code may name; the encoder and the
/// decoder keep the same. Empty at the start of a chunk.
@usableFromInline
struct RecentChain {
    @usableFromInline var a0: UInt64 = 0, a1: UInt64 = 0, a2: UInt64 = 0, a3: UInt64 = 0
    @usableFromInline var l0: UInt64 = 0, l1: UInt64 = 0, l2: UInt64 = 0, l3: UInt64 = 0
    /// Descriptors held (at most ``capacity``).
    @usableFromInline var count = 0

    @usableFromInline init() {}

    @inlinable static var capacity: Int { 4 }

    /// Starts a chain: none of its descriptors seen yet.
    @inlinable @inline(__always)
    mutating func begin() { count = 0 }

    /// The chain's next descriptor (beyond the fourth: ignored).
    @inlinable @inline(__always)
    mutating func add(addr: UInt64, len: UInt32) {
        guard count < Self.capacity else { return }
        put(count, addr: addr, len: len)
        count &+= 1
    }

    /// Descriptor `i` of the chain (0 to 3), the count set by the caller.
    @inlinable @inline(__always)
    mutating func put(_ i: Int, addr: UInt64, len: UInt32) {
        switch i {
        case 0: (a0, l0) = (addr, UInt64(len))
        case 1: (a1, l1) = (addr, UInt64(len))
        case 2: (a2, l2) = (addr, UInt64(len))
        default: (a3, l3) = (addr, UInt64(len))
        }
    }

    /// Descriptor `j`'s address, if the chain had it.
    @inlinable @inline(__always)
    func address(_ j: Int) -> UInt64? {
        guard j < count else { return nil }
        switch j {
        case 0: return a0
        case 1: return a1
        case 2: return a2
        default: return a3
        }
    }

    /// The descriptor whose buffer holds `address`, and the offset into it.
    @inlinable @inline(__always)
    func holding(_ address: UInt64) -> (index: Int, offset: UInt64)? {
        if count > 0 && address &- a0 < l0 { return (0, address &- a0) }
        if count > 1 && address &- a1 < l1 { return (1, address &- a1) }
        if count > 2 && address &- a2 < l2 { return (2, address &- a2) }
        if count > 3 && address &- a3 < l3 { return (3, address &- a3) }
        return nil
    }
}
