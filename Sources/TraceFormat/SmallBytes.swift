//! Copying and comparing access payloads: the device's small accesses (ring
//! indices, used elements, descriptors: 2, 4, 8 and 16 bytes) inline, frames
//! through libc. One definition for the recorder's encoder and the replay's
//! memory, both on their hot paths.

#if canImport(Glibc)
import Glibc
#endif

/// Copies `n` bytes from `from` to `to` (the ranges do not overlap). From
/// 4 to 16 bytes (the 12-byte virtio-net header among them) as two loads
/// and stores that may overlap each other.
@inlinable @inline(__always)
public func copyBytes(from: UnsafeRawPointer, to: UnsafeMutableRawPointer, count n: Int) {
    switch n {
    case 2: to.storeBytes(of: from.loadUnaligned(as: UInt16.self), as: UInt16.self)
    case 4...7:
        let (head, tail) = (from.loadUnaligned(as: UInt32.self), from.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self))
        to.storeBytes(of: head, as: UInt32.self)
        to.storeBytes(of: tail, toByteOffset: n - 4, as: UInt32.self)
    case 8...16:
        let (head, tail) = (from.loadUnaligned(as: UInt64.self), from.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self))
        to.storeBytes(of: head, as: UInt64.self)
        to.storeBytes(of: tail, toByteOffset: n - 8, as: UInt64.self)
    default: to.copyMemory(from: from, byteCount: n)
    }
}

/// Whether `n` bytes at `a` and `b` are equal (from 4 to 16 bytes as two
/// loads of each that may overlap).
@inlinable @inline(__always)
public func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    switch n {
    case 2: return a.loadUnaligned(as: UInt16.self) == b.loadUnaligned(as: UInt16.self)
    case 4...7:
        return a.loadUnaligned(as: UInt32.self) == b.loadUnaligned(as: UInt32.self)
            && a.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self) == b.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
    case 8...16:
        return a.loadUnaligned(as: UInt64.self) == b.loadUnaligned(as: UInt64.self)
            && a.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self) == b.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
    case 17...63:
        var i = 0
        while i + 8 <= n {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
            i += 8
        }
        return i == n || a.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self) == b.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
    default: return memcmp(a, b, n) == 0
    }
}
