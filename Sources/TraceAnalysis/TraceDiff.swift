//! Aligning two traces by content and finding where their counter timelines part.
//!
//! Two boots of the same workload differ in timing and in MMIO noise, so raw
//! event numbers say nothing. Each trace becomes a stream of content keys
//! (memory traffic is left out): a chain by (NIC, queue, its position in the
//! queue's sequence of chains, head); a counter transition by (NIC, counter,
//! the amount it moved) — by the step, not the value, so one lost delivery
//! shows up as one missing transition instead of every later value being off
//! by one; an MMIO write by (NIC, register, value), a read by (NIC, register);
//! used publishes, interrupts, poisonings, status, features, pairs, resets and
//! warnings by their fields. A Myers diff over windows of the two key streams
//! aligns them; the counter timelines are identical when every counter key is
//! matched (and the traces start from the same counters).

import TraceFormat
import TraceMapping
import VirtioCore

/// One event reduced to what alignment compares.
public struct DiffKey: Hashable, Sendable {
    public enum Kind: UInt8, Sendable {
        case counter, chain, mmioWrite, mmioRead, used, interrupt, poison, status, features, pairs, reset, warning, binding, transport
    }
    public var kind: Kind
    public var a: UInt64
    public var b: UInt64
}

/// A keyed event: its key, where it is, and (for a counter) what it set.
public struct KeyedEvent: Sendable {
    public var key: DiffKey
    public var event: UInt64
    public var nic: Int
    /// For a counter transition: the counter and its new value.
    public var counter: NetCounter?
    public var value: UInt64
}

/// Which events a diff looks at.
public enum DiffScope: Hashable, Sendable {
    /// One NIC's events.
    case nic(Int)
    /// Every NIC's events as one stream, NICs not told apart (the aggregate).
    case aggregate
}

/// A trace as a stream of keyed events, decoded chunk by chunk (bounded memory).
public struct KeyStream {
    let reader: TraceReader
    let scope: DiffScope
    /// Only counter transitions (the timeline alignment); otherwise every kind but memory traffic.
    let countersOnly: Bool
    /// Events before `from` and after `through` are skipped.
    let from: UInt64
    let through: UInt64
    var chunk = 0
    var decoder: ChunkDecoder?
    var buffer: ChunkBuffer?
    /// Per NIC, the last value of each counter (for the steps).
    var counters: [NetCounters] = []
    /// Per (NIC, queue), chains seen so far.
    var chainCounts: [UInt64: UInt64] = [:]
    /// Per NIC, the counters the trace starts from.
    public private(set) var startCounters: [NetCounters] = []

    /// - Parameters:
    ///   - from, through: the events to key (a window around a split). A
    ///     stream that starts mid-trace numbers chains from its start, so two
    ///     such streams key chains by (NIC, queue, head) only.
    public init(reader: TraceReader, scope: DiffScope, countersOnly: Bool = false, from: UInt64 = 0, through: UInt64 = .max) throws(TraceError) {
        self.reader = reader
        self.scope = scope
        self.countersOnly = countersOnly
        self.from = from
        self.through = through
        chunk = from == 0 ? 0 : (reader.chunkIndex(containing: from) ?? reader.chunks.count)
        if chunk < reader.chunks.count {
            let d = try reader.decoder(chunk, reusing: &buffer)
            startCounters = d.startCounters.map { NetCounters(values: $0) ?? NetCounters() }
            decoder = d
        } else {
            startCounters = Array(repeating: NetCounters(), count: reader.header.nics)
        }
        counters = startCounters
    }

    func includes(_ nic: Int) -> Bool {
        if case .nic(let n) = scope { return n == nic }
        return true
    }

    /// The next keyed event in scope, or nil at the end of the trace.
    public mutating func next() throws(TraceError) -> KeyedEvent? {
        while true {
            if decoder == nil {
                chunk += 1
                guard chunk < reader.chunks.count else { return nil }
                decoder = nil
                decoder = try reader.decoder(chunk, reusing: &buffer)
            }
            let event = try decoder!.next(chunk: chunk, of: reader)
            guard let e = event, e.number <= through else {
                if event != nil { chunk = reader.chunks.count }  // past the window
                decoder = nil
                continue
            }
            if countersOnly, e.kind != .counter { continue }
            guard let k = key(e), e.number >= from else { continue }
            return k
        }
    }

    mutating func key(_ e: TraceEvent) -> KeyedEvent? {
        let nic = e.nic
        guard includes(nic) else { return nil }
        let n: UInt64 = scope == .aggregate ? 0 : UInt64(nic)
        func keyed(_ kind: DiffKey.Kind, _ a: UInt64, _ b: UInt64) -> KeyedEvent {
            KeyedEvent(key: DiffKey(kind: kind, a: a, b: b), event: e.number, nic: nic, counter: nil, value: 0)
        }
        switch e.body {
        case .counter(let index, let value):
            guard let c = NetCounter(ordinal: index), nic < counters.count else { return nil }
            let step = value &- counters[nic][c]
            counters[nic][c] = value
            var k = keyed(.counter, n << 8 | UInt64(index), step)
            k.counter = c
            k.value = value
            return k
        case .chain(let q, let head, _):
            guard from == 0 else { return keyed(.chain, n << 16 | UInt64(q), UInt64(head)) }
            let slot = UInt64(nic) << 16 | UInt64(q)
            let position = chainCounts[slot, default: 0]
            chainCounts[slot] = position + 1
            return keyed(.chain, n << 16 | UInt64(q), position << 16 | UInt64(head))
        case .mmioWrite(let offset, _, let value): return keyed(.mmioWrite, n << 32 | offset, value)
        case .mmioRead(let offset, _, _): return keyed(.mmioRead, n << 32 | offset, 0)
        case .used(let q, let id, let len): return keyed(.used, n << 16 | UInt64(q), UInt64(id) << 32 | UInt64(len))
        case .interrupt(let kind): return keyed(.interrupt, n, UInt64(kind))
        case .poison(let q, let code, _): return keyed(.poison, n << 16 | UInt64(q), code)
        case .status(let old, let new): return keyed(.status, n, UInt64(old) << 8 | UInt64(new))
        case .features(_, let new): return keyed(.features, n, new)
        case .pairs(_, let new): return keyed(.pairs, n, UInt64(new))
        case .reset: return keyed(.reset, n, 0)
        case .warning(let code, _): return keyed(.warning, n, code)
        case .memoryBinding(let bound): return keyed(.binding, n, bound ? 1 : 0)
        case .transport(let code, let q, let values): return keyed(.transport, n << 24 | UInt64(code) << 16 | UInt64(q), values.a)
        case .memoryRead, .memoryWrite: return nil
        }
    }

    /// Per NIC in scope, the counters after the last event read (summed for the aggregate).
    public var currentCounters: NetCounters {
        switch scope {
        case .nic(let n): return n < counters.count ? counters[n] : NetCounters()
        case .aggregate: return NetCounters.aggregate(counters) ?? NetCounters()
        }
    }
}

/// One step of an alignment.
public enum DiffOp: Sendable {
    case both(KeyedEvent, KeyedEvent)
    case onlyA(KeyedEvent)
    case onlyB(KeyedEvent)
}

/// Myers' shortest edit script between two key sequences, with at most
/// `maxEdits` edits (nil beyond that). The script is returned as ops in order.
func myersDiff(_ x: ArraySlice<KeyedEvent>, _ y: ArraySlice<KeyedEvent>, maxEdits: Int) -> [DiffOp]? {
    let n = x.count, m = y.count
    let x0 = x.startIndex, y0 = y.startIndex
    let limit = min(maxEdits, n + m)
    let offset = limit + 1
    var v = [Int](repeating: 0, count: 2 * limit + 3)
    var trace: [[Int]] = []
    var found = -1
    outer: for d in 0...limit {
        trace.append(v)
        var k = -d
        while k <= d {
            var i: Int
            if k == -d || (k != d && v[offset + k - 1] < v[offset + k + 1]) {
                i = v[offset + k + 1]  // down: an insertion from y
            } else {
                i = v[offset + k - 1] + 1  // right: a deletion from x
            }
            var j = i - k
            while i < n && j < m && x[x0 + i].key == y[y0 + j].key {
                i += 1
                j += 1
            }
            v[offset + k] = i
            if i >= n && j >= m {
                found = d
                break outer
            }
            k += 2
        }
    }
    guard found >= 0 else { return nil }
    // Walk back through the saved frontiers.
    var ops: [DiffOp] = []
    var i = n, j = m
    var d = found
    while d >= 0 {
        let vd = trace[d]
        let k = i - j
        if d == 0 {
            while i > 0 && j > 0 {
                i -= 1
                j -= 1
                ops.append(.both(x[x0 + i], y[y0 + j]))
            }
            break
        }
        let down = k == -d || (k != d && vd[offset + k - 1] < vd[offset + k + 1])
        let prevK = down ? k + 1 : k - 1
        let prevI = vd[offset + prevK]
        let prevJ = prevI - prevK
        while i > prevI + (down ? 0 : 1) && j > prevJ + (down ? 1 : 0) {
            i -= 1
            j -= 1
            ops.append(.both(x[x0 + i], y[y0 + j]))
        }
        if down {
            j -= 1
            ops.append(.onlyB(y[y0 + j]))
        } else {
            i -= 1
            ops.append(.onlyA(x[x0 + i]))
        }
        d -= 1
    }
    return ops.reversed()
}

/// Aligns two key streams in windows: matching heads are taken directly; where
/// they differ, a Myers diff over the next window decides, and its script is
/// used up to a safe distance from the window's end (the rest is aligned again
/// with more data). Memory is bounded by the window and the edit limit.
public struct StreamAligner {
    public var a: KeyStream
    public var b: KeyStream
    var bufA: [KeyedEvent] = []
    var bufB: [KeyedEvent] = []
    var headA = 0, headB = 0
    var endA = false, endB = false
    var pending: [DiffOp] = []
    var pendingIndex = 0
    /// Keys looked at per side by one Myers run.
    public let window: Int
    /// Most edits one Myers run may find before the window counts as unaligned.
    public let maxEdits: Int
    /// Windows that could not be aligned within `maxEdits` (reported as all different).
    public private(set) var unalignedWindows = 0

    public init(a: KeyStream, b: KeyStream, window: Int = 8192, maxEdits: Int = 512) {
        self.a = a
        self.b = b
        self.window = window
        self.maxEdits = maxEdits
    }

    mutating func fill() throws(TraceError) {
        if headA > 4096 && headA * 2 > bufA.count { bufA.removeFirst(headA); headA = 0 }
        if headB > 4096 && headB * 2 > bufB.count { bufB.removeFirst(headB); headB = 0 }
        while !endA && bufA.count - headA < window {
            if let e = try a.next() { bufA.append(e) } else { endA = true }
        }
        while !endB && bufB.count - headB < window {
            if let e = try b.next() { bufB.append(e) } else { endB = true }
        }
    }

    /// The next step of the alignment, or nil when both traces are done.
    public mutating func next() throws(TraceError) -> DiffOp? {
        if pendingIndex < pending.count {
            pendingIndex += 1
            return pending[pendingIndex - 1]
        }
        if bufA.count - headA < 64 || bufB.count - headB < 64 { try fill() }
        let leftA = bufA.count - headA, leftB = bufB.count - headB
        if leftA == 0 && leftB == 0 { return nil }
        if leftA == 0 { headB += 1; return .onlyB(bufB[headB - 1]) }
        if leftB == 0 { headA += 1; return .onlyA(bufA[headA - 1]) }
        if bufA[headA].key == bufB[headB].key {
            headA += 1
            headB += 1
            return .both(bufA[headA - 1], bufB[headB - 1])
        }
        try fill()
        let x = bufA[headA..<min(bufA.count, headA + window)]
        let y = bufB[headB..<min(bufB.count, headB + window)]
        // Use the script up to a margin before either window's end, unless that
        // side's stream is finished (its window end is the real end).
        let margin = window / 4
        let safeA = endA && x.count < window ? x.count : max(1, x.count - margin)
        let safeB = endB && y.count < window ? y.count : max(1, y.count - margin)
        pending.removeAll(keepingCapacity: true)
        pendingIndex = 0
        if let script = myersDiff(x, y, maxEdits: maxEdits) {
            var usedA = 0, usedB = 0, inStep = 0
            for op in script {
                switch op {
                case .both: usedA += 1; usedB += 1; inStep += 1
                case .onlyA: usedA += 1; inStep = 0
                case .onlyB: usedB += 1; inStep = 0
                }
                pending.append(op)
                // Back in step for a while: the heads will match again from here.
                if inStep >= 32 || usedA >= safeA || usedB >= safeB { break }
            }
            headA += usedA
            headB += usedB
        } else {
            // Too different to align here: take half a window of each as unmatched.
            unalignedWindows += 1
            let takeA = max(1, min(x.count, window / 2)), takeB = max(1, min(y.count, window / 2))
            for e in x.prefix(takeA) { pending.append(.onlyA(e)) }
            for e in y.prefix(takeB) { pending.append(.onlyB(e)) }
            headA += takeA
            headB += takeB
        }
        return try next()
    }
}

/// Where two counter timelines part, and what surrounds it.
public struct CounterDiff: Sendable {
    public struct Side: Encodable, Hashable, Sendable {
        /// The event at the split on this side (nil: this side has no event there).
        public var event: UInt64?
        /// The last event of this side aligned before the split.
        public var after: UInt64?
        public var text: String?
    }
    public struct Split: Sendable {
        public var a: Side
        public var b: Side
        /// The counter whose transition one side has and the other lacks (or has otherwise).
        public var counter: NetCounter?
        public var summary: String
        public var countersA: NetCounters
        public var countersB: NetCounters
    }
    /// One aligned step near the split (every kind of event but memory
    /// traffic): "=" both, "-" only in A, "+" only in B.
    public struct ContextLine: Encodable, Hashable, Sendable {
        public var mark: String
        public var eventA: UInt64?
        public var eventB: UInt64?
        public var text: String
    }

    public var scope: DiffScope
    public var split: Split?
    public var context: [ContextLine] = []
    public var startA = NetCounters(), startB = NetCounters()
    public var endA = NetCounters(), endB = NetCounters()
    /// Counter transitions matched, and those only one side has.
    public var matched = 0, onlyA = 0, onlyB = 0
    public var eventsA: UInt64 = 0, eventsB: UInt64 = 0
    public var unalignedWindows = 0

    /// The counter timelines are the same: same start, every counter transition matched.
    public var identical: Bool { split == nil }
}

/// Renders events of a trace by number (random access, one cached chunk).
final class EventText {
    let reader: TraceReader
    var chunk = -1
    var texts: [UInt64: String] = [:]

    init(reader: TraceReader) { self.reader = reader }

    func text(_ number: UInt64) -> String {
        if let t = texts[number] { return t }
        guard let c = reader.chunkIndex(containing: number) else { return "event \(number)" }
        if c != chunk, var d = try? reader.decoder(c) {
            chunk = c
            texts.removeAll()
            while let e = try? d.next() { texts[e.number] = "nic\(e.nic) " + EventFormatting.summary(e, d) }
        }
        return texts[number] ?? "event \(number)"
    }
}

extension CounterDiff {
    /// Aligns the two traces' counter transitions in `scope` and finds the
    /// first one that one trace has and the other lacks; then aligns every
    /// kind of event (but memory traffic) in a window around it for the
    /// context. Streams both traces once, plus the chunks around the split.
    public static func compare(_ a: TraceReader, _ b: TraceReader, scope: DiffScope,
                               before: Int = 6, after: Int = 12, window: Int = 8192) throws(TraceError) -> CounterDiff {
        var aligner = StreamAligner(a: try KeyStream(reader: a, scope: scope, countersOnly: true),
                                    b: try KeyStream(reader: b, scope: scope, countersOnly: true), window: window)
        var diff = CounterDiff(scope: scope)
        diff.startA = aligner.a.currentCounters
        diff.startB = aligner.b.currentCounters
        var countersA = diff.startA, countersB = diff.startB
        var lastA: UInt64?, lastB: UInt64?
        var next: DiffOp?  // the op after the split
        if diff.startA != diff.startB {
            diff.split = Split(a: Side(event: 0, after: nil), b: Side(event: 0, after: nil), counter: nil,
                               summary: "the traces start from different counters", countersA: countersA, countersB: countersB)
        }
        var splitOp: DiffOp?
        while let op = try aligner.next() {
            if splitOp != nil && next == nil { next = op }
            switch op {
            case .both(let x, let y):
                diff.matched += 1
                if let c = x.counter { countersA[c] = x.value }
                if let c = y.counter { countersB[c] = y.value }
                lastA = x.event
                lastB = y.event
            case .onlyA(let x), .onlyB(let x):
                let inA: Bool
                if case .onlyA = op { inA = true } else { inA = false }
                if inA { diff.onlyA += 1 } else { diff.onlyB += 1 }
                guard let c = x.counter else { continue }
                if diff.split == nil {
                    splitOp = op
                    let (me, other) = inA ? ("A", "B") : ("B", "A")
                    let otherLast = inA ? lastB : lastA
                    let here = Side(event: x.event, after: inA ? lastA : lastB), there = Side(event: nil, after: otherLast)
                    diff.split = Split(a: inA ? here : there, b: inA ? there : here, counter: c,
                                       summary: "\(me) sets \(c.name) = \(x.value) (+\(x.key.b)) at event \(x.event); \(other) has no such transition"
                                           + (otherLast.map { " (\(other)'s last aligned event is \($0))" } ?? ""),
                                       countersA: countersA, countersB: countersB)
                }
                if inA { countersA[c] = x.value; lastA = x.event } else { countersB[c] = x.value; lastB = x.event }
            }
        }
        diff.endA = aligner.a.currentCounters
        diff.endB = aligner.b.currentCounters
        diff.eventsA = a.eventCount
        diff.eventsB = b.eventCount
        diff.unalignedWindows = aligner.unalignedWindows
        if diff.split == nil && diff.endA != diff.endB {
            // Every transition matched but the totals differ: cannot happen with
            // the same start; report it rather than call them identical.
            diff.split = Split(a: Side(event: nil, after: lastA), b: Side(event: nil, after: lastB), counter: nil,
                               summary: "the final counters differ", countersA: diff.endA, countersB: diff.endB)
        }
        guard var split = diff.split else { return diff }
        // One transition of a counter where the other trace has a different one
        // of the same counter: a substitution, say so.
        if let c = split.counter, let first = next, let op = splitOp {
            switch (op, first) {
            case (.onlyA(let x), .onlyB(let y)) where y.counter == c:
                split.b.event = y.event
                split.summary = "A sets \(c.name) = \(x.value) (+\(x.key.b)) at event \(x.event), where B sets it to \(y.value) (+\(y.key.b)) at event \(y.event)"
            case (.onlyB(let y), .onlyA(let x)) where x.counter == c:
                split.a.event = x.event
                split.summary = "B sets \(c.name) = \(y.value) (+\(y.key.b)) at event \(y.event), where A sets it to \(x.value) (+\(x.key.b)) at event \(x.event)"
            default: break
            }
        }
        let textA = EventText(reader: a), textB = EventText(reader: b)
        if let e = split.a.event, split.counter != nil { split.a.text = textA.text(e) }
        if let e = split.b.event, split.counter != nil { split.b.text = textB.text(e) }
        diff.split = split
        diff.context = try context(a, b, scope: scope, split: split, before: before, after: after, textA: textA, textB: textB)
        return diff
    }

    /// Every kind of event (but memory traffic) aligned in a window around the
    /// split, `before` steps before the diverging transition and `after` after.
    static func context(_ a: TraceReader, _ b: TraceReader, scope: DiffScope, split: Split, before: Int, after: Int,
                        textA: EventText, textB: EventText) throws(TraceError) -> [ContextLine] {
        guard let anchorA = split.a.event ?? split.a.after, let anchorB = split.b.event ?? split.b.after else { return [] }
        let span = UInt64(40 * (before + after) + 200)
        func keys(_ r: TraceReader, _ anchor: UInt64) throws(TraceError) -> [KeyedEvent] {
            var stream = try KeyStream(reader: r, scope: scope, from: anchor > span ? anchor - span : 0, through: anchor + 2 * span)
            var out: [KeyedEvent] = []
            while let k = try stream.next() { out.append(k) }
            return out
        }
        let ka = try keys(a, anchorA), kb = try keys(b, anchorB)
        guard let ops = myersDiff(ka[...], kb[...], maxEdits: 4096) else { return [] }
        let at = ops.firstIndex { op in
            switch op {
            case .onlyA(let x): return x.event == split.a.event
            case .onlyB(let y): return y.event == split.b.event
            case .both(let x, let y): return x.event == split.a.event || y.event == split.b.event
            }
        } ?? ops.firstIndex { op in
            if case .both(let x, _) = op { return x.event > anchorA }
            return false
        } ?? 0
        return ops[max(0, at - before)..<min(ops.count, at + after + 1)].map { op in
            switch op {
            case .both(let x, let y): return ContextLine(mark: "=", eventA: x.event, eventB: y.event, text: textA.text(x.event))
            case .onlyA(let x): return ContextLine(mark: "-", eventA: x.event, eventB: nil, text: textA.text(x.event))
            case .onlyB(let y): return ContextLine(mark: "+", eventA: nil, eventB: y.event, text: textB.text(y.event))
            }
        }
    }
}
