//! Encodes events into one chunk's uncompressed content.

/// Builds the uncompressed content of one chunk: a small header, the
/// checkpoint, then events. Fields are varints, deltas against the previous
/// event of the same kind, no padding; a memory write whose bytes equal one of
/// the last four reads of the same length refers to it instead of repeating
/// the bytes. All context resets at each chunk, so every chunk decodes alone.
///
/// Not thread-safe; the recorder serialises access.
public struct ChunkEncoder {
    public private(set) var writer: ByteWriter
    public let firstEvent: UInt64
    public let flags: ChunkFlags
    public let baseTime: UInt64
    /// Events encoded so far.
    public private(set) var eventCount: UInt64 = 0
    /// Timestamp of the last MMIO access encoded.
    public private(set) var lastTime: UInt64

    var nic = 0
    var vcpu: UInt32 = 0
    var lastReadEnd: UInt64 = 0
    var lastWriteEnd: UInt64 = 0
    var lastDescriptorEnd: UInt64 = 0
    /// Per NIC, the last value of each counter (from the checkpoint, then events).
    var counters: [[UInt64]]
    /// Recent read payloads: (length, start offset in `writer`), newest first.
    var recentReads: [(Int, Int)] = []

    /// - Parameters:
    ///   - checkpoint: every NIC's state (required unless `continuation`).
    ///   - counters: per NIC, the counter values the events start from (a
    ///     continuation chunk's baseline; otherwise taken from `checkpoint`).
    public init(firstEvent: UInt64, baseTime: UInt64, checkpoint: [NICCheckpoint]?, counters: [[UInt64]], capacity: Int = TraceLayout.chunkTargetSize + 4096) {
        self.firstEvent = firstEvent
        self.baseTime = baseTime
        lastTime = baseTime
        flags = checkpoint == nil ? .continuation : .checkpoint
        writer = ByteWriter(capacity: capacity)
        self.counters = checkpoint?.map(\.counters) ?? counters
        writer.varint(firstEvent)
        writer.varint(flags.rawValue)
        writer.varint(baseTime)
        writer.varint(UInt64(self.counters.count))
        if let checkpoint {
            for c in checkpoint { c.encode(into: &writer) }
        } else {
            for nicCounters in counters {
                for v in nicCounters { writer.varint(v) }
            }
        }
    }

    /// Bytes encoded so far.
    public var size: Int { writer.count }

    /// Per NIC, the counter values after the last event (a continuation chunk's baseline).
    public var currentCounters: [[UInt64]] { counters }

    @inline(__always)
    mutating func tag(_ kind: UInt8, _ aux: UInt8, nic newNic: Int) {
        if newNic != nic {
            writer.byte(15)
            writer.varint(UInt64(newNic))
            nic = newNic
        }
        writer.byte(kind | aux << 4)
        eventCount += 1
    }

    public mutating func mmio(nic: Int, vcpu newVcpu: UInt32, time: UInt64, isWrite: Bool, offset: UInt64, width: Int, value: UInt64) {
        if newVcpu != vcpu {
            writer.byte(15 | 1 << 4)
            writer.varint(UInt64(newVcpu))
            vcpu = newVcpu
        }
        let small = width >= 0 && width < 15
        tag(isWrite ? 1 : 0, small ? UInt8(width) : 15, nic: nic)
        if !small { writer.zigzag(Int64(width)) }
        writer.varint(offset)
        writer.varint(value)
        // Monotonic: a clock that went backwards is recorded as no time passing.
        writer.varint(time >= lastTime ? time - lastTime : 0)
        lastTime = max(time, lastTime)
    }

    public mutating func memory(nic: Int, isWrite: Bool, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool) {
        let n = bytes.count
        if isWrite {
            var reference: Int?
            if n >= 8 {
                for (i, entry) in recentReads.enumerated() where entry.0 == n {
                    let same = writer.bytes.withUnsafeBytes { all in
                        memcmpEqual(all.baseAddress! + entry.1, bytes.baseAddress!, n)
                    }
                    if same {
                        reference = i
                        break
                    }
                }
            }
            tag(3, (ok ? 0 : 1) | (reference != nil ? 2 : 0) | UInt8(reference ?? 0) << 2, nic: nic)
            writer.zigzag(Int64(bitPattern: address &- lastWriteEnd))
            writer.varint(UInt64(n))
            if reference == nil { writer.append(bytes) }
            lastWriteEnd = address &+ UInt64(n)
        } else {
            tag(2, ok ? 0 : 1, nic: nic)
            writer.zigzag(Int64(bitPattern: address &- lastReadEnd))
            writer.varint(UInt64(n))
            if ok {
                if n >= 8 {
                    recentReads.insert((n, writer.count), at: 0)
                    if recentReads.count > 4 { recentReads.removeLast() }
                }
                writer.append(bytes)
            }
            lastReadEnd = address &+ UInt64(n)
        }
    }

    public mutating func chain(nic: Int, queue: UInt16, head: UInt16, descriptorCount: Int) {
        tag(4, 0, nic: nic)
        writer.varint(UInt64(queue))
        writer.varint(UInt64(head))
        writer.varint(UInt64(descriptorCount))
    }

    /// One descriptor of the chain just begun; call exactly `descriptorCount` times.
    public mutating func descriptor(addr: UInt64, len: UInt32, flags: UInt16, next: UInt16) {
        writer.zigzag(Int64(bitPattern: addr &- lastDescriptorEnd))
        writer.varint(UInt64(len))
        writer.varint(UInt64(flags))
        writer.varint(UInt64(next))
        lastDescriptorEnd = addr &+ UInt64(len)
    }

    public mutating func used(nic: Int, queue: UInt16, id: UInt32, len: UInt32) {
        tag(5, 0, nic: nic)
        writer.varint(UInt64(queue))
        writer.varint(UInt64(id))
        writer.varint(UInt64(len))
    }

    public mutating func counter(nic: Int, index: Int, value: UInt64) {
        tag(6, UInt8(index & 15), nic: nic)
        if nic < counters.count && index < 16 {
            writer.varint(value &- counters[nic][index])
            counters[nic][index] = value
        } else {
            writer.varint(value)
        }
    }

    public mutating func interrupt(nic: Int, kind: UInt32) {
        let small = kind < 15
        tag(7, small ? UInt8(kind) : 15, nic: nic)
        if !small { writer.varint(UInt64(kind)) }
    }

    public mutating func poison(nic: Int, queue: UInt16, code: UInt64, details: [UInt64]) {
        tag(8, 0, nic: nic)
        writer.varint(UInt64(queue))
        writer.varint(code)
        writeDetails(details)
    }

    public mutating func status(nic: Int, old: UInt8, new: UInt8) {
        tag(9, 0, nic: nic)
        writer.byte(old)
        writer.byte(new)
    }

    public mutating func features(nic: Int, old: UInt64, new: UInt64) {
        tag(10, 0, nic: nic)
        writer.varint(old)
        writer.varint(new)
    }

    public mutating func pairs(nic: Int, old: UInt16, new: UInt16) {
        tag(11, 0, nic: nic)
        writer.varint(UInt64(old))
        writer.varint(UInt64(new))
    }

    public mutating func reset(nic: Int) { tag(12, 0, nic: nic) }

    public mutating func warning(nic: Int, code: UInt64, details: [UInt64]) {
        tag(13, 0, nic: nic)
        writer.varint(code)
        writeDetails(details)
    }

    /// Up to three details: a count, then the values.
    mutating func writeDetails(_ values: [UInt64]) {
        let d = values.prefix(3)
        writer.varint(UInt64(d.count))
        for v in d { writer.varint(v) }
    }

    public mutating func memoryBinding(nic: Int, bound: Bool) { tag(14, bound ? 1 : 0, nic: nic) }

    /// Appends bytes that need not be a valid record: for tests and fuzz
    /// seeds that build hostile chunks.
    public mutating func appendRaw(_ bytes: [UInt8]) { writer.append(bytes) }
}

@inline(__always)
func memcmpEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
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
