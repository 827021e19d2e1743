// Fuzzes the recorder against the replayer: any scenario the parser accepts
// is recorded and the trace replayed, and the replay must match every event
// and end on the counters the run ended on. A record the encoder writes
// differently from what the decoder reads back (a repeat, an address code,
// a recalled or truncated payload, a chain at the head) is a divergence or a
// decode error here. The input's last byte picks the format (1.3 to 1.7), a
// snaplen and the chunk size, so every encoder path and chunk cut is reached.
// Each scenario is recorded twice, encoded as it runs and encoded on the
// writer's thread from a raw chunk (`defersEncoding`): the two traces must
// hold the same events (their chunks may be cut elsewhere).

import FuzzSupport
import Glibc
import Scenarios
import TraceAnalysis
import TraceFormat
import TraceRecording

let path = "/tmp/fuzz-recording-\(getpid()).vtrace"
let deferredPath = "/tmp/fuzz-recording-\(getpid())-deferred.vtrace"

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
    // Bits 0-1: 1.7, 1.4, 1.5 or 1.6; 1.3 where bits 6-7 are set and bit 5 (a
    // snaplen, which reads them) is not.
    options.formatMinor = knobs & 0xE0 == 0xC0 ? 3 : [7, 4, 5, 6][Int(knobs & 3)]
    options.flushEvents = 8 + Int(knobs >> 2 & 7) * 40
    options.snaplen = knobs & 0x20 != 0 ? UInt32(knobs >> 6) * 20 : nil
    defer { unlink(path); unlink(deferredPath) }
    let result: ScenarioResult, deferredResult: ScenarioResult
    do {
        (result, _) = try ScenarioRecording.record(scenario, to: path, options: options, clock: { 0 })
        var deferring = options
        deferring.defersEncoding = true
        (deferredResult, _) = try ScenarioRecording.record(scenario, to: deferredPath, options: deferring, clock: { 0 })
    } catch {
        return 0   // a scenario the runner refuses (its setup), not a recording
    }
    if deferredResult.counters != result.counters {
        report("the same scenario ended on other counters when recorded through a raw chunk")
        preconditionFailure("a deferred recording's run differs")
    }
    do {
        let inline = try TraceReader(path: path), deferred = try TraceReader(path: deferredPath)
        guard inline.eventCount == deferred.eventCount else {
            report("\(inline.eventCount) events encoded inline, \(deferred.eventCount) through a raw chunk")
            preconditionFailure("a deferred recording holds other events")
        }
        let x = try eventLines(inline), y = try eventLines(deferred)
        if let i = x.indices.first(where: { x[$0] != y[$0] }) {
            report("event \(i) differs when encoded through a raw chunk: \(x[i]) against \(y[i])")
            preconditionFailure("a deferred recording holds other events")
        }
    } catch {
        report("a deferred recording does not read: \(error)")
        preconditionFailure("a deferred recording does not read")
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

/// Every event of `reader` as `vtrace dump` prints it, all its bytes shown
/// (a chunk's byte offsets differ between two recordings cut differently).
func eventLines(_ reader: TraceReader) throws -> [String] {
    var lines: [String] = []
    for i in reader.chunks.indices {
        var d = try reader.decoder(i)
        while let e = try d.next() { lines.append(EventFormatting.text(e, d, start: 0, byteLimit: .max)) }
    }
    return lines
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
