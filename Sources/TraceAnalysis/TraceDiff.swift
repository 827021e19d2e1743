//! Where two traces' counter timelines part: their counter transitions
//! aligned by content (KeyStream, StreamAligner), the first one that one
//! trace has and the other lacks, and every kind of event aligned around it.
//! The timelines are identical when every counter key is matched (and the
//! traces start from the same counters).

import TraceFormat
import VirtioCore

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
    /// traffic): "=" the same event in both, "~" aligned but not the same
    /// (a chain's buffers elsewhere, a read of another value: both shown),
    /// "-" only in A, "+" only in B.
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
    /// B's event numbers onto A's, through the counter transitions both have
    /// (what `plot` draws B on, so the runs coincide wherever they agree).
    public var alignment = AxisMap()
    public var unalignedWindows = 0

    /// The counter timelines are the same: same start, every counter transition matched.
    public var identical: Bool { split == nil }
}

/// Renders events of a trace by number (random access, one cached chunk).
final class EventText {
    let reader: TraceReader
    var chunk = -1
    var texts: [UInt64: String] = [:]
    var bodies: [UInt64: TraceEvent.Body] = [:]

    init(reader: TraceReader) { self.reader = reader }

    func load(_ number: UInt64) {
        guard texts[number] == nil, let c = reader.chunkIndex(containing: number), c != chunk, var d = try? reader.decoder(c) else { return }
        chunk = c
        texts.removeAll()
        bodies.removeAll()
        while let e = try? d.next() {
            texts[e.number] = "nic\(e.nic) " + EventFormatting.summary(e, d)
            bodies[e.number] = e.body
        }
    }

    func text(_ number: UInt64) -> String {
        load(number)
        return texts[number] ?? "event \(number)"
    }

    func body(_ number: UInt64) -> TraceEvent.Body? {
        load(number)
        return bodies[number]
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
                diff.alignment.add(y.event, x.event)
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
        diff.context = try context(a, b, scope: scope, split: split, before: before, after: after, textA: textA, textB: textB)
        if let c = split.counter, let instead = insteadSentence(diff.context, split: split, counter: c, textA: textA, textB: textB) {
            split.summary += "; " + instead
        }
        diff.split = split
        return diff
    }

    /// What the side without the transition did at that point: its own events
    /// in the block of the context that holds the split (between two events
    /// both traces share), chains it popped and did not publish named as such.
    static func insteadSentence(_ lines: [ContextLine], split: Split, counter: NetCounter, textA: EventText, textB: EventText) -> String? {
        let aHasIt = split.a.event != nil && split.b.event == nil
        guard aHasIt || (split.b.event != nil && split.a.event == nil) else { return nil }
        let (me, other, mine) = aHasIt ? ("A", "B", split.a.event!) : ("B", "A", split.b.event!)
        guard let at = lines.firstIndex(where: { (aHasIt ? $0.eventA : $0.eventB) == mine && $0.mark != "=" }) else { return nil }
        var low = at, high = at
        while low > 0 && lines[low - 1].mark != "=" { low -= 1 }
        while high + 1 < lines.count && lines[high + 1].mark != "=" { high += 1 }
        let texts = aHasIt ? textB : textA, myTexts = aHasIt ? textA : textB
        let theirs = lines[low...high].compactMap { aHasIt ? $0.eventB : $0.eventA }
        let mineInBlock = lines[low...high].compactMap { aHasIt ? $0.eventA : $0.eventB }
        func usedPairs(_ numbers: [UInt64], _ t: EventText) -> Set<[UInt64]> {
            var out = Set<[UInt64]>()
            for n in numbers { if case .used(let q, let id, _)? = t.body(n) { out.insert([UInt64(q), UInt64(id)]) } }
            return out
        }
        let published = usedPairs(theirs, texts), mePublished = usedPairs(mineInBlock, myTexts)
        var items: [String] = []
        // A chain both popped just before, that only the side with the transition published.
        for line in lines[max(0, low - 4)..<low] where line.mark != "-" && line.mark != "+" {
            guard let ea = line.eventA, let eb = line.eventB, case .chain(let q, let head, _)? = texts.body(aHasIt ? eb : ea) else { continue }
            let pair = [UInt64(q), UInt64(head)]
            if mePublished.contains(pair) && !published.contains(pair) {
                items.append("popped chain q\(q) head \(head) as \(me) did (A#\(ea), B#\(eb)) and did not publish it as used")
            }
        }
        items += theirs.prefix(6).map { n -> String in
            switch texts.body(n) {
            case .chain(let q, let head, _)?:
                return "popped chain q\(q) head \(head) (\(other)#\(n))" + (published.contains([UInt64(q), UInt64(head)]) ? "" : " and did not publish it as used")
            case .used(let q, let id, let len)?: return "published used q\(q) id \(id) len \(len) (\(other)#\(n))"
            case .counter(let index, let value)?: return "set \(NetCounter(ordinal: index)?.name ?? "counter \(index)") = \(value) (\(other)#\(n))"
            default: return texts.text(n).drop { $0 != " " }.dropFirst().description + " (\(other)#\(n))"
            }
        }
        guard !items.isEmpty else { return "\(other) has no event of its own there" }
        return "where \(me) counts it, \(other) " + items.joined(separator: ", ")
            + (theirs.count > 6 ? " and \(theirs.count - 6) more" : "") + ", and does not count \(counter.name)"
    }
    /// Every kind of event (but memory traffic) aligned in a window around the
    /// split, `before` steps before the diverging transition and `after` after.
    static func context(_ a: TraceReader, _ b: TraceReader, scope: DiffScope, split: Split, before: Int, after: Int,
                        textA: EventText, textB: EventText) throws(TraceError) -> [ContextLine] {
        guard let anchorA = split.a.event ?? split.a.after, let anchorB = split.b.event ?? split.b.after else { return [] }
        func keys(_ r: TraceReader, _ anchor: UInt64, _ span: UInt64) throws(TraceError) -> [KeyedEvent] {
            var stream = try KeyStream(reader: r, scope: scope, countersByValue: true, from: anchor > span ? anchor - span : 0,
                                       through: anchor + 2 * span)
            var out: [KeyedEvent] = []
            while let k = try stream.next() { out.append(k) }
            return out
        }
        // Two runs of one workload differ by timing noise: a window wide
        // enough for a long context can hold more edits than the alignment
        // allows. Narrower windows then, down to what the lines need.
        var span = UInt64(40 * (before + after) + 200)
        let narrowest: UInt64 = 256
        var aligned: [DiffOp]?
        while aligned == nil {
            aligned = myersDiff(try keys(a, anchorA, span)[...], try keys(b, anchorB, span)[...], maxEdits: 4096)
            if span <= narrowest { break }
            span = max(narrowest, span / 2)
        }
        guard let ops = aligned else { return [] }
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
            case .both(let x, let y):
                // Aligned by key; "=" only when the events read the same, both shown otherwise.
                let ta = textA.text(x.event), tb = textB.text(y.event)
                if ta == tb { return ContextLine(mark: "=", eventA: x.event, eventB: y.event, text: ta) }
                return ContextLine(mark: "~", eventA: x.event, eventB: y.event, text: ta + "  |  B: " + tb.drop { $0 != " " }.dropFirst())
            case .onlyA(let x): return ContextLine(mark: "-", eventA: x.event, eventB: nil, text: textA.text(x.event))
            case .onlyB(let y): return ContextLine(mark: "+", eventA: nil, eventB: y.event, text: textB.text(y.event))
            }
        }
    }
}
