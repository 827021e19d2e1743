// A recorder that defers encoding to the writer's thread writes what an
// inline one writes: the same chunks, byte for byte, where both cut alike.
import Foundation
import GuestDriver
import Testing
import TraceAnalysis
import TraceFormat
import TraceRecording
import TraceTestSupport
import VirtioCore

@Suite("Deferred encoding")
struct DeferredEncodingTests {
    /// Records traffic of every shape through observer `O`: frames of 1 to 3
    /// descriptors both ways, large frames, a chain outside guest memory
    /// (failed accesses, a poisoned queue), a reset and a restart.
    static func traffic<O: DeviceObserver>(_ recorder: TraceRecorder, _ observer: O) throws -> VirtioNetDevice<GuestRAM, O> {
        let ram = try GuestRAM(size: 16 << 20)
        var dev = VirtioNetDevice(memory: ram, observer: observer)
        var drv = VirtioNetDriver(memory: ram)
        try drv.initialize(&dev, queueSize: 64)
        for round in 0..<40 {
            try drv.postRx(count: 2, length: 2048, descriptors: 1 + round % 2)
            try drv.sendTx(&dev, count: 2, length: 60 + 97 * round, descriptors: 1 + round % 3)
        }
        try drv.sendTx(&dev, count: 3, length: 1500, descriptors: 2)
        try drv.postRx(count: 3, length: 1600, descriptors: 3)
        try drv.sendTx(&dev, count: 3, length: 1500, kick: true)
        // A long drain: cut between its chains.
        try drv.postRx(count: 40)
        try drv.sendTx(&dev, count: 40, length: 200)
        try drv.addRawChain(&dev, queue: 1, [RawDescriptor(addr: 0x7FFF_0000_0000, len: 64, writable: false)])
        return dev
    }

    static func options(defers: Bool, snaplen: UInt32?) -> RecordingOptions {
        // Cuts by event count alone (the sizes stay far below theirs), the
        // same zstd frames for the same chunks whatever the writer's backlog.
        var options = deterministicRecordingOptions(flushEvents: 97)
        options.defersEncoding = defers
        options.snaplen = snaplen
        options.trigger = RecordingTrigger(text: "tx_bytes > 30000", action: .mark) { $0[0].txBytes > 30_000 }
        return options
    }

    static func record(_ name: String, defers: Bool, snaplen: UInt32?) throws -> (path: String, counters: NetCounters) {
        let probe = VirtioNetDevice<GuestRAM, NoObserver>(memory: nil)
        let header = TraceHeader(config: NetConfig(), nics: 1, offeredFeatures: probe.offeredFeatures, regions: [MemoryRegion(base: 0, size: 16 << 20)])
        let path = temporaryPath(name + ".vtrace")
        let recorder = try TraceRecorder(path: path, header: header, initialStates: [probe.state],
                                         options: options(defers: defers, snaplen: snaplen), clock: { 1_000 })
        let counters = defers ? try traffic(recorder, recorder.deferredObserver(nic: 0)).counters : try traffic(recorder, recorder.observer(nic: 0)).counters
        _ = try recorder.finish()
        return (path, counters)
    }

    @Test(arguments: [nil, UInt32(20)])
    func aDeferredRecordingWritesTheInlineRecordingsBytes(snaplen: UInt32?) throws {
        let inline = try Self.record("inline-\(snaplen ?? 0)", defers: false, snaplen: snaplen)
        let deferred = try Self.record("deferred-\(snaplen ?? 0)", defers: true, snaplen: snaplen)
        defer { unlink(inline.path); unlink(deferred.path) }
        let reader = try TraceReader(path: deferred.path)
        #expect(reader.chunks.count >= 20, "\(reader.chunks.count) chunks")
        #expect(reader.chunks.contains { $0.endsInsideAccess }, "a drain's chunk cut between chains")
        let a = try Data(contentsOf: URL(fileURLWithPath: inline.path)), b = try Data(contentsOf: URL(fileURLWithPath: deferred.path))
        #expect(a == b, "\(a.count) and \(b.count) bytes")
        let c = deferred.counters
        #expect(c.txPackets == 126 && c.rxPackets == 123 && c.txDroppedNoRxBuffer == 3 && c.txChainInvalid == 1)
        #expect(c == inline.counters)
        let outcome = try TraceReplayer(reader: reader).replayAll(keepGoing: false)
        #expect(outcome.matched && outcome.counters == [deferred.counters], "\(outcome.divergences)")
    }

    /// 64 frames of 65,557 bytes in one kick (16.8 MB of raw events in one
    /// access): cut between chains by the raw size, and where a chunk's
    /// records pass the encoder's hard limit, cut again on the writer's thread.
    @Test(arguments: [TraceLayout.chunkHardLimit * 3 / 4, 700_000])
    func aGiantDrainIsCutAndReplays(hardLimit: Int) throws {
        var options = RecordingOptions()
        options.defersEncoding = true
        options.flushMilliseconds = 100_000
        options.hardLimit = hardLimit
        let probe = VirtioNetDevice<GuestRAM, NoObserver>(memory: nil)
        let header = TraceHeader(config: NetConfig(), nics: 1, offeredFeatures: probe.offeredFeatures, regions: [MemoryRegion(base: 0, size: 16 << 20)])
        let path = temporaryPath("deferred-giant-\(hardLimit).vtrace")
        defer { unlink(path) }
        let recorder = try TraceRecorder(path: path, header: header, initialStates: [probe.state], options: options)
        let ram = try GuestRAM(size: 16 << 20)
        var dev = VirtioNetDevice(memory: ram, observer: recorder.deferredObserver(nic: 0))
        var drv = VirtioNetDriver(memory: ram)
        try RecorderPolicyTests.giantDrain(&dev, &drv)
        _ = try recorder.finish()
        let reader = try TraceReader(path: path)
        let bounded = reader.chunks.allSatisfy { Int($0.uncompressedSize) <= TraceLayout.chunkHardLimit }
        #expect(bounded && reader.chunks.count >= 3, "\(reader.chunks.map(\.uncompressedSize))")
        #expect(reader.chunks.dropLast().allSatisfy(\.endsInsideAccess) && !reader.chunks.last!.endsInsideAccess)
        let continuations = reader.chunks.filter { !$0.hasCheckpoint }.count
        #expect(hardLimit < 1_000_000 ? continuations >= 4 : continuations == 0, "\(continuations) continuation chunks")
        #expect(dev.counters.rxPackets == 64)
        #expect(try TraceReplayer(reader: reader).replayAll(keepGoing: false).counters == [dev.counters])
    }
}
