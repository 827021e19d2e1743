import Foundation
import Testing
import TraceAnalysis

/// `vtrace run` on the real /dev/kvm. Skipped, with a message, where KVM is
/// absent or unusable, or gcc cannot build the guest.
@Suite("vtrace run on KVM", .serialized)
struct KVMRunTests {
    /// Why these tests cannot run here, or nil.
    static let unavailable: String? = {
        let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
        if fd < 0 { return "/dev/kvm cannot be opened (\(String(cString: strerror(errno))))" }
        close(fd)
        let build = try? runCombined(repositoryRoot.appendingPathComponent("tools/guest/build.sh").path, [])
        if build?.status != 0 { return "the guest does not build: \(build?.output ?? "tools/guest/build.sh did not run")" }
        return nil
    }()

    static var guest: String { repositoryRoot.appendingPathComponent(".build/guest/vtrace-guest.elf").path }

    func skip() -> Bool {
        if let why = Self.unavailable { print("SKIPPED: KVM tests: \(why)"); return true }
        return false
    }

    /// Runs the guest; returns the exit status and the JSON report.
    func run(_ arguments: [String]) throws -> (status: Int32, report: [String: Any], stderr: String) {
        let r = try CLI.runArguments(["run", "--guest", Self.guest, "--json"] + arguments)
        let report = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] ?? [:]
        return (r.status, report, r.stderr)
    }

    func counters(_ report: [String: Any], nic: Int = 0) -> [String: Int] {
        ((report["counters"] as? [[String: Any]]) ?? []).dropFirst(nic).first?.compactMapValues { $0 as? Int } ?? [:]
    }

    /// Only the counters that are not zero.
    func moved(_ c: [String: Int]) -> [String: Int] { c.filter { $0.value != 0 } }

    @Test func burstOverTwoPairsRecordsAndReplays() throws {
        guard !skip() else { return }
        let trace = try temporaryFile("kvm-burst.vtrace", [])
        let r = try run(["--workload", "burst:frames=200,len=300,descs=3,pairs=2", "--record", trace])
        #expect(r.status == 0, "\(r.stderr) \(r.report)")
        #expect(moved(counters(r.report)) == ["tx_packets": 200, "tx_bytes": 60_000, "rx_packets": 200, "rx_bytes": 60_000, "ctrl_mq_set": 1])
        #expect((r.report["disagreements"] as? [Any])?.isEmpty == true)
        let guest = try #require((r.report["guest"] as? [[String: Any]])?.first)
        #expect(guest["sent"] as? Int == 200 && guest["received"] as? Int == 200 && guest["bad"] as? Int == 0)
        let recording = try #require(r.report["recording"] as? [String: Any])
        #expect((recording["chunks"] as? Int ?? 0) >= 1 && (recording["fileBytes"] as? Int ?? 0) > 0 && recording["stalls"] is Int)
        let replay = try CLI.run("replay", trace)
        #expect(replay.status == 0 && replay.stdout.contains("replay matches"), "\(replay.stdout)")
        #expect(replay.stdout.contains("\(r.report["events"] as? Int ?? -1) events"), "\(replay.stdout)")
        #expect(try CLI.run("check", trace).status == 0)
        // The trace holds every frame both ways.
        let pcap = try temporaryFile("kvm-burst.pcapng", [])
        #expect(try CLI.run("export", trace, "--format", "pcapng", "-o", pcap).stderr.contains("wrote 400 frames (200 tx, 200 rx)"))
    }

    /// A trigger that stops: the run ends at the access after `--after`
    /// more events (the guest is stopped by the host, exit 1), the trace
    /// ends there and replays; with `mark` the run goes to the end and the
    /// trace holds a marker.
    @Test func aTriggerStopsTheGuestOrMarksTheTrace() throws {
        guard !skip() else { return }
        let trace = try temporaryFile("kvm-trigger.vtrace", [])
        let r = try run(["--workload", "burst:frames=2000,len=64", "--record", trace, "--trigger", "tx_packets >= 500", "--after", "100"])
        #expect(r.status == 1 && r.stderr.contains("vtrace: --trigger 'tx_packets >= 500' held at event "), "\(r.stderr)")
        #expect(r.report["end"] as? String == "stopped by the host (the recording's trigger)", "\(r.report)")
        let sent = counters(r.report)["tx_packets"] ?? 0
        #expect(sent >= 500 && sent < 2000, "\(sent)")
        let recording = try #require(r.report["recording"] as? [String: Any])
        let fired = try #require(recording["trigger_fired_at"] as? Int), events = try #require(recording["events"] as? Int)
        #expect(events > fired + 100)
        #expect(try CLI.run("replay", "--check", trace).status == 0)
        try FileManager.default.removeItem(atPath: trace)
        let marked = try run(["--workload", "burst:frames=2000,len=64", "--record", trace, "--trigger", "tx_packets >= 500", "--trigger-action", "mark"])
        #expect(marked.status == 1 && counters(marked.report)["tx_packets"] == 2000, "\(marked.stderr)")
        #expect(try CLI.run("dump", trace, "--kind", "marker").stdout.contains("marker: trigger fired at event "))
        #expect(try CLI.run("replay", "--check", trace).status == 0)
    }

    /// By default the vCPU thread leaves the encoding to the writer's thread;
    /// `--encode-inline` encodes as it goes. The two traces of one workload
    /// hold the same events (their times aside) and both replay.
    @Test func theEncodingOnTheWritersThreadRecordsWhatInlineEncodingRecords() throws {
        guard !skip() else { return }
        var dumps: [[Substring]] = []
        for extra in [[], ["--encode-inline"]] {
            let trace = try temporaryFile("kvm-encode\(extra.count).vtrace", [])
            let r = try run(["--workload", "burst:frames=300,len=600,descs=2", "--record", trace, "--flush-events", "997"] + extra)
            #expect(r.status == 0, "\(r.stderr) \(r.report)")
            #expect(try CLI.run("replay", "--check", trace).status == 0)
            // "#N TIME nic0 ...": the time is the run's own.
            dumps.append(try CLI.run("dump", trace).stdout.split(separator: "\n").map { line in
                let fields = line.split(separator: " ", maxSplits: 2)
                return fields.count == 3 ? fields[0] + " " + fields[2] : line
            })
            try FileManager.default.removeItem(atPath: trace)
        }
        #expect(dumps[0].count > 6_000 && dumps[0] == dumps[1], "\(dumps[0].count) and \(dumps[1].count) lines")
    }

    /// `--snaplen 32`: the guest still gets every byte of its frames (it
    /// checks them), the trace keeps each frame's first 32 of 300 bytes both
    /// ways (the rest of three descriptors' pieces by length), replays with
    /// --check and exports the frames cut at 32.
    @Test func aSnaplenRecordingKeepsTheFirstBytesAndReplays() throws {
        guard !skip() else { return }
        let trace = try temporaryFile("kvm-snaplen.vtrace", [])
        let r = try run(["--workload", "burst:frames=50,len=300,descs=3", "--record", trace, "--snaplen", "32"])
        #expect(r.status == 0, "\(r.stderr) \(r.report)")
        let guest = try #require((r.report["guest"] as? [[String: Any]])?.first)
        #expect(guest["received"] as? Int == 50 && guest["bad"] as? Int == 0)
        let info = try #require(try JSONSerialization.jsonObject(with: Data(try CLI.run("info", trace, "--json").stdout.utf8)) as? [String: Any])
        #expect(info["snaplen"] as? Int == 32 && info["payload_bytes_not_stored"] as? Int == 2 * 50 * (300 - 32))
        let replay = try CLI.run("replay", trace, "--check")
        #expect(replay.status == 0 && replay.stdout.contains("match: "), "\(replay.stdout)\(replay.stderr)")
        let pcap = try temporaryFile("kvm-snaplen.pcapng", [])
        #expect(try CLI.run("export", trace, "--format", "pcapng", "-o", pcap).status == 0)
        let file = try PcapngFile(Array(try Data(contentsOf: URL(fileURLWithPath: pcap))))
        #expect(file.packets.count == 100 && file.packets.allSatisfy { $0.originalLength == 300 && $0.data.count == 32 })
    }

    /// Four vCPUs, each driving its own NIC: every access in the trace
    /// carries its vCPU, and the recording replays.
    @Test func fourVCPUsEachDriveTheirNIC() throws {
        guard !skip() else { return }
        let trace = try temporaryFile("kvm-vcpus.vtrace", [])
        let r = try run(["--workload", "burst:frames=300,len=200", "--nics", "4", "--vcpus", "4", "--record", trace])
        #expect(r.status == 0, "\(r.stderr) \(r.report["serial"] ?? "")")
        for nic in 0..<4 {
            #expect(moved(counters(r.report, nic: nic)) == ["tx_packets": 300, "tx_bytes": 60_000, "rx_packets": 300, "rx_bytes": 60_000])
        }
        var pairs = Set<[Int]>()
        for o in try dumpLines(trace, kind: "mmio") { pairs.insert([o["nic"] as! Int, o["vcpu"] as! Int]) }
        #expect(pairs == [[0, 0], [1, 1], [2, 2], [3, 3]])
        #expect(try CLI.run("replay", trace).status == 0)
        let bad = try CLI.run("run", "--workload", "burst", "--nics", "2", "--vcpus", "3", "--guest", Self.guest)
        #expect(bad.status == 2 && bad.stderr.contains("at most --nics"), "\(bad.stderr)")
    }

    @Test func mqOnTwoNICsSwitchesPairs() throws {
        guard !skip() else { return }
        let trace = try temporaryFile("kvm-mq.vtrace", [])
        let r = try run(["--workload", "mq:pairs=3,frames=30,len=80", "--nics", "2", "--record", trace])
        #expect(r.status == 0, "\(r.stderr)")
        for nic in 0..<2 {
            #expect(moved(counters(r.report, nic: nic)) == ["tx_packets": 90, "tx_bytes": 7200, "rx_packets": 90, "rx_bytes": 7200, "ctrl_mq_set": 3])
        }
        #expect(try CLI.run("replay", trace).status == 0)
    }

    /// A device offering more pairs than the guest uses: the control queue is
    /// at 2 × max_virtqueue_pairs (config space), not after the pairs used
    /// (there its commands landed on a data queue: "VQ_PAIRS_SET refused").
    @Test func mqUsingFewerPairsThanOfferedFindsTheControlQueue() throws {
        guard !skip() else { return }
        let trace = try temporaryFile("kvm-mq-fewer.vtrace", [])
        let r = try run(["--workload", "mq:pairs=2,frames=32,len=64", "--pairs", "4", "--record", trace])
        #expect(r.status == 0, "\(r.stderr) \(r.report["serial"] ?? "")")
        #expect(moved(counters(r.report)) == ["tx_packets": 64, "tx_bytes": 4096, "rx_packets": 64, "rx_bytes": 4096, "ctrl_mq_set": 2])
        #expect((r.report["disagreements"] as? [Any])?.isEmpty == true)
        // Its commands went to queue 8, the control queue of a 4-pair device.
        let kicks = try dumpLines(trace, kind: "mmio").filter { ($0["register"] as? String) == "QueueNotify" }.compactMap { $0["value"] as? Int }
        #expect(kicks.contains(8) && !kicks.contains(4))
        #expect(try CLI.run("replay", trace).status == 0)
    }

    /// Every hostile path, with the exact counters the spec gives them, and
    /// the trace replays with zero divergence.
    @Test func hostileGuestDrivesEveryCounterPath() throws {
        guard !skip() else { return }
        let trace = try temporaryFile("kvm-hostile.vtrace", [])
        let r = try run(["--workload", "hostile", "--record", trace])
        #expect(r.status == 0, "\(r.stderr) \(r.report["serial"] ?? "")")
        #expect(moved(counters(r.report)) == [
            "tx_packets": 23, "tx_bytes": 1472, "rx_packets": 17, "rx_bytes": 1088, "tx_dropped_no_rx_buffer": 4, "tx_chain_invalid": 2,
            "tx_oversize_dropped": 1, "rx_chain_invalid": 1, "rx_write_failed": 1, "invalid_avail_idx_count": 1,
        ])
        let serial = r.report["serial"] as? String ?? ""
        #expect((1...9).allSatisfy { serial.contains("guest: hostile case \($0) as expected") }, "\(serial)")
        #expect(try CLI.run("replay", trace).status == 0)
        #expect(try CLI.run("check", trace).status == 0)
    }

    @Test(arguments: [
        ("bogus-avail", ["invalid_avail_idx_count": 1]),
        ("tx-write-only", ["tx_chain_invalid": 1]),
        ("oversize", ["tx_oversize_dropped": 1]),
        ("starve", ["tx_packets": 4, "tx_bytes": 256, "tx_dropped_no_rx_buffer": 4]),
        ("rx-read-only", ["tx_packets": 1, "tx_bytes": 64, "rx_chain_invalid": 1]),
        ("early-kick", ["tx_packets": 1, "tx_bytes": 64, "rx_packets": 1, "rx_bytes": 64]),
        ("no-version-1", [:]),
    ])
    func eachHostileCase(_ name: String, _ expected: [String: Int]) throws {
        guard !skip() else { return }
        let r = try run(["--workload", name])
        #expect(r.status == 0, "\(name): \(r.stderr) \(r.report["serial"] ?? "")")
        #expect(moved(counters(r.report)) == expected, "\(name)")
    }

    /// A fault injected while recording: the guest sees a frame go missing
    /// (exit 1), the trace replays with the same fault and diverges without it.
    @Test func aFaultShowsInTheGuestAndTheReplay() throws {
        guard !skip() else { return }
        let trace = try temporaryFile("kvm-fault.vtrace", [])
        let r = try run(["--workload", "burst:frames=20", "--record", trace, "--fault", "drop-rx:5"])
        // The guest saw 20 frames leave and 19 come back, as the device counted; from the
        // lost 5th on, each frame arrives where the guest expected the one before it.
        #expect(r.status == 1)
        #expect((r.report["disagreements"] as? [String]) == ["nic0: 15 frames came back different from what was sent"])
        #expect((r.report["end"] as? String) == "the guest finished with status 1 (its own checks failed)")
        #expect(moved(counters(r.report)) == ["tx_packets": 20, "tx_bytes": 1280, "rx_packets": 19, "rx_bytes": 1216])
        #expect(try CLI.run("replay", trace, "--fault", "drop-rx:5").status == 0)
        let clean = try CLI.run("replay", trace)
        #expect(clean.status == 1 && clean.stdout.contains("DIVERGED"), "\(clean.stdout)")
    }

    @Test func badGuestsEndClearlyWithTheTraceComplete() throws {
        guard !skip() else { return }
        // A guest that loops forever: the timeout ends it; the trace keeps what came before.
        let spin = try temporaryFile("kvm-spin.vtrace", [])
        let s = try run(["--workload", "spin:frames=10", "--timeout", "1", "--record", spin])
        #expect(s.status == 1 && (s.report["end"] as? String) == "timed out after 1.0 s (--timeout)", "\(s.report)")
        #expect(moved(counters(s.report))["tx_packets"] == 10)
        let replay = try CLI.run("replay", spin)
        #expect(replay.status == 0 && replay.stdout.contains("replay matches"))
        // A triple fault; with two vCPUs the run names the fault, not the vCPU it stopped.
        let tf = try run(["--workload", "triple-fault:frames=3"])
        #expect(tf.status == 1 && (tf.report["end"] as? String)?.contains("shut down") == true, "\(tf.report)")
        let tf2 = try run(["--workload", "triple-fault:frames=3", "--nics", "2", "--vcpus", "2"])
        #expect(tf2.status == 1 && (tf2.report["end"] as? String)?.contains("shut down") == true, "\(tf2.report)")
        // Two spinning vCPUs: the watchdog stops both.
        let s2 = try run(["--workload", "spin:frames=4", "--nics", "2", "--vcpus", "2", "--timeout", "1"])
        #expect(s2.status == 1 && (s2.report["end"] as? String) == "timed out after 1.0 s (--timeout)", "\(s2.report)")
        #expect(moved(counters(s2.report, nic: 1))["tx_packets"] == 4)
        // Garbage everywhere: the device and the VMM stand; stray accesses are counted.
        let trace = try temporaryFile("kvm-garbage.vtrace", [])
        let g = try run(["--workload", "garbage", "--nics", "2", "--record", trace])
        #expect(g.status == 0, "\(g.stderr)")
        #expect(g.report["strayAccesses"] as? Int == 12)
        #expect(try CLI.run("replay", trace).status == 0)
        // Not an ELF.
        let notElf = try temporaryFile("not-elf", Array("hello".utf8))
        let n = try CLI.run("run", "--workload", "burst", "--guest", notElf)
        #expect(n.status == 2 && n.stderr.contains("not an ELF file"), "\(n.stderr)")
    }
}
