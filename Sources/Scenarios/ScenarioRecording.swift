//! Runs a scenario with the recorder attached.

import GuestDriver
import TraceFormat
import TraceRecording
import VirtioCore

/// Records a scenario run into a trace.
public enum ScenarioRecording {
    /// Runs `scenario` with every NIC observed by one recorder writing `path`.
    /// `progress` is handed to ``ScenarioRunner/run(progress:)``.
    /// - Returns: the run's result (expectations are still checked) and what was written.
    public static func record(
        _ scenario: Scenario, to path: String, options: RecordingOptions = RecordingOptions(), faults: DeviceFaults = DeviceFaults(),
        provenance: (inout TraceHeader) -> Void = { _ in }, clock: (@Sendable () -> UInt64)? = nil, progress: ((Int) -> Void)? = nil
    ) throws -> (ScenarioResult, RecordingSummary) {
        let setup = scenario.setup
        let config = NetConfig(mac: setup.mac, queuePairs: setup.queuePairs)
        let recorder = try TraceRecorder(path: path, config: config, nics: setup.nics, regions: setup.regions, options: options,
                                         clock: clock, header: { header in
                                             header.scenario = scenario.file
                                             header.faults = faults.specs
                                             provenance(&header)
                                         })
        var runner: ScenarioRunner<RecordingObserver>
        do {
            runner = try ScenarioRunner(scenario, faults: faults) { recorder.observer(nic: $0) }
        } catch {
            recorder.abandon()
            throw error
        }
        let result = runner.run(progress: progress)
        let summary = try recorder.finish()
        return (result, summary)
    }
}
