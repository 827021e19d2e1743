//! A decoded event: its number, time, NIC, vCPU and fields (no virtio semantics here).

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

    /// The event's fields; payloads are ranges of the chunk's content.
    public typealias Body = EventFields<Range<Int>>

    public var kind: TraceEventKind { body.kind }

    /// Payload bytes of a memory access the trace does not hold (a
    /// snaplen's, ``TruncatedMemoryRecord``): its length less its bytes; 0
    /// for every other event, and for a failed read (which holds none).
    public var bytesNotStored: Int {
        switch body {
        case .memoryRead(_, let length, true, let r), .memoryWrite(_, let length, _, let r): return length - r.count
        default: return 0
        }
    }

    /// Whether the event begins an access (an MMIO access, a vhost-user
    /// operation or a VMM memory binding); every other event is what one did.
    public var isCause: Bool { kind == .mmioRead || kind == .mmioWrite || kind == .memoryBinding || kind == .transport }
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
