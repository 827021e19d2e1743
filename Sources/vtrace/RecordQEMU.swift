import ArgumentParser
import ChildProcess
import Foundation
import QEMULaunch
import TraceAnalysis
import TraceRecording
import VhostUser
import VirtioCore

/// `vtrace record -o OUT.vtrace -- qemu-system-x86_64 ARGS...`: QEMU runs
/// with a NIC that vtrace serves (and records) over vhost-user on a private
/// socket; QEMU's exit status becomes vtrace's (Record.swift's help says all).
struct RecordQEMU {
    var command: [String]
    var output: String?
    var options: QEMURecordingOptions
    var recording: RecordingOptions
    /// The window and the trigger (already in `recording`), for the report.
    var controls: RecordingControls
    var faults: DeviceFaults
    var guest: String?
    var json: Bool

    func run() throws {
        let temporary = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        let kvm = Self.kvmAvailable
        // Everything that can be refused is, before anything starts (the socket's directory is made later).
        let checked = try Self.plan(command, socket: "\(temporary)/vtrace-qemu.XXXXXX/vhost.sock", kvm: kvm, assumeQEMU: options.assumeQEMU)
        if options.dryRun {
            explain(checked)
            if json {
                print(try JSONText.encode(DryRunReport(command: checked.finalCommand, line: ShellQuoting.line(checked.finalCommand),
                                                       additions: checked.additions, notes: checked.notes, machine: checked.machine,
                                                       accelerator: checked.accelerator, nic: checked.nic)))
            } else {
                print(ShellQuoting.line(checked.finalCommand))
            }
            return
        }
        guard let program = ExecutableSearch.find(command[0], path: ProcessInfo.processInfo.environment["PATH"]) else {
            printError("vtrace: \(command[0]): no such program\(command[0].contains("/") ? "" : " in PATH") (QEMU: apt-get install qemu-system-x86)")
            throw ExitCode(VTrace.usageExitCode)
        }
        if let output {
            try refuseClobbering(output, inputs: [], renamedIntoPlace: true)
            try refuseClobbering(output + ".partial", inputs: [])
        }
        var template = Array("\(temporary)/vtrace-qemu.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            printError("vtrace: cannot make a directory in \(temporary) for vtrace's socket: \(String(cString: strerror(errno)))")
            throw ExitCode(VTrace.usageExitCode)
        }
        let directory = String(cString: made)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let plan = try Self.plan(command, socket: "\(directory)/vhost.sock", kvm: kvm, assumeQEMU: options.assumeQEMU)
        explain(plan)

        let connected: Doorbell
        do { connected = try Doorbell() } catch {
            printError("vtrace: \(error)")
            throw ExitCode(1)
        }
        let service = VhostService(socket: "\(directory)/vhost.sock", sessions: nil, trace: options.noRecord ? nil : output, recording: recording,
                                   faults: faults, guest: guest ?? "QEMU \(plan.machine) guest (\(plan.accelerator)) over vhost-user",
                                   verbose: options.verbose)
        var supervisor: QEMUSupervisor?
        var startFailure: String?
        // QEMU starts from this (the main) thread, which lives as long as vtrace:
        // its death signal is bound to the thread that started it.
        let outcome = service.run(connected: { connected.ring() }) { stopFD in
            do {
                let child = try SupervisedChild(executable: program, arguments: plan.finalCommand, takeTerminal: true,
                                                standardOutputToStandardError: json)
                if options.verbose { printError("vtrace: QEMU runs as pid \(child.pid), in process group \(child.pid) of its own") }
                supervisor = try QEMUSupervisor(child: child, connectedBell: connected, connectTimeout: options.connectTimeout, backendStopFD: stopFD)
            } catch {
                startFailure = "\(error)"
                var one: UInt64 = 1
                _ = write(stopFD, &one, 8)
            }
        }
        // Serving has ended: QEMU ended (its supervisor stopped the backend), or
        // vtrace was told to stop and QEMU is stopped now.
        supervisor?.requestStop()
        let watched = supervisor?.join()
        try finish(plan: plan, outcome: outcome, watched: watched, pid: supervisor?.child.pid, startFailure: startFailure)
    }

    /// Reports, decides what to keep and exits with QEMU's status (or vtrace's reason).
    func finish(plan: QEMULaunchPlan, outcome: VhostService.Outcome, watched: QEMUSupervisor.Outcome?, pid: Int32?, startFailure: String?) throws {
        let signal = vhostStopSignal
        var status: Int32
        if let problem = startFailure ?? (watched == nil ? outcome.failure : nil) {
            // Nothing ran: QEMU could not start, or the trace could not be created.
            printError("vtrace: \(problem)")
            throw ExitCode(VTrace.usageExitCode)
        } else if signal != 0 {
            printError("vtrace: stopped by \(ChildTermination.signalName(signal)): QEMU stopped (\(watched?.termination.description ?? "not started"))")
            status = 128 + signal
        } else if let watched, watched.timedOut {
            printError("vtrace: QEMU did not connect to vtrace's socket within \(Self.seconds(options.connectTimeout)) (--connect-timeout); stopped it")
            status = 1
        } else {
            status = watched?.termination.shellStatus ?? 1
        }
        // QEMU's 0 turns to 1 where vtrace failed, or a --trigger fired (it says so).
        var because = watched.map { "QEMU \($0.termination.description)" } ?? "QEMU did not run"
        if signal != 0 { because = "vtrace was stopped by \(ChildTermination.signalName(signal))" }
        if let failure = outcome.failure {
            printError("vtrace: \(failure)")
            if status == 0 { (status, because) = (1, failure) }
        }
        if let watched, !watched.connected, !watched.timedOut {
            printError("vtrace: QEMU \(watched.termination.description) without connecting to vtrace's socket")
        }
        if controls.report(outcome.recording) != nil, status == 0 { (status, because) = (1, "the --trigger held") }
        var check: OnlyFailuresCheck?
        var trace = outcome.recording?.path
        if options.onlyFailures, let path = trace {
            if status == 0 {
                let verdict = OnlyFailuresCheck(path)
                check = verdict
                if verdict.ok && unlink(path) == 0 {
                    trace = nil
                    printError("vtrace: QEMU exited 0 and the trace passes vtrace check: deleted \(path) (--only-failures)")
                } else {
                    printError("vtrace: kept \(path): vtrace check: \(verdict.violation ?? "the trace could not be deleted")")
                }
            } else {
                printError("vtrace: kept \(path): \(because)")
            }
        }
        let report = RecordQEMUReport(
            qemu: .init(command: plan.finalCommand, additions: plan.additions, pid: pid, connected: watched?.connected ?? false,
                        exitStatus: watched?.termination.shellStatus, signal: watched.flatMap { if case .killed(let s) = $0.termination { s } else { nil } },
                        seconds: watched?.seconds ?? 0),
            status: status, stoppedBy: signal != 0 ? ChildTermination.signalName(signal) : nil, sessions: outcome.sessions,
            counters: outcome.counters, recording: outcome.recording, check: check, trace: trace)
        if json {
            print(try JSONText.encode(report))
        } else {
            report.printText(qemuEnd: watched?.termination)
        }
        if status != 0 { throw ExitCode(status) }
    }

    /// The plan for `command`, or exit 2 naming the argument vtrace refuses.
    static func plan(_ command: [String], socket: String, kvm: Bool, assumeQEMU: Bool) throws -> QEMULaunchPlan {
        do {
            return try QEMULaunchPlan(command: command, socket: socket, kvmAvailable: kvm, assumeQEMU: assumeQEMU)
        } catch {
            printError("vtrace: \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
    }

    /// Notes always; with --verbose, what is added and why.
    func explain(_ plan: QEMULaunchPlan) {
        for note in plan.notes { printError("vtrace: note: \(note)") }
        guard options.verbose else { return }
        printError("vtrace: machine \(plan.machine), accelerator \(plan.accelerator), NIC \(plan.nic)")
        for addition in plan.additions {
            printError("vtrace: adds \(ShellQuoting.line(addition.arguments)): \(addition.reason)")
        }
    }

    /// Whether QEMU can use KVM here (for the accelerator it will pick).
    static var kvmAvailable: Bool {
        let fd = open("/dev/kvm", O_RDWR | O_CLOEXEC)
        if fd >= 0 { close(fd) }
        return fd >= 0
    }

    static func seconds(_ s: Double) -> String { s == s.rounded() ? "\(Int(s)) s" : "\(s) s" }
}
