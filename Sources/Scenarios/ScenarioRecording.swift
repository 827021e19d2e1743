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
        let config = setup.netConfig
        let probe = VirtioNetDevice<GuestRAM, NoObserver>(config: config, memory: nil)
        var header = TraceHeader(config: config, nics: setup.nics, offeredFeatures: probe.offeredFeatures, regions: setup.regions)
        header.scenario = scenario.file
        header.faults = faults.specs
        provenance(&header)
        // NICs a `state` line starts elsewhere start there in the trace too.
        let starts = (0..<setup.nics).map { setup.states[$0] ?? StartState(state: probe.state, memoryBound: true) }
        let recorder = try TraceRecorder(path: path, header: header, initialStates: starts.map(\.state), memoryBound: starts.map(\.memoryBound),
                                         options: options, clock: clock)
        /// The run with `observer(nic)` recording each NIC.
        func run<O: DeviceObserver>(_ observer: (Int) -> O) throws -> ScenarioResult {
            var runner: ScenarioRunner<O>
            do {
                runner = try ScenarioRunner(scenario, faults: faults, makeObserver: observer)
            } catch {
                recorder.abandon()
                throw error
            }
            return runner.run(progress: progress, shouldStop: options.trigger?.action == .stop ? { recorder.stoppedByTrigger } : nil)
        }
        let result = options.defersEncoding ? try run { recorder.deferredObserver(nic: $0) } : try run { recorder.observer(nic: $0) }
        let summary = try recorder.finish()
        return (result, summary)
    }
}
