//! What a replay finds: the first mismatch, or where a cut recording ends.

import TraceFormat

/// Where a recording ends inside an access: the recorder stopped (was
/// killed) in the middle of a drain. Replay stops there; it is not a divergence.
public struct RecordingCut: Hashable, Sendable, Encodable {
    public var nic: Int
    /// The event that began the access (its MMIO write or vhost-user kick).
    public var accessEvent: UInt64
    /// The first event the recording does not have.
    public var endEvent: UInt64
    /// The last chunk recorded.
    public var chunk: Int
    /// Whether the recording ends between two chains of the drain (else inside a chain).
    public var atChainBoundary: Bool
    /// Events of the access that were recorded (its cause included).
    public var eventsRecorded: UInt64 { endEvent >= accessEvent ? endEvent - accessEvent : 0 }

    /// One line for reports.
    public var description: String {
        "the recording ends inside the access at event \(accessEvent) (nic\(nic)): \(eventsRecorded) of its events recorded, "
            + (atChainBoundary ? "cut between two chains of its drain" : "cut inside a chain")
    }
}

/// The first point where a replay did not match its recording.
public struct Divergence: Error, Hashable, Sendable, CustomStringConvertible {
    /// The recorded event that did not match (or the first one not produced).
    public var event: UInt64
    public var chunk: Int
    public var nic: Int
    /// What the recording says, and what the replay did.
    public var expected: String
    public var actual: String

    public var description: String {
        "event \(event) (chunk \(chunk), nic\(nic)): expected \(expected); replay \(actual)"
    }
}
