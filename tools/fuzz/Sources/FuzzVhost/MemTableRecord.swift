// A SET_MEM_TABLE payload from 4 bytes per region, near the layout the
// session seed sets up (guest 0, user 0x7f_0000_0000, the 2 MiB memfd), so
// that a mutated byte moves, shrinks, splits or drops the memory under rings
// that are already running instead of making the message unreadable.

/// Calls `body` with the payload for `record` (4 bytes per region):
/// - byte 0: guest-physical base in 64 KiB units;
/// - byte 1: size in 4 KiB pages minus one, times 1, 2, 4 or 8 by byte 2's top bits;
/// - byte 2: memfd offset in 32 KiB units (low 6 bits: 0 to 2 MiB − 32 KiB; size + offset may pass the file's end);
/// - byte 3: user address 0x7f_0000_0000 plus the signed byte in 4 KiB pages.
func withMemTablePayload(_ record: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
    let regions = record.count / 4
    withUnsafeTemporaryAllocation(byteCount: 8 + 32 * regions, alignment: 8) { payload in
        payload.storeBytes(of: UInt32(regions).littleEndian, toByteOffset: 0, as: UInt32.self)
        payload.storeBytes(of: 0, toByteOffset: 4, as: UInt32.self)
        for r in 0..<regions {
            let b0 = record[4 * r], b1 = record[4 * r + 1], b2 = record[4 * r + 2], b3 = record[4 * r + 3]
            let guest = UInt64(b0) << 16
            let size = (UInt64(b1) + 1) << (12 + UInt64(b2 >> 6))
            let user = UInt64(0x7f_0000_0000) &+ UInt64(bitPattern: Int64(Int8(bitPattern: b3)) << 12)
            let offset = UInt64(b2 & 0x3f) << 15
            // vhost-user memory region: guest_phys_addr, memory_size, userspace_addr, mmap_offset.
            payload.storeBytes(of: guest.littleEndian, toByteOffset: 8 + 32 * r, as: UInt64.self)
            payload.storeBytes(of: size.littleEndian, toByteOffset: 16 + 32 * r, as: UInt64.self)
            payload.storeBytes(of: user.littleEndian, toByteOffset: 24 + 32 * r, as: UInt64.self)
            payload.storeBytes(of: offset.littleEndian, toByteOffset: 32 + 32 * r, as: UInt64.self)
        }
        body(UnsafeRawBufferPointer(payload))
    }
}
