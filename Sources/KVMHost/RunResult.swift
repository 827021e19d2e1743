//! How a run ends and what it did, as `Machine.run()` reports it.

import VirtioCore

/// How a run ends.
public enum RunEnd: Equatable, Sendable, CustomStringConvertible {
    /// The guest wrote its exit status to the done port.
    case done(status: UInt32)
    /// HLT (at privilege level 3 a HLT faults, so this is a kernel-mode guest halting).
    case halted
    /// A triple fault, or a shutdown request.
    case shutdown
    /// The wall-clock limit passed.
    case timeout(seconds: Double)
    /// KVM could not run the guest (entry failure, internal error, a failed call).
    case failed(String)
    /// The host asked the run to stop (``Machine/requestStop()``: a recording's trigger).
    case stopped

    public var description: String {
        switch self {
        case .done(let s): return "the guest finished with status \(s)\(s == 0 ? "" : " (its own checks failed)")"
        case .halted: return "the guest halted"
        case .shutdown: return "the guest shut down (triple fault or reset request)"
        case .timeout(let s): return "timed out after \(s) s (--timeout)"
        case .failed(let why): return "KVM failed: \(why)"
        case .stopped: return "stopped by the host (the recording's trigger)"
        }
    }

    /// Whether the run counts as a success (the guest said 0).
    public var succeeded: Bool { self == .done(status: 0) }
}

/// What a run did.
public struct RunResult: Sendable {
    public var end: RunEnd
    /// Everything the guest wrote to the serial port (at most 1 MiB kept).
    public var serial: String
    public var mmioExits: UInt64 = 0
    public var ioExits: UInt64 = 0
    /// Accesses outside every NIC's window (reads answered all-ones, writes ignored).
    public var strayAccesses: UInt64 = 0
    /// The VMM's notes (the first stray accesses, the end).
    public var log: [String] = []
    public var seconds: Double = 0
    /// CPU time the vCPU threads used (user + system, summed): unlike wall
    /// time, it leaves out the time this machine's other tenants took.
    public var vcpuSeconds: Double = 0
    public var counters: [NetCounters] = []
}
