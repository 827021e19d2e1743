//! An observer that keeps every device action as a value, for tests and tools.

import VirtioCore

/// One observable device action, as a comparable value.
public enum DeviceEvent: Hashable, Sendable, CustomStringConvertible {
    case mmioRead(offset: UInt64, width: Int, value: UInt64)
    case mmioWrite(offset: UInt64, width: Int, value: UInt64)
    case memoryRead(address: UInt64, bytes: [UInt8], succeeded: Bool)
    case memoryWrite(address: UInt64, bytes: [UInt8], succeeded: Bool)
    case chainPopped(queue: UInt16, head: UInt16, descriptors: [Descriptor])
    case usedPublished(queue: UInt16, id: UInt32, len: UInt32)
    case counter(NetCounter, UInt64)
    case interrupt(InterruptSignals)
    case poisoned(queue: UInt16, error: QueueError)
    case status(from: UInt8, to: UInt8)
    case driverFeatures(from: UInt64, to: UInt64)
    case activeQueuePairs(from: UInt16, to: UInt16)
    case reset
    case warning(DeviceWarning)

    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case .mmioRead(let o, let w, let v): return "mmio read \(MMIORegister.describe(offset: o))/\(w) -> \(hex(v))"
        case .mmioWrite(let o, let w, let v): return "mmio write \(MMIORegister.describe(offset: o))/\(w) = \(hex(v))"
        case .memoryRead(let a, let b, let ok): return "mem read \(hex(a)) +\(b.count)\(ok ? "" : " FAULT")"
        case .memoryWrite(let a, let b, let ok): return "mem write \(hex(a)) +\(b.count)\(ok ? "" : " FAULT")"
        case .chainPopped(let q, let h, let d): return "chain q\(q) head \(h) (\(d.count) descs)"
        case .usedPublished(let q, let id, let len): return "used q\(q) id \(id) len \(len)"
        case .counter(let c, let v): return "\(c.name) = \(v)"
        case .interrupt(let k): return "irq \(k == .vring ? "VRING" : "CONFIG")"
        case .poisoned(let q, let e): return "poison q\(q): \(e)"
        case .status(let a, let b): return "status \(DeviceStatus(rawValue: a)) -> \(DeviceStatus(rawValue: b))"
        case .driverFeatures(let a, let b): return "driver features \(hex(a)) -> \(hex(b))"
        case .activeQueuePairs(let a, let b): return "active pairs \(a) -> \(b)"
        case .reset: return "reset"
        case .warning(let w): return "warning: \(w)"
        }
    }
}

/// Keeps every event in order. Memory events can be left out, as they are
/// numerous and tests rarely want them.
public struct EventLog: DeviceObserver, Sendable {
    public var events: [DeviceEvent] = []
    public var includeMemory: Bool

    public init(includeMemory: Bool = false) { self.includeMemory = includeMemory }

    public mutating func mmioRead(offset: UInt64, width: Int, value: UInt64) {
        events.append(.mmioRead(offset: offset, width: width, value: value))
    }
    public mutating func mmioWrite(offset: UInt64, width: Int, value: UInt64) {
        events.append(.mmioWrite(offset: offset, width: width, value: value))
    }
    public mutating func memoryRead(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {
        if includeMemory { events.append(.memoryRead(address: address, bytes: succeeded ? Array(bytes) : [UInt8](repeating: 0, count: bytes.count), succeeded: succeeded)) }
    }
    public mutating func memoryWrite(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {
        if includeMemory { events.append(.memoryWrite(address: address, bytes: Array(bytes), succeeded: succeeded)) }
    }
    public mutating func chainPopped(queue: UInt16, head: UInt16, descriptors: UnsafeBufferPointer<Descriptor>) {
        events.append(.chainPopped(queue: queue, head: head, descriptors: Array(descriptors)))
    }
    public mutating func usedPublished(queue: UInt16, id: UInt32, len: UInt32) {
        events.append(.usedPublished(queue: queue, id: id, len: len))
    }
    public mutating func counterChanged(_ counter: NetCounter, value: UInt64) {
        events.append(.counter(counter, value))
    }
    public mutating func interruptRaised(_ kind: InterruptSignals) { events.append(.interrupt(kind)) }
    public mutating func queuePoisoned(queue: UInt16, error: QueueError) {
        events.append(.poisoned(queue: queue, error: error))
    }
    public mutating func statusChanged(from old: UInt8, to new: UInt8) { events.append(.status(from: old, to: new)) }
    public mutating func driverFeaturesChanged(from old: UInt64, to new: UInt64) {
        events.append(.driverFeatures(from: old, to: new))
    }
    public mutating func activeQueuePairsChanged(from old: UInt16, to new: UInt16) {
        events.append(.activeQueuePairs(from: old, to: new))
    }
    public mutating func deviceReset() { events.append(.reset) }
    public mutating func warning(_ warning: DeviceWarning) { events.append(.warning(warning)) }

    /// Events after the first `n`.
    public func since(_ n: Int) -> ArraySlice<DeviceEvent> { events[min(n, events.count)...] }
}
