//! A chunk's events as a recorder saw them, encoded later on the writer's thread.

import HostPrimitives

/// How the encoders of a raw chunk's records are made (``RawChunk/encode()``):
/// what a recorder would give ``ChunkEncoder/init(firstEvent:baseTime:checkpoint:counters:capacity:pool:repeats:predicts:recalls:cursors:)``.
public struct EncoderSettings: Sendable {
    public var capacity: Int
    public var repeats: Bool
    public var predicts: Bool
    public var recalls: Bool
    public var cursors: Bool
    /// Past this many encoded bytes a chunk is cut inside a chain and the
    /// records go on in a continuation chunk (``ChunkEncoder/hardLimit``).
    public var hardLimit: Int
    public var pool: BufferPool?

    public init(capacity: Int, repeats: Bool, predicts: Bool, recalls: Bool, cursors: Bool, hardLimit: Int, pool: BufferPool?) {
        self.capacity = capacity
        self.repeats = repeats
        self.predicts = predicts
        self.recalls = recalls
        self.cursors = cursors
        self.hardLimit = hardLimit
        self.pool = pool
    }

    /// A new encoder with these settings, written by one owner (``ChunkEncoder/exclusive``).
    public func encoder(firstEvent: UInt64, baseTime: UInt64, checkpoint: [NICCheckpoint]?, counters: [[UInt64]]) -> ChunkEncoder {
        var e = ChunkEncoder(firstEvent: firstEvent, baseTime: baseTime, checkpoint: checkpoint, counters: counters,
                             capacity: capacity, pool: pool, repeats: repeats, predicts: predicts, recalls: recalls, cursors: cursors)
        e.exclusive = true
        e.hardLimit = hardLimit
        return e
    }
}

/// A chunk's events in the order a recorder saw them, not yet encoded.
///
/// Recording on a thread that must not wait (a vCPU's) leaves the encoding
/// to the writer's thread: each event is appended here in a fixed layout
/// with a few stores and, for memory, a copy of its bytes, and
/// ``encode()`` later makes the chunk's records through the very
/// ``ChunkEncoder`` calls an inline recorder makes, in the same order, with
/// the same cuts at the encoder's hard limit, so the records are the same.
/// A recorder decides where chunks begin and end as it does for an
/// encoder, from this chunk's event count and size (its raw size: several
/// times the encoded one, see ``size``).
///
/// Owned by one recorder until it is submitted; not to be copied while written.
public struct RawChunk {
    public let firstEvent: UInt64
    public let baseTime: UInt64
    let checkpoint: [NICCheckpoint]?
    let startCounters: [[UInt64]]
    let settings: EncoderSettings
    @usableFromInline let log: RawLog
    /// Events whose fields have no fixed layout here (status, features,
    /// vhost operations and the like: rarer than an access).
    @usableFromInline var others: [(event: OutgoingEvent, vcpu: UInt32, time: UInt64)] = []
    /// Events appended so far.
    public var eventCount: UInt64 { log.events }
    /// The newest cause's timestamp (as ``ChunkEncoder/lastTime``).
    public private(set) var lastTime: UInt64
    /// Set once the chunk ends inside an access (``ChunkEncoder/markEndsInsideAccess()``).
    public private(set) var endsInsideAccess = false

    /// A chunk starting at event `firstEvent`, with `checkpoint` (or, for a
    /// continuation, the counters `counters` its events start from).
    /// - Parameter pool: memory earlier raw chunks used, taken instead of a
    ///   new allocation (whose pages the recording thread would fault in).
    public init(firstEvent: UInt64, baseTime: UInt64, checkpoint: [NICCheckpoint]?, counters: [[UInt64]],
                settings: EncoderSettings, capacity: Int, pool: RawLogPool? = nil) {
        self.firstEvent = firstEvent
        self.baseTime = baseTime
        self.checkpoint = checkpoint
        startCounters = checkpoint?.map(\.counters) ?? counters
        self.settings = settings
        lastTime = baseTime
        log = pool?.take(capacity: capacity, counters: startCounters) ?? RawLog(capacity: capacity, counters: startCounters)
    }

    /// A placeholder with no content to speak of (a recorder between chunks).
    public static var idle: RawChunk {
        RawChunk(firstEvent: 0, baseTime: 0, checkpoint: nil, counters: [],
                 settings: EncoderSettings(capacity: 64, repeats: false, predicts: false, recalls: false, cursors: false, hardLimit: .max, pool: nil), capacity: 64)
    }

    /// Bytes appended so far.
    public var size: Int { log.count }

    /// Per NIC, the counter values after the last event (a continuation chunk's baseline).
    public var currentCounters: [[UInt64]] { log.currentCounters }

    /// A size past which the recorder cuts the chunk inside a chain (its
    /// memory's bound; the encoded chunk is cut at its own limit besides).
    public var hardLimit: Int {
        get { log.hardLimit }
        nonmutating set { log.hardLimit = newValue }
    }
    @inlinable public var pastHardLimit: Bool { log.end >= log.hardEnd }

    public mutating func markEndsInsideAccess() { endsInsideAccess = true }

    // MARK: Appending (the recorder's thread)

    /// An entry's kind, in the low byte of its first word (``header(_:flags:nic:_:)``:
    /// then a flags byte, the NIC as 16 bits and a 32-bit field `a`). Entries
    /// are 8-byte aligned; after the first word:
    /// - `read`, `write`: the address; the bytes (`a` of them; none for a
    ///   failed read), flags bit 0 set when the access succeeded.
    /// - `truncated`: the address; the count of bytes kept; those bytes (`a`
    ///   the access's length; flags bit 0 a write, bit 1 succeeded).
    /// - `chain`: queue | head << 16; `a` descriptors of two words each
    ///   (address; length | flags << 32 | next << 48).
    /// - `used`: queue | len << 32 (`a` the id). `counter`: the value (`a` its index).
    /// - `mmioRead`, `mmioWrite`: offset, value, time (`a` the vCPU, flags the width).
    /// - `interrupt`: a zero word (`a` the kind). `other`: a zero word (`a`
    ///   the event's index in ``others``).
    @usableFromInline enum Kind: UInt8 {
        case read = 1, write, truncated, chain, used, counter, mmioRead, mmioWrite, interrupt, other
    }

    /// The first word of an entry: its kind, flags, NIC and one 32-bit field.
    @inlinable @inline(__always)
    static func header(_ kind: Kind, flags: UInt8 = 0, nic: Int, _ a: UInt32) -> UInt64 {
        UInt64(kind.rawValue) | UInt64(flags) << 8 | UInt64(UInt16(truncatingIfNeeded: nic)) << 16 | UInt64(a) << 32
    }

    /// Appends an entry of two words and `stored` bytes of `bytes` (padded to 8).
    @inlinable @inline(__always)
    mutating func entry(_ word0: UInt64, _ word1: UInt64, _ bytes: UnsafeRawBufferPointer, stored: Int) {
        let p = log.tail(reserving: 16 &+ stored &+ 8)
        p.storeBytes(of: word0, as: UInt64.self)
        p.storeBytes(of: word1, toByteOffset: 8, as: UInt64.self)
        if stored > 0 { copyBytes(from: bytes.baseAddress.unsafelyUnwrapped, to: p + 16, count: stored) }
        log.commit(p + (16 &+ ((stored &+ 7) & ~7)))
    }

    @inlinable @inline(__always)
    public mutating func memoryRead(nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool) {
        entry(Self.header(.read, flags: ok ? 1 : 0, nic: nic, UInt32(truncatingIfNeeded: bytes.count)), address, bytes, stored: ok ? bytes.count : 0)
    }

    @inlinable @inline(__always)
    public mutating func memoryWrite(nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool) {
        entry(Self.header(.write, flags: ok ? 1 : 0, nic: nic, UInt32(truncatingIfNeeded: bytes.count)), address, bytes, stored: bytes.count)
    }

    /// An access of `length` bytes of which `bytes` (fewer) are kept (``ChunkEncoder/truncatedAccess(nic:address:length:bytes:write:ok:)``).
    @inlinable @inline(__always)
    public mutating func truncatedAccess(nic: Int, address: UInt64, length: Int, bytes: UnsafeRawBufferPointer, write: Bool, ok: Bool = true) {
        let p = log.tail(reserving: 24 &+ bytes.count &+ 8)
        p.storeBytes(of: Self.header(.truncated, flags: (write ? 1 : 0) | (ok ? 2 : 0), nic: nic, UInt32(truncatingIfNeeded: length)), as: UInt64.self)
        p.storeBytes(of: address, toByteOffset: 8, as: UInt64.self)
        p.storeBytes(of: UInt64(bytes.count), toByteOffset: 16, as: UInt64.self)
        if bytes.count > 0 { (p + 24).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        log.commit(p + (24 &+ ((bytes.count &+ 7) & ~7)))
    }

    /// A chain of `count` descriptors, `descriptor(i)` each.
    @inlinable @inline(__always)
    public mutating func chain(nic: Int, queue: UInt16, head: UInt16, count: Int,
                      descriptor: (Int) -> (addr: UInt64, len: UInt32, flags: UInt16, next: UInt16)) {
        let p = log.tail(reserving: 16 &+ 16 &* count)
        p.storeBytes(of: Self.header(.chain, nic: nic, UInt32(truncatingIfNeeded: count)), as: UInt64.self)
        p.storeBytes(of: UInt64(queue) | UInt64(head) << 16, toByteOffset: 8, as: UInt64.self)
        var d = p + 16
        for i in 0..<count {
            let x = descriptor(i)
            d.storeBytes(of: x.addr, as: UInt64.self)
            d.storeBytes(of: UInt64(x.len) | UInt64(x.flags) << 32 | UInt64(x.next) << 48, toByteOffset: 8, as: UInt64.self)
            d += 16
        }
        log.commit(d)
    }

    @inlinable @inline(__always)
    public mutating func used(nic: Int, queue: UInt16, id: UInt32, len: UInt32) {
        entry(Self.header(.used, nic: nic, id), UInt64(queue) | UInt64(len) << 32, UnsafeRawBufferPointer(start: nil, count: 0), stored: 0)
    }

    @inlinable @inline(__always)
    public mutating func counter(nic: Int, index: Int, value: UInt64) {
        entry(Self.header(.counter, nic: nic, UInt32(truncatingIfNeeded: index)), value, UnsafeRawBufferPointer(start: nil, count: 0), stored: 0)
        log.setCounter(nic: nic, index: index, value)
    }

    /// An MMIO access (a cause: its time is the chunk's newest).
    mutating func mmio(_ kind: Kind, nic: Int, vcpu: UInt32, time: UInt64, offset: UInt64, width: Int, value: UInt64) {
        let p = log.tail(reserving: 32)
        p.storeBytes(of: Self.header(kind, flags: UInt8(width), nic: nic, vcpu), as: UInt64.self)
        p.storeBytes(of: offset, toByteOffset: 8, as: UInt64.self)
        p.storeBytes(of: value, toByteOffset: 16, as: UInt64.self)
        p.storeBytes(of: time, toByteOffset: 24, as: UInt64.self)
        log.commit(p + 32)
        lastTime = max(lastTime, time)
    }

    /// Any other event (``ChunkEncoder/append(_:nic:vcpu:time:)``'s
    /// arguments): MMIO accesses and interrupts in their layouts, the rest
    /// kept aside. Memory accesses, chains, used elements and counters have
    /// appends of their own.
    public mutating func append(_ event: OutgoingEvent, nic: Int, vcpu: UInt32 = 0, time: UInt64 = 0) {
        switch event {
        case .mmioRead(let offset, let width, let value) where 0...255 ~= width:
            mmio(.mmioRead, nic: nic, vcpu: vcpu, time: time, offset: offset, width: width, value: value)
        case .mmioWrite(let offset, let width, let value) where 0...255 ~= width:
            mmio(.mmioWrite, nic: nic, vcpu: vcpu, time: time, offset: offset, width: width, value: value)
        case .interrupt(let kind):
            entry(Self.header(.interrupt, nic: nic, kind), 0, UnsafeRawBufferPointer(start: nil, count: 0), stored: 0)
        case .memoryRead, .memoryWrite, .chain, .used, .counter:
            // (Kept aside, a memory event's bytes would be a pointer into the
            // device's memory, read only when the writer encodes.)
            preconditionFailure("a raw chunk takes the device's own records through their appends (memoryRead, chain, …)")
        default:
            entry(Self.header(.other, nic: nic, UInt32(truncatingIfNeeded: others.count)), 0, UnsafeRawBufferPointer(start: nil, count: 0), stored: 0)
            others.append((event, vcpu, time))
            switch event {
            case .mmioRead, .mmioWrite, .transport, .marker: lastTime = max(lastTime, time)
            default: break
            }
        }
    }

    // MARK: Encoding (the writer's thread)

    /// The chunk's records: one encoder, or more where the encoded content
    /// passed the settings' hard limit inside a chain (each after the first a
    /// continuation, as a recorder cuts one).
    public func encode() -> [ChunkEncoder] {
        var done: [ChunkEncoder] = []
        var e = settings.encoder(firstEvent: firstEvent, baseTime: baseTime, checkpoint: checkpoint, counters: startCounters)
        var p = UnsafeRawPointer(log.base)
        let end = UnsafeRawPointer(log.end)
        while p < end {
            let word0 = p.load(as: UInt64.self), word1 = p.load(fromByteOffset: 8, as: UInt64.self)
            let kind = Kind(rawValue: UInt8(truncatingIfNeeded: word0)).unsafelyUnwrapped
            let flags = UInt8(truncatingIfNeeded: word0 >> 8)
            let nic = Int(UInt16(truncatingIfNeeded: word0 >> 16))
            let a = Int(UInt32(truncatingIfNeeded: word0 >> 32))
            var next = p + 16
            switch kind {
            case .read, .write:
                let ok = flags & 1 != 0
                let stored = kind == .write || ok ? a : 0
                // A failed read's bytes are not stored: its length is all the encoder reads.
                let bytes = UnsafeRawBufferPointer(start: stored > 0 ? next : UnsafeRawPointer(log.base), count: a)
                if kind == .read { e.memoryRead(nic: nic, address: word1, bytes: bytes, ok: ok) } else { e.memoryWrite(nic: nic, address: word1, bytes: bytes, ok: ok) }
                next += (stored &+ 7) & ~7
            case .truncated:
                let kept = Int(p.load(fromByteOffset: 16, as: UInt64.self))
                e.truncatedAccess(nic: nic, address: word1, length: a, bytes: UnsafeRawBufferPointer(start: p + 24, count: kept),
                                  write: flags & 1 != 0, ok: flags & 2 != 0)
                next = p + 24 + ((kept &+ 7) & ~7)
            case .chain:
                let descriptors = p + 16
                e.chain(nic: nic, queue: UInt16(truncatingIfNeeded: word1), head: UInt16(truncatingIfNeeded: word1 >> 16), count: a) { i in
                    let w = descriptors.load(fromByteOffset: 16 &* i &+ 8, as: UInt64.self)
                    return (descriptors.load(fromByteOffset: 16 &* i, as: UInt64.self), UInt32(truncatingIfNeeded: w),
                            UInt16(truncatingIfNeeded: w >> 32), UInt16(truncatingIfNeeded: w >> 48))
                }
                next += 16 &* a
            case .used:
                e.used(nic: nic, queue: UInt16(truncatingIfNeeded: word1), id: UInt32(a), len: UInt32(truncatingIfNeeded: word1 >> 32))
            case .counter:
                e.counter(nic: nic, index: a, value: word1)
            case .mmioRead, .mmioWrite:
                let value = p.load(fromByteOffset: 16, as: UInt64.self), time = p.load(fromByteOffset: 24, as: UInt64.self)
                let event: OutgoingEvent = kind == .mmioRead ? .mmioRead(offset: word1, width: Int(flags), value: value)
                                                             : .mmioWrite(offset: word1, width: Int(flags), value: value)
                e.append(event, nic: nic, vcpu: UInt32(a), time: time)
                next = p + 32
            case .interrupt:
                e.append(.interrupt(kind: UInt32(a)), nic: nic)
            case .other:
                let o = others[a]
                e.append(o.event, nic: nic, vcpu: o.vcpu, time: o.time)
            }
            // As a recorder checks after each access and chain: past the hard
            // limit, the chunk is cut and the chain goes on in a continuation.
            if kind.rawValue <= Kind.chain.rawValue && e.pastHardLimit {
                e.markEndsInsideAccess()
                let counters = e.currentCounters, lastTime = e.lastTime, first = e.firstEvent + e.eventCount
                e.exclusive = false
                done.append(e)
                e = settings.encoder(firstEvent: first, baseTime: lastTime, checkpoint: nil, counters: counters)
            }
            p = next
        }
        if endsInsideAccess { e.markEndsInsideAccess() }
        e.exclusive = false
        done.append(e)
        return done
    }
}

/// A raw chunk's memory: entries appended from a pointer, and the counters'
/// current values.
@usableFromInline final class RawLog {
    @usableFromInline private(set) var base: UnsafeMutableRawPointer
    @usableFromInline private(set) var end: UnsafeMutableRawPointer
    @usableFromInline private(set) var limit: UnsafeMutableRawPointer
    @usableFromInline private(set) var hardEnd = UnsafeMutableRawPointer(bitPattern: UInt.max)!
    @usableFromInline var events: UInt64 = 0
    /// Per NIC, 16 counters (NIC n's counter i at `16 * n + i`).
    @usableFromInline let counters: UnsafeMutablePointer<UInt64>
    @usableFromInline let counterNICs: Int
    var hardLimit = Int.max { didSet { placeHardEnd() } }

    init(capacity: Int, counters start: [[UInt64]]) {
        let capacity = max(capacity, 64)
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 8)
        end = base
        limit = base + capacity
        counterNICs = start.count
        counters = .allocate(capacity: max(1, 16 * start.count))
        reset(counters: start)
    }

    /// Empties the log; the counters start at `start`.
    func reset(counters start: [[UInt64]]) {
        end = base
        events = 0
        hardLimit = .max
        for (n, values) in start.enumerated() {
            for i in 0..<16 { counters[16 * n + i] = i < values.count ? values[i] : 0 }
        }
    }

    deinit {
        base.deallocate()
        counters.deallocate()
    }

    @usableFromInline var count: Int { end - base }

    var currentCounters: [[UInt64]] { (0..<counterNICs).map { n in (0..<16).map { counters[16 * n + $0] } } }

    func placeHardEnd() {
        hardEnd = hardLimit <= limit - base ? base + hardLimit : UnsafeMutableRawPointer(bitPattern: UInt.max)!
    }

    @inlinable @inline(__always)
    func setCounter(nic: Int, index: Int, _ value: UInt64) {
        if nic < counterNICs && index < 16 { counters[16 &* nic &+ index] = value }
    }

    /// Where the next entry goes, with room for `n` bytes.
    @inlinable @inline(__always)
    func tail(reserving n: Int) -> UnsafeMutableRawPointer {
        if n > limit - end { grow(count &+ n) }
        return end
    }

    /// Ends an entry (one event) at `newEnd`.
    @inlinable @inline(__always)
    func commit(_ newEnd: UnsafeMutableRawPointer) {
        end = newEnd
        events &+= 1
    }

    @usableFromInline @inline(never)
    func grow(_ needed: Int) {
        let newCapacity = max(needed, 2 * (limit - base)), used = count
        let p = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 8)
        p.copyMemory(from: base, byteCount: used)
        base.deallocate()
        base = p
        end = p + used
        limit = p + newCapacity
        placeHardEnd()
    }
}

/// Raw chunk memory handed back once the writer has encoded a chunk, so that
/// the recording thread neither allocates nor faults in fresh pages for each
/// chunk (as ``BufferPool`` does for encoders). A log is reused only when
/// nothing else refers to it.
public final class RawLogPool: @unchecked Sendable {
    let mutex = Mutex()
    var free: [RawLog] = []
    /// Most logs kept.
    public let limit: Int

    public init(limit: Int) { self.limit = limit }

    /// An empty log of at least `capacity` bytes whose counters start at `counters`.
    func take(capacity: Int, counters: [[UInt64]]) -> RawLog {
        if var log = mutex.withLock({ free.popLast() }), isKnownUniquelyReferenced(&log),
           log.counterNICs == counters.count, log.limit - log.base >= capacity {
            log.reset(counters: counters)
            return log
        }
        return RawLog(capacity: capacity, counters: counters)
    }

    /// Takes back a raw chunk's memory once it is encoded; the chunk must not be written again.
    public func recycle(_ chunk: RawChunk) { mutex.withLock { if free.count < limit { free.append(chunk.log) } } }
}
