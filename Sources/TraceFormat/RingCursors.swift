//! Format 1.7's ring cursors: where the device's next ring access will be.

/// What a 1.7 chunk keeps of the rings the device walks, the encoder and the
/// decoder alike, so that a ring access at the place they predict is one
/// small ``CursorRecord`` (docs/trace-format.md, *Ring cursors*). Reset at
/// each chunk.
///
/// - The **index cache**: four 2-byte addresses the chunk keeps touching (a
///   queue's avail index, used index, event index) and their last values.
///   A successful 2-byte access written as a repeat or incremented record
///   whose address code is ``AddressCode/same`` within ``recentBack``
///   accesses enters it, in entry ``next``, which then moves on round the
///   four. An access at an entry's address is a cursor record of the value's
///   change.
/// - The **ring cursor**: the last successful 2-byte read that is neither
///   a cursor record nor entered the index cache (an avail ring slot). A
///   read 2 bytes after it is a cursor record of the value's change (the
///   next head), and moves it there.
/// - The **used cursor**: the newest successful 8-byte write, address, id
///   and len (a used element). A write 8 bytes after it is a cursor record
///   of the id's change and the len; a used publication of its id and len
///   is a ``PredictedRecord/usedAsWritten``.
///
/// An empty entry or cursor is at address 2^64 − 1 with value 0: its next
/// slot is address 1 (2-byte) or 7 (8-byte), as any other.
@usableFromInline
struct RingCursors {
    @usableFromInline var a0: UInt64 = .max, a1: UInt64 = .max, a2: UInt64 = .max, a3: UInt64 = .max
    @usableFromInline var v0: UInt16 = 0, v1: UInt16 = 0, v2: UInt16 = 0, v3: UInt16 = 0
    /// The entry the next address entering the cache takes.
    @usableFromInline var next = 0
    @usableFromInline var ringAddress: UInt64 = .max
    @usableFromInline var ringValue: UInt16 = 0
    @usableFromInline var usedAddress: UInt64 = .max
    @usableFromInline var usedID: UInt32 = 0
    @usableFromInline var usedLen: UInt32 = 0

    @inlinable init() {}

    /// How close (in memory accesses: an address code's `back` below it)
    /// the last access at an index's address must be for it to enter the cache.
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

    /// A successful 2-byte access at `address` of `value` that is no cursor
    /// record: it enters the cache when `recent` (written as a repeat or
    /// incremented record whose address code names the same address fewer
    /// than ``recentBack`` accesses back); otherwise a read moves the ring
    /// cursor there.
    @inlinable @inline(__always)
    mutating func indexAccessed(_ address: UInt64, _ value: UInt16, recent: Bool, isRead: Bool) {
        if recent {
            enter(address, value)
        } else if isRead {
            ringAddress = address
            ringValue = value
        }
    }
}
