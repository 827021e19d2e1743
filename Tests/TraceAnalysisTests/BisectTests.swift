import Foundation
import GuestDriver
import Testing
import TraceFormat
import TraceAnalysis
import TraceMapping
import TraceRecording
import TraceTestSupport
import VirtioCore

@Suite("Counter bisect")
struct BisectTests {
    @Test func expressionsParseEvaluateAndKnowTheirMonotonicity() throws {
        var c = NetCounters()
        c.txPackets = 10
        c.rxPackets = 7
        c.txDroppedNoRxBuffer = 3
        let cases: [(String, Int64, Bool)] = [
            ("tx_packets", 10, false), ("tx_packets - rx_packets * 2", -4, false), ("(tx_packets - rx_packets) * 2", 6, false),
            ("rx_packets == tx_packets - tx_dropped_no_rx_buffer", 1, false), ("tx_packets > 9 && rx_packets >= 7", 1, true),
            ("tx_packets > 10 || !(rx_packets < 7)", 1, false), ("rx_packets + tx_packets >= 0x11", 1, true),
            ("5 < tx_packets", 1, true), ("-3 + tx_packets", 7, false), ("1_000 <= tx_bytes * 2", 0, true),
            ("tx_packets != 10", 0, false),
        ]
        for (text, value, monotone) in cases {
            let p = try CounterPredicate.parse(text)
            #expect(p.value(c) == value, "\(text)")
            #expect(p.staysTrueOnceTrue == monotone, "\(text)")
        }
        for (bad, column) in [("tx_packet > 1", 1), ("tx_packets >", 13), ("(tx_packets > 1", 16), ("tx_packets > 1 1", 16), ("0xzz > 1", 1)] {
            do {
                _ = try CounterPredicate.parse(bad)
                Issue.record("'\(bad)' parsed")
            } catch {
                #expect(error.column == column, "\(bad): \(error)")
            }
        }
    }

    /// The first event after which `p` holds, by decoding every event in order.
    func linear(_ reader: TraceReader, _ p: CounterPredicate, nic: Int?) throws -> (UInt64?, Bool) {
        var perNIC = Array(repeating: NetCounters(), count: reader.header.nics)
        func selected() -> NetCounters { nic.map { perNIC[$0] } ?? NetCounters.aggregate(perNIC)! }
        var first = true
        for i in reader.chunks.indices {
            var d = try reader.decoder(i)
            if first {
                perNIC = d.startCounters.map { NetCounters(values: $0)! }
                if p.holds(selected()) { return (nil, true) }
                first = false
            }
            while let e = try d.next() {
                if case .counter(let index, let value) = e.body {
                    perNIC[e.nic][NetCounter(ordinal: index)!] = value
                    if p.holds(selected()) { return (e.number, false) }
                }
            }
        }
        return (nil, false)
    }

    @Test func bisectAgreesWithALinearScanOnRandomPredicates() throws {
        let (path, _, _) = try record(trafficScenario + "rx post count=2\ntx send count=2\n", name: "bisect", flushEvents: 60)
        let reader = try TraceReader(path: path)
        #expect(reader.chunks.count >= 15)
        let bound = Int(log2(Double(reader.chunks.count)).rounded(.up)) + 2
        var rng = SplitMix64(seed: 0xB15EC7)
        let names = ["tx_packets", "rx_packets", "tx_bytes", "rx_bytes", "tx_dropped_no_rx_buffer", "invalid_avail_idx_count", "ctrl_mq_set"]
        for trial in 0..<300 {
            func counter() -> String { names[Int(rng.next() % UInt64(names.count))] }
            func small() -> Int { Int(rng.next() % 80) }
            let atom: () -> String = {
                switch rng.next() % 6 {
                case 0: return "\(counter()) >= \(small())"
                case 1: return "\(counter()) + \(counter()) > \(small() * 3)"
                case 2: return "\(counter()) == \(small())"
                case 3: return "\(counter()) < \(counter())"
                case 4: return "!(\(counter()) > \(small()))"
                default: return "\(counter()) * 2 >= \(small() * 1000)"
                }
            }
            let text = rng.next() % 3 == 0 ? "\(atom()) \(rng.next() % 2 == 0 ? "&&" : "||") \(atom())" : atom()
            let p = try CounterPredicate.parse(text)
            let nic: Int? = nil
            let expected = try linear(reader, p, nic: nic)
            let got = try CounterBisector(reader: reader, nic: nic).run(p)
            #expect(got.event == expected.0 && got.holdsAtStart == expected.1, "trial \(trial): '\(text)'")
            if p.staysTrueOnceTrue {
                #expect(got.chunksReplayed <= bound, "trial \(trial): '\(text)' read \(got.chunksReplayed) chunks (bound \(bound))")
            }
        }
    }
}
