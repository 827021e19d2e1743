//! The trace form of a vhost-user operation: its code and up to three values.

import TraceFormat
import VirtioCore

extension TransportOperation {
    /// Stable numbers for the trace (never renumbered).
    public var traceCode: UInt8 {
        switch self {
        case .setFeatures: return 0
        case .setRingSize: return 1
        case .setRingAddresses: return 2
        case .setRingBase: return 3
        case .enableRing: return 4
        case .kick: return 5
        case .stopRing: return 6
        case .reset: return 7
        }
    }

    /// Up to three values besides the queue, as the trace stores them.
    public var traceValues: EventDetails {
        switch self {
        case .setFeatures(let f): return EventDetails(count: 1, f, 0, 0)
        case .setRingSize(_, let s): return EventDetails(count: 1, UInt64(s), 0, 0)
        case .setRingAddresses(_, let d, let a, let u): return EventDetails(count: 3, d, a, u)
        case .setRingBase(_, let b): return EventDetails(count: 1, UInt64(b), 0, 0)
        case .enableRing(_, let e): return EventDetails(count: 1, e ? 1 : 0, 0, 0)
        case .kick, .stopRing, .reset: return EventDetails()
        }
    }

    /// Rebuilds an operation from its trace form; nil for an unknown code or
    /// the wrong number of values (a corrupt or newer trace).
    public init?(traceCode code: UInt8, queue: UInt16, values: EventDetails) {
        switch (code, values.count) {
        case (0, 1): self = .setFeatures(values.a)
        case (1, 1):
            guard let s = UInt16(exactly: values.a) else { return nil }
            self = .setRingSize(queue: queue, size: s)
        case (2, 3): self = .setRingAddresses(queue: queue, desc: values.a, avail: values.b, used: values.c)
        case (3, 1):
            guard let b = UInt16(exactly: values.a) else { return nil }
            self = .setRingBase(queue: queue, base: b)
        case (4, 1):
            guard values.a <= 1 else { return nil }
            self = .enableRing(queue: queue, enabled: values.a == 1)
        case (5, 0): self = .kick(queue: queue)
        case (6, 0): self = .stopRing(queue: queue)
        case (7, 0): self = .reset
        default: return nil
        }
    }
}
