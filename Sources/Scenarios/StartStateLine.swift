//! The `state` set-up line: a NIC that starts in a given state (a scenario
//! cut from a trace at a checkpoint), and its text.

import TraceFormat
import TraceMapping
import VirtioCore

/// `state nic=N status=0xf features=0x100000020 pairs=1 isr=0 irqs=5 ...
/// q1=256,1,0x102000,0x103000,0x103208,3,3,0 tx_packets=3 ...`: every field
/// of a trace checkpoint (docs/scenarios.md). Fields left out keep their
/// reset value; a queue is `qI=SIZE,READY,DESC,AVAIL,USED,NEXT_AVAIL,NEXT_USED,POISONED`.
enum StartStateLine {
    static let scalarKeys = ["status", "features", "features_sel", "driver_features_sel", "queue_sel", "isr", "pairs", "irqs",
                             "memory_warned", "bound"]

    /// The line for NIC `nic` in `checkpoint`'s state.
    static func text(nic: Int, _ c: NICCheckpoint) -> String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        var words = ["state", "nic=\(nic)", "status=\(hex(UInt64(c.status)))", "features=\(hex(c.driverFeatures))",
                     "features_sel=\(c.deviceFeaturesSel)", "driver_features_sel=\(c.driverFeaturesSel)", "queue_sel=\(c.queueSel)",
                     "isr=\(c.interruptStatus)", "pairs=\(c.activeQueuePairs)", "irqs=\(c.interruptsRaised)",
                     "memory_warned=\(c.memoryWarningIssued ? 1 : 0)", "bound=\(c.memoryBound ? 1 : 0)"]
        for (i, q) in c.queues.enumerated() where q != QueueCheckpoint.reset(maxSize: q.maxSize) {
            words.append("q\(i)=\(q.size),\(q.ready ? 1 : 0),\(hex(q.descTable)),\(hex(q.availRing)),\(hex(q.usedRing)),\(q.nextAvail),\(q.nextUsed),\(q.poisoned ? 1 : 0)")
        }
        for counter in NetCounter.allCases where c.counters[counter.ordinal] != 0 {
            words.append("\(counter.name)=\(c.counters[counter.ordinal])")
        }
        return words.joined(separator: " ")
    }
}

extension QueueCheckpoint {
    /// A queue as a reset device has it.
    static func reset(maxSize: UInt16) -> QueueCheckpoint {
        var q = QueueCheckpoint()
        q.maxSize = maxSize
        q.size = maxSize
        return q
    }
}

extension ParseState {
    /// `state nic=N ...`: builds the NIC's state as a checkpoint would and
    /// refuses one no device could be in.
    mutating func parseState(_ a: inout Arguments) throws(ScenarioError) {
        let nic = try a.int("nic", default: 0, range: 0...(setup.nics - 1))
        if setup.states[nic] != nil { throw a.error(nil, "a second 'state' for nic=\(nic)") }
        let queueCount = setup.netConfig.queueCount
        var c = NICCheckpoint()
        c.queues = (0..<queueCount).map { _ in QueueCheckpoint.reset(maxSize: setup.queueMaxSize) }
        c.status = UInt8(try a.int("status", default: 0, range: 0...255))
        c.driverFeatures = try a.optionalNumber("features") ?? 0
        c.deviceFeaturesSel = UInt32(try a.int("features_sel", default: 0, range: 0...Int(UInt32.max)))
        c.driverFeaturesSel = UInt32(try a.int("driver_features_sel", default: 0, range: 0...Int(UInt32.max)))
        c.queueSel = UInt32(try a.int("queue_sel", default: 0, range: 0...Int(UInt32.max)))
        c.interruptStatus = UInt32(try a.int("isr", default: 0, range: 0...3))
        c.activeQueuePairs = UInt16(try a.int("pairs", default: 1, range: 1...setup.queuePairs))
        c.interruptsRaised = try a.optionalNumber("irqs") ?? 0
        c.memoryWarningIssued = try a.int("memory_warned", default: 0, range: 0...1) == 1
        c.memoryBound = try a.int("bound", default: 1, range: 0...1) == 1
        for counter in NetCounter.allCases {
            if let v = try a.optionalNumber(counter.name) { c.counters[counter.ordinal] = v }
        }
        for i in 0..<queueCount {
            guard let t = a.take("q\(i)") else { continue }
            let fields = t.text.split(separator: ",", omittingEmptySubsequences: false)
            let v = fields.compactMap { parseNumber(String($0)) ?? nil }   // a field that is no number drops out
            guard fields.count == 8, v.count == 8, v[0] <= 32768, v[1] <= 1, v[5] <= 0xFFFF, v[6] <= 0xFFFF, v[7] <= 1 else {
                throw a.error(t, "q\(i)=\(t.text): want SIZE,READY,DESC,AVAIL,USED,NEXT_AVAIL,NEXT_USED,POISONED")
            }
            c.queues[i].size = UInt16(v[0])
            c.queues[i].ready = v[1] == 1
            c.queues[i].descTable = v[2]
            c.queues[i].availRing = v[3]
            c.queues[i].usedRing = v[4]
            c.queues[i].nextAvail = UInt16(v[5])
            c.queues[i].nextUsed = UInt16(v[6])
            c.queues[i].poisoned = v[7] == 1
        }
        guard let state = c.deviceState(queueCount: queueCount) else {
            throw a.error(nil, "no device can be in this state (a queue size that is not a power of two, misaligned rings)")
        }
        setup.states[nic] = StartState(state: state, memoryBound: c.memoryBound)
    }
}
