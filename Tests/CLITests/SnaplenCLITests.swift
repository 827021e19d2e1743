import Foundation
import Testing
import TraceAnalysis
import TraceFormat

/// `--snaplen N` on the command line: `traces/workloads/snaplen-frames.scenario`
/// (frames of 0xa7 bytes, 8,080 bytes transmitted) recorded whole and with a
/// snaplen, then every command a trace goes through.
@Suite("vtrace --snaplen")
struct SnaplenCLITests {
    static let workload = repositoryRoot.appendingPathComponent("traces/workloads/snaplen-frames.scenario").path

    /// The workload recorded with `arguments`, under a name of the test's own.
    static func recorded(_ name: String, _ arguments: [String] = [], test: String = #function) throws -> String {
        let out = try temporaryFile("snap-\(test.filter { $0.isLetter })-\(name).vtrace", [])
        try? FileManager.default.removeItem(atPath: out)
        let r = try CLI.runArguments(["record", "--scenario", workload, "-o", out] + arguments)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        return out
    }

    /// Every recording command takes it, and refuses more than tcpdump's largest.
    @Test func everyRecordingCommandTakesIt() throws {
        for command in [["record"], ["run"], ["serve"]] {
            let help = try CLI.runArguments(command + ["--help"])
            #expect(help.stdout.contains("--snaplen <n>"), "\(command)")
        }
        let out = try temporaryFile("snap-refused.vtrace", [])
        let r = try CLI.run("record", "--scenario", Self.workload, "-o", out, "--snaplen", "262145")
        #expect(r.status == 2 && r.stderr.contains("--snaplen 262145 is over 262144, tcpdump's largest"), "\(r.stderr)")
        #expect(try CLI.run("record", "--scenario", Self.workload, "-o", out, "--snaplen", "-1").status == 2)
    }

    /// `info` says the snaplen and what it left out; `dump` shows the bytes
    /// kept and how many were not, in text and JSON; `replay --check` and
    /// `verify` pass.
    @Test func infoDumpReplayAndVerify() throws {
        let trace = try Self.recorded("64", ["--snaplen", "64"])
        let info = try CLI.run("info", trace)
        #expect(info.stdout.contains("\nsnaplen    64: payload past each frame's first 64 bytes not stored (14288 bytes in 23 memory events)\n"), "\(info.stdout)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(try CLI.run("info", trace, "--json").stdout.utf8)) as? [String: Any])
        #expect(json["snaplen"] as? Int == 64 && json["payload_bytes_not_stored"] as? Int == 14_288 && json["partial_memory_events"] as? Int == 23)
        let whole = try CLI.run("info", try Self.recorded("full"), "--json")
        #expect(whole.stdout.contains("\"snaplen\" : null") && whole.stdout.contains("\"payload_bytes_not_stored\" : 0"))

        let text = try CLI.run("dump", trace, "--kind", "mem", "--bytes", "4")
        let a7 = "a7 a7 a7 a7 …(+60)"
        #expect(text.stdout.contains(" nic0 mem read  0x10380c +1500 = \(a7) … (+1436 not stored)\n"), "\(text.stdout)")
        #expect(text.stdout.contains(" nic0 mem write 0x4000000 +700 = \(a7) … (+636 not stored) FAULT\n"))
        let lines = try dumpLines(trace, kind: "mem")
        let partial = lines.filter { $0["not_stored"] != nil }
        #expect(partial.count == 23 && partial.map { $0["not_stored"] as! Int }.reduce(0, +) == 14_288)
        #expect(partial.allSatisfy { ($0["bytes"] as! String) == String(repeating: "a7", count: ($0["length"] as! Int) - ($0["not_stored"] as! Int)) })
        #expect(lines.filter { $0["not_stored"] == nil }.allSatisfy { ($0["bytes"] as! String).count == 2 * ($0["length"] as! Int) || $0["ok"] as? Bool == false })

        for snaplen in ["0", "64"] {
            let t = snaplen == "64" ? trace : try Self.recorded(snaplen, ["--snaplen", snaplen])
            let replay = try CLI.run("replay", t, "--check")
            #expect(replay.status == 0 && replay.stdout.contains("match: 302 events"), "\(replay.stdout)\(replay.stderr)")
            #expect(try CLI.run("verify", t).status == 0)
        }
    }

    /// `why` (memory bytes aside), `bisect` and `diff` answer as on the full
    /// recording; `reduce` reduces it to the same operations.
    @Test func whyBisectDiffAndReduceAnswerAsTheFullRecording() throws {
        let full = try Self.recorded("full"), snap = try Self.recorded("64", ["--snaplen", "64"])
        /// The why answer with each memory access's bytes left out.
        func why(_ trace: String, _ counter: String) throws -> (NSDictionary, [String]) {
            let r = try CLI.run("why", trace, counter, "--json")
            #expect(r.status == 0, "\(r.stderr)")
            var o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            var memory = try #require(o["memory"] as? [[String: Any]])
            let bytes = memory.map { $0["bytes"] as! String }
            for i in memory.indices { for key in ["bytes", "not_stored"] { memory[i][key] = nil } }
            o["memory"] = memory
            return (o as NSDictionary, bytes)
        }
        for counter in ["rx_write_failed", "tx_dropped_no_rx_buffer", "rx_bytes", "tx_packets"] {
            let (a, aBytes) = try why(full, counter), (b, bBytes) = try why(snap, counter)
            #expect(a == b, "\(counter)")
            #expect(zip(aBytes, bBytes).allSatisfy { $0.hasPrefix($1) } && aBytes.count == bBytes.count)
        }
        for predicate in ["rx_write_failed > 0", "tx_dropped_no_rx_buffer > 0", "rx_bytes > 6000"] {
            let a = try CLI.run("bisect", full, "--until", predicate), b = try CLI.run("bisect", snap, "--until", predicate)
            #expect(a.status == 0 && b.status == 0)
            #expect(a.stdout.split(separator: "\n").first == b.stdout.split(separator: "\n").first, "\(predicate): \(b.stdout)")
        }
        let diff = try CLI.run("diff", full, snap)
        #expect(diff.status == 0 && diff.stdout.contains("verdict: identical counter timelines"), "\(diff.stdout)")

        /// Reduces `trace`; returns its operations but the memory lines.
        func reduced(_ trace: String) throws -> [Substring] {
            let out = try temporaryFile("snap-reduced-\(URL(fileURLWithPath: trace).lastPathComponent).scenario", [])
            let r = try CLI.run("reduce", trace, "--until", "rx_write_failed > 0", "-o", out)
            #expect(r.status == 0 && r.stdout.contains("1-minimal"), "\(r.stdout)\(r.stderr)")
            #expect(try CLI.run("scenario", "run", out).status == 0, "the reduced scenario's expectations hold")
            return try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n")
                .filter { !$0.hasPrefix("#") && !$0.hasPrefix("mem ") && !$0.hasPrefix("expect ") }
        }
        #expect(try reduced(snap) == reduced(full))
    }

    /// `export --format pcapng`: each frame cut at 64 bytes with its original
    /// length, the interfaces' snap length 64, as tcpdump -s 64 writes them
    /// (tshark reads the same lengths where it is installed).
    @Test func pcapngFramesAreCutWithTheirOriginalLength() throws {
        let trace = try Self.recorded("64", ["--snaplen", "64"])
        let out = try temporaryFile("snap-64.pcapng", [])
        let r = try CLI.run("export", trace, "--format", "pcapng", "-o", out)
        #expect(r.status == 0 && r.stderr.contains("wrote 20 frames (11 tx, 9 rx)"), "\(r.stderr)")
        let file = try PcapngFile(Array(try Data(contentsOf: URL(fileURLWithPath: out))))
        #expect(file.interfaces.map(\.snapLength) == [64, 64])
        #expect(file.comment?.hasSuffix("snaplen 64: frames past their first 64 bytes were not stored") == true)
        let lengths = [1500, 1500, 1500, 1500, 1500, 1500, 1000, 1000, 1000, 1000, 88, 300, 88, 300, 200, 700, 40, 40, 40, 40]  // as counted: RX, then TX
        #expect(file.packets.map(\.originalLength) == lengths.map(UInt32.init))
        #expect(file.packets.map(\.data) == lengths.map { [UInt8](repeating: 0xa7, count: min($0, 64)) })

        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark") else {
            print("SKIPPED: tshark is not installed (tools/bootstrap.sh --test installs it); the pcapng was checked by our reader only")
            return
        }
        let t = try runCombined("/usr/bin/tshark", ["-r", out, "-T", "fields", "-E", "separator=|", "-e", "frame.len", "-e", "frame.cap_len"])
        #expect(t.status == 0, "\(t.output)")
        let rows = t.output.split(separator: "\n").filter { !$0.hasPrefix("Running as user") }.map(String.init)
        #expect(rows == lengths.map { "\($0)|\(min($0, 64))" })
    }

    /// The independent decoder reads snaplen traces as `dump --json` does.
    @Test func thePythonDecoderAgrees() throws {
        let traces = [try Self.recorded("0", ["--snaplen", "0"]), try Self.recorded("16", ["--snaplen", "16"]), try Self.recorded("64", ["--snaplen", "64"])]
        let r = try runCombined(repositoryRoot.appendingPathComponent("tools/trace-decoder/check.sh").path, traces,
                                environment: ["VTRACE": CLI.productsDirectory.appendingPathComponent("vtrace").path])
        #expect(r.status == 0 && r.output.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count == 3, "\(r.output)")
    }

    /// A partial record that claims to store more bytes than its access has:
    /// `dump` and the Python decoder both stop at it, exit 2, naming the
    /// chunk, its offset in the file and the record's offset in the chunk.
    @Test func aHostilePartialRecordIsCorruptNamingWhere() throws {
        let path = try temporaryFile("snap-hostile.vtrace", [])
        try? FileManager.default.removeItem(atPath: path)
        var header = TraceHeader()
        header.nics = 1
        header.snaplen = 64
        var cp = NICCheckpoint()
        cp.queues = [QueueCheckpoint(), QueueCheckpoint()]
        let writer = try TraceWriter(path: path, header: header, level: 1)
        var e = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [cp], counters: [])
        e.append(.mmioWrite(offset: 0x50, width: 4, value: 1), nic: 0, vcpu: 0, time: 1)
        let at = e.size
        var record = ByteWriter()
        for v: UInt8 in [RecordCode.tag(code: TruncatedMemoryRecord.code), 0, 0] { record.byte(v) }
        record.varint(1500)
        record.varint(1600)
        record.append([UInt8](repeating: 0xa7, count: 1600))
        e.appendRaw(record.bytes)
        try writer.submit(e)
        let chunk = try writer.finish()[0].offset
        let dump = try CLI.run("dump", path, "--json")
        #expect(dump.status == 2 && dump.stdout.split(separator: "\n").count == 1, "\(dump.stdout)")
        #expect(dump.stderr.contains("corrupt trace at byte \(chunk) (chunk 0): memory read of 1500 bytes stores 1600 of them (a part is fewer) (byte \(at) of the chunk's content)"),
                "\(dump.stderr)")
        let python = try runCombined("/usr/bin/env", ["python3", repositoryRoot.appendingPathComponent("tools/trace-decoder/vtrace_decode.py").path, path])
        #expect(python.status == 2, "\(python.output)")
        #expect(python.output.contains("chunk 0 at byte \(chunk), byte \(at) of its content: memory read of 1500 bytes stores 1600 of them (a part is fewer)"),
                "\(python.output)")
    }
}
