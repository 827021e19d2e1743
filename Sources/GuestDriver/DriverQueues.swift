//! The driver's queues by index: a dense array, not a dictionary (every
//! chain the driver adds looks its queue up several times; hashing each
//! lookup was a tenth of the device fuzzer's time).

/// The queues set up at the last initialisation, by queue index.
public struct DriverQueues: Sendable {
    private var slots: [DriverQueue?] = []

    init() {}

    /// Queue `index`, or nil if it was not set up (any index, negative too).
    public subscript(index: Int) -> DriverQueue? {
        get { slots.indices.contains(index) ? slots[index] : nil }
        set {
            guard index >= 0 else { return }
            if index >= slots.count {
                guard newValue != nil else { return }
                slots.append(contentsOf: repeatElement(nil, count: index + 1 - slots.count))
            }
            slots[index] = newValue
        }
    }

    /// Indices of the queues set up, ascending.
    public var keys: [Int] { slots.indices.filter { slots[$0] != nil } }

    /// Takes queue `index` out (so changing it copies none of its arrays); put it back after.
    mutating func removeValue(forKey index: Int) -> DriverQueue? {
        guard slots.indices.contains(index) else { return nil }
        var taken: DriverQueue? = nil
        swap(&taken, &slots[index])
        return taken
    }

    mutating func reserveCapacity(_ count: Int) { slots.reserveCapacity(count) }
}
