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

/// Whether `n` bytes at `a` and `b` are equal (from 4 to 64 bytes as
/// loads of each that may overlap, without a branch per word).
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
    case 17...32:
        return differences(a, b, 0, n &- 16) == .zero
    case 33...64:
        // A 64-byte frame (testpmd's, a minimum Ethernet frame) is the
        // commonest recalled payload: four overlapping 16-byte words, no call.
        return (differences(a, b, 0, 16) | differences(a, b, n &- 32, n &- 16)) == .zero
    default: return memcmp(a, b, n) == 0
    }
}

/// The bits in which the 16-byte words at offsets `i` and `j` of `a` and
/// `b` differ, or-ed together.
@inlinable @inline(__always)
func differences(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ i: Int, _ j: Int) -> SIMD2<UInt64> {
    (a.loadUnaligned(fromByteOffset: i, as: SIMD2<UInt64>.self) ^ b.loadUnaligned(fromByteOffset: i, as: SIMD2<UInt64>.self))
        | (a.loadUnaligned(fromByteOffset: j, as: SIMD2<UInt64>.self) ^ b.loadUnaligned(fromByteOffset: j, as: SIMD2<UInt64>.self))
}
