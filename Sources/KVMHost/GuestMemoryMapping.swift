//! Guest RAM: one anonymous mapping, registered with KVM as slot 0 at
//! guest-physical 0, and the device core's view of it.

import VirtioCore
#if canImport(Glibc)
import Glibc
#endif

/// Owns the host mapping behind guest RAM [0, size).
///
/// The device core reads and writes it through ``GuestMemory`` with every
/// access bounds-checked; the VMM writes the page tables, the parameter
/// block and the guest image into it before the first KVM_RUN.
public final class GuestMemoryMapping: GuestMemory, @unchecked Sendable {
    /// Host address of guest-physical 0. SAFETY: valid for `size` bytes until deinit.
    public let base: UnsafeMutableRawPointer
    public let size: UInt64
    let system: any KVMSystem

    /// Maps `size` bytes of zeroed anonymous memory (reserved lazily, MAP_NORESERVE).
    public init(size: UInt64, system: any KVMSystem) throws(KVMError) {
        guard let p = system.mmap(length: Int(size), fd: nil) else {
            throw .call("mmap of \(size >> 20) MiB of guest RAM", errno: system.lastError)
        }
        base = p
        self.size = size
        self.system = system
    }

    deinit { system.munmap(base, length: Int(size)) }

    @inline(__always)
    func contains(_ address: UInt64, _ count: Int) -> Bool {
        address <= size && UInt64(count) <= size - address
    }

    public func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) {
        guard contains(address, buffer.count) else { throw GuestMemoryError(address: address, length: buffer.count) }
        if buffer.count > 0 { buffer.baseAddress!.copyMemory(from: base + Int(address), byteCount: buffer.count) }
    }

    public func write(_ address: UInt64, from bytes: UnsafeRawBufferPointer) throws(GuestMemoryError) {
        guard contains(address, bytes.count) else { throw GuestMemoryError(address: address, length: bytes.count) }
        if bytes.count > 0 { (base + Int(address)).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
    }

    /// Writes `bytes` at `address` (the VMM's own set-up writes; checked the same way).
    public func place(_ bytes: [UInt8], at address: UInt64) throws(GuestMemoryError) {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(GuestMemoryError) in try write(address, from: raw) } }
        try result.get()
    }

    /// Stores a little-endian 64-bit value (page-table entries, GDT descriptors).
    public func place64(_ value: UInt64, at address: UInt64) throws(GuestMemoryError) { try store(value, at: address) }
}
