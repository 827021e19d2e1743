//! The driver's view of a virtqueue: where its rings are, which descriptors
//! are free, which chains are in flight and with what buffers, and what came
//! back used.

import VirtioCore

/// One descriptor of a raw chain: a guest address, a length, a direction.
public struct RawDescriptor: Hashable, Sendable {
    public var addr: UInt64
    public var len: UInt32
    /// Device-writable (VIRTQ_DESC_F_WRITE).
    public var writable: Bool
    /// Extra flag bits to set (e.g. INDIRECT), beyond NEXT and WRITE.
    public var extraFlags: Descriptor.Flags

    public init(addr: UInt64, len: UInt32, writable: Bool = false, extraFlags: Descriptor.Flags = []) {
        self.addr = addr
        self.len = len
        self.writable = writable
        self.extraFlags = extraFlags
    }
}

/// A used element the driver reclaimed, with the buffers of its chain.
public struct UsedRecord: Hashable, Sendable {
    public var id: UInt32
    public var len: UInt32
    /// (address, length) of the chain's descriptors, in order; empty if the id
    /// named no chain the driver had in flight.
    public var buffers: [RawDescriptor]
}

/// Driver-side state of one virtqueue.
public struct DriverQueue: Sendable {
    public let index: Int
    public let size: UInt16
    public let desc: UInt64
    public let avail: UInt64
    public let used: UInt64
    /// The driver's avail.idx (what it has published).
    public internal(set) var availIdx: UInt16 = 0
    /// used.idx the driver has consumed up to.
    public internal(set) var lastUsed: UInt16 = 0
    /// Every used element reclaimed since the queue was set up, in order.
    public internal(set) var usedLog: [UsedRecord] = []
    /// Descriptors returned by reclaim, the most recent last (used first).
    var returnedDescriptors: [UInt16] = []
    /// Descriptors from here to `size` were never handed out.
    var neverUsed: Int = 0
    /// head → (descriptor indices, buffers the driver allocated, buffers as posted).
    var inFlight: [UInt16: (descs: [UInt16], allocations: [(UInt64, UInt64)], buffers: [RawDescriptor])] = [:]

    init(index: Int, size: UInt16, desc: UInt64, avail: UInt64, used: UInt64) {
        self.index = index
        self.size = size
        self.desc = desc
        self.avail = avail
        self.used = used
    }

    /// Descriptors not in flight.
    public var freeCount: Int { returnedDescriptors.count + Int(size) - neverUsed }

    /// Takes a free descriptor: the last one returned, else the lowest never
    /// used (so a fresh queue hands out 0, 1, 2, ...). The caller checked ``freeCount``.
    mutating func takeDescriptor() -> UInt16 {
        if let d = returnedDescriptors.popLast() { return d }
        neverUsed += 1
        return UInt16(neverUsed - 1)
    }
    /// Chains handed to the device and not yet seen used.
    public var inFlightCount: Int { inFlight.count }
    /// The buffers of the in-flight chain with head `head`, as posted.
    public func inFlightBuffers(head: UInt16) -> [RawDescriptor]? { inFlight[head]?.buffers }
}
