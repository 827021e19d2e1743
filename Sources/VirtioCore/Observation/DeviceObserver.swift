//! The one interface through which recording and replay watch the device.

/// Interrupt kinds, as bits of InterruptStatus (virtio v1.2 §4.2.2).
public struct InterruptSignals: OptionSet, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// VIRTIO_MMIO_INT_VRING: a used ring advanced.
    public static let vring = InterruptSignals(rawValue: 1)
    /// VIRTIO_MMIO_INT_CONFIG: configuration (here: NEEDS_RESET) changed.
    public static let config = InterruptSignals(rawValue: 2)

    /// `vring`, `config`, `vring|config`, or `none`.
    public var description: String {
        var parts: [String] = []
        if contains(.vring) { parts.append("vring") }
        if contains(.config) { parts.append("config") }
        if rawValue & ~3 != 0 { parts.append("0x" + String(rawValue & ~3, radix: 16)) }
        return parts.isEmpty ? "none" : parts.joined(separator: "|")
    }
}

/// Receives every observable action of a ``VirtioNetDevice``, in the order it happens.
///
/// All methods have empty default implementations: an observer implements
/// what it needs. The device is generic over its observer, so with
/// ``NoObserver`` every call compiles away (see `vtrace-bench`).
///
/// Order within one MMIO access: a write is reported *before* its effects (it
/// is their cause); a read is reported once its value is known. Buffers passed
/// in are valid only during the call.
public protocol DeviceObserver {
    /// An MMIO read of `width` bytes at window offset `offset` returned `value`.
    mutating func mmioRead(offset: UInt64, width: Int, value: UInt64)
    /// An MMIO write of `width` bytes of `value` at window offset `offset`, before it takes effect.
    mutating func mmioWrite(offset: UInt64, width: Int, value: UInt64)
    /// The device read guest memory. `bytes.count` is the access length; the
    /// contents are what the device got, meaningful only when `succeeded`.
    mutating func memoryRead(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool)
    /// The device wrote `bytes` to guest memory (nothing was written unless `succeeded`).
    mutating func memoryWrite(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool)
    /// A ``memoryRead(address:bytes:succeeded:)`` of frame payload: a TX
    /// chain's bytes past the virtio-net header, `bytes` starting at byte
    /// `frameOffset` of the frame (a frame over several descriptors is read
    /// piece by piece). Reported as `memoryRead` unless the observer says
    /// otherwise (a recorder's snaplen).
    mutating func frameRead(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool, frameOffset: Int)
    /// A ``memoryWrite(address:bytes:succeeded:)`` of frame payload: the
    /// frame written into an RX chain past the header, `bytes` starting at
    /// byte `frameOffset` of the frame. Reported as `memoryWrite` by default.
    mutating func frameWrite(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool, frameOffset: Int)
    /// The device popped a chain from `queue`'s avail ring and walked it.
    /// `descriptors` are the ones the walk yielded (indirect tables expanded).
    mutating func chainPopped(queue: UInt16, head: UInt16, descriptors: UnsafeBufferPointer<Descriptor>)
    /// A used element was published on `queue` (used.idx stored).
    mutating func usedPublished(queue: UInt16, id: UInt32, len: UInt32)
    /// A counter took a new value.
    mutating func counterChanged(_ counter: NetCounter, value: UInt64)
    /// The device signalled the guest once (one eventfd write), for `kind`.
    mutating func interruptRaised(_ kind: InterruptSignals)
    /// `queue` became poisoned because of `error`.
    mutating func queuePoisoned(queue: UInt16, error: QueueError)
    /// The device status register changed.
    mutating func statusChanged(from old: UInt8, to new: UInt8)
    /// The driver-features word changed.
    mutating func driverFeaturesChanged(from old: UInt64, to new: UInt64)
    /// The number of active queue pairs changed (control queue VQ_PAIRS_SET).
    mutating func activeQueuePairsChanged(from old: UInt16, to new: UInt16)
    /// The device was reset (STATUS = 0 written); reported after the reset.
    mutating func deviceReset()
    /// Something the reference logs as a warning and otherwise ignores.
    mutating func warning(_ warning: DeviceWarning)
    /// The VMM bound (or unbound) guest memory.
    mutating func memoryBindingChanged(bound: Bool)
    /// A vhost-user frontend did `operation` (the second transport's cause,
    /// as an MMIO access is the first's), reported before its effects.
    mutating func transportOperation(_ operation: TransportOperation)
    /// Whether the device should call `accessBegan`/`accessEnded` (which pass
    /// its whole state). False by default, so observers that do not need the
    /// boundaries cost nothing for them.
    static var observesAccessBoundaries: Bool { get }
    /// An MMIO access is about to be handled; `state` is the device's state
    /// between accesses (a recorder's checkpoint).
    mutating func accessBegan(state: VirtioNetState)
    /// The MMIO access and everything it caused are done; `state` is the result.
    mutating func accessEnded(state: VirtioNetState)
    /// Whether the device should call `drainBoundary` between the chains of
    /// a drain. False by default.
    static var observesDrainBoundaries: Bool { get }
    /// A drain is between two chains (after one, before it pops the next),
    /// at `position`. The answer says what the device does:
    /// ``DrainBoundaryAction/goOn``; ``DrainBoundaryAction/pause`` (the
    /// access returns at once, without its end: no interrupt, no
    /// `accessEnded`; `state.drain` holds `position` and
    /// ``VirtioNetDevice/resumeDrain()`` goes on from here); or
    /// ``DrainBoundaryAction/checkpoint`` (the device calls
    /// `drainCheckpoint(state:)` with its whole state, then goes on).
    mutating func drainBoundary(_ position: DrainPosition) -> DrainBoundaryAction
    /// The device's state at a drain boundary (`state.drain` set), after
    /// `drainBoundary` asked for it: a recorder's mid-drain checkpoint.
    mutating func drainCheckpoint(state: VirtioNetState)
}

/// What an observer wants the device to do at a drain boundary.
public enum DrainBoundaryAction: Sendable {
    /// Go on with the next chain.
    case goOn
    /// Pause the drain here (a replayer at the end of its recorded events).
    case pause
    /// Report the whole state (`drainCheckpoint(state:)`), then go on.
    case checkpoint
}

extension DeviceObserver {
    @inlinable public mutating func mmioRead(offset: UInt64, width: Int, value: UInt64) {}
    @inlinable public mutating func mmioWrite(offset: UInt64, width: Int, value: UInt64) {}
    @inlinable public mutating func memoryRead(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {}
    @inlinable public mutating func memoryWrite(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {}
    @inlinable @inline(__always)
    public mutating func frameRead(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool, frameOffset: Int) {
        memoryRead(address: address, bytes: bytes, succeeded: succeeded)
    }
    @inlinable @inline(__always)
    public mutating func frameWrite(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool, frameOffset: Int) {
        memoryWrite(address: address, bytes: bytes, succeeded: succeeded)
    }
    @inlinable public mutating func chainPopped(queue: UInt16, head: UInt16, descriptors: UnsafeBufferPointer<Descriptor>) {}
    @inlinable public mutating func usedPublished(queue: UInt16, id: UInt32, len: UInt32) {}
    @inlinable public mutating func counterChanged(_ counter: NetCounter, value: UInt64) {}
    @inlinable public mutating func interruptRaised(_ kind: InterruptSignals) {}
    @inlinable public mutating func queuePoisoned(queue: UInt16, error: QueueError) {}
    @inlinable public mutating func statusChanged(from old: UInt8, to new: UInt8) {}
    @inlinable public mutating func driverFeaturesChanged(from old: UInt64, to new: UInt64) {}
    @inlinable public mutating func activeQueuePairsChanged(from old: UInt16, to new: UInt16) {}
    @inlinable public mutating func deviceReset() {}
    @inlinable public mutating func warning(_ warning: DeviceWarning) {}
    @inlinable public mutating func memoryBindingChanged(bound: Bool) {}
    @inlinable public mutating func transportOperation(_ operation: TransportOperation) {}
    @inlinable public static var observesAccessBoundaries: Bool { false }
    @inlinable public mutating func accessBegan(state: VirtioNetState) {}
    @inlinable public mutating func accessEnded(state: VirtioNetState) {}
    @inlinable public static var observesDrainBoundaries: Bool { false }
    @inlinable public mutating func drainBoundary(_ position: DrainPosition) -> DrainBoundaryAction { .goOn }
    @inlinable public mutating func drainCheckpoint(state: VirtioNetState) {}
}

/// The observer that observes nothing, at no cost.
public struct NoObserver: DeviceObserver, Sendable {
    @inlinable public init() {}
}

/// Conditions the reference device logs and otherwise ignores.
public enum DeviceWarning: Hashable, Sendable, CustomStringConvertible {
    /// A TX kick arrived before guest memory was bound (reported once per device).
    case memoryNotBound
    /// FEATURES_OK was refused; the device set FAILED.
    case featuresRejected(driverFeatures: UInt64, offered: UInt64)

    public var description: String {
        switch self {
        case .memoryNotBound: return "queue kick before guest memory was bound; ignored"
        case .featuresRejected(let d, let o):
            return "FEATURES_OK refused: driver features 0x\(String(d, radix: 16)), offered 0x\(String(o, radix: 16))"
        }
    }
}
