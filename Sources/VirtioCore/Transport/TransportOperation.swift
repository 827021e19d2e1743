//! The second transport facade: vhost-user's ring set-up and kicks, applied
//! to the same device core the MMIO registers drive.

/// One thing a vhost-user frontend does to the device (already validated and
/// translated by the backend: ring addresses are guest-physical here).
///
/// The MMIO facade reaches the core through register writes; this one through
/// these operations. Both end in the same queue processing, counters and
/// observer reports, so a trace of either replays the same way, and the
/// device does not care whether a kick came from a QueueNotify write or an
/// eventfd.
public enum TransportOperation: Hashable, Sendable {
    /// SET_FEATURES: the driver's feature bits (the vhost-user-only
    /// PROTOCOL_FEATURES bit already removed).
    case setFeatures(UInt64)
    /// SET_VRING_NUM.
    case setRingSize(queue: UInt16, size: UInt16)
    /// SET_VRING_ADDR, translated to guest-physical addresses.
    case setRingAddresses(queue: UInt16, desc: UInt64, avail: UInt64, used: UInt64)
    /// SET_VRING_BASE: where the device resumes in the avail ring (and the used ring).
    case setRingBase(queue: UInt16, base: UInt16)
    /// SET_VRING_ENABLE.
    case enableRing(queue: UInt16, enabled: Bool)
    /// A kick: the queue's kick eventfd became readable.
    case kick(queue: UInt16)
    /// GET_VRING_BASE: the frontend stops the ring and asks where it stopped.
    case stopRing(queue: UInt16)
    /// RESET_OWNER / RESET_DEVICE, or the frontend going away.
    case reset

    /// The queue the operation names (0 for device-wide ones).
    public var queue: UInt16 {
        switch self {
        case .setFeatures, .reset: return 0
        case .setRingSize(let q, _), .setRingAddresses(let q, _, _, _), .setRingBase(let q, _),
             .enableRing(let q, _), .kick(let q), .stopRing(let q):
            return q
        }
    }

    /// `set-features 0x100000000`, `ring-addresses q1 desc 0x… avail 0x… used 0x…`, `kick q1`.
    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case .setFeatures(let f): return "set-features \(hex(f))"
        case .setRingSize(let q, let s): return "ring-size q\(q) \(s)"
        case .setRingAddresses(let q, let d, let a, let u): return "ring-addresses q\(q) desc \(hex(d)) avail \(hex(a)) used \(hex(u))"
        case .setRingBase(let q, let b): return "ring-base q\(q) \(b)"
        case .enableRing(let q, let e): return "ring-enable q\(q) \(e ? 1 : 0)"
        case .kick(let q): return "kick q\(q)"
        case .stopRing(let q): return "ring-stop q\(q)"
        case .reset: return "reset"
        }
    }
}

/// What an operation returned to the frontend, besides the interrupts.
public enum TransportReply: Hashable, Sendable {
    case none
    /// GET_VRING_BASE: the ring's next avail index.
    case ringBase(UInt16)
}

extension VirtioNetDevice {
    /// The feature bits a vhost-user frontend is offered (MAC and the control
    /// queue are the frontend's own business there: it answers config reads
    /// and handles the control queue itself, so only VERSION_1 and MQ remain).
    public var vhostOfferedFeatures: UInt64 { offeredFeatures & (NetFeature.version1 | NetFeature.mq) }

    /// Applies one vhost-user operation (spec: the second transport facade).
    ///
    /// - `setFeatures` walks the status through ACKNOWLEDGE, DRIVER and
    ///   FEATURES_OK as a driver would over MMIO, so features the device did
    ///   not offer (or no VERSION_1) set FAILED with the same warning.
    /// - Ring set-up and enabling apply at any time (the frontend owns the
    ///   ring; over vhost-user there is no configuration window); invalid
    ///   sizes and misaligned addresses are ignored, as over MMIO.
    /// - Once features are accepted and a ring is enabled, the status gets
    ///   DRIVER_OK; the active queue pairs follow the highest enabled pair.
    /// - A kick is a QueueNotify; a stopped ring stops being processed and
    ///   reports where it stopped.
    /// - Returns: the interrupts raised (one call-eventfd write each) and the reply.
    @discardableResult
    public mutating func apply(_ op: TransportOperation) -> (raised: InterruptSignals, reply: TransportReply) {
        if state.drain != nil { finishPausedDrain() }
        if Observer.observesAccessBoundaries { bus.observer.accessBegan(state: state) }
        bus.observer.transportOperation(op)
        let result = handle(op)
        if Observer.observesAccessBoundaries && state.drain == nil { bus.observer.accessEnded(state: state) }
        return result
    }

    mutating func handle(_ op: TransportOperation) -> (raised: InterruptSignals, reply: TransportReply) {
        let accepted: DeviceStatus = [.acknowledge, .driver, .featuresOK]
        let q = Int(op.queue)
        switch op {
        case .setFeatures(let features):
            // The same features again (QEMU repeats itself; a frontend may
            // resend them while the rings run) change nothing; anything else
            // starts over, as a driver's re-negotiation does.
            if state.status.isSuperset(of: accepted), !state.status.contains(.failed), features == state.driverFeatures { break }
            if state.status.rawValue != 0 { reset() }
            writeStatus(UInt32(DeviceStatus.acknowledge.rawValue))
            writeStatus(UInt32(DeviceStatus([.acknowledge, .driver]).rawValue))
            let old = state.driverFeatures
            state.driverFeatures = features
            if features != old { bus.observer.driverFeaturesChanged(from: old, to: features) }
            writeStatus(UInt32(accepted.rawValue))
            startIfReady()
        case .setRingSize(_, let size):
            guard q < state.queues.count else { break }
            state.queues[q].setSize(size)
        case .setRingAddresses(_, let desc, let avail, let used):
            guard q < state.queues.count else { break }
            state.queues[q].setDescTable(low: UInt32(truncatingIfNeeded: desc), high: UInt32(truncatingIfNeeded: desc >> 32))
            state.queues[q].setAvailRing(low: UInt32(truncatingIfNeeded: avail), high: UInt32(truncatingIfNeeded: avail >> 32))
            state.queues[q].setUsedRing(low: UInt32(truncatingIfNeeded: used), high: UInt32(truncatingIfNeeded: used >> 32))
        case .setRingBase(_, let base):
            guard q < state.queues.count else { break }
            state.queues[q].nextAvail = base
            state.queues[q].nextUsed = base
        case .enableRing(_, let enabled):
            guard q < state.queues.count else { break }
            state.queues[q].ready = enabled
            startIfReady()
            updateActivePairs()
        case .kick:
            guard q < state.queues.count, state.queues[q].ready else { break }
            return (notify(queue: UInt32(q)), .none)
        case .stopRing:
            guard q < state.queues.count else { return ([], .ringBase(0)) }
            state.queues[q].ready = false
            return ([], .ringBase(state.queues[q].nextAvail))
        case .reset:
            reset()
        }
        return ([], .none)
    }

    /// DRIVER_OK once features are accepted and a ring is enabled (over
    /// vhost-user the frontend enables rings before or after SET_FEATURES).
    mutating func startIfReady() {
        let accepted: DeviceStatus = [.acknowledge, .driver, .featuresOK]
        guard state.status == accepted, state.queues.contains(where: \.ready) else { return }
        writeStatus(UInt32(accepted.union(.driverOK).rawValue))
    }

    /// With MQ negotiated, the active pairs follow the highest pair with an enabled ring.
    mutating func updateActivePairs() {
        guard state.driverFeatures & NetFeature.mq != 0 else { return }
        var pairs: UInt16 = 1
        for p in 0..<Int(queuePairs) where state.queues[2 * p].ready || state.queues[2 * p + 1].ready {
            pairs = UInt16(p + 1)
        }
        if pairs != state.activeQueuePairs {
            let old = state.activeQueuePairs
            state.activeQueuePairs = pairs
            bus.observer.activeQueuePairsChanged(from: old, to: pairs)
        }
    }
}
