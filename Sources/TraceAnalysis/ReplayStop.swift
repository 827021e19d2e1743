//! Where a stopped replay is, and the devices' state there, for a debugger:
//! readable in the middle of a drain without touching the device.

import TraceFormat
import TraceMapping
import VirtioCore

/// A replay stopped before an event: where it is, and every NIC's state.
///
/// A device stopped inside an access cannot be read (it is in the middle of
/// a mutating call), so the state is the device's at its last access
/// boundary advanced by the recorded events since (``StateAtEvent``):
/// counters, queue indices, poison flags, status, features, pairs and
/// interrupt status move as the device moved them (every one of those
/// changes shows in an event the replay checked); the rest of the state
/// changes only between accesses.
public struct ReplayStop: Sendable {
    /// The number of the next event (events before it have been replayed).
    public var position: UInt64
    /// That event, as `vtrace dump` shows it (nil at the end).
    public var next: TraceReplayer.NumberedText?
    /// The NIC whose access is in progress (or whose access comes next).
    public var nic: Int
    /// The event that began the access in progress: the device is inside it
    /// (nil between accesses: the next event begins one).
    public var access: TraceReplayer.NumberedText?
    /// Events of the access replayed before the stop (0 between accesses).
    public var eventsIntoAccess: UInt64
    /// The chains in progress: the last one of each queue the device popped
    /// in the access in progress (a TX chain and the RX chain it is
    /// delivered into), oldest first.
    public var chains: [ChainAtStop]
    /// What guest memory the next event touches, if it is a memory access.
    public var touches: String?
    /// Per NIC, the state at the stop.
    public var states: [VirtioNetState]

    /// A chain popped during the access in progress.
    public struct ChainAtStop: Sendable {
        public var event: UInt64
        public var queue: UInt16
        public var head: UInt16
        public var descriptors: [TraceDescriptor]
    }
}

extension TraceReplayer {
    /// Where the replay is stopped and the devices' state there. Safe inside
    /// an access (from `onStop`): reads the cursor, never the devices.
    public func stopState() -> ReplayStop {
        let events = cursor.consumed
        let base = events.startIndex
        let position = self.position
        let nextEvent = cursor.current?.event
        let states = cursor.boundaryStates.indices.map { n in
            var at = StateAtEvent(cursor.boundaryStates[n], queueMaxSize: reader.header.netConfig.effectiveQueueMaxSize)
            let from = base + min(cursor.boundaryPositions[n], events.count)
            for r in events[from...] where r.event.nic == n { at.apply(r.event) }
            return at.state
        }
        let inside = cursor.executingNIC ?? cursor.divergedNIC
        let nic = inside ?? nextEvent?.nic ?? 0
        var stop = ReplayStop(position: position, next: nextText, nic: nic, access: nil, eventsIntoAccess: 0,
                              chains: [], touches: nil, states: states)
        guard inside != nil, nic < cursor.accessEvents.count else { return stop }
        let accessEvent = cursor.accessEvents[nic]
        stop.eventsIntoAccess = position - accessEvent
        if let cause = events.last(where: { $0.event.number == accessEvent }) {
            stop.access = NumberedText(number: cause.event.number, text: "nic\(cause.event.nic) " + cursor.text(cause))
        } else {
            stop.access = (try? reader.recordedText(accessEvent..<accessEvent + 1, limit: 1))?.first
                ?? NumberedText(number: accessEvent, text: "(begun before this segment's checkpoint)")
        }
        for c in events.reversed() {
            guard c.event.number >= accessEvent else { break }
            guard c.event.nic == nic, case .chain(let q, let head, let n) = c.event.body, !stop.chains.contains(where: { $0.queue == q }) else { continue }
            stop.chains.insert(.init(event: c.event.number, queue: q, head: head, descriptors: (0..<n).map { cursor.descriptor(c, $0) }), at: 0)
        }
        if let e = nextEvent, nic < states.count {
            switch e.body {
            case .memoryRead(let a, let len, _, _), .memoryWrite(let a, let len, _, _):
                stop.touches = MemoryRegion.name(address: a, length: len, queues: states[nic].queues, chains: stop.chains)
            default: break
            }
        }
        return stop
    }

    /// The number of the next event to replay: the trace's end once it is all replayed.
    public var position: UInt64 {
        if let e = cursor.current { return e.event.number }
        if let next = nextSegmentChunk { return reader.chunks[next].firstEvent }
        return reader.eventCount
    }
}

/// A NIC's state advanced event by event through what the recording says
/// the device did (``TraceReplayer/stopState()``).
///
/// The device moves a queue's next_avail when it reads the avail ring entry
/// (before it reads the chain's descriptors and reports the chain) and its
/// next_used after writing the used element (before the used index and the
/// used event): those two reads and writes move the indices here too, so
/// they are exact at every event. The poison flag shows from the poison event
/// on (the device sets it one event earlier, before counting it).
struct StateAtEvent {
    var state: VirtioNetState
    let queueMaxSize: UInt16
    /// Per queue: an avail entry was read (next_avail moved) for a chain not yet reported.
    var popping: [Bool]
    /// Per queue: a used element was written (next_used moved) for a used event not yet reported.
    var publishing: [Bool]

    init(_ state: VirtioNetState, queueMaxSize: UInt16) {
        self.state = state
        self.queueMaxSize = queueMaxSize
        popping = Array(repeating: false, count: state.queues.count)
        publishing = popping
    }

    mutating func apply(_ e: TraceEvent) {
        switch e.body {
        case .counter(let index, let value):
            if let c = NetCounter(ordinal: index) { state.counters[c] = value }
        case .memoryRead(let a, let len, let ok, _):
            guard ok, len == Int(RingLayout.availElementSize) else { return }
            for (q, queue) in state.queues.enumerated() where queue.ready && queue.size > 0 && !popping[q]
                && a == queue.availRing &+ RingLayout.availHeaderSize &+ UInt64(queue.nextAvail % queue.size) * RingLayout.availElementSize {
                state.queues[q].nextAvail &+= 1
                popping[q] = true
                return
            }
        case .memoryWrite(let a, let len, let ok, _):
            guard ok, len == Int(RingLayout.usedElementSize) else { return }
            for (q, queue) in state.queues.enumerated() where queue.ready && queue.size > 0 && !publishing[q]
                && a == queue.usedRing &+ RingLayout.usedHeaderSize &+ UInt64(queue.nextUsed % queue.size) * RingLayout.usedElementSize {
                state.queues[q].nextUsed &+= 1
                publishing[q] = true
                return
            }
        case .chain(let q, _, _):
            guard Int(q) < state.queues.count else { return }
            if popping[Int(q)] { popping[Int(q)] = false } else { state.queues[Int(q)].nextAvail &+= 1 }
        case .used(let q, _, _):
            guard Int(q) < state.queues.count else { return }
            if publishing[Int(q)] { publishing[Int(q)] = false } else { state.queues[Int(q)].nextUsed &+= 1 }
        case .poison(let q, _, _):
            if Int(q) < state.poisoned.count { state.poisoned[Int(q)] = true }
            if Int(q) < popping.count { popping[Int(q)] = false }
        case .status(_, let new):
            state.status = DeviceStatus(rawValue: new)
        case .features(_, let new):
            state.driverFeatures = new
        case .pairs(_, let new):
            state.activeQueuePairs = new
        case .interrupt(let kind):
            state.interruptStatus.formUnion(InterruptSignals(rawValue: kind))
        case .reset:
            var fresh = VirtioNetState(queueCount: state.queues.count, maxSize: queueMaxSize)
            fresh.counters = state.counters
            fresh.interruptsRaised = state.interruptsRaised
            fresh.memoryWarningIssued = state.memoryWarningIssued
            self = StateAtEvent(fresh, queueMaxSize: queueMaxSize)
        default:
            break
        }
    }
}

/// Names the guest memory a device access touches: a queue's descriptor
/// table, avail or used ring, or a buffer of the chain in progress.
enum MemoryRegion {
    static func name(address: UInt64, length: Int, queues: [SplitQueue], chains: [ReplayStop.ChainAtStop]) -> String? {
        for chain in chains.reversed() {
            for (i, d) in chain.descriptors.enumerated() where address >= d.addr && address - d.addr < UInt64(d.len) {
                let offset = address - d.addr
                return "descriptor \(i) of q\(chain.queue) head \(chain.head) (0x\(String(d.addr, radix: 16)), \(d.len) bytes\(d.flags & 2 != 0 ? ", device-writable" : "")), at offset \(offset)"
            }
        }
        for (q, queue) in queues.enumerated() where queue.ready {
            let size = UInt64(queue.size)
            if address >= queue.descTable && address - queue.descTable < Descriptor.size * size {
                return "q\(q) descriptor table, entry \((address - queue.descTable) / Descriptor.size)"
            }
            let availEnd = RingLayout.availHeaderSize + RingLayout.availElementSize * size
            if address >= queue.availRing && address - queue.availRing < availEnd + 2 {
                let o = address - queue.availRing
                return "q\(q) avail ring, " + (o == 0 ? "flags" : o == 2 ? "idx" : o < availEnd ? "ring[\((o - RingLayout.availHeaderSize) / RingLayout.availElementSize)]" : "used_event")
            }
            let usedEnd = RingLayout.usedHeaderSize + RingLayout.usedElementSize * size
            if address >= queue.usedRing && address - queue.usedRing < usedEnd + 2 {
                let o = address - queue.usedRing
                return "q\(q) used ring, " + (o == 0 ? "flags" : o == 2 ? "idx" : o < usedEnd ? "ring[\((o - RingLayout.usedHeaderSize) / RingLayout.usedElementSize)]" : "avail_event")
            }
        }
        return nil
    }
}
