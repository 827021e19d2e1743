//! Encodes events into one chunk's uncompressed content.

#if canImport(Glibc)
import Glibc
#endif
import HostPrimitives

/// Builds the uncompressed content of one chunk: a small header, the
/// checkpoint, then events. Fields are varints, deltas against the previous
/// event of the same kind, no padding; a memory write whose bytes equal one of
/// the last four reads of the same length refers to it instead of repeating
/// the bytes. All context resets at each chunk, so every chunk decodes alone.
///
/// Not thread-safe; the recorder serialises access.
public struct ChunkEncoder {
    /// The content so far. Events are written straight into memory the
    /// encoder owns (one capacity check per field, no per-byte array
    /// bookkeeping); copied on write at event granularity.
    @usableFromInline var out: EncoderBuffer
    /// A copy of the content so far.
    public var content: [UInt8] { out.bytes }
    public let firstEvent: UInt64
    public private(set) var flags: ChunkFlags
    public let baseTime: UInt64
    /// Where the flags varint sits in the content (one byte: flags stay below 128).
    let flagsOffset: Int
    /// Events encoded so far.
    public var eventCount: UInt64 { encodedEvents }
    @usableFromInline var encodedEvents: UInt64 = 0
    /// Timestamp of the last MMIO access encoded.
    public private(set) var lastTime: UInt64

    @usableFromInline var nic = 0
    @usableFromInline var vcpu: UInt32 = 0
    @usableFromInline var lastReadEnd: UInt64 = 0
    @usableFromInline var lastWriteEnd: UInt64 = 0
    @usableFromInline var lastDescriptorEnd: UInt64 = 0
    /// NICs whose counters `out` holds (``EncoderBuffer/counters``: per NIC,
    /// the last value of each counter, from the checkpoint, then events).
    @usableFromInline let counterNICs: Int
    /// Recent read payloads: (length, start offset in `out`), newest first.
    @usableFromInline var recentReads = RecentReads()
    /// Which later formats' records this encoder writes (``RecordFeatures``):
    /// 1.4's repeats (`out`'s table is kept), 1.5's address codes and
    /// predicted records, 1.6's far reach and recalled reads, 1.7's ring cursors.
    @usableFromInline let features: RecordFeatures
    @inlinable var repeats: Bool { features.repeats }
    @inlinable var predicts: Bool { features.predicts }
    @inlinable var recalls: Bool { features.recalls }
    @inlinable var cursors: Bool { features.cursors }
    /// The buffers of the last chain (address codes name them).
    @usableFromInline var recentChain = RecentChain()
    /// The value of the newest successful 2-byte read (little-endian; -1:
    /// none yet): a chain at that head is a ``PredictedRecord/chainAtHead``.
    @usableFromInline var headRead = -1
    /// The ring cursors (format 1.7), and in every format the used write:
    /// the id and len of the newest successful 8-byte write, which a used
    /// publication may repeat (``PredictedRecord/usedAsWritten``).
    @usableFromInline var ring = RingCursors()
    /// Whether the chunk has made a successful 8-byte write (before 1.7, a
    /// used publication as written needs one).
    @usableFromInline var usedWritten = false

    /// - Parameters:
    ///   - checkpoint: every NIC's state (required unless `continuation`).
    ///   - counters: per NIC, the counter values the events start from (a
    ///     continuation chunk's baseline; otherwise taken from `checkpoint`).
    ///   - pool: memory earlier chunks used, taken instead of a new allocation.
    ///   - repeats: write repeat records (format 1.4); false writes what a
    ///     1.3 reader reads.
    ///   - predicts: write address codes and predicted records (format 1.5,
    ///     with `repeats`); false writes what a 1.4 reader reads.
    ///   - recalls: reach 4096 accesses back and write recalled reads
    ///     (format 1.6, with `predicts`); false writes what a 1.5 reader reads.
    ///   - cursors: write cursor records (format 1.7, with `recalls`); false
    ///     writes what a 1.6 reader reads.
    public init(firstEvent: UInt64, baseTime: UInt64, checkpoint: [NICCheckpoint]?, counters: [[UInt64]],
                capacity: Int = TraceLayout.chunkTargetSize + 4096, pool: BufferPool? = nil,
                repeats: Bool = true, predicts: Bool = true, recalls: Bool = true, cursors: Bool = true) {
        self.firstEvent = firstEvent
        features = RecordFeatures(repeats: repeats, predicts: predicts, recalls: recalls, cursors: cursors)
        self.baseTime = baseTime
        lastTime = baseTime
        flags = checkpoint == nil ? .continuation : .checkpoint
        var writer = ByteWriter(capacity: 4096)
        let start = checkpoint?.map(\.counters) ?? counters
        counterNICs = start.count
        writer.varint(firstEvent)
        flagsOffset = writer.count
        writer.varint(flags.rawValue)
        writer.varint(baseTime)
        writer.varint(UInt64(start.count))
        if let checkpoint {
            for c in checkpoint { c.encode(into: &writer) }
        } else {
            for nicCounters in counters {
                for v in nicCounters { writer.varint(v) }
            }
        }
        out = pool?.take(capacity: max(capacity, writer.count + 64)) ?? EncoderBuffer(capacity: max(capacity, writer.count + 64))
        writer.bytes.withUnsafeBytes { out.append($0) }
        out.setCounters(start)
        if repeats { out.clearRepeats() }
    }

    /// Marks the chunk as ending inside an access (``ChunkFlags/endsInsideAccess``):
    /// the next chunk continues the access. Call once its last event is encoded.
    public mutating func markEndsInsideAccess() {
        own()
        flags.insert(.endsInsideAccess)
        out.base.storeBytes(of: UInt8(truncatingIfNeeded: flags.rawValue), toByteOffset: flagsOffset, as: UInt8.self)
    }

    /// Makes `out` this encoder's own before an event is written (a copy of
    /// the encoder must not see later events).
    @inlinable @inline(__always)
    mutating func own() {
        if _slowPath(!exclusive) { ownShared() }
    }

    /// ``own()`` for an encoder that is not ``exclusive``: out of line, so
    /// that the records' code is laid out for the recorder's (exclusive) case.
    @usableFromInline @inline(never)
    mutating func ownShared() {
        if !isKnownUniquelyReferenced(&out) { out = out.copy() }
    }

    /// Set while one owner writes this encoder and nothing can hold a copy
    /// (a recorder's open chunk): `own()` then skips its uniqueness check on
    /// every event. Clear it before the encoder is handed to anyone.
    public var exclusive = false

    /// A placeholder with no content to speak of (a recorder between chunks).
    public static var idle: ChunkEncoder { ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: nil, counters: [], capacity: 64, repeats: false, predicts: false, recalls: false, cursors: false) }

    /// Bytes encoded so far.
    public var size: Int { out.count }

    /// A size for ``pastHardLimit`` (a recorder's hard limit; none: `Int.max`).
    public var hardLimit: Int {
        get { out.hardLimit }
        set {
            own()
            out.hardLimit = newValue
        }
    }

    /// Whether the content has reached ``hardLimit`` bytes: one comparison
    /// of two pointers, for a recorder that asks after every access.
    @inlinable public var pastHardLimit: Bool { out.end >= out.hardEnd }

    /// Per NIC, the counter values after the last event (a continuation chunk's baseline).
    public var currentCounters: [[UInt64]] { (0..<counterNICs).map { n in (0..<16).map { out.counters[16 * n + $0] } } }

    /// Appends one event of NIC `nic`. `vcpu` is the context of an MMIO
    /// access (the only record that switches vCPU); `time` the timestamp of a
    /// cause (MMIO, transport). A chain is followed by exactly
    /// `descriptorCount` calls of ``descriptor(addr:len:flags:next:)``.
    @inline(__always)
    public mutating func append(_ event: OutgoingEvent, nic: Int, vcpu: UInt32 = 0, time: UInt64 = 0) {
        switch event {
        case .mmioRead(let offset, let width, let value):
            mmio(.mmioRead, nic: nic, vcpu: vcpu, time: time, offset: offset, width: width, value: value)
        case .mmioWrite(let offset, let width, let value):
            mmio(.mmioWrite, nic: nic, vcpu: vcpu, time: time, offset: offset, width: width, value: value)
        case .memoryRead(let address, let length, let ok, let bytes):
            if ok && length > bytes.count {
                truncatedAccess(nic: nic, address: address, length: length, bytes: bytes, write: false)
            } else {
                memoryRead(nic: nic, address: address, bytes: bytes, ok: ok)
            }
        case .memoryWrite(let address, let length, let ok, let bytes):
            if length > bytes.count {
                truncatedAccess(nic: nic, address: address, length: length, bytes: bytes, write: true, ok: ok)
            } else {
                memoryWrite(nic: nic, address: address, bytes: bytes, ok: ok)
            }
        case .chain(let queue, let head, let descriptorCount):
            chain(nic: nic, queue: queue, head: head, descriptorCount: descriptorCount)
        case .used(let queue, let id, let len):
            used(nic: nic, queue: queue, id: id, len: len)
        case .counter(let index, let value):
            counter(nic: nic, index: index, value: value)
        case .interrupt(let kind):
            let small = kind < 15
            var c = begin(.interrupt, small ? UInt8(kind) : 15, nic: nic, reserving: RecordCursor.maxVarint)
            if !small { c.varint(UInt64(kind)) }
            end(c)
        case .poison(let queue, let code, let details):
            var c = begin(.poison, nic: nic, reserving: 6 * RecordCursor.maxVarint)
            c.varint(UInt64(queue))
            c.varint(code)
            Self.details(details, &c)
            end(c)
        case .status(let old, let new):
            var c = begin(.status, nic: nic, reserving: 2)
            c.byte(old)
            c.byte(new)
            end(c)
        case .features(let old, let new):
            var c = begin(.features, nic: nic, reserving: 2 * RecordCursor.maxVarint)
            c.varint(old)
            c.varint(new)
            end(c)
        case .pairs(let old, let new):
            var c = begin(.pairs, nic: nic, reserving: 2 * RecordCursor.maxVarint)
            c.varint(UInt64(old))
            c.varint(UInt64(new))
            end(c)
        case .reset:
            let c = begin(.reset, nic: nic, reserving: 0)
            end(c)
        case .warning(let code, let details):
            var c = begin(.warning, nic: nic, reserving: 5 * RecordCursor.maxVarint)
            c.varint(code)
            Self.details(details, &c)
            end(c)
        case .memoryBinding(let bound):
            let c = begin(.memoryBinding, bound ? 1 : 0, nic: nic, reserving: 0)
            end(c)
        case .transport(let code, let queue, let values):
            var c = begin(.transport, nic: nic, reserving: 7 * RecordCursor.maxVarint)
            c.byte(code)
            c.varint(UInt64(queue))
            Self.details(values, &c)
            timeDelta(time, &c)
            end(c)
        case .marker(let code, let details):
            var c = begin(.marker, nic: nic, reserving: 6 * RecordCursor.maxVarint)
            c.varint(code)
            Self.details(details, &c)
            timeDelta(time, &c)
            end(c)
        }
    }

    /// A chain event: its queue, head and descriptor count. Exactly
    /// `descriptorCount` calls of ``descriptor(addr:len:flags:next:)`` follow.
    @inlinable @inline(__always)
    public mutating func chain(nic: Int, queue: UInt16, head: UInt16, descriptorCount: Int) {
        threeFields(TraceEventKind.chain.rawValue, nic: nic, UInt64(queue), UInt64(head), UInt64(descriptorCount))
        recentChain.begin()
    }

    /// A record of `code` whose fields are three varints.
    @inlinable @inline(__always)
    mutating func threeFields(_ code: UInt8, nic: Int, _ a: UInt64, _ b: UInt64, _ d: UInt64) {
        var c = begin(code: code, nic: nic, reserving: 3 * RecordCursor.maxVarint)
        c.varint(a)
        c.varint(b)
        c.varint(d)
        end(c)
    }

    /// A chain event with its descriptors, `descriptor(i)` for each of `count`:
    /// a chain-as-read record when the newest recent reads are those very
    /// descriptors (``RepeatRecord/chainAsRead``), the chain and its
    /// descriptors otherwise.
    @inlinable @inline(__always)
    public mutating func chain(nic: Int, queue: UInt16, head: UInt16, count: Int,
                               descriptor: (Int) -> (addr: UInt64, len: UInt32, flags: UInt16, next: UInt16)) {
        // A chain of one descriptor (a TX frame of one buffer, an RX buffer)
        // is the commonest: compiled for that count, its compare and the
        // recent chain's slots are known, not looked up.
        // (Formats before 1.7 take the flags, inlined here too: one chain a frame.)
        if _slowPath(!cursors) {
            chainBody(nic: nic, queue: queue, head: head, count: count, descriptor: descriptor, features)
        } else if count == 1 {
            chainBody(nic: nic, queue: queue, head: head, count: 1, descriptor: descriptor, .all)
        } else {
            chainBody(nic: nic, queue: queue, head: head, count: count, descriptor: descriptor, .all)
        }
    }

    /// ``chain(nic:queue:head:count:descriptor:)``'s body, inlined once for
    /// a count of one and once for any (and for formats before 1.6).
    @inlinable @inline(__always)
    mutating func chainBody(nic: Int, queue: UInt16, head: UInt16, count: Int,
                            descriptor: (Int) -> (addr: UInt64, len: UInt32, flags: UInt16, next: UInt16), _ f: RecordFeatures) {
        if f.repeats && count >= 1 && count <= RecentReads.capacity && descriptorsWereRead(count, descriptor) {
            if f.predicts && headRead == Int(head) {
                var c = begin(code: PredictedRecord.chainAtHead, nic: nic, reserving: 2 * RecordCursor.maxVarint)
                c.varint(UInt64(queue))
                c.varint(UInt64(count))
                end(c)
            } else {
                threeFields(RepeatRecord.chainAsRead, nic: nic, UInt64(queue), UInt64(head), UInt64(count))
            }
            for i in 0..<count {
                let d = descriptor(i)
                recentChain.put(i, addr: d.addr, len: d.len)
            }
            recentChain.count = count
            let last = descriptor(count - 1)
            lastDescriptorEnd = last.addr &+ UInt64(last.len)
            return
        }
        chain(nic: nic, queue: queue, head: head, descriptorCount: count)
        for i in 0..<count {
            let d = descriptor(i)
            self.descriptor(addr: d.addr, len: d.len, flags: d.flags, next: d.next)
        }
    }

    /// Whether the newest `count` recent reads, oldest first, are 16 bytes
    /// each holding descriptor 0, 1, … as the device reads one (little-endian
    /// address, length, flags, next).
    @inlinable @inline(__always)
    func descriptorsWereRead(_ count: Int, _ descriptor: (Int) -> (addr: UInt64, len: UInt32, flags: UInt16, next: UInt16)) -> Bool {
        for i in 0..<count {
            guard let r = recentReads.get(count - 1 - i), r.length == 16 else { return false }
            let d = descriptor(i), at = UnsafeRawPointer(out.base + r.start)
            guard UInt64(littleEndian: at.loadUnaligned(as: UInt64.self)) == d.addr,
                  UInt32(littleEndian: at.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) == d.len,
                  UInt16(littleEndian: at.loadUnaligned(fromByteOffset: 12, as: UInt16.self)) == d.flags,
                  UInt16(littleEndian: at.loadUnaligned(fromByteOffset: 14, as: UInt16.self)) == d.next else { return false }
        }
        return true
    }

    /// A used-ring publication event.
    @inlinable @inline(__always)
    public mutating func used(nic: Int, queue: UInt16, id: UInt32, len: UInt32) {
        if (cursors || predicts && usedWritten) && id == ring.writtenID && len == ring.writtenLen {
            var c = begin(code: PredictedRecord.usedAsWritten, nic: nic, reserving: RecordCursor.maxVarint)
            c.varint(UInt64(queue))
            end(c)
            return
        }
        threeFields(TraceEventKind.used.rawValue, nic: nic, UInt64(queue), UInt64(id), UInt64(len))
    }

    /// One descriptor of the chain just begun; call exactly `descriptorCount` times.
    @inlinable @inline(__always)
    public mutating func descriptor(addr: UInt64, len: UInt32, flags: UInt16, next: UInt16) {
        own()
        var c = RecordCursor(out.tail(reserving: 4 * RecordCursor.maxVarint))
        c.zigzag(Int64(bitPattern: addr &- lastDescriptorEnd))
        c.varint(UInt64(len))
        c.varint(UInt64(flags))
        c.varint(UInt64(next))
        out.commit(c.p)
        lastDescriptorEnd = addr &+ UInt64(len)
        recentChain.add(addr: addr, len: len)
    }

    /// The tag byte of a record of `kind` (after a NIC context record when
    /// the NIC changes), with room reserved for `reserving` more bytes: the
    /// cursor that writes the record's fields; ``end(_:)`` closes it.
    @inlinable @inline(__always)
    mutating func begin(_ kind: TraceEventKind, _ small: UInt8 = 0, nic newNic: Int, reserving bytes: Int) -> RecordCursor {
        begin(code: kind.rawValue, small, nic: newNic, reserving: bytes)
    }

    /// The same for a record with `code` (``RecordCode``).
    @inlinable @inline(__always)
    mutating func begin(code: UInt8, _ small: UInt8 = 0, nic newNic: Int, reserving bytes: Int) -> RecordCursor {
        own()
        var c = RecordCursor(out.tail(reserving: bytes &+ 2 &+ RecordCursor.maxVarint))
        if newNic != nic {
            c.byte(RecordCode.tag(code: ContextRecord.nic.rawValue))
            c.varint(UInt64(newNic))
            nic = newNic
        }
        c.byte(RecordCode.tag(code: code, small: small))
        encodedEvents &+= 1
        return c
    }

    /// Ends the record `c` wrote.
    @inlinable @inline(__always)
    func end(_ c: RecordCursor) { out.commit(c.p) }

    /// A cause's time: the delta from the previous cause's (or the chunk's base).
    /// Monotonic: a clock that went backwards is recorded as no time passing.
    @inline(__always)
    mutating func timeDelta(_ time: UInt64, _ c: inout RecordCursor) {
        c.varint(time >= lastTime ? time - lastTime : 0)
        lastTime = max(time, lastTime)
    }

    mutating func mmio(_ kind: TraceEventKind, nic: Int, vcpu newVcpu: UInt32, time: UInt64, offset: UInt64, width: Int, value: UInt64) {
        if newVcpu != vcpu {
            own()
            var c = RecordCursor(out.tail(reserving: 1 + RecordCursor.maxVarint))
            c.byte(RecordCode.tag(code: ContextRecord.vcpu.rawValue))
            c.varint(UInt64(newVcpu))
            out.commit(c.p)
            vcpu = newVcpu
        }
        let small = width >= 0 && width < 15
        var c = begin(kind, small ? UInt8(width) : 15, nic: nic, reserving: 4 * RecordCursor.maxVarint)
        if !small { c.zigzag(Int64(width)) }
        c.varint(offset)
        c.varint(value)
        timeDelta(time, &c)
        end(c)
    }

    /// What the encoder's repeat table keeps of an access of `bytes` whose
    /// bytes are at content offset `at`: that offset, or for 2 bytes (ring
    /// indices, which incremented records change without bytes in the
    /// content) their little-endian value itself, so that no access the
    /// table names needs memory beside the content.
    @inlinable @inline(__always)
    static func entry(_ bytes: UnsafeRawBufferPointer, _ n: Int, at offset: Int) -> Int {
        n == 2 ? Int(UInt16(littleEndian: bytes.baseAddress.unsafelyUnwrapped.loadUnaligned(as: UInt16.self))) : offset
    }

    /// Whether the table's `entry` (``entry(_:_:at:)``) for an access of
    /// `n` bytes (1 to 16: `bytes.count`) holds `bytes`.
    @inlinable @inline(__always)
    func holds(_ entry: Int, _ bytes: UnsafeRawBufferPointer, _ n: Int) -> Bool {
        let p = bytes.baseAddress.unsafelyUnwrapped
        if n == 2 { return entry == Int(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self))) }
        return bytesEqual(out.base + entry, p, n)
    }

    /// A memory read of `bytes` at `address` (its bytes stored when it succeeded).
    @inlinable @inline(__always)
    public mutating func memoryRead(nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool) {
        memoryAccess(write: false, nic: nic, address: address, bytes: bytes, ok: ok)
    }

    /// A memory read or write with this encoder's features: inlined with
    /// ``RecordFeatures/all`` for the newest format (a constant: the record
    /// tests no flag; serve's device thread −38 instructions a frame), out
    /// of line with the flags for an older one.
    @inlinable @inline(__always)
    mutating func memoryAccess(write: Bool, nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool) {
        if _fastPath(cursors) {
            if write { memoryWrite(nic: nic, address: address, bytes: bytes, ok: ok, .all) } else { memoryRead(nic: nic, address: address, bytes: bytes, ok: ok, .all) }
        } else {
            earlierMemoryAccess(write: write, nic: nic, address: address, bytes: bytes, ok: ok)
        }
    }

    /// ``memoryAccess(write:nic:address:bytes:ok:)`` for a format before 1.7: one copy, out of line.
    @usableFromInline @inline(never)
    mutating func earlierMemoryAccess(write: Bool, nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool) {
        if write { memoryWrite(nic: nic, address: address, bytes: bytes, ok: ok, features) } else { memoryRead(nic: nic, address: address, bytes: bytes, ok: ok, features) }
    }

    /// ``memoryRead(nic:address:bytes:ok:)``'s record, written with the features `f`.
    @inlinable @inline(__always)
    mutating func memoryRead(nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool, _ f: RecordFeatures) {
        let n = bytes.count
        if f.cursors && ok && n == 2 {
            let v = UInt16(littleEndian: bytes.baseAddress.unsafelyUnwrapped.loadUnaligned(as: UInt16.self))
            let i = ring.entry(of: address)
            if i >= 0 {
                cursorRecord(nic: nic, UInt64(v &- ring.value(i)) << 4 | UInt64(i) << 1)
                ring.set(i, v)
                return cursorRead(address, v, f)
            }
            // Cursor 0 (the one moved last: a streaming queue's) inline, cursor 1 out of line.
            if address == ring.ring0 &+ 2 { return ringRead(nic: nic, 0, address, v, f) }
            if address == ring.ring1 &+ 2 { return secondRingRead(nic: nic, address, v) }
        }
        let small = f.repeats && ok && n > 0 && n <= RepeatTable.maxLength
        let last = small ? out.repeatTable.lookupWithOrdinal(address) : nil
        if f.cursors && ok && n == 2 {
            indexAccessed(address, UInt16(littleEndian: bytes.baseAddress.unsafelyUnwrapped.loadUnaligned(as: UInt16.self)),
                          recent: recentIndex(last), isRead: true)
        }
        if let last, last.length == n, holds(last.offset, bytes, n) {
            var c = begin(code: RepeatRecord.read, nic: nic, reserving: 2 * RecordCursor.maxVarint)
            addressCode(address, length: n, sameAs: last.ordinal, from: lastReadEnd, &c, f)
            end(c)
            if n >= 8 { recentReads.push(length: n, start: last.offset) }
            if n == 2 { headRead = last.offset }
            if f.predicts { out.repeatTable.touch(at: last.at) }
            countAccess(f)
            lastReadEnd = address &+ UInt64(n)
            return
        }
        if f.predicts && n == 2, let last, last.length == 2 {
            headRead = incremented(PredictedRecord.incrementedRead, nic: nic, address: address, bytes: bytes,
                                   lastOffset: last.offset, lastOrdinal: last.ordinal, slot: last.at, from: lastReadEnd, f)
            return
        }
        // Longer than the repeat table's accesses: frame payload (a descriptor
        // read elsewhere with the same bytes is too rare to pay a compare for).
        if f.recalls && ok && n > RepeatTable.maxLength, let i = recentReads.newest(holding: bytes, in: out.base) {
            return recalledRead(nic: nic, address: address, recent: i, sameAs: last?.ordinal ?? -1, f)
        }
        var c = begin(.memoryRead, ok ? 0 : 1, nic: nic, reserving: 3 &* RecordCursor.maxVarint &+ n)
        addressCode(address, length: n, sameAs: last?.ordinal ?? -1, from: lastReadEnd, &c, f)
        c.varint(UInt64(n))
        if ok {
            let at = c.p - out.base
            if n >= 8 { recentReads.push(length: n, start: at) }
            let entry = Self.entry(bytes, n, at: at)
            if n == 2 { headRead = entry }
            if small {
                if let last { out.repeatTable.record(at: last.at, address, length: n, offset: entry) } else { out.repeatTable.record(address, length: n, offset: entry) }
            }
            c.copy(bytes)
        }
        end(c)
        countAccess(f)
        lastReadEnd = address &+ UInt64(n)
    }

    /// A cursor record (``CursorRecord``) of `v` (its low bits say which cursor).
    @inlinable @inline(__always)
    mutating func cursorRecord(nic: Int, _ v: UInt64) {
        var c = begin(code: CursorRecord.code, nic: nic, reserving: RecordCursor.maxVarint)
        c.varint(v)
        end(c)
    }

    /// A 2-byte read of `value` at `address`, ring cursor `j`'s next slot: its cursor record.
    @inlinable @inline(__always)
    mutating func ringRead(nic: Int, _ j: Int, _ address: UInt64, _ value: UInt16, _ f: RecordFeatures) {
        cursorRecord(nic: nic, RingCursors.zigzag(value, from: ring.ring(j).value) << 3 | UInt64(j) << 2 | CursorRecord.ringTag)
        ring.moveRing(j, address, value)
        cursorRead(address, value, f)
    }

    /// An 8-byte write of a used element (`id`, `len`) at `address`, used cursor `j`'s next: its cursor record.
    @inlinable @inline(__always)
    mutating func usedWrite(nic: Int, _ j: Int, _ address: UInt64, _ id: UInt32, _ len: UInt32, _ f: RecordFeatures) {
        var c = begin(code: CursorRecord.code, nic: nic, reserving: 2 &* RecordCursor.maxVarint)
        c.varint(RingCursors.zigzag(id, from: ring.used(j).id) << 3 | UInt64(j) << 2 | CursorRecord.usedTag)
        c.varint(UInt64(len))
        end(c)
        ring.moveUsed(j, address, id)
        countAccess(f)
        lastWriteEnd = address &+ 8
    }

    /// ``ringRead(nic:_:_:_:_:)`` of ring cursor 1, out of line: the hot
    /// functions the recorder's reads are inlined into stay small (their
    /// register saves were ~10 instructions a call with both cursors inline).
    @usableFromInline @inline(never)
    mutating func secondRingRead(nic: Int, _ address: UInt64, _ value: UInt16) {
        ringRead(nic: nic, 1, address, value, .all)
    }

    /// A successful 8-byte write (format 1.7) that is not at used cursor 0's
    /// next element: at cursor 1's, a cursor record; elsewhere, it takes a
    /// cursor and is written as the other records are. Out of line, as
    /// ``secondRingRead(nic:_:_:)``.
    @usableFromInline @inline(never)
    mutating func otherUsedWrite(nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool, _ id: UInt32, _ len: UInt32) {
        if address == ring.used1 &+ 8 { return usedWrite(nic: nic, 1, address, id, len, .all) }
        ring.moveUsed(ring.usedCursor(taking: address), address, id)
        tableWrite(nic: nic, address: address, bytes: bytes, ok: ok, .all)
    }

    /// A 2-byte access that is no cursor record (format 1.7): the index
    /// cache or a ring cursor takes it (``RingCursors/indexAccessed(_:_:recent:isRead:)``).
    /// Out of line, as ``secondRingRead(nic:_:_:)``.
    @usableFromInline @inline(never)
    mutating func indexAccessed(_ address: UInt64, _ value: UInt16, recent: Bool, isRead: Bool) {
        ring.indexAccessed(address, value, recent: recent, isRead: isRead)
    }

    /// What a 2-byte read of `value` at `address` written as a cursor record leaves.
    @inlinable @inline(__always)
    mutating func cursorRead(_ address: UInt64, _ value: UInt16, _ f: RecordFeatures) {
        headRead = Int(value)
        countAccess(f)
        lastReadEnd = address &+ 2
    }

    /// Whether a 2-byte access whose last access at its address the table
    /// holds as `last` is written with the address code ``AddressCode/same``
    /// within ``RingCursors/recentBack`` accesses (a repeat or incremented
    /// record: the index cache takes it).
    @inlinable @inline(__always)
    func recentIndex(_ last: (offset: Int, length: Int, ordinal: Int, at: Int)?) -> Bool {
        guard let last, last.length == 2 else { return false }
        return out.repeatTable.reach(last.ordinal, limit: RingCursors.recentBack) != nil
    }

    /// A successful read whose bytes are those of recent read `recent`: a
    /// recalled read (``RecalledRecord/read``), which enters the recent
    /// reads (and the repeat table, 16 bytes or fewer) with that read's bytes.
    /// Transparent, as ``incremented(_:nic:address:bytes:lastOffset:lastOrdinal:slot:from:)``:
    /// out of line it cost serve ~30 instructions a frame.
    @usableFromInline @_transparent
    mutating func recalledRead(nic: Int, address: UInt64, recent i: Int, sameAs: Int, _ f: RecordFeatures) {
        let read = recentReads.get(i).unsafelyUnwrapped
        var c = begin(code: RecalledRecord.read, nic: nic, reserving: 2 &* RecordCursor.maxVarint)
        if sameAs < 0, let code = payloadCode(address, length: read.length) {
            c.varint(code)
        } else {
            addressCode(address, length: read.length, sameAs: sameAs, from: lastReadEnd, &c, f)
        }
        c.varint(UInt64(i))
        end(c)
        recentReads.push(length: read.length, start: read.start)
        // (Recent reads are 8 bytes or more: the table keeps their offset, never a 2-byte value.)
        if read.length <= RepeatTable.maxLength { out.repeatTable.record(address, length: read.length, offset: read.start) }
        countAccess(f)
        lastReadEnd = address &+ UInt64(read.length)
    }

    /// Writes `address` (an access of `length` bytes) as a 1.5 address code
    /// (``AddressCode``: the same address as an access the history keeps,
    /// the end of one, a place in the last chain's buffers, or the delta
    /// from `end`), or in a 1.4 chunk as the zigzag delta from `end`.
    /// `sameAs` is the encoder's ordinal of the last access at `address`
    /// the repeat table found (-1: none).
    @inlinable @inline(__always)
    mutating func addressCode(_ address: UInt64, length: Int, sameAs: Int, from end: UInt64, _ c: inout RecordCursor, _ f: RecordFeatures) {
        let delta = Int64(bitPattern: address &- end)
        guard f.predicts else { return c.zigzag(delta) }
        // The table's slot names the access it was last set by, which the
        // history may still keep. (The reach is read before the table is
        // borrowed: read inside the condition, it crashed Swift 6.3's copy
        // propagation, as in `memoryWrite`.)
        let limit = f.reach
        if sameAs >= 0, let back = out.repeatTable.reach(sameAs, limit: limit) { return c.varint(back << 2 | AddressCode.same) }
        let code = otherAddressCode(address, length: length, delta: delta)
        c.varint(code)
        if code == AddressCode.other { c.varint(address) }
    }

    /// The address code of frame payload (an access longer than any whose
    /// end a code names) in the last chain's first buffer, the commonest
    /// place of a recalled or truncated payload: what
    /// ``otherAddressCode(_:length:delta:)`` gives it, without the call; nil
    /// elsewhere (format 1.5 and later).
    @inlinable @inline(__always)
    func payloadCode(_ address: UInt64, length: Int) -> UInt64? {
        let inFirst = address &- recentChain.a0
        guard length > RepeatTable.maxLength && recentChain.count > 0 && inFirst < recentChain.l0 && inFirst < 1 << 58 else { return nil }
        return AddressCode.inChain(0, offset: inFirst)
    }

    /// The address code of an access whose address the history does not
    /// hold: the end of one it holds, a place in the last chain's buffers,
    /// the delta, or ``AddressCode/other`` alone (the address follows).
    @usableFromInline @inline(never)
    mutating func otherAddressCode(_ address: UInt64, length: Int, delta: Int64) -> UInt64 {
        let table = out.repeatTable
        if length &- 1 < RepeatTable.maxLength, let before = table.lookupWithOrdinal(address &- UInt64(length)), before.length == length,
           let back = table.reach(before.ordinal, limit: features.reach) {
            return back << 2 | AddressCode.end
        }
        if let inChain = recentChain.holding(address), inChain.offset < 1 << 58 {
            return AddressCode.inChain(inChain.index, offset: inChain.offset)
        }
        let z = UInt64(bitPattern: (delta << 1) ^ (delta >> 63))
        return z < 1 << 62 ? z << 2 | AddressCode.delta : AddressCode.other
    }

    /// Counts a memory access (format 1.5: every memory record; the encoder
    /// finds accesses by ordinal and keeps no history of its own, so unlike
    /// the decoder's `entered` it needs neither address nor length).
    @inlinable @inline(__always)
    func countAccess(_ f: RecordFeatures) {
        if f.predicts { out.repeatTable.countAccess() }
    }

    /// A successful 2-byte access whose last access at its address (its
    /// value `lastOffset`, as the table keeps 2-byte accesses: ``entry(_:_:at:)``)
    /// held another value: an incremented record (code `code`,
    /// ``PredictedRecord``) of the amount added. The table keeps the new
    /// value (a decoder materialises its bytes; the encoder needs none);
    /// returns it. Transparent:
    /// `@inline(__always)` left it a call the compiler would not inline
    /// (about 30 instructions of call and arguments, twice a frame).
    @usableFromInline @_transparent
    mutating func incremented(_ code: UInt8, nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer,
                              lastOffset: Int, lastOrdinal: Int, slot: Int, from accessEnd: UInt64, _ f: RecordFeatures) -> Int {
        let old = UInt16(truncatingIfNeeded: lastOffset)
        let new = UInt16(littleEndian: bytes.baseAddress!.loadUnaligned(as: UInt16.self))
        var c = begin(code: code, nic: nic, reserving: 3 * RecordCursor.maxVarint)
        addressCode(address, length: 2, sameAs: lastOrdinal, from: accessEnd, &c, f)
        c.varint(UInt64(new &- old))
        end(c)
        out.repeatTable.record(at: slot, address, length: 2, offset: Int(new))
        countAccess(f)
        if code == PredictedRecord.incrementedRead { lastReadEnd = address &+ 2 } else { lastWriteEnd = address &+ 2 }
        return Int(new)
    }

    /// A memory write of `bytes` at `address`: a reference to one of the last
    /// four reads when it repeats one's bytes exactly.
    @inlinable @inline(__always)
    public mutating func memoryWrite(nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool) {
        memoryAccess(write: true, nic: nic, address: address, bytes: bytes, ok: ok)
    }

    /// ``memoryWrite(nic:address:bytes:ok:)``'s record, written with the features `f`.
    @inlinable @inline(__always)
    mutating func memoryWrite(nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool, _ f: RecordFeatures) {
        let n = bytes.count
        let p = bytes.baseAddress.unsafelyUnwrapped
        if f.cursors && ok && n == 2 {
            let i = ring.entry(of: address)
            if i >= 0 {
                let v = UInt16(littleEndian: p.loadUnaligned(as: UInt16.self))
                cursorRecord(nic: nic, UInt64(v &- ring.value(i)) << 4 | 8 | UInt64(i) << 1)
                ring.set(i, v)
                countAccess(f)
                lastWriteEnd = address &+ 2
                return
            }
        }
        if ok && n == 8 {
            let id = UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)), len = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            (ring.writtenID, ring.writtenLen) = (id, len)
            if f.cursors {
                if address == ring.used0 &+ 8 { return usedWrite(nic: nic, 0, address, id, len, f) }
                return otherUsedWrite(nic: nic, address: address, bytes: bytes, ok: ok, id, len)
            }
            usedWritten = true   // (1.7 predicts from the first write on: `used` does not ask)
        }
        tableWrite(nic: nic, address: address, bytes: bytes, ok: ok, f)
    }

    /// A memory write that is no cursor record: a repeat, an incremented
    /// write, or the write with its bytes (or a reference to a read's).
    @inlinable @inline(__always)
    mutating func tableWrite(nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool, _ f: RecordFeatures) {
        let n = bytes.count
        let p = bytes.baseAddress.unsafelyUnwrapped
        let tableSized = f.repeats && ok && n > 0 && n <= RepeatTable.maxLength
        let last = tableSized ? out.repeatTable.lookupWithOrdinal(address) : nil
        if f.cursors && ok && n == 2 {
            indexAccessed(address, UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)), recent: recentIndex(last), isRead: false)
        }
        // (Nested, not two `if let last` in a row: Swift 6.3's copy
        // propagation crashed on that shape in the device's frame writes.)
        if let last, last.length == n {
            if holds(last.offset, bytes, n) {
                var c = begin(code: RepeatRecord.write, nic: nic, reserving: 2 * RecordCursor.maxVarint)
                addressCode(address, length: n, sameAs: last.ordinal, from: lastWriteEnd, &c, f)
                end(c)
                if f.predicts { out.repeatTable.touch(at: last.at) }
                countAccess(f)
                lastWriteEnd = address &+ UInt64(n)
                return
            }
            if f.predicts && n == 2 {
                _ = incremented(PredictedRecord.incrementedWrite, nic: nic, address: address, bytes: bytes,
                                lastOffset: last.offset, lastOrdinal: last.ordinal, slot: last.at, from: lastWriteEnd, f)
                return
            }
        }
        var small: UInt8 = ok ? 0 : 1
        var read: Int?
        if n >= 8, let i = recentReads.newest(holding: bytes, in: out.base) {
            small |= 2 | UInt8(i) << 2
            read = recentReads.get(i)!.start
        }
        var c = begin(.memoryWrite, small, nic: nic, reserving: 3 * RecordCursor.maxVarint + (read == nil ? n : 0))
        addressCode(address, length: n, sameAs: last?.ordinal ?? -1, from: lastWriteEnd, &c, f)
        c.varint(UInt64(n))
        let at = read ?? (c.p - out.base)
        if read == nil { c.copy(bytes) }
        end(c)
        if tableSized {
            let entry = Self.entry(bytes, n, at: at)
            if let last { out.repeatTable.record(at: last.at, address, length: n, offset: entry) } else { out.repeatTable.record(address, length: n, offset: entry) }
        }
        countAccess(f)
        lastWriteEnd = address &+ UInt64(n)
    }

    /// A memory access of `length` bytes that stores only its first
    /// `bytes.count` (``TruncatedMemoryRecord``; a recorder's snaplen); it
    /// is no recent read. What ``append(_:nic:vcpu:time:)`` writes for a
    /// memory event whose `bytes` are fewer than its length; a recorder
    /// calls it directly, without building the event. `ok: false` is a
    /// failed write (a failed read stores no bytes and is never truncated).
    @inlinable @inline(__always)
    public mutating func truncatedAccess(nic: Int, address: UInt64, length: Int, bytes: UnsafeRawBufferPointer, write isWrite: Bool, ok: Bool = true) {
        let flags: TruncatedMemoryRecord.Flags = isWrite ? (ok ? .write : [.write, .failed]) : []
        var c = begin(code: TruncatedMemoryRecord.code, nic: nic, reserving: 1 + 4 * RecordCursor.maxVarint + bytes.count)
        c.byte(flags.rawValue)
        if predicts, let code = payloadCode(address, length: length) {
            c.varint(code)
        } else {
            addressCode(address, length: length, sameAs: -1, from: isWrite ? lastWriteEnd : lastReadEnd, &c, features)
        }
        c.varint(UInt64(length))
        c.varint(UInt64(bytes.count))
        c.copy(bytes)
        end(c)
        countAccess(features)
        if isWrite { lastWriteEnd = address &+ UInt64(length) } else { lastReadEnd = address &+ UInt64(length) }
    }

    /// A counter transition, as the delta from the counter's last value.
    @inlinable @inline(__always)
    public mutating func counter(nic: Int, index: Int, value: UInt64) {
        var c = begin(.counter, UInt8(index & 15), nic: nic, reserving: RecordCursor.maxVarint)
        if nic < counterNICs && index < 16 {
            let i = 16 &* nic &+ index
            c.varint(value &- out.counters[i])
            out.counters[i] = value
        } else {
            c.varint(value)
        }
        end(c)
    }

    /// Up to three details: a count, then the values.
    @inline(__always)
    static func details(_ d: EventDetails, _ c: inout RecordCursor) {
        c.varint(UInt64(d.count))
        if d.count > 0 { c.varint(d.a) }
        if d.count > 1 { c.varint(d.b) }
        if d.count > 2 { c.varint(d.c) }
    }

    /// Appends bytes that need not be a valid record: for tests and fuzz
    /// seeds that build hostile chunks; `events` is added to the chunk's event count.
    public mutating func appendRaw(_ bytes: [UInt8], events: UInt64 = 0) {
        own()
        bytes.withUnsafeBytes { out.append($0) }
        encodedEvents &+= events
    }
}

/// Chunk memory handed back once a chunk is written, so that recording
/// neither allocates nor faults in fresh pages for every chunk. A buffer is
/// reused only when nothing else still refers to it (a chunk someone kept
/// keeps its memory).
public final class BufferPool: @unchecked Sendable {
    let mutex = Mutex()
    var free: [EncoderBuffer] = []
    /// Most buffers kept.
    public let limit: Int

    public init(limit: Int) { self.limit = limit }

    /// An empty buffer: a reused one, or a new one of `capacity` bytes.
    func take(capacity: Int) -> EncoderBuffer {
        if var b = mutex.withLock({ free.popLast() }), isKnownUniquelyReferenced(&b) {
            b.count = 0
            b.hardLimit = .max
            return b
        }
        return EncoderBuffer(capacity: capacity)
    }

    func put(_ b: EncoderBuffer) { mutex.withLock { if free.count < limit { free.append(b) } } }

    /// Takes back an encoder's memory; the encoder must not be written again.
    public func recycle(_ encoder: ChunkEncoder) { put(encoder.out) }

    /// Buffers waiting to be reused.
    public var count: Int { mutex.withLock { free.count } }
}

/// Growable bytes the chunk encoder writes into directly.
@usableFromInline final class EncoderBuffer {
    @usableFromInline private(set) var base: UnsafeMutableRawPointer
    /// Where the next byte goes, and the end of the memory: records are
    /// written from a pointer and checked against one (no offset arithmetic
    /// per record).
    @usableFromInline private(set) var end: UnsafeMutableRawPointer
    @usableFromInline private(set) var limit: UnsafeMutableRawPointer
    /// ``ChunkEncoder/hardLimit``, and where in memory it falls (beyond any
    /// address while the limit is past the memory's end).
    var hardLimit = Int.max { didSet { placeHardEnd() } }
    @usableFromInline private(set) var hardEnd = UnsafeMutableRawPointer(bitPattern: UInt.max)!

    func placeHardEnd() {
        hardEnd = hardLimit <= capacity ? base + hardLimit : UnsafeMutableRawPointer(bitPattern: UInt.max)!
    }
    var capacity: Int { Int(bitPattern: limit) &- Int(bitPattern: base) }
    /// Bytes written.
    @usableFromInline var count: Int {
        @inline(__always) get { Int(bitPattern: end) &- Int(bitPattern: base) }
        @inline(__always) set { end = base + newValue }
    }
    /// The encoder's counter baselines (``ChunkEncoder``: NIC n's counter i
    /// at `16 * n + i`), kept beside its content so that a counter event
    /// updates them without an array's uniqueness check.
    @usableFromInline private(set) var counters: UnsafeMutablePointer<UInt64>
    var counterCapacity = 0
    /// The encoder's repeat table (format 1.4), made on first use and kept
    /// with the buffer, so that a pooled buffer brings it along.
    var table: RepeatTable?
    @usableFromInline var repeatTable: RepeatTable {
        @inline(__always) get { table.unsafelyUnwrapped }
    }

    /// Empties the repeat table (making it on first use): a new chunk.
    func clearRepeats() {
        if let table { table.clear() } else { table = RepeatTable() }
    }

    @usableFromInline init(capacity: Int) {
        let capacity = max(capacity, 64)
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
        end = base
        limit = base + capacity
        counters = UnsafeMutablePointer<UInt64>.allocate(capacity: 0)
    }

    deinit {
        base.deallocate()
        counters.deallocate()
    }

    /// Sets the counter baselines: per NIC, up to 16 values (the rest 0).
    func setCounters(_ perNIC: [[UInt64]]) {
        if counterCapacity < 16 * perNIC.count {
            counters.deallocate()
            counterCapacity = 16 * perNIC.count
            counters = .allocate(capacity: counterCapacity)
        }
        for (n, values) in perNIC.enumerated() {
            for i in 0..<16 { counters[16 * n + i] = i < values.count ? values[i] : 0 }
        }
    }

    @usableFromInline func copy() -> EncoderBuffer {
        let c = EncoderBuffer(capacity: capacity)
        c.base.copyMemory(from: base, byteCount: count)
        c.count = count
        c.hardLimit = hardLimit
        if counterCapacity > 0 {
            c.counters.deallocate()
            c.counters = .allocate(capacity: counterCapacity)
            c.counters.update(from: counters, count: counterCapacity)
            c.counterCapacity = counterCapacity
        }
        c.table = table.map(RepeatTable.init(copying:))
        return c
    }

    var bytes: [UInt8] { withBytes { Array($0) } }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    @inlinable @inline(__always)
    func reserve(_ n: Int) {
        if n > Int(bitPattern: limit) &- Int(bitPattern: end) { grow(count &+ n) }
    }

    @usableFromInline @inline(never)
    func grow(_ needed: Int) {
        let newCapacity = max(needed, capacity * 2), used = count
        let p = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 8)
        p.copyMemory(from: base, byteCount: used)
        base.deallocate()
        base = p
        end = p + used
        limit = p + newCapacity
        placeHardEnd()
    }

    /// Where the next bytes go, with room for `n` more (a ``RecordCursor``'s start).
    @inlinable @inline(__always)
    func tail(reserving n: Int) -> UnsafeMutableRawPointer {
        reserve(n)
        return end
    }

    /// Ends what a cursor wrote at `end` (from ``tail(reserving:)``).
    @inlinable @inline(__always)
    func commit(_ end: UnsafeMutableRawPointer) { self.end = end }

    @inlinable @inline(__always)
    func append(_ raw: UnsafeRawBufferPointer) {
        guard raw.count > 0 else { return }
        reserve(raw.count)
        end.copyMemory(from: raw.baseAddress!, byteCount: raw.count)
        end += raw.count
    }
}
