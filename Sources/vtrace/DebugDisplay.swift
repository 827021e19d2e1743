import TraceFormat
import TraceAnalysis
import VirtioCore

/// How a stopped replay is shown: by `vtrace debug` and by
/// `vtrace_debug_print()` under gdb.
enum DebugDisplay {
    /// "at event N" and where that is: inside which access, or between accesses.
    static func position(_ stop: ReplayStop, eventCount: UInt64) -> String {
        guard stop.position < eventCount else { return "at event \(stop.position): the end of the trace" }
        guard let access = stop.access else { return "at event \(stop.position), between accesses" }
        return "at event \(stop.position), inside the access #\(access.number) (\(stop.eventsIntoAccess) events in)"
    }

    /// The next event, with the memory it touches.
    static func next(_ stop: ReplayStop) -> String {
        guard let next = stop.next else { return "next: end of trace" }
        return "next: #\(next.number) \(terminalSafe(next.text))" + (stop.touches.map { " — \($0)" } ?? "")
    }

    /// `where`: the position, the access, the chain and descriptor, the counters so far.
    static func whereLines(_ stop: ReplayStop, eventCount: UInt64) -> [String] {
        var lines = [position(stop, eventCount: eventCount)]
        if let access = stop.access { lines.append("  access  #\(access.number) \(terminalSafe(access.text))") }
        for c in stop.chains {
            lines.append("  chain   #\(c.event) q\(c.queue) head \(c.head), \(c.descriptors.count) descriptor\(c.descriptors.count == 1 ? "" : "s")")
            for (i, d) in c.descriptors.enumerated() {
                lines.append("          \(i): addr 0x\(String(d.addr, radix: 16)) len \(d.len) flags \(flagText(d.flags))\(d.flags & 1 != 0 ? " next \(d.next)" : "")")
            }
        }
        lines.append("  " + next(stop))
        if stop.nic < stop.states.count {
            let nonZero = stop.states[stop.nic].counters.nonZero
            lines.append("  counters of nic\(stop.nic) so far: " + (nonZero.isEmpty ? "all zero" : nonZero.map { "\($0.0.name) \($0.1)" }.joined(separator: ", ")))
        }
        return lines
    }

    /// Descriptor flags as words, or 0.
    static func flagText(_ flags: UInt16) -> String {
        let words = EventFormatting.flagWords(flags)
        return words.isEmpty ? "0" : words.joined(separator: "|")
    }

    /// Each NIC's status and queues (`queues`); with `addresses`, the rings'
    /// guest addresses too.
    static func queueLines(_ states: [VirtioNetState], addresses: Bool = false) -> [String] {
        var lines: [String] = []
        for (n, s) in states.enumerated() {
            lines.append("nic\(n): status \(s.status), interrupt status 0x\(String(s.interruptStatus.rawValue, radix: 16)), active pairs \(s.activeQueuePairs), driver features 0x\(String(s.driverFeatures, radix: 16))")
            for (i, q) in s.queues.enumerated() where q.ready || s.poisoned[i] {
                let rings = addresses ? " desc 0x\(String(q.descTable, radix: 16)) avail 0x\(String(q.availRing, radix: 16)) used 0x\(String(q.usedRing, radix: 16))" : ""
                lines.append("  queue \(i): size \(q.size) next_avail \(q.nextAvail) next_used \(q.nextUsed)\(s.poisoned[i] ? " POISONED" : "")\(rings)")
            }
        }
        return lines
    }

    /// Every NIC's counters (and their total), non-zero rows.
    static func counterTable(_ states: [VirtioNetState]) -> String { CounterTable.render(perNIC: states.map(\.counters)) }

}
