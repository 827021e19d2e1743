import ArgumentParser
import Foundation
import Scenarios
import TraceFormat
import TraceAnalysis
import TraceRecording
import VirtioCore

/// `vtrace record --scenario FILE -o OUT.vtrace`
struct Record: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a scenario with the recorder attached and write a trace.",
        discussion: """
            Records every MMIO access, guest-memory read and write, chain, used publish, \
            counter transition, interrupt, poisoning and status change of the scenario's \
            devices. The trace is written as OUT.partial and renamed to OUT when recording \
            finishes; a recorder killed mid-way leaves OUT.partial, which vtrace still reads \
            up to its last complete chunk.

            The scenario's expectations are checked as with `vtrace scenario run`: a failed \
            expectation still writes the trace (exit 1).

            Examples:
              vtrace record --scenario traces/scenarios/rx-poison.scenario -o rx-poison.vtrace
              vtrace record --scenario big.scenario -o big.vtrace --level 9 --flush-ms 50
              vtrace record --scenario soak.scenario -o soak.vtrace --keep 8MiB --trigger 'rx_write_failed > 0'

            With --keep (or --keep-seconds) the file is a flight recorder's window: once it \
            reaches SIZE its oldest chunks are dropped (the newest half is kept, starting at a \
            checkpoint), so it never exceeds SIZE plus one chunk and stays a complete trace \
            whose header says at which event it starts. With --trigger the recording waits for \
            a counter condition, records --after more events, then finishes (--trigger-action \
            stop ends the scenario there; mark writes a marker event and records on); exit 1 \
            when it fired.
            """
    )

    @Option(name: .long, help: "The scenario to run.", completion: .file(extensions: ["scenario"]))
    var scenario: String

    @Option(name: [.short, .customLong("output")], help: "The trace to write.")
    var output: String

    @Option(help: "zstd compression level (1...19; default 3, chosen from measurements in docs/performance.md).")
    var level: Int32 = 3

    @Option(help: "Cut a chunk after this many events.")
    var flushEvents = 65_536

    @Option(name: .customLong("flush-ms"), help: "Cut a chunk once its oldest event is this many milliseconds old (a killed recorder loses at most this window).")
    var flushMilliseconds = 200

    @Option(help: "A free-form description of the guest, stored in the header.")
    var guest: String?

    @OptionGroup var controls: RecordingControls

    @OptionGroup var faultOptions: FaultOptions

    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        guard (1...19).contains(level) else { throw ValidationError("--level must be in 1...19") }
        guard flushEvents >= 1 else { throw ValidationError("--flush-events must be at least 1") }
        guard flushMilliseconds >= 1 else { throw ValidationError("--flush-ms must be at least 1") }
    }

    func run() throws {
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
        var options = RecordingOptions()
        options.level = level
        options.flushEvents = flushEvents
        options.flushMilliseconds = flushMilliseconds
        try controls.apply(to: &options)
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
                                                   firstEvent: summary.firstEvent, triggerFiredAt: summary.triggerFiredAt)))
        } else {
            let ratio = summary.fileBytes > 0 ? Double(summary.uncompressedBytes) / Double(summary.fileBytes) : 0
            let window = summary.firstEvent == 0 ? "" : " (a --keep window: events \(summary.firstEvent)…\(summary.events - 1); \(summary.droppedChunks) older chunks dropped)"
            print("recorded \(summary.events - summary.firstEvent) events\(window) in \(summary.chunks) chunk\(summary.chunks == 1 ? "" : "s") to \(summary.path): \(summary.fileBytes) bytes (\(summary.uncompressedBytes) uncompressed, ratio \(String(format: "%.2f", ratio)))")
        }
        if result.error != nil { throw ExitCode(VTrace.usageExitCode) }
        let fired = controls.report(summary)
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
}

extension TraceHeader {
    /// Who recorded the trace, where, when and how.
    mutating func stampProvenance(started: Date, guest: String?) {
        recorderVersion = VTrace.version
        hostName = ProcessInfo.processInfo.hostName
        startTimeNanoseconds = UInt64(started.timeIntervalSince1970 * 1e9)
        commandLine = CommandLine.arguments.map(Self.shellQuoted).joined(separator: " ")
        gitCommit = GitInfo.commit
        guestDescription = guest
    }
}

extension TraceHeader {
    /// `word` as a POSIX shell reads it back: as it is when it is plain, else in single quotes.
    static func shellQuoted(_ word: String) -> String {
        let plain = !word.isEmpty && word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }
        return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
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
