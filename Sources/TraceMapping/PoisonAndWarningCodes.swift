//! The trace codes of queue errors (poison records) and device warnings.

import TraceFormat
import VirtioCore

/// Trace codes of queue errors (poison events): code, then details.
public enum PoisonCode {
    public static func encode(_ e: QueueError) -> (code: UInt64, details: EventDetails) {
        switch e {
        case .notReady: return (0, EventDetails([]))
        case .invalidAvailRingIndex(let idx, let next, let size): return (1, EventDetails([UInt64(idx), UInt64(next), UInt64(size)]))
        case .invalidDescriptorIndex(let head): return (2, EventDetails([UInt64(head)]))
        case .addressOverflow: return (3, EventDetails([]))
        case .memory(let m): return (4, EventDetails([m.address, UInt64(m.length)]))
        }
    }

    public static func decode(_ code: UInt64, _ d: EventDetails) -> QueueError? {
        switch code {
        case 0: return .notReady
        case 1: return .invalidAvailRingIndex(availIdx: UInt16(truncatingIfNeeded: d.a), nextAvail: UInt16(truncatingIfNeeded: d.b), size: UInt16(truncatingIfNeeded: d.c))
        case 2: return .invalidDescriptorIndex(UInt16(truncatingIfNeeded: d.a))
        case 3: return .addressOverflow
        case 4: return .memory(GuestMemoryError(address: d.a, length: Int(truncatingIfNeeded: d.b)))
        default: return nil
        }
    }
}

/// Trace codes of device warnings.
public enum WarningCode {
    public static func encode(_ w: DeviceWarning) -> (code: UInt64, details: EventDetails) {
        switch w {
        case .memoryNotBound: return (0, EventDetails([]))
        case .featuresRejected(let d, let o): return (1, EventDetails([d, o]))
        }
    }

    public static func decode(_ code: UInt64, _ d: EventDetails) -> DeviceWarning? {
        switch code {
        case 0: return .memoryNotBound
        case 1: return .featuresRejected(driverFeatures: d.a, offered: d.b)
        default: return nil
        }
    }
}
