//! Events staged on the recording thread, encoded later on the writer's thread.

/// One chunk's events as the recording thread writes them: fixed-layout
/// records of 8-byte words (no varints, no deltas, no lookups), so a device
/// observer spends a few stores and a copy per event. The trace writer's
/// thread turns them into the chunk format with ``ChunkEncoder`` (the same
/// method for each record as the observer called here), then compresses.
///
/// Its `append` takes the same events as ``ChunkEncoder/append(_:nic:vcpu:time:)``.
///
/// A single owner appends; hand it over (to ``TraceWriter/submit(_:)-staged``)
/// and stop using it. Copies share the buffer: this is not a value to compare
/// or snapshot, it is a hand-off between two threads.
public struct StagedChunk: @unchecked Sendable {
    @usableFromInline var out: EncoderBuffer
    /// The first event's number in the trace.
    public let firstEvent: UInt64
    /// When the chunk was opened (its first timestamp's base).
    public let baseTime: UInt64
    /// Every NIC's state at the chunk's start; nil for a chunk that continues
    /// the previous one in the middle of an access.
    public let checkpoint: [NICCheckpoint]?
    /// Whether the chunk ends inside an access (the recorder cut it between
    /// two chains of a drain, or at the hard limit): its last encoded chunk
    /// is marked ``ChunkFlags/endsInsideAccess``.
    public var endsInsideAccess = false
    /// Events staged so far.
    public var eventCount: UInt64 { staged }
    @usableFromInline var staged: UInt64 = 0
    /// The last four successful reads of at least ``repeatMinimum`` bytes:
    /// (length, offset of their bytes in `out`), newest first.
    @usableFromInline var largeReads = RecentReads()

    /// Writes at least this long that repeat recent reads are staged as a
    /// reference to those reads' bytes (a comparison instead of a copy).
    @inlinable static var repeatMinimum: Int { 128 }

    /// - Parameter pool: memory earlier chunks used (``TraceWriter/stagingPool``),
    ///   taken instead of a new allocation.
    public init(firstEvent: UInt64, baseTime: UInt64, checkpoint: [NICCheckpoint]?,
                capacity: Int = 2 * TraceLayout.chunkTargetSize + 512 * 1024, pool: BufferPool? = nil) {
        self.firstEvent = firstEvent
        self.baseTime = baseTime
        self.checkpoint = checkpoint
        out = pool?.take(capacity: capacity) ?? EncoderBuffer(capacity: capacity)
    }

    /// A placeholder between chunks.
    public static var idle: StagedChunk { StagedChunk(firstEvent: 0, baseTime: 0, checkpoint: nil, capacity: 64) }

    /// Bytes staged so far.
    @inlinable public var size: Int { out.count }

    /// The first word of every record: the kind's code, a small field, a
    /// 16-bit field, the NIC.
    @inlinable @inline(__always)
    mutating func head(_ kind: TraceEventKind, _ small: UInt8 = 0, _ half: UInt16 = 0, nic: Int, words: Int) {
        head(code: kind.rawValue, small, half, nic: nic, words: words)
    }

    /// The same for a record ``RecordCode`` `code`.
    @inlinable @inline(__always)
    mutating func head(code: UInt8, _ small: UInt8 = 0, _ half: UInt16 = 0, nic: Int, words: Int) {
        out.reserve(8 * words)
        out.word(UInt64(code) | UInt64(small) << 8 | UInt64(half) << 16 | UInt64(UInt32(truncatingIfNeeded: nic)) << 32)
        staged += 1
    }

    /// A staged memory write whose bytes are recent reads': its small field's bit 2.
    @inlinable static var repeatsReads: UInt8 { 4 }

    /// Stages one event, as ``ChunkEncoder/append(_:nic:vcpu:time:)`` would
    /// encode it (same arguments).
    @inlinable @inline(__always)
    public mutating func append(_ event: OutgoingEvent, nic: Int, vcpu: UInt32 = 0, time: UInt64 = 0) {
        switch event {
        case .mmioRead(let offset, let width, let value):
            mmio(.mmioRead, nic: nic, vcpu: vcpu, time: time, offset: offset, width: width, value: value)
        case .mmioWrite(let offset, let width, let value):
            mmio(.mmioWrite, nic: nic, vcpu: vcpu, time: time, offset: offset, width: width, value: value)
        case .memoryRead(let address, let length, let ok, let bytes):
            memory(.memoryRead, nic: nic, address: address, length: length, bytes: bytes, ok: ok)
        case .memoryWrite(let address, let length, let ok, let bytes):
            memory(.memoryWrite, nic: nic, address: address, length: length, bytes: bytes, ok: ok)
        case .chain(let queue, let chainHead, let descriptorCount):
            head(.chain, 0, queue, nic: nic, words: 2 + 2 * descriptorCount)
            out.word(UInt64(chainHead) | UInt64(descriptorCount) << 16)
        case .used(let queue, let id, let len):
            head(.used, 0, queue, nic: nic, words: 2)
            out.word(UInt64(id) | UInt64(len) << 32)
        case .counter(let index, let value):
            head(.counter, 0, UInt16(clamping: index), nic: nic, words: 2)
            out.word(value)
        case .interrupt(let kind):
            head(.interrupt, nic: nic, words: 2)
            out.word(UInt64(kind))
        case .poison(let queue, let code, let details):
            head(.poison, 0, queue, nic: nic, words: 6)
            out.word(code)
            details4(details)
        case .status(let old, let new):
            head(.status, old, UInt16(new), nic: nic, words: 1)
        case .features(let old, let new):
            head(.features, nic: nic, words: 3)
            out.word(old)
            out.word(new)
        case .pairs(let old, let new):
            head(.pairs, 0, old, nic: nic, words: 2)
            out.word(UInt64(new))
        case .reset:
            head(.reset, nic: nic, words: 1)
        case .warning(let code, let details):
            head(.warning, nic: nic, words: 6)
            out.word(code)
            details4(details)
        case .memoryBinding(let bound):
            head(.memoryBinding, bound ? 1 : 0, nic: nic, words: 1)
        case .transport(let code, let queue, let values):
            head(.transport, code, queue, nic: nic, words: 6)
            out.word(time)
            details4(values)
        case .marker(let code, let details):
            head(.marker, nic: nic, words: 7)
            out.word(time)
            out.word(code)
            details4(details)
        }
    }

    @inlinable @inline(__always)
    mutating func mmio(_ kind: TraceEventKind, nic: Int, vcpu: UInt32, time: UInt64, offset: UInt64, width: Int, value: UInt64) {
        head(kind, nic: nic, words: 6)
        out.word(UInt64(vcpu))
        out.word(offset)
        out.word(value)
        out.word(time)
        out.word(UInt64(bitPattern: Int64(width)))
    }

    @inlinable @inline(__always)
    mutating func memory(_ kind: TraceEventKind, nic: Int, address: UInt64, length: Int, bytes: UnsafeRawBufferPointer, ok: Bool) {
        let n = bytes.count
        let isWrite = kind == .memoryWrite
        if length > n && (ok || isWrite) {
            // Part of the payload (a snaplen): neither a recent read nor a repeat of one.
            // Staged under the partial record's code, its flags the small field;
            // the words: address, bytes stored, length, then the bytes.
            let flags: TruncatedMemoryRecord.Flags = !isWrite ? [] : ok ? .write : [.write, .failed]
            head(code: TruncatedMemoryRecord.code, flags.rawValue, nic: nic, words: 4 + (n + 7) >> 3)
            out.word(address)
            out.word(UInt64(n))
            out.word(UInt64(length))
            out.appendPadded(bytes)
            return
        }
        if n >= Self.repeatMinimum {
            if isWrite, let pieces = repeatedReads(bytes) {
                // A loopback's RX write is the frame its TX reads just read:
                // staged as (offset, length) of those reads' bytes.
                head(kind, Self.repeatsReads | (ok ? 2 : 0), UInt16(pieces), nic: nic, words: 3 + pieces)
                out.word(address)
                out.word(UInt64(n))
                for i in (0..<pieces).reversed() {
                    let r = largeReads.get(i)!
                    out.word(UInt64(r.start) | UInt64(r.length) << 32)
                }
                return
            }
            // The bytes follow the head, address and length words.
            if !isWrite && ok && out.count < Int(UInt32.max) { largeReads.push(length: n, start: out.count + 24) }
        }
        head(kind, ok ? 2 : 0, nic: nic, words: 3 + (n + 7) >> 3)
        out.word(address)
        out.word(UInt64(n))
        out.appendPadded(bytes)
    }

    /// How many of the newest large reads, oldest first, hold exactly
    /// `bytes` end to end (a frame read over several descriptors), or nil.
    @inlinable func repeatedReads(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var total = 0
        for k in 1...4 {
            guard let r = largeReads.get(k - 1) else { return nil }
            total += r.length
            if total > bytes.count { return nil }
            if total < bytes.count { continue }
            // Pieces k-1 (oldest) ... 0 (newest) laid end to end.
            var at = 0
            for i in (0..<k).reversed() {
                let p = largeReads.get(i)!
                if !memcmpEqual(out.base + p.start, bytes.baseAddress! + at, p.length) { return nil }
                at += p.length
            }
            return k
        }
        return nil
    }

    /// One descriptor of the chain just begun; call exactly `descriptorCount` times.
    @inlinable public mutating func descriptor(addr: UInt64, len: UInt32, flags: UInt16, next: UInt16) {
        out.reserve(16)
        out.word(addr)
        out.word(UInt64(len) | UInt64(flags) << 32 | UInt64(next) << 48)
    }

    /// A count and three values.
    @inlinable mutating func details4(_ d: EventDetails) {
        out.word(UInt64(d.count))
        out.word(d.a)
        out.word(d.b)
        out.word(d.c)
    }
}

/// What ``ChunkEncoder`` and ``StagedChunk`` share: a recorder calls one or
/// the other with the same arguments, and encoding a staged chunk calls the
/// encoder's for each record. (For tests and tools; the hot paths call the
/// concrete types.)
public protocol EventSink {
    mutating func append(_ event: OutgoingEvent, nic: Int, vcpu: UInt32, time: UInt64)
    mutating func descriptor(addr: UInt64, len: UInt32, flags: UInt16, next: UInt16)
}

extension ChunkEncoder: EventSink {}
extension StagedChunk: EventSink {}

/// What one encoded chunk hands the next when a staged chunk continues the
/// previous one: counter baselines and the last timestamp.
public struct EncoderCarry: Sendable {
    public var counters: [[UInt64]] = []
    public var lastTime: UInt64 = 0
    public init() {}
}

extension StagedChunk {
    /// Encodes the staged records into one or more chunks (more when the
    /// encoded content nears ``TraceLayout/chunkHardLimit``: continuation
    /// chunks), handing each finished encoder to `emit`. `carry` links a
    /// continuation to the chunk before it.
    /// The encoders take their memory from `pool`.
    public func encode<E: Error>(carry: inout EncoderCarry, pool: BufferPool? = nil,
                                 emit: (ChunkEncoder) throws(E) -> Void) throws(E) {
        guard eventCount > 0 else { return }
        var e: ChunkEncoder
        if let checkpoint {
            e = ChunkEncoder(firstEvent: firstEvent, baseTime: baseTime, checkpoint: checkpoint, counters: [], pool: pool)
        } else {
            e = ChunkEncoder(firstEvent: firstEvent, baseTime: carry.lastTime, checkpoint: nil, counters: carry.counters, pool: pool)
        }
        // Only this loop writes `e` until it is emitted: no copy-on-write checks per event.
        e.exclusive = true
        let limit = TraceLayout.chunkHardLimit - 128 * 1024
        let base = UnsafeRawPointer(out.base)
        let end = out.count
        var at = 0
        // Where a repeat of several reads is laid end to end for the encoder.
        var gather: UnsafeMutableRawPointer?
        var gatherCapacity = 0
        defer { gather?.deallocate() }
        @inline(__always) func word(_ i: Int) -> UInt64 { base.load(fromByteOffset: at + 8 * i, as: UInt64.self) }
        while at < end {
            let w0 = word(0)
            let small = UInt8(truncatingIfNeeded: w0 >> 8)
            let half = UInt16(truncatingIfNeeded: w0 >> 16)
            let nic = Int(UInt32(truncatingIfNeeded: w0 >> 32))
            // One switch over the codes, as in ChunkDecoder (CodecTests stages every kind).
            typealias K = TraceEventKind
            switch UInt8(truncatingIfNeeded: w0) {
            case K.mmioRead.rawValue, K.mmioWrite.rawValue:
                let fields: (UInt64, Int, UInt64) = (word(2), Int(Int64(bitPattern: word(5))), word(3))
                e.append(w0 & 0xFF == TraceEventKind.mmioRead.rawValue ? .mmioRead(offset: fields.0, width: fields.1, value: fields.2)
                            : .mmioWrite(offset: fields.0, width: fields.1, value: fields.2),
                         nic: nic, vcpu: UInt32(truncatingIfNeeded: word(1)), time: word(4))
                at += 48
            case K.memoryRead.rawValue:
                let n = Int(word(2))
                e.append(.memoryRead(address: word(1), length: n, ok: small & 2 != 0,
                                     bytes: UnsafeRawBufferPointer(start: base + at + 24, count: n)), nic: nic)
                at += 24 + (n + 7) & ~7
            case K.memoryWrite.rawValue where small & Self.repeatsReads != 0:
                let n = Int(word(2))
                let pieces = Int(half)
                let bytes: UnsafeRawPointer
                if pieces == 1 {
                    bytes = base + Int(UInt32(truncatingIfNeeded: word(3)))
                } else {
                    if gatherCapacity < n {
                        gather?.deallocate()
                        gather = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 8)
                        gatherCapacity = n
                    }
                    var to = 0
                    for i in 0..<pieces {
                        let piece = word(3 + i)
                        let length = Int(piece >> 32)
                        (gather! + to).copyMemory(from: base + Int(UInt32(truncatingIfNeeded: piece)), byteCount: length)
                        to += length
                    }
                    bytes = UnsafeRawPointer(gather!)
                }
                e.append(.memoryWrite(address: word(1), length: n, ok: small & 2 != 0, bytes: UnsafeRawBufferPointer(start: bytes, count: n)),
                         nic: nic)
                at += 24 + 8 * pieces
            case K.memoryWrite.rawValue:
                let n = Int(word(2))
                e.append(.memoryWrite(address: word(1), length: n, ok: small & 2 != 0,
                                      bytes: UnsafeRawBufferPointer(start: base + at + 24, count: n)), nic: nic)
                at += 24 + (n + 7) & ~7
            case K.chain.rawValue:
                let w1 = word(1)
                let count = Int(w1 >> 16)
                e.append(.chain(queue: half, head: UInt16(truncatingIfNeeded: w1), descriptorCount: count), nic: nic)
                at += 16
                for _ in 0..<count {
                    let d = word(1)
                    e.descriptor(addr: word(0), len: UInt32(truncatingIfNeeded: d), flags: UInt16(truncatingIfNeeded: d >> 32),
                                 next: UInt16(truncatingIfNeeded: d >> 48))
                    at += 16
                }
            case K.used.rawValue:
                let w1 = word(1)
                e.append(.used(queue: half, id: UInt32(truncatingIfNeeded: w1), len: UInt32(truncatingIfNeeded: w1 >> 32)), nic: nic)
                at += 16
            case K.counter.rawValue:
                e.append(.counter(index: Int(half), value: word(1)), nic: nic)
                at += 16
            case K.interrupt.rawValue:
                e.append(.interrupt(kind: UInt32(truncatingIfNeeded: word(1))), nic: nic)
                at += 16
            case K.poison.rawValue:
                e.append(.poison(queue: half, code: word(1), details: details(at: at + 16)), nic: nic)
                at += 48
            case K.status.rawValue:
                e.append(.status(old: small, new: UInt8(truncatingIfNeeded: half)), nic: nic)
                at += 8
            case K.features.rawValue:
                e.append(.features(old: word(1), new: word(2)), nic: nic)
                at += 24
            case K.pairs.rawValue:
                e.append(.pairs(old: half, new: UInt16(truncatingIfNeeded: word(1))), nic: nic)
                at += 16
            case K.reset.rawValue:
                e.append(.reset, nic: nic)
                at += 8
            case K.warning.rawValue:
                e.append(.warning(code: word(1), details: details(at: at + 16)), nic: nic)
                at += 48
            case K.memoryBinding.rawValue:
                e.append(.memoryBinding(bound: small != 0), nic: nic)
                at += 8
            case K.transport.rawValue:
                e.append(.transport(code: small, queue: half, values: details(at: at + 16)), nic: nic, time: word(1))
                at += 48
            case K.marker.rawValue:
                e.append(.marker(code: word(2), details: details(at: at + 24)), nic: nic, time: word(1))
                at += 56
            case TruncatedMemoryRecord.code:
                let n = Int(word(2))
                let bytes = UnsafeRawBufferPointer(start: base + at + 32, count: n)
                let flags = TruncatedMemoryRecord.Flags(rawValue: small)
                e.append(flags.contains(.write) ? .memoryWrite(address: word(1), length: Int(word(3)), ok: !flags.contains(.failed), bytes: bytes)
                            : .memoryRead(address: word(1), length: Int(word(3)), ok: true, bytes: bytes), nic: nic)
                at += 32 + (n + 7) & ~7
            default:
                preconditionFailure("staged record of unknown kind \(w0 & 0xFF) at \(at)")
            }
            if e.size >= limit && at < end {
                var next = ChunkEncoder(firstEvent: e.firstEvent + e.eventCount, baseTime: e.lastTime, checkpoint: nil,
                                        counters: e.currentCounters, pool: pool)
                e.markEndsInsideAccess()
                e.exclusive = false
                try emit(e)
                next.exclusive = true
                e = next
            }
        }
        carry.counters = e.currentCounters
        carry.lastTime = e.lastTime
        if endsInsideAccess { e.markEndsInsideAccess() }
        e.exclusive = false
        try emit(e)
    }

    func details(at offset: Int) -> EventDetails {
        let p = UnsafeRawPointer(out.base) + offset
        return EventDetails(count: Int(p.load(as: UInt64.self)), p.load(fromByteOffset: 8, as: UInt64.self),
                            p.load(fromByteOffset: 16, as: UInt64.self), p.load(fromByteOffset: 24, as: UInt64.self))
    }
}
