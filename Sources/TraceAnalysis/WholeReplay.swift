//! Replaying a whole trace: segment after segment on one thread, or the
//! checkpoint segments spread over several threads.

import HostPrimitives
import TraceFormat
import VirtioCore

/// One divergence of a whole-trace replay, as reports show it.
public struct DivergenceRecord: Encodable, Hashable, Sendable {
    public var event: UInt64
    public var chunk: Int
    public var nic: Int
    public var expected: String
    public var actual: String
    /// The MMIO access that caused it (dump text) and its event number.
    public var cause: String?
    public var causeEvent: UInt64?
    /// The chain being processed (dump text), if any.
    public var chain: String?
    /// Nanoseconds since the first chunk's first access.
    public var timeNanoseconds: UInt64
}

/// What a whole-trace replay found.
public struct ReplayOutcome: Sendable {
    /// Every divergence, in chunk order (at most one per segment).
    public var divergences: [DivergenceRecord] = []
    /// Details of the first divergence inside a segment, for the report.
    public var firstContext: TraceReplayer.DivergenceContext?
    /// Per NIC, the counters the replay ended with.
    public var counters: [NetCounters] = []
    /// Segments replayed.
    public var segments = 0
    /// Where the recording ended inside an access (a recorder killed mid-drain), if the replay got there.
    public var cut: RecordingCut?
    /// The first chunk of the latest segment replayed (whose end `counters` are).
    var lastChunk = -1

    public var matched: Bool { divergences.isEmpty }

    /// Takes in one replayed segment; true when it diverged.
    @discardableResult
    mutating func add(_ r: TraceReplayer.SegmentResult, of replayer: TraceReplayer) -> Bool {
        let found = replayer.divergenceRecords(of: r)
        merge(ReplayOutcome(divergences: found.records, firstContext: found.context,
                            counters: replayer.devices.map(\.observer.counters), segments: 1, cut: r.cut, lastChunk: r.firstChunk))
        return !found.records.isEmpty
    }

    /// Takes in another outcome: its divergences, the earlier first context,
    /// the counters of whichever replayed the later segment.
    mutating func merge(_ o: ReplayOutcome) {
        divergences += o.divergences
        if let c = o.firstContext, (firstContext?.divergence.chunk ?? .max) > c.divergence.chunk { firstContext = c }
        segments += o.segments
        if cut == nil { cut = o.cut }
        if o.lastChunk > lastChunk {
            lastChunk = o.lastChunk
            counters = o.counters
        }
    }
}

extension TraceReplayer {
    /// Replays the trace from its first checkpoint to the end. Without
    /// `keepGoing` it stops at the first divergence; with it, it restarts
    /// from the next checkpoint after each one. Between matching segments the
    /// devices carry on as they are (faults count from the start).
    /// - Parameters:
    ///   - threads: 2 or more: the checkpoint segments are replayed on that
    ///     many threads, each from its own checkpoint (a segment that matched
    ///     ends in the state of the next checkpoint, or the replay reports
    ///     that, so the next one starts the same either way). With faults
    ///     (which count from the start) or a stop, a second thread
    ///     decompresses and decodes ahead instead (`ChunkPipeline`, for
    ///     segments replayed event by event); with a divergence hook (called
    ///     on this thread) the replay stays on this one. Either way the
    ///     outcome, and any error, are those of one thread.
    ///   - progress: called with the chunks done so far (on this thread).
    public func replayAll(keepGoing: Bool, threads: Int = 1, progress: ((Int) -> Void)? = nil) throws(TraceError) -> ReplayOutcome {
        if threads > 1 && faults.isEmpty && stopAt == .max && onDivergence == nil,
           let outcome = try replayInParallel(keepGoing: keepGoing, workers: threads, progress: progress) {
            return outcome
        }
        var outcome = ReplayOutcome()
        var i = reader.chunks.firstIndex(where: \.hasCheckpoint) ?? reader.chunks.count
        // The pipeline decodes events for the replay event by event; a direct
        // replay (one segment, or a divergence hook) would leave its blocks unread.
        if threads > 1 && !replaysSegmentsDirectly && i < reader.chunks.count, let p = ChunkPipeline(reader: reader, from: i) {
            pipeline = p
            cursor.pipeline = p
        }
        defer {
            pipeline?.stop()
            pipeline = nil
            cursor.pipeline = nil
        }
        var continuing = false
        while i < reader.chunks.count {
            let r = try replaySegment(from: i, continuing: continuing)
            progress?(r.endChunk)
            let diverged = outcome.add(r, of: self)
            if diverged && !keepGoing { break }
            continuing = !diverged
            i = r.endChunk
        }
        return outcome
    }

    /// The divergence records of one replayed segment: a divergence inside it,
    /// or a final state that differs from the next checkpoint.
    func divergenceRecords(of r: SegmentResult) -> (records: [DivergenceRecord], context: DivergenceContext?) {
        let start = reader.chunks.first?.firstTime ?? 0
        if let d = r.divergence {
            let c = divergenceContext()
            return ([DivergenceRecord(event: d.event, chunk: d.chunk, nic: d.nic, expected: d.expected, actual: d.actual,
                                      cause: c?.cause?.text, causeEvent: c?.cause?.number, chain: c?.chain,
                                      timeNanoseconds: (c?.time ?? start) &- start)], c)
        }
        if let m = r.checkpointMismatch {
            return ([DivergenceRecord(event: reader.chunks[r.endChunk].firstEvent, chunk: r.endChunk, nic: 0,
                                      expected: "the checkpoint of chunk \(r.endChunk)", actual: m, cause: nil, causeEvent: nil, chain: nil,
                                      timeNanoseconds: reader.chunks[r.endChunk].firstTime &- start)], nil)
        }
        return ([], nil)
    }

    /// Replays every checkpoint segment from its own checkpoint on `workers`
    /// threads (this one among them, with this replayer; the others each
    /// with a reader of their own: file handle, decompressor), then takes
    /// their outcomes in trace order as the replay on one thread would have
    /// met them: up to the first divergence without `keepGoing`, and up to
    /// the first error either way. Workers take runs of consecutive segments
    /// from a shared queue, so a core that runs slower takes fewer; without
    /// `keepGoing` none starts a segment after one known to diverge. Nil
    /// when no second reader or thread can be had.
    func replayInParallel(keepGoing: Bool, workers requested: Int, progress: ((Int) -> Void)?) throws(TraceError) -> ReplayOutcome? {
        let segments = reader.chunks.indices.filter { reader.chunks[$0].hasCheckpoint }
        let workers = max(1, min(requested, segments.count))
        guard workers > 1 else { return nil }
        var readers: [TraceReader] = []
        for _ in 1..<workers {
            guard let own = try? reader.reopened() else { return nil }
            own.verifiesContentChecksums = reader.verifiesContentChecksums
            readers.append(own)
        }
        // Runs short enough to balance, long enough that the decoder prefetched
        // for a segment's checkpoint comparison is the next segment's start.
        let run = max(1, min(16, segments.count / (workers * 4)))
        final class Shared: @unchecked Sendable {
            let lock = Mutex()
            var next = 0
            /// Per segment, its outcome (nil: not replayed).
            var outcomes: [Result<ReplayOutcome, TraceError>?]
            /// The first segment known to diverge or fail (no later one is started without keep-going).
            var firstBad = Int.max
            var chunksDone = 0
            init(_ count: Int) { outcomes = Array(repeating: nil, count: count) }
        }
        let shared = Shared(segments.count)
        shared.chunksDone = segments.first ?? 0
        @Sendable func work(_ replayer: TraceReplayer, _ progress: ((Int) -> Void)?) {
            while true {
                let start = shared.lock.withLock { () -> Int in
                    defer { shared.next += run }
                    return shared.next
                }
                if start >= segments.count { return }
                for k in start..<min(start + run, segments.count) {
                    if !keepGoing && shared.lock.withLock({ k > shared.firstBad }) { return }
                    var outcome = ReplayOutcome()
                    let result: Result<ReplayOutcome, TraceError>
                    do throws(TraceError) {
                        outcome.add(try replayer.replaySegment(from: segments[k]), of: replayer)
                        result = .success(outcome)
                    } catch {
                        result = .failure(error)
                    }
                    let done = shared.lock.withLock { () -> Int in
                        shared.outcomes[k] = result
                        shared.chunksDone += (k + 1 < segments.count ? segments[k + 1] : replayer.reader.chunks.count) - segments[k]
                        if case .success(let o) = result, o.matched {} else { shared.firstBad = min(shared.firstBad, k) }
                        return shared.chunksDone
                    }
                    progress?(done)
                }
            }
        }
        // A reader handed to the thread that replays with it (and to no other).
        final class Handoff: @unchecked Sendable {
            let reader: TraceReader
            init(_ reader: TraceReader) { self.reader = reader }
        }
        let (faults, directly) = (self.faults, replaysDirectly)
        // A thread that cannot be had leaves its share to the others.
        let threads = readers.map(Handoff.init).compactMap { own in
            BackgroundThread {
                let replayer = TraceReplayer(reader: own.reader, faults: faults)
                replayer.replaysDirectly = directly
                work(replayer, nil)
            }
        }
        work(self, progress)
        for t in threads { t.join() }
        progress?(shared.lock.withLock { shared.chunksDone })
        var total = ReplayOutcome()
        for k in segments.indices {
            guard let result = shared.outcomes[k] else { break }
            let o = try result.get()
            total.merge(o)
            if !o.matched && !keepGoing { break }
        }
        return total
    }
}
