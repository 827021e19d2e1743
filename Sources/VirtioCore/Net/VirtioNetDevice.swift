//! The virtio-mmio virtio-net loopback device: the transport half (spec §2).

/// A loopback virtio-net NIC on virtio-mmio, with the ktstr VMM's semantics.
///
/// The VMM forwards each MMIO access to ``read(offset:width:)`` or
/// ``write(offset:width:value:)``. Everything a queue kick causes happens inside
/// that QueueNotify write (spec decision 3), so each device action has exactly
/// one cause. The device reaches guest memory only through `Memory`, reports
/// every action to `Observer`, and never reads a clock, a random number or the
/// environment: given the same accesses and the same memory contents it does
/// the same thing, which is what makes replay possible.
///
/// Generic rather than existential so the hot path is specialised: with
/// ``NoObserver`` the observation calls vanish.
public struct VirtioNetDevice<Memory: GuestMemory, Observer: DeviceObserver> {
    /// How the device was built.
    public let config: NetConfig
    /// Queue pairs after clamping to 1...256.
    public let queuePairs: UInt16
    /// Feature bits offered: VERSION_1 | MAC, plus MQ | CTRL_VQ when pairs > 1 (spec decision 1).
    public let offeredFeatures: UInt64
    /// Registers, queues, poison flags, counters.
    public internal(set) var state: VirtioNetState
    /// Guest memory and the observer.
    public var bus: DeviceBus<Memory, Observer>
    /// Eventfd writes made so far (each raised interrupt is one). Not reset by STATUS = 0,
    /// as the reference does not drain its eventfd on reset.
    public var interruptsRaised: UInt64 { state.interruptsRaised }

    /// TX capture buffer, MAX_FRAME_SIZE bytes, allocated once.
    var frame: [UInt8]
    /// Descriptors of the chain being processed, reused across chains.
    var chain: [Descriptor] = []
    /// Faults injected on purpose (none by default).
    public let faults: DeviceFaults
    var faultProgress = FaultProgress()

    /// Builds a device.
    /// - Parameters:
    ///   - config: MAC and queue pairs (clamped to 1...256).
    ///   - memory: guest memory, or nil to bind it later (kicks are ignored until then).
    ///   - observer: receives every action.
    public init(config: NetConfig = NetConfig(), memory: Memory?, observer: Observer, faults: DeviceFaults = DeviceFaults()) {
        self.config = config
        self.faults = faults
        queuePairs = config.effectiveQueuePairs
        var offered = NetFeature.version1 | NetFeature.mac
        if queuePairs > 1 { offered |= NetFeature.mq | NetFeature.ctrlVQ }
        offeredFeatures = offered
        state = VirtioNetState(queueCount: config.queueCount, maxSize: config.effectiveQueueMaxSize)
        bus = DeviceBus(memory: memory, observer: observer)
        frame = [UInt8](repeating: 0, count: NetLayout.maxFrameSize)
        chain.reserveCapacity(Int(min(config.effectiveQueueMaxSize, 1024)))
    }

    /// Guest memory (nil until bound). Binding and unbinding are reported to
    /// the observer: they change what the device does with the next kick.
    public var memory: Memory? {
        get { bus.memory }
        set {
            let was = bus.memory != nil
            bus.memory = newValue
            if was != (newValue != nil) { bus.observer.memoryBindingChanged(bound: newValue != nil) }
        }
    }

    /// The observer.
    public var observer: Observer {
        get { bus.observer }
        _modify { yield &bus.observer }
    }

    /// Counter values now.
    public var counters: NetCounters { state.counters }

    /// Number of queues (2 per pair, plus the control queue when pairs > 1).
    public var queueCount: Int { state.queues.count }

    /// Index of the control queue, when there is one.
    public var controlQueueIndex: Int? { queuePairs > 1 ? Int(queuePairs) * 2 : nil }

    /// Replaces the state wholesale, e.g. from a trace checkpoint.
    /// - Returns: false (and changes nothing) if `newState` has a different queue count.
    @discardableResult
    public mutating func restore(_ newState: VirtioNetState) -> Bool {
        guard newState.queues.count == state.queues.count, newState.poisoned.count == state.queues.count else {
            return false
        }
        state = newState
        return true
    }

    // MARK: Config space (spec §2.10)

    /// The 12 populated bytes of config space.
    public var configSpace: [UInt8] {
        let pairs: UInt16 = queuePairs > 1 ? queuePairs : 0
        return config.mac.array + [0, 0, UInt8(pairs & 0xff), UInt8(pairs >> 8), 0, 0]
    }

    func configByte(_ index: UInt64) -> UInt8 {
        guard index < UInt64(NetLayout.configSize) else { return 0 }
        if index < 6 { return config.mac.array[Int(index)] }
        let pairs: UInt16 = queuePairs > 1 ? queuePairs : 0
        switch index {
        case 8: return UInt8(pairs & 0xff)
        case 9: return UInt8(pairs >> 8)
        default: return 0
        }
    }

    // MARK: MMIO

    /// Serves an MMIO read of `width` bytes (1...8) at window `offset`.
    ///
    /// Config space (offset >= 0x100) serves any width byte by byte. Below it
    /// only 4-byte reads decode; any other width reads as all-ones (spec §2.2).
    /// A width outside 1...8 reads 0. Reads have no side effects.
    public mutating func read(offset: UInt64, width: Int) -> UInt64 {
        if state.drain != nil { finishPausedDrain() }
        if Observer.observesAccessBoundaries { bus.observer.accessBegan(state: state) }
        let value = readValue(offset: offset, width: width)
        bus.observer.mmioRead(offset: offset, width: width, value: value)
        if Observer.observesAccessBoundaries { bus.observer.accessEnded(state: state) }
        return value
    }

    func readValue(offset: UInt64, width: Int) -> UInt64 {
        guard (1...8).contains(width) else { return 0 }
        if offset >= MMIOLayout.configOffset {
            var v: UInt64 = 0
            for i in 0..<width {
                let (o, overflow) = offset.addingReportingOverflow(UInt64(i))
                let byte = overflow ? 0 : configByte(o - MMIOLayout.configOffset)
                v |= UInt64(byte) << (8 * UInt64(i))
            }
            return v
        }
        guard width == 4 else { return width == 8 ? .max : (1 << (8 * UInt64(width))) - 1 }
        return UInt64(registerValue(offset))
    }

    func registerValue(_ offset: UInt64) -> UInt32 {
        guard let register = MMIORegister(rawValue: offset) else { return 0 }
        switch register {
        case .magicValue: return MMIOLayout.magic
        case .version: return MMIOLayout.version
        case .deviceID: return MMIOLayout.netDeviceID
        case .vendorID: return MMIOLayout.vendorID
        case .deviceFeatures:
            switch state.deviceFeaturesSel {
            case 0: return UInt32(truncatingIfNeeded: offeredFeatures)
            case 1: return UInt32(truncatingIfNeeded: offeredFeatures >> 32)
            default: return 0
            }
        case .queueNumMax:
            return selectedQueue == nil ? 0 : UInt32(config.effectiveQueueMaxSize)
        case .queueReady:
            guard let q = selectedQueue else { return 0 }
            return state.queues[q].ready ? 1 : 0
        case .interruptStatus: return state.interruptStatus.rawValue
        case .status: return UInt32(state.status.rawValue)
        case .configGeneration: return 0
        default: return 0  // write-only registers read 0
        }
    }

    var selectedQueue: Int? {
        let q = Int(state.queueSel)
        return q < state.queues.count ? q : nil
    }

    /// Handles an MMIO write of `width` bytes (1...8) of `value` at window `offset`.
    ///
    /// Config-space writes and writes of any width but 4 below 0x100 are
    /// ignored (spec §2.2). A QueueNotify write runs the queue's whole drain
    /// before returning, unless the observer pauses it between two chains
    /// (``DeviceObserver/drainBoundary(_:)``); a paused drain is finished
    /// before any later access.
    ///
    /// - Returns: the interrupts raised by this write, each one eventfd write
    ///   for the VMM to deliver: `.vring` (used rings advanced), then `.config`
    ///   (a data queue was poisoned; NEEDS_RESET is set).
    @discardableResult
    public mutating func write(offset: UInt64, width: Int, value: UInt64) -> InterruptSignals {
        if state.drain != nil { finishPausedDrain() }
        if Observer.observesAccessBoundaries { bus.observer.accessBegan(state: state) }
        bus.observer.mmioWrite(offset: offset, width: width, value: value)
        let raised = handleWrite(offset: offset, width: width, value: value)
        // A drain the observer paused leaves the access open (``resumeDrain()``).
        if Observer.observesAccessBoundaries && state.drain == nil { bus.observer.accessEnded(state: state) }
        return raised
    }

    mutating func handleWrite(offset: UInt64, width: Int, value: UInt64) -> InterruptSignals {
        guard width == 4, offset < MMIOLayout.configOffset, let register = MMIORegister(rawValue: offset) else {
            return []
        }
        let v = UInt32(truncatingIfNeeded: value)
        switch register {
        case .deviceFeaturesSel: state.deviceFeaturesSel = v
        case .driverFeaturesSel: state.driverFeaturesSel = v
        case .driverFeatures: writeDriverFeatures(v)
        case .queueSel: state.queueSel = v
        case .queueNum: configureQueue { $0.setSize(UInt16(truncatingIfNeeded: v)) }
        case .queueReady: configureQueue { $0.ready = (v == 1) }
        case .queueDescLow: configureQueue { $0.setDescTable(low: v) }
        case .queueDescHigh: configureQueue { $0.setDescTable(high: v) }
        case .queueDriverLow: configureQueue { $0.setAvailRing(low: v) }
        case .queueDriverHigh: configureQueue { $0.setAvailRing(high: v) }
        case .queueDeviceLow: configureQueue { $0.setUsedRing(low: v) }
        case .queueDeviceHigh: configureQueue { $0.setUsedRing(high: v) }
        case .interruptACK: state.interruptStatus.remove(InterruptSignals(rawValue: v))
        case .status: writeStatus(v)
        case .queueNotify: return notify(queue: v)
        default: break  // read-only and unknown registers ignore writes
        }
        return []
    }

    /// Applies `change` to the selected queue if the queue-configuration window
    /// is open: ACKNOWLEDGE|DRIVER|FEATURES_OK set and DRIVER_OK not set (spec §2.3).
    mutating func configureQueue(_ change: (inout SplitQueue) -> Void) {
        let needed: DeviceStatus = [.acknowledge, .driver, .featuresOK]
        guard state.status.isSuperset(of: needed), !state.status.contains(.driverOK) else { return }
        guard let q = selectedQueue else { return }
        change(&state.queues[q])
    }

    mutating func writeDriverFeatures(_ v: UInt32) {
        // Writable only between DRIVER and FEATURES_OK (spec §2.3).
        guard state.status.contains(.driver), !state.status.contains(.featuresOK) else { return }
        let old = state.driverFeatures
        switch state.driverFeaturesSel {
        case 0: state.driverFeatures = (old & 0xFFFF_FFFF_0000_0000) | UInt64(v)
        case 1: state.driverFeatures = (old & 0x0000_0000_FFFF_FFFF) | (UInt64(v) << 32)
        default: return
        }
        if state.driverFeatures != old {
            bus.observer.driverFeaturesChanged(from: old, to: state.driverFeatures)
        }
    }

    /// The status state machine (spec §2.4): 0 resets; otherwise exactly one
    /// row of ``DeviceStatus/transitions`` must match, and FEATURES_OK is
    /// validated against the offered features.
    mutating func writeStatus(_ value: UInt32) {
        if value == 0 {
            reset()
            return
        }
        let current = UInt32(state.status.rawValue)
        // Bits above the byte are never valid; such a write adds "new bits"
        // no transition has, so it is refused like any other bad transition.
        guard value & current == current else { return }
        let added = value & ~current
        guard
            DeviceStatus.transitions.contains(where: {
                UInt32($0.from.rawValue) == current && UInt32($0.adds.rawValue) == added
            })
        else { return }
        let old = state.status
        if added == UInt32(DeviceStatus.featuresOK.rawValue) {
            let features = state.driverFeatures
            if features & ~offeredFeatures != 0 || features & NetFeature.version1 == 0 {
                state.status.insert(.failed)
                bus.observer.warning(.featuresRejected(driverFeatures: features, offered: offeredFeatures))
                bus.observer.statusChanged(from: old.rawValue, to: state.status.rawValue)
                return
            }
        }
        state.status = DeviceStatus(rawValue: UInt8(value))
        bus.observer.statusChanged(from: old.rawValue, to: state.status.rawValue)
    }

    /// STATUS = 0 (spec §2.8): clears transport state, queues and poison;
    /// keeps counters, config and the memory binding.
    public mutating func reset() {
        let oldStatus = state.status
        let oldPairs = state.activeQueuePairs
        let oldFeatures = state.driverFeatures
        let kept = state
        state = VirtioNetState(queueCount: state.queues.count, maxSize: config.effectiveQueueMaxSize)
        state.counters = kept.counters
        state.interruptsRaised = kept.interruptsRaised
        state.memoryWarningIssued = kept.memoryWarningIssued
        if oldFeatures != 0 { bus.observer.driverFeaturesChanged(from: oldFeatures, to: 0) }
        if oldPairs != 1 { bus.observer.activeQueuePairsChanged(from: oldPairs, to: 1) }
        if oldStatus != [] { bus.observer.statusChanged(from: oldStatus.rawValue, to: 0) }
        bus.observer.deviceReset()
    }

    // MARK: Shared helpers for the queue paths

    /// Adds `delta` to `counter` (wrapping, as the reference's fetch_add) and reports the new value.
    @inline(__always)
    mutating func bump(_ counter: NetCounter, by delta: UInt64 = 1) {
        guard delta != 0 else { return }
        var delta = delta
        if let twice = faults.countTwice, twice.counter == counter {
            faultProgress.counterBumps += 1
            if faultProgress.counterBumps == twice.bump { delta &*= 2 }
        }
        let value = state.counters.add(delta, to: counter)
        bus.observer.counterChanged(counter, value: value)
    }

    /// Marks `queue` poisoned (the false → true transition only) and counts it.
    /// - Returns: false when the no-poison fault ignores the error.
    @discardableResult
    mutating func poison(_ queue: Int, _ error: QueueError) -> Bool {
        if faults.noPoison { return false }
        guard !state.poisoned[queue] else { return true }
        state.poisoned[queue] = true
        bump(.invalidAvailIdxCount)
        bus.observer.queuePoisoned(queue: UInt16(queue), error: error)
        return true
    }

    /// One eventfd write for `kind`, after setting its InterruptStatus bit.
    mutating func raise(_ kind: InterruptSignals) {
        state.interruptStatus.insert(kind)
        state.interruptsRaised &+= 1
        bus.observer.interruptRaised(kind)
    }

    /// Pops `queue` and walks the chain into `chain`, reporting it.
    mutating func popChain(_ queue: Int) throws(QueueError) -> UInt16? {
        guard let head = try state.queues[queue].pop(&bus) else { return nil }
        state.queues[queue].walkChain(head: head, &bus, into: &chain)
        Self.report(&chain, queue: UInt16(queue), head: head, to: &bus)
        return head
    }

    /// The chain event. Both as inout parameters, so the compiler knows the
    /// observer cannot reach the chain's storage: no retain and release of
    /// it around every chain.
    @inline(__always)
    static func report(_ chain: inout [Descriptor], queue: UInt16, head: UInt16, to bus: inout DeviceBus<Memory, Observer>) {
        chain.withUnsafeBufferPointer { bus.observer.chainPopped(queue: queue, head: head, descriptors: $0) }
    }

    /// Writes `range` of the frame at `address`. Both as inout parameters
    /// (as `report`), so the compiler knows the memory cannot reach the
    /// frame's storage: no retain and release of it (two atomic operations)
    /// around every piece written.
    @inline(__always)
    static func writePiece(_ frame: inout [UInt8], _ range: Range<Int>, at address: UInt64,
                           to bus: inout DeviceBus<Memory, Observer>) -> Bool {
        frame.withUnsafeBytes { raw in
            bus.writeFrame(address, from: UnsafeRawBufferPointer(rebasing: raw[range]), frameOffset: range.lowerBound)
        }
    }

    /// Publishes {head, len} on `queue`; true on success (reported).
    mutating func publishUsed(_ queue: Int, head: UInt16, len: UInt32) -> Bool {
        if let n = faults.skipUsed {
            faultProgress.usedPublishes += 1
            if faultProgress.usedPublishes == n { return true }  // the fault: believe it was published
        }
        do throws(QueueError) {
            try state.queues[queue].addUsed(&bus, head: head, len: len)
        } catch {
            return false
        }
        bus.observer.usedPublished(queue: UInt16(queue), id: UInt32(head), len: len)
        return true
    }
}

extension VirtioNetDevice where Observer == NoObserver {
    /// A device with no observer.
    public init(config: NetConfig = NetConfig(), memory: Memory?, faults: DeviceFaults = DeviceFaults()) {
        self.init(config: config, memory: memory, observer: NoObserver(), faults: faults)
    }
}
