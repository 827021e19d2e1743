import GuestDriver
import Testing
import VirtioCore

/// One test (or more) per row of the spec's path → counters table (§3.8),
/// asserting exact counter deltas, used-ring entries and interrupt bits.
@Suite("virtio-net paths (spec §3.8 table)")
struct NetPathTests {
    /// A guest-physical address no RAM backs.
    static let hole: UInt64 = 0x1_0000_0000
    /// Scratch guest memory outside the driver's area.
    static let free: UInt64 = 0x90_0000
    let rx = 0, tx = 1

    // MARK: Kicks that do nothing

    @Test func rxKickInactivePairAndBadIndexDoNothing() throws {
        let h = Harness.ready(pairs: 2)
        try h.postRx()
        try h.sendTx(kick: false)
        for q in [0, 2, 3, 5, 6, 999, Int(UInt32.max)] {
            let before = h.dev.state
            let s = h.step { h.kick(q) }
            #expect(s.delta == NetCounters(), "kick \(q)")
            #expect(s.signals == [] && s.eventfdWrites == 0 && s.used.isEmpty, "kick \(q)")
            #expect(h.dev.state == before, "kick \(q)")
        }
    }

    @Test func txKickBeforeDriverOkIsIgnoredThenProcessed() throws {
        let h = Harness()
        try h.drv.initialize(&h.dev, driverOK: false)
        try h.postRx()
        let s1 = try h.step { try h.sendTx() }
        #expect(s1.delta == NetCounters())
        #expect(s1.signals == [] && s1.used.isEmpty && s1.eventfdWrites == 0)
        h.drv.setDriverOK(&h.dev)
        let s2 = h.step { h.kick(tx) }
        #expect(s2.delta == counters([.txPackets: 1, .txBytes: 64, .rxPackets: 1, .rxBytes: 64]))
        #expect(s2.entries(rx) == [[0, 76]] && s2.entries(tx) == [[0, 0]])
    }

    @Test func txKickBeforeMemoryBoundWarnsOnceThenWorks() throws {
        let h = Harness.ready()
        try h.postRx()
        let ram = h.dev.memory
        h.dev.memory = nil
        let s1 = try h.step { try h.sendTx() }
        _ = h.step { h.kick(tx) }
        #expect(s1.delta == NetCounters() && s1.signals == [])
        #expect(h.events.filter { $0 == .warning(.memoryNotBound) }.count == 1)
        h.dev.memory = ram
        let s2 = h.step { h.kick(tx) }
        #expect(s2.delta == counters([.txPackets: 1, .txBytes: 64, .rxPackets: 1, .rxBytes: 64]))
    }

    // MARK: TX poison

    @Test func txIterErrorPoisonsSignalsConfigAndStaysSilent() throws {
        let h = Harness.ready()
        try h.drv.setAvailIdx(queue: tx, 1000)
        let s = h.step { h.kick(tx) }
        #expect(s.delta == counters([.invalidAvailIdxCount: 1]))
        #expect(s.signals == .config && s.eventfdWrites == 1 && s.isr == 2)
        #expect(h.status().contains(.needsReset))
        #expect(s.used.isEmpty)
        #expect(h.events.contains(.poisoned(queue: 1, error: .invalidAvailRingIndex(availIdx: 1000, nextAvail: 0, size: 256))))
        // Already poisoned: nothing at all.
        try h.drv.setAvailIdx(queue: tx, 0)
        try h.postRx()
        let s2 = try h.step { try h.sendTx() }
        #expect(s2.delta == NetCounters() && s2.signals == [] && s2.eventfdWrites == 0 && s2.used.isEmpty)
        // Reset clears the poison and NEEDS_RESET, keeps the counter; re-init works.
        h.reset()
        #expect(h.status() == [] && h.interruptStatus() == 0)
        #expect(h.counters.invalidAvailIdxCount == 1)
        try h.initialize()
        try h.postRx()
        let s3 = try h.step { try h.sendTx() }
        #expect(s3.delta == counters([.txPackets: 1, .txBytes: 64, .rxPackets: 1, .rxBytes: 64]))
    }

    @Test func txQueueNotReadyAfterDriverOkPoisons() {
        var quirks = DriverQuirks()
        quirks.leaveNotReady = [1]
        let h = Harness.ready(quirks: quirks)
        let s = h.step { h.kick(tx) }
        #expect(s.delta == counters([.invalidAvailIdxCount: 1]))
        #expect(s.signals == .config)
        #expect(h.events.contains(.poisoned(queue: 1, error: .notReady)))
    }

    @Test func txPoisonAfterCompletionsSignalsVringThenConfig() throws {
        // A guest that rewrites avail.idx while the device drains: the first
        // chain completes, the next iter() sees a hostile index.
        let ram = try GuestRAM(size: 16 << 20)
        let memory = HookedMemory(ram: ram)
        var dev = VirtioNetDevice(memory: memory, observer: EventLog())
        var drv = VirtioNetDriver(memory: memory)
        try drv.initialize(&dev)
        try drv.postRx()
        try drv.sendTx(&dev, kick: false)
        let availIdxAddress = drv.queues[1]!.avail + 2
        var reads = 0
        memory.onRead = { address in
            if address == availIdxAddress {
                reads += 1
                if reads == 1 { try! ram.store(UInt16(999), at: availIdxAddress) }
            }
        }
        let signals = drv.kick(&dev, queue: 1)
        #expect(signals == [.vring, .config])
        #expect(dev.counters == counters([.txPackets: 1, .txBytes: 64, .rxPackets: 1, .rxBytes: 64, .invalidAvailIdxCount: 1]))
        let irqs = dev.observer.events.compactMap { if case .interrupt(let k) = $0 { return k } else { return nil } }
        #expect(irqs == [.vring, .config])
        #expect(dev.interruptsRaised == 2)
    }

    // MARK: TX oversize

    @Test func frameExactlyAtCapIsCaptured() throws {
        let h = Harness.ready()
        try h.postRx(length: 12 + 65_557)
        let s = try h.step { try h.sendTx(length: 65_557) }
        #expect(s.delta == counters([.txPackets: 1, .txBytes: 65_557, .rxPackets: 1, .rxBytes: 65_557]))
        #expect(s.entries(rx) == [[0, 65_569]])
        let got = try h.drv.receivedBytes(s.used(rx)[0])
        #expect(Array(got[12...]) == VirtioNetDriver<GuestRAM>.patternFrame(length: 65_557))
    }

    @Test func frameOneOverCapIsDroppedButCompleted() throws {
        let h = Harness.ready()
        try h.postRx(length: 70_000)
        let s = try h.step { try h.sendTx(length: 65_558) }
        #expect(s.delta == counters([.txOversizeDropped: 1]))
        #expect(s.entries(tx) == [[0, 0]] && s.used(rx).isEmpty)
        #expect(s.signals == .vring && s.isr == 1 && s.eventfdWrites == 1)
    }

    @Test func multiDescriptorSumOverCapIsDropped() throws {
        let h = Harness.ready()
        try h.postRx(length: 70_000)
        let s = try h.step {
            try h.rawChain(queue: tx, [RawDescriptor(addr: Self.free, len: 12 + 40_000),
                                       RawDescriptor(addr: Self.free + 0x1_0000, len: 30_000)])
        }
        #expect(s.delta == counters([.txOversizeDropped: 1]))
        #expect(s.entries(tx) == [[0, 0]])
    }

    @Test func hugeDescriptorLengthCostsNothing() throws {
        let h = Harness.ready()
        let s = try h.step { try h.rawChain(queue: tx, [RawDescriptor(addr: Self.free, len: .max)]) }
        #expect(s.delta == counters([.txOversizeDropped: 1]))
        #expect(s.entries(tx) == [[0, 0]])
    }

    @Test func oversizeWithTxAddUsedFailure() throws {
        var quirks = DriverQuirks()
        quirks.usedRing[1] = Self.hole
        let h = Harness.ready(quirks: quirks)
        try h.postRx()
        let s = try h.step { try h.sendTx(length: 65_558) }
        #expect(s.delta == counters([.txOversizeDropped: 1, .txAddUsedFailures: 1]))
        #expect(s.signals == [] && s.eventfdWrites == 0 && s.isr == 0)
    }

    // MARK: TX malformed

    @Test(arguments: [
        ("write-only descriptor", [RawDescriptor(addr: 0x90_0000, len: 100, writable: true)]),
        ("8-byte chain", [RawDescriptor(addr: 0x90_0000, len: 8)]),
        ("header split, total 11", [RawDescriptor(addr: 0x90_0000, len: 6), RawDescriptor(addr: 0x90_0100, len: 5)]),
        ("address overflow skipping header", [RawDescriptor(addr: .max - 11, len: 64)]),
        ("frame read fault", [RawDescriptor(addr: 0x90_0000, len: 12), RawDescriptor(addr: 0x1_0000_0000, len: 64)]),
        ("frame read fault in first descriptor", [RawDescriptor(addr: 0xFF_FFF0, len: 12 + 64)]),
        ("readable then writable", [RawDescriptor(addr: 0x90_0000, len: 40), RawDescriptor(addr: 0x90_1000, len: 40, writable: true)]),
    ])
    func malformedTxChainIsInvalidAndCompleted(_ name: String, _ chain: [RawDescriptor]) throws {
        let h = Harness.ready()
        try h.postRx()
        let s = try h.step { try h.rawChain(queue: tx, chain) }
        #expect(s.delta == counters([.txChainInvalid: 1]), "\(name)")
        #expect(s.entries(tx) == [[0, 0]] && s.used(rx).isEmpty, "\(name)")
        #expect(s.signals == .vring && s.isr == 1, "\(name)")
    }

    @Test func malformedTxChainWithAddUsedFailure() throws {
        var quirks = DriverQuirks()
        quirks.usedRing[1] = Self.hole
        let h = Harness.ready(quirks: quirks)
        let s = try h.step { try h.rawChain(queue: tx, [RawDescriptor(addr: Self.free, len: 100, writable: true)]) }
        #expect(s.delta == counters([.txChainInvalid: 1, .txAddUsedFailures: 1]))
        #expect(s.signals == [] && s.eventfdWrites == 0)
    }

    @Test func txHeadOutOfRangeIsInvalidAndCannotBePublished() throws {
        let h = Harness.ready(qsize: 4)
        try h.drv.setAvailEntry(queue: tx, slot: 0, head: 7)
        try h.drv.setAvailIdx(queue: tx, 1)
        let s = h.step { h.kick(tx) }
        #expect(s.delta == counters([.txChainInvalid: 1, .txAddUsedFailures: 1]))
        #expect(s.signals == [])
        #expect(h.events.contains(.chainPopped(queue: 1, head: 7, descriptors: [])))
    }

    @Test func txHeaderAtUnmappedAddressGoesUnnoticed() throws {
        let h = Harness.ready()
        try h.postRx()
        try h.drv.memory.write(Self.free, bytes: [1, 2, 3, 4])
        let s = try h.step {
            try h.rawChain(queue: tx, [RawDescriptor(addr: Self.hole, len: 12), RawDescriptor(addr: Self.free, len: 4)])
        }
        #expect(s.delta == counters([.txPackets: 1, .txBytes: 4, .rxPackets: 1, .rxBytes: 4]))
        #expect(try h.drv.receivedBytes(s.used(rx)[0]) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 2, 3, 4])
    }

    @Test func headerOnlyChainLoopsAZeroByteFrame() throws {
        let h = Harness.ready()
        try h.postRx()
        let s = try h.step { try h.sendTx(length: 0) }
        #expect(s.delta == counters([.txPackets: 1, .rxPackets: 1]))
        #expect(s.entries(rx) == [[0, 12]] && s.entries(tx) == [[0, 0]])
    }

    @Test func headerSplitOverTwelveOneByteDescriptors() throws {
        let h = Harness.ready()
        try h.postRx(length: 12 + 64, descriptors: 12 + 1)  // RX header split too: 12 pieces of 5–6 bytes... (76/13)
        let s = try h.step { try h.sendTx(length: 64, descriptors: 12 + 1) }
        #expect(s.delta == counters([.txPackets: 1, .txBytes: 64, .rxPackets: 1, .rxBytes: 64]))
        let single = Harness.ready()
        try single.postRx()
        let chain = (0..<12).map { RawDescriptor(addr: Self.free + UInt64($0) * 16, len: 1) }
            + [RawDescriptor(addr: Self.free + 0x1000, len: 64)]
        let s2 = try single.step { try single.rawChain(queue: tx, chain) }
        #expect(s2.delta == counters([.txPackets: 1, .txBytes: 64, .rxPackets: 1, .rxBytes: 64]))
    }

    // MARK: Delivery

    @Test func loopbackDeliversPayloadWithZeroHeader() throws {
        let h = Harness.ready()
        try h.postRx()
        let frame = (0..<42).map { UInt8($0 * 3 & 0xff) }
        let s = try h.step { try h.sendTx(frame: frame) }
        #expect(s.delta == counters([.txPackets: 1, .txBytes: 42, .rxPackets: 1, .rxBytes: 42]))
        #expect(s.entries(rx) == [[0, 54]] && s.entries(tx) == [[0, 0]])
        #expect(s.signals == .vring && s.eventfdWrites == 1 && s.isr == 1)
        #expect(try h.drv.receivedBytes(s.used(rx)[0]) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0] + frame)
    }

    @Test func twoFramesInOneKickOneInterrupt() throws {
        let h = Harness.ready()
        try h.postRx(count: 2)
        try h.sendTx(kick: false)
        try h.sendTx(length: 100, kick: false)
        let s = h.step { h.kick(tx) }
        #expect(s.delta == counters([.txPackets: 2, .txBytes: 164, .rxPackets: 2, .rxBytes: 164]))
        #expect(s.entries(rx) == [[0, 76], [1, 112]] && s.entries(tx) == [[0, 0], [1, 0]])
        #expect(s.eventfdWrites == 1 && s.signals == .vring)
    }

    @Test func rxDeliveredTxAddUsedFails() throws {
        var quirks = DriverQuirks()
        quirks.usedRing[1] = Self.hole
        let h = Harness.ready(quirks: quirks)
        try h.postRx()
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.rxPackets: 1, .rxBytes: 64, .txAddUsedFailures: 1]))
        #expect(s.entries(rx) == [[0, 76]])
        #expect(s.signals == .vring && s.isr == 1)
        #expect(h.counters.rxPackets > h.counters.txPackets)
    }

    @Test func rxWrittenButRxAddUsedFails() throws {
        var quirks = DriverQuirks()
        quirks.usedRing[0] = Self.hole
        let h = Harness.ready(quirks: quirks)
        try h.postRx()
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.rxAddUsedFailures: 1, .txPackets: 1, .txBytes: 64]))
        #expect(s.entries(tx) == [[0, 0]])
        #expect(s.signals == .vring)
        // The bytes are in guest memory, unpublished.
        let buffer = h.drv.queues[rx]!.inFlightBuffers(head: 0)![0].addr
        #expect(try h.ram.bytes(at: buffer, count: 13) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0])
    }

    @Test func rxRecycleFailsAfterWriteFailureAndTxFailsToo() throws {
        var quirks = DriverQuirks()
        quirks.usedRing[0] = Self.hole
        quirks.usedRing[1] = Self.hole
        let h = Harness.ready(quirks: quirks)
        try h.rawChain(queue: rx, [RawDescriptor(addr: Self.hole, len: 100, writable: true)], kick: false)
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.rxWriteFailed: 1, .rxAddUsedFailures: 1, .txAddUsedFailures: 1]))
        #expect(s.signals == [] && s.eventfdWrites == 0)
    }

    @Test func rxQueueEmptyDropsFrame() throws {
        let h = Harness.ready()
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.txDroppedNoRxBuffer: 1, .txPackets: 1, .txBytes: 64]))
        #expect(s.entries(tx) == [[0, 0]] && s.used(rx).isEmpty)
        #expect(s.signals == .vring && s.eventfdWrites == 1)
    }

    @Test func rxQueueNotReadyDropsFrameWithoutPoison() throws {
        var quirks = DriverQuirks()
        quirks.leaveNotReady = [0]
        let h = Harness.ready(quirks: quirks)
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.txDroppedNoRxBuffer: 1, .txPackets: 1, .txBytes: 64]))
        #expect(!h.dev.state.poisoned[0])
    }

    @Test func rxEmptyAndTxAddUsedFailsRaisesNothing() throws {
        var quirks = DriverQuirks()
        quirks.usedRing[1] = Self.hole
        let h = Harness.ready(quirks: quirks)
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.txDroppedNoRxBuffer: 1, .txAddUsedFailures: 1]))
        #expect(s.signals == [] && s.eventfdWrites == 0 && s.isr == 0)
    }

    @Test func rxIterErrorPoisonsRxAndStopsTheDrain() throws {
        let h = Harness.ready()
        try h.drv.setAvailIdx(queue: rx, 1000)
        try h.sendTx(kick: false)
        try h.sendTx(kick: false)
        let s = h.step { h.kick(tx) }
        #expect(s.delta == counters([.invalidAvailIdxCount: 1, .txDroppedRxPoisoned: 1, .txPackets: 1, .txBytes: 64]))
        #expect(s.entries(tx) == [[0, 0]])  // the second chain waits
        #expect(s.signals == [.vring, .config] && s.eventfdWrites == 2 && s.isr == 3)
        #expect(h.status().contains(.needsReset))
        let irqs = h.interrupts()
        #expect(Array(irqs.suffix(2)) == [.vring, .config])
        // RX already poisoned: TX keeps completing, VRING only.
        let s2 = h.step { h.kick(tx) }
        #expect(s2.delta == counters([.txDroppedRxPoisoned: 1, .txPackets: 1, .txBytes: 64]))
        #expect(s2.entries(tx) == [[1, 0]])
        #expect(s2.signals == .vring && s2.eventfdWrites == 1 && s2.isr == 1)
        // Re-kick with nothing pending: silent.
        let s3 = h.step { h.kick(tx) }
        #expect(s3.delta == NetCounters() && s3.eventfdWrites == 0)
    }

    @Test func readyRxQueueWithAvailAddressZeroPoisons() throws {
        var quirks = DriverQuirks()
        quirks.availRing[0] = 0
        let h = Harness.ready(quirks: quirks)
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.invalidAvailIdxCount: 1, .txDroppedRxPoisoned: 1, .txPackets: 1, .txBytes: 64]))
        #expect(h.events.contains(.poisoned(queue: 0, error: .notReady)))
    }

    @Test func rxReadOnlyDescriptorIsShapeFailureRecycled() throws {
        let h = Harness.ready()
        try h.rawChain(queue: rx, [RawDescriptor(addr: Self.free, len: 2048)], kick: false)
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.rxChainInvalid: 1, .txPackets: 1, .txBytes: 64]))
        #expect(s.entries(rx) == [[0, 0]] && s.entries(tx) == [[0, 0]])
        #expect(s.signals == .vring && s.eventfdWrites == 1)
    }

    @Test func rxShapeFailureZeroesTheHeaderPiecesWritten() throws {
        let h = Harness.ready()
        try h.ram.fill(Self.free, count: 64, with: 0xEE)
        try h.rawChain(queue: rx, [RawDescriptor(addr: Self.free, len: 5, writable: true),
                                   RawDescriptor(addr: Self.free + 16, len: 12, writable: true),
                                   RawDescriptor(addr: Self.free + 32, len: 100)], kick: false)
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.rxChainInvalid: 1, .txPackets: 1, .txBytes: 64]))
        #expect(s.entries(rx) == [[0, 0]])
        // Header pieces (5 bytes, then 7) zeroed; the 5 frame bytes after them stay written.
        #expect(try h.ram.bytes(at: Self.free, count: 6) == [0, 0, 0, 0, 0, 0xEE])
        #expect(try h.ram.bytes(at: Self.free + 16, count: 13) == [0, 0, 0, 0, 0, 0, 0] + [0, 1, 2, 3, 4] + [0xEE])
    }

    /// The same with an empty descriptor between the two pieces: it holds no
    /// piece, and the pieces after it are still found and zeroed.
    @Test func rxShapeFailureZeroesThePiecesAroundAnEmptyDescriptor() throws {
        let h = Harness.ready()
        try h.ram.fill(Self.free, count: 64, with: 0xEE)
        try h.rawChain(queue: rx, [RawDescriptor(addr: Self.free, len: 5, writable: true),
                                   RawDescriptor(addr: Self.free + 8, len: 0, writable: true),
                                   RawDescriptor(addr: Self.free + 16, len: 12, writable: true),
                                   RawDescriptor(addr: Self.free + 32, len: 100)], kick: false)
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.rxChainInvalid: 1, .txPackets: 1, .txBytes: 64]))
        #expect(try h.ram.bytes(at: Self.free, count: 6) == [0, 0, 0, 0, 0, 0xEE])
        #expect(try h.ram.bytes(at: Self.free + 8, count: 1) == [0xEE])
        #expect(try h.ram.bytes(at: Self.free + 16, count: 13) == [0, 0, 0, 0, 0, 0, 0] + [0, 1, 2, 3, 4] + [0xEE])
    }

    @Test func zeroLengthFrameStillWalksToTrailingReadOnlyDescriptor() throws {
        let h = Harness.ready()
        try h.rawChain(queue: rx, [RawDescriptor(addr: Self.free, len: 12, writable: true),
                                   RawDescriptor(addr: Self.free + 16, len: 12)], kick: false)
        let s = try h.step { try h.sendTx(length: 0) }
        #expect(s.delta == counters([.rxChainInvalid: 1, .txPackets: 1]))
        #expect(try h.ram.bytes(at: Self.free, count: 12) == [UInt8](repeating: 0, count: 12))
    }

    @Test func rxShapeFailureRecycleFails() throws {
        var quirks = DriverQuirks()
        quirks.usedRing[0] = Self.hole
        let h = Harness.ready(quirks: quirks)
        try h.rawChain(queue: rx, [RawDescriptor(addr: Self.free, len: 2048)], kick: false)
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.rxChainInvalid: 1, .rxAddUsedFailures: 1, .txPackets: 1, .txBytes: 64]))
        #expect(s.entries(tx) == [[0, 0]])
        #expect(s.signals == .vring)
    }

    @Test func rxHeaderWriteFault() throws {
        let h = Harness.ready()
        try h.rawChain(queue: rx, [RawDescriptor(addr: Self.hole, len: 2048, writable: true)], kick: false)
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.rxWriteFailed: 1, .txPackets: 1, .txBytes: 64]))
        #expect(s.entries(rx) == [[0, 0]] && s.entries(tx) == [[0, 0]])
        #expect(s.signals == .vring)
    }

    @Test func rxFrameWriteFaultZeroesHeader() throws {
        let h = Harness.ready()
        try h.ram.fill(Self.free, count: 16, with: 0xEE)
        try h.rawChain(queue: rx, [RawDescriptor(addr: Self.free, len: 12, writable: true),
                                   RawDescriptor(addr: Self.hole, len: 2048, writable: true)], kick: false)
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.rxWriteFailed: 1, .txPackets: 1, .txBytes: 64]))
        #expect(s.entries(rx) == [[0, 0]])
        #expect(try h.ram.bytes(at: Self.free, count: 13) == [UInt8](repeating: 0, count: 12) + [0xEE])
    }

    @Test func rxWriteFaultRecycleFails() throws {
        var quirks = DriverQuirks()
        quirks.usedRing[0] = Self.hole
        let h = Harness.ready(quirks: quirks)
        try h.rawChain(queue: rx, [RawDescriptor(addr: Self.hole, len: 2048, writable: true)], kick: false)
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.rxWriteFailed: 1, .rxAddUsedFailures: 1, .txPackets: 1, .txBytes: 64]))
        #expect(s.signals == .vring)
    }

    @Test func rxBufferTooSmallTruncatesWithoutCounter() throws {
        let h = Harness.ready()
        try h.postRx(length: 40)
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.rxPackets: 1, .rxBytes: 28, .txPackets: 1, .txBytes: 64]))
        #expect(s.entries(rx) == [[0, 40]])
        #expect(try h.drv.receivedBytes(s.used(rx)[0]) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0] + (0..<28).map { UInt8($0) })
    }

    @Test func rxBufferSmallerThanHeaderCountsZeroBytes() throws {
        let h = Harness.ready()
        try h.postRx(length: 8)
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.rxPackets: 1, .txPackets: 1, .txBytes: 64]))
        #expect(s.entries(rx) == [[0, 8]])
    }

    @Test func rxHeadOutOfRangeDeliversNothingAndFailsPublish() throws {
        let h = Harness.ready(qsize: 4)
        try h.drv.setAvailEntry(queue: rx, slot: 0, head: 9)
        try h.drv.setAvailIdx(queue: rx, 1)
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.rxAddUsedFailures: 1, .txPackets: 1, .txBytes: 64]))
        #expect(s.entries(tx) == [[0, 0]])
    }

    @Test func rxZeroDescriptorChainWithValidHeadDeliversZeroBytes() throws {
        // A head whose descriptor cannot be read yields no descriptors: a
        // "truncated delivery" of 0 bytes that still counts as a packet.
        var quirks = DriverQuirks()
        quirks.descTable[0] = Self.hole
        let h = Harness.ready(quirks: quirks)
        try h.drv.setAvailEntry(queue: rx, slot: 0, head: 0)
        try h.drv.setAvailIdx(queue: rx, 1)
        let s = try h.step { try h.sendTx() }
        #expect(s.delta == counters([.rxPackets: 1, .txPackets: 1, .txBytes: 64]))
    }

    // MARK: Multiqueue routing

    @Test func txOfAPairLandsOnlyInItsOwnRx() throws {
        let h = Harness.ready(pairs: 2)
        try h.setPairs(2)
        try h.postRx(pair: 0)
        try h.postRx(pair: 1)
        let s = try h.step { try h.sendTx(pair: 1, length: 50) }
        #expect(s.delta == counters([.txPackets: 1, .txBytes: 50, .rxPackets: 1, .rxBytes: 50]))
        #expect(s.entries(2) == [[0, 62]] && s.entries(3) == [[0, 0]] && s.used(0).isEmpty)
        let got = try h.drv.receivedBytes(s.used(2)[0])
        #expect(Array(got[..<12]) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0])
    }

    @Test func inactivePairTxIsIgnoredUntilPairsSet() throws {
        let h = Harness.ready(pairs: 2)
        try h.postRx(pair: 1)
        let s = try h.step { try h.sendTx(pair: 1) }
        #expect(s.delta == NetCounters() && s.signals == [])
        try h.setPairs(2)
        let s2 = h.step { h.kick(3) }
        #expect(s2.delta == counters([.txPackets: 1, .txBytes: 64, .rxPackets: 1, .rxBytes: 64]))
    }
}

/// Guest RAM with a hook on every read, to play a guest that changes memory
/// while the device reads it.
final class HookedMemory: GuestMemory {
    let ram: GuestRAM
    var onRead: (UInt64) -> Void = { _ in }
    init(ram: GuestRAM) { self.ram = ram }
    func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) {
        try ram.read(address, into: buffer)
        onRead(address)
    }
    func write(_ address: UInt64, from bytes: UnsafeRawBufferPointer) throws(GuestMemoryError) {
        try ram.write(address, from: bytes)
    }
}
