import Foundation
import Testing
import Scenarios
import TraceAnalysis
@testable import TraceFormat
import TraceRecording
import TraceTestSupport
import VirtioCore

/// A flight recorder's window (`RecordingOptions.keep`) and triggers, on a
/// deterministic recording of a long traffic scenario.
@Suite("Flight recorder and triggers")
struct FlightRecorderTests {
    /// `rounds` rounds of two-pair traffic (about 330 events a round).
    static func traffic(_ rounds: Int) -> String {
        var text = "device queue_pairs=2\ndriver init qsize=64\nctrl mq pairs=2\n"
        for i in 0..<rounds {
            text += "rx post count=8\ntx send count=8 len=\(60 + (i * 37) % 1240)\n"
            text += "rx post pair=1 count=7\ntx send pair=1 count=8 len=\(60 + (i * 53 + 17) % 1240)\n"
        }
        return text
    }

    /// Records `text` deterministically with `configure` applied to the options.
    static func record(_ text: String, name: String, configure: (inout RecordingOptions) -> Void = { _ in })
        throws -> (path: String, result: ScenarioResult, summary: RecordingSummary) {
        let scenario = try ScenarioParser.parse(file: name, text: text)
        var options = deterministicRecordingOptions(flushEvents: 500)
        configure(&options)
        let path = temporaryPath(name + ".vtrace")
        try? FileManager.default.removeItem(atPath: path)
        let clock = StepClock()
        let (result, summary) = try ScenarioRecording.record(scenario, to: path, options: options, clock: { clock.read() })
        return (path, result, summary)
    }

    /// Every event of `reader` from `from` on, as dump text with its number.
    static func dump(_ reader: TraceReader, from: UInt64 = 0) throws -> [String] {
        try reader.recordedText(from..<reader.eventCount, limit: Int.max).map { "#\($0.number) \($0.text)" }
    }

    @Test func aWindowKeepsTheNewestEventsFromACheckpointAndReplays() throws {
        let text = Self.traffic(300)
        let full = try Self.record(text, name: "window-full")
        let keep: UInt64 = 96 << 10
        let windowed = try Self.record(text, name: "window-kept") { $0.keep = TraceWindow(bytes: keep) }
        let all = try TraceReader(path: full.path), w = try TraceReader(path: windowed.path)
        // The same recording, its oldest chunks dropped.
        #expect(windowed.summary.droppedChunks > 0 && windowed.summary.firstEvent > 0)
        #expect(w.firstEvent == windowed.summary.firstEvent && w.header.firstEvent == w.firstEvent && w.eventCount == all.eventCount)
        #expect(w.header.window == "the newest 98304 bytes" && w.completeness == .complete)
        #expect(w.chunks[0].hasCheckpoint)
        // Between half the limit and the limit, plus the chunk that made it roll.
        let largest = UInt64(all.chunks.map(\.compressedSize).max() ?? 0) + 52
        #expect(UInt64(w.source.size) <= keep + largest + UInt64(w.chunks.count * 44 + 32), "\(w.source.size)")
        #expect(w.chunks.map(\.compressedSize).reduce(0, +) >= UInt32(keep / 2 - largest))
        // Every kept event is the full recording's event of that number, byte for byte in dump text.
        let kept = try Self.dump(w), same = try Self.dump(all, from: w.firstEvent)
        let differ = zip(kept, same).first { $0 != $1 }
        #expect(kept.count == same.count && differ == nil, "\(kept.count) vs \(same.count): \(String(describing: differ))")
        #expect(w.chunks.last.map { [$0.firstEvent, UInt64($0.eventCount), UInt64($0.crc)] } == all.chunks.last.map { [$0.firstEvent, UInt64($0.eventCount), UInt64($0.crc)] })
        // It replays from its first checkpoint, and the invariant checker passes it.
        let replay = try TraceReplayer(reader: w).replayAll(keepGoing: false)
        let replayedAll = try TraceReplayer(reader: all).replayAll(keepGoing: false)
        #expect(replay.divergences.isEmpty && replay.counters == replayedAll.counters)
        #expect(try InvariantChecker.check(w).violation == nil)
    }

    /// `--keep-seconds`: between S and 2S of recording time stay (a step
    /// clock: every reading is 1 µs later).
    @Test func aWindowInTime() throws {
        let seconds: UInt64 = 300_000  // 0.3 ms of step-clock time
        let r = try Self.record(Self.traffic(200), name: "window-time") { $0.keep = TraceWindow(nanoseconds: seconds) }
        let w = try TraceReader(path: r.path)
        let newest = try #require(w.chunks.last).firstTime
        #expect(r.summary.droppedChunks > 0 && w.chunks[0].hasCheckpoint)
        #expect(newest - w.chunks[0].firstTime <= 2 * seconds, "\(newest - w.chunks[0].firstTime)")
        #expect(newest - w.chunks[0].firstTime >= seconds / 2, "\(newest - w.chunks[0].firstTime)")
        #expect(try TraceReplayer(reader: w).replayAll(keepGoing: false).divergences.isEmpty)
    }

    /// The rule that picks the new first chunk: under half the size, at a
    /// checkpoint (going back to one, never to chunk 0), the newest kept.
    @Test func theRollPicksACheckpointChunk() {
        func entry(_ i: Int, checkpoint: Bool = true, size: UInt32 = 100, time: UInt64 = 0) -> ChunkEntry {
            ChunkEntry(offset: 0, compressedSize: size, uncompressedSize: size, firstEvent: UInt64(i * 10), eventCount: 10, firstTime: time,
                       flags: checkpoint ? 1 : 2, crc: 0)
        }
        let window = TraceWindow(bytes: 1000)
        let six = (0..<6).map { entry($0) }
        // 6 × 152 bytes + a header: not over 1000 yet.
        #expect(window.firstKept(six, fileSize: 6 * 152 + 60) == nil)
        let eight = (0..<8).map { entry($0) }
        // Over: dropped until at most 500 bytes remain: 1276 − 6 × 152 = 364, the first kept is 6.
        #expect(window.firstKept(eight, fileSize: 8 * 152 + 60) == 6)
        // Chunk 6 has no checkpoint: back to 5.
        var gap = eight
        gap[6] = entry(6, checkpoint: false)
        #expect(window.firstKept(gap, fileSize: 8 * 152 + 60) == 5)
        // Only chunk 0 has a checkpoint: nothing can be dropped.
        let none = [entry(0)] + (1..<8).map { entry($0, checkpoint: false) }
        #expect(window.firstKept(none, fileSize: 8 * 152 + 60) == nil)
        // Time: over 2 × 100 ns old rolls, keeping what is at most 100 old.
        let timed = (0..<5).map { entry($0, time: UInt64($0) * 60) }
        #expect(TraceWindow(nanoseconds: 100).firstKept(timed, fileSize: 0) == 3)
        #expect(TraceWindow(nanoseconds: 200).firstKept(timed, fileSize: 0) == nil)
    }

    /// The first counter event of `name` with `value`.
    static func event(_ reader: TraceReader, _ name: String, _ value: UInt64) throws -> UInt64? {
        try Self.dump(reader).first { $0.hasSuffix("counter \(name) = \(value)") }.flatMap { UInt64($0.dropFirst().prefix { $0 != " " }) }
    }

    @Test func aTriggerThatStopsEndsTheRecordingAndTheRun() throws {
        let text = Self.traffic(40)
        let full = try Self.record(text, name: "trigger-none")
        let r = try Self.record(text, name: "trigger-stop") {
            $0.trigger = RecordingTrigger(text: "tx_packets >= 100", after: 50, action: .stop) { $0.reduce(0) { $0 + $1.txPackets } >= 100 }
        }
        let reader = try TraceReader(path: r.path)
        let fired = try #require(try Self.event(reader, "tx_packets", 100))
        #expect(r.summary.triggerFiredAt == fired && reader.header.trigger == "tx_packets >= 100")
        // 50 more events, then the end of that access; the scenario stopped there.
        let last = reader.eventCount - 1
        #expect(last >= fired + 50 && reader.completeness == .complete)
        #expect(try Self.dump(reader) == Array(try Self.dump(try TraceReader(path: full.path)).prefix(Int(last + 1))))
        #expect(r.result.operationsRun < full.result.operationsRun && r.result.counters[0].txPackets < full.result.counters[0].txPackets)
        #expect(try TraceReplayer(reader: reader).replayAll(keepGoing: false).divergences.isEmpty)
    }

    @Test func aTriggerThatContinuesEndsOnlyTheRecording() throws {
        let text = Self.traffic(40)
        let full = try Self.record(text, name: "trigger-none-2")
        let r = try Self.record(text, name: "trigger-continue") {
            $0.trigger = RecordingTrigger(text: "rx_packets > 60", after: 0, action: .continue) { $0[0].rxPackets > 60 }
        }
        let reader = try TraceReader(path: r.path)
        let fired = try #require(try Self.event(reader, "rx_packets", 61))
        #expect(r.summary.triggerFiredAt == fired && reader.eventCount - 1 >= fired && reader.eventCount < full.summary.events)
        // The run went on to the end, unrecorded.
        #expect(r.result.counters == full.result.counters && r.result.operationsRun == full.result.operationsRun)
        #expect(try TraceReplayer(reader: reader).replayAll(keepGoing: false).divergences.isEmpty)
    }

    @Test func aTriggerThatMarksWritesAMarkerAfterTheAccessAndRecordsOn() throws {
        let text = Self.traffic(20)
        let full = try Self.record(text, name: "trigger-none-3")
        let r = try Self.record(text, name: "trigger-mark") {
            $0.trigger = RecordingTrigger(text: "tx_bytes > 5000", action: .mark) { $0[0].txBytes > 5000 }
        }
        let reader = try TraceReader(path: r.path)
        let lines = try Self.dump(reader)
        let markers = lines.filter { $0.contains(" marker: ") }
        let fired = try #require(r.summary.triggerFiredAt)
        #expect(markers.count == 1 && markers[0].hasSuffix("nic0 marker: trigger fired at event \(fired)"))
        #expect(lines[Int(fired)].contains("counter tx_bytes = "))
        // The marker follows the last event of that access; the next event begins an access.
        let at = try #require(UInt64(markers[0].dropFirst().prefix { $0 != " " }))
        #expect(at > fired && lines[Int(at) + 1].contains(" mmio "))
        // Everything else is the unmarked recording's, one number later past the marker.
        let plain = try Self.dump(try TraceReader(path: full.path))
        #expect(lines.count == plain.count + 1 && r.result.counters == full.result.counters)
        #expect(lines[..<Int(at)].elementsEqual(plain[..<Int(at)]))
        #expect(try TraceReplayer(reader: reader).replayAll(keepGoing: false).divergences.isEmpty)
    }
}
