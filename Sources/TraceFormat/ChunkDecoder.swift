//! Decodes one chunk's uncompressed content back into events.

#if canImport(Glibc)
import Glibc
#endif

/// The uncompressed content of one chunk in memory the buffer owns, at a
/// stable address. Reusable: a reader refills it only while nothing else
/// holds it (a decoder over it keeps a reference), so a live decoder's bytes
/// never change under it.
public final class ChunkBuffer {
    @usableFromInline var storage: UnsafeMutableRawBufferPointer
    public private(set) var count = 0

    public init(capacity: Int = 0) {
        storage = Self.allocate(max(capacity + Self.materialisedRoom(capacity), 1))
    }

    /// Room kept after a content of `n` bytes for the bytes a decoder
    /// materialises there: at most 8 bytes for every 3 of content (1.7's
    /// used element: a record of at least 3 bytes; its index and ring slot
    /// reads 2 for a record of at least 2; 1.5's incremented records 2 for 3).
    static func materialisedRoom(_ n: Int) -> Int { n / 3 * 8 + 8 }

    /// A transparent huge page's size on x86-64 and most arm64 kernels.
    static let hugePage = 2 << 20

    /// Room for `n` bytes. A chunk's content (about 1 MiB; the recorder
    /// cuts chunks there) is written once by zstd and read through once
    /// by the decoder: in 4 KiB pages that is some 300 TLB entries per pass,
    /// so from 512 KiB up the room is whole 2 MiB pages, aligned, and the
    /// kernel is asked to back them with huge pages (`MADV_HUGEPAGE`; a
    /// no-op where transparent huge pages are off). One-thread replay of
    /// the dense testpmd trace: 5,830 page faults → 1,620 and about 3% less
    /// time (docs/performance.md).
    static func allocate(_ n: Int) -> UnsafeMutableRawBufferPointer {
        if n < 512 << 10 { return .allocate(byteCount: n, alignment: 16) }
        let size = (n + hugePage - 1) & ~(hugePage - 1)
        let room = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: hugePage)
        #if os(Linux)
        _ = madvise(room.baseAddress, size, MADV_HUGEPAGE)
        #endif
        return UnsafeMutableRawBufferPointer(rebasing: room[..<n])
    }

    public convenience init(_ bytes: [UInt8]) {
        self.init(capacity: bytes.count)
        bytes.withUnsafeBytes { raw in fill(count: raw.count) { $0.copyMemory(from: raw) } }
    }

    deinit { storage.deallocate() }

    /// The content.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[0..<count]) }
    /// The content and the room after it (what an event's byte range may point into).
    public var room: UnsafeRawBufferPointer { UnsafeRawBufferPointer(storage) }

    /// Writes a materialised integer (little-endian) `at` (past the content, in its room).
    @inlinable func materialise<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        storage.baseAddress!.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }

    /// Replaces the content with `count` bytes written by `write` (which gets
    /// exactly that many bytes of uninitialised space).
    func fill<E: Error>(count n: Int, _ write: (UnsafeMutableRawBufferPointer) throws(E) -> Void) throws(E) {
        if storage.count < n + Self.materialisedRoom(n) {
            storage.deallocate()
            storage = Self.allocate(n + Self.materialisedRoom(n))
        }
        count = 0
        try write(UnsafeMutableRawBufferPointer(rebasing: storage[0..<n]))
        count = n
    }
}

/// The last few memory reads of eight bytes or more (length, content offset),
/// newest first: what a write's "same bytes as read k" reference points at.
@usableFromInline
struct RecentReads {
    @usableFromInline var l0 = -1, s0 = 0, l1 = -1, s1 = 0, l2 = -1, s2 = 0, l3 = -1, s3 = 0

    @usableFromInline init() {}

    /// Reads kept.
    @inlinable static var capacity: Int { 4 }

    @inlinable @inline(__always)
    mutating func push(length: Int, start: Int) {
        (l3, s3, l2, s2, l1, s1) = (l2, s2, l1, s1, l0, s0)
        (l0, s0) = (length, start)
    }

    /// The newest of the reads whose bytes (at `base` + start) equal `bytes`, if any.
    /// Transparent: `@inline(__always)` left it a call that copied the four
    /// reads to the stack, ~65 instructions a recalled payload (session 7
    /// measured it the other way, before the encoder's records shrank).
    @usableFromInline @_transparent
    func newest(holding bytes: UnsafeRawBufferPointer, in base: UnsafeRawPointer) -> Int? {
        let n = bytes.count, p = bytes.baseAddress!
        if l0 == n && bytesEqual(base + s0, p, n) { return 0 }
        if l1 == n && bytesEqual(base + s1, p, n) { return 1 }
        if l2 == n && bytesEqual(base + s2, p, n) { return 2 }
        if l3 == n && bytesEqual(base + s3, p, n) { return 3 }
        return nil
    }

    /// Read `i` (0 = newest), if there is one.
    @inlinable @inline(__always)
    func get(_ i: Int) -> (length: Int, start: Int)? {
        let r: (Int, Int)
        switch i {
        case 0: r = (l0, s0)
        case 1: r = (l1, s1)
        case 2: r = (l2, s2)
        case 3: r = (l3, s3)
        default: return nil
        }
        return r.0 < 0 ? nil : r
    }
}

/// Reads the events of one chunk, in order, without allocating per event.
///
/// Hostile content yields ``ChunkDecodeError`` (with the offset inside the
/// content), never a trap: every length is checked against the bytes left,
/// every count against a limit.
public struct ChunkDecoder {
    /// Owns the content; `reader` reads it.
    public let buffer: ChunkBuffer
    @usableFromInline var reader: ByteReader
    public let firstEvent: UInt64
    public let flags: ChunkFlags
    public let baseTime: UInt64
    /// Every NIC's state at the chunk start (nil for a continuation chunk).
    public let checkpoint: [NICCheckpoint]?
    /// Per NIC, counter values at the chunk start.
    public let startCounters: [[UInt64]]
    /// The descriptors of the last chain event decoded: the first
    /// `descriptorCount` of this storage, overwritten in place by the next chain.
    @usableFromInline var descriptorStorage: [TraceDescriptor] = []
    public var descriptorCount: Int { storedDescriptorCount }
    @usableFromInline var storedDescriptorCount = 0
    /// The descriptors of the last chain event decoded.
    public var descriptors: [TraceDescriptor] { Array(descriptorStorage[0..<descriptorCount]) }
    /// Descriptor `i` of the last chain event decoded.
    @inline(__always)
    public func descriptor(_ i: Int) -> TraceDescriptor { descriptorStorage[i] }
    /// Appends the descriptors of the last chain event decoded to `list` (one copy, no per-descriptor append).
    @inline(__always)
    public func appendDescriptors(to list: inout [TraceDescriptor]) {
        descriptorStorage.withUnsafeBufferPointer { list.append(contentsOf: UnsafeBufferPointer(rebasing: $0[0..<descriptorCount])) }
    }
    /// Events decoded so far.
    public var decoded: UInt64 { decodedCount }
    @usableFromInline var decodedCount: UInt64 = 0

    @usableFromInline let nics: Int
    @usableFromInline var time: UInt64
    @usableFromInline var nic = 0
    @usableFromInline var vcpu: UInt32 = 0
    @usableFromInline var lastReadEnd: UInt64 = 0
    @usableFromInline var lastWriteEnd: UInt64 = 0
    @usableFromInline var lastDescriptorEnd: UInt64 = 0
    /// Per NIC, the current counter values (NIC n at n × 16).
    @usableFromInline var counters: DecoderCounters
    @usableFromInline var recentReads = RecentReads()
    /// Whether the content may hold repeat records (format 1.4 and later;
    /// in older content they are unknown records).
    @usableFromInline let repeats: Bool
    /// Whether memory records name addresses with address codes and the
    /// content may hold predicted records (format 1.5: ``AddressCode``,
    /// ``PredictedRecord``).
    @usableFromInline let predicts: Bool
    /// Whether address codes reach 4096 accesses back and the content may
    /// hold recalled reads (format 1.6: ``RecalledRecord``).
    @usableFromInline let recalls: Bool
    /// Whether the content may hold cursor records (format 1.7: ``CursorRecord``).
    @usableFromInline let cursors: Bool
    /// How far back an address code reaches (``AddressCode/reach(recalls:)``).
    @usableFromInline let reach: Int
    /// The buffers of the chunk's last chain (address codes name them).
    @usableFromInline var recentChain = RecentChain()
    /// Where the bytes of the newest successful 2-byte read are (-1: none
    /// yet): a ``PredictedRecord/chainAtHead``'s head.
    @usableFromInline var headRead = -1
    /// The ring cursors (format 1.7; the decoder keeps the used write as
    /// ``usedWrite``, not as the cursors' values).
    @usableFromInline var ring = RingCursors()
    /// Where the bytes of the newest successful 8-byte write are, in the
    /// content or materialised after it (-1: none yet): a
    /// ``PredictedRecord/usedAsWritten``'s id and len (from 1.7, id 0 and
    /// len 0 before any).
    @usableFromInline var usedWrite = -1
    /// Bytes materialised after the content so far (incremented and cursor records).
    @usableFromInline var materialised = 0
    /// The last small access at each address (``RepeatTable``) and, from
    /// 1.5, the history: made at the first access that enters either (none
    /// at the chunk's start: no 192 KiB cleared for a decoder that is only
    /// copied); copied before a write when a copy of this decoder holds it too.
    @usableFromInline var repeatTable: RepeatTable?
    /// Set by ``makeExclusive()``: nothing else holds the repeat table or the counters.
    @usableFromInline var exclusive = false

    /// Most descriptors one chain event may list (an indirect table's 65,535 plus a queue's 32,768).
    public static let maxDescriptors = 65_535 + 32_768

    /// A decoder over no content: it has no events.
    public init() {
        buffer = ChunkBuffer()
        reader = ByteReader(UnsafeRawBufferPointer(start: buffer.storage.baseAddress, count: 0))
        nics = 0
        firstEvent = 0
        flags = []
        baseTime = 0
        checkpoint = nil
        startCounters = []
        counters = DecoderCounters([])
        time = 0
        repeats = false
        predicts = false
        recalls = false
        cursors = false
        reach = 0
    }

    /// The content's first byte (valid while this decoder, which keeps the buffer, lives).
    public var contentBase: UnsafeRawPointer { UnsafeRawPointer(reader.base.baseAddress ?? UnsafeRawPointer(buffer.storage.baseAddress!)) }

    /// Where the reader is in the content, and where the content ends.
    @usableFromInline var offset: Int {
        @inline(__always) get { reader.offset }
        @inline(__always) set { reader.offset = newValue }
    }
    @usableFromInline var end: Int { @inline(__always) get { reader.end } }

    /// A decoder over a copy of `content`.
    /// - Parameters:
    ///   - repeats: whether the content may hold repeat records (format 1.4
    ///     and later: ``RepeatRecord``).
    ///   - predicts: whether it names addresses with address codes and may
    ///     hold predicted records (format 1.5 and later, with `repeats`).
    ///   - recalls: whether address codes reach 4096 accesses back and it
    ///     may hold recalled reads (format 1.6 and later, with `predicts`).
    ///   - cursors: whether it may hold cursor records (format 1.7 and
    ///     later, with `recalls`).
    public init(content: [UInt8], nics: Int, repeats: Bool = true, predicts: Bool = true, recalls: Bool = true, cursors: Bool = true) throws(ChunkDecodeError) {
        try self.init(buffer: ChunkBuffer(content), nics: nics, repeats: repeats, predicts: predicts, recalls: recalls, cursors: cursors)
    }

    /// A decoder over `buffer`'s content written as format 1.`minor`
    /// (``TraceVersion/records(minor:)``).
    public init(buffer: ChunkBuffer, nics: Int, formatMinor minor: UInt16) throws(ChunkDecodeError) {
        let r = TraceVersion.records(minor: minor)
        try self.init(buffer: buffer, nics: nics, repeats: r.repeats, predicts: r.predicts, recalls: r.recalls, cursors: r.cursors)
    }

    /// A decoder over `buffer`'s content (which it keeps alive).
    public init(buffer: ChunkBuffer, nics: Int, repeats: Bool = true, predicts: Bool = true, recalls: Bool = true, cursors: Bool = true) throws(ChunkDecodeError) {
        self.buffer = buffer
        self.repeats = repeats
        self.predicts = predicts && repeats
        self.recalls = recalls && predicts && repeats
        self.cursors = cursors && recalls && predicts && repeats
        reach = AddressCode.reach(recalls: self.recalls)
        let raw = buffer.bytes
        self.nics = nics
        var r = ByteReader(raw)
        var cps: [NICCheckpoint]?
        var all: [[UInt64]] = []
        do {
            firstEvent = try r.varint()
            flags = ChunkFlags(rawValue: try r.varint())
            baseTime = try r.varint()
            let count = try r.varint()
            guard count == UInt64(nics) else {
                throw ChunkDecodeError(offset: r.offset, "chunk describes \(count) NICs, the header \(nics)")
            }
            if flags.contains(.checkpoint) {
                var list: [NICCheckpoint] = []
                for _ in 0..<nics { list.append(try NICCheckpoint.decode(&r)) }
                cps = list
                all = list.map(\.counters)
            } else {
                for _ in 0..<nics {
                    var c: [UInt64] = []
                    for _ in 0..<NICCheckpoint.counterCount { c.append(try r.varint()) }
                    all.append(c)
                }
            }
        } catch {
            throw ChunkDecodeError.from(error)
        }
        checkpoint = cps
        startCounters = all
        counters = DecoderCounters(all)
        reader = r
        time = baseTime
    }

    /// Offset of the next record within the content.
    public var position: Int { offset }

    /// Whether every record of the content has been read.
    public var atEnd: Bool { offset >= end }

    /// The bytes of a payload range (in the content, or materialised after it).
    public func bytes(_ range: Range<Int>) -> ArraySlice<UInt8> { ArraySlice(UnsafeRawBufferPointer(rebasing: buffer.room[range])) }

    /// The next event, or nil at the end of the chunk.
    @inline(__always)
    public mutating func next() throws(ChunkDecodeError) -> TraceEvent? {
        var e = TraceEvent(number: 0, time: 0, nic: 0, vcpu: 0, body: .reset)
        return try next(into: &e) ? e : nil
    }

    /// Decodes the next event into `event` (in place: the replay's fast path);
    /// false at the end of the chunk.
    public mutating func next(into event: inout TraceEvent) throws(ChunkDecodeError) -> Bool {
        if offset >= end { return false }
        return try decodeOne(into: &event)
    }

    /// Decodes every remaining event, calling `body` with each and the
    /// descriptors of a chain event.
    public mutating func decodeAll(_ body: (TraceEvent, ArraySlice<TraceDescriptor>) -> Void) throws(ChunkDecodeError) {
        while let e = try next() { body(e, descriptorStorage[0..<descriptorCount]) }
    }

    // MARK: The record decoder

    /// Errors are built out of line, so the decoding path stays small.
    @inline(never)
    @usableFromInline func fail(_ at: Int, _ message: @autoclosure () -> String) -> ChunkDecodeError { ChunkDecodeError(offset: at, message()) }


    /// The reader's primitives, with its errors as chunk errors.
    @inlinable @inline(__always)
    mutating func byte() throws(ChunkDecodeError) -> UInt8 {
        do throws(ByteReadError) { return try reader.byte() } catch { throw ChunkDecodeError(error) }
    }

    @inlinable @inline(__always)
    mutating func varint() throws(ChunkDecodeError) -> UInt64 {
        do throws(ByteReadError) { return try reader.varint() } catch { throw ChunkDecodeError(error) }
    }

    @inlinable @inline(__always)
    mutating func zigzag() throws(ChunkDecodeError) -> Int64 {
        let v = try varint()
        return Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1)))
    }

    /// A memory record's address: in a 1.5 chunk its address code
    /// (``AddressCode``), otherwise the zigzag delta from `end` (the previous
    /// read's or write's end).
    @inlinable @inline(__always)
    mutating func address(from end: UInt64, _ tagOffset: Int) throws(ChunkDecodeError) -> UInt64 {
        guard predicts else { return end &+ UInt64(bitPattern: try zigzag()) }
        return try codedAddress(from: end, tagOffset)
    }

    /// A 1.5 address code's address. Out of line (the compiler outlined the
    /// whole of ``address(from:_:)`` otherwise, 1.4's delta with it).
    @usableFromInline @inline(never)
    mutating func codedAddress(from end: UInt64, _ tagOffset: Int) throws(ChunkDecodeError) -> UInt64 {
        let v = try varint()
        switch v & 3 {
        case AddressCode.delta:
            let z = v >> 2
            return end &+ ((z >> 1) ^ (0 &- (z & 1)))
        case AddressCode.same, AddressCode.end:
            guard let h = repeatTable?.history((v >> 2) &+ 1, limit: reach) else { throw unreachedAccess(v, tagOffset) }
            return v & 3 == AddressCode.same ? h.address : h.address &+ h.length
        default:
            let w = v >> 2
            if w == 0 { return try varint() }
            guard let base = recentChain.address(Int(truncatingIfNeeded: (w &- 1) & 3)) else { throw unreachedAccess(v, tagOffset) }
            return base &+ ((w &- 1) >> 2)
        }
    }

    /// An address code naming an access or a descriptor that is not there.
    @inline(never)
    @usableFromInline func unreachedAccess(_ v: UInt64, _ tagOffset: Int) -> ChunkDecodeError {
        let accesses = repeatTable?.accesses ?? 0
        switch v & 3 {
        case AddressCode.other:
            return fail(tagOffset, "address code names descriptor \(((v >> 2) &- 1) & 3) of the last chain; it has \(recentChain.count) (of the first \(RecentChain.capacity))")
        default:
            return fail(tagOffset, "address code names memory access \((v >> 2) &+ 1) back; the chunk has \(accesses) before it and the history keeps \(reach)")
        }
    }

    /// A 1.5 memory access of `length` bytes at `address` enters the history.
    @inlinable @inline(__always)
    mutating func entered(_ address: UInt64, length: UInt64) {
        guard predicts else { return }
        ownRepeatTable()
        repeatTable.unsafelyUnwrapped.pushHistory(address, length: length)
    }

    /// A varint that must fit `T`.
    @inlinable @inline(__always)
    mutating func narrow<T: FixedWidthInteger>() throws(ChunkDecodeError) -> T {
        let at = offset
        let v = try varint()
        guard let n = T(exactly: v) else { throw fail(at, "malformed or out-of-range number") }
        return n
    }

    /// Skips `n` payload bytes and returns their range.
    @inlinable @inline(__always)
    mutating func skip(_ n: UInt64, tagOffset: Int, _ what: StaticString) throws(ChunkDecodeError) -> Range<Int> {
        guard n <= UInt64(end - offset) else {
            throw fail(tagOffset, "\(what) of \(n) bytes, \(end - offset) left in the chunk")
        }
        // Within the content: neither end can overflow, nor pass the other.
        let r = Range(uncheckedBounds: (offset, offset &+ Int(n)))
        offset &+= Int(n)
        return r
    }

    @inline(__always)
    mutating func decodeOne(into event: inout TraceEvent) throws(ChunkDecodeError) -> Bool {
        while offset < end {
            let tagOffset = offset
            let tag = reader.base[offset]
            offset += 1
            let code = RecordCode.code(ofTag: tag)
            if code >= RecordCode.firstEscaped {
                if let context = ContextRecord(rawValue: code) {
                    try apply(context, tagOffset)
                    continue
                }
                // Not in `decodeFields`' switch: the plain records' hot loop stays as it was.
                if code == TruncatedMemoryRecord.code {
                    emit(try truncatedMemory(tagOffset), into: &event)
                    return true
                }
                if code >= RepeatRecord.read && (code <= RepeatRecord.chainAsRead && repeats || code <= PredictedRecord.incrementedWrite && predicts
                                                 || code == RecalledRecord.read && recalls || code == CursorRecord.code && cursors) {
                    emit(try repeated(code, tagOffset), into: &event)
                    return true
                }
            }
            emit(try decodeFields(code, small: tag >> 4, tagOffset: tagOffset), into: &event)
            return true
        }
        return false
    }

    /// A context record's value (after its tag), applied.
    @inline(__always)
    mutating func apply(_ context: ContextRecord, _ tagOffset: Int) throws(ChunkDecodeError) {
        let v = try varint()
        switch context {
        case .nic:
            guard v < UInt64(nics) else { throw fail(tagOffset, "event names NIC \(v); the trace has \(nics)") }
            nic = Int(v)
        case .vcpu:
            guard v <= UInt64(UInt32.max) else { throw fail(tagOffset, "vCPU \(v) out of range") }
            vcpu = UInt32(v)
        }
    }

    @inline(__always)
    mutating func emit(_ body: TraceEvent.Body, into event: inout TraceEvent) {
        event.number = firstEvent &+ decoded
        event.time = time
        event.nic = nic
        event.vcpu = vcpu
        event.body = body
        decodedCount += 1
    }

    /// The fields after the tag of a record with `code` (their layout:
    /// ``EventFields``); `small` is the tag's high four bits. One switch over
    /// the codes, not a ``TraceEventKind`` built and switched on again (the
    /// hot loop; docs/performance.md); `CodecTests` round-trips every kind
    /// through it.
    @inline(__always)
    mutating func decodeFields(_ code: UInt8, small aux: UInt8, tagOffset: Int) throws(ChunkDecodeError) -> TraceEvent.Body {
        typealias K = TraceEventKind
        switch code {
        case K.mmioRead.rawValue, K.mmioWrite.rawValue:
            let width = aux == 15 ? Int(truncatingIfNeeded: try zigzag()) : Int(aux)
            let offset = try varint()
            let value = try varint()
            time &+= try varint()
            return code == K.mmioRead.rawValue ? .mmioRead(offset: offset, width: width, value: value)
                : .mmioWrite(offset: offset, width: width, value: value)
        case K.memoryRead.rawValue:
            let f = try memoryReadFields(aux, tagOffset)
            return .memoryRead(address: f.address, length: f.length, ok: f.ok, bytes: f.bytes)
        case K.memoryWrite.rawValue:
            let f = try memoryWriteFields(aux, tagOffset)
            return .memoryWrite(address: f.address, length: f.length, ok: f.ok, bytes: f.bytes)
        case K.chain.rawValue:
            let f = try chainFields(tagOffset)
            return .chain(queue: f.queue, head: f.head, descriptorCount: f.count)
        case K.used.rawValue:
            let f = try usedFields()
            return .used(queue: f.queue, id: f.id, len: f.len)
        case K.counter.rawValue:
            return .counter(index: Int(aux), value: try counterValue(aux))
        case K.interrupt.rawValue:
            let kind: UInt32 = aux == 15 ? try narrow() : UInt32(aux)
            return .interrupt(kind: kind)
        case K.poison.rawValue:
            let queue: UInt16 = try narrow()
            let code = try varint()
            return .poison(queue: queue, code: code, details: try details(tagOffset))
        case K.status.rawValue:
            return .status(old: try byte(), new: try byte())
        case K.features.rawValue:
            return .features(old: try varint(), new: try varint())
        case K.pairs.rawValue:
            return .pairs(old: try narrow(), new: try narrow())
        case K.reset.rawValue:
            return .reset
        case K.warning.rawValue:
            let code = try varint()
            return .warning(code: code, details: try details(tagOffset))
        case K.memoryBinding.rawValue:
            return .memoryBinding(bound: aux & 1 != 0)
        case K.transport.rawValue:
            let operation = try byte()
            let queue: UInt16 = try narrow()
            let values = try details(tagOffset)
            time &+= try varint()
            return .transport(code: operation, queue: queue, values: values)
        case K.marker.rawValue:
            let code = try varint()
            let details = try details(tagOffset)
            time &+= try varint()
            return .marker(code: code, details: details)
        default:
            throw unknownRecord(code, at: tagOffset)
        }
    }

    /// The fields of a memory read record (kind 2, `aux` its tag's high
    /// bits), the decoding state moved past it: the shared parse of
    /// ``decodeFields(_:small:tagOffset:)`` and the matcher
    /// (`ChunkDecoder+Matching.swift`).
    @inlinable @inline(__always)
    mutating func memoryReadFields(_ aux: UInt8, _ tagOffset: Int) throws(ChunkDecodeError) -> (address: UInt64, length: Int, ok: Bool, bytes: Range<Int>) {
        try memoryReadFields(aux, tagOffset, at: try address(from: lastReadEnd, tagOffset))
    }

    /// The same, its address already decoded.
    @inlinable @inline(__always)
    mutating func memoryReadFields(_ aux: UInt8, _ tagOffset: Int, at address: UInt64) throws(ChunkDecodeError) -> (address: UInt64, length: Int, ok: Bool, bytes: Range<Int>) {
        let length = try varint()
        let ok = aux & 1 == 0
        var range = offset..<offset
        if ok {
            range = try skip(length, tagOffset: tagOffset, "memory read")
            if length >= 8 { recentReads.push(length: Int(length), start: range.lowerBound) }
            if length == 2 {
                headRead = range.lowerBound
                if cursors { ringCursorTakes(address, at: range.lowerBound) }
            }
            if repeats && length &- 1 < UInt64(RepeatTable.maxLength) { remember(address, Int(length), range.lowerBound) }
        } else {
            guard length <= UInt64(UInt32.max) else { throw fail(tagOffset, "memory read length \(length) out of range") }
        }
        entered(address, length: length)
        lastReadEnd = address &+ length
        return (address, Int(length), ok, range)
    }

    /// The fields of a memory write record (kind 3).
    @inlinable @inline(__always)
    mutating func memoryWriteFields(_ aux: UInt8, _ tagOffset: Int) throws(ChunkDecodeError) -> (address: UInt64, length: Int, ok: Bool, bytes: Range<Int>) {
        try memoryWriteFields(aux, tagOffset, at: try address(from: lastWriteEnd, tagOffset))
    }

    /// The same, its address already decoded.
    /// (Transparent, as ``chainAsReadHeader(atHead:_:)`` and
    /// ``incrementedAccess(isRead:_:)``: `@inline(__always)` left them calls
    /// from the direct replay's matcher; callgrind of a testpmd trace's
    /// replay, 1.4 / 1.5 / 1.6: 764.6 / 717.5 / 768.6 M before, 744.1 /
    /// 701.6 / 751.8 M after.)
    @usableFromInline @_transparent
    mutating func memoryWriteFields(_ aux: UInt8, _ tagOffset: Int, at address: UInt64) throws(ChunkDecodeError) -> (address: UInt64, length: Int, ok: Bool, bytes: Range<Int>) {
        let length = try varint()
        let ok = aux & 1 == 0
        let range: Range<Int>
        if aux & 2 != 0 {
            guard let read = recentReads.get(Int(aux >> 2)), UInt64(read.length) == length else {
                throw fail(tagOffset, "memory write refers to a read that is not there")
            }
            range = read.start..<(read.start + read.length)
        } else {
            range = try skip(length, tagOffset: tagOffset, "memory write")
        }
        if ok && repeats && length &- 1 < UInt64(RepeatTable.maxLength) { remember(address, Int(length), range.lowerBound) }
        if ok && length == 8 { usedElement(address, at: range.lowerBound) }
        entered(address, length: length)
        lastWriteEnd = address &+ length
        return (address, Int(length), ok, range)
    }

    /// Room for `n` descriptors in `descriptorStorage` (grown, never shrunk:
    /// a chain's descriptors overwrite the last one's in place).
    @inlinable @inline(__always)
    mutating func reserveDescriptors(_ n: Int) {
        if descriptorStorage.count < n {
            descriptorStorage.append(contentsOf: repeatElement(TraceDescriptor(addr: 0, len: 0, flags: 0, next: 0), count: n - descriptorStorage.count))
        }
    }

    /// The fields of a chain record (kind 4); its descriptors are the first
    /// `count` of `descriptorStorage`.
    @inlinable @inline(__always)
    mutating func chainFields(_ tagOffset: Int) throws(ChunkDecodeError) -> (queue: UInt16, head: UInt16, count: Int) {
        let f = try chainHeader(tagOffset)
        reserveDescriptors(f.count)
        storedDescriptorCount = 0
        for i in 0..<f.count { descriptorStorage[i] = try chainDescriptor() }
        storedDescriptorCount = f.count
        return f
    }

    /// A chain record's queue, head and descriptor count; its descriptors
    /// follow (``chainDescriptor()`` each, in order).
    @inlinable @inline(__always)
    mutating func chainHeader(_ tagOffset: Int) throws(ChunkDecodeError) -> (queue: UInt16, head: UInt16, count: Int) {
        let queue: UInt16 = try narrow()
        let head: UInt16 = try narrow()
        let count = try varint()
        // Each descriptor takes at least 4 bytes: a count beyond that is a lie.
        guard count <= UInt64(Self.maxDescriptors), count <= UInt64((end - offset) / 4) else {
            throw fail(tagOffset, "chain claims \(count) descriptors")
        }
        recentChain.begin()
        return (queue, head, Int(count))
    }

    /// The next descriptor of a chain record (after ``chainHeader(_:)``),
    /// which the last chain's buffers and the descriptor end take.
    @usableFromInline @_transparent
    mutating func chainDescriptor() throws(ChunkDecodeError) -> TraceDescriptor {
        let addr = lastDescriptorEnd &+ UInt64(bitPattern: try zigzag())
        let len: UInt32 = try narrow()
        let flags: UInt16 = try narrow()
        let next: UInt16 = try narrow()
        recentChain.add(addr: addr, len: len)
        lastDescriptorEnd = addr &+ UInt64(len)
        return TraceDescriptor(addr: addr, len: len, flags: flags, next: next)
    }

    /// The fields of a used record (kind 5).
    @inlinable @inline(__always)
    mutating func usedFields() throws(ChunkDecodeError) -> (queue: UInt16, id: UInt32, len: UInt32) {
        (try narrow(), try narrow(), try narrow())
    }

    /// The new value of counter `aux` of the current NIC (kind 6).
    @inlinable @inline(__always)
    mutating func counterValue(_ aux: UInt8) throws(ChunkDecodeError) -> UInt64 {
        let index = nic &* NICCheckpoint.counterCount &+ Int(aux)
        if !exclusive && !isKnownUniquelyReferenced(&counters) { counters = DecoderCounters(copying: counters) }
        // `nic` is below `nics` (checked where it is set) and `aux` below 16.
        let value = counters.values + index
        value.pointee &+= try varint()
        return value.pointee
    }

    @inline(never)
    func unknownRecord(_ code: UInt8, at offset: Int) -> ChunkDecodeError {
        ChunkDecodeError(offset: offset, code >= RecordCode.firstEscaped ? "unknown context record \(code - RecordCode.firstEscaped)"
                                                                          : "unknown event kind \(code)")
    }

    /// A repeat record (``RepeatRecord``): a memory access that repeats the
    /// last one at its address, or a chain whose descriptors were just read.
    @inline(never)
    mutating func repeated(_ code: UInt8, _ tagOffset: Int) throws(ChunkDecodeError) -> TraceEvent.Body {
        if code == RepeatRecord.chainAsRead || code == PredictedRecord.chainAtHead {
            let f = try chainAsReadFields(atHead: code == PredictedRecord.chainAtHead, tagOffset)
            return .chain(queue: f.queue, head: f.head, descriptorCount: f.count)
        }
        if code == PredictedRecord.usedAsWritten {
            let f = try usedAsWrittenFields(tagOffset)
            return .used(queue: f.queue, id: f.id, len: f.len)
        }
        if code == RecalledRecord.read {
            let f = try recalledRead(tagOffset)
            return .memoryRead(address: f.address, length: f.bytes.count, ok: true, bytes: f.bytes)
        }
        if code == CursorRecord.code {
            let f = try cursorAccess(tagOffset)
            return f.isWrite ? .memoryWrite(address: f.address, length: f.bytes.count, ok: true, bytes: f.bytes)
                : .memoryRead(address: f.address, length: f.bytes.count, ok: true, bytes: f.bytes)
        }
        if code == PredictedRecord.incrementedRead || code == PredictedRecord.incrementedWrite {
            let isRead = code == PredictedRecord.incrementedRead
            let f = try incrementedAccess(isRead: isRead, tagOffset)
            return isRead ? .memoryRead(address: f.address, length: 2, ok: true, bytes: f.bytes)
                : .memoryWrite(address: f.address, length: 2, ok: true, bytes: f.bytes)
        }
        let isRead = code == RepeatRecord.read
        let f = try repeatedAccess(isRead: isRead, tagOffset)
        return isRead ? .memoryRead(address: f.address, length: f.bytes.count, ok: true, bytes: f.bytes)
            : .memoryWrite(address: f.address, length: f.bytes.count, ok: true, bytes: f.bytes)
    }

    /// The fields of a chain-as-read record; its descriptors are the first
    /// `count` of `descriptorStorage`.
    @inlinable @inline(__always)
    mutating func chainAsReadFields(atHead: Bool, _ tagOffset: Int) throws(ChunkDecodeError) -> (queue: UInt16, head: UInt16, count: Int) {
        let f = try chainAsReadHeader(atHead: atHead, tagOffset)
        reserveDescriptors(f.count)
        for i in 0..<f.count { descriptorStorage[i] = asReadDescriptor(i, of: f.count) }
        storedDescriptorCount = f.count
        return f
    }

    /// A chain-as-read record's queue, head and count (a chain-at-head
    /// record's head: the newest 2-byte read's bytes), its recent reads
    /// checked (the newest `count`, each 16 bytes), and the descriptor end
    /// moved past its last descriptor: ``asReadDescriptor(_:of:)`` then
    /// gives each descriptor.
    @usableFromInline @_transparent
    mutating func chainAsReadHeader(atHead: Bool, _ tagOffset: Int) throws(ChunkDecodeError) -> (queue: UInt16, head: UInt16, count: Int) {
        let queue: UInt16 = try narrow()
        let head: UInt16
        if atHead {
            guard headRead >= 0 else { throw fail(tagOffset, "chain at the ring's head, but no 2-byte read came before it in this chunk") }
            head = UInt16(littleEndian: (contentBase + headRead).loadUnaligned(as: UInt16.self))
        } else {
            head = try narrow()
        }
        let count = try varint()
        guard count >= 1, count <= UInt64(RecentReads.capacity) else {
            throw fail(tagOffset, "chain as read claims \(count) descriptors (1 to \(RecentReads.capacity))")
        }
        let n = Int(count)
        for k in 0..<n {
            guard let r = recentReads.get(k), r.length == 16 else {
                throw fail(tagOffset, "chain as read refers to \(n) descriptor reads that are not there")
            }
        }
        let last = asReadDescriptor(n - 1, of: n)
        lastDescriptorEnd = last.addr &+ UInt64(last.len)
        if predicts {
            recentChain.begin()
            for i in 0..<n {
                let d = asReadDescriptor(i, of: n)
                recentChain.add(addr: d.addr, len: d.len)
            }
        }
        return (queue, head, n)
    }

    /// The fields of an incremented record: its address, and its bytes
    /// (the last 2-byte access's at the address plus the amount),
    /// materialised after the content. Transparent, now that the parsers
    /// the matcher calls are too (out of line it kept the matcher small
    /// enough for `@inline(__always)` to be honoured; it no longer needs to be).
    @usableFromInline @_transparent
    mutating func incrementedAccess(isRead: Bool, _ tagOffset: Int) throws(ChunkDecodeError) -> (address: UInt64, bytes: Range<Int>) {
        let address = try self.address(from: isRead ? lastReadEnd : lastWriteEnd, tagOffset)
        guard let last = repeatTable?.lookup(address), last.length == 2 else {
            throw fail(tagOffset, "incremented \(isRead ? "read" : "write") at 0x\(String(address, radix: 16)) follows no 2-byte access in this chunk")
        }
        let amount = try varint()
        guard amount <= 0xFFFF else { throw fail(tagOffset, "incremented \(isRead ? "read" : "write") adds \(amount) (below 65,536)") }
        let at = end &+ materialised
        guard at + 2 <= buffer.storage.count else { throw fail(tagOffset, "incremented records materialise more bytes than the chunk's room") }
        let old = UInt16(littleEndian: (contentBase + last.offset).loadUnaligned(as: UInt16.self))
        let new = old &+ UInt16(amount)
        buffer.materialise(new, at: at)
        materialised &+= 2
        remember(address, 2, at)
        entered(address, length: 2)
        if cursors { ring.indexAccessed(address, new, recent: namesRecentAccess(tagOffset), isRead: isRead) }
        if isRead {
            headRead = at
            lastReadEnd = address &+ 2
        } else {
            lastWriteEnd = address &+ 2
        }
        return (address, at..<(at + 2))
    }

    /// The fields of a used-as-written record: its queue, and the id and
    /// len of the newest 8-byte write.
    @inlinable @inline(__always)
    mutating func usedAsWrittenFields(_ tagOffset: Int) throws(ChunkDecodeError) -> (queue: UInt16, id: UInt32, len: UInt32) {
        let queue: UInt16 = try narrow()
        guard usedWrite >= 0 else {
            if cursors { return (queue, 0, 0) }
            throw fail(tagOffset, "used as written, but no 8-byte write came before it in this chunk")
        }
        let at = contentBase + usedWrite
        return (queue, UInt32(littleEndian: at.loadUnaligned(as: UInt32.self)), UInt32(littleEndian: at.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
    }

    /// A stored 2-byte read at `address`, its bytes at `offset`: a ring
    /// cursor takes it (format 1.7). Out of line: inline, it made the record
    /// parser it sits in too large for the matcher to inline (a 1.6 trace's
    /// replay +2.9% instructions).
    @usableFromInline @inline(never)
    mutating func ringCursorTakes(_ address: UInt64, at offset: Int) {
        ring.indexAccessed(address, value(at: offset), recent: false, isRead: true)
    }

    /// The little-endian u16 at content (or materialised) offset `at`.
    @inlinable @inline(__always)
    func value(at offset: Int) -> UInt16 { UInt16(littleEndian: (contentBase + offset).loadUnaligned(as: UInt16.self)) }

    /// A successful 8-byte write at `address`, its bytes at `offset`, that is
    /// no cursor record: the used write, and in 1.7 a used cursor takes it
    /// (``RingCursors``).
    @inlinable @inline(__always)
    mutating func usedElement(_ address: UInt64, at offset: Int) {
        usedWrite = offset
        if cursors { usedCursorTakes(address, at: offset) }
    }

    /// A used cursor takes an 8-byte write at `address`, its bytes at
    /// `offset` (format 1.7). Out of line, as ``ringCursorTakes(_:at:)``.
    @usableFromInline @inline(never)
    mutating func usedCursorTakes(_ address: UInt64, at offset: Int) {
        ring.moveUsed(ring.usedCursor(taking: address), address, UInt32(littleEndian: (contentBase + offset).loadUnaligned(as: UInt32.self)))
    }

    /// Whether the record at `tagOffset` (a repeat or incremented record,
    /// whose first field, its address code, has been decoded) names the
    /// same address as an access with a `w` below ``RingCursors/recentBack`` (at most that many back):
    /// a 2-byte access the index cache takes (format 1.7).
    @usableFromInline @inline(never)
    func namesRecentAccess(_ tagOffset: Int) -> Bool {
        var r = reader
        r.offset = tagOffset &+ 1
        guard let v = try? r.varint() else { return false }
        return v & 3 == AddressCode.same && v >> 2 < UInt64(RingCursors.recentBack)
    }

    /// A cursor record (``CursorRecord``, format 1.7): a 2-byte access at an
    /// index cache entry, the avail ring slot after a ring cursor, or the
    /// used element after a used cursor. Its bytes are materialised after
    /// the content; the cursor moves; it enters the history, not the repeat
    /// table.
    @usableFromInline @_transparent
    mutating func cursorAccess(_ tagOffset: Int) throws(ChunkDecodeError) -> (isWrite: Bool, address: UInt64, bytes: Range<Int>) {
        let v = try varint()
        let at = end &+ materialised
        let j = Int(truncatingIfNeeded: v >> 2) & 1
        if v & 3 == CursorRecord.usedTag {
            let len = try varint()
            guard v >> 3 <= UInt64(UInt32.max), len <= UInt64(UInt32.max) else {
                throw fail(tagOffset, "used element cursor record of id change code \(v >> 3) and len \(len) (each below 2^32)")
            }
            guard at + 8 <= buffer.storage.count else { throw fail(tagOffset, "cursor records materialise more bytes than the chunk's room") }
            let cursor = ring.used(j)
            let address = cursor.address &+ 8, id = cursor.id &+ RingCursors.change32(v >> 3), length = UInt32(truncatingIfNeeded: len)
            buffer.materialise(UInt64(id) | UInt64(length) << 32, at: at)
            materialised &+= 8
            ring.moveUsed(j, address, id)
            usedWrite = at
            entered(address, length: 8)
            lastWriteEnd = address &+ 8
            return (true, address, at..<(at &+ 8))
        }
        let ringSlot = v & 3 == CursorRecord.ringTag, change = ringSlot ? v >> 3 : v >> 4
        guard change <= 0xFFFF else { throw fail(tagOffset, "cursor record's change \(change) is not below 65,536") }
        guard at + 2 <= buffer.storage.count else { throw fail(tagOffset, "cursor records materialise more bytes than the chunk's room") }
        let address: UInt64, value: UInt16, isWrite: Bool
        if ringSlot {
            let cursor = ring.ring(j)
            address = cursor.address &+ 2
            value = cursor.value &+ RingCursors.change16(change)
            ring.moveRing(j, address, value)
            isWrite = false
        } else {
            let i = Int(truncatingIfNeeded: v >> 1) & 3
            address = ring.address(i)
            value = ring.value(i) &+ UInt16(truncatingIfNeeded: change)
            ring.set(i, value)
            isWrite = v & 8 != 0
        }
        buffer.materialise(value, at: at)
        materialised &+= 2
        entered(address, length: 2)
        if isWrite {
            lastWriteEnd = address &+ 2
        } else {
            headRead = at
            lastReadEnd = address &+ 2
        }
        return (isWrite, address, at..<(at &+ 2))
    }

    /// Descriptor `i` of a chain of `n` read just before it: recent read
    /// `n - 1 - i` (checked by ``chainAsReadHeader(_:)``), as the device reads
    /// a descriptor: address, length, flags, next, little-endian.
    @inlinable @inline(__always)
    func asReadDescriptor(_ i: Int, of n: Int) -> TraceDescriptor {
        let at = contentBase + recentReads.get(n - 1 - i).unsafelyUnwrapped.start
        return TraceDescriptor(addr: UInt64(littleEndian: at.loadUnaligned(as: UInt64.self)),
                               len: UInt32(littleEndian: at.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
                               flags: UInt16(littleEndian: at.loadUnaligned(fromByteOffset: 12, as: UInt16.self)),
                               next: UInt16(littleEndian: at.loadUnaligned(fromByteOffset: 14, as: UInt16.self)))
    }

    /// The fields of a repeated read or write record: a successful access
    /// whose length is its bytes' count.
    @inlinable @inline(__always)
    mutating func repeatedAccess(isRead: Bool, _ tagOffset: Int) throws(ChunkDecodeError) -> (address: UInt64, bytes: Range<Int>) {
        try repeatedAccess(isRead: isRead, at: try address(from: isRead ? lastReadEnd : lastWriteEnd, tagOffset), tagOffset)
    }

    /// The same, its address already decoded.
    @inlinable @inline(__always)
    mutating func repeatedAccess(isRead: Bool, at address: UInt64, _ tagOffset: Int) throws(ChunkDecodeError) -> (address: UInt64, bytes: Range<Int>) {
        guard let last = repeatTable?.lookup(address) else {
            throw fail(tagOffset, "repeated \(isRead ? "read" : "write") at 0x\(String(address, radix: 16)) repeats no access in this chunk")
        }
        let range = last.offset..<(last.offset + last.length)
        if cursors && last.length == 2 { ring.indexAccessed(address, value(at: last.offset), recent: namesRecentAccess(tagOffset), isRead: isRead) }
        if isRead {
            if last.length >= 8 { recentReads.push(length: last.length, start: last.offset) }
            if last.length == 2 { headRead = last.offset }
            lastReadEnd = address &+ UInt64(last.length)
        } else {
            if last.length == 8 { usedElement(address, at: last.offset) }
            lastWriteEnd = address &+ UInt64(last.length)
        }
        entered(address, length: UInt64(last.length))
        return (address, range)
    }

    /// The fields of a recalled read (``RecalledRecord/read``): its address
    /// and the bytes of the recent read it names, which it enters the recent
    /// reads (and the repeat table, 16 bytes or fewer) with. Out of line:
    /// rarer than the records the matcher keeps inline.
    @usableFromInline @inline(never)
    mutating func recalledRead(_ tagOffset: Int) throws(ChunkDecodeError) -> (address: UInt64, bytes: Range<Int>) {
        let address = try address(from: lastReadEnd, tagOffset)
        let i = try varint()
        guard i < UInt64(RecentReads.capacity), let read = recentReads.get(Int(i)) else {
            throw fail(tagOffset, "recalled read names recent read \(i); the chunk has fewer")
        }
        recentReads.push(length: read.length, start: read.start)
        if read.length <= RepeatTable.maxLength { remember(address, read.length, read.start) }
        entered(address, length: UInt64(read.length))
        lastReadEnd = address &+ UInt64(read.length)
        return (address, read.start..<(read.start &+ read.length))
    }

    /// The access of `length` bytes at `address`, its bytes at `offset`, is
    /// the last at its address (in this decoder's own table).
    @inlinable @inline(__always)
    mutating func remember(_ address: UInt64, _ length: Int, _ offset: Int) {
        ownRepeatTable()
        repeatTable.unsafelyUnwrapped.record(address, length: length, offset: offset)
    }

    /// Makes the repeat table this decoder's own before it writes it (made
    /// on first use; copied when a copy of this decoder holds it too).
    @inlinable @inline(__always)
    mutating func ownRepeatTable() {
        if !exclusive && !isKnownUniquelyReferenced(&repeatTable) { repeatTable = repeatTable.map(RepeatTable.init(copying:)) ?? RepeatTable() }
    }

    /// Makes this decoder the only holder of what its records write (its
    /// repeat table and counters: copies of what another copy of it holds),
    /// so that it writes them from now on without checking. Its owner must
    /// then never copy it (a copy would share them); ``RecordStream`` of the
    /// direct replay, which takes each chunk's decoder once and matches it in
    /// place, is the one. The uniqueness checks were 3% of that replay's
    /// instructions (docs/performance.md).
    public mutating func makeExclusive() {
        counters = DecoderCounters(copying: counters)
        // A decoder at its chunk's start has no table yet (none is copied).
        if repeats { repeatTable = repeatTable.map(RepeatTable.init(copying:)) ?? RepeatTable() }
        exclusive = true
    }

    /// A memory read or write that stores only its first bytes (``TruncatedMemoryRecord``).
    @usableFromInline @inline(never)
    mutating func truncatedMemory(_ tagOffset: Int) throws(ChunkDecodeError) -> TraceEvent.Body {
        let flags = TruncatedMemoryRecord.Flags(rawValue: try byte())
        let isWrite = flags.contains(.write), ok = !flags.contains(.failed)
        let what = isWrite ? "memory write" : "memory read"
        guard isWrite || ok else { throw fail(tagOffset, "a failed memory read with part of a payload (a failed read stores none)") }
        let address = try self.address(from: isWrite ? lastWriteEnd : lastReadEnd, tagOffset)
        let length = try varint()
        let stored = try varint()
        guard length <= UInt64(UInt32.max) else { throw fail(tagOffset, "\(what) length \(length) out of range") }
        guard stored < length else { throw fail(tagOffset, "\(what) of \(length) bytes stores \(stored) of them (a part is fewer)") }
        let range = try skip(stored, tagOffset: tagOffset, isWrite ? "memory write's stored part" : "memory read's stored part")
        entered(address, length: length)
        if isWrite {
            lastWriteEnd = address &+ length
            return .memoryWrite(address: address, length: Int(length), ok: ok, bytes: range)
        }
        lastReadEnd = address &+ length
        return .memoryRead(address: address, length: Int(length), ok: true, bytes: range)
    }

    mutating func details(_ tagOffset: Int) throws(ChunkDecodeError) -> EventDetails {
        let n = try varint()
        guard n <= 3 else { throw fail(tagOffset, "\(n) details (at most 3)") }
        var d = EventDetails()
        d.count = Int(n)
        if n > 0 { d.a = try varint() }
        if n > 1 { d.b = try varint() }
        if n > 2 { d.c = try varint() }
        return d
    }
}
