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
    var out: EncoderBuffer
    /// A copy of the content so far.
    public var content: [UInt8] { out.bytes }
    public let firstEvent: UInt64
    public private(set) var flags: ChunkFlags
    public let baseTime: UInt64
    /// Where the flags varint sits in the content (one byte: flags stay below 128).
    let flagsOffset: Int
    /// Events encoded so far.
    public private(set) var eventCount: UInt64 = 0
    /// Timestamp of the last MMIO access encoded.
    public private(set) var lastTime: UInt64

    var nic = 0
    var vcpu: UInt32 = 0
    var lastReadEnd: UInt64 = 0
    var lastWriteEnd: UInt64 = 0
    var lastDescriptorEnd: UInt64 = 0
    /// Per NIC, the last value of each counter (from the checkpoint, then
    /// events): NIC n's counter i at `16 * n + i` (one flat array: a counter
    /// event updates it without a nested array's second uniqueness check).
    var counterValues: [UInt64]
    /// NICs in `counterValues`.
    let counterNICs: Int
    /// Recent read payloads: (length, start offset in `writer`), newest first.
    var recentReads = RecentReads()

    /// - Parameters:
    ///   - checkpoint: every NIC's state (required unless `continuation`).
    ///   - counters: per NIC, the counter values the events start from (a
    ///     continuation chunk's baseline; otherwise taken from `checkpoint`).
    ///   - pool: memory earlier chunks used, taken instead of a new allocation.
    public init(firstEvent: UInt64, baseTime: UInt64, checkpoint: [NICCheckpoint]?, counters: [[UInt64]],
                capacity: Int = TraceLayout.chunkTargetSize + 4096, pool: BufferPool? = nil) {
        self.firstEvent = firstEvent
        self.baseTime = baseTime
        lastTime = baseTime
        flags = checkpoint == nil ? .continuation : .checkpoint
        var writer = ByteWriter(capacity: 4096)
        let start = checkpoint?.map(\.counters) ?? counters
        counterNICs = start.count
        counterValues = start.flatMap { nic in (0..<16).map { $0 < nic.count ? nic[$0] : 0 } }
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
    @inline(__always)
    mutating func own() {
        if exclusive { return }
        if !isKnownUniquelyReferenced(&out) { out = out.copy() }
    }

    /// Set while one owner writes this encoder and nothing can hold a copy
    /// (the writer thread encoding a staged chunk): `own()` then skips its
    /// uniqueness check. Cleared before the encoder is handed to anyone.
    var exclusive = false

    /// A placeholder with no content to speak of (a recorder between chunks).
    public static var idle: ChunkEncoder { ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: nil, counters: [], capacity: 64) }

    /// Bytes encoded so far.
    public var size: Int { out.count }

    /// Per NIC, the counter values after the last event (a continuation chunk's baseline).
    public var currentCounters: [[UInt64]] { (0..<counterNICs).map { Array(counterValues[16 * $0 ..< 16 * $0 + 16]) } }

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
                truncated(nic: nic, address: address, length: length, bytes: bytes, flags: [])
            } else {
                memoryRead(nic: nic, address: address, bytes: bytes, ok: ok)
            }
        case .memoryWrite(let address, let length, let ok, let bytes):
            if length > bytes.count {
                truncated(nic: nic, address: address, length: length, bytes: bytes, flags: ok ? .write : [.write, .failed])
            } else {
                memoryWrite(nic: nic, address: address, bytes: bytes, ok: ok)
            }
        case .chain(let queue, let head, let descriptorCount):
            tag(.chain, nic: nic)
            out.varint(UInt64(queue))
            out.varint(UInt64(head))
            out.varint(UInt64(descriptorCount))
        case .used(let queue, let id, let len):
            tag(.used, nic: nic)
            out.varint(UInt64(queue))
            out.varint(UInt64(id))
            out.varint(UInt64(len))
        case .counter(let index, let value):
            counter(nic: nic, index: index, value: value)
        case .interrupt(let kind):
            let small = kind < 15
            tag(.interrupt, small ? UInt8(kind) : 15, nic: nic)
            if !small { out.varint(UInt64(kind)) }
        case .poison(let queue, let code, let details):
            tag(.poison, nic: nic)
            out.varint(UInt64(queue))
            out.varint(code)
            writeDetails(details)
        case .status(let old, let new):
            tag(.status, nic: nic)
            out.byte(old)
            out.byte(new)
        case .features(let old, let new):
            tag(.features, nic: nic)
            out.varint(old)
            out.varint(new)
        case .pairs(let old, let new):
            tag(.pairs, nic: nic)
            out.varint(UInt64(old))
            out.varint(UInt64(new))
        case .reset:
            tag(.reset, nic: nic)
        case .warning(let code, let details):
            tag(.warning, nic: nic)
            out.varint(code)
            writeDetails(details)
        case .memoryBinding(let bound):
            tag(.memoryBinding, bound ? 1 : 0, nic: nic)
        case .transport(let code, let queue, let values):
            tag(.transport, nic: nic)
            out.byte(code)
            out.varint(UInt64(queue))
            writeDetails(values)
            timeDelta(time)
        case .marker(let code, let details):
            tag(.marker, nic: nic)
            out.varint(code)
            writeDetails(details)
            timeDelta(time)
        }
    }

    /// One descriptor of the chain just begun; call exactly `descriptorCount` times.
    public mutating func descriptor(addr: UInt64, len: UInt32, flags: UInt16, next: UInt16) {
        own()
        out.zigzag(Int64(bitPattern: addr &- lastDescriptorEnd))
        out.varint(UInt64(len))
        out.varint(UInt64(flags))
        out.varint(UInt64(next))
        lastDescriptorEnd = addr &+ UInt64(len)
    }

    /// The tag byte (after a NIC context record when the NIC changes).
    @inline(__always)
    mutating func tag(_ kind: TraceEventKind, _ small: UInt8 = 0, nic newNic: Int) {
        tag(code: kind.rawValue, small, nic: newNic)
    }

    /// The tag byte of a record with `code` (``RecordCode``).
    @inline(__always)
    mutating func tag(code: UInt8, _ small: UInt8 = 0, nic newNic: Int) {
        own()
        if newNic != nic {
            out.byte(RecordCode.tag(code: ContextRecord.nic.rawValue))
            out.varint(UInt64(newNic))
            nic = newNic
        }
        out.byte(RecordCode.tag(code: code, small: small))
        eventCount += 1
    }

    /// A cause's time: the delta from the previous cause's (or the chunk's base).
    /// Monotonic: a clock that went backwards is recorded as no time passing.
    @inline(__always)
    mutating func timeDelta(_ time: UInt64) {
        out.varint(time >= lastTime ? time - lastTime : 0)
        lastTime = max(time, lastTime)
    }

    mutating func mmio(_ kind: TraceEventKind, nic: Int, vcpu newVcpu: UInt32, time: UInt64, offset: UInt64, width: Int, value: UInt64) {
        own()
        if newVcpu != vcpu {
            out.byte(RecordCode.tag(code: ContextRecord.vcpu.rawValue))
            out.varint(UInt64(newVcpu))
            vcpu = newVcpu
        }
        let small = width >= 0 && width < 15
        tag(kind, small ? UInt8(width) : 15, nic: nic)
        if !small { out.zigzag(Int64(width)) }
        out.varint(offset)
        out.varint(value)
        timeDelta(time)
    }

    mutating func memoryRead(nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool) {
        let n = bytes.count
        tag(.memoryRead, ok ? 0 : 1, nic: nic)
        out.zigzag(Int64(bitPattern: address &- lastReadEnd))
        out.varint(UInt64(n))
        if ok {
            if n >= 8 {
                recentReads.push(length: n, start: out.count)
            }
            out.append(bytes)
        }
        lastReadEnd = address &+ UInt64(n)
    }

    mutating func memoryWrite(nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool) {
        let n = bytes.count
        var reference: Int?
        if n >= 8 {
            for i in 0..<4 {
                guard let entry = recentReads.get(i) else { break }
                if entry.length == n && memcmpEqual(out.base + entry.start, bytes.baseAddress!, n) {
                    reference = i
                    break
                }
            }
        }
        tag(.memoryWrite, (ok ? 0 : 1) | (reference != nil ? 2 : 0) | UInt8(reference ?? 0) << 2, nic: nic)
        out.zigzag(Int64(bitPattern: address &- lastWriteEnd))
        out.varint(UInt64(n))
        if reference == nil { out.append(bytes) }
        lastWriteEnd = address &+ UInt64(n)
    }

    /// A memory access that stores only its first `bytes.count` of `length`
    /// bytes (``TruncatedMemoryRecord``); it is no recent read.
    mutating func truncated(nic: Int, address: UInt64, length: Int, bytes: UnsafeRawBufferPointer, flags: TruncatedMemoryRecord.Flags) {
        tag(code: TruncatedMemoryRecord.code, nic: nic)
        out.byte(flags.rawValue)
        let isWrite = flags.contains(.write)
        out.zigzag(Int64(bitPattern: address &- (isWrite ? lastWriteEnd : lastReadEnd)))
        out.varint(UInt64(length))
        out.varint(UInt64(bytes.count))
        out.append(bytes)
        if isWrite { lastWriteEnd = address &+ UInt64(length) } else { lastReadEnd = address &+ UInt64(length) }
    }

    mutating func counter(nic: Int, index: Int, value: UInt64) {
        tag(.counter, UInt8(index & 15), nic: nic)
        if nic < counterNICs && index < 16 {
            let i = 16 &* nic &+ index
            out.varint(value &- counterValues[i])
            counterValues[i] = value
        } else {
            out.varint(value)
        }
    }

    /// Up to three details: a count, then the values.
    @inline(__always)
    mutating func writeDetails(_ d: EventDetails) {
        out.varint(UInt64(d.count))
        if d.count > 0 { out.varint(d.a) }
        if d.count > 1 { out.varint(d.b) }
        if d.count > 2 { out.varint(d.c) }
    }

    /// Appends bytes that need not be a valid record: for tests and fuzz
    /// seeds that build hostile chunks.
    public mutating func appendRaw(_ bytes: [UInt8]) {
        own()
        bytes.withUnsafeBytes { out.append($0) }
    }
}

/// Whether `n` bytes at `a` and `b` are equal: inline word compares for the
/// device's small payloads, libc's `memcmp` for frames.
@inlinable @inline(__always)
func memcmpEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    if n >= 64 { return memcmp(a, b, n) == 0 }
    var i = 0
    while i + 8 <= n {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
        i += 8
    }
    while i < n {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
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
            return b
        }
        return EncoderBuffer(capacity: capacity)
    }

    func put(_ b: EncoderBuffer) { mutex.withLock { if free.count < limit { free.append(b) } } }

    /// Takes back an encoder's memory; the encoder must not be written again.
    public func recycle(_ encoder: ChunkEncoder) { put(encoder.out) }

    /// Takes back a staged chunk's memory once it is encoded.
    public func recycle(_ staged: StagedChunk) { put(staged.out) }

    /// Buffers waiting to be reused.
    public var count: Int { mutex.withLock { free.count } }
}

/// Growable bytes the chunk encoder writes into directly.
@usableFromInline final class EncoderBuffer {
    @usableFromInline private(set) var base: UnsafeMutableRawPointer
    @usableFromInline private(set) var capacity: Int
    @usableFromInline var count = 0

    @usableFromInline init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 8)
    }

    deinit { base.deallocate() }

    func copy() -> EncoderBuffer {
        let c = EncoderBuffer(capacity: capacity)
        c.base.copyMemory(from: base, byteCount: count)
        c.count = count
        return c
    }

    var bytes: [UInt8] { withBytes { Array($0) } }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    @inlinable @inline(__always)
    func reserve(_ n: Int) {
        if n > capacity - count { grow(count + n) }
    }

    @usableFromInline @inline(never)
    func grow(_ needed: Int) {
        let newCapacity = max(needed, capacity * 2)
        let p = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 8)
        p.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = p
        capacity = newCapacity
    }

    @inlinable @inline(__always)
    func byte(_ v: UInt8) {
        reserve(1)
        base.storeBytes(of: v, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    /// Unsigned LEB128, as ``ByteWriter/varint(_:)``.
    @inlinable @inline(__always)
    func varint(_ value: UInt64) {
        reserve(10)
        var v = value
        var at = count
        while v >= 0x80 {
            base.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: at, as: UInt8.self)
            at += 1
            v >>= 7
        }
        base.storeBytes(of: UInt8(v), toByteOffset: at, as: UInt8.self)
        count = at + 1
    }

    /// One 8-byte word at an 8-byte-aligned end; the caller reserved room.
    @inlinable @inline(__always)
    func word(_ v: UInt64) {
        base.storeBytes(of: v, toByteOffset: count, as: UInt64.self)
        count += 8
    }

    /// `raw`, then up to 7 bytes (never read) to the next multiple of 8; the
    /// caller reserved room.
    @inlinable @inline(__always)
    func appendPadded(_ raw: UnsafeRawBufferPointer) {
        let n = raw.count
        let to = base + count
        // The device's small reads and writes (ring indices, used elements,
        // descriptors) copied inline: a libc call costs more than they do.
        switch n {
        case 2: to.storeBytes(of: raw.loadUnaligned(as: UInt16.self), as: UInt16.self)
        case 4: to.storeBytes(of: raw.loadUnaligned(as: UInt32.self), as: UInt32.self)
        case 8: to.storeBytes(of: raw.loadUnaligned(as: UInt64.self), as: UInt64.self)
        case 16:
            to.storeBytes(of: raw.loadUnaligned(as: UInt64.self), as: UInt64.self)
            to.storeBytes(of: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self), toByteOffset: 8, as: UInt64.self)
        case 0: break
        default: to.copyMemory(from: raw.baseAddress!, byteCount: n)
        }
        count += (n + 7) & ~7
    }

    @inlinable @inline(__always)
    func zigzag(_ value: Int64) { varint(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }

    @inlinable @inline(__always)
    func append(_ raw: UnsafeRawBufferPointer) {
        guard raw.count > 0 else { return }
        reserve(raw.count)
        (base + count).copyMemory(from: raw.baseAddress!, byteCount: raw.count)
        count += raw.count
    }
}
