import Testing
import VirtioCore

@Suite("Guest memory")
struct GuestMemoryTests {
    @Test func readsBackWhatWasWrittenLittleEndian() throws {
        let ram = try GuestRAM(size: 1 << 20)
        try ram.store(UInt32(0x1122_3344), at: 0x100)
        #expect(try ram.bytes(at: 0x100, count: 4) == [0x44, 0x33, 0x22, 0x11])
        #expect(try ram.load(UInt16.self, at: 0x102) == 0x1122)
        try ram.store(UInt64.max, at: 0xFFFF8)
        #expect(try ram.load(UInt64.self, at: 0xFFFF8) == .max)
    }

    @Test func untouchedMemoryReadsZero() throws {
        let ram = try GuestRAM(size: 64 << 20)
        #expect(try ram.bytes(at: 0x300_0000, count: 16) == [UInt8](repeating: 0, count: 16))
    }

    @Test func accessTouchingOneUnmappedByteFailsWhole() throws {
        let ram = try GuestRAM(regions: [MemoryRegion(base: 0x1000, size: 0x1000)])
        try ram.write(0x1FFC, bytes: [1, 2, 3, 4])
        #expect(throws: GuestMemoryError(address: 0x1FFD, length: 4)) { try ram.write(0x1FFD, bytes: [9, 9, 9, 9]) }
        #expect(try ram.bytes(at: 0x1FFC, count: 4) == [1, 2, 3, 4])  // nothing written
        #expect(throws: GuestMemoryError(address: 0xFFF, length: 2)) { try ram.bytes(at: 0xFFF, count: 2) }
        #expect(throws: GuestMemoryError.self) { try ram.bytes(at: 0, count: 1) }
        #expect(throws: GuestMemoryError.self) { try ram.bytes(at: .max, count: 1) }
        #expect(throws: GuestMemoryError.self) { try ram.bytes(at: .max - 1, count: 4) }
        // Zero-length accesses always succeed, even unmapped.
        #expect(try ram.bytes(at: 0, count: 0) == [])
    }

    @Test func accessMaySpanExactlyAdjacentRegions() throws {
        let ram = try GuestRAM(regions: [MemoryRegion(base: 0x2000, size: 0x1000), MemoryRegion(base: 0x1000, size: 0x1000)])
        #expect(ram.regions == [MemoryRegion(base: 0x1000, size: 0x1000), MemoryRegion(base: 0x2000, size: 0x1000)])
        try ram.write(0x1FFE, bytes: [1, 2, 3, 4])
        #expect(try ram.bytes(at: 0x1FFE, count: 4) == [1, 2, 3, 4])
        let gap = try GuestRAM(regions: [MemoryRegion(base: 0x1000, size: 0x1000), MemoryRegion(base: 0x2001, size: 0x1000)])
        #expect(throws: GuestMemoryError.self) { try gap.write(0x1FFE, bytes: [1, 2, 3, 4]) }
        #expect(try gap.bytes(at: 0x1FFE, count: 2) == [0, 0])
    }

    @Test func accessesCrossingBackingChunksWork() throws {
        let ram = try GuestRAM(size: 4 << 20)
        let data = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try ram.write(0xF_FF00, bytes: data)
        #expect(try ram.bytes(at: 0xF_FF00, count: data.count) == data)
        try ram.fill(0x1F_FFFF, count: 2, with: 0xAB)
        #expect(try ram.bytes(at: 0x1F_FFFE, count: 4) == [data[0x10_00FE], 0xAB, 0xAB, data[0x10_0101]])
    }

    @Test func layoutErrors() {
        #expect(throws: MemoryLayoutError.emptyRegion(MemoryRegion(base: 0, size: 0))) {
            try GuestRAM(regions: [MemoryRegion(base: 0, size: 0)])
        }
        #expect(throws: MemoryLayoutError.overlap(MemoryRegion(base: 0, size: 0x2000), MemoryRegion(base: 0x1000, size: 0x1000))) {
            try GuestRAM(regions: [MemoryRegion(base: 0x1000, size: 0x1000), MemoryRegion(base: 0, size: 0x2000)])
        }
        #expect(throws: MemoryLayoutError.regionWraps(MemoryRegion(base: .max, size: 2))) {
            try GuestRAM(regions: [MemoryRegion(base: .max, size: 2)])
        }
        #expect(throws: MemoryLayoutError.tooLarge(MemoryRegion(base: 0, size: 1 << 41))) {
            try GuestRAM(regions: [MemoryRegion(base: 0, size: 1 << 41)])
        }
    }

    @Test func hugeSparseRamCostsOnlyWhatIsWritten() throws {
        // 512 GiB of guest RAM: only a chunk table (4 MiB) and one 1 MiB chunk are allocated.
        let ram = try GuestRAM(regions: [MemoryRegion(base: 0x1_0000_0000, size: 512 << 30)])
        try ram.store(UInt64(42), at: 0x1_0000_0000 + (511 << 30))
        #expect(try ram.load(UInt64.self, at: 0x1_0000_0000 + (511 << 30)) == 42)
    }
}
