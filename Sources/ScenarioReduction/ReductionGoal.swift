//! What a reduced scenario must still show, checked by running it in process.

import Foundation
import GuestDriver
import Scenarios
import TraceAnalysis
import TraceFormat
import TraceRecording
import VirtioCore

/// The property `vtrace reduce` keeps while it removes operations.
public enum ReductionGoal: Sendable {
    /// The counter predicate holds at the end (on `nic`'s counters, or the aggregate).
    case until(CounterPredicate, nic: Int?)
    /// The device as recorded (today's core with the recording's faults) and
    /// today's core end with different counters.
    case divergence(recorded: DeviceFaults)
    /// One of `vtrace check`'s counter identities breaks.
    case check
}

/// Runs candidate scenarios against fresh device cores (no subprocess).
struct PropertyCheck {
    let goal: ReductionGoal
    /// The faults today's core runs with (`--fault`).
    let faults: DeviceFaults
    let scratch: String

    /// The final counters of each NIC when `scenario` runs with `faults`
    /// (nil: the run stopped with an error, such as a memory fault).
    static func counters(_ scenario: Scenario, faults: DeviceFaults) -> [NetCounters]? {
        guard var runner = try? ScenarioRunner(scenario, faults: faults, makeObserver: { _ in NoObserver() }) else { return nil }
        let result = runner.run()
        return result.error == nil ? result.counters : nil
    }

    func holds(_ scenario: Scenario) -> Bool {
        switch goal {
        case .until(let predicate, let nic):
            guard let c = Self.counters(scenario, faults: faults) else { return false }
            return predicate.holds(Self.scope(c, nic))
        case .divergence(let recorded):
            guard let r = Self.counters(scenario, faults: recorded), let t = Self.counters(scenario, faults: faults) else { return false }
            return r != t
        case .check:
            return violation(scenario) != nil
        }
    }

    static func scope(_ c: [NetCounters], _ nic: Int?) -> NetCounters {
        if let nic { return nic < c.count ? c[nic] : NetCounters() }
        return NetCounters.aggregate(c) ?? NetCounters()
    }

    /// The first identity `scenario`'s recording breaks, if any.
    func violation(_ scenario: Scenario) -> InvariantViolation? {
        var options = RecordingOptions()
        options.flushMilliseconds = 0
        options.level = 1
        guard (try? ScenarioRecording.record(scenario, to: scratch, options: options, faults: faults)) != nil,
              let reader = try? TraceReader(path: scratch), let result = try? InvariantChecker.check(reader) else { return nil }
        return result.violation
    }
}
