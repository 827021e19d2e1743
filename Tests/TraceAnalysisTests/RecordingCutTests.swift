import Foundation
import GuestDriver
import Testing
import TraceFormat
import TraceAnalysis
import TraceMapping
import TraceRecording
import TraceTestSupport
import VirtioCore

/// A recorder killed inside a long drain leaves a trace that replays up to
/// its last recorded event: the end of the recording is not a divergence.
@Suite("Recordings cut inside a drain")
struct RecordingCutTests {
    /// One kick draining 200 frames (RX buffers for 190), cut into chunks of
    /// about 100 events: most chunks start inside the drain.
    static func longDrain(_ name: String, options: RecordingOptions? = nil) throws -> (path: String, kick: UInt64, final: NetCounters) {
        var o = options ?? RecordingOptions()
        if options == nil { o.flushEvents = 100 }
        o.flushMilliseconds = 100_000
        let ram = try GuestRAM(size: 16 << 20)
        let path = temporaryPath(name + ".vtrace")
        let recorder = try TraceRecorder(path: path, config: NetConfig(), nics: 1, regions: [MemoryRegion(base: 0, size: 16 << 20)], options: o)
        var dev = VirtioNetDevice(memory: ram, observer: recorder.observer(nic: 0))
        var drv = VirtioNetDriver(memory: ram)
        _ = try drv.initialize(&dev, queueSize: 256)
        try drv.postRx(count: 190)
        try drv.sendTx(&dev, count: 200, length: 300, kick: false)
        drv.kick(&dev, queue: 1)
        _ = try recorder.finish()
        // The kick is the last MMIO write of the trace.
        let reader = try TraceReader(path: path)
        var kick: UInt64 = 0
        for i in reader.chunks.indices {
            var d = try reader.decoder(i)
            while let e = try d.next() { if case .mmioWrite(MMIORegister.queueNotify.rawValue, 4, 1) = e.body { kick = e.number } }
        }
        return (path, kick, dev.counters)
    }

    /// The counters as recorded up to event `end` (exclusive).
    static func recordedCounters(_ reader: TraceReader, before end: UInt64) throws -> NetCounters {
        var c = NetCounters()
        for i in reader.chunks.indices where reader.chunks[i].firstEvent < end {
            var d = try reader.decoder(i)
            while let e = try d.next(), e.number < end {
                if case .counter(let index, let value) = e.body { c[NetCounter(ordinal: index)!] = value }
            }
        }
        return c
    }

    @Test func everyPrefixOfALongDrainReplaysToItsEnd() throws {
        let (path, kick, final) = try Self.longDrain("cut-prefix")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let full = try TraceReader(source: MemoryTraceSource(bytes))
        #expect(full.chunks.count > 15 && full.chunks.allSatisfy(\.hasCheckpoint), "\(full.chunks.count) chunks")
        let whole = try TraceReplayer(reader: full).replayAll(keepGoing: false)
        #expect(whole.matched && whole.cut == nil && whole.counters == [final])
        var cutsSeen = 0
        for k in 1...full.chunks.count {
            // The file as a recorder killed while writing chunk k leaves it:
            // chunks 0..<k whole, then part of chunk k's entry or frame.
            let end = k < full.chunks.count ? Int(full.chunks[k].offset) - 52 : bytes.count - 24 - 8 - 44 * full.chunks.count
            for extra in [0, 30, 61] where end + extra < bytes.count {
                let reader = try TraceReader(source: MemoryTraceSource(Array(bytes[..<(end + extra)])))
                #expect(reader.chunks.count == k && reader.completeness != .complete)
                let last = full.chunks[k - 1]
                let outcome = try TraceReplayer(reader: reader).replayAll(keepGoing: false)
                #expect(outcome.matched, "\(k) chunks: \(outcome.divergences)")
                #expect(outcome.counters == [try Self.recordedCounters(full, before: last.endEvent)], "\(k) chunks")
                if last.endsInsideAccess {
                    cutsSeen += 1
                    let cut = try #require(outcome.cut, "\(k) chunks end inside the drain")
                    #expect(cut.accessEvent == kick && cut.endEvent == last.endEvent && cut.atChainBoundary && cut.nic == 0)
                    #expect(cut.eventsRecorded == last.endEvent - kick)
                } else {
                    #expect(outcome.cut == nil)
                }
                // Each segment alone, and the parallel replay, agree.
                let parallel = try TraceReplayer(reader: TraceReader(path: try Self.write(reader, bytes: Array(bytes[..<(end + extra)]))))
                    .replayAll(keepGoing: true, threads: 2)
                #expect(parallel.matched && parallel.cut == outcome.cut, "\(k) chunks: \(parallel.divergences)")
            }
        }
        #expect(cutsSeen > 15)
    }

    static func write(_ reader: TraceReader, bytes: [UInt8]) throws -> String {
        let path = temporaryPath("cut-\(reader.chunks.count)-\(bytes.count).vtrace.partial")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A hard limit below one chain's events cuts chunks inside chains: a
    /// recording that ends there stops inside the chain, still no divergence.
    @Test func aRecordingCutInsideAChainStopsThere() throws {
        var options = RecordingOptions()
        options.flushEvents = 1_000_000
        options.hardLimit = 3_000
        let (path, kick, _) = try Self.longDrain("cut-chain", options: options)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let full = try TraceReader(source: MemoryTraceSource(bytes))
        #expect(full.chunks.contains { !$0.hasCheckpoint })
        var insideChains = 0
        for k in 2..<full.chunks.count {
            let reader = try TraceReader(source: MemoryTraceSource(Array(bytes[..<(Int(full.chunks[k].offset) - 52)])))
            let outcome = try TraceReplayer(reader: reader).replayAll(keepGoing: false)
            #expect(outcome.matched, "\(k) chunks: \(outcome.divergences)")
            let cut = try #require(outcome.cut)
            #expect(cut.accessEvent == kick && cut.endEvent == full.chunks[k - 1].endEvent)
            if !cut.atChainBoundary { insideChains += 1 }
            #expect(outcome.counters == [try Self.recordedCounters(full, before: cut.endEvent)])
        }
        #expect(insideChains > 0)
    }

    /// A changed device core is still caught inside a drain that spans many
    /// chunks: the divergence is reported in the chunk where it appears, and
    /// each later segment replays from its own checkpoint with --keep-going.
    @Test func aDivergenceInsideALongDrainIsFoundInItsChunk() throws {
        let (path, _, _) = try Self.longDrain("cut-diverge")
        let reader = try TraceReader(path: path)
        var faults = DeviceFaults()
        faults.dropRx = 150
        let outcome = try TraceReplayer(reader: reader, faults: faults).replayAll(keepGoing: false)
        let d = try #require(outcome.divergences.first)
        // The 150th RX chain was popped and written to; the fault drops that
        // delivery, so the replay diverges at the event right after that chain.
        var rxChains = 0
        var expected: UInt64?
        for i in reader.chunks.indices where expected == nil {
            var dec = try reader.decoder(i)
            while let e = try dec.next() {
                if case .chain(0, _, _) = e.body { rxChains += 1 }
                if rxChains == 150 { expected = e.number + 1; break }
            }
        }
        #expect(d.event == expected)
        let chunk = try #require(reader.chunkIndex(containing: d.event))
        #expect(d.chunk == chunk && chunk > 10 && reader.chunks[chunk].endsInsideAccess, "a chunk in the middle of the drain")
        #expect(d.expected.contains("write") && outcome.cut == nil, "\(d)")
    }

    /// Inside a drain a chunk is also cut when it grows old: the clock is read
    /// at the first drain boundary and then every 64th (here it moves 1 ms per
    /// reading, the window is 1 ms), so chunks start after chains 1, 65, 129, 193.
    @Test func anOldChunkIsCutInsideADrainEvery64Chains() throws {
        final class MillisecondClock: @unchecked Sendable {
            let lock = NSLock()
            var now: UInt64 = 1_000_000_000
            func read() -> UInt64 { lock.withLock { now += 1_000_000; return now } }
        }
        let clock = MillisecondClock()
        var o = RecordingOptions()
        o.flushEvents = 1_000_000
        o.flushMilliseconds = 1
        let ram = try GuestRAM(size: 16 << 20)
        let path = temporaryPath("old-inside.vtrace")
        let recorder = try TraceRecorder(path: path, config: NetConfig(), nics: 1, regions: [MemoryRegion(base: 0, size: 16 << 20)],
                                         options: o, clock: { clock.read() })
        var dev = VirtioNetDevice(memory: ram, observer: recorder.observer(nic: 0))
        var drv = VirtioNetDriver(memory: ram)
        _ = try drv.initialize(&dev, queueSize: 256)
        try drv.postRx(count: 200)
        try drv.sendTx(&dev, count: 200, length: 64)
        _ = try recorder.finish()
        let reader = try TraceReader(path: path)
        // Per chunk that resumes the drain: how many TX chains came before it.
        var txChains = 0
        var resumedAfter: [Int] = []
        for i in reader.chunks.indices {
            var d = try reader.decoder(i)
            if d.checkpoint?[0].drain != nil { resumedAfter.append(txChains) }
            while let e = try d.next() { if case .chain(1, _, _) = e.body { txChains += 1 } }
        }
        #expect(txChains == 200 && resumedAfter == [1, 65, 129, 193])
        #expect(try TraceReplayer(reader: reader).replayAll(keepGoing: false).matched)
    }

    /// The format 1.2 golden trace holds checkpoints inside the drains of both
    /// TX queues and of the control queue, each naming its kick; older goldens
    /// have none, and every prefix of it cut inside a drain replays to its end.
    @Test func theGoldenTraceOfFormat12ResumesDrainsOfEveryKind() throws {
        let golden = repositoryRoot.appendingPathComponent("traces/golden/long-drain.vtrace").path
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: golden)))
        let reader = try TraceReader(source: MemoryTraceSource(bytes))
        #expect(reader.header.minorVersion == 2)
        var drainedQueues: Set<UInt16> = []
        for i in reader.chunks.indices {
            let d = try reader.decoder(i)
            guard let drain = d.checkpoint?[0].drain else { continue }
            drainedQueues.insert(drain.queue)
            let cause = try #require(try recordedEvent(drain.accessEvent, in: reader))
            #expect(cause.body == .mmioWrite(offset: MMIORegister.queueNotify.rawValue, width: 4, value: UInt64(drain.queue)))
            let outcome = try TraceReplayer(reader: TraceReader(source: MemoryTraceSource(Array(bytes[..<(Int(reader.chunks[i].offset) - 52)]))))
                .replayAll(keepGoing: false)
            #expect(outcome.matched && outcome.cut?.accessEvent == drain.accessEvent && outcome.cut?.endEvent == reader.chunks[i].firstEvent)
        }
        #expect(drainedQueues == [1, 3, 4])
        for old in ["loopback-basic", "vhost-linux"] {
            let r = try TraceReader(path: repositoryRoot.appendingPathComponent("traces/golden/\(old).vtrace").path)
            #expect(r.header.minorVersion < 2)
            for i in r.chunks.indices { #expect(try r.decoder(i).checkpoint?.allSatisfy { $0.drain == nil } ?? true) }
        }
    }

    /// A complete trace cannot end inside an access: its recorder finished it
    /// between accesses. One that does lost its end, and is refused as corrupt.
    @Test func aCompleteTraceEndingInsideAnAccessIsCorrupt() throws {
        let path = temporaryPath("complete-open.vtrace")
        let writer = try TraceWriter(path: path, header: TraceHeader(config: NetConfig(), nics: 1, offeredFeatures: 0, regions: []))
        var e = ChunkEncoder(firstEvent: 0, baseTime: 5, checkpoint: [NICCheckpoint(VirtioNetState(queueCount: 2), memoryBound: true)], counters: [])
        e.append(.mmioWrite(offset: 0x50, width: 4, value: 1), nic: 0, vcpu: 0, time: 6)
        e.markEndsInsideAccess()
        try writer.submit(e)
        try writer.finish()
        #expect {
            try TraceReader(path: path)
        } throws: { error in
            "\(error)".contains("chunk 0") && "\(error)".contains("ends inside an access")
        }
    }
}
