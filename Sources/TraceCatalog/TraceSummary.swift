//! What the catalogue knows of one trace file: a row of `traces` and its
//! rows of `counters` and `timeline`.

import TraceFormat
import VirtioCore

/// How far a file could be read: the `status` column.
public enum TraceStatus: String, Sendable, Hashable, CaseIterable {
    /// Read to its end; the recorder finished it.
    case complete
    /// Read to its last complete chunk; the recorder died (a `.partial`) and bytes were lost.
    case incomplete
    /// A chunk or the index ends early: read up to there.
    case truncated
    /// Bytes contradict the format (a checksum, a record, the compression): read up to there.
    case corrupt
    /// No vtrace header: not a trace at all.
    case notATrace = "not_a_trace"
    /// A format major version this vtrace does not read.
    case unsupportedVersion = "unsupported_version"
    /// The operating system refused to read the file.
    case unreadable
}

/// A counter's life in one trace, per NIC: a `counters` row.
public struct CounterStat: Sendable, Hashable {
    public var nic: Int
    public var counter: NetCounter
    public var finalValue: UInt64
    /// Transitions recorded (counter events).
    public var moves: UInt64
    /// The first and last transition's event numbers (nil without one).
    public var firstEvent: UInt64?
    public var lastEvent: UInt64?
}

/// One sample of the aggregate counters: a `timeline` row.
public struct TimelinePoint: Sendable, Hashable {
    public var point: Int
    public var event: UInt64
    /// Nanoseconds since the trace's first access.
    public var time: UInt64
    public var counters: NetCounters
}

/// The first poison event: which queue, and why.
public struct FirstPoison: Sendable, Hashable {
    public var event: UInt64
    public var nic: Int
    public var queue: Int
    public var reason: String
}

/// `vtrace check`'s verdict: nil violation when every identity held.
public struct CheckVerdict: Sendable, Hashable {
    public var violation: InvariantViolationRow?
    public var ok: Bool { violation == nil }
}

/// The first broken identity (`vtrace check`'s InvariantViolation, as stored).
public struct InvariantViolationRow: Sendable, Hashable {
    public var event: UInt64
    public var rule: String
    public var detail: String
}

/// A replay against this build's device core: `replay_*` columns.
public struct ReplayVerdict: Sendable, Hashable {
    public enum Status: String, Sendable { case match, diverged, error }
    public var status: Status
    public var event: UInt64?
    public var nic: Int?
    /// The first counter whose recorded and replayed values differ at the divergence.
    public var counter: String?
    public var expected: String?
    /// What the replay did instead, or the error that stopped it.
    public var actual: String?
    /// The faults the replay ran with (the header's), space-separated.
    public var faults: String
    /// `vtrace VERSION`: the device core that replayed.
    public var replayedBy: String
}

/// Everything catalogued of one file.
public struct TraceSummary: Sendable {
    /// Absolute path when catalogued.
    public var path: String
    public var fileBytes: Int64
    public var mtimeNanoseconds: Int64
    /// SHA-256 of the file's bytes, hex; nil when it could not be read.
    public var contentHash: String?
    public var status: TraceStatus
    /// The reader's message for a status other than complete.
    public var error: String?
    public var header: TraceHeader?
    public var bytesLost: Int = 0
    public var events: UInt64 = 0
    public var firstEvent: UInt64 = 0
    public var chunks = 0
    public var checkpointChunks = 0
    public var durationNanoseconds: UInt64 = 0
    /// Per NIC, the counters at the last event read.
    public var finalCounters: [NetCounters] = []
    public var firstPoison: FirstPoison?
    /// nil when the trace could not be read to its end without a violation.
    public var check: CheckVerdict?
    public var replay: ReplayVerdict?
    public var timeline: [TimelinePoint] = []
    public var counterStats: [CounterStat] = []

    public init(path: String, fileBytes: Int64, mtimeNanoseconds: Int64, contentHash: String?, status: TraceStatus, error: String? = nil) {
        self.path = path
        self.fileBytes = fileBytes
        self.mtimeNanoseconds = mtimeNanoseconds
        self.contentHash = contentHash
        self.status = status
        self.error = error
    }
}
