//! Trace events as plain integers and byte ranges (no virtio semantics here).

/// Event kinds: the low 4 bits of each record's tag byte.
public enum TraceEventKind: UInt8, CaseIterable, Hashable, Sendable, Codable {
    case mmioRead = 0, mmioWrite, memoryRead, memoryWrite, chain, used, counter, interrupt, poison, status,
         features, pairs, reset, warning, memoryBinding
    // 15 is the escape: context records (NIC / vCPU switch) and, from minor
    // version 1, the kinds below.
    /// A vhost-user transport operation (a cause, like an MMIO access): tag
    /// 15 with aux 2 (minor version 1).
    case transport = 16

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
        }
    }
}

/// Up to three integer details of a poison or warning event.
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
    public var values: [UInt64] { Array([a, b, c].prefix(count)) }
}

/// One decoded event. Byte payloads are ranges into the decoded chunk's
/// buffer (`ChunkDecoder.bytes(_:)`); a chain's descriptors are in
/// `ChunkDecoder.descriptors` until the next event is decoded.
public struct TraceEvent: Hashable, Sendable {
    public var number: UInt64
    /// Monotonic nanoseconds of the MMIO access that caused the event (for display only).
    public var time: UInt64
    public var nic: Int
    public var vcpu: UInt32
    public var body: Body

    public init(number: UInt64, time: UInt64, nic: Int, vcpu: UInt32, body: Body) {
        self.number = number
        self.time = time
        self.nic = nic
        self.vcpu = vcpu
        self.body = body
    }

    public enum Body: Hashable, Sendable {
        case mmioRead(offset: UInt64, width: Int, value: UInt64)
        case mmioWrite(offset: UInt64, width: Int, value: UInt64)
        case memoryRead(address: UInt64, length: Int, ok: Bool, bytes: Range<Int>)
        case memoryWrite(address: UInt64, length: Int, ok: Bool, bytes: Range<Int>)
        case chain(queue: UInt16, head: UInt16, descriptorCount: Int)
        case used(queue: UInt16, id: UInt32, len: UInt32)
        case counter(index: Int, value: UInt64)
        case interrupt(kind: UInt32)
        case poison(queue: UInt16, code: UInt64, details: EventDetails)
        case status(old: UInt8, new: UInt8)
        case features(old: UInt64, new: UInt64)
        case pairs(old: UInt16, new: UInt16)
        case reset
        case warning(code: UInt64, details: EventDetails)
        case memoryBinding(bound: Bool)
        /// A vhost-user operation: its code (`TransportOperation.traceCode`, in TraceMapping), queue and values.
        case transport(code: UInt8, queue: UInt16, values: EventDetails)
    }

    public var kind: TraceEventKind {
        switch body {
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
        }
    }
}

/// A descriptor as recorded: the 16-byte split-ring fields.
public struct TraceDescriptor: Hashable, Sendable, Codable {
    public var addr: UInt64
    public var len: UInt32
    public var flags: UInt16
    public var next: UInt16
    public init(addr: UInt64, len: UInt32, flags: UInt16, next: UInt16) {
        self.addr = addr
        self.len = len
        self.flags = flags
        self.next = next
    }
}

/// Flags of a chunk's content header.
public struct ChunkFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// The chunk starts with a checkpoint of every NIC.
    public static let checkpoint = ChunkFlags(rawValue: 1)
    /// The chunk continues an MMIO access begun in the previous chunk (no checkpoint).
    public static let continuation = ChunkFlags(rawValue: 2)
    /// The chunk ends inside an access: the next chunk continues it, as a
    /// continuation or from a checkpoint between two chains of a drain (format 1.2).
    public static let endsInsideAccess = ChunkFlags(rawValue: 4)
}
