//! Where a queue drain stands between two of its chains.

/// A drain paused between two chains (spec §3.3's TX loop, §3.7's control
/// loop): with the rest of the device state, everything it takes to finish
/// the drain as if it had never stopped.
///
/// Between two chains the loop's only memory besides the device state is
/// whether a used ring advanced (the drain then ends with one VRING
/// interrupt); "just poisoned" is never set there, since poisoning ends the
/// loop. A recorder reads it to checkpoint a long drain mid-way; a replayer
/// pauses a drain where a recorded chunk ends and resumes it from the next
/// chunk's checkpoint (``VirtioNetDevice/resumeDrain()``).
public struct DrainPosition: Hashable, Sendable, Codable {
    /// The queue being drained: a TX queue (2p+1) or the control queue.
    public var queue: UInt16
    /// Whether the drain published a used element so far.
    public var usedAdvanced: Bool

    public init(queue: UInt16, usedAdvanced: Bool) {
        self.queue = queue
        self.usedAdvanced = usedAdvanced
    }

    /// Whether a drain runs on `queue` in a device with `queueCount` queues:
    /// a TX queue (odd), or the control queue (the last, when there are
    /// several pairs, so the count is odd). Anything else (a hostile
    /// checkpoint) names no drain.
    public func isOnDrainingQueue(queueCount: Int) -> Bool {
        let q = Int(queue)
        guard q < queueCount else { return false }
        return q & 1 == 1 || (queueCount > 2 && queueCount & 1 == 1 && q == queueCount - 1)
    }
}
