//! Errors of the model guest driver (its own mistakes, not the device's).

import VirtioCore

/// Why the model driver could not do what it was asked.
public enum DriverError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The queue was not set up by ``VirtioNetDriver/initialize(_:features:queueSize:)``.
    case queueNotSetUp(Int)
    /// More descriptors were asked for than the queue has free.
    case outOfDescriptors(queue: Int, wanted: Int, free: Int)
    /// The driver's buffer area is exhausted.
    case outOfBufferSpace(wanted: UInt64)
    /// The rings of all queues do not fit in the driver's area.
    case ringsDoNotFit(queues: Int, queueSize: UInt16)
    /// A queue size that is not a power of two in 1...32768.
    case badQueueSize(UInt16)
    /// The driver's own access to guest memory failed (its area is not mapped).
    case memory(GuestMemoryError)
    /// A chain needs at least one descriptor.
    case emptyChain

    public var description: String {
        switch self {
        case .queueNotSetUp(let q): return "queue \(q) is not set up (run driver init first)"
        case .outOfDescriptors(let q, let wanted, let free):
            return "queue \(q) has \(free) free descriptors, \(wanted) needed"
        case .outOfBufferSpace(let n): return "driver buffer area cannot hold \(n) more bytes"
        case .ringsDoNotFit(let n, let size): return "rings of \(n) queues of size \(size) do not fit in the driver area"
        case .badQueueSize(let s): return "queue size \(s) is not a power of two in 1...32768"
        case .memory(let e): return "driver memory access failed: \(e)"
        case .emptyChain: return "a chain needs at least one descriptor"
        }
    }
}
