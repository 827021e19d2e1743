//! Finding a counter's transition in a trace and explaining it from the
//! recorded events: the chunks around it are decoded, nothing is replayed.

import TraceFormat
import TraceMapping
import VirtioCore

extension CounterCause {
    /// How often a counter moved, and where first and last.
    public struct Tally: Hashable, Sendable {
        public var count = 0
        public var first: UInt64?
        public var last: UInt64?
        public init() {}
    }

    /// Explains the selected transition of `counter` (on `nic`, or on any NIC),
    /// or returns nil when there is none: the counter never moved, `.nth`
    /// asks past its last move or `.atOrBefore` before its first.
    ///
    /// `.last` and `.atOrBefore` decode chunks backwards from the end (or
    /// from the chunk holding the event) until one holds a transition;
    /// `.nth` decodes forwards until the K-th. The explanation then decodes
    /// the transition's chunk, and an earlier one only when the access or
    /// the chain began there.
    public static func explain(_ reader: TraceReader, counter: NetCounter, nic: Int?, selection: Selection) throws(TraceError) -> CounterCause? {
        guard let t = try find(reader, counter: counter, nic: nic, selection: selection) else { return nil }
        return try explain(reader, transition: t)
    }

    /// Every transition of `counter` (on `nic`, or on any NIC): how many, the first and the last.
    public static func tally(_ reader: TraceReader, counter: NetCounter, nic: Int?) throws(TraceError) -> Tally {
        var tally = Tally()
        for c in reader.chunks.indices {
            try transitions(in: c, of: reader, counter: counter, nic: nic) { t in
                tally.count += 1
                if tally.first == nil { tally.first = t.event }
                tally.last = t.event
                return true
            }
        }
        return tally
    }

    /// The selected transition, if there is one.
    static func find(_ reader: TraceReader, counter: NetCounter, nic: Int?, selection: Selection) throws(TraceError) -> Transition? {
        guard reader.eventCount > 0 else { return nil }
        var found: Transition?
        switch selection {
        case .nth(let k):
            guard k >= 1 else { return nil }
            var seen = 0
            for c in reader.chunks.indices where found == nil {
                try transitions(in: c, of: reader, counter: counter, nic: nic) { t in
                    seen += 1
                    if seen == k { found = t }
                    return found == nil
                }
            }
        case .last, .atOrBefore:
            var through = UInt64.max
            if case .atOrBefore(let n) = selection { through = n }
            guard let start = reader.chunkIndex(containing: min(through, reader.eventCount - 1)) else { return nil }
            for c in stride(from: start, through: 0, by: -1) where found == nil {
                try transitions(in: c, of: reader, counter: counter, nic: nic, through: through) { t in
                    found = t
                    return true
                }
            }
        }
        return found
    }

    /// Calls `body` with each transition of `counter` in chunk `c` up to event
    /// `through`, in order, while it returns true. A transition is a counter
    /// event that changes the value.
    static func transitions(in c: Int, of reader: TraceReader, counter: NetCounter, nic: Int?, through: UInt64 = .max,
                            _ body: (Transition) -> Bool) throws(TraceError) {
        var d = try reader.decoder(c)
        var values = d.startCounters
        let wanted = counter.ordinal
        while let e = try d.next(chunk: c, of: reader), e.number <= through {
            guard case .counter(let index, let value) = e.body, e.nic < values.count, index < values[e.nic].count else { continue }
            let old = values[e.nic][index]
            values[e.nic][index] = value
            guard index == wanted, nic == nil || nic == e.nic, value != old else { continue }
            if !body(Transition(event: e.number, nic: e.nic, counter: counter, old: old, new: value)) { return }
        }
    }

    /// The most chunks one chain's processing is read across (a chain past the
    /// recorder's hard limit continues in chunks without checkpoints).
    static let maxWindowChunks = 16

    /// Explains transition `t` (a counter event of the trace).
    static func explain(_ reader: TraceReader, transition t: Transition) throws(TraceError) -> CounterCause {
        guard let chunk = reader.chunkIndex(containing: t.event) else {
            return CounterCause(transition: t, cause: nil, chain: nil, rxChain: nil,
                                path: Path(row: nil, sentence: "event \(t.event) is not in the trace"), counters: [], memory: [])
        }
        var window = try EventWindow(reader, chunks: chunk...chunk)
        let pairs = reader.header.queuePairs
        // The chain's processing: where it starts, then read whole (earlier or
        // later chunks join the window when it crosses a chunk boundary).
        var located = stepStart(window, t)
        while located == nil, window.startsInsideAChain, window.chunks.count < maxWindowChunks {
            window = try window.withEarlierChunk()
            located = stepStart(window, t)
        }
        var step = located.map { ChainStep(window, from: $0.start, drained: $0.queue, pairs: pairs) }
        while let s = step, s.reachesWindowEnd, window.nextChunkContinuesAChain, window.chunks.count < maxWindowChunks {
            window = try window.withLaterChunk()
            step = ChainStep(window, from: s.range.lowerBound, drained: s.drained, pairs: pairs)
        }
        let at = window.index(of: t.event)!
        let cause = try self.cause(window, before: step?.range.lowerBound ?? at, nic: t.nic)
        guard let step else {
            return CounterCause(transition: t, cause: cause, chain: nil, rxChain: nil,
                                path: Path(row: nil, sentence: "\(t.counter.name) moved outside the processing of a chain (no chain or poisoned pop before it in its access)"),
                                counters: [CounterMove(event: t.event, counter: t.counter, old: t.old, new: t.new)], memory: [])
        }
        func chain(_ c: ChainStep.Chain?) -> Chain? {
            c.map { Chain(event: window.events[$0.index].event.number, queue: $0.queue, role: QueueRole(queue: $0.queue, pairs: pairs).rawValue,
                          head: $0.head, descriptors: $0.descriptors) }
        }
        var counters = step.counters.compactMap { i -> CounterMove? in
            guard case .counter(let index, let value) = window.events[i].event.body, let c = NetCounter(ordinal: index) else { return nil }
            return CounterMove(event: window.events[i].event.number, counter: c, old: window.events[i].previous, new: value)
        }
        if !counters.contains(where: { $0.event == t.event }) {
            // The step's reading stopped before it (events the device does not make): the transition is still one of them.
            counters.append(CounterMove(event: t.event, counter: t.counter, old: t.old, new: t.new))
            counters.sort { $0.event < $1.event }
        }
        var memory: [MemoryAccess] = []
        for i in step.range {
            switch window.events[i].event.body {
            case .memoryRead(let a, let n, let ok, _): memory.append(access(window, i, "read", a, n, ok, step.roles[i]))
            case .memoryWrite(let a, let n, let ok, _): memory.append(access(window, i, "write", a, n, ok, step.roles[i]))
            default: break
            }
        }
        return CounterCause(transition: t, cause: cause, chain: chain(step.chain), rxChain: chain(step.rxChain),
                            path: step.path(window, pairs: pairs), counters: counters, memory: memory)
    }

    static func access(_ w: EventWindow, _ i: Int, _ op: String, _ address: UInt64, _ length: Int, _ ok: Bool, _ role: String?) -> MemoryAccess {
        let bytes = w.bytes(i)
        let notStored = w.events[i].event.bytesNotStored
        return MemoryAccess(event: w.events[i].event.number, op: op, address: address, length: length, ok: ok,
                            bytes: EventFormatting.plainHex(bytes.prefix(16)), role: role ?? "memory",
                            shownBytes: bytes.isEmpty && notStored == 0 ? "" : EventFormatting.payload(bytes, notStored: notStored, limit: 8),
                            notStored: notStored > 0 ? notStored : nil)
    }

    /// Where the processing of the chain behind transition `t` starts in
    /// `window` (the first read of its pop), and the queue it drains; nil
    /// when no chain of a drained queue (TX or control) precedes `t` in its
    /// access within the window.
    static func stepStart(_ w: EventWindow, _ t: Transition) -> (start: Int, queue: UInt16)? {
        guard let at = w.index(of: t.event) else { return nil }
        let pairs = w.reader.header.queuePairs
        func popStart(_ i: Int) -> Int {
            var s = i
            while s > 0, case .memoryRead = w.events[s - 1].event.body { s -= 1 }
            return s
        }
        // A pop of the drained queue that poisoned it: the counter, then the poison.
        if t.counter == .invalidAvailIdxCount, at + 1 < w.events.count, case .poison(let q, _, _) = w.events[at + 1].event.body,
           QueueRole(queue: q, pairs: pairs).isDrained {
            return (popStart(at), q)
        }
        for j in stride(from: at - 1, through: 0, by: -1) {
            let e = w.events[j].event
            if e.isCause { return nil }
            if case .chain(let q, _, _) = e.body, QueueRole(queue: q, pairs: pairs).isDrained { return (popStart(j), q) }
        }
        return nil
    }

    /// The event that began the access holding event `before` of `window`:
    /// a cause before it in the window, in an earlier chunk, or named by the
    /// checkpoint of a chunk that resumes a paused drain.
    static func cause(_ w: EventWindow, before: Int, nic: Int) throws(TraceError) -> NumberedEvent? {
        for i in stride(from: before, through: 0, by: -1) where w.events[i].event.isCause {
            return NumberedEvent(event: w.events[i].event.number, text: w.summary(i))
        }
        var c = w.chunks.lowerBound
        while true {
            let checkpoint = c == w.chunks.lowerBound ? w.firstCheckpoint : try w.reader.decoder(c).checkpoint
            if let checkpoint {
                let drains = checkpoint.compactMap(\.drain)
                guard let drain = nic < checkpoint.count ? checkpoint[nic].drain ?? drains.first : drains.first else { return nil }
                return try event(drain.accessEvent, of: w.reader)
            }
            guard c > 0 else { return nil }
            c -= 1
            var last: TraceEvent?
            var d = try w.reader.decoder(c)
            while let e = try d.next(chunk: c, of: w.reader) {
                if e.isCause { last = e }
            }
            if let last { return NumberedEvent(event: last.number, text: EventFormatting.summary(last, bytes: [], descriptors: [])) }
        }
    }

    /// Event `number` as `vtrace dump` shows it.
    static func event(_ number: UInt64, of reader: TraceReader) throws(TraceError) -> NumberedEvent? {
        guard let c = reader.chunkIndex(containing: number) else { return nil }
        var d = try reader.decoder(c)
        while let e = try d.next(chunk: c, of: reader) {
            if e.number == number { return NumberedEvent(event: number, text: EventFormatting.summary(e, d)) }
        }
        return nil
    }
}
