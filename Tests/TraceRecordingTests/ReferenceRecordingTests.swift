import Foundation
import Scenarios
import Testing
import TraceFormat
import TraceRecording
import TraceTestSupport

/// Recording must not change a byte: `traces/reference/` holds scenarios
/// recorded with a deterministic clock by the recorder as it was before the
/// event vocabulary was unified (commit 3c00a71). The same recording made
/// now must be the same file, but for the format's minor version in the
/// header (and the header's checksum over it).
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
        // The same bytes but for the header's minor version (1.2 then, 1.3 now) and its checksum.
        let difference = recordingDifference(made, reference)
        #expect(difference == nil, "\(name): \(difference ?? "")")
        #expect(made[18] == UInt8(TraceVersion.minor) && reference[18] == 2)
    }
}
