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
        var ok = false
        do throws(GuestMemoryError) {
            // Optional chaining borrows the stored reference: no retain/release per access.
            ok = try memory?.read(address, into: buffer) != nil
        } catch {}
        observer.memoryRead(address: address, bytes: UnsafeRawBufferPointer(buffer), succeeded: ok)
        return ok
    }

    /// Writes `bytes`; false (reported) when the memory refused.
    mutating func write(_ address: UInt64, from bytes: UnsafeRawBufferPointer) -> Bool {
        var ok = false
        do throws(GuestMemoryError) {
            ok = try memory?.write(address, from: bytes) != nil
        } catch {}
        observer.memoryWrite(address: address, bytes: bytes, succeeded: ok)
        return ok
    }

    /// Reads a little-endian integer.
    mutating func load<T: FixedWidthInteger>(_: T.Type, at address: UInt64) -> T? {
        var value = T.zero
        let ok = withUnsafeMutableBytes(of: &value) { read(address, into: $0) }
        return ok ? T(littleEndian: value) : nil
    }

    /// Writes a little-endian integer.
    mutating func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) -> Bool {
        var le = value.littleEndian
        return withUnsafeBytes(of: &le) { write(address, from: $0) }
    }
}
