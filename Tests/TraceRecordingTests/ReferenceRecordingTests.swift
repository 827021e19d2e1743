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
    static func recordDeterministically(_ name: String, to path: String, minor: UInt16 = 3) throws {
        let file = repositoryRoot.appendingPathComponent("traces/scenarios/\(name).scenario")
        let scenario = try ScenarioParser.parse(file: name + ".scenario", text: String(contentsOf: file, encoding: .utf8))
        var options = deterministicRecordingOptions(flushEvents: 25)
        options.formatMinor = minor
        let clock = StepClock()
        _ = try ScenarioRecording.record(scenario, to: path, options: options, clock: { clock.read() })
    }

    @Test(arguments: names)
    func aRecordingIsByteIdenticalToItsReference(_ name: String) throws {
        let path = temporaryPath("reference-\(name).vtrace")
        try Self.recordDeterministically(name, to: path)
        let made = try Data(contentsOf: URL(fileURLWithPath: path))
        let reference = try Data(contentsOf: repositoryRoot.appendingPathComponent("traces/reference/\(name).vtrace"))
        // The same bytes but for the header's minor version (1.2 then, 1.3 now:
        // recorded without 1.4's repeat records) and its checksum.
        let difference = recordingDifference(made, reference)
        #expect(difference == nil, "\(name): \(difference ?? "")")
        #expect(made[18] == 3 && reference[18] == 2)
    }

    /// With repeat records (format 1.4), with address codes and predicted
    /// records as well (1.5), with far address codes and recalled reads
    /// (1.6), and with ring cursors (1.7, the default), the same scenario is
    /// the same events, every field and every byte, in a smaller file.
    @Test(arguments: names, [UInt16(4), 5, 6, 7])
    func repeatRecordsDecodeToTheSameEvents(_ name: String, minor: UInt16) throws {
        let plain = temporaryPath("reference-plain-\(minor)-\(name).vtrace"), repeating = temporaryPath("reference-repeats-\(minor)-\(name).vtrace")
        try Self.recordDeterministically(name, to: plain)
        try Self.recordDeterministically(name, to: repeating, minor: minor)
        let a = try TraceReader(path: plain), b = try TraceReader(path: repeating)
        #expect(b.header.minorVersion == minor && a.header.minorVersion == 3)
        #expect(a.chunks.map(\.eventCount) == b.chunks.map(\.eventCount))
        for i in a.chunks.indices {
            var da = try a.decoder(i), db = try b.decoder(i)
            while let ea = try da.next() {
                let eb = try #require(try db.next())
                #expect(ea.number == eb.number && ea.time == eb.time && ea.nic == eb.nic && ea.vcpu == eb.vcpu, "\(name) event \(ea.number)")
                switch (ea.body, eb.body) {
                case (.memoryRead(let x, let n, let ok, let r), .memoryRead(let y, let m, let ok2, let q)),
                     (.memoryWrite(let x, let n, let ok, let r), .memoryWrite(let y, let m, let ok2, let q)):
                    #expect(x == y && n == m && ok == ok2 && da.bytes(r) == db.bytes(q), "\(name) event \(ea.number)")
                case (.chain, .chain):
                    #expect(ea.body == eb.body && da.descriptors == db.descriptors, "\(name) event \(ea.number)")
                default:
                    #expect(ea.body == eb.body, "\(name) event \(ea.number)")
                }
            }
            #expect(try db.next() == nil)
        }
        let sizes = (a.chunks.map { Int($0.uncompressedSize) }.reduce(0, +), b.chunks.map { Int($0.uncompressedSize) }.reduce(0, +))
        #expect(name == "long-drain" ? sizes.1 < sizes.0 : sizes.1 <= sizes.0, "\(name): \(sizes)")
    }
}
