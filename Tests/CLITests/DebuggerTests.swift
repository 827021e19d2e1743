import Foundation
import Testing

/// `vtrace debug` driven through a pipe: every stop is asserted by its exact event.
@Suite("vtrace debug")
struct DebugSessionTests {
    func golden(_ name: String) -> String { repositoryRoot.appendingPathComponent("traces/golden/\(name).vtrace").path }

    func session(_ trace: String, _ input: String, arguments: [String] = []) throws -> [String] {
        try debugSession(trace, input, arguments: arguments)
    }

    func after(_ marker: String, _ lines: [String], nth: Int = 1) -> ArraySlice<String> { linesAfter(marker, lines, nth: nth) }

    /// A breakpoint inside a kick's drain stops exactly there, on a scenario
    /// trace, a KVM guest's and a Linux boot over vhost-user; `step` replays
    /// exactly that event.
    @Test(arguments: [("long-drain", UInt64(700), UInt64(87), "#700 nic0 mem write 0x10190a +2 = 1c 00"),
                      ("kvm-hostile", 604, 487, "#604 nic0 mem write 0x10282b4 +8 = 05 00 00 00 4c 00 00 00"),
                      ("vhost-linux", 300, 97, "#300 nic0 used q0 id 12 len 72")])
    func aBreakpointInsideAKickStopsThere(name: String, n: UInt64, access: UInt64, event: String) throws {
        let lines = try session(golden(name), "break \(n)\ncontinue\nstep\nquit\n")
        #expect(lines.contains("breakpoint 1 at event \(n)"))
        let stop = after("breakpoint 1, event \(n)", lines)
        #expect(stop.first == "at event \(n), inside the access #\(access) (\(n - access) events in)", "\(lines)")
        #expect(stop.dropFirst().first?.hasPrefix("next: " + event) == true, "\(lines)")
        // One step replays event n, and only it.
        #expect(stop.dropFirst(2).first?.hasPrefix(event) == true, "\(lines)")
        #expect(stop.dropFirst(3).first == "at event \(n + 1), inside the access #\(access) (\(n + 1 - access) events in)", "\(lines)")
    }

    /// `where`, `counters`, `queues` and `chain` inside a drain show the state
    /// at that event, not at the kick.
    @Test func whereAndTheStateInsideADrain() throws {
        let lines = try session(golden("long-drain"), "goto 700\nwhere\ncounters\nqueues\nchain\nquit\n")
        let at = after("next: #0 nic0 mmio write Status/4 = 0x0", lines)
        #expect(Array(at.prefix(2)) == ["at event 700, inside the access #87 (613 events in)",
                                        "next: #700 nic0 mem write 0x10190a +2 = 1c 00 — q1 used ring, idx"])
        #expect(Array(at.dropFirst(2).prefix(9)) == [
            "at event 700, inside the access #87 (613 events in)",
            "  access  #87 nic0 mmio write QueueNotify/4 = 0x1",
            "  chain   #685 q1 head 27, 1 descriptor",
            "          0: addr 0x11a7c0 len 212 flags 0",
            "  chain   #691 q0 head 54, 2 descriptors",
            "          0: addr 0x112820 len 1024 flags NEXT|WRITE next 55",
            "          1: addr 0x112c20 len 1024 flags WRITE",
            "  next: #700 nic0 mem write 0x10190a +2 = 1c 00 — q1 used ring, idx",
            "  counters of nic0 so far: tx_packets 27, tx_bytes 5400, rx_packets 28, rx_bytes 5600, ctrl_mq_set 1",
        ], "\(lines)")
        #expect(lines.contains("tx_packets     27") && lines.contains("rx_packets     28"))
        // 28 TX chains popped and 28 used elements written (#699; event 700 writes the used
        // index, 0x1c = 28, that next_used already is); RX 28 and 28.
        #expect(lines.contains("  queue 0: size 128 next_avail 28 next_used 28"))
        #expect(lines.contains("  queue 1: size 128 next_avail 28 next_used 28"))
        #expect(lines.contains("#685 q1 head 27: 0: 0x11a7c0 len 212 0") && lines.contains("#691 q0 head 54: 0: 0x112820 len 1024 NEXT|WRITE; 1: 0x112c20 len 1024 WRITE"))
    }

    @Test func stepNextGotoBreakContinueAndErrors() throws {
        let lines = try session(golden("loopback-basic"), "event\nstep 2\ngoto 60\nnext\nbreak 110\ncontinue\ngoto 999\nfrob\nstep x\nbreak\nhelp watch\nhelp frob\nquit\n")
        #expect(lines.contains("next: #0 nic0 mmio write Status/4 = 0x0"))
        // step 2: events 0 and 1, then the stop before 2.
        let stepped = after("next: #0 nic0 mmio write Status/4 = 0x0", lines, nth: 2)
        #expect(Array(stepped.prefix(3)) == ["#0 nic0 mmio write Status/4 = 0x0", "#1 nic0 reset", "at event 2, between accesses"], "\(lines)")
        #expect(lines.contains("at event 60, inside the access #42 (18 events in)"))
        // next: on to the next access (#108), listing what the rest of the kick did.
        let next = after("next: #60 nic0 mem write 0x10320a +2 = 01 00 — q1 used ring, idx", lines)
        #expect(next.first == "#60 nic0 mem write 0x10320a +2 = 01 00")
        #expect(next.contains("… 28 more (`vtrace dump --from 80 --to 107` lists them)"))
        #expect(next.contains("at event 108, between accesses"))
        #expect(lines.contains("breakpoint 1 at event 110") && lines.contains("breakpoint 1, event 110") && lines.contains("at event 110, between accesses"))
        #expect(lines.contains("next: #110 nic0 mmio write InterruptACK/4 = 0x1"))
        #expect(lines.contains("no event 999: the trace has 112 events (0...111)"))
        #expect(lines.contains("unknown command 'frob'; `help` lists them"))
        #expect(lines.contains("'x' is not a number"))
        #expect(lines.contains("break needs an event number"))
        #expect(lines.contains("watch COUNTER|EXPR [nic=N]"))
        #expect(lines.contains("no command 'frob'; `help` lists them"))
    }

    /// Backwards: by events, to the start of the access, and to the previous breakpoint.
    @Test func reverseStepNextAndContinue() throws {
        let lines = try session(golden("long-drain"), "goto 700\nrs\nreverse-step 10\nrn\nrn\nbreak 650\nbreak 700\ngoto 720\nrc\nreverse-continue\nrc\nrs\nquit\n")
        #expect(lines.contains("at event 699, inside the access #87 (612 events in)"))
        #expect(lines.contains("at event 689, inside the access #87 (602 events in)"))
        // reverse-next: the start of the kick, then the access before it.
        #expect(lines.contains("at event 87, between accesses") && lines.contains("next: #87 nic0 mmio write QueueNotify/4 = 0x1"))
        #expect(lines.contains("at event 72, between accesses") && lines.contains("next: #72 nic0 mmio write QueueNotify/4 = 0x4"))
        let back = after("at event 720, inside the access #87 (633 events in)", lines)
        #expect(Array(back.dropFirst().prefix(2)) == ["breakpoint 2, event 700", "at event 700, inside the access #87 (613 events in)"], "\(lines)")
        #expect(back.contains("breakpoint 1, event 650") && back.contains("at event 650, inside the access #87 (563 events in)"))
        #expect(back.contains("no earlier breakpoint or watch hit: back at the start") && back.contains("at event 0, between accesses"))
        #expect(back.contains("at event 0: the start of the trace"))
    }

    /// Watchpoints of each kind: a counter on any NIC, on one NIC, and a
    /// predicate; reverse-continue lands on the previous hit.
    @Test func watchpointsAndReverseContinue() throws {
        let lines = try session(golden("nics-aggregate"), """
            watch rx_packets
            continue
            continue
            continue
            rc
            rc
            delete 1
            watch tx_packets nic=1
            watch 'tx_dropped_no_rx_buffer + tx_oversize_dropped >= 2'
            info breakpoints
            continue
            continue
            continue
            rc
            watch rx_packets nic=5
            watch frob
            quit

            """)
        #expect(lines.contains("watch 1: rx_packets on any NIC"))
        let first = after("watch 1: nic0 rx_packets 0 -> 1 at event 138", lines)
        #expect(first.first == "at event 139, inside the access #123 (16 events in)", "\(lines)")
        #expect(lines.contains("watch 1: nic0 rx_packets 1 -> 2 at event 159") && lines.contains("at event 160, inside the access #123 (37 events in)"))
        // No third change: the replay runs to the end.
        #expect(lines.contains("end of trace"))
        // Back from the end: the second hit, then the first.
        let back = after("end of trace", lines)
        #expect(back.first == "watch 1: nic0 rx_packets 1 -> 2 at event 159" && back.dropFirst().first == "at event 160, inside the access #123 (37 events in)", "\(lines)")
        #expect(back.dropFirst(3).first == "watch 1: nic0 rx_packets 0 -> 1 at event 138")
        #expect(lines.contains("deleted 1"))
        #expect(lines.contains("watch 2: tx_packets on nic1"))
        #expect(lines.contains("watch 3: '((tx_dropped_no_rx_buffer + tx_oversize_dropped) >= 2)'"))
        #expect(lines.contains("2   watch       tx_packets on nic1                        0"))
        // From 139: nic1's tx_packets at 179 (nic0's at 143 and 164 are not watched), then the predicate at 188.
        #expect(lines.contains("watch 2: nic1 tx_packets 0 -> 1 at event 179") && lines.contains("at event 180, inside the access #168 (12 events in)"))
        #expect(lines.contains("watch 3: nic2 tx_oversize_dropped 0 -> 1 at event 188") && lines.contains("at event 189, inside the access #183 (6 events in)"))
        let rc = after("end of trace", lines, nth: 2)
        #expect(rc.first == "watch 3: nic2 tx_oversize_dropped 0 -> 1 at event 188", "\(lines)")
        #expect(lines.contains("'nic=5': the trace has 3 NICs (nic=0…2)"))
        #expect(lines.contains { $0.hasPrefix("watch: 'frob' is neither a counter name nor a predicate") })
    }

    /// A KVM guest's hostile trace: watching a poison counter stops after its change.
    @Test func watchOnAKVMTraceAndAVhostBoot() throws {
        let kvm = try session(golden("kvm-hostile"), "watch invalid_avail_idx_count\ncontinue\nwatch rx_chain_invalid\ncontinue\nrc\nquit\n")
        #expect(kvm.contains("watch 1: nic0 invalid_avail_idx_count 0 -> 1 at event 89"))
        #expect(kvm.contains("watch 2: nic0 rx_chain_invalid 0 -> 1 at event 287"))
        #expect(after("watch 2: nic0 rx_chain_invalid 0 -> 1 at event 287", kvm, nth: 1).first?.hasPrefix("at event 288, inside the access #277") == true, "\(kvm)")
        #expect(after("watch 2: nic0 rx_chain_invalid 0 -> 1 at event 287", kvm, nth: 1).dropFirst(2).first == "watch 1: nic0 invalid_avail_idx_count 0 -> 1 at event 89")
        let boot = try session(golden("vhost-linux"), "watch 'rx_bytes > 1000'\ncontinue\nwhere\nquit\n")
        #expect(boot.contains("watch 1: nic0 rx_bytes 942 -> 1002 at event 386"), "\(boot)")
        #expect(boot.contains("  access  #97 nic0 vhost kick q1"))
    }

    /// `why` inside a session explains the counter's last change before the stop.
    @Test func whyAtAStop() throws {
        let lines = try session(golden("kvm-hostile"), "goto 300\nwhy rx_write_failed\nwhy rx_packets\nwhy tx_packets nic=3\nwhy frob\nquit\n")
        let why = after("at event 300, inside the access #298 (2 events in)", lines).dropFirst()
        #expect(why.first == "rx_write_failed 0 -> 1 at event 165 (nic0)", "\(lines)")
        #expect(why.contains("access    #154 mmio write QueueNotify/4 = 0x1"))
        #expect(why.contains("path      valid frame, RX write fault (hdr or data), recycle ok / fails"))
        #expect(lines.contains("rx_packets has not changed before event 300"))
        #expect(lines.contains("'nic=3': the trace has 1 NIC (nic=0…0)"))
        #expect(lines.contains { $0.hasPrefix("why needs a counter: tx_packets, tx_bytes,") })
    }

    /// The state between the avail entry read and the chain event, and between
    /// the used element write and the used event, is the device's: its
    /// next_avail moved on the read, its next_used on the element write.
    @Test func queueIndicesMoveWhereTheDeviceMovesThem() throws {
        let lines = try session(golden("long-drain"), "goto 155\nqueues\ngoto 156\nqueues\ngoto 158\nqueues\ngoto 150\nqueues\ngoto 149\nqueues\nquit\n")
        func q1(after stop: String) -> String? { after(stop, lines).first { $0.hasPrefix("  queue 1:") } }
        // #155 reads avail ring[3]; #157 is the chain; #149 writes used ring[2], #151 is the used event.
        #expect(q1(after: "at event 155, inside the access #87 (68 events in)") == "  queue 1: size 128 next_avail 3 next_used 3")
        #expect(q1(after: "at event 156, inside the access #87 (69 events in)") == "  queue 1: size 128 next_avail 4 next_used 3")
        #expect(q1(after: "at event 158, inside the access #87 (71 events in)") == "  queue 1: size 128 next_avail 4 next_used 3")
        #expect(q1(after: "at event 149, inside the access #87 (62 events in)") == "  queue 1: size 128 next_avail 3 next_used 2")
        #expect(q1(after: "at event 150, inside the access #87 (63 events in)") == "  queue 1: size 128 next_avail 3 next_used 3")
    }

    /// Several watchpoints firing at one event are all named and counted;
    /// counts of 0 are refused, not run.
    @Test func watchesAtOneEventAndZeroCounts() throws {
        let lines = try session(golden("nics-aggregate"), """
            watch tx_packets
            watch 'tx_packets >= 3'
            watch tx_packets nic=1
            continue
            continue
            continue
            info breakpoints
            next 0
            reverse-next 0
            step 0
            rs 0
            quit

            """)
        let third = after("watch 1: nic0 tx_packets 1 -> 2 at event 164", lines).dropFirst(2)
        #expect(Array(third.prefix(4)) == ["watch 1: nic1 tx_packets 0 -> 1 at event 179", "watch 2: nic1 tx_packets 0 -> 1 at event 179",
                                          "watch 3: nic1 tx_packets 0 -> 1 at event 179", "at event 180, inside the access #168 (12 events in)"], "\(lines)")
        #expect(lines.contains("1   watch       tx_packets on any NIC                     3"))
        #expect(lines.contains("2   watch       '(tx_packets >= 3)'                       1"), "\(lines)")
        #expect(lines.contains("3   watch       tx_packets on nic1                        1"))
        for c in ["next", "reverse-next", "step", "reverse-step"] { #expect(lines.contains("\(c) 0 goes nowhere: N is at least 1")) }
    }

    /// With a fault, going back and forth finds the same divergence (the
    /// replay starts over from the first chunk, where the fault counts from).
    @Test func aFaultDivergesAtTheSameEventAfterGoingBack() throws {
        let lines = try session(golden("kvm-hostile"), "continue\nrs\ncontinue\ngoto 600\n", arguments: ["--fault", "count-twice:tx_packets:4"])
        let diverged = lines.filter { $0.hasPrefix("DIVERGED at event ") }
        #expect(diverged.count == 3 && diverged.allSatisfy { $0.hasPrefix("DIVERGED at event 507 ") }, "\(diverged)")
        #expect(lines.contains("at event 506, inside the access #487 (19 events in)"))
    }

    /// A chunk that does not decode: events before it are still reached;
    /// going into it says so and stays where the replay was.
    @Test func aCorruptChunkDoesNotEndTheSession() throws {
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: golden("long-drain"))))
        for i in 2400..<2404 { bytes[i] = 0xFF }
        let trace = try temporaryFile("long-drain-corrupt.vtrace", bytes)
        let lines = try session(trace, "goto 150\ngoto 170\nwhere\nstep 30\nwhere\nquit\n")
        #expect(lines.contains("at event 150, inside the access #87 (63 events in)"), "\(lines)")
        #expect(lines.contains { $0.hasPrefix("error: ") && $0.contains("chunk 5") }, "\(lines)")
        #expect(after("at event 150, inside the access #87 (63 events in)", lines, nth: 3).contains { $0.hasPrefix("  next: #150 ") }, "\(lines)")
        #expect(lines.filter { $0.hasPrefix("error: ") && $0.contains("chunk 5") }.count == 2, "\(lines)")
    }

    /// A divergence stops the replay; going back from it works.
    @Test func backFromADivergence() throws {
        let lines = try session(golden("loopback-basic"), "continue\nwhere\ncontinue\nrs\nwhere\nquit\n", arguments: ["--fault", "count-twice:rx_packets:2"])
        #expect(lines.contains { $0.hasPrefix("DIVERGED at event 78") }, "\(lines)")
        // The state at the divergence is the checked one: inside the kick, before event 78.
        #expect(lines.contains("at event 78, inside the access #42 (36 events in)"))
        #expect(lines.contains("the replay diverged at event 78: it cannot go on (go back with reverse-step, reverse-continue or goto)"))
        #expect(lines.contains("at event 77, inside the access #42 (35 events in)"))
        #expect(lines.contains("  counters of nic0 so far: tx_packets 1, tx_bytes 64, rx_packets 1, rx_bytes 64"))
    }
}

/// Runs `vtrace debug` with `input` as its commands; returns its output lines.
func debugSession(_ trace: String, _ input: String, arguments: [String] = []) throws -> [String] {
    let p = Process()
    p.executableURL = CLI.productsDirectory.appendingPathComponent("vtrace")
    p.arguments = ["debug", trace] + arguments
    let inPipe = Pipe(), outPipe = Pipe()
    p.standardInput = inPipe
    p.standardOutput = outPipe
    p.standardError = outPipe
    try p.run()
    inPipe.fileHandleForWriting.write(Data(input.utf8))
    try inPipe.fileHandleForWriting.close()
    let text = String(decoding: outPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    #expect(p.terminationStatus == 0)
    return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
}

/// The lines after the `nth` one equal to `marker` (what one command printed).
func linesAfter(_ marker: String, _ lines: [String], nth: Int = 1) -> ArraySlice<String> {
    var seen = 0
    for (i, l) in lines.enumerated() where l == marker {
        seen += 1
        if seen == nth { return lines[(i + 1)...] }
    }
    return []
}
