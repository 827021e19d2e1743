import Foundation
import Testing

@Suite("vtrace why")
struct WhyCLITests {
    static func golden(_ name: String) -> String { repositoryRoot.appendingPathComponent("traces/golden/\(name).vtrace").path }

    @Test func textNamesTheAccessTheChainAndThePath() throws {
        let r = try CLI.run("why", Self.golden("rx-poison"), "invalid_avail_idx_count")
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(Array(lines.prefix(10)) == [
            "invalid_avail_idx_count 0 -> 1 at event 48 (nic0)",
            "access    #41 mmio write QueueNotify/4 = 0x1",
            "chain     #45 TX q1 head 0, 1 descriptor",
            "            0: addr 0x104000 len 76 flags 0x0 next 0",
            "path      valid frame, RX `iter()` error (first)",
            "          invalid avail idx: RX queue 0's avail idx 1000 (read at 0x101002) is 1000 ahead of next_avail 0, "
                + "744 more than the queue size 256; queue 0 poisoned, the 64-byte frame from TX head 0 dropped and the drain stops "
                + "after this chain; TX head 0 returned and its 64 bytes counted",
            "counters  invalid_avail_idx_count 0 -> 1 (#48), tx_dropped_rx_poisoned 0 -> 1 (#50), tx_packets 0 -> 1 (#54), tx_bytes 0 -> 64 (#55)",
            "memory    what the device read and wrote for this chain:",
            "  #42  read   0x103002 +2   ok     q1 avail idx = 2             02 00",
            "  #43  read   0x103004 +2   ok     q1 avail ring entry: head 0  00 00",
        ])
        #expect(lines.contains("  #47  read   0x101002 +2   ok     q0 avail idx = 1000          e8 03"))
        // --nth and --at pick other transitions; --nic scopes them.
        let second = try CLI.run("why", Self.golden("rx-poison"), "tx_packets", "--nth", "2")
        #expect(second.status == 0 && second.stdout.hasPrefix("tx_packets 1 -> 2 at event 126 (nic0)\naccess    #106 mmio write QueueNotify/4 = 0x1\n"),
                "\(second.stdout)")
        let at = try CLI.run("why", Self.golden("rx-poison"), "tx_packets", "--at", "125", "--nic", "0")
        #expect(at.status == 0 && at.stdout.hasPrefix("tx_packets 0 -> 1 at event 54 (nic0)\n"), "\(at.stdout)")
    }

    @Test func jsonHasEveryPart() throws {
        let r = try CLI.run("why", Self.golden("kvm-hostile"), "rx_write_failed", "--json")
        #expect(r.status == 0, "\(r.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let transition = try #require(o["transition"] as? [String: Any])
        #expect(transition["event"] as? Int == 165 && transition["counter"] as? String == "rx_write_failed"
                && transition["old"] as? Int == 0 && transition["new"] as? Int == 1 && transition["nic"] as? Int == 0)
        #expect((o["cause"] as? [String: Any])?["event"] as? Int == 154)
        #expect((o["cause"] as? [String: Any])?["text"] as? String == "mmio write QueueNotify/4 = 0x1")
        let chain = try #require(o["chain"] as? [String: Any])
        #expect(chain["event"] as? Int == 158 && chain["head"] as? Int == 0 && chain["queue"] as? Int == 1 && chain["role"] as? String == "TX")
        let rx = try #require(o["rx_chain"] as? [String: Any])
        let descriptors = try #require(rx["descriptors"] as? [[String: Int]])
        #expect(descriptors == [["addr": 0x7f00_0000_0000, "len": 76, "flags": 2, "next": 1]])
        let path = try #require(o["path"] as? [String: Any])
        #expect(path["row"] as? String == "valid frame, RX write fault (hdr or data), recycle ok / fails")
        #expect((path["sentence"] as? String)?.hasPrefix("RX write failed: the header write to descriptor 0 at 0x7f0000000000 (76 bytes) faulted") == true)
        let memory = try #require(o["memory"] as? [[String: Any]])
        let fault = try #require(memory.first { $0["ok"] as? Bool == false })
        #expect(fault["event"] as? Int == 164 && fault["op"] as? String == "write" && fault["address"] as? Int == 0x7f00_0000_0000
                && fault["length"] as? Int == 12 && fault["bytes"] as? String == "000000000000000000000100" && fault["role"] as? String == "RX header (descriptor 0)")
        #expect((o["counters"] as? [[String: Any]])?.map { $0["counter"] as? String } == ["rx_write_failed", "tx_packets", "tx_bytes"])
        // A poisoned pop: no chain, and the keys are there, null.
        let poison = try CLI.run("why", Self.golden("kvm-hostile"), "invalid_avail_idx_count", "--json")
        let p = try #require(try JSONSerialization.jsonObject(with: Data(poison.stdout.utf8)) as? [String: Any])
        #expect(p["chain"] is NSNull && p["rx_chain"] is NSNull)
    }

    @Test func errorsSayWhatIsMissing() throws {
        let trace = Self.golden("rx-poison")
        let never = try CLI.run("why", trace, "rx_write_failed")
        #expect(never.status == 1 && never.stdout.isEmpty)
        #expect(never.stderr == "vtrace: rx_write_failed never changed in \(trace) (0 transitions)\n")
        let past = try CLI.run("why", trace, "tx_packets", "--nth", "3")
        #expect(past.status == 1)
        #expect(past.stderr == "vtrace: --nth 3: tx_packets changed 2 times in \(trace) (first at event 54, last at event 126)\n")
        let before = try CLI.run("why", trace, "tx_packets", "--at", "53")
        #expect(before.status == 1)
        #expect(before.stderr == "vtrace: --at 53: tx_packets did not change at or before event 53; it changed 2 times in \(trace), first at event 54\n")
        let unknown = try CLI.run("why", trace, "rx_write_faild")
        #expect(unknown.status == 2 && unknown.stderr.hasPrefix("vtrace: unknown counter 'rx_write_faild'; counters are tx_packets, tx_bytes, "))
        #expect(unknown.stderr.hasSuffix(", ctrl_mq_set, ctrl_chain_invalid, ctrl_add_used_failures\n"))
        let both = try CLI.run("why", trace, "tx_packets", "--nth", "1", "--last")
        #expect(both.status == 2 && both.stderr.contains("--nth, --at and --last exclude each other"), "\(both.stderr)")
        #expect(try CLI.run("why", trace, "tx_packets", "--nth", "0").status == 2)
        let nic = try CLI.run("why", trace, "tx_packets", "--nic", "1")
        #expect(nic.status == 2 && nic.stderr == "vtrace: --nic 1: the trace has 1 NIC(s)\n")
        let help = try CLI.run("why", "--help")
        #expect(help.status == 0 && help.stdout.contains("Examples:") && help.stdout.contains("vtrace why run.vtrace rx_write_failed"))
    }
}
