// The replayer is the recordings' oracle: a cut trace must replay to the device's counters.
import Foundation
import GuestDriver
import Scenarios
import Testing
import TraceFormat
import TraceAnalysis
import TraceMapping
import TraceRecording
import TraceTestSupport
import VirtioCore

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
        options.hardLimit = 40_000
        let (reader, dev) = try recordGiantDrain("hard-limit", options: options)
        let continued = reader.chunks.contains { !$0.hasCheckpoint }
        #expect(continued, "expected a continuation chunk")
        for (i, c) in reader.chunks.enumerated() where !c.hasCheckpoint { #expect(reader.chunks[i - 1].endsInsideAccess) }
        let outcome = try TraceReplayer(reader: reader).replayAll(keepGoing: false)
        #expect(outcome.matched, "\(outcome.divergences)")
        #expect(outcome.counters == [dev.counters] && dev.counters.rxPackets == 64)
    }

    /// 64 frames of 65,557 bytes sent in one kick, into RX buffers split in
    /// two (so the frame writes do not repeat a read and are stored in full),
    /// outside the driver's area, which cannot hold them all.
    static func giantDrain<O: DeviceObserver>(_ dev: inout VirtioNetDevice<GuestRAM, O>, _ drv: inout VirtioNetDriver<GuestRAM>) throws {
        try drv.initialize(&dev, queueSize: 128)
        for i in 0..<64 {
            let base = 0x80_0000 + UInt64(i) * 0x1_0040
            try drv.addRawChain(&dev, queue: 0, [RawDescriptor(addr: base, len: 32_800, writable: true),
                                                 RawDescriptor(addr: base + 32_800, len: 32_800, writable: true)], kick: false)
        }
        try drv.sendTx(&dev, count: 64, length: 65_557, fill: 0x5A, kick: false)
        drv.kick(&dev, queue: 1)
    }

    func recordGiantDrain(_ name: String, options: RecordingOptions) throws -> (TraceReader, VirtioNetDevice<GuestRAM, RecordingObserver>) {
        var (recorder, dev, drv, path) = try makeRecorder(name, options: options)
        try Self.giantDrain(&dev, &drv)
        _ = try recorder.finish()
        return (try TraceReader(path: path), dev)
    }

    /// A recording's chunks carry zstd's XXH64 content checksum only when
    /// asked (`--content-checksums`): by default the index's CRC-32 alone
    /// covers them. Either way the trace reads back, checksums verified or not.
    @Test(arguments: [false, true])
    func chunksCarryContentChecksumsOnlyWhenAsked(_ checksums: Bool) throws {
        var options = RecordingOptions()
        #expect(options.contentChecksums == false)
        options.contentChecksums = checksums
        options.flushEvents = 100
        var (recorder, dev, drv, path) = try makeRecorder("checksums-\(checksums)", options: options)
        try drv.initialize(&dev)
        try drv.postRx()
        try drv.sendTx(&dev, count: 40)
        let summary = try recorder.finish()
        let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let reader = try TraceReader(path: path)
        #expect(reader.chunks.count >= 3 && reader.eventCount == summary.events)
        for entry in reader.chunks {
            #expect((file[Int(entry.offset) + 4] & 0x04 != 0) == checksums)   // zstd's Content_Checksum_flag
        }
        for i in reader.chunks.indices {
            var d = try reader.decoder(i)   // verifying the checksums where there are any
            while try d.next() != nil {}
        }
        reader.verifiesContentChecksums = false
        var events: UInt64 = 0
        for i in reader.chunks.indices {
            var d = try reader.decoder(i)
            while try d.next() != nil { events += 1 }
        }
        #expect(events == summary.events)
    }
}
