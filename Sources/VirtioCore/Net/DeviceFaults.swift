//! Faults injected into the device core on purpose, to show what a bug looks like.

/// Faults a device can be built with. All off by default; when off, each
/// costs one well-predicted branch on its path. Counts are from the device's
/// creation (so a replay with faults starts from the trace's first chunk).
public struct DeviceFaults: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Silently lose the N-th RX delivery (1-based): the RX chain is consumed,
    /// nothing is written or published, no RX counter moves; TX completes.
    public var dropRx: UInt64?
    /// Do not publish the N-th used element (any queue, 1-based), while the
    /// device believes it did.
    public var skipUsed: UInt64?
    /// Ignore ring errors: a queue that would be poisoned is treated as empty.
    public var noPoison = false
    /// Bump `counter` twice on its N-th bump (1-based).
    public var countTwice: CountTwice?

    public struct CountTwice: Hashable, Sendable, Codable {
        public var counter: NetCounter
        public var bump: UInt64
        public init(counter: NetCounter, bump: UInt64) {
            self.counter = counter
            self.bump = bump
        }
    }

    public init() {}

    /// No fault at all.
    public var isEmpty: Bool { dropRx == nil && skipUsed == nil && !noPoison && countTwice == nil }

    /// One `--fault` argument: `drop-rx:N`, `skip-used:N`, `no-poison`, `count-twice:COUNTER:N`.
    /// - Returns: nil and a reason for anything else.
    public mutating func add(_ spec: String) -> String? {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func count(_ s: String) -> UInt64? { UInt64(s).flatMap { $0 >= 1 ? $0 : nil } }
        switch parts[0] {
        case "drop-rx" where parts.count == 2:
            guard let n = count(parts[1]) else { return "drop-rx takes a count from 1, got '\(parts[1])'" }
            dropRx = n
        case "skip-used" where parts.count == 2:
            guard let n = count(parts[1]) else { return "skip-used takes a count from 1, got '\(parts[1])'" }
            skipUsed = n
        case "no-poison" where parts.count == 1:
            noPoison = true
        case "count-twice" where parts.count == 3:
            guard let c = NetCounter(name: parts[1]) else { return "count-twice: unknown counter '\(parts[1])'" }
            guard let n = count(parts[2]) else { return "count-twice takes a count from 1, got '\(parts[2])'" }
            countTwice = CountTwice(counter: c, bump: n)
        default:
            return "unknown fault '\(spec)'; faults are drop-rx:N, skip-used:N, no-poison, count-twice:COUNTER:N"
        }
        return nil
    }

    /// Faults from `--fault` arguments, or the first reason one is refused.
    public static func parse(_ specs: [String]) -> Result<DeviceFaults, FaultSpecError> {
        var f = DeviceFaults()
        for s in specs {
            if let reason = f.add(s) { return .failure(FaultSpecError(message: reason)) }
        }
        return .success(f)
    }

    /// The faults as `--fault` arguments (what a trace header records).
    public var specs: [String] {
        var out: [String] = []
        if let n = dropRx { out.append("drop-rx:\(n)") }
        if let n = skipUsed { out.append("skip-used:\(n)") }
        if noPoison { out.append("no-poison") }
        if let c = countTwice { out.append("count-twice:\(c.counter.name):\(c.bump)") }
        return out
    }

    public var description: String { isEmpty ? "none" : specs.joined(separator: " ") }
}

/// A `--fault` argument that is not one.
public struct FaultSpecError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// How far each fault's count has got (device-private, not checkpointed).
struct FaultProgress: Hashable, Sendable {
    var rxDeliveries: UInt64 = 0
    var usedPublishes: UInt64 = 0
    var counterBumps: UInt64 = 0
}
