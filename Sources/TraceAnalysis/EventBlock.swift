//! A run of one chunk's events decoded in place: the replay cursor's window,
//! and what the decoding thread hands the replay thread (`ChunkPipeline`).

import TraceFormat

/// One recorded event, as plain values: its payload bytes stay in the
/// loaded chunk's buffer and a chain's descriptors in the block's list
/// (streaming) or the cursor's flat list (materialized), so copying one
/// costs no reference counting.
struct RecordedEvent {
    var event: TraceEvent
    /// Which loaded chunk holds it (and its payload).
    var slot: Int32
    /// Where its descriptors start in the block's (or the materialized) list.
    var descriptorStart: Int32

    var descriptorCount: Int {
        if case .chain(_, _, let n) = event.body { return n }
        return 0
    }

    static let empty = RecordedEvent(event: TraceEvent(number: 0, time: 0, nic: 0, vcpu: 0, body: .reset), slot: 0, descriptorStart: 0)
}

/// Up to `capacity` consecutive events of one chunk, decoded in place into
/// memory the block owns (allocated once, refilled block after block), with
/// their chains' descriptors, and why decoding stopped if the chunk's
/// events end here.
final class EventBlock {
    let capacity: Int
    let events: UnsafeMutablePointer<RecordedEvent>
    /// Events decoded into `events`.
    private(set) var count = 0
    /// The descriptors of the block's chain events (`descriptorStart` indexes them).
    private(set) var descriptors: [TraceDescriptor] = []
    /// The chunk the events are of (set by whoever fills the block).
    var chunk = -1
    /// The chunk's events end with this block: at its end, or at `error`.
    private(set) var endsChunk = false
    /// The content did not decode after the block's events.
    private(set) var error: ChunkDecodeError?

    init(capacity: Int) {
        self.capacity = capacity
        events = .allocate(capacity: capacity)
        events.initialize(repeating: .empty, count: capacity)
    }

    deinit { events.deallocate() }

    /// Decodes the next events of `decoder` (at most `capacity`), each marked
    /// as held by loaded chunk `slot`.
    func fill(from decoder: inout ChunkDecoder, slot: Int32) {
        count = 0
        endsChunk = false
        error = nil
        descriptors.removeAll(keepingCapacity: true)
        while count < capacity {
            let e = events + count
            do throws(ChunkDecodeError) {
                guard try decoder.next(into: &e.pointee.event) else {
                    endsChunk = true
                    return
                }
            } catch {
                self.error = error
                endsChunk = true
                return
            }
            e.pointee.slot = slot
            if case .chain = e.pointee.event.body {
                e.pointee.descriptorStart = Int32(truncatingIfNeeded: descriptors.count)
                decoder.appendDescriptors(to: &descriptors)
            }
            count += 1
        }
    }

    /// Marks every event as held by loaded chunk `slot` (a block decoded
    /// before the replay knew where the chunk would be loaded).
    func setSlot(_ slot: Int32) {
        for i in 0..<count { events[i].slot = slot }
    }
}
