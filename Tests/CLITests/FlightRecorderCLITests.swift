import Foundation
import Testing
import TraceAnalysis
import TraceFormat

/// `--keep` and `--trigger` through the CLI: the file's size while it
/// records, a recorder killed while its window rolls, the exit statuses.
@Suite("Flight recorder (CLI)", .serialized)
struct FlightRecorderCLITests {
    static let keep: UInt64 = 2 << 20

    /// A scenario file of `rounds` rounds of two-pair traffic (about 330 events and, in format 1.6, 320 bytes of trace a round).
    static func scenario(_ rounds: Int) throws -> String {
        var text = "device queue_pairs=2\ndriver init qsize=64\nctrl mq pairs=2\n"
        for i in 0..<rounds {
            text += "rx post count=8\ntx send count=8 len=\(60 + (i * 37) % 1240)\n"
            text += "rx post pair=1 count=7\ntx send pair=1 count=8 len=\(60 + (i * 53 + 17) % 1240)\n"
        }
        return try temporaryFile("traffic-\(rounds).scenario", Array(text.utf8))
    }

    func startRecording(_ scenario: String, to out: String, _ extra: [String] = []) throws -> Process {
        try? FileManager.default.removeItem(atPath: out)
        try? FileManager.default.removeItem(atPath: out + ".partial")
        let p = Process()
        p.executableURL = CLI.productsDirectory.appendingPathComponent("vtrace")
        p.arguments = ["record", "--scenario", scenario, "-o", out, "--keep", "2MiB", "--flush-events", "4000", "--flush-ms", "600000"] + extra
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// The size of `path` (0 while it does not exist).
    static func size(_ path: String) -> UInt64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.uint64Value ?? 0
    }

    /// Sampled every millisecond while it records, the file never exceeds
    /// the window plus one chunk; the finished window replays and checks.
    @Test func theFileStaysWithinTheWindowWhileItRecords() throws {
        let out = try temporaryFile("kept.vtrace", [])
        // 10,000 rounds: about 3.2 MB of trace, so the 2 MiB window rolls.
        let p = try startRecording(try Self.scenario(10000), to: out)
        var largest: UInt64 = 0, samples = 0
        while p.isRunning {
            largest = max(largest, Self.size(out + ".partial"))
            samples += 1
            usleep(1000)
        }
        #expect(p.terminationStatus == 0)
        let reader = try TraceReader(path: out)
        let chunk = UInt64(reader.chunks.map(\.compressedSize).max() ?? 0) + 52
        #expect(reader.firstEvent > 0 && reader.header.window == "the newest 2097152 bytes")
        #expect(largest <= Self.keep + chunk, "largest sample \(largest) of \(samples), a chunk is at most \(chunk)")
        #expect(UInt64(reader.source.size) <= Self.keep + chunk + UInt64(44 * reader.chunks.count + 32))
        #expect(try CLI.run("replay", "--check", out).status == 0)
        #expect(try CLI.run("check", out).status == 0)
        let dump = try CLI.run("dump", out, "--to", "\(reader.firstEvent)")
        #expect(dump.stdout.hasPrefix("#\(reader.firstEvent) "), "\(dump.stdout.prefix(200))")
    }

    /// SIGKILL at some instant after the window first rolled: the `.partial`
    /// left is a readable window within the size, that replays.
    @Test(arguments: [0, 150_000, 400_000])
    func aRecorderKilledWhileTheWindowRollsLeavesAReadableTrace(delay: useconds_t) throws {
        let out = try temporaryFile("killed-\(delay).vtrace", [])
        // Long enough to be still recording `delay` after the first roll (format 1.6's
        // chunks are small, so the 2 MiB window rolls late in the run).
        let p = try startRecording(try Self.scenario(24000), to: out)
        defer { if p.isRunning { p.terminate() } }
        // Wait for the first roll (the header then names a first event), then a little.
        var rolled = false
        let deadline = Date().addingTimeInterval(60)
        while p.isRunning && Date() < deadline {
            if let r = try? TraceReader(path: out + ".partial"), r.header.firstEvent > 0 { rolled = true; break }
            usleep(2000)
        }
        try #require(rolled, "the window never rolled")
        usleep(delay)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(p.terminationReason == .uncaughtSignal)
        let partial = out + ".partial"
        let reader = try TraceReader(path: partial)
        let chunk = UInt64(reader.chunks.map(\.compressedSize).max() ?? 0) + 52
        #expect(reader.completeness != .complete && reader.firstEvent > 0 && reader.chunks.first?.hasCheckpoint == true)
        #expect(Self.size(partial) <= Self.keep + 2 * chunk, "\(Self.size(partial))")
        let replay = try CLI.run("replay", "--check", partial)
        #expect(replay.status == 0, "\(replay.stdout)\(replay.stderr)")
    }

    @Test func triggersAndTheirExitStatus() throws {
        let scenario = try Self.scenario(40)
        let out = try temporaryFile("trigger.vtrace", [])
        // Fired: exit 1, said on standard error, the header keeps the condition.
        let fired = try CLI.run("record", "--scenario", scenario, "-o", out, "--trigger", "tx_packets >= 100", "--after", "10")
        #expect(fired.status == 1)
        // It held at the counter event that set tx_packets to 100; the trace ends after 10 more and the access's end.
        let counter = try #require(try CLI.run("dump", out, "--kind", "counter").stdout.split(separator: "\n")
            .first { $0.hasSuffix("counter tx_packets = 100") }.flatMap { UInt64($0.dropFirst().prefix { $0 != " " }) })
        let end = try TraceReader(path: out).eventCount
        #expect(end > counter + 10)
        #expect(fired.stderr.contains("vtrace: --trigger 'tx_packets >= 100' held at event \(counter); the trace holds events 0…\(end - 1)"), "\(fired.stderr)")
        let info = try CLI.run("info", out)
        #expect(info.stdout.contains("trigger    'tx_packets >= 100'"))
        // Never fired: exit 0, said too.
        try FileManager.default.removeItem(atPath: out)
        let quiet = try CLI.run("record", "--scenario", scenario, "-o", out, "--trigger", "rx_write_failed > 0")
        #expect(quiet.status == 0 && quiet.stderr.contains("vtrace: --trigger 'rx_write_failed > 0' never held"))
        // mark: the marker in dump, info and timeline.
        try FileManager.default.removeItem(atPath: out)
        let marked = try CLI.run("record", "--scenario", scenario, "-o", out, "--trigger", "tx_packets >= 100", "--trigger-action", "mark")
        #expect(marked.status == 1)
        let markers = try CLI.run("dump", out, "--kind", "marker")
        let line = try #require(markers.stdout.split(separator: "\n").first.map(String.init))
        #expect(line.hasSuffix(" nic0 marker: trigger fired at event \(counter)"), "\(line)")
        let at = try #require(UInt64(line.dropFirst().prefix { $0 != " " }))
        #expect(try CLI.run("info", out).stdout.contains("marker     #\(at) trigger fired at event "))
        #expect(try CLI.run("timeline", out).stdout.contains("marker: trigger fired at event "))
        #expect(try CLI.run("replay", "--check", out).status == 0)
    }

    @Test func badWindowsAndTriggersAreRefusedBeforeRecording() throws {
        let scenario = try Self.scenario(2)
        let out = try temporaryFile("refused.vtrace", [])
        try? FileManager.default.removeItem(atPath: out)
        let small = try CLI.run("record", "--scenario", scenario, "-o", out, "--keep", "1MiB")
        #expect(small.status == 2 && small.stderr.contains("--keep 1MiB is smaller than two chunks (2 MiB"), "\(small.stderr)")
        let nonsense = try CLI.run("record", "--scenario", scenario, "-o", out, "--keep", "lots")
        #expect(nonsense.status == 2 && nonsense.stderr.contains("--keep lots: not a size"))
        let bad = try CLI.run("record", "--scenario", scenario, "-o", out, "--trigger", "tx_packets >")
        #expect(bad.status == 2 && bad.stderr.contains("--trigger 'tx_packets >': column"), "\(bad.stderr)")
        let lonely = try CLI.run("record", "--scenario", scenario, "-o", out, "--after", "5")
        #expect(lonely.status == 2 && lonely.stderr.contains("--after and --trigger-action go with --trigger"))
        #expect(!FileManager.default.fileExists(atPath: out) && !FileManager.default.fileExists(atPath: out + ".partial"))
    }
}
