import Foundation
import Scenarios
import Testing
import TraceFormat
import TraceAnalysis
import TraceMapping
import TraceRecording
import TraceTestSupport
import VirtioCore

/// Each fault, recorded, diverges at exactly the expected event on clean
/// replay, and a clean recording diverges under the fault at the same event.
/// The expected event is found independently: the first event at which the
/// clean and the faulty recordings of the same scenario differ.
@Suite("Fault injection")
struct FaultTests {
    func recordTrace(_ scenarioFile: String, faults: [String], name: String) throws -> String {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("traces/scenarios/\(scenarioFile)"), encoding: .utf8)
        let scenario = try ScenarioParser.parse(file: scenarioFile, text: text)
        var options = RecordingOptions()
        options.flushEvents = 30
        options.flushMilliseconds = 100_000
        let path = temporaryPath(name + ".vtrace")
        let clock = StepClock()
        _ = try ScenarioRecording.record(scenario, to: path, options: options, faults: try DeviceFaults.parse(faults).get(), clock: { clock.read() })
        return path
    }

    /// Every event of a trace as text with its full payload.
    func events(_ path: String) throws -> [String] {
        let reader = try TraceReader(path: path)
        var out: [String] = []
        for i in reader.chunks.indices {
            var d = try reader.decoder(i)
            while let e = try d.next() { out.append("nic\(e.nic) " + EventFormatting.summary(e, d, byteLimit: 1 << 20)) }
        }
        return out
    }

    /// Replays `path` from the start with `faults`; returns the first diverging event, if any.
    func replay(_ path: String, faults: [String]) throws -> UInt64? {
        let reader = try TraceReader(path: path)
        let replayer = TraceReplayer(reader: reader, faults: try DeviceFaults.parse(faults).get())
        var i = 0
        var continuing = false
        while i < reader.chunks.count {
            let r = try replayer.replaySegment(from: i, continuing: continuing)
            if let d = r.divergence { return d.event }
            if r.checkpointMismatch != nil { return reader.chunks[r.endChunk].firstEvent }
            continuing = true
            i = r.endChunk
        }
        return nil
    }

    @Test(arguments: [
        ("loopback-basic.scenario", "drop-rx:2"),
        ("loopback-basic.scenario", "skip-used:3"),
        ("loopback-basic.scenario", "count-twice:tx_packets:2"),
        ("rx-poison.scenario", "no-poison"),
        ("ctrl-ok.scenario", "count-twice:ctrl_mq_set:1"),
    ])
    func faultDivergesExactlyWhereTheRecordingsPart(_ scenario: String, _ fault: String) throws {
        let clean = try recordTrace(scenario, faults: [], name: "clean-\(scenario)-\(fault)")
        let faulty = try recordTrace(scenario, faults: [fault], name: "faulty-\(scenario)-\(fault)")
        let a = try events(clean), b = try events(faulty)
        let split = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
        #expect(split < max(a.count, b.count), "the fault changed nothing")
        #expect(try TraceReader(path: faulty).header.faults == [fault])
        // Clean replay of the faulty recording, and faulty replay of the clean one.
        #expect(try replay(faulty, faults: []) == UInt64(split), "\(fault): recordings part at \(split): \(a[split]) vs \(b[split])")
        #expect(try replay(clean, faults: [fault]) == UInt64(split))
        // Each replays cleanly with the faults it was recorded with.
        #expect(try replay(clean, faults: []) == nil)
        #expect(try replay(faulty, faults: [fault]) == nil)
    }

    @Test func faultSpecsParseAndRefuse() {
        let f = try! DeviceFaults.parse(["drop-rx:3", "skip-used:1", "no-poison", "count-twice:rx_bytes:7"]).get()
        #expect(f.dropRx == 3 && f.skipUsed == 1 && f.noPoison && f.countTwice == DeviceFaults.CountTwice(counter: .rxBytes, bump: 7))
        #expect(f.specs == ["drop-rx:3", "skip-used:1", "no-poison", "count-twice:rx_bytes:7"])
        for bad in ["drop-rx", "drop-rx:0", "drop-rx:x", "skip-used:-1", "no-poison:1", "count-twice:bogus:1", "count-twice:tx_packets", "frob"] {
            guard case .failure = DeviceFaults.parse([bad]) else { Issue.record("'\(bad)' accepted"); continue }
        }
        #expect(DeviceFaults().isEmpty)
    }
}

@Suite("Invariant check")
struct InvariantCheckTests {
    func check(_ path: String) throws -> InvariantViolation? {
        let reader = try TraceReader(path: path)
        var checker: InvariantChecker?
        for i in reader.chunks.indices {
            var d = try reader.decoder(i)
            if checker == nil { checker = InvariantChecker(header: reader.header, start: d.startCounters) }
            while let e = try d.next() {
                do throws(InvariantViolation) { try checker!.check(e) } catch { return error }
            }
        }
        do throws(InvariantViolation) { try checker?.finish() } catch { return error }
        return nil
    }

    @Test func everyLibraryScenarioKeepsEveryIdentity() throws {
        let dir = repositoryRoot.appendingPathComponent("traces/scenarios")
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where name.hasSuffix(".scenario") {
            let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
            let (path, _, _) = try record(text, name: "inv-" + name, flushEvents: 13)
            #expect(try check(path) == nil, "\(name)")
        }
    }

    @Test(arguments: [
        ("count-twice:tx_packets:2", "identity 3"),
        ("skip-used:2", "identity 2"),  // the 2nd publish is the first TX one
        ("drop-rx:2", "identity 4"),
    ])
    func faultsBreakTheIdentityTheyShould(_ fault: String, _ rule: String) throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("traces/scenarios/loopback-basic.scenario"), encoding: .utf8)
        let scenario = try ScenarioParser.parse(file: "f", text: text)
        let path = temporaryPath("inv-fault-\(fault).vtrace")
        _ = try ScenarioRecording.record(scenario, to: path, faults: try DeviceFaults.parse([fault]).get())
        let v = try check(path)
        #expect(v?.rule == rule, "\(fault): \(String(describing: v))")
    }
}
