import Foundation
import GuestDriver
import Testing
import TraceFormat
@testable import TraceAnalysis
import TraceMapping
import TraceRecording
import TraceTestSupport
import VirtioCore

/// Segments replayed directly from their records (`DirectReplay`): the
/// outcome, and any error, are exactly those of the replay event by event,
/// whatever the trace holds; a segment it cannot settle is replayed event
/// by event from the same start.
@Suite("Direct replay")
struct DirectReplayTests {
    /// Replays the trace event by event and directly (on one thread and on
    /// two, with and without `--keep-going`): the same outcomes, or the same
    /// error. Returns the most segments the direct replays settled, and
    /// the outcome event by event without `--keep-going`.
    @discardableResult
    static func expectSameAsEventByEvent(_ reader: () throws(TraceError) -> TraceReader, _ what: String,
                                         threads: [Int] = [1, 2]) throws -> (settled: Int, outcome: Result<ReplayOutcome, TraceError>) {
        var settled = 0
        var first: Result<ReplayOutcome, TraceError>?
        for keepGoing in [false, true] {
            let slow = TraceReplayer(reader: try reader())
            slow.replaysDirectly = false
            let expected = Result { () throws(TraceError) in try slow.replayAll(keepGoing: keepGoing) }
            if first == nil { first = expected }
            #expect(slow.directSegments == 0)
            for t in threads {
                let fast = TraceReplayer(reader: try reader())
                let got = Result { () throws(TraceError) in try fast.replayAll(keepGoing: keepGoing, threads: t) }
                let context = "\(what), keep-going \(keepGoing), \(t) thread(s)"
                switch (expected, got) {
                case (.success(let a), .success(let b)): PipelinedReplayTests.expectSame(b, a, context)
                case (.failure(let a), .failure(let b)): #expect(a == b, "\(context)")
                default: Issue.record("\(context): event by event \(expected), directly \(got)")
                }
                settled = max(settled, fast.directSegments)
            }
        }
        return (settled, first!)
    }

    @Test func everyGoldenTraceReplaysTheSameDirectly() throws {
        let dir = repositoryRoot.appendingPathComponent("traces/golden")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".vtrace") }.sorted()
        #expect(names.count == 18)
        var settledSome = 0
        for name in names {
            let path = dir.appendingPathComponent(name).path
            if try Self.expectSameAsEventByEvent({ () throws(TraceError) in try TraceReader(path: path) }, name).settled > 0 { settledSome += 1 }
        }
        // Those that do not end inside an access (a cut recording's last segment goes event by event).
        #expect(settledSome >= 10, "\(settledSome) golden traces had a segment settled directly")
    }

    /// A long clean trace: every segment is settled directly, with drains
    /// paused and resumed across chunks.
    @Test func aCleanTraceIsSettledDirectlySegmentBySegment() throws {
        let path = try PipelinedReplayTests.traffic("direct-traffic", chunkEvents: 15_000)
        let reader = try TraceReader(path: path)
        let replayer = TraceReplayer(reader: reader)
        let outcome = try replayer.replayAll(keepGoing: false)
        #expect(outcome.matched && outcome.segments == reader.chunks.count)
        #expect(replayer.directSegments == outcome.segments)
        #expect(outcome.counters.first?[.txPackets] == 6_400)
        try Self.expectSameAsEventByEvent({ () throws(TraceError) in try TraceReader(path: path) }, "traffic")
    }

    /// The trace of `reader` written again, chunk by chunk, with `change`
    /// applied to the records (the bytes after the content header) of chunk `k`.
    static func rewritten(_ reader: TraceReader, chunk k: Int, _ change: (inout [UInt8]) -> Void) throws -> [UInt8] {
        // One file per format: the test's cases run side by side.
        let path = temporaryPath("direct-rewritten-1.\(reader.header.minorVersion).vtrace")
        let writer = try TraceWriter(path: path, header: reader.header)
        for i in reader.chunks.indices {
            let d = try reader.decoder(i)
            var records = withExtendedLifetime(d) { Array(d.buffer.bytes[d.position...]) }
            if i == k { change(&records) }
            var e = ChunkEncoder(firstEvent: d.firstEvent, baseTime: d.baseTime, checkpoint: d.checkpoint, counters: d.startCounters)
            e.appendRaw(records, events: UInt64(reader.chunks[i].eventCount))
            if reader.chunks[i].endsInsideAccess { e.markEndsInsideAccess() }
            try writer.submit(e)
        }
        _ = try writer.finish()
        return try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Every byte of every chunk's records changed in turn (a low or a high
    /// bit, byte by byte): each
    /// changed trace replays directly exactly as event by event, whether it
    /// still matches, diverges (the report, its context and the counters
    /// included) or no longer decodes. In the newest format and in 1.3,
    /// whose chains are stored descriptor by descriptor (matched as each
    /// is decoded).
    @Test(arguments: [TraceVersion.minor, 3])
    func everyChangedByteReplaysTheSameDirectly(formatMinor: UInt16) throws {
        // A short trace in chunks of about 40 events, several cut between two chains of a drain.
        let reader = try TraceReader(path: try PipelinedReplayTests.traffic("direct-short-1.\(formatMinor)", chunkEvents: 40, rounds: 3, rx: 4,
                                                                            tx: 5, queueSize: 16, formatMinor: formatMinor))
        #expect(reader.header.minorVersion == formatMinor)
        #expect(reader.chunks.count >= 4 && reader.chunks.contains(where: \.endsInsideAccess), "\(reader.chunks.count) chunks")
        // Written again unchanged, the trace is the same file.
        let same = try Self.rewritten(reader, chunk: -1) { _ in }
        let again = try TraceReader(source: MemoryTraceSource(same))
        for i in reader.chunks.indices {
            let (a, b) = (try again.decoder(i), try reader.decoder(i))
            withExtendedLifetime((a, b)) { #expect(Array(a.buffer.bytes) == Array(b.buffer.bytes), "chunk \(i)") }
        }
        var kinds = (matched: 0, diverged: 0, failed: 0)
        for k in reader.chunks.indices {
            let d = try reader.decoder(k)
            for at in 0..<(d.buffer.count - d.position) {
                let flip: UInt8 = at % 2 == 0 ? 0x01 : 0x40
                let bytes = try Self.rewritten(reader, chunk: k) { $0[at] ^= flip }
                let r = try Self.expectSameAsEventByEvent({ () throws(TraceError) in try TraceReader(source: MemoryTraceSource(bytes)) },
                                                          "chunk \(k) byte \(at) ^ \(flip)", threads: [1])
                switch r.outcome {
                case .success(let o): if o.matched { kinds.matched += 1 } else { kinds.diverged += 1 }
                case .failure: kinds.failed += 1
                }
            }
        }
        // Changes of every kind were made: the comparison covered each outcome.
        #expect(kinds.matched > 10 && kinds.diverged > 100 && kinds.failed > 50, "\(kinds)")
    }

    /// Inputs the fuzzer found (FuzzTrace "RPLY", minimised): each replays the same both ways.
    @Test(arguments: [
        // A drain resumed from a checkpoint whose queue's avail index the records then contradict.
        "0006055b010f010110040102040140214101010102010152616e67650102022102214000000201020100000000000001020221",
        // A checkpoint claiming more active queue pairs than the NIC has, then a kick of a queue past them.
        "00000100010400000000556e7361666500c5000000040000000000000000000280028002000000000000800280020000000000004150537562737472696e00000000dc05000000000000",
    ])
    func fuzzerFindingsReplayTheSameDirectly(_ hex: String) throws {
        // As FuzzTrace's "RPLY" inputs after the prefix: a NIC selector byte, then a chunk's content.
        let bytes = stride(from: 0, to: hex.count, by: 2).map { UInt8(hex.dropFirst($0).prefix(2), radix: 16)! }
        let path = temporaryPath("direct-fuzz-\(hex.count)-\(hex.suffix(16)).vtrace")
        // Found with 1.4 records (before address codes): read as 1.4.
        #expect(try TraceWriter.writeOneChunk(content: Array(bytes.dropFirst()), nics: Int(bytes[0] % 3) + 1, minor: 4, to: path))
        try Self.expectSameAsEventByEvent({ () throws(TraceError) in try TraceReader(path: path) }, "fuzzer input", threads: [1])
    }
}
