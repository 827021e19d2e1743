// The structure-aware steps: chains whose NEXT links loop, chains whose
// buffers cross a region edge or wrap the address space, and rings placed so
// that they straddle the end of guest memory.

import GuestDriver
import VirtioCore

/// Writes 1...4 descriptors from table slot `head` on, each linked with NEXT
/// to the following slot and the last back to one of them (a loop the device
/// must cut), puts `head` in the avail ring, advances avail.idx and kicks.
func addLoopingChain(_ dev: inout FuzzedDevice, _ drv: VirtioNetDriver<TrackedRAM>, _ input: inout Input) {
    let queue = Int(input.byte() % 8)
    let n = 1 + Int(input.byte() % 4)
    let back = Int(input.byte()) % n
    let writable = input.byte()
    let head = input.u16()
    var descriptors: [(UInt64, UInt32)] = []
    for _ in 0..<n { descriptors.append((input.edgeAddress(), UInt32(input.u16()))) }
    guard let dq = drv.queues[queue] else { return }
    let size = dq.size
    for i in 0..<n {
        let next = i + 1 < n ? head &+ UInt16(i + 1) : head &+ UInt16(back)
        var flags: Descriptor.Flags = .next
        if (writable >> UInt8(i)) & 1 == 1 { flags.insert(.write) }
        _ = try? drv.setDescriptor(queue: queue, index: (head &+ UInt16(i)) % size,
                                   Descriptor(addr: descriptors[i].0, len: descriptors[i].1, flags: flags, next: next % size))
    }
    guard let idx = try? ram.load(UInt16.self, at: dq.avail + 2) else { return }
    _ = try? drv.setAvailEntry(queue: queue, slot: idx, head: head % size)
    _ = try? drv.setAvailIdx(queue: queue, idx &+ 1)
    _ = drv.kick(&dev, queue: queue)
}

/// Adds a chain of 1...4 descriptors through the driver whose buffers start
/// near a memory edge, so they run off a region, into a hole, or wrap.
func addEdgeChain(_ dev: inout FuzzedDevice, _ drv: inout VirtioNetDriver<TrackedRAM>, _ input: inout Input) {
    let queue = Int(input.byte() % 8)
    var chain: [RawDescriptor] = []
    for _ in 0..<(1 + input.byte() % 4) {
        let flags = input.byte()
        chain.append(RawDescriptor(addr: input.edgeAddress(), len: UInt32(input.u16()) << (flags >> 4 & 3),
                                   writable: flags & 1 == 1, extraFlags: Descriptor.Flags(rawValue: UInt16(flags & 4))))
    }
    _ = try? drv.addRawChain(&dev, queue: queue, chain, kick: true)
}

/// Points one queue's descriptor table, avail ring and used ring at
/// addresses near memory edges (aligned as the device requires), with a
/// chosen size, sets it ready and kicks it.
func placeRingsAtEdge(_ dev: inout FuzzedDevice, _ input: inout Input) {
    let queue = UInt32(input.byte() % 8)
    let size = UInt32(1) << (input.byte() % 9)
    let desc = input.edgeAddress() & ~15, avail = input.edgeAddress() & ~1, used = input.edgeAddress() & ~3
    dev.write(.queueSel, queue)
    dev.write(.queueNum, size)
    dev.write(.queueDescLow, UInt32(truncatingIfNeeded: desc))
    dev.write(.queueDescHigh, UInt32(truncatingIfNeeded: desc >> 32))
    dev.write(.queueDriverLow, UInt32(truncatingIfNeeded: avail))
    dev.write(.queueDriverHigh, UInt32(truncatingIfNeeded: avail >> 32))
    dev.write(.queueDeviceLow, UInt32(truncatingIfNeeded: used))
    dev.write(.queueDeviceHigh, UInt32(truncatingIfNeeded: used >> 32))
    dev.write(.queueReady, 1)
    dev.write(.queueNotify, queue)
}
