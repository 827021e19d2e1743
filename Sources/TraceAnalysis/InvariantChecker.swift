//! Checks, event by event and access by access, the counter identities the
//! device really guarantees (docs/device.md, "Counter identities that hold").

import TraceFormat
import TraceMapping
import VirtioCore

/// A counter identity that did not hold.
public struct InvariantViolation: Error, Hashable, Sendable, CustomStringConvertible {
    public var event: UInt64
    public var nic: Int
    /// Which identity, e.g. "pairing" or "identity 2".
    public var rule: String
    public var detail: String
    public var description: String { "event \(event) (nic\(nic)): \(rule): \(detail)" }
}

/// Walks a trace's events and checks, per event:
/// - **monotonic**: a counter never decreases (spec §3.8: cumulative, reset keeps them);
/// - **pairing**: `tx_bytes` moves only right after `tx_packets`, `rx_bytes` right after
///   `rx_packets` (spec §3.8: pairs bumped together);
/// - **poison once**: `invalid_avail_idx_count` moves only with a poison event, at most
///   once per queue until a reset (spec §3.6);
/// and per MMIO access, with P the TX chains popped, C the frames captured, U the TX used
/// publishes (spec §3.3–3.5):
/// 1. `Δtx_chain_invalid + Δtx_oversize_dropped ≤ P` (C is the rest);
/// 2. `U + Δtx_add_used_failures = P`;
/// 3. `C − Δtx_add_used_failures ≤ Δtx_packets ≤ C`;
/// 4. `Δrx_packets + Δtx_dropped_no_rx_buffer + Δtx_dropped_rx_poisoned + Δrx_chain_invalid
///    + Δrx_write_failed ≤ C ≤ that + Δrx_add_used_failures`;
/// 5. `Δtx_bytes ≤ 65,557 × Δtx_packets`, `Δrx_bytes ≤ 65,557 × Δrx_packets`;
/// 6. after each access, when every drop and failure counter is zero, `rx_packets == tx_packets`.
public struct InvariantChecker {
    let nics: Int
    let pairs: Int
    var counters: [NetCounters]
    var accessStart: [NetCounters]
    var popped: [Int]
    var published: [Int]
    var poisonedQueues: [Set<UInt16>]
    var previous: TraceEvent?
    /// invalid_avail_idx_count just moved: the next event must be its poison event.
    var expectPoison = false
    var inAccess = false
    var accessNIC = 0
    var lastEvent: UInt64 = 0
    public private(set) var accessesChecked = 0
    public private(set) var eventsChecked: UInt64 = 0

    static let failureCounters: [NetCounter] = [
        .txDroppedNoRxBuffer, .txDroppedRxPoisoned, .txChainInvalid, .txOversizeDropped, .rxChainInvalid,
        .rxWriteFailed, .txAddUsedFailures, .rxAddUsedFailures,
    ]

    public init(header: TraceHeader, start: [[UInt64]]) {
        nics = header.nics
        pairs = header.queuePairs
        counters = start.map { NetCounters(values: $0) ?? NetCounters() }
        accessStart = counters
        popped = Array(repeating: 0, count: header.nics)
        published = Array(repeating: 0, count: header.nics)
        poisonedQueues = Array(repeating: [], count: header.nics)
    }

    func violation(_ e: UInt64, _ nic: Int, _ rule: String, _ detail: String) -> InvariantViolation {
        InvariantViolation(event: e, nic: nic, rule: rule, detail: detail)
    }

    func isTX(_ queue: UInt16) -> Bool { queue % 2 == 1 && Int(queue) < 2 * pairs }

    /// Checks one event (in trace order).
    public mutating func check(_ e: TraceEvent) throws(InvariantViolation) {
        eventsChecked += 1
        lastEvent = e.number
        if expectPoison {
            guard e.kind == .poison, e.nic == previous?.nic else {
                throw violation(e.number, e.nic, "poison once", "invalid_avail_idx_count moved without a poison event")
            }
            expectPoison = false
        }
        if e.isCause {
            try endAccess()
            inAccess = e.kind != .memoryBinding
            accessNIC = e.nic
            accessStart = counters
            popped = Array(repeating: 0, count: nics)
            published = Array(repeating: 0, count: nics)
        }
        switch e.body {
        case .chain(let q, _, _) where isTX(q): popped[e.nic] += 1
        case .used(let q, _, _) where isTX(q): published[e.nic] += 1
        case .reset: poisonedQueues[e.nic] = []
        case .poison(let q, _, _):
            guard poisonedQueues[e.nic].insert(q).inserted else {
                throw violation(e.number, e.nic, "poison once", "queue \(q) poisoned again without a reset")
            }
        case .counter(let index, let value):
            guard let c = NetCounter(ordinal: index) else { break }
            let old = counters[e.nic][c]
            if value < old { throw violation(e.number, e.nic, "monotonic", "\(c.name) went from \(old) to \(value)") }
            if c == .txBytes || c == .rxBytes {
                let partner: NetCounter = c == .txBytes ? .txPackets : .rxPackets
                guard let p = previous, case .counter(let pi, _) = p.body, pi == partner.ordinal, p.nic == e.nic else {
                    throw violation(e.number, e.nic, "pairing", "\(c.name) moved without \(partner.name) just before it")
                }
            }
            if c == .invalidAvailIdxCount { expectPoison = true }
            counters[e.nic][c] = value
        default: break
        }
        previous = e
    }

    /// Checks the identities of the access that just ended.
    mutating func endAccess() throws(InvariantViolation) {
        guard inAccess else { return }
        inAccess = false
        accessesChecked += 1
        for n in 0..<nics {
            let d = counters[n].delta(since: accessStart[n])
            let p = UInt64(popped[n]), u = UInt64(published[n])
            let rejected = d.txChainInvalid + d.txOversizeDropped
            guard rejected <= p else { throw violation(lastEvent, n, "identity 1", "\(rejected) TX chains rejected, \(p) popped") }
            let captured = p - rejected
            guard u + d.txAddUsedFailures == p else {
                throw violation(lastEvent, n, "identity 2", "\(u) TX publishes + \(d.txAddUsedFailures) failures ≠ \(p) chains popped")
            }
            guard d.txPackets <= captured, captured <= d.txPackets + d.txAddUsedFailures else {
                throw violation(lastEvent, n, "identity 3", "tx_packets +\(d.txPackets) for \(captured) captured frames")
            }
            let rx = d.rxPackets + d.txDroppedNoRxBuffer + d.txDroppedRxPoisoned + d.rxChainInvalid + d.rxWriteFailed
            guard rx <= captured, captured <= rx + d.rxAddUsedFailures else {
                throw violation(lastEvent, n, "identity 4", "\(rx) RX outcomes for \(captured) captured frames")
            }
            guard d.txBytes <= 65_557 * d.txPackets, d.rxBytes <= 65_557 * d.rxPackets else {
                throw violation(lastEvent, n, "identity 5", "bytes grew faster than 65,557 per packet")
            }
            let c = counters[n]
            if Self.failureCounters.allSatisfy({ c[$0] == 0 }) && c.rxPackets != c.txPackets {
                throw violation(lastEvent, n, "identity 6", "no drop or failure, yet rx_packets \(c.rxPackets) ≠ tx_packets \(c.txPackets)")
            }
        }
    }

    /// Checks every event of `reader` (then `finish`): the checker, with its
    /// counts (nil for a trace without chunks), and the first identity that
    /// broke. `progress` gets each chunk's index before it is read.
    public static func check(_ reader: TraceReader, progress: (Int) -> Void = { _ in })
        throws(TraceError) -> (checker: InvariantChecker?, violation: InvariantViolation?) {
        var checker: InvariantChecker?
        for i in reader.chunks.indices {
            progress(i)
            var d = try reader.decoder(i)
            if checker == nil { checker = InvariantChecker(header: reader.header, start: d.startCounters) }
            while let e = try d.next(chunk: i, of: reader) {
                do throws(InvariantViolation) { try checker!.check(e) } catch { return (checker, error) }
            }
        }
        do throws(InvariantViolation) { try checker?.finish() } catch { return (checker, error) }
        return (checker, nil)
    }

    /// Call after the last event.
    public mutating func finish() throws(InvariantViolation) {
        if expectPoison { throw violation(lastEvent, previous?.nic ?? 0, "poison once", "invalid_avail_idx_count moved without a poison event") }
        try endAccess()
    }
}
