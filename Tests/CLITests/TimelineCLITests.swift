import Foundation
import Testing

func dumpLines(_ path: String, kind: String) throws -> [[String: Any]] {
    let r = try CLI.run("dump", path, "--json", "--kind", kind)
    return try r.stdout.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
}

@Suite("vtrace timeline and export")
struct TimelineCLITests {
    static let golden = repositoryRoot.appendingPathComponent("traces/golden/rx-poison.vtrace").path

    @Test func timelineRowsAreTheTransitions() throws {
        let r = try CLI.run("timeline", Self.golden, "--format", "jsonl", "--counters", "rx_packets,tx_packets")
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try r.stdout.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let transitions = try dumpLines(Self.golden, kind: "counter").filter { ["rx_packets", "tx_packets"].contains($0["counter"] as! String) }
        #expect(rows.count == transitions.count + 2)  // the start and the end around them
        #expect(rows.dropFirst().dropLast().map { $0["event"] as! Int } == transitions.map { $0["n"] as! Int })
        #expect(rows.dropFirst().dropLast().map { $0["counter"] as! String } == transitions.map { $0["counter"] as! String })
        // Each transition row carries the value the dump shows.
        for (row, t) in zip(rows.dropFirst(), transitions) {
            #expect((row["counters"] as! [String: Int])[t["counter"] as! String] == t["value"] as? Int)
        }
        let replay = try CLI.run("replay", Self.golden, "--json")
        let counters = ((try JSONSerialization.jsonObject(with: Data(replay.stdout.utf8)) as! [String: Any])["counters"] as! [[String: Int]])[0]
        let last = rows.last!["counters"] as! [String: Int]
        #expect(last["rx_packets"] == counters["rx_packets"] && last["tx_packets"] == counters["tx_packets"])
    }

    @Test func timelineFormatsAndErrors() throws {
        let csv = try CLI.run("timeline", Self.golden, "--format", "csv", "--every", "10")
        #expect(csv.status == 0)
        let lines = csv.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("event,time_ns,nic,counter,") == true)
        #expect(lines.dropFirst().allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == lines[0].split(separator: ",").count })
        #expect(try CLI.run("timeline", Self.golden, "--counters", "rx_packet").status == 2)
        #expect(try CLI.run("timeline", Self.golden, "--nic", "3").status == 2)
        #expect(try CLI.run("timeline", Self.golden, "--every", "0").status == 2)
    }

    @Test func perfettoExportHasATrackPerCounterAndTheInstants() throws {
        let out = try temporaryFile("export.json", [])
        let r = try CLI.run("export", Self.golden, "--format", "perfetto", "-o", out)
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as! [String: Any]
        let events = doc["traceEvents"] as! [[String: Any]]
        let counters = events.filter { $0["ph"] as? String == "C" }
        #expect(counters.count == 16 + (try dumpLines(Self.golden, kind: "counter")).count)
        let instants = events.filter { $0["ph"] as? String == "i" }.map { $0["name"] as! String }
        let kicks = try dumpLines(Self.golden, kind: "mmio").filter { $0["register"] as? String == "QueueNotify" && $0["op"] as? String == "write" }
        #expect(instants.filter { $0.hasPrefix("kick q") }.count == kicks.count)
        #expect(instants.contains("poison q0") && instants.contains("irq vring"))
        #expect(events.contains { $0["ph"] as? String == "M" && ($0["args"] as? [String: String])?["name"] == "nic0" })
        let jsonl = try CLI.run("export", Self.golden, "--format", "jsonl", "-o", "-")
        #expect(jsonl.stdout == (try CLI.run("dump", Self.golden, "--json")).stdout)
    }
}
