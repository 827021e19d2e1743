@testable import GuestDriver
import Testing
import VirtioCore

@Suite("Buffer allocator")
struct BufferAllocatorTests {
    @Test func allocatesFirstFitInSixteenByteUnitsAndMergesOnRelease() {
        var a = BufferAllocator(start: 0x1000, end: 0x1100)
        #expect(a.allocate(1) == 0x1000)
        #expect(a.allocate(17) == 0x1010)   // 17 rounds up to 32
        #expect(a.allocate(0xC0) == 0x1030)
        #expect(a.available == 0x10)
        #expect(a.allocate(0x20) == nil)
        a.release(0x1010, 17)
        #expect(a.free.map { [$0.0, $0.1] } == [[0x1010, 0x20], [0x10F0, 0x10]])
        a.release(0x1000, 1)
        a.release(0x1030, 0xC0)
        // Every neighbour merged back into the one range it started as.
        #expect(a.free.map { [$0.0, $0.1] } == [[0x1000, 0x100]])
    }

    @Test func anEmptyAreaHasNothingToGive() {
        var a = BufferAllocator(start: 0x2000, end: 0x2000)
        #expect(a.available == 0)
        #expect(a.allocate(1) == nil)
    }
}

@Suite("Seeded generator")
struct SplitMix64Tests {
    @Test func theSequenceDependsOnlyOnTheSeed() {
        // SplitMix64's published first outputs for seed 0.
        var g = SplitMix64(seed: 0)
        #expect(g.next() == 0xE220_A839_7B1D_CDAF)
        #expect(g.next() == 0x6E78_9E6A_A1B9_65F4)
        var a = SplitMix64(seed: 42), b = SplitMix64(seed: 42)
        let first = (0..<8).map { _ in a.next() }, second = (0..<8).map { _ in b.next() }
        #expect(first == second)
    }
}

@Suite("Model driver")
struct ModelDriverTests {
    typealias Device = VirtioNetDevice<GuestRAM, EventLog>

    @Test func aLoopedFrameComesBackWithTheBytesSentAndExactUsedEntries() throws {
        let ram = try GuestRAM(size: 16 << 20)
        var dev = Device(config: NetConfig(), memory: ram, observer: EventLog())
        var drv = VirtioNetDriver(memory: ram)
        #expect(try drv.initialize(&dev, queueSize: 16))
        #expect(dev.state.status.contains(.driverOK))
        try drv.postRx(count: 2, length: 1526)
        let frame: [UInt8] = (0..<100).map { UInt8($0 ^ 0x5A) }
        let signals = try drv.sendTx(&dev, frame: frame)
        #expect(signals == .vring)
        let tx = try drv.reclaim(queue: VirtioNetDriver<GuestRAM>.txQueue(pair: 0))
        let rx = try drv.reclaim(queue: VirtioNetDriver<GuestRAM>.rxQueue(pair: 0))
        #expect(tx.map { [$0.id, $0.len] } == [[0, 0]])
        #expect(rx.map { [$0.id, $0.len] } == [[0, 112]])
        // The device wrote a 12-byte header (zero but num_buffers = 1), then the frame.
        #expect(try drv.receivedBytes(rx[0]) == [UInt8](repeating: 0, count: 10) + [1, 0] + frame)
        #expect(dev.counters[.txPackets] == 1 && dev.counters[.rxPackets] == 1 && dev.counters[.rxBytes] == 100)
        // Reclaimed descriptors are free again: a queue of 16 takes 16 more.
        #expect(drv.queues[1]!.freeCount == 16)
    }

    @Test func splitSpreadsTheRemainderOverTheFirstPieces() {
        #expect(VirtioNetDriver<GuestRAM>.split(10, into: 3) == [4, 3, 3])
        #expect(VirtioNetDriver<GuestRAM>.split(2, into: 4) == [1, 1, 0, 0])
    }
}
