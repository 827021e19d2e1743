//! Guest memory shared by a vhost-user frontend: the SET_MEM_TABLE regions,
//! mapped from the file descriptors that came with it.

import CVhost
import VirtioCore
#if canImport(Glibc)
import Glibc
#endif

/// The frontend's memory as the device core sees it: guest-physical
/// addresses, every access bounds-checked against one mapped region (an
/// access that is not wholly inside a region fails whole).
public final class VhostMemory: GuestMemory, @unchecked Sendable {
    struct Mapped {
        let region: VhostMemoryRegion
        /// SAFETY: `region.size` bytes at `host` stay mapped until deinit.
        let host: UnsafeMutableRawPointer
        let mapping: UnsafeMutableRawPointer
        let mappingLength: Int
    }
    /// The mapped regions, in a buffer of their own rather than an array:
    /// finding an address is then a loop over memory (an array's count was a
    /// call per access where the recorder's code grew the caller).
    let regions: UnsafeMutableBufferPointer<Mapped>

    /// Checks the table (sizes, wrap-around, overlaps in either address
    /// space) before mapping anything.
    public static func validate(_ table: [VhostMemoryRegion]) throws(VhostUserError) {
        for (i, r) in table.enumerated() {
            guard r.size > 0 else { throw VhostUserError("memory region \(i) is empty") }
            guard r.size <= 1 << 40 else { throw VhostUserError("memory region \(i) is \(r.size) bytes (at most 1 TiB)") }
            guard r.guestAddress.addingReportingOverflow(r.size).overflow == false,
                  r.userAddress.addingReportingOverflow(r.size).overflow == false,
                  r.mmapOffset.addingReportingOverflow(r.size).overflow == false, r.mmapOffset <= 1 << 40 else {
                throw VhostUserError("memory region \(i) runs past the end of the address space")
            }
            for (j, o) in table.enumerated() where j < i {
                if r.guestAddress < o.guestAddress + o.size && o.guestAddress < r.guestAddress + r.size {
                    throw VhostUserError("memory regions \(j) and \(i) overlap in guest-physical addresses")
                }
                if r.userAddress < o.userAddress + o.size && o.userAddress < r.userAddress + r.size {
                    throw VhostUserError("memory regions \(j) and \(i) overlap in the frontend's addresses")
                }
            }
        }
    }

    /// Maps each region from its fd (the fds are closed either way: a mapping
    /// keeps the memory). Refuses a table that does not validate or a file
    /// that cannot be mapped.
    public init(table: [VhostMemoryRegion], fds: [Int32]) throws(VhostUserError) {
        defer { for fd in fds { close(fd) } }
        try Self.validate(table)
        guard fds.count == table.count else { throw VhostUserError("\(table.count) regions, \(fds.count) file descriptors") }
        var mapped: [Mapped] = []
        for (r, fd) in zip(table, fds) {
            let needed = Int(r.mmapOffset + r.size)
            // Mapping past a file's end succeeds, and the first access there
            // kills the process (SIGBUS): refuse it up front. (A file shrunk
            // later is caught by the SIGBUS guard below.)
            var st = stat()
            let known = fstat(fd, &st) == 0
            if known, (st.st_mode & S_IFMT) == S_IFREG, UInt64(st.st_size) < UInt64(needed) {
                Self.unmap(mapped)
                throw VhostUserError("cannot map memory region at guest 0x\(String(r.guestAddress, radix: 16)): it ends \(needed) bytes into a file of \(st.st_size)")
            }
            // hugetlbfs maps whole huge pages (its block size); so must munmap,
            // and the SIGBUS guard repairs whole pages of that size.
            let page = cvhost_mapping_page(fd)
            let length = (needed + page - 1) / page * page
            guard let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
                let reason = String(cString: strerror(errno))
                Self.unmap(mapped)
                throw VhostUserError("cannot map memory region at guest 0x\(String(r.guestAddress, radix: 16)) (+0x\(String(r.size, radix: 16)) bytes, file offset 0x\(String(r.mmapOffset, radix: 16))): \(reason)")
            }
            _ = cvhost_guard(p, length, page)
            mapped.append(Mapped(region: r, host: p + Int(r.mmapOffset), mapping: p, mappingLength: length))
        }
        regions = .allocate(capacity: mapped.count)
        _ = regions.initialize(from: mapped)
    }

    deinit {
        Self.unmap(regions)
        regions.deinitialize().deallocate()
    }

    static func unmap(_ mappings: some Sequence<Mapped>) {
        for m in mappings {
            cvhost_unguard(m.mapping)
            munmap(m.mapping, m.mappingLength)
        }
    }

    /// Accesses since the last call that found their file shrunk under them
    /// (they read zeros; see `cvhost_guard`), for the backend to end the session.
    public static func takeTruncationFaults() -> Int { Int(cvhost_guard_faults()) }

    /// The table as mapped.
    public var table: [VhostMemoryRegion] { regions.map(\.region) }

    /// Host address of `count` bytes at guest-physical `address`, or nil.
    @inline(__always)
    func host(_ address: UInt64, _ count: Int) -> UnsafeMutableRawPointer? {
        for i in 0..<regions.count {
            let r = regions[i].region
            if address >= r.guestAddress, address - r.guestAddress <= r.size, UInt64(count) <= r.size - (address - r.guestAddress) {
                return regions[i].host + Int(address - r.guestAddress)
            }
        }
        return nil
    }

    // The frontend's driver runs on another CPU while the device reads and
    // writes: ring indices and used elements move with one aligned load or
    // store of their width (a byte-wise copy could tear avail->idx or publish
    // a half-written used->idx, as a backend that zero-filled first did), as
    // rust-vmm's virtio-queue and the vhost-user notes require.

    @inline(__always)
    public func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) {
        guard let p = host(address, buffer.count) else { throw GuestMemoryError(address: address, length: buffer.count) }
        let to = buffer.baseAddress
        switch buffer.count {
        case 0: break
        case 2 where UInt(bitPattern: p) & 1 == 0: to!.storeBytes(of: p.load(as: UInt16.self), as: UInt16.self)
        case 4 where UInt(bitPattern: p) & 3 == 0: to!.storeBytes(of: p.load(as: UInt32.self), as: UInt32.self)
        case 8 where UInt(bitPattern: p) & 7 == 0: to!.storeBytes(of: p.load(as: UInt64.self), as: UInt64.self)
        case 16:  // a descriptor: two loads instead of a call to memmove
            to!.storeBytes(of: p.loadUnaligned(as: UInt64.self), as: UInt64.self)
            to!.storeBytes(of: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self), toByteOffset: 8, as: UInt64.self)
        default: to!.copyMemory(from: p, byteCount: buffer.count)
        }
    }

    @inline(__always)
    public func write(_ address: UInt64, from bytes: UnsafeRawBufferPointer) throws(GuestMemoryError) {
        guard let p = host(address, bytes.count) else { throw GuestMemoryError(address: address, length: bytes.count) }
        let from = bytes.baseAddress
        switch bytes.count {
        case 0: break
        case 2 where UInt(bitPattern: p) & 1 == 0: p.storeBytes(of: from!.loadUnaligned(as: UInt16.self), as: UInt16.self)
        case 4 where UInt(bitPattern: p) & 3 == 0: p.storeBytes(of: from!.loadUnaligned(as: UInt32.self), as: UInt32.self)
        case 8 where UInt(bitPattern: p) & 7 == 0: p.storeBytes(of: from!.loadUnaligned(as: UInt64.self), as: UInt64.self)
        default: p.copyMemory(from: from!, byteCount: bytes.count)
        }
    }

    @inline(__always)
    public func prefetch(_ address: UInt64, length: Int) {
        if let p = host(address, 1) { cvhost_prefetch(p, length) }
    }

    @inline(__always)
    public func peek(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        do throws(GuestMemoryError) {
            try read(address, into: buffer)
            return true
        } catch {
            return false
        }
    }

    /// The guest-physical address of a frontend address (ring addresses come
    /// as the frontend's own virtual addresses), or nil outside every region.
    public func guestAddress(ofFrontendAddress a: UInt64) -> UInt64? {
        Self.guestAddress(ofFrontendAddress: a, in: table)
    }

    public static func guestAddress(ofFrontendAddress a: UInt64, in table: [VhostMemoryRegion]) -> UInt64? {
        for r in table where a >= r.userAddress && a - r.userAddress < r.size {
            return r.guestAddress + (a - r.userAddress)
        }
        return nil
    }
}

/// The kinds of file descriptor a vhost-user frontend hands over, made the
/// way a frontend makes them (for tests, the fuzzer and tools playing one).
public enum VhostFiles {
    /// A non-blocking eventfd (a ring's kick or call), or -1.
    public static func eventFD() -> Int32 { cvhost_eventfd() }
    /// A memfd of `size` bytes (shared guest memory), or -1.
    public static func memoryFile(size: Int) -> Int32 { cvhost_memfd(size) }
}
