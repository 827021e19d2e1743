//! Where a stopped replay is, and the devices' state there, for a debugger:
//! readable in the middle of a drain without touching the device.

import TraceFormat
import TraceMapping
import VirtioCore

/// A replay stopped before an event: where it is, and every NIC's state.
///
/// A device stopped inside an access cannot be read (it is in the middle of
/// a mutating call), so the state is the device's at its last access
/// boundary advanced by the recorded events since: counters, queue indices,
/// poison flags, status, features, pairs and interrupt status move exactly
/// as the device moved them (every one of those changes is an event the
/// replay checked); the rest of the state changes only between accesses.
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
        var states = cursor.boundaryStates
        for n in states.indices {
            let from = base + min(cursor.boundaryPositions[n], events.count)
            for r in events[from...] where r.event.nic == n { states[n].advance(by: r.event, queueMaxSize: reader.header.netConfig.effectiveQueueMaxSize) }
        }
        let nic = cursor.executingNIC ?? nextEvent?.nic ?? 0
        var stop = ReplayStop(position: position, next: nextText, nic: nic, access: nil, eventsIntoAccess: 0,
                              chains: [], touches: nil, states: states)
        guard cursor.executingNIC != nil, nic < cursor.accessEvents.count else { return stop }
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

extension VirtioNetState {
    /// Applies what a recorded device event says changed (counters, queue
    /// indices, poison, status, features, pairs, interrupts, reset).
    mutating func advance(by e: TraceEvent, queueMaxSize: UInt16) {
        switch e.body {
        case .counter(let index, let value):
            if let c = NetCounter(ordinal: index) { counters[c] = value }
        case .chain(let q, _, _):
            if Int(q) < queues.count { queues[Int(q)].nextAvail &+= 1 }
        case .used(let q, _, _):
            if Int(q) < queues.count { queues[Int(q)].nextUsed &+= 1 }
        case .poison(let q, _, _):
            if Int(q) < poisoned.count { poisoned[Int(q)] = true }
        case .status(_, let new):
            status = DeviceStatus(rawValue: new)
        case .features(_, let new):
            driverFeatures = new
        case .pairs(_, let new):
            activeQueuePairs = new
        case .interrupt(let kind):
            interruptStatus.formUnion(InterruptSignals(rawValue: kind))
        case .reset:
            var fresh = VirtioNetState(queueCount: queues.count, maxSize: queueMaxSize)
            fresh.counters = counters
            fresh.interruptsRaised = interruptsRaised
            fresh.memoryWarningIssued = memoryWarningIssued
            self = fresh
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
            if address >= queue.descTable && address - queue.descTable < 16 * size {
                return "q\(q) descriptor table, entry \((address - queue.descTable) / 16)"
            }
            if address >= queue.availRing && address - queue.availRing < 6 + 2 * size {
                let o = address - queue.availRing
                return "q\(q) avail ring, " + (o == 0 ? "flags" : o == 2 ? "idx" : o < 4 + 2 * size ? "ring[\((o - 4) / 2)]" : "used_event")
            }
            if address >= queue.usedRing && address - queue.usedRing < 6 + 8 * size {
                let o = address - queue.usedRing
                return "q\(q) used ring, " + (o == 0 ? "flags" : o == 2 ? "idx" : o < 4 + 8 * size ? "ring[\((o - 4) / 8)]" : "avail_event")
            }
        }
        return nil
    }
}
