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

/// What a plot's x axis counts.
public enum PlotAxis: Sendable {
    /// The trace's own event numbers.
    case events
    /// Another trace's event numbers: this trace's mapped through `AxisMap`
    /// (B drawn on A's axis through the diff's alignment).
    case aligned(AxisMap)
    /// Nanoseconds since the trace's first access.
    case time
}

/// One trace's counter timelines in one scope, binned for a plot.
public struct CounterPlotData: Sendable {
    /// Where the trace ends on the x axis.
    public var events: UInt64
    public var series: [NetCounter: BinnedSeries]
    /// The trace's event numbers on the x axis (for marks at an event).
    public var toAxis = AxisMap()
    /// Marker events in the range (a trigger that fired): where on the axis, the event and its text.
    public var markers: [(x: UInt64, event: UInt64, text: String)] = []

    public init(events: UInt64, series: [NetCounter: BinnedSeries]) {
        self.events = events
        self.series = series
    }

    /// Counters that changed at least once in the range.
    public var moved: [NetCounter] { NetCounter.allCases.filter { (series[$0]?.transitions ?? 0) > 0 } }

    /// Walks `reader` (every counter transition in scope: `nic`, or the
    /// aggregate over NICs when nil) into `columns` columns spanning
    /// `from..<from + span` on `axis` (default: the whole trace). Decoding
    /// starts at the chunk holding the range's first event and stops at its end.
    public init(reader: TraceReader, nic: Int?, columns: Int, from: UInt64 = 0, span: UInt64? = nil, axis: PlotAxis = .events) throws(TraceError) {
        let span = max(1, span ?? reader.eventCount)
        let last = from &+ (span - 1)
        // The trace's own events to walk, and where each lands on the axis.
        let walkFrom: UInt64, walkThrough: UInt64
        switch axis {
        case .events: (walkFrom, walkThrough) = (from, last)
        case .aligned(let map):
            let back = map.inverse
            (walkFrom, walkThrough) = (back.map(from), back.map(last))
            toAxis = map
        case .time: (walkFrom, walkThrough) = (0, .max)
        }
        events = 0
        // By ordinal while walking (no hashing per transition).
        var bins = NetCounter.allCases.map { _ in BinnedSeries(columns: columns, from: from, span: span, start: 0) }
        var started = false
        var times = AxisMap()
        var markers: [(x: UInt64, event: UInt64, text: String)] = []
        try CounterTimeline(reader: reader, nic: nic).walk(from: walkFrom, through: walkThrough) { sample in
            let x: UInt64
            switch axis {
            case .events: x = sample.event
            case .aligned(let map): x = map.map(sample.event)
            case .time:
                x = sample.time
                times.add(sample.event, sample.time)
            }
            if !started {
                started = true
                for c in NetCounter.allCases { bins[c.ordinal] = BinnedSeries(columns: columns, from: from, span: span, start: sample.counters[c]) }
                return
            }
            if let text = sample.marker, x >= from, x <= last, markers.count < 100 { markers.append((x, sample.event, text)) }
            guard let c = sample.counter else { return }
            if x < from {
                bins[c.ordinal].start = sample.counters[c]
                bins[c.ordinal].end = sample.counters[c]
            } else if x <= last {
                bins[c.ordinal].add(event: x, value: sample.counters[c])
            }
        }
        switch axis {
        case .events: events = reader.eventCount
        case .aligned(let map): events = map.map(reader.eventCount)
        case .time:
            toAxis = times
            events = Self.lastTime(reader) ?? times.map(reader.eventCount)
        }
        series = Dictionary(uniqueKeysWithValues: NetCounter.allCases.map { ($0, bins[$0.ordinal]) })
        self.markers = markers
    }

    /// The time of the trace's last event, since its first access (decodes the last chunk).
    public static func lastTime(_ reader: TraceReader) -> UInt64? {
        guard let lastChunk = reader.chunks.indices.last, let first = reader.chunks.first, var d = try? reader.decoder(lastChunk) else { return nil }
        var time: UInt64?
        while let e = try? d.next() { time = e.time }
        return time.map { $0 &- first.firstTime }
    }
}
