import Foundation
import Testing
import TraceFormat

/// Real drivers nobody here wrote, over `vtrace serve --vhost-user`: Linux's
/// virtio_net under QEMU (TCG), and DPDK's virtio-user in dpdk-testpmd. Each
/// test skips, saying why, where its tools are missing.
@Suite("vhost-user with real drivers", .serialized)
struct VhostUserCLITests {
    static var vtrace: String { CLI.productsDirectory.appendingPathComponent("vtrace").path }

    /// The guest's build: nil when it built, else whether the test should
    /// skip (QEMU missing, or the kernel package cannot be fetched here: the
    /// script's exit 3) and why. Any other failure of the build fails the test.
    static let linuxUnavailable: (skip: Bool, why: String)? = {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") else {
            return (true, "qemu-system-x86_64 is not installed")
        }
        guard let build = try? runCombined(repositoryRoot.appendingPathComponent("tools/linux-guest/build.sh").path, []) else {
            return (false, "tools/linux-guest/build.sh did not run")
        }
        switch build.status {
        case 0: return nil
        case 3: return (true, "the kernel package cannot be fetched here: \(build.output)")
        default: return (false, "QEMU is here but the Linux guest does not build (tools/linux-guest/build.sh):\n\(build.output)")
        }
    }()

    struct Boot {
        var status: Int32
        var report: [String: Any]
        var output: String
        var guest: [String: Int] { (report["guest"] as? [String: Any] ?? [:]).compactMapValues { $0 as? Int } }
        var device: [String: Int] { (report["device"] as? [String: Any] ?? [:]).compactMapValues { $0 as? Int } }
    }

    /// Boots the guest with `frames` small and `large` MTU-sized pktgen frames.
    func boot(record: String, fault: String? = nil, frames: Int = 300, large: Int = 20) throws -> Boot {
        let json = try temporaryFile("boot-\(UUID().uuidString).json", [])
        var args = ["--record", record, "--json", json, "--append", "vtrace.frames=\(frames) vtrace.large=\(large)"]
        if let fault { args += ["--fault", fault] }
        let r = try runCombined(repositoryRoot.appendingPathComponent("tools/linux-guest/boot.sh").path, args, environment: ["VTRACE": Self.vtrace])
        let report = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json)))) as? [String: Any] ?? [:]
        return Boot(status: r.status, report: report, output: r.output)
    }

    @Test func aRecordedLinuxBootAgreesReplaysAndAFaultShowsWhereItBites() throws {
        if let (skip, why) = Self.linuxUnavailable {
            if skip { print("SKIPPED: Linux boot over vhost-user: \(why)") } else { Issue.record("\(why)") }
            return
        }
        // A clean boot: 3 ARPs, 300 frames of 60 bytes, 20 of 1514, all looped back.
        let clean = try temporaryFile("linux-clean.vtrace", [])
        let b = try boot(record: clean)
        #expect(b.status == 0, "\(b.output)")
        for k in ["tx_packets", "rx_packets", "tx_bytes", "rx_bytes"] {
            #expect(b.guest[k] != nil && b.guest[k] == b.device[k], "\(k): guest \(String(describing: b.guest[k])), device \(String(describing: b.device[k]))")
        }
        #expect(b.device["tx_packets"] == 323, "\(b.output)")
        #expect((b.device["rx_packets"] ?? 0) + (b.device["tx_dropped_no_rx_buffer"] ?? 0) == 323)
        let replay = try CLI.run("replay", clean)
        #expect(replay.status == 0 && replay.stdout.contains("replay matches"), "\(replay.stdout)")
        let check = try CLI.run("check", clean)
        #expect(check.status == 0, "\(check.stdout)")
        let info = try CLI.run("info", clean)
        #expect(info.stdout.contains("transport  vhost-user"))
        // The guest's frames, rebuilt from the trace: one per counted packet.
        let pcap = try temporaryFile("linux-clean.pcapng", [])
        let export = try CLI.run("export", clean, "--format", "pcapng", "-o", pcap)
        let rx = b.device["rx_packets"] ?? 0
        #expect(export.status == 0 && export.stderr.contains("wrote \(323 + rx) frames (323 tx, \(rx) rx)"), "\(export.stderr)")

        // The 100th RX delivery lost: the guest agrees with the device (both miss it);
        // replaying without the fault diverges right after the 100th RX chain.
        let faulted = try temporaryFile("linux-faulted.vtrace", [])
        let f = try boot(record: faulted, fault: "drop-rx:100")
        #expect(f.status == 0, "\(f.output)")
        #expect(f.device["tx_packets"] == 323 && f.guest["rx_packets"] == f.device["rx_packets"])
        #expect((f.device["rx_packets"] ?? 0) + (f.device["tx_dropped_no_rx_buffer"] ?? 0) == 322)
        let dump = try CLI.run("dump", faulted)
        let rxChains = dump.stdout.split(separator: "\n").filter { $0.contains(" chain q0 ") }
        let hundredth = try #require(rxChains.dropFirst(99).first.flatMap { UInt64($0.dropFirst().prefix { $0 != " " }) })
        let diverged = try CLI.run("replay", faulted)
        #expect(diverged.status == 1 && diverged.stdout.contains("DIVERGED at event \(hundredth + 1) "), "\(diverged.stdout)")
        #expect(try CLI.run("replay", faulted, "--fault", "drop-rx:100").status == 0)

        // diff finds the split: the clean boot counts the 100th frame in, the faulted one never does.
        let diff = try CLI.run("diff", clean, faulted)
        #expect(diff.status == 1)
        #expect(diff.stdout.contains("A sets rx_packets = 100 (+1)") && diff.stdout.contains("B has no such transition"), "\(diff.stdout)")
        // What B did there: an RX chain it popped and never published, and no count.
        #expect(diff.stdout.contains("where A counts it, B ") && diff.stdout.contains("and did not publish it as used")
                && diff.stdout.contains("and does not count rx_packets"), "\(diff.stdout)")
        try Self.everyEqualLineIsTheSameEvent(clean, faulted)
        try Self.theRunsCoincideOnThePlotUpToTheSplit(clean, faulted)
        try Self.theDebuggerStopsInsideTheLongestKick(clean)
    }

    /// On a real boot: a breakpoint two thirds into the longest kick's drain
    /// stops exactly there; a watch on rx_packets stops after each of its
    /// first three changes and reverse-continue lands back on the second.
    static func theDebuggerStopsInsideTheLongestKick(_ trace: String) throws {
        var causes: [UInt64] = [], rxPackets: [UInt64] = []
        for line in try CLI.run("dump", trace).stdout.split(separator: "\n") {
            guard let n = UInt64(line.dropFirst().prefix { $0 != " " }) else { continue }
            if line.contains(" vhost ") { causes.append(n) }
            if line.contains(" counter rx_packets = ") { rxPackets.append(n) }
        }
        let info = try JSONSerialization.jsonObject(with: Data(try CLI.run("info", trace, "--json").stdout.utf8)) as? [String: Any]
        let events = try #require(info?["events"] as? Int)
        let ends = causes.dropFirst() + [UInt64(events)]
        let (start, end) = try #require(zip(causes, ends).max { $0.1 - $0.0 < $1.1 - $1.0 })
        let n = start + (end - start) * 2 / 3
        let lines = try debugSession(trace, "break \(n)\ncontinue\nwhere\nwatch rx_packets\ndelete 1\ngoto 0\ncontinue\ncontinue\ncontinue\nrc\nquit\n")
        #expect(lines.contains("at event \(n), inside the access #\(start) (\(n - start) events in)"), "\(lines.prefix(12))")
        #expect(lines.contains { $0.hasPrefix("  access  #\(start) nic0 vhost kick q") })
        #expect(rxPackets.count >= 3)
        for (i, c) in rxPackets.prefix(3).enumerated() {
            #expect(lines.contains("watch 2: nic0 rx_packets \(i) -> \(i + 1) at event \(c)"), "\(lines)")
        }
        let back = linesAfter("watch 2: nic0 rx_packets 2 -> 3 at event \(rxPackets[2])", lines).dropFirst(2)
        #expect(back.first == "watch 2: nic0 rx_packets 1 -> 2 at event \(rxPackets[1])", "\(lines)")
        #expect(back.dropFirst().first?.hasPrefix("at event \(rxPackets[1] + 1), inside the access #") == true)
    }

    /// Two boots' event numbers drift apart; `plot` draws B on A's axis
    /// through the diff's alignment, so up to the split B's lines (orange,
    /// 1.4 px, drawn over A's 2.2 px blue) cover A's: in Chromium's rendering
    /// of the 300 events before the split, A's blue shows only as a fringe
    /// (far fewer pixels than B's orange), and never more than on the raw
    /// event-number axis (how far the runs drift there depends on the boot).
    static func theRunsCoincideOnThePlotUpToTheSplit(_ a: String, _ b: String) throws {
        let diff = try CLI.run("diff", a, b, "--json")
        let scope = try #require((try JSONSerialization.jsonObject(with: Data(diff.stdout.utf8)) as? [String: Any])?["scopes"] as? [[String: Any]])
        let split = try #require(scope.first?["event_a"] as? Int)
        var blue: [String: Int] = [:], orange: [String: Int] = [:]
        for axis in ["aligned", "events"] {
            let svg = try temporaryFile("coincide-\(axis).svg", [])
            let r = try CLI.run("plot", a, b, "--from", "\(max(0, split - 300))", "--to", "\(split)", "--x", axis, "-o", svg)
            #expect(r.status == 0, "\(r.stderr)")
            guard let fields = try renderedColours(svg, width: 1000, height: 700, name: "coincide-\(axis)") else {
                print("SKIPPED: chromium is not installed: the aligned plot was not rendered")
                return
            }
            if fields.count == 4 {
                blue[axis] = fields[2]
                orange[axis] = fields[3]
            }
        }
        let aligned = try #require(blue["aligned"]), events = try #require(blue["events"]), covering = try #require(orange["aligned"])
        #expect(aligned * 4 < covering && aligned <= events,
                "pixels before the split: A's blue \(aligned) aligned (B's orange \(covering)), \(events) on raw event numbers")
    }

    /// The context around a split marks "=" only events that read the same
    /// in `vtrace dump` of both traces, at every context length (30 and
    /// more once printed nothing).
    static func everyEqualLineIsTheSameEvent(_ a: String, _ b: String) throws {
        func dumpLines(_ path: String) throws -> [UInt64: String] {
            var lines: [UInt64: String] = [:]
            for line in try CLI.run("dump", path).stdout.split(separator: "\n") {
                // "#N TIME nicK TEXT" -> N: "nicK TEXT"
                let fields = line.split(separator: " ", maxSplits: 2)
                if fields.count == 3, let n = UInt64(fields[0].dropFirst()) { lines[n] = String(fields[2]) }
            }
            return lines
        }
        let dumpA = try dumpLines(a), dumpB = try dumpLines(b)
        for context in [6, 29, 30, 100] {
            let r = try CLI.run("diff", a, b, "--context", "\(context)", "--json")
            let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            let scopes = object["scopes"] as? [[String: Any]] ?? []
            let lines = scopes.flatMap { $0["context"] as? [[String: Any]] ?? [] }
            #expect(lines.count >= context, "--context \(context): \(lines.count) lines")
            for line in lines where line["mark"] as? String == "=" {
                let ea = try #require(line["event_a"] as? Int), eb = try #require(line["event_b"] as? Int)
                let ta = try #require(dumpA[UInt64(ea)]), tb = try #require(dumpB[UInt64(eb)])
                #expect(ta == tb, "= A#\(ea) B#\(eb): A is '\(ta)', B is '\(tb)'")
            }
        }
    }

    /// One pair, and two (MQ: testpmd's control queue enables the second pair after DRIVER_OK).
    @Test(arguments: [1, 2])
    func dpdkTestpmdMovesTrafficBothWaysAndTheCountersAgree(pairs: Int) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/dpdk-testpmd") else {
            print("SKIPPED: DPDK virtio-user test: dpdk-testpmd is not installed (apt-get install dpdk-dev)")
            return
        }
        let sock = try temporaryFile("testpmd\(pairs).sock", [])
        let trace = try temporaryFile("testpmd\(pairs).vtrace", [])
        try? FileManager.default.removeItem(atPath: sock)
        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: Self.vtrace)
        serve.arguments = ["serve", "--vhost-user", sock, "--pairs", "\(pairs)", "--sessions", "1", "--record", trace, "--json"]
        let out = Pipe()
        serve.standardOutput = out
        serve.standardError = FileHandle.nullDevice
        try serve.run()
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: sock) { usleep(50_000) }
        // io forwarding with --tx-first: testpmd sends a burst, then forwards everything
        // it receives back out, so frames circle through the device both ways.
        // A test runner may start us with SIGINT blocked (Foundation's Process does),
        // and testpmd prints its statistics only when SIGINT stops it: unblock it first.
        let unblock = "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execvp(sys.argv[1], sys.argv[1:])"
        let pmd = try runCombined("/usr/bin/python3", [
            "-c", unblock, "timeout", "-k", "10", "-s", "INT", "4", "dpdk-testpmd", "--lcores", pairs == 1 ? "0@0,1@1" : "0@0,1@1,2@1", "--no-pci",
            "--file-prefix=vtrace\(getpid())", "--no-huge", "-m", "512",
            "--vdev", "net_virtio_user0,path=\(sock),queues=\(pairs)" + (pairs > 1 ? ",cq=1" : ""), "--", "--forward-mode=io", "--tx-first",
            "--nb-cores=\(pairs)", "--rxq=\(pairs)", "--txq=\(pairs)", "--stats-period", "1", "--total-num-mbufs=16384",
        ])
        // testpmd's session was serve's only one; if testpmd never connected,
        // serve would wait forever: give it 15 s, then stop it (its report still comes).
        for _ in 0..<300 where serve.isRunning { usleep(50_000) }
        let stuck = serve.isRunning
        if stuck { serve.terminate() }
        let served = out.fileHandleForReading.readDataToEndOfFile()
        serve.waitUntilExit()
        #expect(!stuck, "vtrace serve was still waiting 15 s after testpmd ended: \(pmd.output.suffix(2000))")
        // testpmd's own final statistics.
        func stat(_ name: String) -> Int? {
            guard let block = pmd.output.range(of: "Accumulated forward statistics") else { return nil }
            let rest = pmd.output[block.upperBound...]
            guard let r = rest.range(of: "\(name): ") else { return nil }
            return Int(rest[r.upperBound...].prefix { $0.isNumber })
        }
        let sent = try #require(stat("TX-packets"), "\(pmd.output.suffix(2000))")
        let received = try #require(stat("RX-packets"))
        let report = try #require(try JSONSerialization.jsonObject(with: served) as? [String: Any])
        let counters = (report["counters"] as? [String: Any] ?? [:]).compactMapValues { $0 as? Int }
        #expect(sent > 1000 && received > 1000, "testpmd sent \(sent), received \(received)")
        // Frames testpmd queued in the last burst before it stopped the rings
        // (GET_VRING_BASE) stay unconsumed, as the protocol allows: at most a ring each.
        let consumed = counters["tx_packets"] ?? 0
        #expect(consumed <= sent && sent - consumed <= 256 * pairs, "device \(counters), testpmd sent \(sent)")
        // Frames delivered to the RX rings but not yet polled when testpmd stopped: at most a ring each.
        let delivered = counters["rx_packets"] ?? 0
        #expect(delivered >= received && delivered - received <= 256 * pairs, "device delivered \(delivered), testpmd received \(received)")
        #expect(counters["tx_bytes"] == 64 * consumed)
        let replay = try CLI.run("replay", trace)
        #expect(replay.status == 0 && replay.stdout.contains("replay matches"), "\(replay.stdout)")
        if pairs > 1 {
            // The second pair carried traffic: its rings were kicked.
            let dump = try CLI.run("dump", trace, "--kind", "vhost")
            #expect(dump.stdout.contains("vhost kick q3"), "no kick on pair 1's TX ring")
        }
    }

    /// `serve --record --trigger` under testpmd: serving stops once the
    /// condition holds (exit 1), with testpmd still sending; the trace ends
    /// after it and replays.
    @Test func aTriggerStopsServingUnderTestpmd() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/dpdk-testpmd") else {
            print("SKIPPED: DPDK trigger test: dpdk-testpmd is not installed (apt-get install dpdk-dev)")
            return
        }
        let sock = try temporaryFile("trigger.sock", [])
        let trace = try temporaryFile("trigger-serve.vtrace", [])
        try? FileManager.default.removeItem(atPath: sock)
        let serve = Process()
        serve.executableURL = URL(fileURLWithPath: Self.vtrace)
        serve.arguments = ["serve", "--vhost-user", sock, "--sessions", "1", "--record", trace, "--json",
                           "--trigger", "tx_packets >= 5000", "--after", "1000"]
        let out = Pipe(), err = Pipe()
        serve.standardOutput = out
        serve.standardError = err
        try serve.run()
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: sock) { usleep(50_000) }
        let unblock = "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execvp(sys.argv[1], sys.argv[1:])"
        _ = try runCombined("/usr/bin/python3", [
            "-c", unblock, "timeout", "-k", "10", "-s", "INT", "4", "dpdk-testpmd", "--lcores", "0@0,1@1", "--no-pci",
            "--file-prefix=vtrace-trigger\(getpid())", "--no-huge", "-m", "512", "--vdev", "net_virtio_user0,path=\(sock),queues=1", "--",
            "--forward-mode=io", "--tx-first", "--nb-cores=1", "--stats-period", "1", "--total-num-mbufs=16384",
        ])
        for _ in 0..<300 where serve.isRunning { usleep(50_000) }
        if serve.isRunning { serve.terminate() }
        let report = try #require(try JSONSerialization.jsonObject(with: out.fileHandleForReading.readDataToEndOfFile()) as? [String: Any])
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        serve.waitUntilExit()
        #expect(serve.terminationStatus == 1 && stderr.contains("vtrace: --trigger 'tx_packets >= 5000' held at event "), "\(stderr)")
        let recording = try #require(report["recording"] as? [String: Any])
        let fired = try #require(recording["trigger_fired_at"] as? Int), events = try #require(recording["events"] as? Int)
        #expect(events > fired + 1000, "\(recording)")
        let reader = try TraceReader(path: trace)
        #expect(reader.header.trigger == "tx_packets >= 5000" && reader.completeness == .complete)
        #expect(try CLI.run("replay", "--check", trace).status == 0)
    }

    /// `serve --record` under testpmd io forwarding (a polling driver that
    /// refills the ring as fast as the device drains it), killed with SIGKILL
    /// at random instants: every leftover verifies and replays (`--check` 0).
    @Test func aRecordingKilledUnderTestpmdVerifiesAndReplays() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/dpdk-testpmd") else {
            print("SKIPPED: DPDK kill test: dpdk-testpmd is not installed (apt-get install dpdk-dev)")
            return
        }
        var rng = SystemRandomNumberGenerator()
        for round in 0..<3 {
            let sock = try temporaryFile("kill\(round).sock", [])
            let trace = try temporaryFile("kill\(round).vtrace", [])
            try? FileManager.default.removeItem(atPath: sock)
            try? FileManager.default.removeItem(atPath: trace)
            let serve = Process()
            serve.executableURL = URL(fileURLWithPath: Self.vtrace)
            serve.arguments = ["serve", "--vhost-user", sock, "--sessions", "1", "--record", trace, "--flush-events", "20000"]
            serve.standardOutput = FileHandle.nullDevice
            serve.standardError = FileHandle.nullDevice
            try serve.run()
            for _ in 0..<100 where !FileManager.default.fileExists(atPath: sock) { usleep(50_000) }
            let pmd = Process()
            pmd.executableURL = URL(fileURLWithPath: "/usr/bin/dpdk-testpmd")
            pmd.arguments = ["--lcores", "0@0,1@1", "--no-pci", "--file-prefix=vtkill\(getpid())", "--no-huge", "-m", "512",
                             "--vdev", "net_virtio_user0,path=\(sock),queues=1", "--", "--forward-mode=io", "--tx-first", "--total-num-mbufs=16384", "--stats-period", "1"]
            pmd.standardInput = FileHandle.nullDevice
            pmd.standardOutput = FileHandle.nullDevice
            pmd.standardError = FileHandle.nullDevice
            try pmd.run()
            // testpmd forwards until it is stopped (--stats-period keeps it from
            // waiting on standard input). Once frames flow (the trace grows),
            // kill the recorder at a random instant.
            let partial = trace + ".partial"
            func size() -> Int { ((try? FileManager.default.attributesOfItem(atPath: partial))?[.size] as? Int) ?? 0 }
            for _ in 0..<300 where size() < 200_000 { usleep(20_000) }
            usleep(UInt32.random(in: 100_000...800_000, using: &rng))
            kill(serve.processIdentifier, SIGKILL)
            serve.waitUntilExit()
            kill(pmd.processIdentifier, SIGKILL)
            pmd.waitUntilExit()
            #expect(FileManager.default.fileExists(atPath: partial), "round \(round): the recording ended before the kill (testpmd stopped?)")
            let info = try CLI.run("info", partial, "--json")
            let object = try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any] ?? [:]
            let chunks = object["chunks"] as? Int ?? 0
            #expect(chunks >= 2 && object["checkpointChunks"] as? Int == chunks, "round \(round): \(info.stdout.prefix(400)) \(info.stderr)")
            let verify = try CLI.run("verify", partial)
            #expect(verify.status == 0 && verify.stdout.contains(": OK"), "round \(round): \(verify.stdout) \(verify.stderr)")
            let replay = try CLI.run("replay", "--check", partial)
            #expect(replay.status == 0 && replay.stdout.hasPrefix("match: "), "round \(round): \(replay.stdout) \(replay.stderr)")
        }
    }
}
