import Foundation
import GuestDriver
import Scenarios
import Testing
import TraceFormat
import Tracing
import VirtioCore

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func temporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vtrace-tests-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

/// A deterministic clock: 1 µs per reading.
final class StepClock: @unchecked Sendable {
    var now: UInt64 = 1_000_000
    func read() -> UInt64 { now += 1000; return now }
}

/// Event `number` of the trace, decoded from its chunk.
func recordedEvent(_ number: UInt64, in reader: TraceReader) throws -> TraceEvent? {
    guard let i = reader.chunkIndex(containing: number) else { return nil }
    var d = try reader.decoder(i)
    while let e = try d.next() {
        if e.number == number { return e }
    }
    return nil
}

/// Records a scenario text into a trace and returns the path.
func record(_ text: String, name: String, flushEvents: Int = 65_536) throws -> (String, ScenarioResult, RecordingSummary) {
    let scenario = try ScenarioParser.parse(file: name, text: text)
    var options = RecordingOptions()
    options.flushEvents = flushEvents
    options.flushMilliseconds = 100_000
    let path = temporaryPath(name + ".vtrace")
    let clock = StepClock()
    let (result, summary) = try ScenarioRecording.record(scenario, to: path, options: options, clock: { clock.read() })
    return (path, result, summary)
}

let trafficScenario = "device queue_pairs=2\ndriver init qsize=16\nctrl mq pairs=2\n"
    + String(repeating: "rx post count=2\ntx send count=2 len=700\n", count: 30)
    + "rx post pair=1 count=3\ntx send pair=1 count=3 len=1500 descs=3\n"
    + "avail idx queue=0 value=999\ntx send count=2\nreset\ndriver init\nrx post count=2\ntx send count=2 len=64\n"
    + "unbind memory\nkick queue=1\nbind memory\n"

@Suite("Trace container")
struct ContainerTests {
    @Test func recordedTraceReadsBackCompleteWithExactCounts() throws {
        let (path, result, summary) = try record(trafficScenario, name: "traffic", flushEvents: 200)
        #expect(result.error == nil)
        let reader = try TraceReader(path: path)
        #expect(reader.completeness == .complete)
        #expect(reader.eventCount == summary.events && reader.chunks.count == summary.chunks)
        #expect(reader.chunks.count > 5)
        #expect(reader.header.nics == 1 && reader.header.queuePairs == 2 && reader.header.scenario == "traffic")
        #expect(reader.chunks.first!.firstEvent == 0)
        for (a, b) in zip(reader.chunks, reader.chunks.dropFirst()) { #expect(b.firstEvent == a.endEvent) }
        // The last counter event of each counter equals the device's final counters.
        var counters = NetCounters()
        for i in reader.chunks.indices {
            var d = try reader.decoder(i)
            while let e = try d.next() {
                if case .counter(let index, let value) = e.body { counters[NetCounter(ordinal: index)!] = value }
            }
        }
        #expect(counters == result.counters[0])
        #expect(counters.txPackets > 60 && counters.invalidAvailIdxCount == 1)
    }

    @Test func everySegmentReplaysAndMatchesTheNextCheckpoint() throws {
        let (path, _, _) = try record(trafficScenario, name: "replay", flushEvents: 50)
        let reader = try TraceReader(path: path)
        let replayer = TraceReplayer(reader: reader)
        var segments = 0
        var i = 0
        while i < reader.chunks.count {
            let r = try replayer.replaySegment(from: i)
            #expect(r.divergence == nil, "\(String(describing: r.divergence))")
            #expect(r.checkpointMismatch == nil)
            segments += 1
            i = r.endChunk
        }
        #expect(segments == reader.chunks.count)
    }

    @Test func allLibraryScenariosRecordAndReplayWithoutDivergence() throws {
        let dir = repositoryRoot.appendingPathComponent("traces/scenarios")
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where name.hasSuffix(".scenario") {
            let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
            let (path, result, _) = try record(text, name: name, flushEvents: 7)
            #expect(result.passed, "\(name)")
            let reader = try TraceReader(path: path)
            let replayer = TraceReplayer(reader: reader)
            var i = 0
            while i < reader.chunks.count {
                let r = try replayer.replaySegment(from: i)
                #expect(r.divergence == nil && r.checkpointMismatch == nil, "\(name): \(String(describing: r.divergence)) \(r.checkpointMismatch ?? "")")
                i = r.endChunk
            }
        }
    }

    @Test func randomAccessReadsOnlyFooterIndexAndOneChunk() throws {
        let (path, _, _) = try record(trafficScenario, name: "random", flushEvents: 100)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let source = MemoryTraceSource(bytes)
        let reader = try TraceReader(source: source)
        let opened = source.bytesRead
        #expect(opened < 8 * 1024, "opening read \(opened) bytes")
        let target = reader.eventCount * 3 / 4
        let index = reader.chunkIndex(containing: target)!
        #expect(reader.chunks[index].firstEvent <= target && target < reader.chunks[index].endEvent)
        var d = try reader.decoder(index)
        var found: TraceEvent?
        while let e = try d.next() { if e.number == target { found = e } }
        #expect(found != nil)
        #expect(source.bytesRead - opened == Int(reader.chunks[index].compressedSize))
        #expect(reader.chunkIndex(containing: reader.eventCount) == nil)
        for n in [0, reader.eventCount - 1] { #expect(reader.chunkIndex(containing: n) != nil) }
    }

    @Test func truncationAtEveryOffsetRecoversCompleteChunksOrFailsCleanly() throws {
        let (path, _, _) = try record(trafficScenario, name: "trunc", flushEvents: 300)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let full = try TraceReader(source: MemoryTraceSource(bytes))
        var recovered = 0
        for cut in 0..<bytes.count {
            do {
                let r = try TraceReader(source: MemoryTraceSource(Array(bytes[..<cut])))
                guard case .incomplete = r.completeness else {
                    Issue.record("truncated at \(cut) but reads as complete")
                    continue
                }
                // Every recovered chunk is one of the originals and decodes.
                #expect(r.chunks == Array(full.chunks.prefix(r.chunks.count)), "cut \(cut)")
                if let last = r.chunks.indices.last { _ = try r.decoder(last) }
                recovered += 1
            } catch {
                // Only a cut inside the header may fail to open.
                #expect(cut < full.headerSize, "cut \(cut): \(error)")
            }
        }
        #expect(recovered == bytes.count - full.headerSize)
    }

    @Test func hostileIndexValuesAreRefused() throws {
        let (path, _, _) = try record(trafficScenario, name: "hostile", flushEvents: 300)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var rng = SplitMix64(seed: 0x7ACE_F11E)  // seeded: a failure re-runs exactly
        // Flip bytes in the last 600 bytes (index and footer) and anywhere: never a trap.
        for trial in 0..<2000 {
            var b = bytes
            let at = trial % 2 == 0 ? Int.random(in: max(0, b.count - 600)..<b.count, using: &rng) : Int.random(in: 0..<b.count, using: &rng)
            b[at] ^= UInt8.random(in: 1...255, using: &rng)
            do {
                let r = try TraceReader(source: MemoryTraceSource(b))
                for i in r.chunks.indices {
                    var d = try r.decoder(i)
                    while try d.next() != nil {}
                }
            } catch {
                #expect("\(error)".contains("byte") || "\(error)".contains("vtrace") || "\(error)".contains("format"), "\(error)")
            }
        }
        // A lying footer: a chunk count that cannot fit.
        var lie = bytes
        lie[lie.count - 24] = 0xFF
        lie[lie.count - 23] = 0xFF
        #expect(throws: TraceError.self) { try TraceReader(source: MemoryTraceSource(lie)) }
    }

    @Test func aZstdBombChunkIsRefusedBeforeDecompression() throws {
        let (path, _, _) = try record("driver init\n", name: "bomb")
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let reader = try TraceReader(source: MemoryTraceSource(bytes))
        // Claim 4 GiB uncompressed in the index: the reader refuses the index.
        let indexStart = bytes.count - 24 - 44 * reader.chunks.count
        bytes[indexStart + 12 + 3] = 0xFF
        #expect(throws: TraceError.self) { try TraceReader(source: MemoryTraceSource(bytes)) }
    }

    @Test func notATraceEmptyAndWrongMajorVersion() throws {
        #expect(throws: TraceError.truncated(offset: 0, chunk: nil, "the file is empty")) { try TraceReader(source: MemoryTraceSource([])) }
        #expect(throws: TraceError.notATrace(offset: 0)) { try TraceReader(source: MemoryTraceSource(Array("hello world, not a trace".utf8))) }
        let (path, _, _) = try record("driver init\n", name: "major")
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[8 + 8] = 9  // major version 9
        #expect(throws: TraceError.unsupportedVersion(major: 9, minor: TraceVersion.minor)) { try TraceReader(source: MemoryTraceSource(bytes)) }
    }
}

@Suite("Recorder policy")
struct RecorderPolicyTests {
    func makeRecorder(_ name: String, options: RecordingOptions) throws -> (TraceRecorder, VirtioNetDevice<GuestRAM, RecordingObserver>, VirtioNetDriver<GuestRAM>, String) {
        let ram = try GuestRAM(size: 16 << 20)
        let probe = VirtioNetDevice<GuestRAM, NoObserver>(memory: nil)
        let header = TraceHeader(config: NetConfig(), nics: 1, offeredFeatures: probe.offeredFeatures, regions: [MemoryRegion(base: 0, size: 16 << 20)])
        let path = temporaryPath(name + ".vtrace")
        let recorder = try TraceRecorder(path: path, header: header, initialStates: [probe.state], options: options)
        let dev = VirtioNetDevice(memory: ram, observer: recorder.observer(nic: 0))
        return (recorder, dev, VirtioNetDriver(memory: ram), path)
    }

    @Test func anIdleChunkIsFlushedWithinTheTimeWindow() throws {
        var options = RecordingOptions()
        options.flushMilliseconds = 40
        var (recorder, dev, drv, path) = try makeRecorder("idle", options: options)
        try drv.initialize(&dev)
        try drv.postRx()
        try drv.sendTx(&dev)
        usleep(300_000)  // idle: no access; the flush thread must cut the chunk
        let partial = try TraceReader(path: path + ".partial")
        #expect(partial.chunks.count == 1)
        #expect(partial.eventCount > 50)
        guard case .incomplete = partial.completeness else { Issue.record("a .partial read as complete"); return }
        let summary = try recorder.finish()
        #expect(summary.events == partial.eventCount)
        #expect(try TraceReader(path: path).completeness == .complete)
    }

    @Test func chunksAreCutEveryNEventsAtAccessBoundaries() throws {
        var options = RecordingOptions()
        options.flushEvents = 100
        options.flushMilliseconds = 100_000
        var (recorder, dev, drv, path) = try makeRecorder("every-n", options: options)
        try drv.initialize(&dev, queueSize: 16)
        for _ in 0..<40 {
            try drv.postRx(count: 4)
            try drv.sendTx(&dev, count: 4)
        }
        _ = try recorder.finish()
        let reader = try TraceReader(path: path)
        #expect(reader.chunks.count > 10)
        // Cut at the first access boundary past 100 events: never less, and
        // one access (a 4-frame drain is under 100 events) past it at most;
        // a drain is cut inside only past twice the limit, which these never reach.
        for c in reader.chunks.dropLast() { #expect(c.eventCount >= 100 && c.eventCount < 200, "\(c.eventCount)") }
        let allCheckpoints = reader.chunks.allSatisfy { $0.hasCheckpoint && !$0.endsInsideAccess }
        #expect(allCheckpoints)
        // Every chunk begins with an MMIO access.
        for i in reader.chunks.indices {
            var d = try reader.decoder(i)
            let first = try d.next()!
            #expect(first.kind == .mmioRead || first.kind == .mmioWrite)
        }
    }

    /// Inside a drain a chunk is cut between two chains at twice the limits
    /// (here 200 events), and the next one resumes the drain from a
    /// checkpoint, exactly when the chunk before ends inside the access.
    @Test func aLongDrainIsCutBetweenChainsAtTwiceTheLimit() throws {
        var options = RecordingOptions()
        options.flushEvents = 100
        options.flushMilliseconds = 100_000
        var (recorder, dev, drv, path) = try makeRecorder("drain-n", options: options)
        try drv.initialize(&dev, queueSize: 256)
        try drv.postRx(count: 100)
        try drv.sendTx(&dev, count: 100)
        _ = try recorder.finish()
        let reader = try TraceReader(path: path)
        var resumed = 0
        for i in reader.chunks.indices {
            var d = try reader.decoder(i)
            let first = try d.next()!
            if let drain = d.checkpoint?[0].drain {
                resumed += 1
                #expect(i > 0 && reader.chunks[i - 1].endsInsideAccess)
                // Cut at the first chain boundary past 200 events: one chain (22 events) past it at most.
                #expect(reader.chunks[i - 1].eventCount >= 200 && reader.chunks[i - 1].eventCount < 222, "\(reader.chunks[i - 1].eventCount)")
                #expect(drain.queue == 1 && first.kind == .memoryRead)
                // The access began with the QueueNotify write recorded before the chunk.
                let cause = try #require(try recordedEvent(drain.accessEvent, in: reader))
                #expect(cause.body == .mmioWrite(offset: MMIORegister.queueNotify.rawValue, width: 4, value: 1))
            } else {
                #expect(first.kind == .mmioRead || first.kind == .mmioWrite)
                #expect(i == 0 || !reader.chunks[i - 1].endsInsideAccess)
            }
        }
        #expect(resumed >= 8, "only \(resumed) chunks start inside the drain")
        let outcome = try TraceReplayer(reader: reader).replayAll(keepGoing: false)
        #expect(outcome.matched && outcome.cut == nil, "\(outcome.divergences)")
    }

    @Test func aSlowCompressorMakesRecordingWaitNotGrow() throws {
        var options = RecordingOptions()
        options.flushMilliseconds = 100_000
        options.flushEvents = 20
        options.queueDepth = 2
        var (recorder, dev, drv, path) = try makeRecorder("stall", options: options)
        // The compressor falls behind (held); after a while it catches up. Recording
        // must wait for it (stalls) with at most 2 chunks queued, and lose nothing.
        recorder.traceWriter.holdCompression()
        let writer = recorder.traceWriter
        let release = Thread {
            usleep(200_000)
            writer.resumeCompression()
        }
        release.start()
        try drv.initialize(&dev, queueSize: 16)
        for _ in 0..<20 {
            try drv.postRx(count: 2)
            try drv.sendTx(&dev, count: 2)
        }
        let summary = try recorder.finish()
        #expect(summary.stalls > 0)
        #expect(summary.chunks >= 10)
        let final = try TraceReader(path: path)
        #expect(final.eventCount == summary.events)
    }

    /// 64 frames of 65,557 bytes in one kick, about 8.4 MB of events in one
    /// access: cut between chains, each chunk with a checkpoint of where the drain stands.
    @Test func aGiantDrainIsCutBetweenChainsWithCheckpoints() throws {
        var options = RecordingOptions()
        options.flushMilliseconds = 100_000
        let (reader, dev) = try recordGiantDrain("giant", options: options)
        let everyChunkHasACheckpoint = reader.chunks.allSatisfy(\.hasCheckpoint)
        #expect(everyChunkHasACheckpoint && reader.chunks.count >= 3, "\(reader.chunks.map(\.flags))")
        #expect(reader.chunks.dropLast().allSatisfy(\.endsInsideAccess) && !reader.chunks.last!.endsInsideAccess)
        let bounded = reader.chunks.allSatisfy { Int($0.uncompressedSize) <= TraceLayout.chunkHardLimit }
        #expect(bounded)
        // Each chunk replays alone from its checkpoint and reaches the next one.
        let replayer = TraceReplayer(reader: reader)
        for i in reader.chunks.indices {
            let r = try replayer.replaySegment(from: i)
            #expect(r.endChunk == i + 1 && r.divergence == nil && r.checkpointMismatch == nil, "chunk \(i): \(String(describing: r.divergence)) \(r.checkpointMismatch ?? "")")
        }
        #expect(dev.counters.rxPackets == 64)
        #expect(try TraceReplayer(reader: reader).replayAll(keepGoing: false).counters == [dev.counters])
    }

    /// The same drain with a hard limit below one chain's events: the chunk
    /// is cut inside a chain, into continuation chunks that replay as one segment.
    @Test func aChainPastTheHardLimitIsSplitIntoContinuationChunks() throws {
        var options = RecordingOptions()
        options.flushMilliseconds = 100_000
        options.stagedHardLimit = 40_000
        let (reader, dev) = try recordGiantDrain("hard-limit", options: options)
        let continued = reader.chunks.contains { !$0.hasCheckpoint }
        #expect(continued, "expected a continuation chunk")
        for (i, c) in reader.chunks.enumerated() where !c.hasCheckpoint { #expect(reader.chunks[i - 1].endsInsideAccess) }
        let outcome = try TraceReplayer(reader: reader).replayAll(keepGoing: false)
        #expect(outcome.matched, "\(outcome.divergences)")
        #expect(outcome.counters == [dev.counters] && dev.counters.rxPackets == 64)
    }

    func recordGiantDrain(_ name: String, options: RecordingOptions) throws -> (TraceReader, VirtioNetDevice<GuestRAM, RecordingObserver>) {
        var (recorder, dev, drv, path) = try makeRecorder(name, options: options)
        try drv.initialize(&dev, queueSize: 128)
        // RX buffers split in two (so the frame writes do not repeat a read and are
        // stored in full), outside the driver's area, which cannot hold them all.
        for i in 0..<64 {
            let base = 0x80_0000 + UInt64(i) * 0x1_0040
            try drv.addRawChain(&dev, queue: 0, [RawDescriptor(addr: base, len: 32_800, writable: true),
                                                 RawDescriptor(addr: base + 32_800, len: 32_800, writable: true)], kick: false)
        }
        try drv.sendTx(&dev, count: 64, length: 65_557, fill: 0x5A, kick: false)
        drv.kick(&dev, queue: 1)
        _ = try recorder.finish()
        return (try TraceReader(path: path), dev)
    }
}

@Suite("Streaming replay")
struct StreamingReplayTests {
    /// A chunk whose content turns hostile after two valid events: the segment
    /// before it replays clean, and replaying the bad chunk throws an error
    /// naming the chunk, its file offset and the byte inside its content (no
    /// trap, and no divergence reported in its place).
    @Test func aCorruptRecordMidChunkIsAnErrorNamingTheChunk() throws {
        let probe = VirtioNetDevice<GuestRAM, NoObserver>(memory: nil)
        let header = TraceHeader(config: NetConfig(), nics: 1, offeredFeatures: probe.offeredFeatures, regions: [MemoryRegion(base: 0, size: 1 << 20)])
        let path = temporaryPath("corrupt-mid-chunk.vtrace")
        let writer = try TraceWriter(path: path, header: header)
        var chunk0 = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [NICCheckpoint(probe.state, memoryBound: false)], counters: [])
        chunk0.mmio(nic: 0, vcpu: 0, time: 1, isWrite: false, offset: 0, width: 4, value: 0x7472_6976)  // MagicValue
        try writer.submit(chunk0)
        var chunk1 = ChunkEncoder(firstEvent: 1, baseTime: 2, checkpoint: [NICCheckpoint(probe.state, memoryBound: false)], counters: [])
        chunk1.mmio(nic: 0, vcpu: 0, time: 3, isWrite: false, offset: 4, width: 4, value: 2)  // Version
        chunk1.mmio(nic: 0, vcpu: 0, time: 4, isWrite: false, offset: 8, width: 4, value: 1)  // DeviceID
        let badAt = chunk1.size
        chunk1.appendRaw([0xEF, 0x00])  // context record 14: there is no such record
        try writer.submit(chunk1)
        let entries = try writer.finish()
        #expect(entries.count == 2)

        let reader = try TraceReader(path: path)
        let replayer = TraceReplayer(reader: reader)
        let first = try replayer.replaySegment(from: 0)
        #expect(first.divergence == nil && first.checkpointMismatch == nil && first.events == 1)
        #expect(throws: TraceError.corrupt(offset: Int(reader.chunks[1].offset), chunk: 1,
                                           "unknown context record 14 (byte \(badAt) of the chunk's content)")) {
            _ = try replayer.replaySegment(from: 1)
        }
        // The whole-trace replay reports the same error (the CLI exits 125 under --check).
        #expect(throws: TraceError.self) { _ = try TraceReplayer(reader: reader).replayAll(keepGoing: true) }
    }
}
