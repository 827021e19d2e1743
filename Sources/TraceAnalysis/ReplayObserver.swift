//! The observer a replayed device reports to: each output checked against the recording.

import TraceFormat
import TraceMapping
import VirtioCore

/// Compares each device output with the next recorded event.
public struct ReplayObserver: DeviceObserver {
    let cursor: ReplayCursor
    let nic: Int
    /// The replayed counters, frozen at a divergence.
    public internal(set) var counters: NetCounters

    public static var observesAccessBoundaries: Bool { true }
    public mutating func accessBegan(state: VirtioNetState) { cursor.reachedBoundary(nic: nic, state: state) }
    public mutating func accessEnded(state: VirtioNetState) { cursor.reachedBoundary(nic: nic, state: state) }
    public static var observesDrainBoundaries: Bool { true }
    @inline(__always)
    public mutating func drainBoundary(_ position: DrainPosition) -> DrainBoundaryAction {
        cursor.pausesDrain(nic: nic, queue: position.queue) ? .pause : .goOn
    }

    public mutating func chainPopped(queue: UInt16, head: UInt16, descriptors: UnsafeBufferPointer<Descriptor>) {
        let c = cursor
        c.expect("popped chain q\(queue) head \(head) (\(descriptors.count) descriptors)") { e in
            guard case .chain(let q, let h, let n) = e.event.body, q == queue, h == head, n == descriptors.count else { return false }
            for i in 0..<n {
                let r = c.descriptor(e, i), d = descriptors[i]
                if r.addr != d.addr || r.len != d.len || r.flags != d.flags.rawValue || r.next != d.next { return false }
            }
            return true
        }
    }
    public mutating func usedPublished(queue: UInt16, id: UInt32, len: UInt32) {
        cursor.expect("published used q\(queue) id \(id) len \(len)") { e in e.event.body == .used(queue: queue, id: id, len: len) }
    }
    public mutating func counterChanged(_ counter: NetCounter, value: UInt64) {
        let checked = !cursor.halted
        cursor.expect("set \(counter.name) = \(value)") { e in e.event.body == .counterChanged(counter, value) }
        // Matched, or the diverging value (shown beside the recorded one); never past the recording's end.
        if checked && cursor.cut == nil { counters[counter] = value }
    }
    public mutating func interruptRaised(_ kind: InterruptSignals) {
        cursor.expect("raised irq \(kind)") { e in e.event.body == .raised(kind) }
    }
    public mutating func queuePoisoned(queue: UInt16, error: QueueError) {
        cursor.expect("poisoned q\(queue): \(error)") { e in e.event.body == .poisoned(queue: queue, error) }
    }
    public mutating func statusChanged(from old: UInt8, to new: UInt8) {
        cursor.expect("changed status \(DeviceStatus(rawValue: old)) -> \(DeviceStatus(rawValue: new))") { e in e.event.body == .status(old: old, new: new) }
    }
    public mutating func driverFeaturesChanged(from old: UInt64, to new: UInt64) {
        cursor.expect("changed driver features to 0x\(String(new, radix: 16))") { e in e.event.body == .features(old: old, new: new) }
    }
    public mutating func activeQueuePairsChanged(from old: UInt16, to new: UInt16) {
        cursor.expect("changed active pairs \(old) -> \(new)") { e in e.event.body == .pairs(old: old, new: new) }
    }
    public mutating func deviceReset() { cursor.expect("reset") { e in e.event.body == .reset } }
    public mutating func warning(_ warning: DeviceWarning) {
        cursor.expect("warned: \(warning)") { e in e.event.body == .warned(warning) }
    }
}
