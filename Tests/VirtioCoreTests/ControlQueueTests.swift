import GuestDriver
import Testing
import VirtioCore

/// The control virtqueue (spec §3.7): MQ / VQ_PAIRS_SET only.
@Suite("Control queue")
struct ControlQueueTests {
    static let hole: UInt64 = 0x1_0000_0000
    static let free: UInt64 = 0x90_0000
    let cvq = 4

    func command(_ cls: UInt8, _ cmd: UInt8, _ pairs: UInt16) -> [UInt8] {
        [cls, cmd, UInt8(pairs & 0xff), UInt8(pairs >> 8)]
    }

    @Test func vqPairsSetAcksOkAndPublishes() throws {
        let h = Harness.ready(pairs: 2)
        #expect(h.dev.controlQueueIndex == cvq)
        let s = try h.step { try h.setPairs(2) }
        #expect(s.delta == counters([.ctrlMqSet: 1]))
        #expect(s.entries(cvq) == [[0, 1]])
        #expect(s.signals == .vring && s.isr == 1 && s.eventfdWrites == 1)
        #expect(h.drv.lastControlStatus() == 0)
        #expect(h.dev.state.activeQueuePairs == 2)
        #expect(h.events.contains(.activeQueuePairs(from: 1, to: 2)))
        #expect(h.usedIdx(cvq) == 1)
    }

    @Test(arguments: [
        ("unknown class 0xEE", [UInt8]([0xEE, 0, 1, 0])),
        ("MQ class, other command", [4, 1, 2, 0]),
        ("pairs above offered", [4, 0, 3, 0]),
        ("pairs zero", [4, 0, 0, 0]),
        ("pairs 0xFFFF", [4, 0, 0xFF, 0xFF]),
    ])
    func badCommandsAreNakedAndPublished(_ name: String, _ body: [UInt8]) throws {
        let h = Harness.ready(pairs: 2)
        let s = try h.step { try h.drv.controlCommand(&h.dev, class: body[0], command: body[1], data: Array(body[2...])) }
        #expect(s.delta == counters([.ctrlChainInvalid: 1]), "\(name)")
        #expect(s.entries(cvq) == [[0, 1]], "\(name)")
        #expect(h.drv.lastControlStatus() == 1, "\(name)")
        #expect(s.signals == .vring, "\(name)")
        #expect(!h.status().contains(.needsReset), "\(name)")
        #expect(h.dev.state.activeQueuePairs == 1, "\(name)")
    }

    @Test func shortCommandIsNaked() throws {
        let h = Harness.ready(pairs: 2)
        let s = try h.step { try h.drv.controlCommand(&h.dev, class: 4, command: 0, data: [2]) }
        #expect(s.delta == counters([.ctrlChainInvalid: 1]))
        #expect(h.drv.lastControlStatus() == 1)
    }

    @Test func noWritableStatusDropsWithoutPublish() throws {
        let h = Harness.ready(pairs: 2)
        try h.ram.write(Self.free, bytes: command(4, 0, 2))
        let s = try h.step {
            try h.rawChain(queue: cvq, [RawDescriptor(addr: Self.free, len: 4), RawDescriptor(addr: Self.free + 16, len: 0, writable: true)])
        }
        #expect(s.delta == counters([.ctrlChainInvalid: 1]))
        #expect(s.used.isEmpty && s.signals == [] && s.eventfdWrites == 0)
        #expect(h.drv.queues[cvq]!.inFlightCount == 1)  // stranded until reset
        #expect(h.dev.state.activeQueuePairs == 1)
    }

    @Test func unmappedStatusDropsWithoutStateChange() throws {
        let h = Harness.ready(pairs: 2)
        try h.ram.write(Self.free, bytes: command(0xEE, 0, 2))  // even a bad command: only the failure counts
        let s = try h.step {
            try h.rawChain(queue: cvq, [RawDescriptor(addr: Self.free, len: 4), RawDescriptor(addr: Self.hole, len: 1, writable: true)])
        }
        #expect(s.delta == counters([.ctrlAddUsedFailures: 1]))
        #expect(s.used.isEmpty && s.signals == [])
        #expect(h.dev.state.activeQueuePairs == 1 && !h.status().contains(.needsReset))
    }

    @Test func nakWithAddUsedFailureCountsBoth() throws {
        var quirks = DriverQuirks()
        quirks.usedRing[4] = Self.hole
        let h = Harness.ready(pairs: 2, quirks: quirks)
        let s = try h.step { try h.setPairs(0) }
        #expect(s.delta == counters([.ctrlChainInvalid: 1, .ctrlAddUsedFailures: 1]))
        #expect(s.signals == [] && s.eventfdWrites == 0)
    }

    @Test func okWithAddUsedFailureChangesNothing() throws {
        var quirks = DriverQuirks()
        quirks.usedRing[4] = Self.hole
        let h = Harness.ready(pairs: 2, quirks: quirks)
        let statusAddress = Self.free + 0x100
        try h.ram.write(Self.free, bytes: command(4, 0, 2))
        let s = try h.step {
            try h.rawChain(queue: cvq, [RawDescriptor(addr: Self.free, len: 4), RawDescriptor(addr: statusAddress, len: 1, writable: true)])
        }
        #expect(s.delta == counters([.ctrlAddUsedFailures: 1]))
        #expect(h.dev.state.activeQueuePairs == 1)
        #expect(try h.ram.bytes(at: statusAddress, count: 1) == [0])  // the guest may have seen OK
    }

    @Test func structuralRingFaultPoisonsWithNeedsResetOnly() throws {
        let h = Harness.ready(pairs: 2, qsize: 4)
        try h.drv.setAvailIdx(queue: cvq, 9999)
        let s = h.step { h.kick(cvq) }
        #expect(s.delta == counters([.invalidAvailIdxCount: 1]))
        #expect(s.signals == [] && s.eventfdWrites == 0 && s.isr == 0)
        #expect(h.status().contains(.needsReset))
        // Poisoned: ignored from now on, even with a sane index.
        try h.drv.setAvailIdx(queue: cvq, 0)
        let s2 = try h.step { try h.setPairs(2) }
        #expect(s2.delta == NetCounters() && s2.used.isEmpty)
        // Data queues still work (NEEDS_RESET blocks nothing).
        try h.postRx()
        let s3 = try h.step { try h.sendTx() }
        #expect(s3.delta == counters([.txPackets: 1, .txBytes: 64, .rxPackets: 1, .rxBytes: 64]))
    }

    @Test func gatesDriverOkFeatureMemory() throws {
        // No DRIVER_OK.
        let h = Harness(pairs: 2)
        try h.drv.initialize(&h.dev, driverOK: false)
        let s = try h.step { try h.setPairs(2) }
        #expect(s.delta == NetCounters() && s.used.isEmpty)
        // No F_CTRL_VQ negotiated: the (not ready) queue is not even looked at.
        let h2 = Harness(pairs: 2)
        try h2.initialize(features: NetFeature.version1 | NetFeature.mac | NetFeature.mq)
        #expect(h2.drv.queues[cvq] == nil)
        let s2 = h2.step { h2.kick(cvq) }
        #expect(s2.delta == NetCounters() && !h2.dev.state.poisoned[cvq])
        // Memory not bound.
        let h3 = Harness.ready(pairs: 2)
        h3.dev.memory = nil
        let s3 = try h3.step { try h3.setPairs(2) }
        #expect(s3.delta == NetCounters())
    }

    @Test func descriptorOrderIsNotEnforcedAndPiecesFill() throws {
        let h = Harness.ready(pairs: 2)
        let cmd = command(4, 0, 2)
        try h.ram.write(Self.free, bytes: [cmd[0]])
        try h.ram.write(Self.free + 16, bytes: [cmd[1]])
        try h.ram.write(Self.free + 32, bytes: [cmd[2], cmd[3], 0x99])
        let status = Self.free + 64
        let s = try h.step {
            try h.rawChain(queue: cvq, [
                RawDescriptor(addr: status, len: 1, writable: true),  // status first
                RawDescriptor(addr: Self.hole, len: 2),  // unreadable piece: skipped, command stays short
                RawDescriptor(addr: Self.free, len: 1),
                RawDescriptor(addr: Self.free + 16, len: 1),
                RawDescriptor(addr: Self.free + 32, len: 3),  // only 2 bytes taken: reads cap at 4
                RawDescriptor(addr: status + 16, len: 1, writable: true),  // second writable: ignored
            ])
        }
        #expect(s.delta == counters([.ctrlMqSet: 1]))
        #expect(s.entries(cvq) == [[0, 1]])
        #expect(try h.ram.bytes(at: status, count: 1) == [0])
        #expect(h.dev.state.activeQueuePairs == 2)
    }

    @Test func zeroLengthWritableIsNotAStatus() throws {
        let h = Harness.ready(pairs: 2)
        try h.ram.write(Self.free, bytes: command(4, 0, 2))
        try h.ram.write(Self.free + 0x40, bytes: [0xAA])
        let s = try h.step {
            try h.rawChain(queue: cvq, [RawDescriptor(addr: Self.free, len: 4),
                                        RawDescriptor(addr: Self.free + 0x40, len: 0, writable: true),
                                        RawDescriptor(addr: Self.free + 0x80, len: 1, writable: true)])
        }
        #expect(s.delta == counters([.ctrlMqSet: 1]))
        #expect(try h.ram.bytes(at: Self.free + 0x40, count: 1) == [0xAA])
        #expect(try h.ram.bytes(at: Self.free + 0x80, count: 1) == [0])
    }

    @Test func pairsSetRoutesAndResetRestoresOnePair() throws {
        let h = Harness.ready(pairs: 4)
        try h.setPairs(3)
        try h.postRx(pair: 2)
        let s = try h.step { try h.sendTx(pair: 2) }
        #expect(s.delta == counters([.txPackets: 1, .txBytes: 64, .rxPackets: 1, .rxBytes: 64]))
        try h.setPairs(1)
        let s2 = try h.step { try h.sendTx(pair: 2) }
        #expect(s2.delta == NetCounters())
        try h.setPairs(4)
        h.reset()
        #expect(h.dev.state.activeQueuePairs == 1)
        #expect(h.events.contains(.activeQueuePairs(from: 4, to: 1)))
    }

    @Test func everyPairsValueIsOkExactlyInRange() throws {
        let h = Harness.ready(pairs: 4, qsize: 4)
        for pairs in stride(from: 0, through: 65535, by: 257).map({ UInt16($0) }) + [1, 2, 3, 4, 5] {
            let before = h.counters
            try h.setPairs(pairs)
            let ok = (1...4).contains(pairs)
            #expect(h.counters.delta(since: before) == (ok ? counters([.ctrlMqSet: 1]) : counters([.ctrlChainInvalid: 1])), "pairs \(pairs)")
            _ = try h.drv.reclaim(queue: h.dev.controlQueueIndex!)
            #expect(h.drv.lastControlStatus() == (ok ? 0 : 1), "pairs \(pairs)")
            #expect((1...4).contains(h.dev.state.activeQueuePairs))
        }
    }
}
