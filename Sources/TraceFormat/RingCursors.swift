//! Format 1.7's ring cursors: where the device's next ring access will be.

/// What a 1.7 chunk keeps of the rings the device walks, the encoder and the
/// decoder alike, so that a ring access at the place they predict is one
/// small ``CursorRecord`` (docs/trace-format.md, *Ring cursors*). Reset at
/// each chunk.
///
/// - The **index cache**: four 2-byte addresses the chunk keeps touching (a
///   queue's avail index, used index) and their last values. A successful
///   2-byte access written as a repeat or incremented record whose address
///   code is ``AddressCode/same`` within ``recentBack`` accesses enters it,
///   in entry ``next``, which then moves on round the four. An access at an
///   entry's address is a cursor record of the value's change.
/// - Two **ring cursors**: where the last successful 2-byte reads that
///   did not enter the cache were, ring cursor records among them (avail ring slots:
///   two, so that a TX and an RX queue walked in turn each keep theirs),
///   the one moved last first. A read 2 bytes after one is a cursor record
///   of the value's change (the next head); a read elsewhere takes the
///   cursor near it (``near``: the same ring, wrapping round), else the
///   one moved less recently.
/// - Two **used cursors**: where the last successful 8-byte writes were,
///   and their ids (used elements); the same for a write 8 bytes after one.
/// - The **used write**: the newest successful 8-byte write's id and len,
///   which a used publication may repeat (every format from 1.5).
///
/// An empty entry or cursor is at address 2^64 − 1 with value 0: a cache
/// record names that address itself; a cursor's next slot is address 1
/// (2-byte) or 7 (8-byte), as any other.
@usableFromInline
struct RingCursors {
    @usableFromInline var a0: UInt64 = .max, a1: UInt64 = .max, a2: UInt64 = .max, a3: UInt64 = .max
    @usableFromInline var v0: UInt16 = 0, v1: UInt16 = 0, v2: UInt16 = 0, v3: UInt16 = 0
    /// The entry the next address entering the cache takes.
    @usableFromInline var next = 0
    /// Ring cursor `j`'s address and value, the one moved last first.
    @usableFromInline var ring0: UInt64 = .max, ring1: UInt64 = .max
    @usableFromInline var ringValue0: UInt16 = 0, ringValue1: UInt16 = 0
    /// Used cursor `j`'s address and id, the one moved last first.
    @usableFromInline var used0: UInt64 = .max, used1: UInt64 = .max
    @usableFromInline var usedID0: UInt32 = 0, usedID1: UInt32 = 0
    /// The id and len of the newest successful 8-byte write (in every
    /// format: a ``PredictedRecord/usedAsWritten``'s), as the encoder keeps
    /// them (the decoder keeps where their bytes are: ``ChunkDecoder``'s `usedWrite`).
    @usableFromInline var writtenID: UInt32 = 0, writtenLen: UInt32 = 0

    @inlinable init() {}

    /// How close the last access at an index's address must be for it to
    /// enter the cache: its address code's `w` (accesses back, less one) below this.
    @inlinable static var recentBack: Int { 64 }

    /// The entry holding `address`, or -1.
    @inlinable @inline(__always)
    func entry(of address: UInt64) -> Int {
        if address == a0 { return 0 }
        if address == a1 { return 1 }
        if address == a2 { return 2 }
        if address == a3 { return 3 }
        return -1
    }

    /// Entry `i`'s address (`i` below 4).
    @inlinable @inline(__always)
    func address(_ i: Int) -> UInt64 {
        switch i & 3 { case 0: a0; case 1: a1; case 2: a2; default: a3 }
    }

    /// Entry `i`'s value.
    @inlinable @inline(__always)
    func value(_ i: Int) -> UInt16 {
        switch i & 3 { case 0: v0; case 1: v1; case 2: v2; default: v3 }
    }

    @inlinable @inline(__always)
    mutating func set(_ i: Int, _ v: UInt16) {
        switch i & 3 { case 0: v0 = v; case 1: v1 = v; case 2: v2 = v; default: v3 = v }
    }

    /// `address` enters the cache with `value`, in entry ``next``.
    @inlinable @inline(__always)
    mutating func enter(_ address: UInt64, _ value: UInt16) {
        switch next { case 0: a0 = address; v0 = value; case 1: a1 = address; v1 = value; case 2: a2 = address; v2 = value; default: a3 = address; v3 = value }
        next = (next &+ 1) & 3
    }

    /// Ring cursor `j`'s address and value.
    @inlinable @inline(__always)
    func ring(_ j: Int) -> (address: UInt64, value: UInt16) { j & 1 == 0 ? (ring0, ringValue0) : (ring1, ringValue1) }

    /// How near (in bytes, either way) a cursor's address must be for an
    /// access that misses it to take it rather than the one used less
    /// recently: one ring's accesses stay with one cursor when the device
    /// wraps round the ring (a split ring's avail or used ring of up to
    /// 512 entries spans less than 4 KiB).
    @inlinable static var near: UInt64 { 4096 }

    /// The ring cursor a read at `address` that is no cursor record takes:
    /// one within ``near`` of it (cursor 0 first), else cursor 1 (the one
    /// moved less recently).
    @inlinable @inline(__always)
    func ringCursor(taking address: UInt64) -> Int {
        address &- ring0 &+ Self.near < 2 &* Self.near ? 0 : 1
    }

    /// The used cursor a write at `address` that is no cursor record takes, likewise.
    @inlinable @inline(__always)
    func usedCursor(taking address: UInt64) -> Int {
        address &- used0 &+ Self.near < 2 &* Self.near ? 0 : 1
    }

    /// Ring cursor `j` moves to `address` with `value` and becomes cursor
    /// 0 (cursor 0, if it was not the one, becomes cursor 1): the cursors
    /// are kept in the order they last moved, so that the one a streaming
    /// queue keeps hitting is checked first.
    @inlinable @inline(__always)
    mutating func moveRing(_ j: Int, _ address: UInt64, _ value: UInt16) {
        if j & 1 != 0 { (ring1, ringValue1) = (ring0, ringValue0) }
        (ring0, ringValue0) = (address, value)
    }

    /// Used cursor `j`'s address and id.
    @inlinable @inline(__always)
    func used(_ j: Int) -> (address: UInt64, id: UInt32) { j & 1 == 0 ? (used0, usedID0) : (used1, usedID1) }

    /// Used cursor `j` moves to `address` with `id` and becomes cursor 0, likewise.
    @inlinable @inline(__always)
    mutating func moveUsed(_ j: Int, _ address: UInt64, _ id: UInt32) {
        if j & 1 != 0 { (used1, usedID1) = (used0, usedID0) }
        (used0, usedID0) = (address, id)
    }

    /// A successful 2-byte access at `address` of `value` that is no cursor
    /// record: it enters the cache when `recent` (written as a repeat or
    /// incremented record whose address code names the same address with a
    /// `w` below ``recentBack``: at most that many accesses back); otherwise a read moves a ring
    /// cursor there (``ringCursor(taking:)``).
    @inlinable @inline(__always)
    mutating func indexAccessed(_ address: UInt64, _ value: UInt16, recent: Bool, isRead: Bool) {
        if recent {
            enter(address, value)
        } else if isRead {
            moveRing(ringCursor(taking: address), address, value)
        }
    }

    /// The zigzag code of the change from `old` to `new` (modulo 2^16, as a signed 16-bit change).
    @inlinable @inline(__always)
    static func zigzag(_ new: UInt16, from old: UInt16) -> UInt64 {
        let d = Int16(bitPattern: new &- old)
        return UInt64(UInt16(bitPattern: (d << 1) ^ (d >> 15)))
    }

    /// The same for 32 bits.
    @inlinable @inline(__always)
    static func zigzag(_ new: UInt32, from old: UInt32) -> UInt64 {
        let d = Int32(bitPattern: new &- old)
        return UInt64(UInt32(bitPattern: (d << 1) ^ (d >> 31)))
    }

    /// The change a zigzag code below 2^16 stands for (modulo 2^16).
    @inlinable @inline(__always)
    static func change16(_ z: UInt64) -> UInt16 {
        let z = UInt16(truncatingIfNeeded: z)
        return (z >> 1) ^ (0 &- (z & 1))
    }

    /// The change a zigzag code below 2^32 stands for (modulo 2^32).
    @inlinable @inline(__always)
    static func change32(_ z: UInt64) -> UInt32 {
        let z = UInt32(truncatingIfNeeded: z)
        return (z >> 1) ^ (0 &- (z & 1))
    }
}
