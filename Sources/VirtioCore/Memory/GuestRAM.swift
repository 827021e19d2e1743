//! The default guest memory: non-overlapping RAM regions.

/// One RAM region: `size` bytes starting at guest-physical `base`.
public struct MemoryRegion: Hashable, Sendable, Codable {
    public var base: UInt64
    public var size: UInt64

    public init(base: UInt64, size: UInt64) {
        self.base = base
        self.size = size
    }

    /// One past the last address, or `nil` when the region reaches 2^64.
    public var end: UInt64? {
        let (sum, overflow) = base.addingReportingOverflow(size)
        return overflow ? nil : sum
    }
}

/// Why a memory layout was refused.
public enum MemoryLayoutError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A region of size zero.
    case emptyRegion(MemoryRegion)
    /// A region that runs past the end of the 64-bit address space.
    case regionWraps(MemoryRegion)
    /// Two regions share at least one address.
    case overlap(MemoryRegion, MemoryRegion)
    /// A region larger than this process can back with host memory.
    case tooLarge(MemoryRegion)
    /// Regions whose sizes add up to more than ``GuestRAM/maxTotalSize``.
    case totalTooLarge(UInt64)
    /// More regions than ``GuestRAM/maxRegions``.
    case tooManyRegions(Int)

    public var description: String {
        func show(_ r: MemoryRegion) -> String {
            "[0x\(String(r.base, radix: 16)), +0x\(String(r.size, radix: 16)))"
        }
        switch self {
        case .emptyRegion(let r): return "memory region \(show(r)) is empty"
        case .regionWraps(let r): return "memory region \(show(r)) runs past the end of the address space"
        case .overlap(let a, let b): return "memory regions \(show(a)) and \(show(b)) overlap"
        case .tooLarge(let r): return "memory region \(show(r)) is too large to allocate"
        case .totalTooLarge(let total):
            return "memory regions add up to 0x\(String(total, radix: 16)) bytes; the limit is 0x\(String(GuestRAM.maxTotalSize, radix: 16)) (1 TiB)"
        case .tooManyRegions(let n): return "\(n) memory regions; the limit is \(GuestRAM.maxRegions)"
        }
    }
}

/// Guest RAM made of zero-filled regions, backed lazily.
///
/// A reference type on purpose: the guest driver (a test helper, a scenario)
/// and the device share the same bytes, as a guest and its VMM share a mapping.
/// Accesses may span regions that are exactly adjacent; an access that touches
/// a single unmapped byte fails whole, before any byte moves.
///
/// Host memory is taken in 1 MiB chunks on the first write to each chunk, so a
/// large guest costs only what is written. A chunk without host memory reads
/// as one byte value: zero at first, or the byte of a ``fill(_:count:with:)``
/// that covered the whole chunk. Such a fill releases the chunk's memory
/// instead of writing it, so filling gigabytes costs a table entry per MiB,
/// and zeroing written memory gives it back. Host memory is therefore bounded
/// by the chunks holding bytes that differ from each other, and only a write
/// of bytes makes those. This keeps the type standard-library-only (no
/// `mmap`, no `madvise`): a released chunk goes back to the allocator.
public final class GuestRAM: GuestMemory {
    /// log2 of the backing chunk size. 1 MiB keeps the chunk table small
    /// (1,024 entries per GiB) while a typical ring+buffer area fits in one chunk.
    @usableFromInline static let chunkShift: UInt64 = 20
    @usableFromInline static let chunkSize: Int = 1 << 20
    /// Largest region accepted: 1 TiB, a chunk table of 8 MiB.
    public static let maxRegionSize: UInt64 = 1 << 40
    /// Largest total of all regions: 1 TiB, so the chunk tables (written
    /// whole when the RAM is made) stay within 9 MiB however it is split.
    public static let maxTotalSize: UInt64 = 1 << 40
    /// Most regions: every access looks its region up by a linear scan.
    public static let maxRegions = 64

    /// One region's bookkeeping: plain values and raw pointers, so looking a
    /// region up costs no reference counting on the hot path.
    @usableFromInline
    struct Backing {
        @usableFromInline let base: UInt64
        @usableFromInline let size: UInt64
        /// One optional chunk pointer per 1 MiB of the region.
        @usableFromInline let chunks: UnsafeMutablePointer<UnsafeMutableRawPointer?>
        /// Per chunk, the byte every address reads as while it has no host memory.
        @usableFromInline let uniform: UnsafeMutablePointer<UInt8>
        @usableFromInline let chunkCount: Int

        init(base: UInt64, size: UInt64) {
            self.base = base
            self.size = size
            chunkCount = Int((size + UInt64(GuestRAM.chunkSize) - 1) >> GuestRAM.chunkShift)
            chunks = .allocate(capacity: chunkCount)
            chunks.initialize(repeating: nil, count: chunkCount)
            uniform = .allocate(capacity: chunkCount)
            uniform.initialize(repeating: 0, count: chunkCount)
        }

        func free() {
            for i in 0..<chunkCount { chunks[i]?.deallocate() }
            chunks.deallocate()
            uniform.deallocate()
        }

        /// Host pointer for region offset `offset`, allocating its chunk (with
        /// the chunk's uniform byte everywhere) when asked.
        @inlinable
        func host(_ offset: UInt64, allocate: Bool) -> UnsafeMutableRawPointer? {
            let index = Int(offset >> GuestRAM.chunkShift)
            let within = Int(offset & UInt64(GuestRAM.chunkSize - 1))
            if let c = chunks[index] { return c + within }
            guard allocate else { return nil }
            let c = UnsafeMutableRawPointer.allocate(byteCount: GuestRAM.chunkSize, alignment: 16)
            c.initializeMemory(as: UInt8.self, repeating: uniform[index], count: GuestRAM.chunkSize)
            chunks[index] = c
            return c + within
        }

        /// Copies `count` bytes at region offset `offset` (within one chunk) to `destination`.
        @inlinable
        func read(_ offset: UInt64, _ count: Int, into destination: UnsafeMutableRawPointer) {
            if let host = host(offset, allocate: false) {
                destination.copyMemory(from: host, byteCount: count)
            } else {
                destination.initializeMemory(as: UInt8.self, repeating: uniform[Int(offset >> GuestRAM.chunkShift)], count: count)
            }
        }

        /// Sets `count` bytes at region offset `offset` (within one chunk) to
        /// `byte`. Covering the chunk's whole part of the region releases its
        /// host memory; a chunk without host memory that already reads as
        /// `byte` is left alone.
        func fill(_ offset: UInt64, _ count: Int, with byte: UInt8) {
            let index = Int(offset >> GuestRAM.chunkShift)
            let start = UInt64(index) << GuestRAM.chunkShift
            // Cannot overflow: start < size <= maxRegionSize.
            let end = min(start + UInt64(GuestRAM.chunkSize), size)
            if offset == start && offset + UInt64(count) == end {
                chunks[index]?.deallocate()
                chunks[index] = nil
                uniform[index] = byte
            } else if chunks[index] != nil || uniform[index] != byte {
                host(offset, allocate: true)!.initializeMemory(as: UInt8.self, repeating: byte, count: count)
            }
        }

        /// Chunks with host memory.
        var backedChunks: Int { (0..<chunkCount).reduce(0) { $0 + (chunks[$1] == nil ? 0 : 1) } }
    }

    /// Regions sorted by base address; owned, freed in deinit.
    @usableFromInline let backings: UnsafeMutableBufferPointer<Backing>

    /// The regions, sorted by base address.
    public var regions: [MemoryRegion] { backings.map { MemoryRegion(base: $0.base, size: $0.size) } }

    /// Host memory held by written chunks, in bytes: what this RAM costs
    /// beyond its chunk tables.
    public var backedBytes: Int { backings.reduce(0) { $0 + $1.backedChunks } * GuestRAM.chunkSize }

    /// Checks a layout as ``init(regions:)`` does.
    /// - Returns: the regions sorted by base address.
    /// - Throws: ``MemoryLayoutError`` for empty, wrapping, overlapping or
    ///   oversized regions, a total over ``maxTotalSize``, or more than ``maxRegions``.
    public static func checkLayout(_ regions: [MemoryRegion]) throws(MemoryLayoutError) -> [MemoryRegion] {
        if regions.count > maxRegions { throw .tooManyRegions(regions.count) }
        let sorted = regions.sorted { $0.base < $1.base }
        var total: UInt64 = 0
        for (i, r) in sorted.enumerated() {
            if r.size == 0 { throw .emptyRegion(r) }
            guard let end = r.end else { throw .regionWraps(r) }
            if r.size > maxRegionSize { throw .tooLarge(r) }
            if i + 1 < sorted.count, sorted[i + 1].base < end { throw .overlap(r, sorted[i + 1]) }
            // Cannot overflow: at most 64 regions of at most 2^40 bytes each.
            total += r.size
        }
        if total > maxTotalSize { throw .totalTooLarge(total) }
        return sorted
    }

    /// Creates RAM from `regions`, zero-filled.
    /// - Throws: what ``checkLayout(_:)`` throws.
    public init(regions: [MemoryRegion]) throws(MemoryLayoutError) {
        let sorted = try GuestRAM.checkLayout(regions)
        backings = .allocate(capacity: sorted.count)
        for (i, r) in sorted.enumerated() {
            (backings.baseAddress! + i).initialize(to: Backing(base: r.base, size: r.size))
        }
    }

    deinit {
        for b in backings { b.free() }
        backings.deallocate()
    }

    /// RAM of `size` bytes at guest-physical address 0.
    public convenience init(size: UInt64) throws(MemoryLayoutError) {
        try self.init(regions: [MemoryRegion(base: 0, size: size)])
    }

    /// Index of the region holding `address`, if any.
    @inlinable
    func regionIndex(containing address: UInt64) -> Int? {
        // Few regions in practice (one or two): a linear scan beats a binary
        // search on them, and stays correct for any number.
        var i = 0
        while i < backings.count {
            let b = backings[i]
            if address >= b.base && address - b.base < b.size { return i }
            i += 1
        }
        return nil
    }

    /// Checks that all of `[address, address+length)` is mapped, then calls `body`
    /// for each piece that lies within one region and one chunk, with the
    /// region, the piece's offset in it, the piece's length and the number of
    /// bytes before it. Returns false, having called nothing, if any byte is unmapped.
    @inlinable
    func forEachPiece(
        _ address: UInt64, _ length: Int,
        _ body: (Backing, UInt64, Int, Int) -> Void
    ) -> Bool {
        if length == 0 { return true }
        guard length > 0, let first = regionIndex(containing: address) else { return false }
        // Pass 1: every byte mapped (adjacent regions may continue the range).
        var remaining = UInt64(length)
        var cursor = address
        var i = first
        while true {
            let b = backings[i]
            let available = b.size - (cursor - b.base)
            if remaining <= available { break }
            remaining -= available
            let (next, overflow) = cursor.addingReportingOverflow(available)
            if overflow || i + 1 >= backings.count || backings[i + 1].base != next { return false }
            cursor = next
            i += 1
        }
        // Pass 2: move the bytes, chunk by chunk.
        remaining = UInt64(length)
        cursor = address
        i = first
        var done = 0
        while remaining > 0 {
            let b = backings[i]
            var offset = cursor - b.base
            var inRegion = min(remaining, b.size - offset)
            remaining -= inRegion
            while inRegion > 0 {
                let room = UInt64(GuestRAM.chunkSize) - (offset & UInt64(GuestRAM.chunkSize - 1))
                let n = min(inRegion, room)
                body(b, offset, Int(n), done)
                done += Int(n)
                offset += n
                inRegion -= n
            }
            cursor = b.base &+ offset
            i += 1
        }
        return true
    }

    /// The host pointer for an access that lies within one written chunk, or nil.
    @inlinable
    func fastPath(_ address: UInt64, _ length: Int) -> UnsafeMutableRawPointer? {
        guard length > 0, let i = regionIndex(containing: address) else { return nil }
        let b = backings[i]
        let offset = address - b.base
        let within = offset & UInt64(GuestRAM.chunkSize - 1)
        // Cannot overflow: within < 2^20 and length is a buffer size.
        guard UInt64(length) <= b.size - offset, within + UInt64(length) <= UInt64(GuestRAM.chunkSize),
              let chunk = b.chunks[Int(offset >> GuestRAM.chunkShift)] else { return nil }
        return chunk + Int(within)
    }

    @inlinable
    public func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) {
        if let host = fastPath(address, buffer.count) {
            buffer.baseAddress!.copyMemory(from: host, byteCount: buffer.count)
            return
        }
        let ok = forEachPiece(address, buffer.count) { b, offset, n, done in
            b.read(offset, n, into: buffer.baseAddress! + done)
        }
        if !ok { throw GuestMemoryError(address: address, length: buffer.count) }
    }

    @inlinable
    public func write(_ address: UInt64, from bytes: UnsafeRawBufferPointer) throws(GuestMemoryError) {
        if let host = fastPath(address, bytes.count) {
            host.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
            return
        }
        let ok = forEachPiece(address, bytes.count) { b, offset, n, done in
            b.host(offset, allocate: true)!.copyMemory(from: bytes.baseAddress! + done, byteCount: n)
        }
        if !ok { throw GuestMemoryError(address: address, length: bytes.count) }
    }

    /// Fills `[address, address+count)` with `byte`. Whole chunks are not
    /// written but released and marked as reading `byte`, so only the partly
    /// covered chunks at either end can take host memory.
    public func fill(_ address: UInt64, count: Int, with byte: UInt8) throws(GuestMemoryError) {
        let ok = forEachPiece(address, count) { b, offset, n, _ in b.fill(offset, n, with: byte) }
        if !ok { throw GuestMemoryError(address: address, length: count) }
    }
}
