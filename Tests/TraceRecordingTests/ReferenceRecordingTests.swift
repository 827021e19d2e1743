import Foundation
import Scenarios
import Testing
import TraceFormat
import TraceRecording
import TraceTestSupport

/// Recording must not change a byte: `traces/reference/` holds scenarios
/// recorded with a deterministic clock by the recorder as it was before the
/// event vocabulary was unified (commit 3c00a71). The same recording made
/// now must be the same file.
@Suite("Reference recordings")
struct ReferenceRecordingTests {
    static let names = ["loopback-basic", "long-drain", "nics-aggregate", "multiqueue-routing", "rx-poison", "tx-malformed", "ctrl-ok",
                        "features-ok-rejected", "tx-memory-unbound", "transport-registers", "rx-write-fault", "ctrl-poison"]

    /// What the references were recorded with: 25-event chunks, deterministically.
    static func recordDeterministically(_ name: String, to path: String) throws {
        let file = repositoryRoot.appendingPathComponent("traces/scenarios/\(name).scenario")
        let scenario = try ScenarioParser.parse(file: name + ".scenario", text: String(contentsOf: file, encoding: .utf8))
        let options = deterministicRecordingOptions(flushEvents: 25)
        let clock = StepClock()
        _ = try ScenarioRecording.record(scenario, to: path, options: options, clock: { clock.read() })
    }

    @Test(arguments: names)
    func aRecordingIsByteIdenticalToItsReference(_ name: String) throws {
        let path = temporaryPath("reference-\(name).vtrace")
        try Self.recordDeterministically(name, to: path)
        let made = try Data(contentsOf: URL(fileURLWithPath: path))
        let reference = try Data(contentsOf: repositoryRoot.appendingPathComponent("traces/reference/\(name).vtrace"))
        let firstDifference = zip(made, reference).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(made.count, reference.count)
        #expect(made == reference, "\(name): \(made.count) bytes, the reference \(reference.count); first difference at byte \(firstDifference)")
    }
}
