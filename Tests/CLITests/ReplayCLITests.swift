import Foundation
import Testing

@Suite("vtrace replay")
struct ReplayCLITests {
    static var golden: String { repositoryRoot.appendingPathComponent("traces/golden/loopback-basic.vtrace").path }

    @Test func goldenTracesReplayWithZeroDivergence() throws {
        for name in TraceCLITests.golden {
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
