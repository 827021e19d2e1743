import Foundation
import Testing
import VirtioCore
import Scenarios

/// The runner reports how far a long run has got, every
/// `progressInterval` operations, and the report changes nothing else.
@Suite("Scenario progress")
struct ScenarioProgressTests {
    @Test func aLongRunReportsEveryIntervalAndAShortOneNever() throws {
        let scenario = try ScenarioParser.parse(file: "long.scenario", text: "driver init\nrx post count=2\nrepeat 200000 kick queue=1\ntx send\n")
        var reported: [Int] = []
        var runner = try ScenarioRunner(scenario)
        #expect(runner.totalOperations == 200_003)
        #expect(ScenarioRunner<NoObserver>.progressInterval == 65_536)
        let result = runner.run { reported.append($0) }
        #expect(reported == [65_536, 131_072, 196_608])
        var quiet = try ScenarioRunner(scenario)
        let same = quiet.run()
        #expect(result.operationsRun == 200_003 && same.operationsRun == 200_003)
        #expect(result.counters == same.counters && result.counters[0].txPackets == 1 && result.counters[0].rxPackets == 1)
        var short = try ScenarioRunner(try ScenarioParser.parse(file: "short.scenario", text: "repeat 65535 kick queue=1\n"))
        _ = short.run { reported.append($0) }
        #expect(reported.count == 3)
    }

    @Test func aRecordingReportsTheSame() throws {
        let scenario = try ScenarioParser.parse(file: "long.scenario", text: "driver init\nrepeat 140000 kick queue=1\n")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("progress-\(getpid()).vtrace").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var reported: [Int] = []
        let (result, _) = try ScenarioRecording.record(scenario, to: path, progress: { reported.append($0) })
        #expect(result.operationsRun == 140_001 && reported == [65_536, 131_072])
    }
}
