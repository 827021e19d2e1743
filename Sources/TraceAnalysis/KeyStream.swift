//! A trace as a stream of content keys, what a diff aligns.
//!
//! Two boots of the same workload differ in timing and in MMIO noise, so raw
//! event numbers say nothing. Each trace becomes a stream of content keys
//! (memory traffic is left out): a chain by (NIC, queue, its position in the
//! queue's sequence of chains, head); a counter transition by (NIC, counter,
//! the amount it moved) — by the step, not the value, so one lost delivery
//! shows up as one missing transition instead of every later value being off
//! by one; an MMIO write by (NIC, register, value), a read by (NIC, register);
//! used publishes, interrupts, poisonings, status, features, pairs, resets and
//! warnings by their fields. StreamAligner aligns two such streams;
//! TraceDiff finds where their counter timelines part.

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
    let countersByValue: Bool
    /// Per NIC, the counters the trace starts from.
    public private(set) var startCounters: [NetCounters] = []

    /// - Parameters:
    ///   - from, through: the events to key (a window around a split). A
    ///     stream that starts mid-trace numbers chains from its start, so two
    ///     such streams key chains by (NIC, queue, head) only.
    ///   - countersByValue: key a counter transition by its new value, not
    ///     its step (the context around a split: a step matches a later one
    ///     of another value, a value only itself).
    public init(reader: TraceReader, scope: DiffScope, countersOnly: Bool = false, countersByValue: Bool = false,
                from: UInt64 = 0, through: UInt64 = .max) throws(TraceError) {
        self.countersByValue = countersByValue
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
            var k = keyed(.counter, n << 8 | UInt64(index), countersByValue ? value : step)
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
        case .memoryRead, .memoryWrite, .marker: return nil
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
