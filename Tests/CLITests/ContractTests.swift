import Foundation
import Testing

/// Exit codes, messages and help that keep their promises (issue 19, items 6-8).
@Suite("CLI contracts")
struct ContractTests {
    static func golden(_ name: String) -> String { repositoryRoot.appendingPathComponent("traces/golden/\(name).vtrace").path }

    @Test func exitCodesStayInsideTheirContracts() throws {
        // git bisect run reads 0, 1 and 125: a SIGTRAP (133) is refused up front.
        let both = try CLI.run("replay", "--check", "--break-at", "5", Self.golden("rx-poison"))
        #expect(both.status == 2 && both.stderr.contains("exclude each other"), "\(both.stderr)")
        let past = try CLI.run("replay", "--break-at", "1000", Self.golden("rx-poison"))
        #expect(past.status == 2 && past.stderr.contains("--break-at 1000: \(Self.golden("rx-poison")): no event 1000: the trace has 130 events (0...129)"), "\(past.stderr)")
        #expect(try CLI.run("help", "bogus").status == 2)
        #expect(try CLI.run("help", "dump").status == 0)
        let nic = try CLI.run("dump", "--nic", "3", Self.golden("nics-aggregate"))
        #expect(nic.status == 2 && nic.stderr.contains("--nic 3: the trace has 3 NIC(s)"), "\(nic.stderr)")
        #expect(try CLI.run("dump", "--kind", "", Self.golden("rx-poison")).status == 2)
        let plot = try CLI.run("plot", "--counters", "", Self.golden("rx-poison"), "-o", try temporaryFile("empty.svg", []))
        #expect(plot.status == 2 && plot.stderr.contains("no counters named"), "\(plot.stderr)")
        // --check --json: the JSON report, with the check's exit code.
        let check = try CLI.run("replay", "--check", "--json", Self.golden("rx-poison"))
        #expect(check.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any]
        #expect(object?["matched"] as? Bool == true && object?["events"] as? Int == 130)
    }

    @Test func scenarioListFailsOnAMalformedFileWithJsonToo() throws {
        let dir = URL(fileURLWithPath: try temporaryFile("y", [])).deletingLastPathComponent().appendingPathComponent("malformed-list").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "device\nfrobnicate\n".write(toFile: dir + "/bad.scenario", atomically: true, encoding: .utf8)
        #expect(try CLI.run("scenario", "list", dir).status == 2)
        let json = try CLI.run("scenario", "list", dir, "--json")
        #expect(json.status == 2)
        #expect((try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [Any])?.count == 1)
    }

    @Test func messagesNameWhatWentWrong() throws {
        let to = try CLI.run("dump", Self.golden("rx-poison"), "--to", "-1")
        #expect(to.status == 2 && to.stderr.contains("The value '-1' is invalid for '--to <to>'"), "\(to.stderr)")
        // diff of a good and a corrupt trace names the corrupt one.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.golden("long-drain"))))
        let reader = try CLI.run("info", Self.golden("long-drain"), "--json")
        let info = try JSONSerialization.jsonObject(with: Data(reader.stdout.utf8)) as! [String: Any]
        #expect(info["events"] as? Int == 1607)
        bytes[bytes.count / 2] ^= 0x55
        let corrupt = try temporaryFile("corrupt-b.vtrace", bytes)
        for command in [["diff", Self.golden("long-drain"), corrupt], ["plot", Self.golden("long-drain"), corrupt, "-o", try temporaryFile("c.svg", [])]] {
            let r = try CLI.runArguments(command)
            #expect(r.status == 2 && r.stderr.hasPrefix("vtrace: \(corrupt): "), "\(command[0]): \(r.stderr)")
        }
        // A trace with no events: debug says so, as verify says OK.
        let scenario = try temporaryFile("nothing.scenario", Array("device\n".utf8))
        let empty = try temporaryFile("nothing.vtrace", [])
        #expect(try CLI.run("record", "--scenario", scenario, "-o", empty).status == 0)
        #expect(try CLI.run("verify", empty).status == 0)
        let debug = try CLI.run("debug", empty)
        #expect(debug.status == 0 && debug.stdout.contains("has no events: nothing to step through"), "\(debug.stdout)\(debug.stderr)")
    }

    @Test func helpAndOutputsDoNotMislead() throws {
        let dump = try CLI.run("dump", "--help")
        for kind in ["vhost", "mmio-read", "mmio-write", "mem-read", "mem-write", "memory"] { #expect(dump.stdout.contains(kind), "\(kind)") }
        #expect(dump.stdout.replacingOccurrences(of: "\n", with: " ").contains("t (ns since the first chunk's base timestamp)"))
        #expect(try CLI.run("plot", "--help").stdout.contains("(300...20000)"))
        let demo = try CLI.run("demo", "--help").stdout
        #expect(demo.contains("(1...100000)") && demo.contains("(0...65557)") && demo.contains("(1...256)"))
        // record and info give one compression ratio for one file.
        let out = try temporaryFile("ratio.vtrace", [])
        let record = try CLI.run("record", "--scenario", repositoryRoot.appendingPathComponent("traces/scenarios/rx-poison.scenario").path, "-o", out)
        let info = try CLI.run("info", out)
        func ratio(_ text: String) -> Substring? { text.firstRange(of: "ratio ").map { text[$0.upperBound...].prefix(while: { $0.isNumber || $0 == "." }) } }
        #expect(ratio(record.stdout) != nil && ratio(record.stdout) == ratio(info.stdout), "\(record.stdout) / \(info.stdout)")
        // JSON keys are snake_case; the camelCase ones stay beside them until 0.3.
        let json = try JSONSerialization.jsonObject(with: Data(try CLI.run("info", out, "--json").stdout.utf8)) as! [String: Any]
        #expect(json["file_bytes"] as? Int != nil && json["file_bytes"] as? Int == json["fileBytes"] as? Int)
        #expect(json["checkpoint_chunks"] as? Int == json["checkpointChunks"] as? Int)
    }
}

/// A trace recorded with faults says so where a replay without them diverges,
/// and --recorded-faults replays them (issue 20, item 4).
@Suite("Traces recorded with faults")
struct RecordedFaultsTests {
    @Test func replayAndDebugNameTheRecordedFaultsAndCanReplayThem() throws {
        let trace = try temporaryFile("faulted.vtrace", [])
        let scenario = repositoryRoot.appendingPathComponent("traces/scenarios/loopback-basic.scenario").path
        // The fault breaks the scenario's expectations (exit 1); the trace is written.
        #expect(try CLI.run("record", "--scenario", scenario, "-o", trace, "--fault", "drop-rx:2").status == 1)
        let note = "note: this trace was recorded with faults drop-rx:2; a replay without them diverges where they acted: "
            + "replay them with --fault drop-rx:2, or --recorded-faults"
        let plain = try CLI.run("replay", trace)
        #expect(plain.status == 1 && plain.stderr.contains(note), "\(plain.stderr)")
        let check = try CLI.run("replay", "--check", trace)
        #expect(check.status == 1 && check.stderr.contains(note))
        let replayed = try CLI.run("replay", "--recorded-faults", trace)
        #expect(replayed.status == 0 && replayed.stdout.contains("faults drop-rx:2") && !replayed.stderr.contains("note:"), "\(replayed.stdout)")
        #expect(try CLI.run("replay", "--recorded-faults", "--fault", "drop-rx:1", trace).status == 2)

        func debug(_ extra: [String]) throws -> String {
            try debugSession(trace, "continue\nquit\n", arguments: extra).joined(separator: "\n")
        }
        let stepped = try debug([])
        #expect(stepped.contains("DIVERGED at event") && stepped.contains(note), "\(stepped)")
        let clean = try debug(["--recorded-faults"])
        #expect(clean.contains("end of trace") && !clean.contains("DIVERGED"), "\(clean)")
    }
}
