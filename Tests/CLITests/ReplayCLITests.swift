import Foundation
import Testing

@Suite("vtrace replay")
struct ReplayCLITests {
    static var golden: String { repositoryRoot.appendingPathComponent("traces/golden/loopback-basic.vtrace").path }

    @Test func goldenTracesReplayWithZeroDivergence() throws {
        // format-edges wraps counters past 2^64 (the device's wrapping add,
        // like the reference's fetch_add): check's monotonic rule flags that.
        for name in TraceCLITests.golden where name != "format-edges" {
            let r = try CLI.run("replay", repositoryRoot.appendingPathComponent("traces/golden/\(name).vtrace").path)
            #expect(r.status == 0, "\(name): \(r.stdout)")
            #expect(r.stdout.contains("replay matches"))
        }
    }

    @Test func checkExitCodesForGitBisectRun() throws {
        #expect(try CLI.run("replay", "--check", Self.golden).status == 0)
        let diverged = try CLI.run("replay", "--check", Self.golden, "--fault", "skip-used:3")
        #expect(diverged.status == 1)
        #expect(diverged.stdout.hasPrefix("diverged at event "))
        let garbage = try temporaryFile("not-a-trace.vtrace", Array("garbage".utf8))
        #expect(try CLI.run("replay", "--check", garbage).status == 125)
        #expect(try CLI.run("replay", "--check", "/nonexistent.vtrace").status == 125)
        var newer = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.golden)))
        newer[16] = 7  // major version 7
        let future = try temporaryFile("future.vtrace", newer)
        let f = try CLI.run("replay", "--check", future)
        #expect(f.status == 125 && f.stderr.contains("format 7.0 is not supported"))
        // Without --check an unusable trace is a usage error (2), and a bad fault too.
        #expect(try CLI.run("replay", garbage).status == 2)
        #expect(try CLI.run("replay", Self.golden, "--fault", "frobnicate").status == 2)
    }

    @Test func divergenceReportNamesEventCauseChainAndCounters() throws {
        let r = try CLI.run("replay", Self.golden, "--fault", "count-twice:rx_packets:2")
        #expect(r.status == 1)
        let out = r.stdout
        #expect(out.contains("DIVERGED at event "))
        #expect(out.contains("caused by  #"))
        #expect(out.contains("mmio write QueueNotify/4 = 0x1"))
        #expect(out.contains("chain      #"))
        #expect(out.contains("expected   counter rx_packets = 2"))
        #expect(out.contains("replay     set rx_packets = 3"))
        #expect(out.contains("events before it:"))
        // The counter table marks the counter that differs.
        let line = out.split(separator: "\n").first { $0.contains("rx_packets") && $0.hasSuffix("*") }
        #expect(line != nil)
        // JSON: the same divergence for machines.
        let j = try CLI.run("replay", Self.golden, "--fault", "count-twice:rx_packets:2", "--json")
        let object = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as! [String: Any]
        #expect(object["matched"] as? Bool == false)
        let first = (object["divergences"] as! [[String: Any]])[0]
        #expect(first["expected"] as? String == "counter rx_packets = 2")
        #expect(first["cause"] as? String == "mmio write QueueNotify/4 = 0x1")
    }

    @Test func keepGoingListsEveryDivergingChunk() throws {
        // A fault that never fires changes nothing; one that fires diverges, and
        // --keep-going resynchronises at the next checkpoint and lists each chunk once.
        let r = try CLI.run("replay", Self.golden, "--fault", "no-poison", "--keep-going", "--json")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(object["matched"] as? Bool == true)  // loopback-basic never poisons: no-poison changes nothing
        let rx = repositoryRoot.appendingPathComponent("traces/golden/rx-poison.vtrace").path
        let k = try CLI.run("replay", rx, "--fault", "no-poison", "--keep-going", "--json")
        #expect(k.status == 1)
        let o = try JSONSerialization.jsonObject(with: Data(k.stdout.utf8)) as! [String: Any]
        let divergences = o["divergences"] as! [[String: Any]]
        #expect(divergences.count >= 1)
        let chunks = divergences.map { $0["chunk"] as! Int }
        #expect(chunks == chunks.sorted() && Set(chunks).count == chunks.count)
    }
}

@Suite("vtrace bisect")
struct BisectCLITests {
    @Test func bisectFindsTheEventAndSaysHowManyChunksItRead() throws {
        let trace = repositoryRoot.appendingPathComponent("traces/golden/rx-poison.vtrace").path
        let r = try CLI.run("bisect", trace, "--until", "invalid_avail_idx_count > 0", "--json")
        #expect(r.status == 0, "\(r.stderr)")
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        let event = o["event"] as! Int
        let replayed = o["chunks_replayed"] as! Int
        #expect(replayed <= 4)
        // The event is the counter transition itself.
        let dump = try CLI.run("dump", trace, "--from", String(event), "--to", String(event), "--json")
        let e = try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as! [String: Any]
        #expect(e["counter"] as? String == "invalid_avail_idx_count" && e["value"] as? Int == 1)
        let never = try CLI.run("bisect", trace, "--until", "tx_packets > 1000", "--json")
        let n = try JSONSerialization.jsonObject(with: Data(never.stdout.utf8)) as! [String: Any]
        #expect(n["event"] is NSNull)
        let text = try CLI.run("bisect", trace, "--until", "tx_packets == 1")
        #expect(text.stdout.contains("can turn false again") && text.stdout.contains("first holds after event"))
        let bad = try CLI.run("bisect", trace, "--until", "tx_pakets > 1")
        #expect(bad.status == 2 && bad.stderr.contains("unknown counter 'tx_pakets'"))
        #expect(try CLI.run("bisect", trace, "--until", "tx_packets > 1", "--nic", "3").status == 2)
    }
}

@Suite("Debugger stops")
struct DebuggerTests {
    /// Without a debugger the SIGTRAP ends the process, after it said where it stopped.
    @Test func breakAtRaisesSIGTRAPBeforeTheEvent() throws {
        let trace = repositoryRoot.appendingPathComponent("traces/golden/loopback-basic.vtrace").path
        let r = try CLI.run("replay", trace, "--break-at", "42")
        #expect(r.status == SIGTRAP, "terminated by \(r.status)")
        #expect(r.stderr.contains("vtrace: stopping at event 42, before the access it begins"))
        #expect(!r.stdout.contains("replay matches"))
        // Inside the kick: the stop comes from inside the device.
        let inside = try CLI.run("replay", trace, "--break-at", "60")
        #expect(inside.status == SIGTRAP && inside.stderr.contains("vtrace: stopping at event 60, inside the device code that produces it"))
    }

    @Test func breakOnDivergenceRaisesSIGTRAPAtTheMismatch() throws {
        let trace = repositoryRoot.appendingPathComponent("traces/golden/loopback-basic.vtrace").path
        let r = try CLI.run("replay", trace, "--fault", "count-twice:rx_packets:2", "--break-on-divergence")
        #expect(r.status == SIGTRAP)
        #expect(r.stderr.contains("stopping at the first divergence: event 78"))
        // A clean replay never stops.
        #expect(try CLI.run("replay", trace, "--break-on-divergence").status == 0)
    }
}

@Suite("vtrace check")
struct CheckCLITests {
    @Test func goldenTracesPassAndAFaultyRecordingFails() throws {
        // format-edges wraps counters past 2^64 (the device's wrapping add,
        // like the reference's fetch_add): check's monotonic rule flags that.
        for name in TraceCLITests.golden where name != "format-edges" {
            let r = try CLI.run("check", repositoryRoot.appendingPathComponent("traces/golden/\(name).vtrace").path)
            #expect(r.status == 0 && r.stdout.contains("every identity held"), "\(name): \(r.stdout)")
        }
        let out = try temporaryFile("check-fault.vtrace", [])
        let scenario = repositoryRoot.appendingPathComponent("traces/scenarios/loopback-basic.scenario").path
        _ = try CLI.run("record", "--scenario", scenario, "-o", out, "--fault", "count-twice:tx_packets:2")
        let r = try CLI.run("check", out, "--json")
        #expect(r.status == 1)
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(o["rule"] as? String == "identity 3" && o["event"] is Int)
    }
}

@Suite("vtrace replay --keep-going in parallel")
struct ParallelReplayTests {
    @Test func parallelKeepGoingFindsTheSameDivergencesAsTheSequentialReplay() throws {
        // A recording made with a fault diverges on a clean replay; without --fault,
        // --keep-going replays the checkpoint segments on all cores.
        let out = try temporaryFile("parallel.vtrace", [])
        let scenario = repositoryRoot.appendingPathComponent("traces/scenarios/rx-poison.scenario").path
        _ = try CLI.run("record", "--scenario", scenario, "-o", out, "--flush-events", "8", "--fault", "count-twice:tx_packets:1")
        let parallel = try CLI.run("replay", out, "--keep-going", "--json")
        #expect(parallel.status == 1)
        let p = try JSONSerialization.jsonObject(with: Data(parallel.stdout.utf8)) as! [String: Any]
        let found = (p["divergences"] as! [[String: Any]]).map { $0["event"] as! Int }
        #expect(!found.isEmpty && found == found.sorted())
        // The first one is where a plain sequential replay stops.
        let first = try CLI.run("replay", out, "--json")
        let f = try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as! [String: Any]
        #expect((f["divergences"] as! [[String: Any]]).map { $0["event"] as! Int } == [found[0]])
        // A clean trace matches in parallel too.
        let clean = try CLI.run("replay", repositoryRoot.appendingPathComponent("traces/golden/nics-aggregate.vtrace").path, "--keep-going")
        #expect(clean.status == 0 && clean.stdout.contains("replay matches"))
    }
}

@Suite("vtrace bisect --divergence")
struct BisectDivergenceTests {
    @Test func findsTheSameEventAsReplay() throws {
        let out = try temporaryFile("bisect-div.vtrace", [])
        let scenario = repositoryRoot.appendingPathComponent("traces/scenarios/multiqueue-routing.scenario").path
        _ = try CLI.run("record", "--scenario", scenario, "-o", out, "--flush-events", "6", "--fault", "drop-rx:2")
        let replay = try CLI.run("replay", out, "--json")
        let r = try JSONSerialization.jsonObject(with: Data(replay.stdout.utf8)) as! [String: Any]
        let expected = (r["divergences"] as! [[String: Any]])[0]["event"] as! Int
        let bisect = try CLI.run("bisect", out, "--divergence", "--json")
        #expect(bisect.status == 0)
        let b = try JSONSerialization.jsonObject(with: Data(bisect.stdout.utf8)) as! [String: Any]
        #expect(b["event"] as? Int == expected)
        let clean = try CLI.run("bisect", repositoryRoot.appendingPathComponent("traces/golden/ctrl-ok.vtrace").path, "--divergence", "--json")
        let c = try JSONSerialization.jsonObject(with: Data(clean.stdout.utf8)) as! [String: Any]
        #expect(c["event"] is NSNull)
        #expect(try CLI.run("bisect", out).status == 2)  // neither --until nor --divergence
    }
}

@Suite("Replay memory image")
struct ReplayMemoryImageTests {
    @Test func readsTheRecordingNeverSawAreServedFromTheImageAndFlagged() throws {
        let trace = repositoryRoot.appendingPathComponent("traces/golden/loopback-basic.vtrace").path
        let r = try CLI.run("replay", trace, "--fault", "drop-rx:2")
        #expect(r.status == 1)
        // Past the divergence, the device reads the TX avail index again: the image has it.
        #expect(r.stdout.contains("memory     read of 2 bytes at 0x103002 was not in the recording here; served from the bytes recorded at event 64"))
        // An address nothing recorded covers is said so, precisely.
        #expect(r.stdout.contains("nothing recorded covers [0x103008, 0x10300a): served as a fault"))
    }
}

/// Runs `executable` with `arguments`, standard input from /dev/null, the
/// given extra environment, and both output streams captured together.
func runCombined(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

func quoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

@Suite("Progress bar")
struct ProgressTests {
    /// On a terminal (a pseudo-terminal from script(1)) a long replay draws a
    /// bar on standard error and erases it before the verdict; through a pipe
    /// it draws nothing. VTRACE_PROGRESS_AFTER_MS=0 stands in for "after a second".
    @Test func aTerminalSeesTheBarAndAPipeDoesNot() throws {
        let binary = CLI.productsDirectory.appendingPathComponent("vtrace").path
        let trace = repositoryRoot.appendingPathComponent("traces/golden/loopback-basic.vtrace").path
        let chunks = try CLI.run("info", trace, "--json")
        let total = (try JSONSerialization.jsonObject(with: Data(chunks.stdout.utf8)) as! [String: Any])["chunks"] as! Int
        guard let tty = try CLI.runOnATerminal(["replay", trace], environment: ["VTRACE_PROGRESS_AFTER_MS": "0"]) else { return }
        #expect(tty.status == 0, "\(tty.output)")
        #expect(tty.output.contains("\rreplay ["))
        #expect(tty.output.contains("] \(total)/\(total) chunks\u{1B}[K"))
        let erased = tty.output.range(of: "\r\u{1B}[K")
        let verdict = tty.output.range(of: "replay matches")
        #expect(erased != nil && verdict != nil && erased!.lowerBound < verdict!.lowerBound, "\(tty.output)")
        let piped = try runCombined(binary, ["replay", trace], environment: ["VTRACE_PROGRESS_AFTER_MS": "0"])
        #expect(piped.status == 0 && !piped.output.contains("chunks\u{1B}[K") && !piped.output.contains("\r"))
    }
}

@Suite("Debugger stops under gdb")
struct GDBTests {
    /// gdb in batch mode with the shipped script stops at --break-at's SIGTRAP
    /// and prints the device state through vtrace_debug_print.
    @Test func gdbStopsAtTheEventAndPrintsTheDeviceState() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/gdb"),
              FileManager.default.isExecutableFile(atPath: "/usr/bin/timeout") else {
            print("SKIPPED: gdb is not installed; the SIGTRAP stop itself is tested without it")
            return
        }
        let binary = CLI.productsDirectory.appendingPathComponent("vtrace").path
        let trace = repositoryRoot.appendingPathComponent("traces/golden/long-drain.vtrace").path
        let script = repositoryRoot.appendingPathComponent("tools/vtrace.gdb").path
        // Event 700 is the used-index write of TX head 27, 613 events into the kick at #87.
        let r = try runCombined("/usr/bin/timeout", ["120", "gdb", "-nx", "-batch", "-x", script, "--args", binary, "replay", trace, "--break-at", "700"])
        #expect(r.status == 0, "gdb exited \(r.status): \(r.output)")
        #expect(r.output.contains("vtrace: stopping at event 700, inside the device code that produces it"))
        #expect(r.output.contains("Program received signal SIGTRAP"))
        #expect(r.output.contains("vtrace: replay at event 700, inside the access #87 (613 events in)"))
        #expect(r.output.contains("  access  #87 nic0 mmio write QueueNotify/4 = 0x1"))
        #expect(r.output.contains("  chain   #685 q1 head 27, 1 descriptor"))
        #expect(r.output.contains("  next: #700 nic0 mem write 0x10190a +2 = 1c 00 — q1 used ring, idx"))
        #expect(r.output.contains("  counters of nic0 so far: tx_packets 27, tx_bytes 5400, rx_packets 28, rx_bytes 5600, ctrl_mq_set 1"))
        #expect(r.output.contains("  queue 1: size 128 next_avail 28 next_used 28 desc 0x101000 avail 0x101800 used 0x101908"))
        // The backtrace runs through the device code writing the used index
        // (the bus's write sized for a ring index: `DeviceBus.write<A>(_:from:)`).
        #expect(r.output.contains("ReplayMemory.write(_:from:)") && r.output.contains("DeviceBus.write<A>(_:from:)"), "\(r.output)")
        #expect(!r.output.contains("replay matches"), "the replay must stop, not finish")
        // The backtrace reads as Swift where the toolchain's demangler is on PATH.
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        if path.split(separator: ":").contains(where: { FileManager.default.isExecutableFile(atPath: "\($0)/swift-demangle") }) {
            #expect(r.output.contains("static DebugHooks.stop(_:)") && !r.output.contains("$s6vtrace10DebugHooks"), "\(r.output)")
        }
    }
}
