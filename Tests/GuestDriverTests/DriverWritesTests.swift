@testable import GuestDriver
import Testing
import VirtioCore

/// A memory that implements only read and write, so `fill` is the protocol's default.
final class PlainMemory: GuestMemory {
    let ram: GuestRAM
    init(_ ram: GuestRAM) { self.ram = ram }
    func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) {
        try ram.read(address, into: buffer)
    }
    func write(_ address: UInt64, from bytes: UnsafeRawBufferPointer) throws(GuestMemoryError) {
        try ram.write(address, from: bytes)
    }
}

@Suite("Driver writes into guest memory")
struct DriverWritesTests {
    typealias Device = VirtioNetDevice<GuestRAM, NoObserver>

    /// 16 MiB of RAM, a device of `pairs` pairs and a driver that initialised it at `queueSize`.
    func started(queueSize: UInt16, pairs: Int = 1) throws -> (GuestRAM, Device, VirtioNetDriver<GuestRAM>) {
        let ram = try GuestRAM(size: 16 << 20)
        var dev = Device(config: NetConfig(queuePairs: pairs), memory: ram)
        var drv = VirtioNetDriver(memory: ram)
        #expect(try drv.initialize(&dev, queueSize: queueSize))
        return (ram, dev, drv)
    }

    @Test func theDefaultFillIsAllOrNothing() throws {
        let ram = try GuestRAM(regions: [MemoryRegion(base: 0x1000, size: 0x1000), MemoryRegion(base: 0x3000, size: 0x1000)])
        let memory = PlainMemory(ram)
        try memory.fill(0x1FF0, count: 16, with: 0xAB)
        #expect(try ram.bytes(at: 0x1FEF, count: 17) == [0] + [UInt8](repeating: 0xAB, count: 16))
        // Runs into the hole at 0x2000: refused whole, nothing written.
        #expect(throws: GuestMemoryError(address: 0x1FF8, length: 16)) { try memory.fill(0x1FF8, count: 16, with: 0xCD) }
        #expect(try ram.bytes(at: 0x1FF8, count: 8) == [UInt8](repeating: 0xAB, count: 8))
        try memory.fill(0x3000, count: 0, with: 1)
    }

    @Test func framesOfEveryKindArriveWithTheirBytes() throws {
        var (_, dev, drv) = try started(queueSize: 16)
        let rx = VirtioNetDriver<GuestRAM>.rxQueue(pair: 0)
        // Pattern frames longer than the 4 KiB page they are written from, and shorter.
        for (length, fill, frame) in [(10_000, nil, nil), (300, nil, nil), (5_000, UInt8(0x77), nil),
                                      (70, nil, (0..<70).map { UInt8(255 - $0) })] as [(Int, UInt8?, [UInt8]?)] {
            try drv.postRx(length: 12 + 10_000)
            try drv.sendTx(&dev, length: length, descriptors: 3, fill: fill, frame: frame)
            let used = try drv.reclaim(queue: rx)
            #expect(used.count == 1)
            let expected = frame ?? VirtioNetDriver<GuestRAM>.patternFrame(length: length, fill: fill)
            #expect(try drv.receivedBytes(used[0]).dropFirst(12) == expected[...])
        }
        #expect(dev.counters[.txPackets] == 4 && dev.counters[.rxBytes] == 10_000 + 300 + 5_000 + 70)
    }

    @Test func thePatternFrameCountsUpModulo256() {
        let frame = VirtioNetDriver<GuestRAM>.patternFrame(length: 1_000)
        #expect(frame.count == 1_000 && frame.indices.allSatisfy { frame[$0] == UInt8($0 & 0xff) })
        #expect(VirtioNetDriver<GuestRAM>.patternFrame(length: 5, fill: 9) == [9, 9, 9, 9, 9])
        #expect(VirtioNetDriver<GuestRAM>.patternFrame(length: 0).isEmpty)
    }

    @Test func aBufferOverAHoleIsNotWrittenAtAll() throws {
        // The driver area starts at 1 MiB with a page of rings per queue (size 1);
        // buffers follow them, up to the end of what is mapped.
        let mappedEnd: UInt64 = 0x10_4000
        let ram = try GuestRAM(regions: [MemoryRegion(base: 0, size: mappedEnd)])
        var dev = Device(config: NetConfig(), memory: ram)
        var drv = VirtioNetDriver(memory: ram)
        #expect(try drv.initialize(&dev, queueSize: 1))
        let bufferStart = 0x10_0000 + 0x1000 * UInt64(drv.queues.keys.count)
        let free = Int(mappedEnd - bufferStart)
        try ram.fill(bufferStart, count: free, with: 0xEE)
        // Header and frame take one byte more than is mapped.
        #expect(throws: DriverError.memory(GuestMemoryError(address: bufferStart, length: free + 1))) {
            try drv.sendTx(&dev, length: free + 1 - 12, kick: false)
        }
        #expect(try ram.bytes(at: bufferStart, count: free) == [UInt8](repeating: 0xEE, count: free))
    }

    @Test func descriptorsAreWrittenInWireFormat() throws {
        let (ram, _, drv) = try started(queueSize: 16)
        let d = Descriptor(addr: 0x1122_3344_5566_7788, len: 0x99AA_BBCC, flags: [.next, .write], next: 0xDDEE)
        try drv.setDescriptor(queue: 1, index: 5, d)
        #expect(try ram.bytes(at: drv.queues[1]!.desc + 5 * 16, count: 16) == d.wireBytes)
    }

    @Test func freshDescriptorsGoInOrderAndReturnedOnesAreReusedFirst() throws {
        var (_, dev, drv) = try started(queueSize: 8)
        let tx = VirtioNetDriver<GuestRAM>.txQueue(pair: 0)
        try drv.sendTx(&dev, descriptors: 3)   // no RX buffer: dropped, but used
        #expect(drv.queues[tx]!.freeCount == 5)
        #expect(drv.queues[tx]!.inFlightBuffers(head: 0)?.count == 3)
        try drv.sendTx(&dev, descriptors: 2, kick: false)
        // Reclaiming the first chain returned 0, 1, 2; the new chain took 0 then 1.
        #expect(drv.queues[tx]!.inFlightBuffers(head: 0)?.count == 2)
        #expect(drv.queues[tx]!.freeCount == 6)
        try drv.sendTx(&dev, descriptors: 6, kick: false)
        #expect(drv.queues[tx]!.freeCount == 0)
        #expect(throws: DriverError.outOfDescriptors(queue: tx, wanted: 1, free: 0)) { try drv.sendTx(&dev, kick: false) }
    }

    @Test func queuesAreLookedUpByIndexAndMissingOnesAreNil() throws {
        var (_, dev, drv) = try started(queueSize: 8, pairs: 2)
        #expect(drv.queues.keys == [0, 1, 2, 3, 4])
        #expect(drv.queues[4]?.index == 4 && drv.queues[5] == nil && drv.queues[-1] == nil && drv.queues[1 << 40] == nil)
        drv.reset(&dev)
        #expect(drv.queues.keys.isEmpty && drv.queues[0] == nil)
    }

    @Test func aUsedElementHalfMappedNamesItsUnmappedField() throws {
        // The used ring of TX starts 8 bytes before the end of RAM: flags and
        // idx, then ring[0].id are mapped, ring[0].len is not.
        let end: UInt64 = 16 << 20
        let ram = try GuestRAM(size: end)
        var dev = Device(config: NetConfig(), memory: ram)
        var drv = VirtioNetDriver(memory: ram)
        drv.quirks.usedRing[1] = end - 8
        #expect(try drv.initialize(&dev, queueSize: 8))
        try ram.store(UInt16(1), at: end - 6)
        #expect(throws: DriverError.memory(GuestMemoryError(address: end, length: 4))) { try drv.reclaim(queue: 1) }
        #expect(drv.queues[1]!.lastUsed == 0 && drv.queues[1]!.usedLog.isEmpty)
    }
}
