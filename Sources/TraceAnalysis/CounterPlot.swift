//! Counter timelines binned for drawing: one column per horizontal pixel, so a
//! plot of a trace of any length has a bounded size.

import TraceFormat
import TraceMapping
import VirtioCore

/// A counter's values over a range of event numbers, kept per column of a
/// fixed-width plot: the first, lowest, highest and last value the counter
/// took in the events that column covers. Memory is O(columns), whatever the
/// trace's length.
public struct BinnedSeries: Sendable, Equatable {
    public struct Bin: Sendable, Equatable {
        public var first: UInt64
        public var low: UInt64
        public var high: UInt64
        public var last: UInt64
    }
    /// The value before the first event of the range.
    public var start: UInt64
    /// The first event of column 0, and how many events the columns span.
    public let from: UInt64
    public let span: UInt64
    public private(set) var bins: [Bin?]
    /// Transitions seen in the range.
    public private(set) var transitions = 0
    public var end: UInt64

    public init(columns: Int, from: UInt64 = 0, span: UInt64, start: UInt64) {
        bins = Array(repeating: nil, count: max(1, columns))
        self.from = from
        self.span = max(1, span)
        self.start = start
        end = start
    }

    /// The column event `event` falls into (clamped to the range).
    public func column(_ event: UInt64) -> Int {
        let offset = event < from ? 0 : event - from
        let c = offset.multipliedFullWidth(by: UInt64(bins.count))
        guard c.high < span else { return bins.count - 1 }
        let (q, _) = span.dividingFullWidth(c)
        return Int(min(q, UInt64(bins.count - 1)))
    }

    /// The counter took `value` at `event` (events in increasing order).
    public mutating func add(event: UInt64, value: UInt64) {
        let c = column(event)
        if var b = bins[c] {
            b.low = min(b.low, value)
            b.high = max(b.high, value)
            b.last = value
            bins[c] = b
        } else {
            bins[c] = Bin(first: value, low: value, high: value, last: value)
        }
        end = value
        transitions += 1
    }

    /// The highest and lowest values the counter took in the range.
    public var maximum: UInt64 { bins.reduce(start) { max($0, $1?.high ?? 0) } }
    public var minimum: UInt64 { bins.reduce(start) { min($0, $1?.low ?? .max) } }
}

/// One trace's counter timelines in one scope, binned for a plot.
public struct CounterPlotData: Sendable {
    public var events: UInt64
    public var series: [NetCounter: BinnedSeries]

    public init(events: UInt64, series: [NetCounter: BinnedSeries]) {
        self.events = events
        self.series = series
    }

    /// Counters that changed at least once in the range.
    public var moved: [NetCounter] { NetCounter.allCases.filter { (series[$0]?.transitions ?? 0) > 0 } }

    /// Walks `reader` (every counter transition in scope: `nic`, or the
    /// aggregate over NICs when nil) into `columns` columns spanning events
    /// `from..<from + span` (default: the whole trace). Decoding starts at the
    /// chunk holding `from` and stops at the range's end.
    public init(reader: TraceReader, nic: Int?, columns: Int, from: UInt64 = 0, span: UInt64? = nil) throws(TraceError) {
        let span = max(1, span ?? reader.eventCount)
        events = reader.eventCount
        // By ordinal while walking (no hashing per transition).
        var bins = NetCounter.allCases.map { _ in BinnedSeries(columns: columns, from: from, span: span, start: 0) }
        var started = false
        try CounterTimeline(reader: reader, nic: nic).walk(from: from, through: from &+ (span - 1)) { sample in
            if !started {
                started = true
                for c in NetCounter.allCases { bins[c.ordinal] = BinnedSeries(columns: columns, from: from, span: span, start: sample.counters[c]) }
                return
            }
            guard let c = sample.counter else { return }
            if sample.event < from {
                bins[c.ordinal].start = sample.counters[c]
                bins[c.ordinal].end = sample.counters[c]
            } else {
                bins[c.ordinal].add(event: sample.event, value: sample.counters[c])
            }
        }
        series = Dictionary(uniqueKeysWithValues: NetCounter.allCases.map { ($0, bins[$0.ordinal]) })
    }
}
