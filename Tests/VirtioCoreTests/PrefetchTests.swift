import GuestDriver
import Testing
import VirtioCore

/// RAM that can peek and logs the prefetch hints the device gives it. Its
/// peeks are honest, or (`lying`) return bytes from a generator: the device
/// must do exactly the same either way, since hints may steer nothing.
final class HintingRAM: GuestMemory {
    let ram: GuestRAM
    var lying: SplitMix64?
    var hints: [UInt64] = []

    init(_ ram: GuestRAM, lying seed: UInt64? = nil) {
        self.ram = ram
        lying = seed.map { SplitMix64(seed: $0) }
    }

    func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) {
        try ram.read(address, into: buffer)
    }

    func write(_ address: UInt64, from bytes: UnsafeRawBufferPointer) throws(GuestMemoryError) {
        try ram.write(address, from: bytes)
    }

    func prefetch(_ address: UInt64, length: Int) { hints.append(address) }

    func peek(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard lying != nil else { return (try? ram.read(address, into: buffer)) != nil }
        for i in buffer.indices { buffer[i] = UInt8(truncatingIfNeeded: lying!.next()) }
        return true
    }
}

@Suite("prefetch hints")
struct PrefetchTests {
    /// A device over `memory` with its driver initialised on `ram`.
    static func rig(_ ram: GuestRAM, _ memory: HintingRAM) -> (VirtioNetDevice<HintingRAM, EventLog>, VirtioNetDriver<GuestRAM>) {
        var dev = VirtioNetDevice(config: NetConfig(), memory: memory, observer: EventLog(includeMemory: true))
        var drv = VirtioNetDriver(memory: ram)
        let ok = try! drv.initialize(&dev, queueSize: 256)
        precondition(ok)
        return (dev, drv)
    }

    @Test func aTxDrainHintsEachChainsDescriptorThenItsBufferAWindowAhead() throws {
        let ram = try GuestRAM(size: 16 << 20)
        let memory = HintingRAM(ram)
        var (dev, drv) = Self.rig(ram, memory)
        try drv.postRx(count: 40)
        _ = try drv.sendTx(&dev, count: 40, kick: false)
        let txq = VirtioNetDriver<GuestRAM>.txQueue(pair: 0)
        let q = dev.state.queues[txq]
        // Chain i's head and buffer, as the driver laid them out.
        var heads: [UInt16] = []
        var buffers: [UInt64] = []
        for i in 0..<40 {
            let head = try ram.load(UInt16.self, at: q.availRing + 4 + UInt64(i) * 2)
            heads.append(head)
            buffers.append(try ram.load(UInt64.self, at: q.descTable + UInt64(head) * 16))
        }
        let delta = dev.counters
        _ = drv.kick(&dev, queue: txq)
        #expect(dev.counters.delta(since: delta).txPackets == 40)
        let descriptor = { (range: Range<Int>) in range.map { q.descTable + UInt64(heads[$0]) * 16 } }
        let buffer = { (range: Range<Int>) in range.map { buffers[$0] } }
        // Chains 0..<32 when the drain starts, 32..<40 after 16 chains, nothing
        // after 32 (fewer than 16 chains left past the window).
        #expect(memory.hints == descriptor(0..<32) + buffer(0..<32) + descriptor(32..<40) + buffer(32..<40))
    }

    @Test func whatPeeksReturnChangesNothingTheDeviceDoes() throws {
        func run(lying: UInt64?) throws -> (events: [DeviceEvent], counters: NetCounters, rx: [[UInt32]], hints: Int) {
            let ram = try GuestRAM(size: 16 << 20)
            let memory = HintingRAM(ram, lying: lying)
            var (dev, drv) = Self.rig(ram, memory)
            try drv.postRx(count: 50)
            _ = try drv.sendTx(&dev, count: 70, length: 100)
            _ = try drv.sendTx(&dev, count: 3, length: 60, descriptors: 3)
            try drv.reclaimAll()
            let rx = drv.queues[VirtioNetDriver<GuestRAM>.rxQueue(pair: 0)]!.usedLog.map { [$0.id, $0.len] }
            return (dev.observer.events, dev.counters, rx, memory.hints.count)
        }
        let honest = try run(lying: nil)
        #expect(honest.counters.txPackets == 73 && honest.counters.rxPackets == 50 && honest.counters.txDroppedNoRxBuffer == 23)
        #expect(honest.hints > 0)
        for seed: UInt64 in [1, 2, 0xdead_beef] {
            let lied = try run(lying: seed)
            #expect(lied.events == honest.events, "seed \(seed)")
            #expect(lied.counters == honest.counters && lied.rx == honest.rx)
        }
    }
}
