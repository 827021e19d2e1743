//! Guest memory plus the observer: every device access to guest memory goes through here.

/// The device's path to guest memory. It performs each access and reports it,
/// with its outcome, to the observer, so a recording holds every input the
/// device read and every output it wrote.
public struct DeviceBus<Memory: GuestMemory, Observer: DeviceObserver> {
    /// Guest memory, or nil before the VMM binds it (spec §3.3 precondition 2).
    public var memory: Memory?
    public var observer: Observer

    public init(memory: Memory?, observer: Observer) {
        self.memory = memory
        self.observer = observer
    }

    /// Reads into `buffer`; false (reported) when the memory refused.
    mutating func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        reportedRead(address, into: buffer)
    }

    /// Writes `bytes`; false (reported) when the memory refused.
    mutating func write(_ address: UInt64, from bytes: UnsafeRawBufferPointer) -> Bool {
        reportedWrite(address, from: bytes)
    }

    /// The read and its report, for ``read(_:into:)`` and the sized read.
    @inline(__always)
    mutating func reportedRead(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        let ok = fetch(address, into: buffer)
        observer.memoryRead(address: address, bytes: UnsafeRawBufferPointer(buffer), succeeded: ok)
        return ok
    }

    /// The write and its report, for ``write(_:from:)`` and the sized write.
    @inline(__always)
    mutating func reportedWrite(_ address: UInt64, from bytes: UnsafeRawBufferPointer) -> Bool {
        let ok = store(address, from: bytes)
        observer.memoryWrite(address: address, bytes: bytes, succeeded: ok)
        return ok
    }

    /// ``read(_:into:)`` of frame payload, `buffer` being the frame from
    /// byte `frameOffset` on (reported as such: ``DeviceObserver/frameRead(address:bytes:succeeded:frameOffset:)``).
    mutating func readFrame(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer, frameOffset: Int) -> Bool {
        let ok = fetch(address, into: buffer)
        observer.frameRead(address: address, bytes: UnsafeRawBufferPointer(buffer), succeeded: ok, frameOffset: frameOffset)
        return ok
    }

    /// ``write(_:from:)`` of frame payload, `bytes` being the frame from byte `frameOffset` on.
    mutating func writeFrame(_ address: UInt64, from bytes: UnsafeRawBufferPointer, frameOffset: Int) -> Bool {
        let ok = store(address, from: bytes)
        observer.frameWrite(address: address, bytes: bytes, succeeded: ok, frameOffset: frameOffset)
        return ok
    }

    /// The read itself, unreported. (Optional chaining borrows the stored
    /// reference: no retain/release per access.)
    @inline(__always)
    func fetch(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        (try? memory?.read(address, into: buffer)) != nil
    }

    /// The write itself, unreported.
    @inline(__always)
    func store(_ address: UInt64, from bytes: UnsafeRawBufferPointer) -> Bool {
        (try? memory?.write(address, from: bytes)) != nil
    }

    /// Reads a little-endian integer.
    mutating func load<T: FixedWidthInteger & BitwiseCopyable>(_: T.Type, at address: UInt64) -> T? {
        var value = T.zero
        return read(address, into: &value) ? T(littleEndian: value) : nil
    }

    /// Writes a little-endian integer.
    mutating func store<T: FixedWidthInteger & BitwiseCopyable>(_ value: T, at address: UInt64) -> Bool {
        write(address, from: value.littleEndian)
    }

    /// Reads `MemoryLayout<V>.size` bytes into `value` (a ring index, a
    /// descriptor); false (reported) when the memory refused. Inlined where
    /// the device reads ring indices and descriptors, so the memory's copy
    /// and the observer's record are compiled for that one size instead of
    /// dispatching on it per access as ``read(_:into:)`` must: serve's
    /// device thread −11% plain, −10% recording (docs/performance.md, issue
    /// 24). (Out of line, one function per size, the compiler merged the
    /// sizes back into one function that dispatched again.)
    @inline(__always)
    mutating func read<V: BitwiseCopyable>(_ address: UInt64, into value: inout V) -> Bool {
        withUnsafeMutableBytes(of: &value) { reportedRead(address, into: $0) }
    }

    /// Writes the `MemoryLayout<V>.size` bytes of `value` (a used element,
    /// a ring index), inlined as the sized read is.
    @inline(__always)
    mutating func write<V: BitwiseCopyable>(_ address: UInt64, from value: V) -> Bool {
        var value = value
        return withUnsafeBytes(of: &value) { reportedWrite(address, from: $0) }
    }
}
