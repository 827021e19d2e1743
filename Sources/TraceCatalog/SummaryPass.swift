//! One pass over a trace's events gathering what the catalogue stores: the
//! counters (final, per NIC; their moves), the timeline's points, the first
//! poison, and `vtrace check`'s identities, event by event.

import TraceAnalysis
import TraceFormat
import TraceMapping
import VirtioCore

/// The accumulators of one pass; feed every event to ``take(_:)`` in order.
struct SummaryPass {
    let header: TraceHeader
    /// Event numbers of the timeline's points, ascending.
    let targets: [UInt64]
    var perNIC: [NetCounters] = []
    var moves: [[(count: UInt64, first: UInt64?, last: UInt64?)]] = []
    var timeline: [TimelinePoint] = []
    var firstPoison: FirstPoison?
    var checker: InvariantChecker?
    var violation: InvariantViolation?
    var startTime: UInt64 = 0
    var lastTime: UInt64 = 0

    /// A pass over `reader`'s events (its first chunk not yet read).
    init(_ reader: TraceReader) {
        header = reader.header
        startTime = reader.chunks.first?.firstTime ?? 0
        lastTime = startTime
        let events = reader.events
        let points = CatalogSchema.timelinePoints
        if events.isEmpty {
            targets = []
        } else {
            // Point k at the event k/(points-1) of the way from the first to the last.
            let first = events.lowerBound, span = events.upperBound - 1 - first
            targets = (0..<points).map { first + UInt64((Double(span) * Double($0) / Double(points - 1)).rounded()) }
        }
    }

    /// The first chunk's starting counters: the state before its first event.
    mutating func start(_ counters: [[UInt64]]) {
        perNIC = counters.map { NetCounters(values: $0) ?? NetCounters() }
        moves = Array(repeating: Array(repeating: (0, nil, nil), count: NetCounter.allCases.count), count: perNIC.count)
        checker = InvariantChecker(header: header, start: counters)
    }

    mutating func take(_ e: TraceEvent) {
        if violation == nil {
            do throws(InvariantViolation) { try checker?.check(e) } catch { violation = error }
        }
        switch e.body {
        case .counter(let index, let value):
            if let c = NetCounter(ordinal: index), e.nic < perNIC.count {
                perNIC[e.nic][c] = value
                let i = c.index
                moves[e.nic][i].count += 1
                if moves[e.nic][i].first == nil { moves[e.nic][i].first = e.number }
                moves[e.nic][i].last = e.number
            }
        case .poison(let queue, let code, let details) where firstPoison == nil:
            let reason = PoisonCode.decode(code, details).map { "\($0)" } ?? "code \(code)"
            firstPoison = FirstPoison(event: e.number, nic: e.nic, queue: Int(queue), reason: reason)
        default: break
        }
        lastTime = max(lastTime, e.time)
        while timeline.count < targets.count && targets[timeline.count] <= e.number {
            timeline.append(TimelinePoint(point: timeline.count, event: e.number, time: e.time &- startTime,
                                          counters: NetCounters.aggregate(perNIC) ?? NetCounters()))
        }
    }

    /// After the last event: the identities that hold at the end.
    mutating func finish() {
        guard violation == nil else { return }
        do throws(InvariantViolation) { try checker?.finish() } catch { violation = error }
    }

    /// The stored form of the pass, read to its end (`complete`) or not.
    func fill(_ s: inout TraceSummary, complete: Bool) {
        s.finalCounters = perNIC
        s.durationNanoseconds = lastTime &- startTime
        s.firstPoison = firstPoison
        s.timeline = timeline
        s.counterStats = []
        for (nic, counters) in perNIC.enumerated() {
            for c in NetCounter.allCases {
                let m = moves[nic][c.index]
                guard m.count > 0 || counters[c] != 0 else { continue }
                s.counterStats.append(CounterStat(nic: nic, counter: c, finalValue: counters[c], moves: m.count, firstEvent: m.first, lastEvent: m.last))
            }
        }
        if let v = violation {
            s.check = CheckVerdict(violation: InvariantViolationRow(event: v.event, rule: v.rule, detail: v.detail))
        } else if complete {
            s.check = CheckVerdict(violation: nil)
        }
    }
}
