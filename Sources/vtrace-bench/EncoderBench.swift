//! The chunk encoder alone, fed the events `vtrace serve` records for a
//! frame of DPDK testpmd txonly: what recording costs without the device.
//!
//! Per frame, 12 events as `vtrace dump` shows them in such a trace: the
//! TX avail index (unchanged), the avail slot (as a ring round before), the
//! descriptor (a new buffer each frame), the chain, the 64-byte payload (as
//! the frame before), the RX avail index (unchanged), a drop counter, the
//! used element and index, the used publication, two counters. Chunks are
//! cut at the recorder's target size. Run under callgrind and divide by the
//! frames: `vtrace-bench --fixed encoder 0 0 FRAMES`.

import TraceFormat

func encoderBenchmark(frames: Int) -> UInt64 {
    let availIdx: UInt64 = 0x1_205d_a002, availRing: UInt64 = 0x1_205d_a004
    let table: UInt64 = 0x1_205d_9000, usedIdx: UInt64 = 0x1_205d_b002, usedRing: UInt64 = 0x1_205d_b004
    let rxAvailIdx: UInt64 = 0x1_205d_f002
    let pool = BufferPool(limit: 2)
    var counters = [UInt64](repeating: 0, count: 16)
    func open(_ first: UInt64) -> ChunkEncoder {
        var e = ChunkEncoder(firstEvent: first, baseTime: 0, checkpoint: nil, counters: [counters],
                             capacity: 2 * TraceLayout.chunkTargetSize + 512 * 1024, pool: pool)
        e.exclusive = true
        return e
    }
    var encoder = open(0)
    var events: UInt64 = 0
    var payload = [UInt8](repeating: 0, count: 64)
    payload[0] = 2
    var availValue: UInt16 = 0x45c0
    var descriptor = [UInt8](repeating: 0, count: 16)
    var mbuf: UInt64 = 0x1_1bd4_6134
    for frame in 0..<frames {
        let slot = UInt16(truncatingIfNeeded: frame) & 255
        if frame % 256 == 0 { availValue &+= 256 }
        withUnsafeBytes(of: availValue.littleEndian) { encoder.memoryRead(nic: 0, address: availIdx, bytes: $0, ok: true) }
        withUnsafeBytes(of: slot.littleEndian) {
            encoder.memoryRead(nic: 0, address: availRing + 2 * UInt64(slot), bytes: $0, ok: true)
        }
        mbuf = mbuf &* 6364136223846793005 &+ 1442695040888963407
        let buffer = 0x1_1b00_0134 + (mbuf >> 40) & 0xFF_FF00
        descriptor.withUnsafeMutableBytes {
            $0.storeBytes(of: buffer.littleEndian, as: UInt64.self)
            $0.storeBytes(of: UInt32(76).littleEndian, toByteOffset: 8, as: UInt32.self)
        }
        descriptor.withUnsafeBytes { encoder.memoryRead(nic: 0, address: table + 16 * UInt64(slot), bytes: $0, ok: true) }
        encoder.chain(nic: 0, queue: 1, head: slot, count: 1) { _ in (buffer, 76, 0, 0) }
        payload.withUnsafeBytes { encoder.memoryRead(nic: 0, address: buffer + 12, bytes: $0, ok: true) }
        withUnsafeBytes(of: UInt16(256).littleEndian) { encoder.memoryRead(nic: 0, address: rxAvailIdx, bytes: $0, ok: true) }
        counters[9] &+= 1
        encoder.counter(nic: 0, index: 9, value: counters[9])
        withUnsafeBytes(of: UInt64(slot).littleEndian) {
            encoder.memoryWrite(nic: 0, address: usedRing + 8 * UInt64(slot), bytes: $0, ok: true)
        }
        withUnsafeBytes(of: UInt16(truncatingIfNeeded: frame + 1).littleEndian) {
            encoder.memoryWrite(nic: 0, address: usedIdx, bytes: $0, ok: true)
        }
        encoder.used(nic: 0, queue: 1, id: UInt32(slot), len: 0)
        counters[0] &+= 1
        encoder.counter(nic: 0, index: 0, value: counters[0])
        counters[1] &+= 64
        encoder.counter(nic: 0, index: 1, value: counters[1])
        if encoder.size >= TraceLayout.chunkTargetSize {
            events &+= encoder.eventCount
            encoder.exclusive = false
            pool.recycle(encoder)
            encoder = open(events)
        }
    }
    return events &+ encoder.eventCount
}
