import ChildProcess
import QEMULaunch
import TraceAnalysis
import TraceFormat
import TraceRecording
import VhostUser
import VirtioCore

/// What `vtrace record -- QEMU` reports (`--json`: standard output; else text on standard error).
struct RecordQEMUReport: Encodable {
    struct QEMU: Encodable {
        /// The command QEMU ran with (the user's, then vtrace's additions).
        var command: [String]
        var additions: [QEMULaunchPlan.Addition]
        @NullWhenNil var pid: Int32?
        var connected: Bool
        /// As a shell reports it (128 + N for signal N); null when QEMU did not run.
        @NullWhenNil var exitStatus: Int32?
        /// The signal that killed QEMU, if one did.
        @NullWhenNil var signal: Int32?
        /// From QEMU's start to its end (boot to poweroff).
        var seconds: Double
    }

    var qemu: QEMU
    /// vtrace's exit status.
    var status: Int32
    /// The signal that stopped vtrace (SIGINT, SIGTERM), if one did.
    @NullWhenNil var stoppedBy: String?
    var sessions: [VhostSessionSummary]
    var counters: NetCounters
    @NullWhenNil var recording: RecordingSummary?
    /// With --only-failures, after QEMU exited 0: `vtrace check`'s verdict.
    @NullWhenNil var check: OnlyFailuresCheck?
    /// The trace left on disk (null: --no-record, or deleted by --only-failures).
    @NullWhenNil var trace: String?

    /// The text form, on standard error (standard output is QEMU's).
    func printText(qemuEnd: ChildTermination?) {
        if let qemuEnd {
            printError("vtrace: QEMU \(qemuEnd.description) after \(String(format: "%.2f", qemu.seconds)) s")
        }
        for (i, s) in sessions.enumerated() {
            printError("session \(i + 1)  \(s.messages) messages, \(s.kicks) kicks, \(s.callSignals) call signals; ended: \(s.ending)")
        }
        printError(CounterTable.render([("nic0", counters)], onlyNonZero: true))
        if let r = recording, let trace {
            let window = r.firstEvent == 0 ? "" : " (a --keep window from event \(r.firstEvent))"
            printError("recorded   \(r.events - r.firstEvent) events\(window) in \(r.chunks) chunk\(r.chunks == 1 ? "" : "s") to \(trace) (\(r.fileBytes) bytes)")
        }
    }
}

/// What `vtrace record --dry-run --json -- QEMU ...` prints: the command QEMU would run, and why.
struct DryRunReport: Encodable {
    var command: [String]
    /// The command, shell-quoted (the socket's directory as XXXXXX).
    var line: String
    var additions: [QEMULaunchPlan.Addition]
    var notes: [String]
    var machine: String
    var accelerator: String
    var nic: String
}

/// `vtrace check` of a finished trace, for --only-failures.
struct OnlyFailuresCheck: Encodable {
    var ok: Bool
    /// The first violation, or why the trace could not be checked.
    @NullWhenNil var violation: String?

    init(_ path: String) {
        do {
            let reader = try TraceReader(path: path)
            let (_, failure) = try InvariantChecker.check(reader)
            ok = failure == nil
            violation = failure.map { "VIOLATION at \($0)" }
        } catch {
            ok = false
            violation = "\(error)"
        }
    }
}
