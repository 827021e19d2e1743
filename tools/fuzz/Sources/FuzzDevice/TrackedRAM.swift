// Guest RAM that one process reuses for every fuzz input: it remembers which
// pages any write touched (the driver's or the device's), so clearing it
// after an input zeroes only those pages instead of building new RAM.

import VirtioCore

/// ``GuestRAM`` plus a record of the 4 KiB pages written since the last ``clearWritten()``.
///
/// Every write, successful or not, goes through ``write(_:from:)``: a refused
/// write changes nothing, so only successful ones mark pages. ``checkZero()``
/// reads every mapped byte, so a write that escaped the record shows there.
final class TrackedRAM: GuestMemory {
    static let pageShift: UInt64 = 12
    let ram: GuestRAM
    let regions: [MemoryRegion]
    /// One past the last page number any region reaches.
    let pageLimit: Int
    /// One bit per page below `pageLimit`.
    var dirty: [UInt64]
    /// Pages whose bit is set, in the order they were first written.
    var written: [Int]
    /// A page of zeros to clear with.
    let zeros: UnsafeMutableRawBufferPointer

    init(regions: [MemoryRegion]) throws(MemoryLayoutError) {
        ram = try GuestRAM(regions: regions)
        self.regions = regions
        let end = regions.map { $0.base + $0.size }.max() ?? 0
        pageLimit = Int((end + (1 << TrackedRAM.pageShift) - 1) >> TrackedRAM.pageShift)
        dirty = [UInt64](repeating: 0, count: (pageLimit + 63) / 64)
        written = []
        written.reserveCapacity(pageLimit)
        zeros = .allocate(byteCount: 1 << Int(TrackedRAM.pageShift), alignment: 16)
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { zeros.deallocate() }

    func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) {
        try ram.read(address, into: buffer)
    }

    func write(_ address: UInt64, from bytes: UnsafeRawBufferPointer) throws(GuestMemoryError) {
        try ram.write(address, from: bytes)
        guard bytes.count > 0 else { return }
        // The write succeeded, so every byte is mapped and below `pageLimit`.
        let first = Int(address >> TrackedRAM.pageShift)
        let last = Int((address + UInt64(bytes.count - 1)) >> TrackedRAM.pageShift)
        var page = first
        while page <= last {
            markWritten(page)
            page += 1
        }
    }

    /// Records that `page` holds written bytes (once per page until cleared).
    @inline(__always)
    func markWritten(_ page: Int) {
        let bit: UInt64 = 1 << UInt64(page & 63)
        if dirty[page >> 6] & bit == 0 {
            dirty[page >> 6] |= bit
            written.append(page)
        }
    }

    /// Fills like ``GuestRAM/fill(_:count:with:)`` and marks the pages, except
    /// that zeros go only to pages written since the last ``clearWritten()``:
    /// the others read as zero already (``checkZero()`` holds that), so the
    /// driver zeroing its rings and RX buffers costs nothing on fresh pages.
    func fill(_ address: UInt64, count: Int, with byte: UInt8) throws(GuestMemoryError) {
        if count == 0 { return }
        guard count > 0, isMapped(address, count) else { throw GuestMemoryError(address: address, length: count) }
        let first = Int(address >> TrackedRAM.pageShift)
        let last = Int((address + UInt64(count - 1)) >> TrackedRAM.pageShift)
        let end = address + UInt64(count)
        for page in first...last {
            let isDirty = dirty[page >> 6] & (1 << UInt64(page & 63)) != 0
            if byte == 0 && !isDirty { continue }
            let lo = max(address, UInt64(page) << TrackedRAM.pageShift)
            let hi = min(end, UInt64(page + 1) << TrackedRAM.pageShift)
            do { try ram.fill(lo, count: Int(hi - lo), with: byte) } catch {
                fatalError("filling mapped bytes at 0x\(String(lo, radix: 16)) failed: \(error)")
            }
            markWritten(page)
        }
    }

    /// Whether every byte of `[address, address + count)` lies in a region
    /// (regions may abut), as ``GuestRAM`` decides before it moves a byte.
    func isMapped(_ address: UInt64, _ count: Int) -> Bool {
        let (end, overflow) = address.addingReportingOverflow(UInt64(count))
        guard !overflow else { return false }
        var at = address
        while at < end {
            guard let r = regions.first(where: { $0.base <= at && at - $0.base < $0.size }) else { return false }
            at = r.base + r.size
        }
        return true
    }

    /// Zeroes every page written since the last call; returns how many.
    @discardableResult
    func clearWritten() -> Int {
        let count = written.count
        let pageSize = 1 << Int(TrackedRAM.pageShift)
        for page in written {
            let start = UInt64(page) << TrackedRAM.pageShift
            // A page may be mapped only in part (a region not page-aligned): clear its mapped bytes.
            for r in regions {
                let lo = max(start, r.base), hi = min(start + UInt64(pageSize), r.base + r.size)
                guard lo < hi else { continue }
                do { try ram.write(lo, from: UnsafeRawBufferPointer(rebasing: zeros[0..<Int(hi - lo)])) } catch {
                    fatalError("clearing mapped page \(page) failed: \(error)")
                }
            }
            dirty[page >> 6] = 0
        }
        written.removeAll(keepingCapacity: true)
        return count
    }

    /// Stops the process if any mapped byte is not zero (call after ``clearWritten()``):
    /// the check that reusing this RAM starts every input from fresh RAM.
    func checkZero() {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { scratch.deallocate() }
        for r in regions {
            var offset: UInt64 = 0
            while offset < r.size {
                let n = Int(min(UInt64(scratch.count), r.size - offset))
                let piece = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<n])
                do { try ram.read(r.base + offset, into: piece) } catch { fatalError("reading mapped RAM failed: \(error)") }
                // Word by word without a branch per word; only a failure looks for the byte.
                var any: UInt64 = 0
                for at in stride(from: 0, to: n & ~7, by: 8) { any |= piece.load(fromByteOffset: at, as: UInt64.self) }
                for at in (n & ~7)..<n { any |= UInt64(piece[at]) }
                if any != 0, let i = piece.firstIndex(where: { $0 != 0 }) {
                    fatalError("RAM not zero after clearing: byte at 0x\(String(r.base + offset + UInt64(i), radix: 16)) escaped the write record")
                }
                offset += UInt64(n)
            }
        }
    }
}
