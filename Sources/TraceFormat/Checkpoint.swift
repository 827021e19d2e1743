//! The device state at the start of a chunk, as plain integers.

/// One queue's state in a checkpoint.
public struct QueueCheckpoint: Hashable, Sendable, Codable {
    public var maxSize: UInt16 = 256
    public var size: UInt16 = 256
    public var ready = false
    public var poisoned = false
    public var descTable: UInt64 = 0
    public var availRing: UInt64 = 0
    public var usedRing: UInt64 = 0
    public var nextAvail: UInt16 = 0
    public var nextUsed: UInt16 = 0
    public init() {}
}

/// Where a drain stood when its chunk was cut between two of its chains
/// (format 1.2): the chunk resumes the drain before anything else.
public struct DrainCheckpoint: Hashable, Sendable, Codable {
    /// The queue being drained.
    public var queue: UInt16
    /// Whether the drain published a used element before the cut.
    public var usedAdvanced: Bool
    /// The number of the event that began the access (its MMIO write or vhost-user kick).
    public var accessEvent: UInt64

    public init(queue: UInt16, usedAdvanced: Bool, accessEvent: UInt64) {
        self.queue = queue
        self.usedAdvanced = usedAdvanced
        self.accessEvent = accessEvent
    }
}

/// One NIC's full state in a checkpoint: enough to resume the device core
/// from here without the events before it.
public struct NICCheckpoint: Hashable, Sendable, Codable {
    public var status: UInt8 = 0
    public var deviceFeaturesSel: UInt32 = 0
    public var driverFeaturesSel: UInt32 = 0
    public var driverFeatures: UInt64 = 0
    public var queueSel: UInt32 = 0
    public var interruptStatus: UInt32 = 0
    public var activeQueuePairs: UInt16 = 1
    /// Whether guest memory was bound to the NIC.
    public var memoryBound = true
    /// Whether the device already warned that memory was unbound.
    public var memoryWarningIssued = false
    /// Interrupts raised so far.
    public var interruptsRaised: UInt64 = 0
    /// The 16 counters, in canonical order.
    public var counters: [UInt64] = Array(repeating: 0, count: 16)
    public var queues: [QueueCheckpoint] = []
    /// A drain of this NIC paused between two chains at the chunk start (format 1.2).
    public var drain: DrainCheckpoint?
    public init() {}

    @usableFromInline static let counterCount = 16

    func encode(into w: inout ByteWriter) {
        w.byte(status)
        w.varint(UInt64(deviceFeaturesSel))
        w.varint(UInt64(driverFeaturesSel))
        w.varint(driverFeatures)
        w.varint(UInt64(queueSel))
        w.varint(UInt64(interruptStatus))
        w.varint(UInt64(activeQueuePairs))
        w.varint((memoryBound ? 1 : 0) | (memoryWarningIssued ? 2 : 0) | (drain != nil ? 4 : 0))
        w.varint(interruptsRaised)
        for i in 0..<Self.counterCount { w.varint(i < counters.count ? counters[i] : 0) }
        w.varint(UInt64(queues.count))
        for q in queues {
            w.varint(UInt64(q.maxSize))
            w.varint(UInt64(q.size))
            w.varint((q.ready ? 1 : 0) | (q.poisoned ? 2 : 0))
            w.varint(q.descTable)
            w.varint(q.availRing)
            w.varint(q.usedRing)
            w.varint(UInt64(q.nextAvail))
            w.varint(UInt64(q.nextUsed))
        }
        if let drain {
            w.varint(UInt64(drain.queue))
            w.varint(drain.usedAdvanced ? 1 : 0)
            w.varint(drain.accessEvent)
        }
    }

    static func decode(_ r: inout ByteReader) throws(ChunkDecodeError) -> NICCheckpoint {
        do throws(ByteReadError) {
            var c = NICCheckpoint()
            c.status = try r.byte()
            c.deviceFeaturesSel = try narrow(r.varint(), r.offset)
            c.driverFeaturesSel = try narrow(r.varint(), r.offset)
            c.driverFeatures = try r.varint()
            c.queueSel = try narrow(r.varint(), r.offset)
            c.interruptStatus = try narrow(r.varint(), r.offset)
            c.activeQueuePairs = try narrow(r.varint(), r.offset)
            let flags = try r.varint()
            c.memoryBound = flags & 1 != 0
            c.memoryWarningIssued = flags & 2 != 0
            c.interruptsRaised = try r.varint()
            for i in 0..<counterCount { c.counters[i] = try r.varint() }
            let count = try r.varint()
            guard count <= 513 else { throw ByteReadError.badVarint(offset: r.offset) }
            c.queues.reserveCapacity(Int(count))
            for _ in 0..<count {
                var q = QueueCheckpoint()
                q.maxSize = try narrow(r.varint(), r.offset)
                q.size = try narrow(r.varint(), r.offset)
                let f = try r.varint()
                q.ready = f & 1 != 0
                q.poisoned = f & 2 != 0
                q.descTable = try r.varint()
                q.availRing = try r.varint()
                q.usedRing = try r.varint()
                q.nextAvail = try narrow(r.varint(), r.offset)
                q.nextUsed = try narrow(r.varint(), r.offset)
                c.queues.append(q)
            }
            if flags & 4 != 0 {
                let queue: UInt16 = try narrow(r.varint(), r.offset)
                guard Int(queue) < c.queues.count else { throw ByteReadError.badVarint(offset: r.offset) }
                let drainFlags = try r.varint()
                c.drain = DrainCheckpoint(queue: queue, usedAdvanced: drainFlags & 1 != 0, accessEvent: try r.varint())
            }
            return c
        } catch {
            throw ChunkDecodeError(error)
        }
    }
}

/// A value narrowed to a smaller integer, or a decode error.
@inline(__always)
func narrow<T: FixedWidthInteger>(_ v: UInt64, _ offset: Int) throws(ByteReadError) -> T {
    guard let x = T(exactly: v) else { throw .badVarint(offset: offset) }
    return x
}

/// A problem inside a decompressed chunk, at an offset within it.
public struct ChunkDecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    public var offset: Int
    public var message: String
    public init(offset: Int, _ message: String) {
        self.offset = offset
        self.message = message
    }
    @usableFromInline init(_ e: ByteReadError) {
        switch e {
        case .truncated(let o, let n): self.init(offset: o, "chunk data ends \(n) byte\(n == 1 ? "" : "s") short")
        case .badVarint(let o): self.init(offset: o, "malformed or out-of-range number")
        }
    }
    public var description: String { "\(message) (byte \(offset) of the chunk's content)" }

    /// Maps any error thrown while decoding to a chunk error.
    static func from(_ error: any Error) -> ChunkDecodeError {
        if let e = error as? ChunkDecodeError { return e }
        if let e = error as? ByteReadError { return ChunkDecodeError(e) }
        return ChunkDecodeError(offset: 0, "\(error)")
    }
}
