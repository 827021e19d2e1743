import Foundation
import GuestDriver
import Testing
import VirtioCore

@Suite("Counters")
struct CountersTests {
    @Test func namesAndOrderMatchTheSeed() {
        #expect(NetCounter.allCases.map(\.name) == [
            "tx_packets", "tx_bytes", "rx_packets", "rx_bytes", "tx_dropped_no_rx_buffer", "tx_dropped_rx_poisoned",
            "tx_chain_invalid", "tx_oversize_dropped", "rx_chain_invalid", "rx_write_failed", "tx_add_used_failures",
            "rx_add_used_failures", "invalid_avail_idx_count", "ctrl_mq_set", "ctrl_chain_invalid", "ctrl_add_used_failures",
        ])
        #expect(NetCounter(name: "rx_bytes") == .rxBytes)
        #expect(NetCounter(name: "rx_byte") == nil)
        #expect(NetCounter.ctrlAddUsedFailures.index == 15)
    }

    @Test func defaultIsAllZero() {
        #expect(NetCounters().values == [UInt64](repeating: 0, count: 16))
    }

    /// `add` moves exactly the counter it names, wrapping, and returns the
    /// value the subscript then reads.
    @Test func addMovesOneCounterAndReturnsItsValue() {
        for (i, c) in NetCounter.allCases.enumerated() {
            var s = NetCounters(values: (0..<16).map { UInt64($0) * 10 })!
            #expect(s.add(7, to: c) == UInt64(i) * 10 + 7)
            #expect(s.values == (0..<16).map { UInt64($0) * 10 + ($0 == i ? 7 : 0) })
            s[c] = .max
            #expect(s.add(2, to: c) == 1 && s[c] == 1)
        }
    }

    @Test func everyFieldIsIndependent() {
        for (i, c) in NetCounter.allCases.enumerated() {
            var s = NetCounters()
            s[c] = UInt64(i + 1) * 1000
            #expect(s.values == (0..<16).map { $0 == i ? UInt64(i + 1) * 1000 : 0 })
            #expect(s != NetCounters())
            #expect(s.nonZero.map(\.0) == [c])
        }
        #expect(NetCounters(values: [1, 2]) == nil)
        let v = (1...16).map { UInt64($0) }
        #expect(NetCounters(values: v)?.values == v)
    }

    @Test func jsonUsesSeedNamesAndKeepsU64Precision() throws {
        var s = NetCounters()
        s.txPackets = .max
        s.ctrlAddUsedFailures = 0x1234_5678_9ABC_DEF0
        let data = try JSONEncoder().encode(s)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"tx_packets\":18446744073709551615"))
        #expect(text.contains("\"ctrl_add_used_failures\":1311768467463790320"))
        #expect(try JSONDecoder().decode(NetCounters.self, from: data) == s)
    }

    @Test func aggregateOfNoneIsNilOfOneIsIdentity() {
        #expect(NetCounters.aggregate([]) == nil)
        var s = NetCounters()
        s.rxBytes = 7
        #expect(NetCounters.aggregate([s]) == s)
    }

    @Test func aggregateSumsEveryFieldAndSaturates() {
        let a = NetCounters(values: (1...16).map { UInt64($0) })!
        let b = NetCounters(values: (1...16).map { UInt64($0) * 100 })!
        #expect(NetCounters.aggregate([a, b])?.values == (1...16).map { UInt64($0) * 101 })
        let big = NetCounters(values: [UInt64](repeating: .max - 1, count: 16))!
        #expect(NetCounters.aggregate([big, a])?.values == [UInt64](repeating: .max, count: 16))
    }

    @Test func aggregateAcrossDevices() throws {
        let h1 = Harness.ready()
        let h2 = Harness.ready()
        try h1.postRx()
        try h1.sendTx()
        try h2.sendTx(length: 10)
        let total = NetCounters.aggregate([h1.counters, h2.counters])!
        #expect(total == counters([.txPackets: 2, .txBytes: 74, .rxPackets: 1, .rxBytes: 64, .txDroppedNoRxBuffer: 1]))
    }

    @Test func configCodableUsesSeedFieldNames() throws {
        let c = NetConfig(mac: MACAddress("52:54:00:ab:cd:ef")!, queuePairs: 3)
        let text = String(decoding: try JSONEncoder().encode(c), as: UTF8.self)
        #expect(text.contains("\"mac\":\"52:54:00:ab:cd:ef\"") && text.contains("\"queue_pairs\":3"))
        #expect(try JSONDecoder().decode(NetConfig.self, from: Data(text.utf8)) == c)
        #expect(MACAddress.default.description == "02:00:00:00:00:01")
        #expect(MACAddress.default.array[0] & 0x02 == 0x02 && MACAddress.default.array[0] & 0x01 == 0)
        #expect(MACAddress("02:00:00:00:00") == nil && MACAddress("zz:00:00:00:00:00") == nil)
    }

    @Test func deviceStateIsCodableAndRoundTrips() throws {
        let h = Harness.ready(pairs: 2)
        try h.setPairs(2)
        try h.postRx()
        try h.sendTx()
        let data = try JSONEncoder().encode(h.dev.state)
        #expect(try JSONDecoder().decode(VirtioNetState.self, from: data) == h.dev.state)
    }
}

@Suite("Queue poisoning (spec §3.6)")
struct PoisonTests {
    @Test func rxHostileAvailIdxPoisonsQueueAndSignals() throws {
        let h = Harness.ready()
        try h.drv.setAvailIdx(queue: 0, 1000)
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.txPackets: 1, .txBytes: 64, .txDroppedRxPoisoned: 1, .invalidAvailIdxCount: 1]))
        #expect(h.counters.rxPackets == 0)
        #expect(s.isr == 3 && h.status().contains(.needsReset))
        #expect(h.dev.state.poisoned == [true, false])
        let s2 = h.step { h.kick(1) }
        #expect(s2.delta == NetCounters() && s2.eventfdWrites == 0)
    }

    @Test func poisonSignalSequenceAndResetClearsIt() throws {
        let h = Harness.ready()
        try h.drv.setAvailIdx(queue: 0, 1000)
        try h.sendTx()
        #expect(Array(h.events.suffix(3)) == [.interrupt(.vring), .status(from: 0xF, to: 0x4F), .interrupt(.config)])
        #expect(h.interruptStatus() == 3)
        h.reset()
        #expect(h.status() == [] && h.interruptStatus() == 0)
        #expect(h.dev.state.poisoned == [false, false])
        #expect(h.counters.invalidAvailIdxCount == 1)
    }

    /// FuzzDevice's rule "invalid_avail_idx_count <= queue count" stopped on a
    /// program that poisoned, reset and poisoned again: reset clears the
    /// poison flags, so the same queue poisons (and counts) once per
    /// poisoning, and the lifetime counter passes the number of queues.
    @Test func aQueuePoisonedAgainAfterResetCountsAgain() throws {
        let h = Harness.ready()
        for round in 1...3 {
            try h.drv.setAvailIdx(queue: 0, 1000)
            try h.sendTx()
            #expect(h.dev.state.poisoned == [true, false])
            #expect(h.counters.invalidAvailIdxCount == UInt64(round))
            h.reset()
            #expect(h.dev.state.poisoned == [false, false])
            try h.initialize()
        }
        #expect(h.counters.invalidAvailIdxCount == 3 && h.dev.queueCount == 2)
    }

    @Test func eachPoisonEventCountsOnce() throws {
        let h = Harness.ready(pairs: 2, qsize: 4)
        try h.setPairs(2)
        for q in [0, 1, 2, 3, 4] { try h.drv.setAvailIdx(queue: q, 100) }
        h.kick(1)
        h.kick(1)
        try h.sendTx(pair: 1)  // the driver rewrites TX3's avail.idx to 1: TX3 is sane, RX2 poisons on delivery
        h.kick(3)
        h.kick(4)
        h.kick(4)
        // TX1 (1), RX2 (1), cvq (1); repeated kicks add nothing.
        #expect(h.counters.invalidAvailIdxCount == 3)
        #expect(h.counters.txDroppedRxPoisoned == 1)
        #expect(h.dev.state.poisoned == [false, true, true, false, true])
    }
}
