// Fuzzes the device core as a hostile guest: the input is a program of MMIO
// accesses, guest-memory writes and driver steps. The device must never trap,
// hang or grow without bound, and its invariants must hold after every step.

import FuzzSupport
import GuestDriver
import VirtioCore

/// Reads the fuzzer's bytes as a stream of small integers.
struct Input {
    let data: UnsafeBufferPointer<UInt8>
    var position = 0
    var atEnd: Bool { position >= data.count }
    mutating func byte() -> UInt8 {
        defer { position += 1 }
        return position < data.count ? data[position] : 0
    }
    mutating func u16() -> UInt16 { UInt16(byte()) | UInt16(byte()) << 8 }
    mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }
}

/// Guest RAM: 2 MiB at 0 and a 64 KiB island at 4 MiB; the driver area
/// (0x100000..) falls in the first region, the rest of its area is a hole.
let regions = [MemoryRegion(base: 0, size: 2 << 20), MemoryRegion(base: 4 << 20, size: 64 << 10)]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = Input(data: UnsafeBufferPointer(start: start, count: count))
    let pairs = Int(input.byte() % 3) + 1
    let ram = try! GuestRAM(regions: regions)
    var dev = VirtioNetDevice(config: NetConfig(queuePairs: pairs), memory: ram)
    var drv = VirtioNetDriver(memory: ram)
    var steps = 0
    while !input.atEnd && steps < 512 {
        steps += 1
        let before = dev.counters
        switch input.byte() % 10 {
        case 0, 1:
            let offset = UInt64(input.u16() % 0x1100)
            let width = [1, 2, 4, 4, 4, 8, 3, 0][Int(input.byte() % 8)]
            dev.write(offset: offset, width: width, value: UInt64(input.u32()))
        case 2:
            _ = dev.read(offset: UInt64(input.u16() % 0x1100), width: Int(input.byte() % 9))
        case 3:
            // Raw bytes anywhere near the rings and buffers.
            let address = UInt64(input.u32() % (5 << 20))
            let n = Int(input.byte() % 32)
            var bytes: [UInt8] = []
            for _ in 0..<n { bytes.append(input.byte()) }
            try? ram.write(address, bytes: bytes)
        case 4:
            _ = try? drv.initialize(&dev, features: input.byte() % 4 == 0 ? input.u64() : nil,
                                    queueSize: UInt16(1) << (input.byte() % 9))
        case 5:
            try? drv.postRx(pair: Int(input.byte() % 3), count: Int(input.byte() % 4), length: Int(input.u16()),
                            descriptors: 1 + Int(input.byte() % 4))
        case 6:
            _ = try? drv.sendTx(&dev, pair: Int(input.byte() % 3), count: Int(input.byte() % 4),
                                length: Int(input.u32() % 70_000), descriptors: 1 + Int(input.byte() % 14))
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
        default:
            _ = try? drv.controlSetPairs(&dev, pairs: input.u16())
            _ = drv.kick(&dev, queue: Int(input.byte() % 8))
        }
        // Invariants a guest can never break.
        for c in NetCounter.allCases where dev.counters[c] < before[c] { fatalError("\(c.name) went backwards") }
        guard (1...dev.queuePairs).contains(dev.state.activeQueuePairs) else { fatalError("active pairs out of range") }
        guard dev.counters.invalidAvailIdxCount <= UInt64(dev.queueCount) else { fatalError("poison counted twice") }
        for q in dev.state.queues {
            guard q.size.nonzeroBitCount == 1, q.size <= q.maxSize, q.descTable % 16 == 0, q.availRing % 2 == 0,
                  q.usedRing % 4 == 0 else { fatalError("queue state broke its rules: \(q)") }
        }
    }
    return 0
}


@_cdecl("FuzzDevice_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { fuzz($0, $1) }
}
