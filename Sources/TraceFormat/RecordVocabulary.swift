//! The trace's record vocabulary: every kind of record, its tag, its name and
//! its fields. The only place a tag number appears (docs/trace-format.md,
//! "Events").
//!
//! Adding a kind is one edit here (a code in `TraceEventKind`, a case in
//! `EventFields`); the compiler then points at every place that must learn
//! it: the kind's name, the chunk encoder and decoder,
//! the formatting, with no `default:` to hide one.

/// A record's code. Its tag byte is `code` for codes below 15; codes 16 and
/// up are escape records, tag `15 | (code - 16) << 4`. A plain record's high
/// four bits carry a small field of its kind (see ``EventFields``).
public enum RecordCode {
    /// The low four bits of an escape record's tag.
    public static let escape: UInt8 = 15
    /// The code of escape record 0.
    public static let firstEscaped: UInt8 = 16

    /// The code of a tag byte.
    @inlinable @inline(__always)
    public static func code(ofTag tag: UInt8) -> UInt8 {
        tag & 15 == escape ? firstEscaped &+ tag >> 4 : tag & 15
    }

    /// The tag byte of a record with `code`, carrying `small` (0...15) in
    /// the high four bits of a plain record.
    @inlinable @inline(__always)
    public static func tag(code: UInt8, small: UInt8 = 0) -> UInt8 {
        code < escape ? code | small << 4 : escape | (code &- firstEscaped) << 4
    }
}

/// Records that set the context of the events after them (no event number).
public enum ContextRecord: UInt8, CaseIterable, Sendable {
    /// The NIC of the events that follow: a varint (initially 0).
    case nic = 16
    /// The vCPU of the events that follow: a varint (initially 0); only
    /// written before an MMIO record.
    case vcpu = 17
}

/// A memory read or write whose payload is stored only in part (format 1.3:
/// a recorder's snaplen keeps the first bytes of each frame). Not a kind of
/// its own but another record for ``TraceEventKind/memoryRead`` and
/// ``TraceEventKind/memoryWrite``, escape code 20 (tag `0x4F`), so that a
/// reader that predates it reports an unknown record instead of reading
/// bytes that are not there. It decodes as a memory event whose `bytes` are
/// fewer than its `length`.
///
/// After the tag: one byte of ``Flags``; a zigzag address delta from the
/// previous read's end (a read) or write's end (a write); varint length (at
/// most 2^32 − 1); varint count of the bytes stored (less than the length);
/// those bytes, the access's first. It does not enter the recent reads a
/// write may repeat.
public enum TruncatedMemoryRecord {
    /// Its code (``RecordCode``): escape record 4.
    public static let code: UInt8 = 20

    /// The byte after the tag.
    public struct Flags: OptionSet, Sendable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// A write (else a read).
        public static let write = Flags(rawValue: 1)
        /// The access failed (a write; a failed read stores no bytes and is never truncated).
        public static let failed = Flags(rawValue: 2)
    }
}

/// Records that encode an event as a repeat of what the chunk already holds
/// (format 1.4): escape codes 21–23, so a reader that predates them reports
/// an unknown record. Each decodes as the event it stands for.
///
/// - ``read`` (tag `0x5F`) and ``write`` (`0x6F`): a successful memory
///   access of 1 to 16 bytes with the same length and bytes as the last one
///   at its address in this chunk (``RepeatTable``). After the tag: a zigzag
///   address delta from the previous read's end (a read) or write's end (a
///   write). A read of 8 bytes or more enters the recent reads as a stored
///   one would, with the earlier access's bytes.
/// - ``chainAsRead`` (`0x7F`): a chain event whose 1 to 4 descriptors are
///   the newest recent reads, oldest first, each 16 bytes (little-endian
///   address u64, length u32, flags u16, next u16: a descriptor as the device
///   reads it). After the tag: varint queue, head and descriptor count.
public enum RepeatRecord {
    /// A memory read that repeats the last access at its address.
    public static let read: UInt8 = 21
    /// A memory write that repeats the last access at its address.
    public static let write: UInt8 = 22
    /// A chain whose descriptors are the newest recent reads.
    public static let chainAsRead: UInt8 = 23
}

/// Records whose fields the chunk already holds (format 1.5): escape codes
/// 24 and 25, so a reader that predates them reports an unknown record. Each
/// decodes as the event it stands for.
///
/// - ``chainAtHead`` (tag `0x8F`): a chain-as-read record (its descriptors
///   the newest recent reads) whose head is the little-endian u16 of the
///   newest successful memory read of 2 bytes in this chunk (the avail ring
///   slot the device read it from). After the tag: varint queue and
///   descriptor count (1 to 4).
/// - ``usedAsWritten`` (`0x9F`): a used publication whose id and len are the
///   two little-endian u32s of the newest successful memory write of 8 bytes
///   in this chunk (the used element the device wrote). After the tag: varint queue.
///
/// - ``incrementedRead`` (`0xAF`) and ``incrementedWrite`` (`0xBF`): a
///   successful memory read or write of 2 bytes (a ring index) whose bytes
///   are the little-endian u16 of the last access at its address in this
///   chunk (a 2-byte one, ``RepeatTable``) plus an amount. After the tag: the
///   address code; a varint amount below 2^16. The decoder materialises the
///   bytes (``ChunkBuffer``: after the content).
public enum PredictedRecord {
    /// A chain whose descriptors were just read, at the head just read.
    public static let chainAtHead: UInt8 = 24
    /// A used publication of the used element just written.
    public static let usedAsWritten: UInt8 = 25
    /// A 2-byte read of the last value at its address plus an amount.
    public static let incrementedRead: UInt8 = 26
    /// A 2-byte write of the last value at its address plus an amount.
    public static let incrementedWrite: UInt8 = 27
}

/// A record whose bytes the chunk already holds elsewhere (format 1.6):
/// escape code 28, so a reader that predates it reports an unknown record.
///
/// - ``read`` (tag `0xCF`): a successful memory read of 8 bytes or more
///   whose bytes are those of one of the four recent reads (the same as a
///   write's reference: a driver that sends the same frame again, a
///   descriptor read again at another place). After the tag: the address
///   code; a varint `i` below 4, the recent read (0: the newest), whose
///   length is the read's. It enters the recent reads as a stored read
///   would, with the earlier read's bytes.
public enum RecalledRecord {
    /// A memory read of a recent read's bytes.
    public static let read: UInt8 = 28
}

/// A memory access at a place the chunk's ring cursors predict (format
/// 1.7): escape code 29 (tag `0xDF`), so a reader that predates it reports
/// an unknown record. After the tag one varint `v`; its low bits say which
/// cursor (``RingCursors``, docs/trace-format.md, *Ring cursors*):
///
/// - `v & 1 == 0`: a successful 2-byte read or write (bit 3: a write) at
///   the address of index cache entry `(v >> 1) & 3`, of that entry's value
///   plus `v >> 4` (below 2^16, modulo 2^16): a ring index the device keeps
///   touching.
/// - `v & 3 == 1`: a successful 2-byte read at ring cursor `(v >> 2) & 1`'s
///   address plus 2, of its value changed by the zigzag code `v >> 3`
///   (below 2^16; a signed 16-bit change): the avail ring slot after the
///   last one read there.
/// - `v & 3 == 3`: a successful 8-byte write at used cursor `(v >> 2) & 1`'s
///   address plus 8 of a used element whose id is its id changed by the
///   zigzag code `v >> 3` (below 2^32; a signed 32-bit change); a varint len
///   (below 2^32) follows.
///
/// Each decodes as the memory event it stands for, its bytes materialised
/// after the content (``ChunkBuffer``); none enters the repeat table.
public enum CursorRecord {
    /// Its code (``RecordCode``): escape record 13.
    public static let code: UInt8 = 29
    /// `v`'s low bits: an index cache access (one bit), the ring cursor's
    /// next slot and the used cursor's next element (two bits).
    public static let ringTag: UInt64 = 1
    public static let usedTag: UInt64 = 3
}

/// Event kinds. The raw value is the record's code (``RecordCode``).
public enum TraceEventKind: UInt8, CaseIterable, Hashable, Sendable, Codable {
    case mmioRead = 0
    case mmioWrite = 1
    case memoryRead = 2
    case memoryWrite = 3
    case chain = 4
    case used = 5
    case counter = 6
    case interrupt = 7
    case poison = 8
    case status = 9
    case features = 10
    case pairs = 11
    case reset = 12
    case warning = 13
    case memoryBinding = 14
    /// An escape record (format 1.1).
    case transport = 18
    /// An escape record (format 1.3): a mark the recorder set between two
    /// accesses (a trigger that fired); no device action, replay skips it.
    case marker = 19

    /// The name `vtrace dump --kind` and JSON use.
    public var name: String {
        switch self {
        case .mmioRead, .mmioWrite: return "mmio"
        case .memoryRead: return "mem-read"
        case .memoryWrite: return "mem-write"
        case .chain: return "chain"
        case .used: return "used"
        case .counter: return "counter"
        case .interrupt: return "irq"
        case .poison: return "poison"
        case .status: return "status"
        case .features: return "features"
        case .pairs: return "pairs"
        case .reset: return "reset"
        case .warning: return "warning"
        case .memoryBinding: return "memory"
        case .transport: return "vhost"
        case .marker: return "marker"
        }
    }
}

/// An event's fields, by kind. `Bytes` is how a memory payload is held:
/// `UnsafeRawBufferPointer` when written (the device's buffer), `Range<Int>`
/// once decoded (a range of the chunk's content, ``TraceEvent/Body``). A
/// memory event's `length` is the access's; its `bytes` are all of them,
/// none for a failed read, or (format 1.3, a snaplen) fewer than `length`:
/// the access's first bytes, the rest not stored (``TruncatedMemoryRecord``).
///
/// Each case says how its record is encoded after the tag byte; "small" is
/// the tag's high four bits. Varints are LEB128, signed ones zigzag.
public enum EventFields<Bytes> {
    /// small: the width (15: a zigzag width follows); then varint offset,
    /// varint value, varint time delta.
    case mmioRead(offset: UInt64, width: Int, value: UInt64)
    /// As `mmioRead`.
    case mmioWrite(offset: UInt64, width: Int, value: UInt64)
    /// small bit 0: failed. Zigzag address delta from the previous read's
    /// end, varint length, then (when it succeeded) the bytes.
    case memoryRead(address: UInt64, length: Int, ok: Bool, bytes: Bytes)
    /// small bit 0: failed; bit 1: the bytes are those of a recent read,
    /// bits 2-3 which (0 = newest). Zigzag address delta from the previous
    /// write's end, varint length, then the bytes unless they repeat a read.
    case memoryWrite(address: UInt64, length: Int, ok: Bool, bytes: Bytes)
    /// Varint queue, head, descriptor count; then per descriptor a zigzag
    /// address delta from the previous descriptor's end, varint len, flags, next.
    case chain(queue: UInt16, head: UInt16, descriptorCount: Int)
    /// Varint queue, id, len.
    case used(queue: UInt16, id: UInt32, len: UInt32)
    /// small: the counter's index; varint delta from its previous value (wrapping).
    case counter(index: Int, value: UInt64)
    /// small: the kind (15: a varint kind follows).
    case interrupt(kind: UInt32)
    /// Varint queue, varint code, details (a varint count ≤ 3, then the values).
    case poison(queue: UInt16, code: UInt64, details: EventDetails)
    /// One byte old, one byte new.
    case status(old: UInt8, new: UInt8)
    /// Varint old, varint new.
    case features(old: UInt64, new: UInt64)
    /// Varint old, varint new.
    case pairs(old: UInt16, new: UInt16)
    /// Nothing.
    case reset
    /// Varint code, details.
    case warning(code: UInt64, details: EventDetails)
    /// small: 1 bound, 0 unbound.
    case memoryBinding(bound: Bool)
    /// A vhost-user operation: one byte code, varint queue, details, varint time delta.
    case transport(code: UInt8, queue: UInt16, values: EventDetails)
    /// Varint code (``MarkerCode``), details, varint time delta.
    case marker(code: UInt64, details: EventDetails)

    public var kind: TraceEventKind {
        switch self {
        case .mmioRead: return .mmioRead
        case .mmioWrite: return .mmioWrite
        case .memoryRead: return .memoryRead
        case .memoryWrite: return .memoryWrite
        case .chain: return .chain
        case .used: return .used
        case .counter: return .counter
        case .interrupt: return .interrupt
        case .poison: return .poison
        case .status: return .status
        case .features: return .features
        case .pairs: return .pairs
        case .reset: return .reset
        case .warning: return .warning
        case .memoryBinding: return .memoryBinding
        case .transport: return .transport
        case .marker: return .marker
        }
    }
}

/// What a marker event marks.
public enum MarkerCode: UInt64, Sendable {
    /// A trigger's counter predicate held (`--trigger-action mark`): details
    /// hold the number of the counter event at which it did.
    case triggerFired = 1
}

extension EventFields {
    /// The same event with its payload (a memory event's bytes) as `transform` gives it.
    @inlinable
    public func mapBytes<Other>(_ transform: (Bytes) throws -> Other) rethrows -> EventFields<Other> {
        switch self {
        case .mmioRead(let offset, let width, let value): return .mmioRead(offset: offset, width: width, value: value)
        case .mmioWrite(let offset, let width, let value): return .mmioWrite(offset: offset, width: width, value: value)
        case .memoryRead(let address, let length, let ok, let bytes): return .memoryRead(address: address, length: length, ok: ok, bytes: try transform(bytes))
        case .memoryWrite(let address, let length, let ok, let bytes): return .memoryWrite(address: address, length: length, ok: ok, bytes: try transform(bytes))
        case .chain(let queue, let head, let count): return .chain(queue: queue, head: head, descriptorCount: count)
        case .used(let queue, let id, let len): return .used(queue: queue, id: id, len: len)
        case .counter(let index, let value): return .counter(index: index, value: value)
        case .interrupt(let kind): return .interrupt(kind: kind)
        case .poison(let queue, let code, let details): return .poison(queue: queue, code: code, details: details)
        case .status(let old, let new): return .status(old: old, new: new)
        case .features(let old, let new): return .features(old: old, new: new)
        case .pairs(let old, let new): return .pairs(old: old, new: new)
        case .reset: return .reset
        case .warning(let code, let details): return .warning(code: code, details: details)
        case .memoryBinding(let bound): return .memoryBinding(bound: bound)
        case .transport(let code, let queue, let values): return .transport(code: code, queue: queue, values: values)
        case .marker(let code, let details): return .marker(code: code, details: details)
        }
    }
}

extension EventFields: Equatable where Bytes: Equatable {}
extension EventFields: Hashable where Bytes: Hashable {}
extension EventFields: Sendable where Bytes: Sendable {}

/// The fields of an event being written: payloads point at the device's bytes.
public typealias OutgoingEvent = EventFields<UnsafeRawBufferPointer>

/// Up to three integer details of a poison, warning or transport event.
public struct EventDetails: Hashable, Sendable {
    public var count: Int
    public var a: UInt64
    public var b: UInt64
    public var c: UInt64
    public init(_ values: [UInt64] = []) {
        count = min(values.count, 3)
        a = values.count > 0 ? values[0] : 0
        b = values.count > 1 ? values[1] : 0
        c = values.count > 2 ? values[2] : 0
    }
    @inlinable public init(count: Int, _ a: UInt64, _ b: UInt64, _ c: UInt64) {
        self.count = min(max(count, 0), 3)
        self.a = a
        self.b = b
        self.c = c
    }
    public var values: [UInt64] { Array([a, b, c].prefix(count)) }
}
