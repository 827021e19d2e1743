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

/// Fills do not write whole chunks: they release them and mark what they read
/// as, so host memory follows what is really written (issue 19, item 5).
@Suite("Guest memory fills")
struct GuestMemoryFillTests {
    @Test func fillingWholeChunksTakesNoHostMemory() throws {
        let ram = try GuestRAM(size: 4 << 30)
        try ram.fill(0, count: 4 << 30, with: 0)
        #expect(ram.backedBytes == 0)
        try ram.fill(0, count: 4 << 30, with: 0xAB)
        #expect(ram.backedBytes == 0)
        #expect(try ram.bytes(at: 0, count: 2) == [0xAB, 0xAB])
        #expect(try ram.bytes(at: (4 << 30) - 3, count: 3) == [0xAB, 0xAB, 0xAB])
        // A write backs its chunk, which keeps the filled byte around it.
        try ram.write(0x20_0001, bytes: [1])
        #expect(ram.backedBytes == 1 << 20)
        #expect(try ram.bytes(at: 0x20_0000, count: 3) == [0xAB, 1, 0xAB])
        // A fill backs only the chunks it covers in part, at its two ends; the
        // whole ones between are released, the written one too.
        try ram.fill(0x80, count: 0x30_0000, with: 0)
        #expect(ram.backedBytes == 2 << 20)
        #expect(try ram.bytes(at: 0x7F, count: 2) == [0xAB, 0])
        #expect(try ram.bytes(at: 0x30_007F, count: 2) == [0, 0xAB])
        #expect(try ram.bytes(at: 0x20_0001, count: 1) == [0])
        // Zeroing everything gives all of it back.
        try ram.fill(0, count: 4 << 30, with: 0)
        #expect(ram.backedBytes == 0)
        #expect(try ram.bytes(at: 0x20_0000, count: 3) == [0, 0, 0])
    }

    @Test func aFillOverAnUnbackedChunkThatAlreadyReadsTheByteWritesNothing() throws {
        let ram = try GuestRAM(size: 16 << 20)
        try ram.fill(0x10, count: 0x20, with: 0)
        #expect(ram.backedBytes == 0)
        try ram.fill(0x10_0000, count: 1 << 20, with: 5)
        try ram.fill(0x10_0010, count: 0x20, with: 5)
        #expect(ram.backedBytes == 0)
        try ram.fill(0x10_0010, count: 0x20, with: 6)
        #expect(ram.backedBytes == 1 << 20)
        #expect(try ram.bytes(at: 0x10_000F, count: 2) == [5, 6])
    }

    @Test func theLastChunkOfARegionIsWholeAtTheRegionsEnd() throws {
        let ram = try GuestRAM(regions: [MemoryRegion(base: 0x1000, size: 0x18_0000)])
        try ram.fill(0x10_1000, count: 0x8_0000, with: 7)
        #expect(ram.backedBytes == 0)
        #expect(try ram.bytes(at: 0x18_0FFF, count: 1) == [7])
        #expect(try ram.bytes(at: 0x10_0FFF, count: 2) == [0, 7])
        #expect(throws: GuestMemoryError(address: 0x18_0FFF, length: 2)) { try ram.fill(0x18_0FFF, count: 2, with: 1) }
    }

    @Test func layoutLimitsBoundTheTables() {
        let many = (0..<65).map { MemoryRegion(base: UInt64($0) << 20, size: 1 << 20) }
        #expect(throws: MemoryLayoutError.tooManyRegions(65)) { try GuestRAM(regions: many) }
        #expect(throws: Never.self) { try GuestRAM(regions: Array(many.prefix(64))) }
        let huge = [MemoryRegion(base: 0, size: 1 << 40), MemoryRegion(base: 1 << 40, size: 1 << 20)]
        #expect(throws: MemoryLayoutError.totalTooLarge((1 << 40) + (1 << 20))) { try GuestRAM(regions: huge) }
        #expect(MemoryLayoutError.totalTooLarge((1 << 40) + (1 << 20)).description
            == "memory regions add up to 0x10000100000 bytes; the limit is 0x10000000000 (1 TiB)")
    }
}
