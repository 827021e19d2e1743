import ArgumentParser
import Foundation
import QEMULaunch
import Scenarios
import TraceFormat
import TraceAnalysis
import TraceRecording
import VirtioCore

/// `vtrace record --scenario FILE -o OUT.vtrace`, and
/// `vtrace record -o OUT.vtrace -- qemu-system-x86_64 ARGS...` (RecordQEMU.swift).
struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record a trace: of a scenario, or of a QEMU guest's NIC served by vtrace over vhost-user.",
        discussion: """
            Records every MMIO access or vhost-user operation, guest-memory read and write, \
            chain, used publish, counter transition, interrupt, poisoning and status change of \
            the device. The trace is written as OUT.partial and renamed to OUT when recording \
            finishes; a recorder killed mid-way leaves OUT.partial, which vtrace still reads \
            up to its last complete chunk.

            With --scenario: the scenario's expectations are checked as with `vtrace scenario \
            run`; a failed expectation still writes the trace (exit 1).

            With a QEMU command after --: vtrace serves a NIC to QEMU over vhost-user (the \
            backend `vtrace serve` runs) on a private socket, and runs QEMU with ARGS plus \
            what that needs: -chardev socket,id=vtrace-chr0,path=SOCKET; -netdev \
            vhost-user,id=vtrace0,chardev=vtrace-chr0; a virtio-net device on it \
            (virtio-net-device on microvm, virtio-net-pci elsewhere, with vectors=0 under TCG, \
            where Debian 12's QEMU 7.2 otherwise segfaults; none when ARGS has its own \
            -device ...,netdev=vtrace0); shared guest memory (-object \
            memory-backend-memfd,id=vtrace-mem,size=SIZE,share=on and -machine \
            memory-backend=vtrace-mem, SIZE from -m, QEMU's default 128M without; none when \
            -machine memory-backend= names a shareable memfd or file backend); on microvm \
            -global virtio-mmio.force-legacy=false. --verbose says what is added and why.

            QEMU's standard output and error are vtrace's (with --json its standard output \
            goes to standard error, leaving standard output to the report); on a terminal \
            QEMU gets it as it would without vtrace. QEMU runs in a process group of its own \
            and never outlives vtrace: SIGINT or SIGTERM to vtrace stops QEMU (SIGTERM, \
            SIGKILL after 5 s), and a SIGKILL of vtrace takes QEMU with it. However QEMU ends, \
            the trace is finished, complete up to there.

            With --keep (or --keep-seconds) the file is a flight recorder's window: once it \
            reaches SIZE its oldest chunks are dropped (the newest half is kept, starting at a \
            checkpoint), so it never exceeds SIZE plus one chunk and stays a complete trace \
            whose header says at which event it starts. With --trigger the recording waits for \
            a counter condition, records --after more events, then finishes (--trigger-action \
            stop ends the scenario, or QEMU, there; continue lets QEMU run on unrecorded; mark \
            writes a marker event and records on); exit 1 when it fired (with QEMU: unless \
            QEMU's own status is not 0).

            Exit status with QEMU: QEMU's own (128+N when signal N killed it); 128+N when \
            signal N stopped vtrace; 1 when QEMU did not connect within --connect-timeout \
            (it is stopped; its output shows why), the trace could not be written, or a \
            --trigger fired and QEMU's own status is 0; 2 for \
            a command line vtrace refuses, before QEMU starts, naming the argument: an id \
            vtrace adds (vtrace0, vtrace-chr0, vtrace-mem) already used, a -machine \
            memory-backend= that is missing or not shareable, -mem-path, -daemonize, an -m \
            that does not parse, a program not named qemu-system-* (unless --assume-qemu).

            Examples:
              vtrace record --scenario traces/scenarios/rx-poison.scenario \\
                -o rx-poison.vtrace
              vtrace record --scenario big.scenario -o big.vtrace --level 9 --flush-ms 50
              vtrace record -o boot.vtrace -- qemu-system-x86_64 -M microvm -m 256M \\
                -nographic -kernel vmlinuz -initrd initrd.gz -append console=ttyS0
              vtrace record -o boot.vtrace --only-failures --json -- \\
                qemu-system-x86_64 -M q35 -accel kvm ...
              vtrace record --dry-run --verbose -- qemu-system-x86_64 -M pc -m 1G ...
              vtrace record --scenario soak.scenario -o soak.vtrace --keep 8MiB \\
                --trigger 'rx_write_failed > 0'
            """
    )

    @Option(name: .long, help: "The scenario to run.", completion: .file(extensions: ["scenario"]))
    var scenario: String?

    @Option(name: [.short, .customLong("output")], help: "The trace to write.")
    var output: String?

    @OptionGroup(title: "Recording") var recordingFlags: RecordingFlags

    @Option(help: "A free-form description of the guest, stored in the header.")
    var guest: String?

    @OptionGroup(title: "With a QEMU command") var qemuOptions: QEMURecordingOptions

    @OptionGroup var faultOptions: FaultOptions

    @OptionGroup var outputOptions: OutputOptions

    @Argument(parsing: .postTerminator, help: "After --: QEMU and its arguments.")
    var qemu: [String] = []

    func validate() throws {
        switch (scenario, qemu.isEmpty) {
        case (.some, false):
            throw ValidationError("--scenario and a QEMU command (after --) exclude each other")
        case (nil, true):
            throw ValidationError("record what? --scenario FILE -o OUT.vtrace, or -o OUT.vtrace -- qemu-system-x86_64 ARGS...")
        case (.some, true):
            if let option = qemuOptions.given { throw ValidationError("\(option) is for recording QEMU (vtrace record -o OUT.vtrace -- qemu-system-x86_64 ...)") }
            if output == nil { throw ValidationError("--scenario needs -o OUT.vtrace") }
        case (nil, false):
            try qemuOptions.check(output: output)
        }
    }

    func run() throws {
        guard let scenario, let output else {
            return try RecordQEMU(command: qemu, output: output, options: qemuOptions, recording: try recordingFlags.options(defaultLevel: 1),
                                  controls: recordingFlags.controls, faults: try faultOptions.parsed(), guest: guest, json: outputOptions.json).run()
        }
        // The recorder writes OUTPUT.partial, then renames it to OUTPUT.
        try refuseClobbering(output, inputs: [scenario], renamedIntoPlace: true)
        try refuseClobbering(output + ".partial", inputs: [scenario])
        let parsed: Scenario
        do {
            parsed = try ScenarioParser.parse(file: scenario, bytes: try InputFiles.read(scenario, limit: ScenarioParser.maxFileSize))
        } catch {
            printError("\(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
        let faults = try faultOptions.parsed()
        let options = try recordingFlags.options(defaultLevel: 3)
        let started = Date()
        let recorded: (ScenarioResult, RecordingSummary)
        do {
            recorded = try ScenarioRecording.record(parsed, to: output, options: options, faults: faults) { header in
                header.stampProvenance(started: started, guest: guest)
            }
        } catch {
            printError("vtrace: \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
        let (result, summary) = recorded
        for f in result.failures { print(terminalSafe("\(f.file):\(f.line): \(f.message)")) }
        if let e = result.error { printError(e.description) }
        if outputOptions.json {
            print(try JSONText.encode(RecordReport(path: summary.path, events: summary.events, chunks: summary.chunks,
                                                   uncompressedBytes: summary.uncompressedBytes, fileBytes: summary.fileBytes,
                                                   expectationsFailed: result.failures.count, passed: result.passed,
                                                   firstEvent: summary.firstEvent, triggerFiredAt: summary.triggerFiredAt,
                                                   stalls: summary.stalls, fasterChunks: summary.fasterChunks,
                                                   doubleFastChunks: summary.doubleFastChunks, fastestChunks: summary.fastestChunks)))
        } else {
            let ratio = summary.fileBytes > 0 ? Double(summary.uncompressedBytes) / Double(summary.fileBytes) : 0
            let window = summary.firstEvent == 0 ? "" : " (a --keep window: events \(summary.firstEvent)…\(summary.events - 1); \(summary.droppedChunks) older chunks dropped)"
            print("recorded \(summary.events - summary.firstEvent) events\(window) in \(summary.chunks) chunk\(summary.chunks == 1 ? "" : "s") to \(summary.path): \(summary.fileBytes) bytes (\(summary.uncompressedBytes) uncompressed, ratio \(String(format: "%.2f", ratio)))")
        }
        if result.error != nil { throw ExitCode(VTrace.usageExitCode) }
        let fired = recordingFlags.controls.report(summary)
        if !result.failures.isEmpty || fired != nil { throw ExitCode(1) }
    }
}

struct RecordReport: Encodable {
    var path: String
    var events: UInt64
    var chunks: Int
    var uncompressedBytes: UInt64
    var fileBytes: UInt64
    var expectationsFailed: Int
    var passed: Bool
    /// Where a --keep window starts (0 without one).
    var firstEvent: UInt64
    /// The event at which --trigger's condition held.
    @NullWhenNil var triggerFiredAt: UInt64?
    /// Times the recording waited for the compressor.
    var stalls: Int
    /// Chunks compressed at a faster level than asked (others were waiting).
    var fasterChunks: Int
    /// Chunks compressed with zstd's double-hash match finder (at levels 1 and 2, where it was cheaper).
    var doubleFastChunks: Int
    /// Chunks compressed at zstd's fastest level (the queue was full, and that level had cost less).
    var fastestChunks: Int
}

extension TraceHeader {
    /// Who recorded the trace, where, when and how.
    mutating func stampProvenance(started: Date, guest: String?) {
        recorderVersion = VTrace.version
        hostName = ProcessInfo.processInfo.hostName
        startTimeNanoseconds = UInt64(started.timeIntervalSince1970 * 1e9)
        commandLine = ShellQuoting.line(CommandLine.arguments)
        gitCommit = GitInfo.commit
        guestDescription = guest
    }
}

/// The git commit of the working directory, when there is one.
enum GitInfo {
    static var commit: String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "rev-parse", "--short=12", "HEAD"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        let s = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return s.isEmpty ? nil : s
    }
}
