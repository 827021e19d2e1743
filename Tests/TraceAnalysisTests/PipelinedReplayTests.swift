import Foundation
import GuestDriver
import Testing
import TraceFormat
@testable import TraceAnalysis
import TraceMapping
import TraceRecording
import TraceTestSupport
import VirtioCore

/// `replayAll(threads: 2)`: a second thread reads, decompresses and decodes
/// the next chunks (`ChunkPipeline`). Whatever the trace, the outcome and
/// any error are exactly those of one thread.
@Suite("Pipelined replay")
struct PipelinedReplayTests {
    /// Every finding of two outcomes, compared field by field.
    static func expectSame(_ two: ReplayOutcome, _ one: ReplayOutcome, _ what: String) {
        #expect(two.divergences == one.divergences, "\(what)")
        #expect(two.counters == one.counters, "\(what)")
        #expect(two.segments == one.segments, "\(what)")
        #expect(two.cut == one.cut, "\(what)")
        #expect(String(describing: two.firstContext) == String(describing: one.firstContext), "\(what)")
    }

    /// Replays `reader`'s trace on one thread and on two, with and without
    /// `--keep-going`, and with each of `faults`: the same outcomes, or the same error.
    static func expectSameReplays(_ reader: () throws(TraceError) -> TraceReader, faults: [[String]], _ name: String) throws {
        for spec in faults {
            let f = try DeviceFaults.parse(spec).get()
            for keepGoing in [false, true] {
                let one = Result { () throws(TraceError) in try TraceReplayer(reader: try reader(), faults: f).replayAll(keepGoing: keepGoing) }
                let two = Result { () throws(TraceError) in try TraceReplayer(reader: try reader(), faults: f).replayAll(keepGoing: keepGoing, threads: 2) }
                let what = "\(name) faults \(spec) keep-going \(keepGoing)"
                switch (one, two) {
                case (.success(let a), .success(let b)): expectSame(b, a, what)
                case (.failure(let a), .failure(let b)): #expect(a == b, "\(what)")
                default: Issue.record("\(what): one thread \(one), two \(two)")
                }
            }
        }
    }

    @Test func everyGoldenTraceReplaysTheSameOnTwoThreads() throws {
        let dir = repositoryRoot.appendingPathComponent("traces/golden")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".vtrace") }.sorted()
        #expect(names.count == 18)
        var diverged = 0
        for name in names {
            let path = dir.appendingPathComponent(name).path
            try Self.expectSameReplays({ () throws(TraceError) in try TraceReader(path: path) },
                                       faults: [[], ["drop-rx:2"], ["count-twice:tx_packets:3"]], name)
            if let r = try? TraceReplayer(reader: TraceReader(path: path), faults: try DeviceFaults.parse(["drop-rx:2"]).get()).replayAll(keepGoing: true, threads: 2),
               !r.matched { diverged += 1 }
        }
        // The faults make several of them diverge: the divergence reports are compared too.
        #expect(diverged == 15, "\(diverged) golden traces diverge with drop-rx:2")
    }

    /// About 120,000 events in chunks of 40,000: every chunk's events come
    /// in several blocks, and segments follow each other through the pipeline.
    /// (Other shapes: `rounds` of `rx` buffers posted and `tx` frames sent
    /// on queues of `queueSize`.)
    static func traffic(_ name: String, chunkEvents: Int = 40_000, rounds: Int = 200, rx: Int = 30, tx: Int = 32,
                        queueSize: UInt16 = 256, formatMinor: UInt16 = TraceVersion.minor) throws -> String {
        var o = RecordingOptions()
        o.formatMinor = formatMinor
        o.flushEvents = chunkEvents
        o.flushMilliseconds = 100_000
        let ram = try GuestRAM(size: 16 << 20)
        let path = temporaryPath(name + ".vtrace")
        let recorder = try TraceRecorder(path: path, config: NetConfig(), nics: 1, regions: [MemoryRegion(base: 0, size: 16 << 20)], options: o)
        var dev = VirtioNetDevice(memory: ram, observer: recorder.observer(nic: 0))
        var drv = VirtioNetDriver(memory: ram)
        _ = try drv.initialize(&dev, queueSize: queueSize)
        for round in 0..<rounds {
            try drv.postRx(count: rx)
            try drv.sendTx(&dev, count: tx, length: 60 + round % 200)
            try drv.reclaimAll()
        }
        _ = try recorder.finish()
        return path
    }

    @Test func aLongTraceReplaysTheSameOnTwoThreads() throws {
        let path = try Self.traffic("pipelined-traffic")
        let reader = try TraceReader(path: path)
        #expect(reader.chunks.count >= 3 && reader.eventCount > 100_000, "\(reader.chunks.count) chunks, \(reader.eventCount) events")
        let clean = try TraceReplayer(reader: reader).replayAll(keepGoing: false, threads: 2)
        #expect(clean.matched && clean.segments == reader.chunks.count)
        try Self.expectSameReplays({ () throws(TraceError) in try TraceReader(path: path) },
                                   faults: [[], ["drop-rx:1000"], ["count-twice:tx_packets:2000"], ["drop-rx:10"]], "traffic")
        // A fault counts from the device's restore: with --keep-going it strikes in every segment long enough.
        let faulty = try TraceReplayer(reader: reader, faults: try DeviceFaults.parse(["drop-rx:1000"]).get()).replayAll(keepGoing: true, threads: 2)
        #expect(faulty.divergences.map(\.event) == [21921, 61998, 102075], "\(faulty.divergences.map { ($0.event, $0.chunk) })")
    }

    /// Chunks of 15,000 events: the pipeline leaves every `shareCycle`-th
    /// chunk's events to the replay thread, which decodes them itself between
    /// blocks the pipeline decoded; the outcomes and a damaged chunk's error
    /// are those of one thread, whichever thread decodes.
    @Test func chunksTheReplayThreadDecodesReplayTheSame() throws {
        let path = try Self.traffic("pipelined-shared", chunkEvents: 15_000)
        let reader = try TraceReader(path: path)
        let first = reader.chunks.firstIndex(where: \.hasCheckpoint) ?? 0
        #expect(reader.chunks.count - first >= 2 * ChunkPipeline.shareCycle, "\(reader.chunks.count) chunks")
        try Self.expectSameReplays({ () throws(TraceError) in try TraceReader(path: path) },
                                   faults: [[], ["drop-rx:1000"], ["count-twice:tx_packets:2000"]], "shared")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        for damaged in [first + ChunkPipeline.shareCycle - 1, first + ChunkPipeline.shareCycle] {
            var copy = bytes
            let c = reader.chunks[damaged]
            copy[Int(c.offset) + Int(c.compressedSize) / 2] ^= 0x40
            let one = Result { () throws(TraceError) in try TraceReplayer(reader: try TraceReader(source: MemoryTraceSource(copy))).replayAll(keepGoing: true) }
            let two = Result { () throws(TraceError) in try TraceReplayer(reader: try TraceReader(source: MemoryTraceSource(copy))).replayAll(keepGoing: true, threads: 2) }
            #expect(throws: TraceError.self) { try two.get() }
            #expect(String(describing: one) == String(describing: two), "chunk \(damaged)")
        }
    }

    /// Every prefix of a trace cut inside long drains (an incomplete trace,
    /// read from memory): the same outcome on two threads as on one.
    @Test func everyPrefixOfACutTraceReplaysTheSameOnTwoThreads() throws {
        let (path, _, _) = try RecordingCutTests.longDrain("pipelined-cut")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let full = try TraceReader(source: MemoryTraceSource(bytes))
        var end = full.chunks.count > 4 ? Int(full.chunks[4].offset) : bytes.count
        while end <= bytes.count {
            let prefix = Array(bytes[..<end])
            try Self.expectSameReplays({ () throws(TraceError) in try TraceReader(source: MemoryTraceSource(prefix)) }, faults: [[]], "prefix \(end)")
            end += 997
        }
    }

    /// A chunk whose content turns hostile mid-chunk, and a chunk whose
    /// compressed bytes changed: the same error on two threads, naming the
    /// chunk and its offset.
    @Test func aCorruptTraceGivesTheSameErrorOnTwoThreads() throws {
        let path = try Self.traffic("pipelined-corrupt")
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let reader = try TraceReader(path: path)
        let c = reader.chunks[2]
        bytes[Int(c.offset) + Int(c.compressedSize) / 2] ^= 0x40
        let one = Result { () throws(TraceError) in try TraceReplayer(reader: try TraceReader(source: MemoryTraceSource(bytes))).replayAll(keepGoing: true) }
        let two = Result { () throws(TraceError) in try TraceReplayer(reader: try TraceReader(source: MemoryTraceSource(bytes))).replayAll(keepGoing: true, threads: 2) }
        #expect(throws: TraceError.corrupt(offset: Int(c.offset), chunk: 2, "chunk checksum mismatch (the bytes changed after recording)")) { try two.get() }
        #expect(String(describing: one) == String(describing: two))
    }

    @Test func aRecordThatDoesNotDecodeGivesTheSameErrorOnTwoThreads() throws {
        let (path, badAt) = try StreamingReplayTests.writeCorruptMidChunk("pipelined-corrupt-record")
        let reader = try TraceReader(path: path)
        for keepGoing in [false, true] {
            #expect(throws: TraceError.corrupt(offset: Int(reader.chunks[1].offset), chunk: 1, "unknown context record 14 (byte \(badAt) of the chunk's content)")) {
                _ = try TraceReplayer(reader: TraceReader(path: path)).replayAll(keepGoing: keepGoing, threads: 2)
            }
            #expect(throws: TraceError.corrupt(offset: Int(reader.chunks[1].offset), chunk: 1, "unknown context record 14 (byte \(badAt) of the chunk's content)")) {
                _ = try TraceReplayer(reader: TraceReader(path: path)).replayAll(keepGoing: keepGoing)
            }
        }
    }
}
