//! Finds the first event at which a counter predicate holds, by binary search
//! over chunk checkpoints and a scan inside one chunk.

import TraceFormat
import TraceMapping
import VirtioCore

/// The answer of a bisection.
public struct BisectResult: Sendable {
    /// The first event after which the predicate holds; nil if it never does
    /// (or already held before the first event).
    public var event: UInt64?
    /// The predicate held before any event.
    public var holdsAtStart: Bool
    /// Distinct chunks decompressed and decoded.
    public var chunksReplayed: Int
    /// Whether the predicate stays true once true (else the trace was scanned).
    public var monotone: Bool
    /// The counters (of the selection) right after `event`.
    public var counters: NetCounters?
    /// The chunk holding `event`.
    public var chunk: Int?
}

/// Binary search over a trace's chunk checkpoints for a counter predicate.
public final class CounterBisector {
    public let reader: TraceReader
    /// A NIC, or nil for the aggregate over all NICs.
    public let nic: Int?
    var decoded: Set<Int> = []
    var startCache: [Int: NetCounters] = [:]

    public init(reader: TraceReader, nic: Int?) {
        self.reader = reader
        self.nic = nic
    }

    func select(_ perNIC: [NetCounters]) -> NetCounters { NetCounters.scoped(perNIC, nic: nic) }

    /// Counters (of the selection) at the start of chunk `i`.
    func start(_ i: Int) throws(TraceError) -> NetCounters {
        if let c = startCache[i] { return c }
        let d = try reader.decoder(i)
        decoded.insert(i)
        let c = select(d.startCounters.map { NetCounters(values: $0) ?? NetCounters() })
        startCache[i] = c
        return c
    }

    /// Walks chunk `i`'s events; calls `body` after each counter event with
    /// the selection's counters; stops when `body` returns true.
    /// - Returns: the counters at the end of the chunk.
    @discardableResult
    func scan(_ i: Int, _ body: (TraceEvent, NetCounters) -> Bool) throws(TraceError) -> NetCounters {
        var d = try reader.decoder(i)
        decoded.insert(i)
        var perNIC = d.startCounters.map { NetCounters(values: $0) ?? NetCounters() }
        while true {
            let next: TraceEvent?
            do throws(ChunkDecodeError) { next = try d.next() } catch {
                throw TraceError.corrupt(offset: Int(reader.chunks[i].offset), chunk: i, error.description)
            }
            guard let e = next else { break }
            if case .counter(let index, let value) = e.body, let c = NetCounter(ordinal: index), e.nic < perNIC.count {
                perNIC[e.nic][c] = value
                if body(e, select(perNIC)) { break }
            }
        }
        return select(perNIC)
    }

    /// Finds the first event at which `predicate` holds.
    /// - Parameter progress: called with (chunks done, total) during a scan.
    public func run(_ predicate: CounterPredicate, progress: (Int, Int) -> Void = { _, _ in }) throws(TraceError) -> BisectResult {
        let n = reader.chunks.count
        let monotone = predicate.staysTrueOnceTrue
        var result = BisectResult(event: nil, holdsAtStart: false, chunksReplayed: 0, monotone: monotone, counters: nil, chunk: nil)
        guard n > 0 else { return result }
        if predicate.holds(try start(0)) {
            result.holdsAtStart = true
            result.chunksReplayed = decoded.count
            return result
        }
        var found: (TraceEvent, NetCounters, Int)?
        if monotone {
            // The end of the trace: if it does not hold there, it never does.
            let final = try scan(n - 1) { _, _ in false }
            if predicate.holds(final) {
                // Smallest k in 1...n whose start holds (the start of n is the end).
                var lo = 1, hi = n
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if predicate.holds(try start(mid)) { hi = mid } else { lo = mid + 1 }
                }
                let chunk = lo - 1
                try scan(chunk) { e, c in
                    if predicate.holds(c) { found = (e, c, chunk); return true }
                    return false
                }
            }
        } else {
            for i in 0..<n {
                try scan(i) { e, c in
                    if predicate.holds(c) { found = (e, c, i); return true }
                    return false
                }
                progress(i + 1, n)
                if found != nil { break }
            }
        }
        if let (e, c, chunk) = found {
            result.event = e.number
            result.counters = c
            result.chunk = chunk
        }
        result.chunksReplayed = decoded.count
        return result
    }
}
