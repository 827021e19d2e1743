import Foundation
import Testing

/// `vtrace reduce`: a trace to the smallest scenario that still shows a property.
@Suite("vtrace reduce")
struct ReduceTests {
    static func golden(_ name: String) -> String { repositoryRoot.appendingPathComponent("traces/golden/\(name).vtrace").path }

    /// The operation lines of a scenario (no set-up, comment, blank or expectation).
    func operations(_ text: String) -> [Substring] {
        text.split(separator: "\n").filter { line in
            !line.isEmpty && !line.hasPrefix("#") && !line.hasPrefix("expect ")
                && !["device", "memory", "state"].contains(line.split(separator: " ").first.map(String.init) ?? "")
        }
    }

    /// The final aggregate counters of a scenario run.
    func finalCounters(_ scenario: String) throws -> [String: Int] {
        let r = try CLI.run("scenario", "run", scenario, "--json")
        let o = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let file = (o?["files"] as? [[String: Any]])?.first
        return (file?["aggregate"] as? [String: Any] ?? [:]).compactMapValues { $0 as? Int }
    }

    /// The KVM hostile workload reduces to at most 15 operations, runs, and is
    /// 1-minimal: without any one of its operations the counter stays 0.
    @Test func aKVMHostileTraceReducesToAMinimalScenario() throws {
        let out = try temporaryFile("reduced-hostile.scenario", [])
        let r = try CLI.run("reduce", Self.golden("kvm-hostile"), "--until", "invalid_avail_idx_count > 0", "-o", out)
        #expect(r.status == 0 && r.stdout.contains("1-minimal"), "\(r.stdout)\(r.stderr)")
        let text = try String(contentsOfFile: out, encoding: .utf8)
        let ops = operations(text)
        #expect(ops.count <= 15, "\(ops.count) operations:\n\(text)")
        #expect(try CLI.run("scenario", "run", out).status == 0, "its expectations hold")
        #expect(try finalCounters(out)["invalid_avail_idx_count"] ?? 0 > 0)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for op in ops {
            let without = lines.filter { $0 != op }.filter { !$0.hasPrefix("expect ") }.joined(separator: "\n")
            let path = try temporaryFile("reduced-without.scenario", Array(without.utf8))
            #expect(try finalCounters(path)["invalid_avail_idx_count"] ?? 0 == 0, "still holds without '\(op)'")
        }
    }

    /// A trace recorded with a fault: the reduced scenario holds the recorded
    /// values, so it fails on today's core and holds with the fault.
    @Test func aDivergenceBecomesAFailingRegressionScenario() throws {
        let trace = try temporaryFile("reduce-faulted.vtrace", [])
        let scenario = repositoryRoot.appendingPathComponent("traces/scenarios/loopback-basic.scenario").path
        _ = try CLI.run("record", "--scenario", scenario, "-o", trace, "--fault", "drop-rx:2")
        let out = try temporaryFile("reduced-divergence.scenario", [])
        let r = try CLI.run("reduce", trace, "--divergence", "-o", out)
        #expect(r.status == 0 && r.stdout.contains("1-minimal"), "\(r.stdout)\(r.stderr)")
        let failing = try CLI.run("scenario", "run", out)
        #expect(failing.status == 1 && failing.stdout.contains(": expected "), "\(failing.stdout)")
        let again = try temporaryFile("reduced-divergence.vtrace", [])
        #expect(try CLI.run("record", "--scenario", out, "-o", again, "--fault", "drop-rx:2").status == 0)
    }

    /// A broken identity (a counter bumped twice) reduces to a scenario whose
    /// recording, with the same fault, still breaks it.
    @Test func aBrokenIdentityReduces() throws {
        let trace = try temporaryFile("reduce-twice.vtrace", [])
        let scenario = repositoryRoot.appendingPathComponent("traces/scenarios/loopback-basic.scenario").path
        _ = try CLI.run("record", "--scenario", scenario, "-o", trace, "--fault", "count-twice:tx_packets:2")
        let out = try temporaryFile("reduced-twice.scenario", [])
        let r = try CLI.run("reduce", trace, "--check", "--fault", "count-twice:tx_packets:2", "-o", out)
        #expect(r.status == 0 && r.stdout.contains("1-minimal"), "\(r.stdout)\(r.stderr)")
        #expect(operations(try String(contentsOfFile: out, encoding: .utf8)).count < 37)
        let again = try temporaryFile("reduced-twice-again.vtrace", [])
        _ = try CLI.run("record", "--scenario", out, "-o", again, "--fault", "count-twice:tx_packets:2")
        let check = try CLI.run("check", again)
        #expect(check.status == 1 && check.stdout.contains("VIOLATION"), "\(check.stdout)")
        #expect(try CLI.run("reduce", Self.golden("rx-poison"), "--check", "-o", out).status == 1)
    }

    @Test func aPropertyThatNeverHoldsExits1AndTheClockIsKept() throws {
        let out = try temporaryFile("reduced-never.scenario", [])
        let never = try CLI.run("reduce", Self.golden("rx-poison"), "--until", "tx_packets > 1000", "-o", out)
        #expect(never.status == 1 && never.stderr.contains("'tx_packets > 1000' never holds (at the end: tx_packets=2)"), "\(never.stderr)")
        let agree = try CLI.run("reduce", Self.golden("rx-poison"), "--divergence", "-o", out)
        #expect(agree.status == 1 && agree.stderr.contains("agree"))
        let hurried = try CLI.run("reduce", Self.golden("long-drain"), "--until", "tx_packets > 40", "--max-seconds", "0.001", "-o", out)
        #expect(hurried.status == 0 && hurried.stdout.contains("NOT minimal"), "\(hurried.stdout)")
        #expect(try CLI.run("scenario", "run", out).status == 0)
        #expect(try CLI.run("reduce", Self.golden("rx-poison"), "--check", "--divergence", "-o", out).status == 2)
    }
}
