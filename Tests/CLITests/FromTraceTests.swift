import Foundation
import Testing

/// `vtrace scenario from-trace`: any trace becomes a scenario whose recording
/// has the same counter timelines.
@Suite("Scenarios from traces")
struct FromTraceTests {
    static func golden(_ name: String) -> String { repositoryRoot.appendingPathComponent("traces/golden/\(name).vtrace").path }

    /// Every golden that replays (scenario runs, KVM guests, the Linux boot
    /// over vhost-user, drains cut into chunks, the format's edges): the
    /// scenario runs with every expectation holding, and its recording
    /// diffs identical against the trace.
    @Test(arguments: TraceCLITests.golden)
    func aGoldenTraceRoundTripsThroughItsScenario(_ name: String) throws {
        let scenario = try temporaryFile("from-\(name).scenario", [])
        let made = try CLI.run("scenario", "from-trace", Self.golden(name), "-o", scenario)
        #expect(made.status == 0 && made.stderr.contains("accesses"), "\(made.stderr)")
        let again = try temporaryFile("from-\(name).vtrace", [])
        let recorded = try CLI.run("record", "--scenario", scenario, "-o", again)
        #expect(recorded.status == 0, "\(name): \(recorded.stdout)\(recorded.stderr)")
        let diff = try CLI.run("diff", Self.golden(name), again)
        #expect(diff.status == 0 && diff.stdout.contains("verdict: identical counter timelines"), "\(name): \(diff.stdout)")
    }

    @Test func aMidTraceStartRestoresTheCheckpointsState() throws {
        let scenario = try temporaryFile("from-mid.scenario", [])
        let r = try CLI.run("scenario", "from-trace", Self.golden("long-drain"), "--from", "800", "--to", "1200", "-o", scenario)
        #expect(r.status == 0, "\(r.stderr)")
        let text = try String(contentsOfFile: scenario, encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("state nic=0 status=0xb features=0x100420020 ") }, "\(lines.prefix(5))")
        // Every recorded counter value holds when it runs.
        let run = try CLI.run("scenario", "run", scenario, "--json")
        #expect(run.status == 0, "\(run.stdout)")
        // A kick reads as what it did.
        #expect(lines.contains { $0.hasPrefix("# #") && $0.contains("kick q") && $0.contains("chains q1 (heads ") }, "\(text.prefix(2000))")
    }

    @Test func readableCommentsAndFoldedMemory() throws {
        let scenario = try temporaryFile("from-loopback.scenario", [])
        #expect(try CLI.run("scenario", "from-trace", Self.golden("loopback-basic"), "-o", scenario).status == 0)
        let lines = try String(contentsOfFile: scenario, encoding: .utf8).split(separator: "\n")
        #expect(lines[0].hasPrefix("# loopback-basic.vtrace: events 0…"))
        #expect(lines.contains("# #42 kick q1: 3 chains q0 (heads 0 1 2), 3 chains q1 (heads 0 1 2), 6 used, rx_packets +3, rx_bytes +192, tx_packets +3, tx_bytes +192, irq vring"))
        // No line of guest memory longer than 32 bytes.
        for line in lines where line.hasPrefix("mem write ") {
            #expect(line.split(separator: " ")[3].count <= 64, "\(line)")
        }
    }

    @Test func badArgumentsExit2() throws {
        let out = try temporaryFile("from-bad.scenario", [])
        #expect(try CLI.run("scenario", "from-trace", Self.golden("nics-aggregate"), "--nic", "3", "-o", out).status == 2)
        #expect(try CLI.run("scenario", "from-trace", Self.golden("rx-poison"), "--from", "130", "-o", out).status == 2)
        #expect(try CLI.run("scenario", "from-trace", Self.golden("rx-poison"), "-o", Self.golden("rx-poison")).status == 2)
    }
}
