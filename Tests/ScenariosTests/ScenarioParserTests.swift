import GuestDriver
import Testing
import VirtioCore
@testable import Scenarios

@Suite("Scenario parser")
struct ScenarioParserTests {
    func parse(_ text: String) throws -> Scenario { try ScenarioParser.parse(file: "t.scenario", text: text) }

    /// The error a text produces, as `LINE:COLUMN: message`.
    func failure(_ text: String) -> String {
        do throws(ScenarioError) {
            _ = try ScenarioParser.parse(file: "t.scenario", text: text)
            return "no error"
        } catch {
            return "\(error.line):\(error.column): \(error.message)"
        }
    }

    @Test func numbersTakeHexUnderscoresAndSuffixes() {
        #expect(parseNumber("42") == .some(42))
        #expect(parseNumber("0x2a") == .some(42))
        #expect(parseNumber("0X2A") == .some(42))
        #expect(parseNumber("65_557") == .some(65_557))
        #expect(parseNumber("16M") == .some(16 << 20))
        #expect(parseNumber("4k") == .some(4096))
        #expect(parseNumber("1G") == .some(1 << 30))
        #expect(parseNumber("0x10K") == .some(16 << 10))
        #expect(parseNumber("18446744073709551615") == .some(.max))
        #expect(parseNumber("18446744073709551616") == .some(nil))
        #expect(parseNumber("16777216T") == .none)
        #expect(parseNumber("17179869184G") == .some(nil))
        #expect(parseNumber("0x") == .none)
        #expect(parseNumber("12a") == .none)
        #expect(parseNumber("-1") == .none)
        #expect(parseNumber("") == .none)
    }

    @Test func setupAndDefaults() throws {
        let s = try parse("""
            # Summary line.
            # more
            device nics=2 queue_pairs=3 mac=52:54:00:00:00:09
            memory 32M
            memory map 0x100000000 1M
            """)
        #expect(s.summary == "Summary line.")
        #expect(s.setup.nics == 2 && s.setup.queuePairs == 3)
        #expect(s.setup.mac == MACAddress(0x52, 0x54, 0, 0, 0, 9))
        #expect(s.setup.regions == [MemoryRegion(base: 0, size: 32 << 20), MemoryRegion(base: 1 << 32, size: 1 << 20)])
        #expect(s.steps.isEmpty)
        let d = try parse("driver init\n")
        #expect(d.setup.regions == [MemoryRegion(base: 0, size: 16 << 20)])
        #expect(d.steps == [ScenarioStep(line: 1, column: 1, nic: 0, repeatCount: 1,
                                         operation: .driverInit(features: nil, queueSize: 256, quirks: DriverQuirks(), driverOK: true))])
    }

    @Test func operationsParseToExactValues() throws {
        let s = try parse("""
            driver init features=0x100000020 qsize=16 used_at=1:0x4000000 notready=0 nodriverok
            mmio write 0x70 0xf width=1   # comment after an operation
            mmio read 0x100 width=2 expect=0x0002
            mem write 0x900000 de ad beef
            mem fill 0x900000 4K 0xee
            mem expect 0x900000 eeee
            rx post pair=0 count=3 len=100 descs=2
            tx send count=2 len=10 descs=3 fill=7 nokick
            chain queue=1 desc=0x900000:12 desc=0x901000:64:w nokick
            avail idx queue=1 value=1000
            kick queue=0xffffffff
            ctrl mq pairs=2 nokick
            irq ack value=3
            expect counters tx_packets=1 rx_bytes=0x40
            expect used queue=1 entry=2 len=0
            expect used queue=0 idx=3
            expect status 0x4f
            expect interrupt 3
            expect pairs 2
            expect poisoned queue=1 value=0
            expect rx pair=0 entry=1 frame=0001
            unbind memory
            bind memory
            repeat 5 reset
            """)
        var quirks = DriverQuirks()
        quirks.usedRing[1] = 0x400_0000
        quirks.leaveNotReady = [0]
        let ops = s.steps.map(\.operation)
        #expect(ops == [
            .driverInit(features: 0x1_0000_0020, queueSize: 16, quirks: quirks, driverOK: false),
            .mmioWrite(offset: 0x70, value: 0xF, width: 1),
            .mmioRead(offset: 0x100, width: 2, expect: 2),
            .memWrite(address: 0x90_0000, bytes: [0xDE, 0xAD, 0xBE, 0xEF]),
            .memFill(address: 0x90_0000, length: 4096, byte: 0xEE),
            .memExpect(address: 0x90_0000, bytes: [0xEE, 0xEE]),
            .rxPost(pair: 0, count: 3, length: 100, descriptors: 2),
            .txSend(pair: 0, count: 2, length: 10, descriptors: 3, fill: 7, kick: false),
            .chain(queue: 1, descriptors: [RawDescriptor(addr: 0x90_0000, len: 12), RawDescriptor(addr: 0x90_1000, len: 64, writable: true)], kick: false),
            .availIdx(queue: 1, value: 1000),
            .kick(queue: .max),
            .ctrlMQ(pairs: 2, kick: false),
            .irqAck(value: 3),
            .expectCounters([CounterValue(counter: .txPackets, value: 1), CounterValue(counter: .rxBytes, value: 64)]),
            .expectUsedEntry(queue: 1, entry: 2, id: nil, len: 0),
            .expectUsedIdx(queue: 0, value: 3),
            .expectStatus(0x4F),
            .expectInterrupt(3),
            .expectPairs(2),
            .expectPoisoned(queue: 1, poisoned: false),
            .expectRxFrame(pair: 0, entry: 1, bytes: [0, 1]),
            .bindMemory(false),
            .bindMemory(true),
            .reset,
        ])
        #expect(s.steps.last?.repeatCount == 5)
        #expect(s.steps[1].line == 2)
    }

    @Test(arguments: [
        ("bogus op\n", "1:1: unknown operation 'bogus' (see docs/scenarios.md)"),
        ("tx sned\n", "1:4: unknown operation 'tx sned'; 'tx' takes: tx send"),
        ("expect\n", "1:7: unknown operation 'expect'; 'expect' takes: expect aggregate, expect counters, expect interrupt, expect pairs, expect poisoned, expect rx, expect status, expect used"),
        ("driver init\ntx send count=3 bogus=1\n", "2:17: unknown key 'bogus' for 'tx send'"),
        ("driver init\ntx send count=x\n", "2:15: 'x' is not a number (decimal, 0x hex, optional K/M/G suffix)"),
        ("driver init\ntx send count=\n", "2:15: 'count=' needs a value"),
        ("driver init\ntx send count=1 count=2\n", "2:17: key 'count' given twice"),
        ("mmio write 0x70 1 width=3\n", "1:25: width must be 1, 2, 4 or 8, got 3"),
        ("mmio write 0x70 0x100 width=1\n", "1:17: value 0x100 does not fit in 1 byte"),
        ("mmio write 0x70\n", "1:1: 'mmio write' needs VALUE"),
        ("mmio read 0x70 0x1\n", "1:16: unexpected argument '0x1' for 'mmio read'"),
        ("tx send\n", "1:1: 'tx send' needs the driver: run 'driver init' first"),
        ("driver init\nreset\nrx post\n", "3:1: 'rx post' needs the driver: run 'driver init' first"),
        ("driver init\ndevice nics=2\n", "2:1: set-up ('device') must come before every other operation"),
        ("memory 1M\nmemory 2M\n", "2:1: 'memory SIZE' given twice"),
        ("memory 16M\nmemory map 0x800000 1M\n", "2:1: memory regions [0x0, +0x1000000) and [0x800000, +0x100000) overlap"),
        ("memory 0\nmemory map 0 0\n", "2:1: memory region [0x0, +0x0) is empty"),
        ("device nics=0\n", "1:13: nics=0 is out of range 1...64"),
        ("device mac=02:00\n", "1:12: bad MAC address '02:00' (want aa:bb:cc:dd:ee:ff)"),
        ("driver init nic=1\n", "1:17: nic=1 is out of range 0...0"),
        ("driver init qsize=3\n", "1:19: qsize must be a power of two, got 3"),
        ("driver init features=xyz\n", "1:22: features must be a 64-bit hex number, got 'xyz'"),
        ("driver init\nexpect counters tx_packet=1\n", "2:17: unknown counter 'tx_packet'; counters are tx_packets, tx_bytes, rx_packets, rx_bytes, tx_dropped_no_rx_buffer, tx_dropped_rx_poisoned, tx_chain_invalid, tx_oversize_dropped, rx_chain_invalid, rx_write_failed, tx_add_used_failures, rx_add_used_failures, invalid_avail_idx_count, ctrl_mq_set, ctrl_chain_invalid, ctrl_add_used_failures"),
        ("expect counters\n", "1:1: 'expect counters' needs at least one NAME=VALUE"),
        ("driver init\nchain queue=1\n", "2:1: 'chain' needs at least one desc=ADDR:LEN[:w]"),
        ("driver init\nchain queue=1 desc=0x10:5:r\n", "2:20: desc must be ADDR:LEN or ADDR:LEN:w, got '0x10:5:r'"),
        ("driver init\nchain queue=1 desc=0x10:0x100000000\n", "2:25: descriptor length must fit in 32 bits"),
        ("mem write 0x10 abc\n", "1:16: 'abc' is not hex bytes (pairs of hex digits, e.g. de ad be ef or deadbeef)"),
        ("mem fill 0x10 4 256\n", "1:17: BYTE must be in 0...255"),
        ("kick\n", "1:1: 'kick' needs queue=N"),
        ("kick queue=0x100000000\n", "1:12: queue=0x100000000 is out of range 0...4294967295"),
        ("repeat 0 reset\n", "1:8: repeat count must be in 1...100000000"),
        ("repeat 3\n", "1:1: 'repeat' takes a count and an operation: repeat N OPERATION ..."),
        ("repeat 2 device\n", "1:1: 'repeat' cannot apply to set-up"),
        ("reset nokick\n", "1:7: 'nokick' does not apply to 'reset'"),
        ("kick queue=1 2\n", "1:14: '2': positional arguments must come before key=value arguments"),
        ("reset\u{7}\n", "1:6: unexpected byte 0x7 (scenario files are text)"),
        ("driver init\nexpect used queue=1\n", "2:1: 'expect used' needs idx=V or entry=I"),
        ("driver init\nexpect used queue=1 idx=1 entry=2\n", "2:27: 'expect used' takes idx= or entry=, not both"),
    ])
    func malformedLinesFailAtTheRightColumn(_ text: String, _ expected: String) {
        #expect(failure(text) == expected)
    }

    @Test func longLinesAndBinaryGarbageAreRefusedCheaply() {
        let long = "# " + String(repeating: "x", count: 10_000_000) + "\n"
        #expect(failure(long) == "1:65537: line is 10000002 bytes long; the limit is 65536")
        var rng = SplitMix64(seed: 7)
        for _ in 0..<200 {
            let bytes = (0..<Int(rng.next() % 500)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            _ = try? ScenarioParser.parse(file: "g", bytes: bytes)  // must not trap
        }
        do {
            _ = try ScenarioParser.parse(file: "big", bytes: [UInt8](repeating: 0x0A, count: ScenarioParser.maxFileSize + 1))
            Issue.record("an oversized file parsed")
        } catch {
            #expect(error.line == 0 && error.description.hasPrefix("big: file is"))
        }
    }

    @Test func crlfAndTabsAndEmptyFilesAreFine() throws {
        let s = try parse("driver init\r\n\trx post\tcount=2\r\n\r\n")
        #expect(s.steps.count == 2)
        #expect(try parse("").steps.isEmpty)
        #expect(try parse("# only a comment").summary == "only a comment")
    }
}

@Suite("Scenario lines for traces: state, vhost, queue_max")
struct TraceScenarioLineTests {
    func failure(_ text: String) -> String { ScenarioParserTests().failure(text) }

    @Test func aStateLineStartsTheDeviceThere() throws {
        let text = """
            device queue_max=512
            state nic=0 status=0xf features=0x100000020 pairs=1 irqs=7 bound=0 q1=512,1,0x2000,0x3000,0x4000,5,5,0 tx_packets=9
            bind memory
            mmio read 0x70
            expect counters tx_packets=9
            """
        let scenario = try ScenarioParser.parse(file: "t", text: text)
        let start = try #require(scenario.setup.states[0])
        #expect(!start.memoryBound && start.state.status.rawValue == 0xF && start.state.interruptsRaised == 7)
        #expect(start.state.queues[1].size == 512 && start.state.queues[1].ready && start.state.queues[1].nextAvail == 5)
        #expect(start.state.queues[1].descTable == 0x2000 && start.state.counters[.txPackets] == 9)
        var runner = try ScenarioRunner(scenario) { _ in NoObserver() }
        let r = runner.run()
        #expect(r.passed && runner.devices[0].state.queues[1].maxSize == 512)
        #expect(failure("device\nstate q1=3,1,0,0,0,0,0,0\n").hasPrefix("2:1: no device can be in this state"))
        #expect(failure("device\nstate q1=1,2\n").hasPrefix("2:10: q1=1,2: want SIZE,READY,"))
        #expect(failure("device\nstate\nstate\n").hasPrefix("3:1: a second 'state' for nic=0"))
        #expect(failure("device\nmmio read 0x70\nstate\n").hasPrefix("3:1: set-up ('state') must come before"))
        #expect(failure("device queue_max=0\n").hasPrefix("1:18: queue_max=0 is out of range 1...32768"))
    }

    @Test func vhostLinesApplyTheTransportsOperations() throws {
        let text = """
            device
            vhost features 0x100000000
            vhost ring-size queue=1 size=64
            vhost ring-addresses queue=1 desc=0x10000 avail=0x11000 used=0x12000
            vhost ring-base queue=1 base=3
            vhost ring-enable queue=1 enabled=1
            vhost kick queue=1
            vhost ring-stop queue=1
            expect status 0x4f
            expect counters invalid_avail_idx_count=1
            """
        let scenario = try ScenarioParser.parse(file: "t", text: text)
        #expect(scenario.steps.map(\.operation).prefix(7) == [
            .vhost(.setFeatures(0x1_0000_0000)), .vhost(.setRingSize(queue: 1, size: 64)),
            .vhost(.setRingAddresses(queue: 1, desc: 0x10000, avail: 0x11000, used: 0x12000)), .vhost(.setRingBase(queue: 1, base: 3)),
            .vhost(.enableRing(queue: 1, enabled: true)), .vhost(.kick(queue: 1)), .vhost(.stopRing(queue: 1)),
        ])
        var runner = try ScenarioRunner(scenario) { _ in NoObserver() }
        let r = runner.run()
        // The ring resumes at 3 while avail.idx in memory is 0: the kick poisons it (NEEDS_RESET).
        #expect(r.passed, "\(r.failures)")
        #expect(runner.devices[0].state.queues[1].nextAvail == 3 && !runner.devices[0].state.queues[1].ready)
        #expect(failure("device\nvhost ring-size size=4\n").hasPrefix("2:1: 'vhost ring-size' needs queue=N"))
    }
}

@Suite("Scenario runner")
struct ScenarioRunnerTests {
    func run(_ text: String) throws -> ScenarioResult {
        var runner = try ScenarioRunner(try ScenarioParser.parse(file: "t", text: text))
        return runner.run()
    }

    @Test func passingScenarioCountsExpectationsAndOperations() throws {
        let r = try run("driver init\nrx post\nrepeat 3 tx send\nexpect counters tx_packets=3 rx_packets=1 tx_dropped_no_rx_buffer=2\n")
        #expect(r.passed && r.failures.isEmpty && r.error == nil)
        #expect(r.expectationsChecked == 1 && r.operationsRun == 6)
        #expect(r.counters[0] == NetCounters(values: [3, 192, 1, 64, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])!)
    }

    @Test func failedExpectationsAreCollectedAndTheRunGoesOn() throws {
        let r = try run("driver init\nexpect counters tx_packets=1\nrx post\ntx send\nexpect counters tx_packets=1 rx_bytes=65\nexpect status 0xf\n")
        #expect(r.failures.map(\.description) == [
            "t:2: expected tx_packets=1, got tx_packets=0",
            "t:5: expected rx_bytes=65, got rx_bytes=64",
        ])
        #expect(r.expectationsChecked == 3 && !r.passed)
    }

    @Test func driverErrorsStopTheRunAtTheirLine() throws {
        let r = try run("driver init qsize=2\nrx post count=3\ntx send\n")
        #expect(r.error?.description == "t:2:1: queue 0 has 2 free descriptors, 3 needed")
        #expect(r.operationsRun == 1)
        let m = try run("mem write 0x4000000 00\n")
        #expect(m.error?.description == "t:1:1: guest memory access of 1 bytes at 0x4000000 touches unmapped memory")
    }

    @Test func aSmallQueueCarriesAnyAmountOfTraffic() throws {
        let r = try run("driver init qsize=4\nrepeat 1000 rx post count=2\n")
        #expect(r.error?.description == "t:2:13: queue 0 has 0 free descriptors, 2 needed")
        let ok = try run("driver init qsize=4\nrepeat 500 rx post count=2\n")
        #expect(ok.error?.line == 2)  // RX buffers are only reclaimed once used
        var text = "driver init qsize=4\n"
        for _ in 0..<300 { text += "rx post count=2\ntx send count=2\n" }
        text += "expect counters tx_packets=600 rx_packets=600\nexpect used queue=0 entry=599 len=76\n"
        let loop = try run(text)
        #expect(loop.passed, "\(loop.failures) \(String(describing: loop.error))")
    }

    @Test func unmappedMemoryLayoutIsReportedAsAWholeFileError() throws {
        // Set-up checks happen at parse time: an overlapping map is a line error.
        #expect(throws: ScenarioError.self) { try ScenarioParser.parse(file: "t", text: "memory 1M\nmemory map 0 1M\n") }
    }
}
