//! Why a counter moved: one recorded transition, the access that caused it,
//! the chain being processed, the path the device took (a row of the spec's
//! path → counters table) and the guest memory that decided it.

import TraceFormat
import TraceMapping
import VirtioCore

/// The explanation of one counter transition (`vtrace why`, `why` in `vtrace debug`).
///
/// Built from the recorded events alone (``explain(_:counter:nic:selection:)``):
/// nothing is replayed.
public struct CounterCause: Hashable, Sendable {
    /// Which transition of a counter to explain.
    public enum Selection: Hashable, Sendable {
        /// The K-th transition (1-based) in event order.
        case nth(Int)
        /// The last transition at or before this event.
        case atOrBefore(UInt64)
        /// The last transition of the trace.
        case last
    }

    /// A counter's move: its `counterChanged` event.
    public struct Transition: Hashable, Sendable, Encodable {
        public var event: UInt64
        public var nic: Int
        public var counter: NetCounter
        public var old: UInt64
        public var new: UInt64
    }

    /// An event as `vtrace dump` shows it (without time and NIC).
    public struct NumberedEvent: Hashable, Sendable, Encodable {
        public var event: UInt64
        public var text: String
    }

    /// A chain popped from a queue, with its descriptors in chain order
    /// (descriptor `i` is the chain's `i`-th, whatever its table index).
    public struct Chain: Hashable, Sendable, Encodable {
        public var event: UInt64
        public var queue: UInt16
        /// "TX", "RX" or "control".
        public var role: String
        public var head: UInt16
        public var descriptors: [TraceDescriptor]
    }

    /// The path the device took for the chain.
    public struct Path: Hashable, Sendable, Encodable {
        /// The row of the spec's path → counters table (§3.8), nil when none fits.
        public var row: PathRow?
        /// One sentence with the facts: what was wrong, where, and what followed.
        public var sentence: String

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(row?.rawValue, forKey: .row)
            try c.encode(sentence, forKey: .sentence)
        }
        enum CodingKeys: String, CodingKey { case row, sentence }
    }

    /// Every counter transition of the chain's processing (the asked one among them).
    public struct CounterMove: Hashable, Sendable, Encodable {
        public var event: UInt64
        public var counter: NetCounter
        public var old: UInt64
        public var new: UInt64
    }

    /// One guest-memory access of the chain's processing.
    public struct MemoryAccess: Hashable, Sendable, Encodable {
        public var event: UInt64
        /// "read" or "write".
        public var op: String
        public var address: UInt64
        public var length: Int
        public var ok: Bool
        /// The first (up to) 16 bytes, hex; none for a failed read.
        public var bytes: String
        /// What the device was doing, e.g. "q1 avail idx", "RX header (descriptor 0)".
        public var role: String
        /// Up to eight bytes as `vtrace dump` spaces them, with how many more there were (text only).
        public var shownBytes: String
        /// Bytes of the payload the trace does not hold (a snaplen's); nil when it holds them all.
        public var notStored: Int?

        enum CodingKeys: String, CodingKey { case event, op, address, length, ok, bytes, role, notStored = "not_stored" }
    }

    public var transition: Transition
    /// The MMIO access or vhost-user operation that began the access (the replay's cause).
    public var cause: NumberedEvent?
    /// The chain of the drained queue (TX or control) being processed; nil when
    /// the counter moved at a pop that yielded none (a poisoned queue).
    public var chain: Chain?
    /// The RX chain popped to deliver the TX chain's frame, if one was.
    public var rxChain: Chain?
    public var path: Path
    public var counters: [CounterMove]
    /// The guest memory the chain's processing read and wrote, in order.
    public var memory: [MemoryAccess]
}

extension CounterCause: Encodable {
    enum CodingKeys: String, CodingKey { case transition, cause, chain, rxChain, path, counters, memory }

    /// Every key is present (`null` for a missing cause or chain).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(transition, forKey: .transition)
        try c.encode(cause, forKey: .cause)
        try c.encode(chain, forKey: .chain)
        try c.encode(rxChain, forKey: .rxChain)
        try c.encode(path, forKey: .path)
        try c.encode(counters, forKey: .counters)
        try c.encode(memory, forKey: .memory)
    }
}

/// The rows of the spec's path → counters table (§3.8) that move a counter.
/// The raw value is the row's text ("same, add_used fails" written out).
public enum PathRow: String, CaseIterable, Hashable, Sendable, Encodable {
    case txIterError = "TX `iter()` error (first)"
    case txOversize = "TX chain oversize, TX add_used ok"
    case txOversizeAddUsedFails = "TX chain oversize, TX add_used fails"
    case txMalformed = "TX chain malformed (WRITE desc, <12 bytes, addr overflow, frame read fault), add_used ok"
    case txMalformedAddUsedFails = "TX chain malformed (WRITE desc, <12 bytes, addr overflow, frame read fault), add_used fails"
    case delivered = "valid frame, RX delivered, TX add_used ok"
    case deliveredTxAddUsedFails = "valid frame, RX delivered, TX add_used fails"
    case rxAddUsedFails = "valid frame, RX written but RX add_used fails"
    case noRxBuffer = "valid frame, RX queue not ready or empty"
    case rxAlreadyPoisoned = "valid frame, RX already poisoned"
    case rxIterError = "valid frame, RX `iter()` error (first)"
    case rxShapeRecycled = "valid frame, RX shape violation, recycle ok"
    case rxShapeRecycleFails = "valid frame, RX shape violation, recycle fails"
    case rxWriteFault = "valid frame, RX write fault (hdr or data), recycle ok / fails"
    case rxTooSmall = "valid frame, RX buffer too small"
    case ctrlIterError = "cvq `iter()` error"
    case ctrlNoStatus = "cvq chain without writable status"
    case ctrlStatusFault = "cvq status write fault"
    case ctrlNak = "cvq NAK, add_used ok / fails"
    case ctrlOK = "cvq OK, add_used ok"
    case ctrlOKAddUsedFails = "cvq OK, add_used fails"
}

extension CounterCause {
    /// The explanation as text lines (what `vtrace why` prints).
    public func render() -> [String] {
        let t = transition
        var lines = ["\(t.counter.name) \(t.old) -> \(t.new) at event \(t.event) (nic\(t.nic))"]
        lines.append("access    " + (cause.map { "#\($0.event) \($0.text)" } ?? "unknown (the trace does not hold the event that began it)"))
        if let chain {
            lines += Self.render(chain, label: "chain     ")
        } else {
            lines.append("chain     none: nothing was popped")
        }
        if let rxChain { lines += Self.render(rxChain, label: "rx chain  ") }
        lines.append("path      " + (path.row?.rawValue ?? "no row of the path table"))
        lines.append("          " + path.sentence)
        lines.append("counters  " + counters.map { "\($0.counter.name) \($0.old) -> \($0.new) (#\($0.event))" }.joined(separator: ", "))
        if memory.isEmpty {
            lines.append("memory    none")
        } else {
            lines.append("memory    what the device read and wrote " + (chain == nil ? "for the pop:" : "for this chain:"))
            let numbers = memory.map { "#\($0.event)" }
            let places = memory.map { "\(EventFormatting.hex($0.address)) +\($0.length)" }
            let roles = memory.map(\.role)
            func pad(_ s: String, _ all: [String]) -> String { s + String(repeating: " ", count: (all.map(\.count).max() ?? 0) - s.count) }
            for (i, m) in memory.enumerated() {
                let columns = [pad(numbers[i], numbers), pad(m.op, ["write"]), pad(places[i], places), m.ok ? "ok   " : "FAULT", pad(roles[i], roles), m.shownBytes]
                lines.append(("  " + columns.joined(separator: "  ")).trimmingTrailingSpaces)
            }
        }
        return lines
    }

    static func render(_ c: Chain, label: String) -> [String] {
        var lines = [label + "#\(c.event) \(c.role) q\(c.queue) head \(c.head), \(c.descriptors.count) descriptor\(c.descriptors.count == 1 ? "" : "s")"]
        for (i, d) in c.descriptors.enumerated() {
            lines.append("            \(i): addr \(EventFormatting.hex(d.addr)) len \(d.len) flags \(EventFormatting.hex(UInt64(d.flags)))\(flagNames(d.flags)) next \(d.next)")
        }
        return lines
    }

    /// ` (next|write)` for a descriptor's flags, or nothing.
    static func flagNames(_ flags: UInt16) -> String {
        let names = EventFormatting.flagWords(flags).map { $0.lowercased() }
        return names.isEmpty ? "" : " (" + names.joined(separator: "|") + ")"
    }
}

extension String {
    /// The string without the spaces at its end.
    var trimmingTrailingSpaces: String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
