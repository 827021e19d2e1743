// Fuzzes the recorder against the replayer: any scenario the parser accepts
// is recorded and the trace replayed, and the replay must match every event
// and end on the counters the run ended on. A record the encoder writes
// differently from what the decoder reads back (a repeat, an address code,
// a recalled or truncated payload, a chain at the head) is a divergence or a
// decode error here. The input's last byte picks the format (1.3 to 1.6), a
// snaplen and the chunk size, so every encoder path and chunk cut is reached.

import FuzzSupport
import Glibc
import Scenarios
import TraceAnalysis
import TraceFormat
import TraceRecording

let path = "/tmp/fuzz-recording-\(getpid()).vtrace"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard count > 1 else { return 0 }
    let knobs = start[count - 1]
    let bytes = Array(UnsafeBufferPointer(start: start, count: count - 1))
    guard var scenario = try? ScenarioParser.parse(file: "fuzz", bytes: bytes) else { return 0 }
    // Keep runs short: small memory, few repeats.
    if scenario.setup.regions.reduce(0, { $0 + $1.size }) > 64 << 20 { return 0 }
    scenario.steps = scenario.steps.map { var s = $0; s.repeatCount = min(s.repeatCount, 4); return s }
    var options = RecordingOptions()
    options.level = 1
    options.flushMilliseconds = 1 << 30
    options.choosesMatchFinder = false
    options.formatMinor = 3 + UInt16(knobs & 3)
    options.flushEvents = 8 + Int(knobs >> 2 & 7) * 40
    options.snaplen = knobs & 0x20 != 0 ? UInt32(knobs >> 6) * 20 : nil
    defer { unlink(path) }
    let result: ScenarioResult
    do {
        (result, _) = try ScenarioRecording.record(scenario, to: path, options: options)
    } catch {
        return 0   // a scenario the runner refuses (its setup), not a recording
    }
    do {
        let reader = try TraceReader(path: path)
        // A run that stopped before its first event (a setup line that
        // failed) writes no chunk: nothing to replay.
        if reader.chunks.isEmpty { return 0 }
        let outcome = try TraceReplayer(reader: reader).replayAll(keepGoing: false)
        if !outcome.matched || outcome.counters != result.counters {
            report("the replay diverged (\(outcome.divergences.first.map { "\($0)" } ?? "no divergence")) or ended on other counters")
            preconditionFailure("the replay of a recording differs from the run")
        }
    } catch {
        report("a recording does not replay: \(error)")
        preconditionFailure("a recording does not replay")
    }
    return 0
}

/// Says why on stderr before the precondition stops the run (its message is
/// not printed in a release build).
func report(_ text: String) {
    var line = "FuzzRecording: " + text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

@_cdecl("FuzzRecording_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { fuzz($0, $1) }
}
