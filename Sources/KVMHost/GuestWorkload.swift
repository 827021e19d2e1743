//! What the guest does, chosen at launch: `NAME[:key=value,...]`, written
//! into guest memory as the parameter block tools/guest/guest.c reads.

/// A workload and its parameters.
public struct GuestWorkload: Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, CaseIterable, Sendable {
        /// `frames` frames of `len` bytes over `pairs` queue pairs, each split over `descs` descriptors.
        case burst
        /// VQ_PAIRS_SET to 1, 2, … `pairs` through the control queue, `frames` frames on each setting.
        case mq
        /// Hostile guests, one counter path each (spec §3): TX avail.idx 1000 ahead.
        case bogusAvail = "bogus-avail"
        /// A TX descriptor and an RX buffer beyond guest RAM.
        case unmapped
        /// A device-writable TX descriptor.
        case txWriteOnly = "tx-write-only"
        /// A device-readable RX buffer.
        case rxReadOnly = "rx-read-only"
        /// A frame one byte over the 65,557-byte limit.
        case oversize
        /// A TX kick before DRIVER_OK, then again after it.
        case earlyKick = "early-kick"
        /// Features without VERSION_1 (FEATURES_OK refused).
        case noVersion1 = "no-version-1"
        /// A reset between two bursts.
        case reset
        /// Frames with no RX buffer posted.
        case starve
        /// Every hostile case above, one after another.
        case hostile
        /// Bad guests: loops forever (for --timeout), writes garbage to every register, triple-faults.
        case spin
        case garbage
        case tripleFault = "triple-fault"

        public var name: String { rawValue }

        /// (workload, hostile case) as tools/guest/guest.c numbers them.
        var codes: (UInt32, UInt32) {
            switch self {
            case .burst: return (1, 0)
            case .mq: return (2, 0)
            case .bogusAvail: return (3, 1)
            case .unmapped: return (3, 2)
            case .txWriteOnly: return (3, 3)
            case .rxReadOnly: return (3, 4)
            case .oversize: return (3, 5)
            case .earlyKick: return (3, 6)
            case .noVersion1: return (3, 7)
            case .reset: return (3, 8)
            case .starve: return (3, 9)
            case .hostile: return (3, 10)
            case .spin: return (4, 0)
            case .garbage: return (5, 0)
            case .tripleFault: return (6, 0)
            }
        }
    }

    public var kind: Kind
    public var frames: UInt32 = 64
    public var length: UInt32 = 64
    public var pairs: UInt32 = 1
    public var descriptors: UInt32 = 1
    /// Frames per kick (each kick is one QueueNotify exit and one drain).
    public var batch: UInt32 = 32

    public init(kind: Kind, frames: UInt32 = 64, length: UInt32 = 64, pairs: UInt32 = 1, descriptors: UInt32 = 1) {
        self.kind = kind
        self.frames = frames
        self.length = length
        self.pairs = pairs
        self.descriptors = descriptors
    }

    /// The keys each workload takes, with their limits.
    static var keys: [(name: String, range: ClosedRange<UInt32>, path: WritableKeyPath<GuestWorkload, UInt32>)] {
        [
            ("frames", 0...10_000_000, \.frames),
            ("len", 1...65_535, \.length),
            ("pairs", 1...8, \.pairs),
            ("descs", 1...16, \.descriptors),
            ("batch", 1...128, \.batch),
        ]
    }

    /// Parses `NAME[:key=value,...]`; the error says what is wrong and what is allowed.
    public static func parse(_ text: String) -> Result<GuestWorkload, GuestImageError> {
        let parts = text.split(separator: ":", maxSplits: 1)
        guard let name = parts.first, let kind = Kind.allCases.first(where: { $0.name == name }) else {
            return .failure(GuestImageError("unknown workload '\(parts.first ?? "")'; workloads are \(Kind.allCases.map(\.name).joined(separator: ", "))"))
        }
        var w = GuestWorkload(kind: kind)
        if kind == .mq { w.pairs = 2 }
        if parts.count == 2 {
            for item in parts[1].split(separator: ",") {
                let kv = item.split(separator: "=", maxSplits: 1)
                guard kv.count == 2, let key = keys.first(where: { $0.name == kv[0] }) else {
                    return .failure(GuestImageError("bad workload parameter '\(item)'; keys are \(keys.map(\.name).joined(separator: ", ")) (key=value)"))
                }
                guard let v = UInt32(kv[1]), key.range.contains(v) else {
                    return .failure(GuestImageError("\(key.name)=\(kv[1]) is not a number in \(key.range.lowerBound)...\(key.range.upperBound)"))
                }
                w[keyPath: key.path] = v
            }
        }
        return .success(w)
    }

    public var description: String {
        "\(kind.name):frames=\(frames),len=\(length),pairs=\(pairs),descs=\(descriptors),batch=\(batch)"
    }

    /// The parameter block (struct params in tools/guest/guest.c).
    func parameterBlock(nics: Int, vcpus: Int, mmioBase: UInt64, heap: UInt64, heapSize: UInt64, stackTop: UInt64, stackSize: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        u32(0x5047_5456)  // "VTGP"
        u32(1)
        u32(kind.codes.0)
        u32(UInt32(nics))
        u32(pairs)
        u32(frames)
        u32(length)
        u32(descriptors)
        u64(mmioBase)
        u64(heap)
        u64(heapSize)
        u32(0)  // seed
        u32(kind.codes.1)
        u32(batch)
        u32(UInt32(vcpus))
        u64(stackTop)
        u64(stackSize)
        return out
    }
}
