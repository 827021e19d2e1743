//! A debugger's watchpoints: counter conditions, found in the recording
//! forwards (continue) and backwards (reverse-continue).

import TraceFormat
import TraceMapping
import VirtioCore

/// A condition on the counters a debugger stops at.
public enum Watchpoint: Hashable, Sendable, CustomStringConvertible {
    /// Every change of `counter` (on `nic`, or on any NIC).
    case counter(NetCounter, nic: Int?)
    /// The predicate becoming true (on `nic`'s counters, or on all NICs' sum).
    case predicate(CounterPredicate, nic: Int?)

    public var description: String {
        switch self {
        case .counter(let c, let nic): return c.name + (nic.map { " on nic\($0)" } ?? " on any NIC")
        case .predicate(let p, let nic): return "'\(p)'" + (nic.map { " on nic\($0)" } ?? "")
        }
    }
}

/// A counter transition at which a watchpoint fires.
public struct WatchHit: Hashable, Sendable {
    /// The index of the watchpoint (in the list searched).
    public var watch: Int
    /// The counter event: the stop is right after it.
    public var event: UInt64
    public var nic: Int
    public var counter: NetCounter
    public var old: UInt64
    public var new: UInt64
}

/// Finds watchpoint hits in a trace's recorded counter transitions (which
/// the replay matches event for event until a divergence).
public struct WatchpointScanner {
    public let reader: TraceReader
    public let watches: [Watchpoint]

    public init(reader: TraceReader, watches: [Watchpoint]) {
        self.reader = reader
        self.watches = watches
    }

    /// The hits at the first event at `from` or later that has any (every
    /// watchpoint that fires there, in order); empty when none does.
    public func next(from: UInt64) throws(TraceError) -> [WatchHit] {
        let from = max(from, reader.firstEvent)
        guard !watches.isEmpty, from < reader.eventCount, let first = reader.chunkIndex(containing: from) else { return [] }
        var buffer: ChunkBuffer?
        for i in first..<reader.chunks.count {
            var found: [WatchHit] = []
            try scan(i, buffer: &buffer) { hit in
                guard hit.event >= from else { return false }
                if let event = found.first?.event, hit.event != event { return true }
                found.append(hit)
                return false
            }
            if !found.isEmpty { return found }
        }
        return []
    }

    /// The hits at the last event before `before` that has any; empty when none does.
    public func previous(before: UInt64) throws(TraceError) -> [WatchHit] {
        guard !watches.isEmpty, before > reader.firstEvent, let last = reader.chunkIndex(containing: min(before, reader.eventCount) - 1) else { return [] }
        var buffer: ChunkBuffer?
        for i in stride(from: last, through: 0, by: -1) {
            var found: [WatchHit] = []
            try scan(i, buffer: &buffer) { hit in
                guard hit.event < before else { return true }
                if let event = found.first?.event, hit.event != event { found = [] }
                found.append(hit)
                return false
            }
            if !found.isEmpty { return found }
        }
        return []
    }

    /// Walks chunk `i`'s counter transitions, calling `body` with each hit
    /// until it returns true.
    func scan(_ i: Int, buffer: inout ChunkBuffer?, _ body: (WatchHit) -> Bool) throws(TraceError) {
        var d = try reader.decoder(i, reusing: &buffer)
        var perNIC = d.startCounters.map { NetCounters(values: $0) ?? NetCounters() }
        func selection(_ nic: Int?) -> NetCounters { NetCounters.scoped(perNIC, nic: nic) }
        // Per watch, whether its predicate held before the transition (reused, one array for the chunk).
        var before = [Bool](repeating: true, count: watches.count)
        while let e = try d.next(chunk: i, of: reader) {
            guard case .counter(let index, let value) = e.body, let c = NetCounter(ordinal: index), e.nic < perNIC.count else { continue }
            let old = perNIC[e.nic][c]
            for (n, w) in watches.enumerated() {
                if case .predicate(let p, let nic) = w, nic == nil || nic == e.nic { before[n] = p.holds(selection(nic)) } else { before[n] = true }
            }
            perNIC[e.nic][c] = value
            for (n, w) in watches.enumerated() {
                let fires: Bool
                switch w {
                case .counter(let watched, let nic): fires = watched == c && (nic == nil || nic == e.nic)
                case .predicate(let p, let nic): fires = !before[n] && p.holds(selection(nic))
                }
                if fires, body(WatchHit(watch: n, event: e.number, nic: e.nic, counter: c, old: old, new: value)) { return }
            }
        }
    }
}
