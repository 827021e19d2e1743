import Foundation
import Testing

@Suite("vtrace record, info, dump, verify")
struct TraceCLITests {
    static let golden = ["loopback-basic", "rx-poison", "ctrl-ok", "nics-aggregate", "tx-malformed", "kvm-burst", "kvm-mq", "kvm-hostile", "vhost-linux", "long-drain",
                         "format-edges"]
    static var goldenDir: URL { repositoryRoot.appendingPathComponent("traces/golden") }

    @Test(arguments: golden)
    func goldenTraceStillDecodesToItsDump(_ name: String) throws {
        let trace = Self.goldenDir.appendingPathComponent("\(name).vtrace").path
        let dump = try CLI.run("dump", trace, "--bytes", "64")
        #expect(dump.status == 0, "\(dump.stderr)")
        let expected = try String(contentsOf: Self.goldenDir.appendingPathComponent("\(name).dump"), encoding: .utf8)
        #expect(dump.stdout == expected)
        let verify = try CLI.run("verify", trace)
        #expect(verify.status == 0 && verify.stdout.contains(": OK"), "\(verify.stdout)")
        let expect = try String(contentsOf: Self.goldenDir.appendingPathComponent("\(name).expect"), encoding: .utf8)
        let parts = expect.split(separator: " ", maxSplits: 2)
        let info = try CLI.run("info", trace, "--json")
        let object = try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as! [String: Any]
        #expect(object["events"] as? Int == Int(parts[0]))
        #expect(object["chunks"] as? Int == Int(parts[1]))
        #expect(object["complete"] as? Bool == true)
        // Counters are 64-bit unsigned (format-edges' wrap past Int.max).
        let aggregate = try JSONSerialization.jsonObject(with: Data(parts[2].utf8)) as! [String: NSNumber]
        #expect((object["aggregate"] as? [String: NSNumber])?.mapValues(\.uint64Value) == aggregate.mapValues(\.uint64Value))
    }

    /// Goldens written with the encoder (format test vectors): they decode
    /// to their dump, but hold what no device does, so they do not replay.
    @Test func formatVectorsDecodeToTheirDump() throws {
        let trace = Self.goldenDir.appendingPathComponent("format-vectors.vtrace").path
        let dump = try CLI.run("dump", trace, "--bytes", "64")
        #expect(dump.status == 0, "\(dump.stderr)")
        #expect(dump.stdout == (try String(contentsOf: Self.goldenDir.appendingPathComponent("format-vectors.dump"), encoding: .utf8)))
        let info = try CLI.run("info", trace, "--json")
        let object = try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as! [String: Any]
        #expect(object["events"] as? Int == 12 && object["chunks"] as? Int == 2 && object["complete"] as? Bool == true)
    }

    @Test func recordInfoDumpVerifyRoundTrip() throws {
        let out = try temporaryFile("rt.vtrace", [])
        let scenario = repositoryRoot.appendingPathComponent("traces/scenarios/rx-poison.scenario").path
        let r = try CLI.run("record", "--scenario", scenario, "-o", out, "--flush-events", "10", "--guest", "test guest")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("recorded "))
        #expect(!FileManager.default.fileExists(atPath: out + ".partial"))
        let info = try CLI.run("info", out)
        #expect(info.status == 0)
        #expect(info.stdout.contains("format     1.7, complete"))
        #expect(info.stdout.contains("transport  mmio"))
        #expect(info.stdout.contains("guest      test guest"))
        #expect(info.stdout.contains("invalid_avail_idx_count     1"))
        // --format 1.5, 1.4 and 1.3 write what older readers read: the same events.
        func untimed(_ dump: String) -> String { dump.replacingOccurrences(of: #""t":[0-9]+,"#, with: "", options: .regularExpression) }
        let dumpNew = try CLI.run("dump", out, "--json").stdout
        #expect(!dumpNew.isEmpty)
        let old = try temporaryFile("rt-old.vtrace", [])
        for version in ["1.5", "1.4", "1.3"] {
            #expect(try CLI.run("record", "--scenario", scenario, "-o", old, "--flush-events", "10", "--format", version).status == 0)
            #expect(try CLI.run("info", old).stdout.contains("format     \(version), complete"))
            #expect(untimed(try CLI.run("dump", old, "--json").stdout) == untimed(dumpNew), "--format \(version)")
        }
        let bad = try CLI.run("record", "--scenario", scenario, "-o", old, "--format", "1.2")
        #expect(bad.status != 0 && bad.stderr.contains("--format 1.2: vtrace writes format 1.7 (the default), 1.6, 1.5, 1.4 or 1.3"))
        // Dump filters: counters only, JSON Lines with the fields the issue names.
        let counters = try CLI.run("dump", out, "--kind", "counter", "--json")
        let lines = counters.stdout.split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            #expect(o["kind"] as? String == "counter" && o["n"] != nil && o["t"] != nil && o["nic"] != nil)
            #expect(o["counter"] is String && o["value"] is Int)
        }
        let mmio = try CLI.run("dump", out, "--kind", "mmio", "--json", "--to", "5")
        let first = try JSONSerialization.jsonObject(with: Data(mmio.stdout.split(separator: "\n")[0].utf8)) as! [String: Any]
        #expect(first["op"] as? String == "write" && first["offset"] as? Int == 0x70 && first["width"] as? Int == 4 && first["value"] as? Int == 0)
        let used = try CLI.run("dump", out, "--kind", "used", "--json")
        let u = try JSONSerialization.jsonObject(with: Data(used.stdout.split(separator: "\n")[0].utf8)) as! [String: Any]
        #expect(u["queue"] as? Int == 1 && u["id"] as? Int == 0 && u["len"] as? Int == 0)
        // --from/--to select exactly that range.
        let range = try CLI.run("dump", out, "--from", "40", "--to", "44")
        #expect(range.stdout.split(separator: "\n").map { $0.split(separator: " ")[0] } == ["#40", "#41", "#42", "#43", "#44"])
        #expect(try CLI.run("verify", out).status == 0)
    }

    @Test func badArgumentsAndBadFiles() throws {
        let garbage = try temporaryFile("garbage.vtrace", Array("this is not a trace".utf8))
        let g = try CLI.run("info", garbage)
        #expect(g.status == 2 && g.stderr.contains("not a vtrace trace"))
        #expect(try CLI.run("dump", garbage).status == 2)
        #expect(try CLI.run("verify", garbage).status == 2)
        #expect(try CLI.run("info", "/nonexistent.vtrace").status == 2)
        let trace = Self.goldenDir.appendingPathComponent("loopback-basic.vtrace").path
        let k = try CLI.run("dump", trace, "--kind", "bogus")
        #expect(k.status == 2 && k.stderr.contains("unknown kind 'bogus'"))
        let far = try CLI.run("dump", trace, "--from", "999999")
        #expect(far.status == 2 && far.stderr.contains("no event 999999"))
        #expect(try CLI.run("record", "--scenario", "/nonexistent.scenario", "-o", "/tmp/x.vtrace").status == 2)
        // A flipped byte in a chunk: verify names the chunk and the offset.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: trace)))
        bytes[bytes.count / 2] ^= 0x10
        let flipped = try temporaryFile("flipped.vtrace", bytes)
        let v = try CLI.run("verify", flipped)
        #expect(v.status == 1 || v.status == 2)
        #expect((v.stdout + v.stderr).contains("chunk") || (v.stdout + v.stderr).contains("byte"))
    }

    /// Kills a real recorder with SIGKILL at random moments: every leftover file opens,
    /// says what it recovered, and verifies.
    @Test func recorderKilledAtRandomMomentsLeavesAReadableTrace() throws {
        let scenario = try temporaryFile("long.scenario", Array("driver init qsize=4\nrepeat 400000 tx send len=200\n".utf8))
        var recoveredSome = 0
        var generator = SystemRandomNumberGenerator()
        for round in 0..<12 {
            let out = try temporaryFile("killed-\(round).vtrace", [])
            try? FileManager.default.removeItem(atPath: out)
            let process = Process()
            process.executableURL = CLI.productsDirectory.appendingPathComponent("vtrace")
            process.arguments = ["record", "--scenario", scenario, "-o", out, "--flush-ms", "20"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            // Wait until the recorder has created its file, then kill it at a random moment.
            var waited = 0
            while !FileManager.default.fileExists(atPath: out + ".partial") && waited < 30_000 {
                usleep(5_000)
                waited += 5
            }
            usleep(UInt32.random(in: 0...700_000, using: &generator))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            let partial = out + ".partial"
            // On a loaded machine the recorder may not have started within the wait:
            // killed before creating its file, it leaves nothing, which is fine.
            if !FileManager.default.fileExists(atPath: out) && !FileManager.default.fileExists(atPath: partial) { continue }
            let path = FileManager.default.fileExists(atPath: out) ? out : partial
            let info = try CLI.run("info", path)
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            if size < 128 {
                // Killed between creating the file and writing its header: nothing to recover, and it says so.
                #expect(info.status == 2 && (info.stderr.contains("empty") || info.stderr.contains("header")), "round \(round): \(info.stderr)")
                continue
            }
            #expect(info.status == 0, "round \(round): \(info.stderr)")
            if info.stdout.contains("INCOMPLETE") {
                #expect(info.stdout.contains("trailing bytes lost"))
                recoveredSome += 1
            }
            let verify = try CLI.run("verify", path)
            #expect(verify.status == 0, "round \(round): \(verify.stdout)\(verify.stderr)")
        }
        #expect(recoveredSome > 0)
    }
}

@Suite("The trace is a zstd stream")
struct ZstdCompatibilityTests {
    @Test func zstdCliTestsAndDecompressesATrace() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/zstd") else {
            print("skipping: /usr/bin/zstd is not installed (tools/bootstrap.sh installs it)")
            return
        }
        let trace = repositoryRoot.appendingPathComponent("traces/golden/rx-poison.vtrace").path
        func zstd(_ args: [String]) throws -> (Int32, Data) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/zstd")
            p.arguments = args
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, data)
        }
        #expect(try zstd(["-t", trace]).0 == 0)
        let (status, raw) = try zstd(["-dc", trace])
        #expect(status == 0)
        // The raw event bytes: the uncompressed sizes of all chunks, back to back.
        let info = try CLI.run("info", trace, "--json")
        let object = try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as! [String: Any]
        #expect(raw.count == object["uncompressedBytes"] as? Int)
    }
}

/// docs/trace-format.md and the code cannot drift apart: the decoder in
/// `tools/trace-decoder`, written from the document alone, must print what
/// `vtrace dump --json` prints for every golden and reference trace.
@Suite("The independent decoder")
struct IndependentDecoderTests {
    @Test func thePythonDecoderAgreesWithDumpOnEveryGoldenAndReferenceTrace() throws {
        let traces = try ["traces/golden", "traces/reference"].flatMap { dir in
            try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent(dir).path)
                .filter { $0.hasSuffix(".vtrace") }.sorted().map { "\(dir)/\($0)" }
        }
        #expect(traces.count >= 24)
        let p = Process()
        p.executableURL = repositoryRoot.appendingPathComponent("tools/trace-decoder/check.sh")
        p.arguments = traces
        p.currentDirectoryURL = repositoryRoot
        var environment = ProcessInfo.processInfo.environment
        environment["VTRACE"] = CLI.productsDirectory.appendingPathComponent("vtrace").path
        p.environment = environment
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(stderr)")
        #expect(stdout.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count == traces.count)
    }
}
