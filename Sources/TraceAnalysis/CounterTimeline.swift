//! Counter values over event numbers: the rows of `vtrace timeline`, the
//! tracks of exports and the series of plots.

import TraceFormat
import TraceMapping
import VirtioCore

/// Walks a trace and reports counter values as they change.
public struct CounterTimeline {
    /// One point of the timeline.
    public struct Sample: Sendable {
        public var event: UInt64
        /// Nanoseconds since the trace's first access.
        public var time: UInt64
        /// The NIC whose counter moved (nil for a periodic sample).
        public var nic: Int?
        public var counter: NetCounter?
        /// The selected scope's counters at this event.
        public var counters: NetCounters
        /// A marker event's text (`marker: trigger fired at event N`), nil for other samples.
        public var marker: String? = nil
    }

    public let reader: TraceReader
    /// nil: the aggregate over all NICs.
    public let nic: Int?

    public init(reader: TraceReader, nic: Int?) {
        self.reader = reader
        self.nic = nic
    }

    /// Calls `body` with the starting values (event 0 of the first chunk), then
    /// at every transition of a counter in `counters` within scope — or, with
    /// `every`, once per `every` events — and last at the trace's end.
    ///
    /// With `from`, decoding starts at the chunk holding that event (the
    /// first call has that chunk's starting values and first event number);
    /// with `through`, it stops after that event (the last call is there).
    public func walk(counters: Set<NetCounter> = Set(NetCounter.allCases), every: UInt64? = nil,
                     from: UInt64 = 0, through: UInt64 = .max, _ body: (Sample) -> Void) throws(TraceError) {
        guard !reader.chunks.isEmpty else { return }
        let start = reader.chunks[0].firstTime
        let first = reader.chunkIndex(containing: from) ?? 0
        var perNIC: [NetCounters] = []
        var buffer: ChunkBuffer?
        var last = (event: UInt64(0), time: UInt64(0))
        func scoped() -> NetCounters { NetCounters.scoped(perNIC, nic: nic) }
        var nextSample = every ?? .max
        chunks: for i in first..<reader.chunks.count {
            var d = try reader.decoder(i, reusing: &buffer)
            if i == first {
                perNIC = d.startCounters.map { NetCounters(values: $0) ?? NetCounters() }
                body(Sample(event: d.firstEvent, time: 0, nic: nil, counter: nil, counters: scoped()))
            }
            while true {
                let event = try d.next(chunk: i, of: reader)
                guard let e = event else { break }
                if e.number > through { break chunks }
                last = (e.number, e.time &- start)
                if case .counter(let index, let value) = e.body, let c = NetCounter(ordinal: index), e.nic < perNIC.count {
                    perNIC[e.nic][c] = value
                    if every == nil, counters.contains(c), nic == nil || nic == e.nic {
                        body(Sample(event: e.number, time: e.time &- start, nic: e.nic, counter: c, counters: scoped()))
                    }
                }
                if case .marker(let code, let details) = e.body {
                    var sample = Sample(event: e.number, time: e.time &- start, nic: e.nic, counter: nil, counters: scoped())
                    sample.marker = "marker: " + EventFormatting.markerText(code, details)
                    body(sample)
                }
                if let every, e.number >= nextSample {
                    body(Sample(event: e.number, time: e.time &- start, nic: nil, counter: nil, counters: scoped()))
                    nextSample = e.number + every
                }
            }
        }
        body(Sample(event: last.event, time: last.time, nic: nil, counter: nil, counters: scoped()))
    }
}

extension CounterTimeline {
    /// Per NIC, the counters at the trace's end (decodes the last chunk only).
    public func finalCounters() throws(TraceError) -> [NetCounters] {
        guard let i = reader.chunks.indices.last else { return Array(repeating: NetCounters(), count: reader.header.nics) }
        var d = try reader.decoder(i)
        var perNIC = d.startCounters.map { NetCounters(values: $0) ?? NetCounters() }
        while true {
            let event = try d.next(chunk: i, of: reader)
            guard let e = event else { break }
            if case .counter(let index, let value) = e.body, let c = NetCounter(ordinal: index), e.nic < perNIC.count { perNIC[e.nic][c] = value }
        }
        return perNIC
    }
}
