//! How device values map to the trace's plain integers, both ways.

import TraceFormat
import VirtioCore

extension NetCounter {
    /// Position in the canonical order (the trace's counter index), 0...15.
    @inlinable
    public var ordinal: Int {
        switch self {
        case .txPackets: return 0
        case .txBytes: return 1
        case .rxPackets: return 2
        case .rxBytes: return 3
        case .txDroppedNoRxBuffer: return 4
        case .txDroppedRxPoisoned: return 5
        case .txChainInvalid: return 6
        case .txOversizeDropped: return 7
        case .rxChainInvalid: return 8
        case .rxWriteFailed: return 9
        case .txAddUsedFailures: return 10
        case .rxAddUsedFailures: return 11
        case .invalidAvailIdxCount: return 12
        case .ctrlMqSet: return 13
        case .ctrlChainInvalid: return 14
        case .ctrlAddUsedFailures: return 15
        }
    }

    /// The counter at a trace counter index.
    public init?(ordinal: Int) {
        guard (0..<NetCounter.allCases.count).contains(ordinal) else { return nil }
        self = NetCounter.allCases[ordinal]
    }
}

/// Trace codes of queue errors (poison events): code, then details.
public enum PoisonCode {
    public static func encode(_ e: QueueError) -> (UInt64, [UInt64]) {
        switch e {
        case .notReady: return (0, [])
        case .invalidAvailRingIndex(let idx, let next, let size): return (1, [UInt64(idx), UInt64(next), UInt64(size)])
        case .invalidDescriptorIndex(let head): return (2, [UInt64(head)])
        case .addressOverflow: return (3, [])
        case .memory(let m): return (4, [m.address, UInt64(m.length)])
        }
    }

    public static func decode(_ code: UInt64, _ d: EventDetails) -> QueueError? {
        switch code {
        case 0: return .notReady
        case 1: return .invalidAvailRingIndex(availIdx: UInt16(truncatingIfNeeded: d.a), nextAvail: UInt16(truncatingIfNeeded: d.b), size: UInt16(truncatingIfNeeded: d.c))
        case 2: return .invalidDescriptorIndex(UInt16(truncatingIfNeeded: d.a))
        case 3: return .addressOverflow
        case 4: return .memory(GuestMemoryError(address: d.a, length: Int(truncatingIfNeeded: d.b)))
        default: return nil
        }
    }
}

/// Trace codes of device warnings.
public enum WarningCode {
    public static func encode(_ w: DeviceWarning) -> (UInt64, [UInt64]) {
        switch w {
        case .memoryNotBound: return (0, [])
        case .featuresRejected(let d, let o): return (1, [d, o])
        }
    }

    public static func decode(_ code: UInt64, _ d: EventDetails) -> DeviceWarning? {
        switch code {
        case 0: return .memoryNotBound
        case 1: return .featuresRejected(driverFeatures: d.a, offered: d.b)
        default: return nil
        }
    }
}

extension NICCheckpoint {
    /// The checkpoint of a device state; `accessEvent` numbers the access
    /// that began a paused drain (``VirtioNetState/drain``), if there is one.
    public init(_ s: VirtioNetState, memoryBound: Bool, accessEvent: UInt64 = 0) {
        self.init()
        drain = s.drain.map { DrainCheckpoint(queue: $0.queue, usedAdvanced: $0.usedAdvanced, accessEvent: accessEvent) }
        status = s.status.rawValue
        deviceFeaturesSel = s.deviceFeaturesSel
        driverFeaturesSel = s.driverFeaturesSel
        driverFeatures = s.driverFeatures
        queueSel = s.queueSel
        interruptStatus = s.interruptStatus.rawValue
        activeQueuePairs = s.activeQueuePairs
        self.memoryBound = memoryBound
        memoryWarningIssued = s.memoryWarningIssued
        interruptsRaised = s.interruptsRaised
        counters = s.counters.values
        queues = zip(s.queues, s.poisoned).map { q, p in
            var c = QueueCheckpoint()
            c.maxSize = q.maxSize
            c.size = q.size
            c.ready = q.ready
            c.poisoned = p
            c.descTable = q.descTable
            c.availRing = q.availRing
            c.usedRing = q.usedRing
            c.nextAvail = q.nextAvail
            c.nextUsed = q.nextUsed
            return c
        }
    }

    /// The device state this checkpoint describes, or nil if it is not one a
    /// device could be in (wrong queue count, sizes breaking the queue rules).
    public func deviceState(queueCount: Int) -> VirtioNetState? {
        guard queues.count == queueCount, counters.count == 16 else { return nil }
        var s = VirtioNetState(queueCount: queueCount)
        s.status = DeviceStatus(rawValue: status)
        s.deviceFeaturesSel = deviceFeaturesSel
        s.driverFeaturesSel = driverFeaturesSel
        s.driverFeatures = driverFeatures
        s.queueSel = queueSel
        s.interruptStatus = InterruptSignals(rawValue: interruptStatus)
        s.activeQueuePairs = activeQueuePairs
        s.memoryWarningIssued = memoryWarningIssued
        s.interruptsRaised = interruptsRaised
        s.counters = NetCounters(values: counters)!
        for (i, c) in queues.enumerated() {
            var q = SplitQueue(maxSize: c.maxSize)
            guard q.setSize(c.size), q.setDescTable(low: UInt32(truncatingIfNeeded: c.descTable), high: UInt32(truncatingIfNeeded: c.descTable >> 32)),
                  q.setAvailRing(low: UInt32(truncatingIfNeeded: c.availRing), high: UInt32(truncatingIfNeeded: c.availRing >> 32)),
                  q.setUsedRing(low: UInt32(truncatingIfNeeded: c.usedRing), high: UInt32(truncatingIfNeeded: c.usedRing >> 32))
            else { return nil }
            q.ready = c.ready
            q.nextAvail = c.nextAvail
            q.nextUsed = c.nextUsed
            s.queues[i] = q
            s.poisoned[i] = c.poisoned
        }
        if let d = drain {
            let position = DrainPosition(queue: d.queue, usedAdvanced: d.usedAdvanced)
            guard position.isOnDrainingQueue(queueCount: queueCount) else { return nil }
            s.drain = position
        }
        return s
    }
}

extension TraceHeader {
    /// A header describing `nics` devices built from `config` over `regions`.
    public init(config: NetConfig, nics: Int, offeredFeatures: UInt64, regions: [MemoryRegion]) {
        self.init()
        self.nics = nics
        queuePairs = Int(config.effectiveQueuePairs)
        mac = config.mac.array
        self.offeredFeatures = offeredFeatures
        maxQueueSize = Int(config.effectiveQueueMaxSize)
        memory = regions.map { TraceMemoryRegion(base: $0.base, size: $0.size) }
    }

    /// The device configuration the header describes.
    public var netConfig: NetConfig {
        NetConfig(mac: mac.count == 6 ? MACAddress(mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]) : .default, queuePairs: queuePairs,
                  queueMaxSize: UInt16(clamping: maxQueueSize))
    }
}
