import Foundation
import Testing
import TraceAnalysis
import TraceCatalog
import TraceFormat
import TraceMapping
import TraceTestSupport
import VirtioCore

/// A summary against the trace decoded independently, event by event, and
/// against golden traces whose facts `vtrace dump` shows.
@Suite("Trace summaries")
struct TraceSummarizerTests {
    static func golden(_ name: String) -> String { repositoryRoot.appendingPathComponent("traces/golden/\(name).vtrace").path }

    @Test(arguments: ["nics-aggregate", "kvm-mq", "long-drain", "rx-poison"])
    func summaryMatchesAnIndependentDecode(_ name: String) throws {
        let path = Self.golden(name)
        let s = TraceSummarizer.summarize(path: path, replay: false, replayedBy: "test")
        let reader = try TraceReader(path: path)
        var perNIC: [NetCounters] = []
        var moves: [String: (count: UInt64, first: UInt64, last: UInt64)] = [:]
        var firstPoison: UInt64?
        var aggregateAfter: [UInt64: NetCounters] = [:]
        for i in reader.chunks.indices {
            var d = try reader.decoder(i)
            if i == 0 { perNIC = d.startCounters.map { NetCounters(values: $0)! } }
            while let e = try d.next() {
                if case .counter(let index, let value) = e.body, let c = NetCounter(ordinal: index) {
                    perNIC[e.nic][c] = value
                    let key = "\(e.nic) \(c.name)"
                    let m = moves[key]
                    moves[key] = ((m?.count ?? 0) + 1, m?.first ?? e.number, e.number)
                }
                if case .poison = e.body, firstPoison == nil { firstPoison = e.number }
                aggregateAfter[e.number] = NetCounters.aggregate(perNIC)!
            }
        }
        #expect(s.status == .complete && s.error == nil)
        #expect(s.contentHash?.count == 64)
        #expect(s.events == reader.eventCount && s.chunks == reader.chunks.count)
        #expect(s.finalCounters == perNIC)
        #expect(s.firstPoison?.event == firstPoison)
        // Every counter that moved, and only those (no trace here starts with non-zero counters).
        #expect(s.counterStats.count == moves.count)
        for stat in s.counterStats {
            let m = try #require(moves["\(stat.nic) \(stat.counter.name)"])
            #expect(stat.moves == m.count && stat.firstEvent == m.first && stat.lastEvent == m.last)
            #expect(stat.finalValue == perNIC[stat.nic][stat.counter])
        }
        // 32 points from the first event to the last, each with the counters after its event.
        let last = reader.eventCount - 1
        #expect(s.timeline.map(\.point) == Array(0..<32))
        #expect(s.timeline.first?.event == 0 && s.timeline.last?.event == last)
        for p in s.timeline {
            #expect(p.event == UInt64((Double(last) * Double(p.point) / 31).rounded()))
            #expect(p.counters == aggregateAfter[p.event])
        }
        let (_, violation) = try InvariantChecker.check(reader)
        #expect(s.check?.ok == (violation == nil))
        #expect(s.check?.violation?.event == violation?.event && s.check?.violation?.rule == violation?.rule)
    }

    @Test func goldenRxPoisonFacts() throws {
        let s = TraceSummarizer.summarize(path: Self.golden("rx-poison"), replay: false, replayedBy: "test")
        // vtrace dump traces/golden/rx-poison.vtrace --kind poison: "#49 0.003931100 nic0 poison q0: avail.idx 1000 is more than 256 ahead of next_avail 0"
        #expect(s.firstPoison?.event == 49 && s.firstPoison?.nic == 0 && s.firstPoison?.queue == 0)
        #expect(s.firstPoison?.reason == "avail.idx 1000 is more than 256 ahead of next_avail 0")
        let byName = Dictionary(uniqueKeysWithValues: s.counterStats.map { ($0.counter.name, $0) })
        #expect(byName.keys.sorted() == ["invalid_avail_idx_count", "rx_bytes", "rx_packets", "tx_bytes", "tx_dropped_rx_poisoned", "tx_packets"])
        #expect(byName["tx_packets"].map { [$0.finalValue, $0.moves, $0.firstEvent, $0.lastEvent] } == [2, 2, 54, 126])
        #expect(byName["invalid_avail_idx_count"].map { [$0.finalValue, $0.moves, $0.firstEvent, $0.lastEvent] } == [1, 1, 48, 48])
        #expect(s.check?.ok == true)
        #expect(s.header?.recorderVersion.isEmpty == false)
    }

    @Test func replayVerdictNamesTheFirstDivergence() throws {
        // `vtrace replay traces/golden/format-vectors-1.3.vtrace --recorded-faults`:
        // "DIVERGED at event 5001 ... expected counter tx_packets = 1".
        let diverging = TraceSummarizer.summarize(path: Self.golden("format-vectors-1.3"), replay: true, replayedBy: "vtrace test")
        let r = try #require(diverging.replay)
        #expect(r.status == .diverged && r.event == 5001 && r.nic == 0 && r.counter == "tx_packets")
        #expect(r.expected == "counter tx_packets = 1" && r.replayedBy == "vtrace test")
        let matching = TraceSummarizer.summarize(path: Self.golden("rx-poison"), replay: true, replayedBy: "vtrace test")
        #expect(matching.replay?.status == .match && matching.replay?.event == nil && matching.replay?.faults == "")
        #expect(TraceSummarizer.summarize(path: Self.golden("rx-poison"), replay: false, replayedBy: "").replay == nil)
    }

    @Test func whatCannotBeReadBecomesARowThatSaysSo() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.golden("rx-poison"))))
        let dir = temporaryPath("summaries-bad")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func write(_ name: String, _ b: [UInt8]) throws -> String {
            try Data(b).write(to: URL(fileURLWithPath: dir + "/" + name))
            return dir + "/" + name
        }
        var flipped = bytes
        flipped[bytes.count / 2] ^= 0xff
        let cases: [(String, TraceStatus, String)] = [
            (try write("text.vtrace", Array("hello\n".utf8)), .notATrace, "not a vtrace trace"),
            (try write("cut.vtrace", Array(bytes.prefix(900))), .incomplete, "the file ends inside chunk 1"),
            (try write("flipped.vtrace", flipped), .corrupt, "checksum mismatch"),
            (dir + "/missing.vtrace", .unreadable, "No such file or directory"),
        ]
        for (path, status, words) in cases {
            let s = TraceSummarizer.summarize(path: path, replay: true, replayedBy: "t")
            #expect(s.status == status, "\(path)")
            #expect(s.error?.contains(words) == true, "\(path): \(s.error ?? "")")
            // A replay was asked for: each says why there is none, or what it found.
            #expect(s.replay != nil)
        }
        let cut = TraceSummarizer.summarize(path: cases[1].0, replay: false, replayedBy: "t")
        #expect(cut.events == 25 && cut.bytesLost > 0 && cut.check?.ok == true)
        let flippedSummary = TraceSummarizer.summarize(path: cases[2].0, replay: true, replayedBy: "t")
        #expect(flippedSummary.check == nil && flippedSummary.replay?.status == .error)
    }
}
