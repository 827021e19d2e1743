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
    /// Replays the trace from its first checkpoint to the end on this thread.
    /// Without `keepGoing` it stops at the first divergence; with it, it
    /// restarts from the next checkpoint after each one. Between matching
    /// segments the devices carry on as they are (faults count from the start).
    /// - Parameters:
    ///   - threads: 2 or more: a second thread reads, decompresses and
    ///     decodes the next chunks while this one replays (`ChunkPipeline`);
    ///     the outcome, and any error, are those of one thread.
    ///   - progress: called after each segment with the chunks done.
    public func replayAll(keepGoing: Bool, threads: Int = 1, progress: ((Int) -> Void)? = nil) throws(TraceError) -> ReplayOutcome {
        var outcome = ReplayOutcome()
        var i = reader.chunks.firstIndex(where: \.hasCheckpoint) ?? reader.chunks.count
        if threads > 1 && i < reader.chunks.count, let p = ChunkPipeline(reader: reader, from: i) {
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

    /// Replays every checkpoint segment of the trace at `path`, each segment
    /// from its own checkpoint, on `workers` threads (the calling thread is one
    /// of them). Workers take runs of consecutive segments from a shared
    /// queue, so a core that runs slower takes fewer; each opens its own reader
    /// (file handle, decompressor) and device cores. zstd's content checksums
    /// are checked only with `contentChecksums` (the CRC-32 of every chunk
    /// always is). Reports every diverging segment, as
    /// `replayAll(keepGoing: true)` does without faults.
    public static func replayInParallel(path: String, workers requested: Int, faults: DeviceFaults = DeviceFaults(),
                                        contentChecksums: Bool = false) throws(TraceError) -> ReplayOutcome {
        let reader = try TraceReader(path: path)
        let segments = reader.chunks.indices.filter { reader.chunks[$0].hasCheckpoint }
        let workers = max(1, min(requested, segments.count))
        // Runs short enough to balance, long enough that the decoder prefetched
        // for a segment's checkpoint comparison is the next segment's start.
        let run = max(1, min(16, segments.count / (workers * 4)))
        final class Shared: @unchecked Sendable {
            let lock = Mutex()
            var next = 0
            var outcomes: [Result<ReplayOutcome, TraceError>] = []
        }
        let shared = Shared()
        let work: @Sendable () -> Void = {
            var outcome = ReplayOutcome()
            let result: Result<ReplayOutcome, TraceError>
            do throws(TraceError) {
                let own = try TraceReader(path: path)
                own.verifiesContentChecksums = contentChecksums
                let replayer = TraceReplayer(reader: own, faults: faults)
                while true {
                    let start = shared.lock.withLock { () -> Int in
                        defer { shared.next += run }
                        return shared.next
                    }
                    if start >= segments.count { break }
                    for k in start..<min(start + run, segments.count) {
                        outcome.add(try replayer.replaySegment(from: segments[k]), of: replayer)
                    }
                }
                result = .success(outcome)
            } catch {
                result = .failure(error)
            }
            shared.lock.withLock { shared.outcomes.append(result) }
        }
        var threads: [BackgroundThread] = []
        var inline = 1
        for _ in 1..<workers {
            if let t = BackgroundThread(work) { threads.append(t) } else { inline += 1 }
        }
        for _ in 0..<inline { work() }
        for t in threads { t.join() }
        var total = ReplayOutcome()
        for result in shared.outcomes { total.merge(try result.get()) }
        total.divergences.sort { $0.chunk < $1.chunk }
        return total
    }
}
