//! Copying and comparing access payloads: the device's small accesses (ring
//! indices, used elements, descriptors: 2, 4, 8 and 16 bytes) inline, frames
//! through libc. One definition for the recorder's encoder and the replay's
//! memory, both on their hot paths.

#if canImport(Glibc)
import Glibc
#endif

/// Copies `n` bytes from `from` to `to` (the ranges do not overlap).
@inlinable @inline(__always)
public func copyBytes(from: UnsafeRawPointer, to: UnsafeMutableRawPointer, count n: Int) {
    switch n {
    case 2: to.storeBytes(of: from.loadUnaligned(as: UInt16.self), as: UInt16.self)
    case 4: to.storeBytes(of: from.loadUnaligned(as: UInt32.self), as: UInt32.self)
    case 8: to.storeBytes(of: from.loadUnaligned(as: UInt64.self), as: UInt64.self)
    case 16:
        to.storeBytes(of: from.loadUnaligned(as: UInt64.self), as: UInt64.self)
        to.storeBytes(of: from.loadUnaligned(fromByteOffset: 8, as: UInt64.self), toByteOffset: 8, as: UInt64.self)
    default: to.copyMemory(from: from, byteCount: n)
    }
}

/// Whether `n` bytes at `a` and `b` are equal.
@inlinable @inline(__always)
public func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    switch n {
    case 2: return a.loadUnaligned(as: UInt16.self) == b.loadUnaligned(as: UInt16.self)
    case 4: return a.loadUnaligned(as: UInt32.self) == b.loadUnaligned(as: UInt32.self)
    case 8: return a.loadUnaligned(as: UInt64.self) == b.loadUnaligned(as: UInt64.self)
    case 64...: return memcmp(a, b, n) == 0
    default:
        var i = 0
        while i + 8 <= n {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) { return false }
            i += 8
        }
        while i < n {
            if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
            i += 1
        }
        return true
    }
}
