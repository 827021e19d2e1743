import Foundation
import GuestDriver
import Testing
import TraceFormat
import TraceRecording
import TraceTestSupport
import VirtioCore

/// `traces/golden/format-edges.vtrace`: a real recording made to exercise
/// what no scenario reaches: a chain cut at the hard limit (a continuation
/// chunk), MMIO widths outside the tag's four bits (the width escape), a NIC
/// on vCPU 2, and counters that wrap past 2^64 (their deltas wrap too).
/// Recorded with a deterministic clock, so this test records it again and
/// asserts the same bytes as `format-edges-1.3.vtrace`, the same device
/// actions recorded since the recorder encodes as events happen (its hard
/// limit counts encoded bytes, so the chain is cut elsewhere than in the 1.2
/// file, which stays as it was recorded: it is read, dumped and replayed).
/// `VTRACE_WRITE_GOLDEN=1` rewrites the 1.3 file (only when the format's
/// version changes, never to make a test pass).
@Suite("The format-edges golden recording")
struct FormatEdgesGoldenTests {
    static let golden = repositoryRoot.appendingPathComponent("traces/golden/format-edges.vtrace").path
    /// The recording as today's recorder makes it.
    static let recorded = repositoryRoot.appendingPathComponent("traces/golden/format-edges-1.3.vtrace").path

    static func record(to path: String) throws {
        let ram = try GuestRAM(size: 16 << 20)
        let config = NetConfig()
        let probe = VirtioNetDevice<GuestRAM, NoObserver>(config: config, memory: nil)
        var header = TraceHeader(config: config, nics: 2, offeredFeatures: probe.offeredFeatures, regions: [MemoryRegion(base: 0, size: 16 << 20)])
        header.guestDescription = "format-edges: continuation chunk, width escape, vCPU 2, counter wrap"
        // NIC 1 starts with counters 100 short of wrapping.
        var nearlyWrapped = probe.state
        for c in [NetCounter.txPackets, .txBytes, .rxPackets, .rxBytes] { nearlyWrapped.counters[c] = UInt64.max - 100 }
        var options = deterministicRecordingOptions(flushEvents: 40)
        options.hardLimit = 3000   // a 1,500-byte frame read and written crosses it mid-chain
        options.formatMinor = 3   // format 1.3 (format-vectors-1.4 holds the repeat records)
        let clock = StepClock()
        let recorder = try TraceRecorder(path: path, header: header, initialStates: [probe.state, nearlyWrapped], options: options,
                                         clock: { clock.read() })
        var dev0 = VirtioNetDevice(config: config, memory: ram, observer: recorder.observer(nic: 0, vcpu: 0))
        var dev1 = VirtioNetDevice(config: config, memory: ram, observer: recorder.observer(nic: 1, vcpu: 2))
        _ = dev1.restore(nearlyWrapped)
        var drv0 = VirtioNetDriver(memory: ram, nic: 0)
        var drv1 = VirtioNetDriver(memory: ram, nic: 1)
        try drv0.initialize(&dev0, queueSize: 16)
        try drv1.initialize(&dev1, queueSize: 16)
        // Widths no MMIO exit has: the escape (15 and up, and negative).
        _ = dev0.read(offset: MMIORegister.magicValue.rawValue, width: 32)
        _ = dev0.read(offset: 0x100, width: -1)
        dev0.write(offset: MMIORegister.queueSel.rawValue, width: 16, value: 1)
        // Big frames over three descriptors: chains cut at the hard limit.
        try drv0.postRx(count: 2, length: 1526, descriptors: 3)
        try drv0.sendTx(&dev0, count: 2, length: 1500, descriptors: 3)
        // NIC 1 (vCPU 2) wraps its counters.
        try drv1.postRx(count: 2)
        try drv1.sendTx(&dev1, count: 2, length: 60)
        try drv1.postRx(count: 1)
        try drv1.sendTx(&dev1, count: 1, length: 1400, descriptors: 2)
        _ = try recorder.finish()
    }

    @Test func theRecordingIsMadeAgainByteForByte() throws {
        if ProcessInfo.processInfo.environment["VTRACE_WRITE_GOLDEN"] == "1" { try Self.record(to: Self.recorded) }
        let path = temporaryPath("format-edges.vtrace")
        try Self.record(to: path)
        let made = try Data(contentsOf: URL(fileURLWithPath: path))
        let golden = try Data(contentsOf: URL(fileURLWithPath: Self.recorded))
        let difference = recordingDifference(made, golden)
        #expect(difference == nil, "\(difference ?? "")")
    }

    @Test(arguments: [golden, recorded])
    func itHoldsWhatItIsFor(_ path: String) throws {
        let reader = try TraceReader(path: path)
        #expect(reader.chunks.contains { !$0.hasCheckpoint }, "no continuation chunk")
        var widths = Set<Int>(), vcpus = Set<UInt32>(), wrapped = false
        var last: [Int: UInt64] = [:]
        for i in reader.chunks.indices {
            var d = try reader.decoder(i)
            while let e = try d.next() {
                vcpus.insert(e.vcpu)
                switch e.body {
                case .mmioRead(_, let w, _), .mmioWrite(_, let w, _): widths.insert(w)
                case .counter(let index, let value):
                    if let before = last[e.nic * 16 + index], value < before { wrapped = true }
                    last[e.nic * 16 + index] = value
                default: break
                }
            }
        }
        #expect(widths.isSuperset(of: [32, -1, 16]))
        #expect(vcpus == [0, 2])
        #expect(wrapped)
    }
}
