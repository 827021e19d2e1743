//! Guest physical memory as the device core sees it.

/// A guest-physical access that the memory could not serve.
///
/// Guest memory fails an access *as a whole*: if a single byte of the range is
/// unmapped, or the range runs past the end of the 64-bit address space, nothing
/// is read or written.
public struct GuestMemoryError: Error, Hashable, Sendable, CustomStringConvertible {
    /// First guest-physical address of the failed access.
    public var address: UInt64
    /// Length of the failed access in bytes.
    public var length: Int

    public init(address: UInt64, length: Int) {
        self.address = address
        self.length = length
    }

    public var description: String {
        "guest memory access of \(length) bytes at 0x\(String(address, radix: 16)) touches unmapped memory"
    }
}

/// The device core's only way to reach guest RAM.
///
/// The recorder implements it over the VMM's mapping, the replayer over the
/// recorded reads, tests over ``GuestRAM``. Accesses are all-or-nothing; a
/// zero-length access always succeeds and touches nothing. Multi-byte ring
/// fields are little-endian (virtio v1.2 §2.4: "the ring is little-endian").
///
/// Both methods are non-mutating: a memory is a *view* of storage that the
/// guest shares, as a pointer is.
public protocol GuestMemory {
    /// Copies `buffer.count` bytes starting at guest-physical `address` into `buffer`.
    /// - Throws: ``GuestMemoryError`` if any byte of the range is unmapped; then
    ///   `buffer` is left unspecified.
    func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(GuestMemoryError)

    /// Copies `bytes` to guest-physical `address`.
    /// - Throws: ``GuestMemoryError`` if any byte of the range is unmapped; then
    ///   nothing was written.
    func write(_ address: UInt64, from bytes: UnsafeRawBufferPointer) throws(GuestMemoryError)

    /// A hint: the device will soon read about `length` bytes at `address`.
    /// A memory shared with a driver on another CPU starts fetching them;
    /// others ignore it (the default). Never fails, never an access.
    func prefetch(_ address: UInt64, length: Int)

    /// Reads like ``read(_:into:)`` but only to steer ``prefetch(_:length:)``:
    /// not an access, never recorded, and nothing the device does may depend
    /// on what it returns. A memory that cannot (a replay's) returns false,
    /// the default.
    func peek(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool

    /// Sets `count` bytes at `address` to `byte`, all or nothing like
    /// ``write(_:from:)``. Drivers and tools zero buffers with it; the device
    /// never calls it. The default writes from a temporary buffer; a memory
    /// that can do better (``GuestRAM`` releases whole chunks) does.
    func fill(_ address: UInt64, count: Int, with byte: UInt8) throws(GuestMemoryError)
}

extension GuestMemory {
    @inlinable
    public func prefetch(_ address: UInt64, length: Int) {}

    @inlinable
    public func peek(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool { false }

    public func fill(_ address: UInt64, count: Int, with byte: UInt8) throws(GuestMemoryError) {
        let failure: GuestMemoryError? = withUnsafeTemporaryAllocation(byteCount: count, alignment: 16) { raw in
            raw.initializeMemory(as: UInt8.self, repeating: byte)
            do throws(GuestMemoryError) { try write(address, from: UnsafeRawBufferPointer(raw)) } catch { return error }
            return nil
        }
        if let failure { throw failure }
    }
}

extension GuestMemory {
    /// Reads a little-endian integer of `T`'s width at `address`.
    @inlinable
    public func load<T: FixedWidthInteger>(_: T.Type = T.self, at address: UInt64) throws(GuestMemoryError) -> T {
        var value = T.zero
        try withUnsafeMutableBytes(of: &value) { (raw) throws(GuestMemoryError) in
            try read(address, into: raw)
        }
        return T(littleEndian: value)
    }

    /// Writes `value` little-endian at `address`.
    @inlinable
    public func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws(GuestMemoryError) {
        var le = value.littleEndian
        try withUnsafeBytes(of: &le) { (raw) throws(GuestMemoryError) in
            try write(address, from: raw)
        }
    }

    /// Reads `count` bytes at `address` into a new array. For tests and tools,
    /// not for the device's hot path.
    public func bytes(at address: UInt64, count: Int) throws(GuestMemoryError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var failure: GuestMemoryError?
        out.withUnsafeMutableBytes { raw in
            do throws(GuestMemoryError) { try read(address, into: raw) } catch { failure = error }
        }
        if let failure { throw failure }
        return out
    }

    /// Writes `bytes` at `address`. For tests and tools.
    public func write(_ address: UInt64, bytes: [UInt8]) throws(GuestMemoryError) {
        var failure: GuestMemoryError?
        bytes.withUnsafeBytes { raw in
            do throws(GuestMemoryError) { try write(address, from: raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }
}
