//! Everything the device remembers between MMIO accesses, as one value.

/// The full state of a ``VirtioNetDevice``: transport registers, every
/// queue, poison flags, active pairs and counters.
///
/// A value: two states compare equal exactly when the device would behave the
/// same from here on (given the same guest memory). Trace checkpoints store it;
/// a replayer restores it to start at any checkpoint.
public struct VirtioNetState: Hashable, Sendable, Codable {
    /// Device status byte.
    public var status: DeviceStatus = []
    /// DeviceFeaturesSel window.
    public var deviceFeaturesSel: UInt32 = 0
    /// DriverFeaturesSel window.
    public var driverFeaturesSel: UInt32 = 0
    /// Features the driver wrote (both halves).
    public var driverFeatures: UInt64 = 0
    /// QueueSel.
    public var queueSel: UInt32 = 0
    /// InterruptStatus bits.
    public var interruptStatus: InterruptSignals = []
    /// All queues: RX/TX of every pair, then the control queue when pairs > 1.
    public var queues: [SplitQueue]
    /// Per-queue poison flag, same indices as `queues` (spec §3.6).
    public var poisoned: [Bool]
    /// Pairs the TX path serves (1 until VQ_PAIRS_SET), in 1...queuePairs.
    public var activeQueuePairs: UInt16 = 1
    /// The 16 counters; survive reset.
    public var counters = NetCounters()
    /// Interrupts raised (eventfd writes) so far; survives reset, as the
    /// reference does not drain its eventfd on reset.
    public var interruptsRaised: UInt64 = 0
    /// Whether the device already warned that a kick came before guest
    /// memory was bound (the warning is given once per device; survives reset).
    public var memoryWarningIssued = false
    /// A drain paused between two chains (``VirtioNetDevice/resumeDrain()``);
    /// nil between accesses and in a running drain. Only an observer that
    /// asks for a pause leaves it set (see ``DeviceObserver/drainBoundary(_:)``).
    public var drain: DrainPosition?

    /// The state of a freshly built device with `queueCount` queues of at most `maxSize` entries.
    public init(queueCount: Int, maxSize: UInt16 = NetLayout.queueMaxSize) {
        queues = Array(repeating: SplitQueue(maxSize: maxSize), count: queueCount)
        poisoned = Array(repeating: false, count: queueCount)
    }
}
