//! What a guest (or a driver model) talks to: a virtio-mmio window.

/// A device that serves MMIO accesses at offsets of its window.
public protocol MMIODevice {
    /// Serves a read of `width` bytes at window `offset`.
    mutating func read(offset: UInt64, width: Int) -> UInt64
    /// Handles a write; returns the interrupts (eventfd writes) it raised.
    @discardableResult
    mutating func write(offset: UInt64, width: Int, value: UInt64) -> InterruptSignals
}

extension VirtioNetDevice: MMIODevice {}

extension MMIODevice {
    /// A 4-byte register read.
    public mutating func read(_ register: MMIORegister) -> UInt32 {
        UInt32(truncatingIfNeeded: read(offset: register.rawValue, width: 4))
    }

    /// A 4-byte register write.
    @discardableResult
    public mutating func write(_ register: MMIORegister, _ value: UInt32) -> InterruptSignals {
        write(offset: register.rawValue, width: 4, value: UInt64(value))
    }
}
