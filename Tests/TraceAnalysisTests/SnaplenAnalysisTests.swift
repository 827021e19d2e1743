import Foundation
import Scenarios
import Testing
import TraceAnalysis
import TraceFormat
import TraceMapping
import TraceTestSupport
import VirtioCore

/// A trace recorded with a snaplen answers every question about counters,
/// chains and used entries as the full recording of the same run does:
/// replay, packet export, why, bisect, diff and from-trace, on
/// `traces/workloads/snaplen-frames.scenario` (frames of 0xa7 bytes).
@Suite("Snaplen traces analysed")
struct SnaplenAnalysisTests {
    /// The workload recorded whole and with `snaplen`, under names of the test's own.
    static func traces(_ snaplen: UInt32, test: String = #function) throws -> (full: TraceReader, snap: TraceReader) {
        let text = try snaplenFramesScenario()
        let name = "snap-" + test.filter { $0.isLetter } + "-\(snaplen)"
        let (full, _, _) = try record(text, name: name + "-full")
        let (snap, _, _) = try record(text, name: name, snaplen: snaplen)
        return (try TraceReader(path: full), try TraceReader(path: snap))
    }

    /// The first diverging event of a whole replay with `faults` (nil: none), and the final counters.
    static func replay(_ reader: TraceReader, faults: [String] = []) throws -> (UInt64?, [NetCounters]) {
        let outcome = try TraceReplayer(reader: reader, faults: try DeviceFaults.parse(faults).get()).replayAll(keepGoing: false)
        return (outcome.divergences.first?.event, outcome.counters)
    }

    /// Replay checks everything but the missing payload and matches; a
    /// device that loses an RX delivery or publishes no used element still
    /// diverges at the very event it does on the full recording.
    @Test(arguments: [UInt32(0), 16, 64])
    func replayMatchesAndStillFindsDivergences(snaplen: UInt32) throws {
        let (full, snap) = try Self.traces(snaplen)
        let (none, counters) = try Self.replay(snap)
        #expect(none == nil)
        #expect(counters == (try Self.replay(full)).1 && counters[0].rxWriteFailed == 1 && counters[0].txBytes == 8_080)
        for fault in ["drop-rx:2", "skip-used:3", "count-twice:rx_bytes:4"] {
            let expected = try #require(try Self.replay(full, faults: [fault]).0)
            #expect(try Self.replay(snap, faults: [fault]).0 == expected, "\(fault)")
        }
    }

    /// Every frame the full trace exports, the snaplen trace exports too:
    /// its first N bytes, and its whole length.
    @Test(arguments: [UInt32(0), 64])
    func framesKeepTheirLengthAndTheirFirstBytes(snaplen: UInt32) throws {
        let (full, snap) = try Self.traces(snaplen)
        func frames(_ reader: TraceReader) throws -> [(PacketDirection, [UInt8], Int)] {
            var x = PacketExtractor(nics: 1, queuePairs: 1)
            var out: [(PacketDirection, [UInt8], Int)] = []
            for i in reader.chunks.indices {
                var d = try reader.decoder(i)
                while let e = try d.next() { x.consume(e, decoder: d) { out.append(($0.direction, Array($0.bytes), $0.length)) } }
            }
            return out
        }
        let whole = try frames(full), cut = try frames(snap)
        #expect(whole.count == 20 && cut.count == 20)
        #expect(whole.map(\.2) == whole.map(\.1.count), "a full trace's frames are whole")
        #expect(cut.map(\.0) == whole.map(\.0) && cut.map(\.2) == whole.map(\.2))
        #expect(cut.map(\.1) == whole.map { Array($0.1.prefix(Int(snaplen))) })
        #expect(whole.map(\.2).filter { $0 > 64 }.count == 16 && whole.allSatisfy { $0.1.allSatisfy { $0 == 0xa7 } })
    }

    /// `why` of every counter the workload moves, at its first and last move:
    /// the same transition, access, chains, path, counters and memory
    /// accesses (event, address, length, outcome, role); only the bytes of
    /// frame payload past N are missing, the bytes shown a prefix of the full ones.
    @Test(arguments: [UInt32(0), 64])
    func whyGivesTheFullTracesAnswers(snaplen: UInt32) throws {
        let (full, snap) = try Self.traces(snaplen)
        let counters: [NetCounter] = [.txPackets, .txBytes, .rxPackets, .rxBytes, .txDroppedNoRxBuffer, .rxWriteFailed]
        var payloadAccesses = 0
        for counter in counters {
            for selection in [CounterCause.Selection.nth(1), .last] {
                let a = try #require(try CounterCause.explain(full, counter: counter, nic: nil, selection: selection))
                var b = try #require(try CounterCause.explain(snap, counter: counter, nic: nil, selection: selection))
                #expect(b.memory.count == a.memory.count)
                for (i, (m, n)) in zip(a.memory, b.memory).enumerated() {
                    #expect(m.bytes.hasPrefix(n.bytes) && m.notStored == nil)
                    if let missing = n.notStored {
                        #expect(n.role.contains(" frame (descriptor ") && missing > 0, "\(n.role): only frame payload misses bytes")
                        payloadAccesses += 1
                    }
                    b.memory[i].bytes = m.bytes
                    b.memory[i].shownBytes = m.shownBytes
                    b.memory[i].notStored = nil
                }
                #expect(b == a, "\(counter) \(selection)")
            }
        }
        #expect(payloadAccesses > 0)
    }

    /// `bisect` finds the same first event for every predicate; `diff`
    /// finds the two recordings' counter timelines identical.
    @Test(arguments: [UInt32(0), 64])
    func bisectAndDiffGiveTheFullTracesAnswers(snaplen: UInt32) throws {
        let (full, snap) = try Self.traces(snaplen)
        for text in ["rx_write_failed > 0", "tx_dropped_no_rx_buffer > 0", "rx_bytes > 6000", "tx_packets >= 5", "rx_packets == 9"] {
            let predicate = try CounterPredicate.parse(text)
            let a = try CounterBisector(reader: full, nic: nil).run(predicate)
            let b = try CounterBisector(reader: snap, nic: nil).run(predicate)
            #expect(a.event != nil && b.event == a.event && b.counters == a.counters, "\(text)")
        }
        let diff = try CounterDiff.compare(full, snap, scope: .aggregate)
        #expect(diff.split == nil && diff.onlyA == 0 && diff.onlyB == 0 && diff.matched == 42)
    }

    /// The snaplen trace as a scenario (`vtrace scenario from-trace`, what
    /// `reduce` starts from): it writes only the bytes stored, and recording
    /// it gives the trace's counter timelines again.
    @Test(arguments: [UInt32(0), 64])
    func fromTraceGivesTheSameCounters(snaplen: UInt32) throws {
        let (_, snap) = try Self.traces(snaplen)
        let made = try ScenarioFromTrace.make(snap, name: "snaplen")
        #expect(!made.text.contains(String(repeating: "a7", count: Int(snaplen) + 1)), "no more than N payload bytes in a row")
        #expect(made.text.split(separator: "\n")[1]
                == "# recorded with --snaplen \(snaplen): frame payload past each frame's first \(snaplen) bytes is not in the trace, nor in these memory lines")
        let (again, result, _) = try record(made.text, name: "snap-again-\(snaplen)")
        #expect(result.passed, "\(result.failures)")
        let diff = try CounterDiff.compare(snap, try TraceReader(path: again), scope: .aggregate)
        #expect(diff.split == nil && diff.matched == 42)
    }
}
