import Foundation
import Testing

/// The event number where `counter` first takes `value` in the trace at `path` (via `vtrace dump --json`).
func transition(_ path: String, _ counter: String, _ value: Int, nic: Int = 0) throws -> Int? {
    let r = try CLI.run("dump", path, "--json", "--kind", "counter")
    for line in r.stdout.split(separator: "\n") {
        let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
        if o["counter"] as? String == counter, o["value"] as? Int == value, o["nic"] as? Int == nic { return o["n"] as? Int }
    }
    return nil
}

/// Records `scenario` (a library scenario name or a path) with extra vtrace record arguments.
func recorded(_ scenario: String, _ name: String, _ extra: [String] = []) throws -> String {
    let out = try temporaryFile(name, [])
    let path = scenario.hasPrefix("/") ? scenario : repositoryRoot.appendingPathComponent("traces/scenarios/\(scenario).scenario").path
    let r = try CLI.runArguments(["record", "--scenario", path, "-o", out] + extra)
    // A fault makes the scenario's own expectations fail (exit 1); the trace is written either way.
    #expect(r.status == 0 || (extra.contains("--fault") && r.status == 1), "\(r.stderr)")
    return out
}

func diffJSON(_ a: String, _ b: String, _ extra: [String] = []) throws -> (Int32, [String: Any]) {
    let r = try CLI.runArguments(["diff", a, b, "--json"] + extra)
    return (r.status, try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any])
}

@Suite("vtrace diff")
struct DiffCLITests {
    @Test func identicalTracesExitZero() throws {
        for name in TraceCLITests.golden {
            let path = repositoryRoot.appendingPathComponent("traces/golden/\(name).vtrace").path
            let r = try CLI.run("diff", path, path)
            #expect(r.status == 0, "\(name): \(r.stdout)")
            #expect(r.stdout.contains("verdict: identical counter timelines"))
        }
    }

    /// A lost RX delivery: the split is A's rx_packets transition for that frame, which B lacks.
    @Test func aDroppedDeliveryIsFoundWhereItStruck() throws {
        let a = try recorded("loopback-basic", "diff-clean.vtrace")
        let b = try recorded("loopback-basic", "diff-drop.vtrace", ["--fault", "drop-rx:3"])
        let (status, o) = try diffJSON(a, b)
        #expect(status == 1)
        #expect(o["identical"] as? Bool == false)
        let scope = (o["scopes"] as! [[String: Any]])[0]
        #expect(scope["split_counter"] as? String == "rx_packets")
        #expect(scope["event_a"] as? Int == (try transition(a, "rx_packets", 3)))
        #expect(scope["event_b"] is NSNull)
        #expect(scope["counter_transitions_only_a"] as? Int == 2)  // rx_packets and rx_bytes of the lost frame
        #expect(scope["counter_transitions_only_b"] as? Int == 0)
        let endA = scope["end_a"] as! [String: Int], endB = scope["end_b"] as! [String: Int]
        #expect(endA["rx_packets"] == 3 && endB["rx_packets"] == 2 && endA["tx_packets"] == endB["tx_packets"])
        let atSplitB = scope["counters_at_split_b"] as! [String: Int]
        #expect(atSplitB["rx_packets"] == 2)
        // The text names the event and shows the lines only A has.
        let text = try CLI.run("diff", a, b)
        #expect(text.status == 1)
        #expect(text.stdout.contains("nic0: DIFFER — A sets rx_packets = 3 (+1) at event \(scope["event_a"] as! Int); B has no such transition"))
        #expect(text.stdout.contains("    - A#\(scope["event_a"] as! Int) "))
        // What B did instead: it popped the same RX chain and never published it.
        let rxChain = try #require(try dumpLines(a, kind: "chain").last { ($0["queue"] as? Int) == 0 && ($0["n"] as? Int ?? 0) < scope["event_a"] as! Int })
        let n = rxChain["n"] as! Int, head = rxChain["head"] as! Int
        #expect(text.stdout.contains("where A counts it, B popped chain q0 head \(head) as A did (A#\(n), B#\(n)) and did not publish it as used, and does not count rx_packets"),
                "\(text.stdout)")
    }

    /// A counter bumped twice: the split is the same transition in both, with different steps.
    @Test func aDoubleCountIsFoundInBothTraces() throws {
        let a = try recorded("loopback-basic", "diff-clean2.vtrace")
        let b = try recorded("loopback-basic", "diff-twice.vtrace", ["--fault", "count-twice:tx_packets:2"])
        let (status, o) = try diffJSON(a, b)
        #expect(status == 1)
        let scope = (o["scopes"] as! [[String: Any]])[0]
        #expect(scope["split_counter"] as? String == "tx_packets")
        #expect(scope["event_a"] as? Int == (try transition(a, "tx_packets", 2)))
        #expect(scope["event_b"] as? Int == (try transition(b, "tx_packets", 3)))
        #expect((scope["summary"] as? String)?.contains("where B sets it to 3 (+2)") == true)
    }

    /// The same workload with extra MMIO reads in one trace (timing noise): the
    /// reads are unmatched, the counter timelines identical.
    @Test func mmioNoiseLeavesTheCounterTimelinesIdentical() throws {
        let source = try String(contentsOf: repositoryRoot.appendingPathComponent("traces/scenarios/multiqueue-routing.scenario"), encoding: .utf8)
        var noisy: [String] = []
        for line in source.split(separator: "\n", omittingEmptySubsequences: false) {
            noisy.append(String(line))
            if line.hasPrefix("tx send") || line.hasPrefix("rx post") {
                noisy += ["mmio read 0x70", "mmio read 0x60", "mmio read 0x34"]  // Status, InterruptStatus, QueueNumMax
            }
        }
        let noisyPath = try temporaryFile("noisy.scenario", Array(noisy.joined(separator: "\n").utf8))
        let a = try recorded("multiqueue-routing", "diff-quiet.vtrace")
        let b = try recorded(noisyPath, "diff-noisy.vtrace")
        let (status, o) = try diffJSON(a, b)
        #expect(status == 0)
        #expect(o["identical"] as? Bool == true)
        let scope = (o["scopes"] as! [[String: Any]])[0]
        let eventsA = (o["a"] as! [String: Any])["events"] as! Int, eventsB = (o["b"] as! [String: Any])["events"] as! Int
        #expect(eventsB > eventsA)  // the noise is there
        #expect(scope["counter_transitions_only_a"] as? Int == 0 && scope["counter_transitions_only_b"] as? Int == 0)
        // Against a faulty recording the noise still leaves the real split in place.
        let faulty = try recorded(noisyPath, "diff-noisy-drop.vtrace", ["--fault", "drop-rx:2"])
        let (s2, o2) = try diffJSON(a, faulty)
        #expect(s2 == 1)
        let scope2 = (o2["scopes"] as! [[String: Any]])[0]
        #expect(scope2["split_counter"] as? String == "rx_packets")
        #expect(scope2["event_a"] as? Int == (try transition(a, "rx_packets", 2)))
    }

    @Test func nicsAndTheAggregate() throws {
        let path = repositoryRoot.appendingPathComponent("traces/golden/nics-aggregate.vtrace").path
        let (status, o) = try diffJSON(path, path)
        #expect(status == 0)
        let scopes = o["scopes"] as! [[String: Any]]
        #expect(scopes.count == (o["a"] as! [String: Any])["nics"] as! Int && scopes.count > 1)
        let (s2, o2) = try diffJSON(path, path, ["--aggregate"])
        #expect(s2 == 0 && (o2["scopes"] as! [[String: Any]]).count == 1)
        #expect(try CLI.run("diff", path, path, "--nic", "7").status == 2)
        #expect(try CLI.run("diff", path, path, "--nic", "0", "--aggregate").status == 2)
        #expect(try CLI.run("diff", path, "/nonexistent.vtrace").status == 2)
    }
}
