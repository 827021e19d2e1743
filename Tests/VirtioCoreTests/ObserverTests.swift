import GuestDriver
import Testing
import VirtioCore

@Suite("Observation hooks")
struct ObserverTests {
    /// A short tag per event, to compare orders.
    static func tag(_ e: DeviceEvent) -> String {
        switch e {
        case .mmioRead(let o, _, _): return "mmio-r \(MMIORegister.describe(offset: o))"
        case .mmioWrite(let o, _, let v): return "mmio-w \(MMIORegister.describe(offset: o))=\(v)"
        case .memoryRead(_, let b, let ok): return "read \(b.count)\(ok ? "" : "!")"
        case .memoryWrite(_, let b, let ok): return "write \(b.count)\(ok ? "" : "!")"
        case .chainPopped(let q, let h, let d): return "chain q\(q) h\(h) n\(d.count)"
        case .usedPublished(let q, let id, let len): return "used q\(q) \(id)/\(len)"
        case .counter(let c, let v): return "\(c.name)=\(v)"
        case .interrupt(let k): return "irq \(k.rawValue)"
        case .poisoned(let q, _): return "poison q\(q)"
        case .status(_, let b): return "status \(b)"
        case .driverFeatures(_, let b): return "features \(b)"
        case .activeQueuePairs(_, let b): return "pairs \(b)"
        case .reset: return "reset"
        case .warning: return "warning"
        }
    }

    @Test func loopbackEventsComeInCausalOrder() throws {
        let h = Harness.ready(memoryEvents: true)
        try h.postRx()
        try h.sendTx(kick: false)
        let mark = h.events.count
        h.kick(1)
        let tags = h.events[mark...].map(Self.tag)
        #expect(tags == [
            "mmio-w QueueNotify=1",
            "read 2", "read 2", "read 16", "chain q1 h0 n1",  // TX avail.idx, head, descriptor
            "read 64",  // frame (the header is skipped, never read)
            "read 2", "read 2", "read 16", "chain q0 h0 n1",  // RX pop
            "write 12", "write 64",  // header, frame
            "write 8", "write 2", "used q0 0/76",  // RX used element, used.idx
            "rx_packets=1", "rx_bytes=64",
            "write 8", "write 2", "used q1 0/0",
            "tx_packets=1", "tx_bytes=64",
            "read 2",  // the drain's final empty pop
            "irq 1",
        ])
    }

    @Test func readIsReportedWithItsValueAndWritesBeforeEffects() {
        let h = Harness()
        _ = h.read(.magicValue)
        h.write(.status, 1)
        #expect(h.events == [
            .mmioRead(offset: 0, width: 4, value: 0x7472_6976),
            .mmioWrite(offset: 0x70, width: 4, value: 1),
            .status(from: 0, to: 1),
        ])
    }

    @Test func failedAccessesAreReportedAsFailed() throws {
        let h = Harness.ready(memoryEvents: true)
        try h.rawChain(queue: 0, [RawDescriptor(addr: 0x1_0000_0000, len: 100, writable: true)], kick: false)
        let mark = h.events.count
        try h.sendTx()
        #expect(h.events[mark...].contains(.memoryWrite(address: 0x1_0000_0000, bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], succeeded: false)))
    }

    @Test func observerDoesNotChangeBehaviour() throws {
        // The same guest actions against an observed and an unobserved device
        // leave identical state and memory.
        let ramA = try GuestRAM(size: 16 << 20), ramB = try GuestRAM(size: 16 << 20)
        var a = VirtioNetDevice(config: NetConfig(queuePairs: 2), memory: ramA, observer: EventLog(includeMemory: true))
        var b = VirtioNetDevice(config: NetConfig(queuePairs: 2), memory: ramB)
        var da = VirtioNetDriver(memory: ramA), db = VirtioNetDriver(memory: ramB)
        try da.initialize(&a)
        try db.initialize(&b)
        for i in 0..<50 {
            try da.postRx(length: 100 + i)
            try db.postRx(length: 100 + i)
            let sa = try da.sendTx(&a, length: i * 7)
            let sb = try db.sendTx(&b, length: i * 7)
            #expect(sa == sb)
        }
        try da.controlSetPairs(&a, pairs: 2)
        try db.controlSetPairs(&b, pairs: 2)
        #expect(a.state == b.state)
        #expect(a.interruptsRaised == b.interruptsRaised)
        #expect(try ramA.bytes(at: 0x10_0000, count: 0x10_0000) == (try ramB.bytes(at: 0x10_0000, count: 0x10_0000)))
    }

    @Test func counterEventsReplayToFinalCounters() throws {
        let h = Harness.ready()
        try h.postRx(count: 3)
        try h.sendTx(count: 5, length: 33)
        var rebuilt = NetCounters()
        for case .counter(let c, let v) in h.events { rebuilt[c] = v }
        #expect(rebuilt == h.counters)
        #expect(rebuilt == counters([.txPackets: 5, .txBytes: 165, .rxPackets: 3, .rxBytes: 99, .txDroppedNoRxBuffer: 2]))
    }
}

@Suite("README")
struct ReadmeTests {
    @Test func usageExampleDoesWhatTheReadmeSays() throws {
        let ram = try GuestRAM(size: 16 << 20)
        var nic = VirtioNetDevice(config: NetConfig(queuePairs: 1), memory: ram)
        var driver = VirtioNetDriver(memory: ram)
        try driver.initialize(&nic)
        try driver.postRx(count: 4)
        let irq = try driver.sendTx(&nic, count: 4, length: 64)
        #expect("\(irq) \(nic.counters.txPackets) \(nic.counters.rxBytes)" == "vring 4 256")
    }
}
