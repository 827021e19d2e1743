//! What the recording and analysis tests share: scratch paths, a
//! deterministic clock, scenario recordings.

import Foundation
import Scenarios
import TraceFormat
import TraceRecording

public let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

public func temporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vtrace-tests-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

/// A deterministic clock: 1 µs per reading.
public final class StepClock: @unchecked Sendable {
    public var now: UInt64 = 1_000_000
    public init() {}
    public func read() -> UInt64 { now += 1000; return now }
}

/// Event `number` of the trace, decoded from its chunk.
public func recordedEvent(_ number: UInt64, in reader: TraceReader) throws -> TraceEvent? {
    guard let i = reader.chunkIndex(containing: number) else { return nil }
    var d = try reader.decoder(i)
    while let e = try d.next() {
        if e.number == number { return e }
    }
    return nil
}

/// Records a scenario text into a trace (with `--snaplen`'s `snaplen`) and returns the path.
public func record(_ text: String, name: String, flushEvents: Int = 65_536, snaplen: UInt32? = nil) throws -> (String, ScenarioResult, RecordingSummary) {
    let scenario = try ScenarioParser.parse(file: name, text: text)
    var options = RecordingOptions()
    options.flushEvents = flushEvents
    options.flushMilliseconds = 100_000
    options.snaplen = snaplen
    let path = temporaryPath(name + ".vtrace")
    let clock = StepClock()
    let (result, summary) = try ScenarioRecording.record(scenario, to: path, options: options, clock: { clock.read() })
    return (path, result, summary)
}

/// `traces/workloads/snaplen-frames.scenario`: frames of 0xa7 bytes over one
/// descriptor and several, a short RX buffer, no RX buffer, an RX write fault.
public func snaplenFramesScenario() throws -> String {
    try String(contentsOf: repositoryRoot.appendingPathComponent("traces/workloads/snaplen-frames.scenario"), encoding: .utf8)
}

public let trafficScenario = "device queue_pairs=2\ndriver init qsize=16\nctrl mq pairs=2\n"
    + String(repeating: "rx post count=2\ntx send count=2 len=700\n", count: 30)
    + "rx post pair=1 count=3\ntx send pair=1 count=3 len=1500 descs=3\n"
    + "avail idx queue=0 value=999\ntx send count=2\nreset\ndriver init\nrx post count=2\ntx send count=2 len=64\n"
    + "unbind memory\nkick queue=1\nbind memory\n"

/// Options under which a recording is a pure function of what it records:
/// no flush thread (it would read the clock), zstd level 1 with its own match
/// finder (no choice by CPU time) and a queue deep enough that the writer
/// never picks a faster level. With a `StepClock`, the same device actions
/// give the same file (the reference and format-edges tests).
public func deterministicRecordingOptions(flushEvents: Int) -> RecordingOptions {
    var options = RecordingOptions()
    options.flushEvents = flushEvents
    options.flushMilliseconds = 0
    options.level = 1
    options.choosesMatchFinder = false
    options.contentChecksums = true   // as the reference recordings were made
    options.queueDepth = 1000
    return options
}

/// Where two recordings differ, ignoring the header's minor version and the
/// header checksum that covers it (a recorder of a later minor version
/// writes the same events); nil when they are the same.
public func recordingDifference(_ made: Data, _ reference: Data) -> String? {
    guard made.count == reference.count else { return "\(made.count) bytes, the reference \(reference.count)" }
    guard made.count >= 20 else { return made == reference ? nil : "not a trace" }
    let headerEnd = 8 + (Int(reference[reference.startIndex + 4]) | Int(reference[reference.startIndex + 5]) << 8)
    let version = 18..<20, crc = (headerEnd - 4)..<headerEnd
    for i in 0..<made.count where !version.contains(i) && !crc.contains(i) {
        if made[made.startIndex + i] != reference[reference.startIndex + i] { return "first difference at byte \(i)" }
    }
    return nil
}
