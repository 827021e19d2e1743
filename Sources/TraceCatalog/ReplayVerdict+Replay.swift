//! The `--replay` columns: a whole replay against this build's device core.

import TraceAnalysis
import TraceFormat
import TraceMapping
import VirtioCore

extension ReplayVerdict {
    /// Replays `reader`'s trace with the faults its header lists (a trace
    /// recorded with an injected bug matches when the core still behaves the
    /// same), stopping at the first divergence.
    static func of(_ reader: TraceReader, replayedBy: String) -> ReplayVerdict {
        let specs = reader.header.faults
        var verdict = ReplayVerdict(status: .match, faults: specs.joined(separator: " "), replayedBy: replayedBy)
        let faults: DeviceFaults
        switch DeviceFaults.parse(specs) {
        case .success(let f): faults = f
        case .failure(let e):
            (verdict.status, verdict.actual) = (.error, "the trace's recorded faults: \(e)")
            return verdict
        }
        let outcome: ReplayOutcome
        do throws(TraceError) {
            outcome = try TraceReplayer(reader: reader, faults: faults).replayAll(keepGoing: false)
        } catch {
            (verdict.status, verdict.actual) = (.error, error.description)
            return verdict
        }
        guard let d = outcome.divergences.first else { return verdict }
        verdict.status = .diverged
        (verdict.event, verdict.nic, verdict.expected, verdict.actual) = (d.event, d.nic, d.expected, d.actual)
        verdict.counter = recordedCounter(at: d.event, in: reader)?.name
        if verdict.counter == nil, let c = outcome.firstContext, d.nic < c.recorded.count, d.nic < c.replayed.count {
            verdict.counter = NetCounter.allCases.first { c.recorded[d.nic][$0] != c.replayed[d.nic][$0] }?.name
        }
        return verdict
    }

    /// The counter event `number` moved, when it is a counter event: the
    /// counter the replay did not move as recorded.
    static func recordedCounter(at number: UInt64, in reader: TraceReader) -> NetCounter? {
        guard let i = reader.chunkIndex(containing: number), var d = try? reader.decoder(i) else { return nil }
        while let e = try? d.next(chunk: i, of: reader), e.number <= number {
            if e.number == number, case .counter(let index, _) = e.body { return NetCounter(ordinal: index) }
        }
        return nil
    }
}
