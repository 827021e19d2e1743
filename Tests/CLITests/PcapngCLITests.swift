import Foundation
import Testing
import TraceAnalysis

@Suite("vtrace export --format pcapng")
struct PcapngCLITests {
    /// Final value of each counter per NIC, from `vtrace dump`.
    func finalCounters(_ path: String) throws -> [Int: [String: Int]] {
        var final: [Int: [String: Int]] = [:]
        for o in try dumpLines(path, kind: "counter") {
            final[o["nic"] as! Int, default: [:]][o["counter"] as! String] = o["value"] as? Int
        }
        return final
    }

    /// Two NICs and two queue pairs: one interface per NIC and direction,
    /// exactly tx_packets + rx_packets frames on each NIC, lengths adding up
    /// to tx_bytes / rx_bytes, and each comment naming the chain event of the
    /// frame's queue and the event that counted it. tshark, when installed,
    /// reads the same frames.
    @Test(arguments: ["nics-aggregate", "multiqueue-routing", "rx-too-small"])
    func framesMatchTheCounters(_ scenario: String) throws {
        let trace = try recorded(scenario, "pcap-\(scenario).vtrace")
        let out = try temporaryFile("pcap-\(scenario).pcapng", [])
        let r = try CLI.run("export", trace, "--format", "pcapng", "-o", out)
        #expect(r.status == 0, "\(r.stderr)")
        let file = try PcapngFile(Array(try Data(contentsOf: URL(fileURLWithPath: out))))
        let final = try finalCounters(trace)
        let nics = try #require(Int(try CLI.run("info", trace, "--json").stdout.firstMatch(of: /"nics"\s*:\s*(\d+)/)?.1 ?? ""))
        #expect(file.interfaces.map(\.name) == (0..<nics).flatMap { ["nic\($0)-tx", "nic\($0)-rx"] })
        #expect(file.interfaces.allSatisfy { $0.linkType == 1 && $0.timestampResolution == 9 })
        let chains = Dictionary(uniqueKeysWithValues: try dumpLines(trace, kind: "chain").map { ($0["n"] as! Int, $0) })
        var total = 0
        for nic in 0..<nics {
            for (k, dir) in ["tx", "rx"].enumerated() {
                let mine = file.packets.filter { $0.interface == UInt32(2 * nic + k) }
                let counted = final[nic]?["\(dir)_packets"] ?? 0
                #expect(mine.count == counted, "\(scenario) nic\(nic) \(dir)")
                #expect(mine.reduce(0) { $0 + $1.data.count } == final[nic]?["\(dir)_bytes"] ?? 0)
                for (i, p) in mine.enumerated() {
                    let comment = try #require(p.comment)
                    let m = try #require(comment.firstMatch(of: /^event (\d+): nic(\d+) (tx|rx) queue (\d+) head (\d+); (\w+) (\d+) at event (\d+)$/), "\(comment)")
                    #expect(Int(m.2) == nic && String(m.3) == dir && String(m.6) == "\(dir)_packets" && Int(m.7) == i + 1)
                    let chain = try #require(chains[Int(m.1)!], "no chain event \(String(m.1))")
                    #expect(chain["queue"] as? Int == Int(m.4) && chain["head"] as? Int == Int(m.5), "\(comment) vs \(chain)")
                    #expect(try transition(trace, "\(dir)_packets", i + 1, nic: nic) == Int(m.8))
                }
                total += mine.count
            }
        }
        #expect(r.stderr.contains("wrote \(total) frames"))
        #expect(total == file.packets.count && total > 0)

        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark") else {
            print("SKIPPED: tshark is not installed (tools/bootstrap.sh --test installs it); the pcapng was checked by our reader only")
            return
        }
        let t = try runCombined("/usr/bin/tshark", ["-r", out, "-T", "fields", "-E", "separator=|",
                                                    "-e", "frame.interface_name", "-e", "frame.len", "-e", "frame.comment"])
        #expect(t.status == 0, "\(t.output)")
        let rows = t.output.split(separator: "\n").filter { !$0.hasPrefix("Running as user") }
        let mine = file.packets.map { "\(file.interfaces[Int($0.interface)].name!)|\($0.data.count)|\($0.comment!)" }
        #expect(rows.map(String.init) == mine)
    }

    /// A cut trace exports what it holds, saying where it ends; a corrupt
    /// chunk is an error naming it.
    @Test func damagedTracesSayWhere() throws {
        let trace = try recorded("loopback-basic", "pcap-cut.vtrace")
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: trace)))
        let out = try temporaryFile("pcap-cut.pcapng", [])
        let cut = try temporaryFile("pcap-cut-short.vtrace", Array(bytes.prefix(bytes.count / 2)))
        let r = try CLI.run("export", cut, "--format", "pcapng", "-o", out)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("INCOMPLETE: the file ends inside chunk 0"), "\(r.stderr)")
        var bent = bytes
        bent[bytes.count / 2] ^= 0x40
        let corrupt = try temporaryFile("pcap-corrupt.vtrace", bent)
        let c = try CLI.run("export", corrupt, "--format", "pcapng", "-o", out)
        #expect(c.status == 2, "\(c.stderr)")
        #expect(c.stderr.contains("chunk 0"), "\(c.stderr)")
    }
}
