//! Errors of the split virtqueue, as the device sees them.

/// Why a queue operation failed. Every case is caused by the guest; the device
/// counts or ignores it (spec §3.6), it never stops the VMM.
public enum QueueError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The queue is not ready, or its avail ring address is 0.
    case notReady
    /// avail.idx is more than `size` entries ahead of next_avail.
    case invalidAvailRingIndex(availIdx: UInt16, nextAvail: UInt16, size: UInt16)
    /// A used-ring publish named a head index >= the queue size.
    case invalidDescriptorIndex(UInt16)
    /// A ring address computation overflowed 64 bits.
    case addressOverflow
    /// Guest memory refused an access.
    case memory(GuestMemoryError)

    public var description: String {
        switch self {
        case .notReady: return "queue not ready"
        case .invalidAvailRingIndex(let idx, let next, let size):
            return "avail.idx \(idx) is more than \(size) ahead of next_avail \(next)"
        case .invalidDescriptorIndex(let head): return "descriptor index \(head) out of range"
        case .addressOverflow: return "ring address overflows"
        case .memory(let e): return e.description
        }
    }
}
