// Fuzzes the device core as a hostile guest: the input is a program of MMIO
// accesses, guest-memory writes and driver steps. The device must never trap,
// hang or grow without bound, and its invariants must hold after every step.
//
// One guest memory and one device per queue-pair count serve every input:
// after an input the device is reset (the reset checked against a fresh
// device's state, see DevicePool) and the pages the input wrote are zeroed
// (every 128 inputs all of RAM is read back as zero, see TrackedRAM), so each
// input still starts from a fresh device and fresh RAM.

import FuzzSupport
import GuestDriver
import VirtioCore

/// Guest RAM: 2 MiB at 0 and a 64 KiB island at 4 MiB; the driver area
/// (0x100000..) falls in the first region, the rest of its area is a hole.
let regions = [MemoryRegion(base: 0, size: 2 << 20), MemoryRegion(base: 4 << 20, size: 64 << 10)]

nonisolated(unsafe) let ram = try! TrackedRAM(regions: regions)
nonisolated(unsafe) var pool = DevicePool(memory: ram)
nonisolated(unsafe) var inputsRun = 0
/// MMIO access widths the write step picks from.
let widths = [1, 2, 4, 4, 4, 8, 3, 0]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = Input(data: UnsafeBufferPointer(start: start, count: count))
    let index = Int(input.byte() % 3)
    run(&pool.devices[index], &input)
    pool.recycle(index)
    ram.clearWritten()
    inputsRun += 1
    if inputsRun % 128 == 0 { ram.checkZero() }
    return 0
}

/// Runs the program in `input` against `dev`, checking the invariants after each step.
func run(_ dev: inout FuzzedDevice, _ input: inout Input) {
    var drv = VirtioNetDriver(memory: ram)
    var steps = 0
    while !input.atEnd && steps < 512 {
        steps += 1
        let before = dev.counters
        let poisonedBefore = poisonedQueues(dev)
        switch input.byte() % 13 {
        case 0, 1:
            let offset = UInt64(input.u16() % 0x1100)
            let width = widths[Int(input.byte() % 8)]
            dev.write(offset: offset, width: width, value: UInt64(input.u32()))
        case 2:
            _ = dev.read(offset: UInt64(input.u16() % 0x1100), width: Int(input.byte() % 9))
        case 3:
            // Raw bytes anywhere near the rings and buffers.
            let address = UInt64(input.u32() % (5 << 20))
            let n = Int(input.byte() % 32)
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { bytes in
                for i in 0..<n { bytes[i] = input.byte() }
                try? ram.write(address, from: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[0..<n])))
            }
        case 4:
            _ = try? drv.initialize(&dev, features: input.byte() % 4 == 0 ? input.u64() : nil,
                                    queueSize: UInt16(1) << (input.byte() % 9))
        case 5:
            try? drv.postRx(pair: Int(input.byte() % 3), count: Int(input.byte() % 4), length: Int(input.u16()),
                            descriptors: 1 + Int(input.byte() % 4))
        case 6:
            // The driver's pattern frame of that length (written into guest memory, no array).
            let pair = Int(input.byte() % 3), count = Int(input.byte() % 4), length = Int(input.u32() % 70_000)
            _ = try? drv.sendTx(&dev, pair: pair, count: count, length: length, descriptors: 1 + Int(input.byte() % 14))
        case 7:
            let queue = Int(input.byte() % 8)
            var chain: [RawDescriptor] = []
            for _ in 0..<(1 + input.byte() % 4) {
                chain.append(RawDescriptor(addr: UInt64(input.u32()) % (5 << 20), len: input.u32() >> (input.byte() % 32),
                                           writable: input.byte() & 1 == 1,
                                           extraFlags: Descriptor.Flags(rawValue: UInt16(input.byte() & 4))))
            }
            _ = try? drv.addRawChain(&dev, queue: queue, chain, kick: input.byte() & 1 == 0)
        case 8:
            _ = try? drv.setAvailIdx(queue: Int(input.byte() % 8), input.u16())
            _ = try? drv.setDescriptor(queue: Int(input.byte() % 8), index: input.u16() % 256, Descriptor(
                addr: input.u64(), len: input.u32(), flags: Descriptor.Flags(rawValue: input.u16()), next: input.u16()))
        case 9:
            _ = try? drv.controlSetPairs(&dev, pairs: input.u16())
            _ = drv.kick(&dev, queue: Int(input.byte() % 8))
        case 10:
            addLoopingChain(&dev, drv, &input)
        case 11:
            addEdgeChain(&dev, &drv, &input)
        default:
            placeRingsAtEdge(&dev, &input)
        }
        checkCountersNeverDecrease(before, dev.counters)
        checkPoisonCountedOnce(countBefore: before.invalidAvailIdxCount, poisonedBefore: poisonedBefore, dev)
        checkDeviceRules(dev)
    }
}

@_cdecl("FuzzDevice_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { fuzz($0, $1) }
}
