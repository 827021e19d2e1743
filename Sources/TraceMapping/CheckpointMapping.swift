//! A device state as a trace checkpoint, and back.

import TraceFormat
import VirtioCore

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
        // Active pairs run from 1 to the NIC's pairs (2p + 1 queues with a control queue, else 2).
        guard queues.count == queueCount, counters.count == 16,
              activeQueuePairs >= 1, Int(activeQueuePairs) <= max(1, queueCount / 2) else { return nil }
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
