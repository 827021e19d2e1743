//! The last small memory access at each address, for the repeat records (format 1.4).

import HostPrimitives

/// Within one chunk, the last successful memory access of 1 to 16 bytes at
/// each address, kept by the encoder and the decoder alike: a read or write
/// that finds its address here with the same length and the same bytes is
/// encoded as a *repeat* record (its tag and address alone), and decodes to
/// those bytes again. Ring indices the driver has not moved, ring slots and
/// descriptors a driver fills the same way each time round the ring, and
/// virtio-net headers are such accesses.
///
/// Direct-mapped: an address's slot is ``slot(of:)``; a later access whose
/// address lands in the same slot takes it. Each slot holds the address and
/// where the access's bytes are in the chunk's content (their offset and
/// length), so nothing is copied. Empty at the start of every chunk (chunks
/// decode alone). docs/trace-format.md, *Repeat records*, specifies the same.
///
/// Its owner copies it before writing when another holds it too (a decoder
/// is a value: two copies of one decode on their own). Its 128 KiB come from
/// a small process-wide pool, so a table per chunk costs no allocation.
@usableFromInline
final class RepeatTable {
    /// Slots in the table.
    @usableFromInline static var slots: Int { 8192 }
    /// Longest access kept.
    @usableFromInline static var maxLength: Int { 16 }

    /// Per slot two words: the address, and `offset | length << 32 |
    /// ordinal << 40` (length 0: empty; the ordinal, modulo 2^24, is the
    /// encoder's alone: which memory access of the chunk was last at the
    /// address, for the address codes of ``AddressCode``). Then the access
    /// history: ``historySize`` pairs of words (address, length).
    @usableFromInline let words: UnsafeMutablePointer<UInt64>
    /// Memory accesses of the chunk so far (format 1.5: each enters the history).
    @usableFromInline var accesses = 0

    /// Memory accesses the history keeps: an address code refers to one of
    /// the last 4096 (256 in format 1.5: ``AddressCode/reach(recalls:)``).
    @inlinable static var historySize: Int { 4096 }
    /// Words of a table: the slots, then the history.
    static var wordCount: Int { 2 * slots + 2 * historySize }

    /// An empty table.
    @usableFromInline init() {
        words = RepeatTableMemory.shared.take()
        clear()
    }

    /// A table holding what `other` holds.
    @usableFromInline init(copying other: RepeatTable) {
        words = RepeatTableMemory.shared.take()
        words.update(from: other.words, count: Self.wordCount)
        accesses = other.accesses
    }

    deinit { RepeatTableMemory.shared.give(words) }

    /// Empties every slot (a new chunk).
    @usableFromInline func clear() {
        words.update(repeating: 0, count: 2 * Self.slots)
        accesses = 0
    }

    /// The slot of `address`: the top 13 bits of `(address >> 1) × 0x9E3779B97F4A7C15`
    /// (modulo 2^64).
    @inlinable @inline(__always)
    static func slot(of address: UInt64) -> Int {
        Int(truncatingIfNeeded: ((address >> 1) &* 0x9E37_79B9_7F4A_7C15) >> 51)
    }

    /// The last access at `address` (where its bytes are in the content and
    /// how many), if its slot holds one at that address.
    @inlinable @inline(__always)
    func lookup(_ address: UInt64) -> (offset: Int, length: Int)? {
        lookupWithOrdinal(address).map { ($0.offset, $0.length) }
    }

    /// The same, with the ordinal the encoder kept (``touch(at:)``) and
    /// where the slot's words are (for ``touch(at:)`` and ``record(at:_:length:offset:)``
    /// without hashing the address again).
    @inlinable @inline(__always)
    func lookupWithOrdinal(_ address: UInt64) -> (offset: Int, length: Int, ordinal: Int, at: Int)? {
        let at = 2 &* Self.slot(of: address)
        let w = words[at &+ 1]
        guard words[at] == address, w >> 32 & 0xFF != 0 else { return nil }
        return (Int(truncatingIfNeeded: w & 0xFFFF_FFFF), Int(truncatingIfNeeded: w >> 32 & 0xFF), Int(truncatingIfNeeded: w >> 40), at)
    }

    /// How many accesses back (less one: what an address code holds) the
    /// access the encoder marked with `ordinal` is, if it is within `limit`
    /// (the format's reach). The ordinal is modulo 2^24, exact while the
    /// chunk has made fewer accesses (chunks are cut long before).
    @inlinable @inline(__always)
    func reach(_ ordinal: Int, limit: Int) -> UInt64? {
        let back = accesses &- ordinal &- 1
        return accesses < 0xFF_FFFF && back >= 0 && back < limit ? UInt64(back) : nil
    }

    /// Marks the access whose slot's words start at `slot` (from
    /// ``lookupWithOrdinal(_:)``) as the chunk's newest memory access (the
    /// encoder's ordinal; it leaves the bytes where they are).
    @inlinable @inline(__always)
    func touch(at slot: Int) {
        let at = slot &+ 1
        words[at] = words[at] & 0xFF_FFFF_FFFF | UInt64(truncatingIfNeeded: accesses & 0xFF_FFFF) << 40
    }

    /// Counts one more memory access of the chunk without entering it in the
    /// history: the encoder's side, which finds accesses by their ordinals
    /// (``touch(at:)``, ``reach(_:limit:)``) and never reads the history back.
    @inlinable @inline(__always)
    func countAccess() { accesses &+= 1 }

    /// Enters an access of `length` bytes at `address` in the history (every
    /// memory access of a 1.5 chunk, in order: the decoder's side).
    @inlinable @inline(__always)
    func pushHistory(_ address: UInt64, length: UInt64) {
        let at = 2 &* Self.slots &+ 2 &* (accesses & (Self.historySize &- 1))
        words[at] = address
        words[at &+ 1] = length
        accesses &+= 1
    }

    /// The access `k` back in the history (1: the newest), if the chunk had
    /// that many and `k` is within `limit` (the format's reach).
    @inlinable @inline(__always)
    func history(_ k: UInt64, limit: Int) -> (address: UInt64, length: UInt64)? {
        guard k >= 1, k <= UInt64(min(accesses, limit)) else { return nil }
        let at = 2 &* Self.slots &+ 2 &* ((accesses &- Int(k)) & (Self.historySize &- 1))
        return (words[at], words[at &+ 1])
    }

    /// The access of `length` bytes (1...16) at `address` whose bytes start at
    /// `offset` in the content is the last at its address.
    @inlinable @inline(__always)
    func record(_ address: UInt64, length: Int, offset: Int) {
        record(at: 2 &* Self.slot(of: address), address, length: length, offset: offset)
    }

    /// ``record(_:length:offset:)`` into the slot whose words start at `at`
    /// (from ``lookupWithOrdinal(_:)``), which must be `address`'s.
    @inlinable @inline(__always)
    func record(at: Int, _ address: UInt64, length: Int, offset: Int) {
        words[at] = address
        words[at &+ 1] = UInt64(truncatingIfNeeded: offset) | UInt64(truncatingIfNeeded: length) << 32
            | UInt64(truncatingIfNeeded: accesses & 0xFF_FFFF) << 40
    }
}

/// Tables' memory handed back, for the next table to take (at most a few kept).
final class RepeatTableMemory: @unchecked Sendable {
    static let shared = RepeatTableMemory()
    let mutex = Mutex()
    var free: [UnsafeMutablePointer<UInt64>] = []

    func take() -> UnsafeMutablePointer<UInt64> {
        mutex.withLock { free.popLast() } ?? .allocate(capacity: RepeatTable.wordCount)
    }

    func give(_ words: UnsafeMutablePointer<UInt64>) {
        let kept = mutex.withLock { () -> Bool in
            guard free.count < 8 else { return false }
            free.append(words)
            return true
        }
        if !kept { words.deallocate() }
    }
}
