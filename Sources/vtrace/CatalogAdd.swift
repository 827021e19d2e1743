import ArgumentParser
import Foundation
import TraceCatalog

/// `vtrace catalog add DB TRACE_OR_DIR...`
struct CatalogAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add traces (files, or directories searched for .vtrace and .vtrace.partial) to a catalogue.",
        discussion: """
            Creates the catalogue when the file does not exist. Each trace is read once, on \
            all cores: its header, completeness and sizes, its final counters per NIC and in \
            all, its counter transitions, the first poison event, and `vtrace check`'s \
            verdict; with --replay it is also replayed against this build's device core, \
            with the faults its header lists (as `vtrace replay --recorded-faults`), and the \
            first divergence is stored (event, counter).

            A trace is known by the SHA-256 of its bytes: adding it again changes nothing (a \
            file whose path, size and modification time are already catalogued is not even \
            read), a moved file keeps its row under its new path, a copy gets no second row, \
            and a file rewritten in place replaces its row. A file that is not a trace, or a \
            trace that is corrupt or cut short, becomes a row that says so (status, error) and \
            the add goes on; each is named on standard error.

            Rows are written 64 traces to a transaction: an add that is interrupted keeps what \
            it stored, and running it again adds the rest. Two adds on one catalogue at once \
            take turns (SQLite's lock); one that waits longer than --wait-seconds stops \
            cleanly, exit 2, and loses nothing already stored.

            Exit 0 when every named trace is catalogued (whatever its rows say), 2 when the \
            catalogue cannot be used (not SQLite, another program's database, a newer \
            schema) or a path does not exist.

            Examples:
              vtrace catalog add fleet.db run.vtrace
              vtrace catalog add fleet.db ci-traces/ nightly/ --replay
              vtrace catalog add fleet.db ci-traces/ --json --jobs 8
            """
    )

    @Argument(help: "The catalogue (a SQLite file; created when missing).")
    var database: String

    @Argument(help: "Trace files, and directories to search for .vtrace and .vtrace.partial files.")
    var paths: [String] = []

    @Flag(help: "Also replay each trace against this build's device core (the replay_* columns).")
    var replay = false

    @Option(help: "Traces read at once (default: the number of cores).")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "How long to wait for another `catalog add`'s lock before giving up (exit 2).")
    var waitSeconds: Int = 60

    @OptionGroup var output: OutputOptions

    func validate() throws {
        if paths.isEmpty { throw ValidationError("add what? vtrace catalog add DB TRACE_OR_DIR...") }
        if jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        if waitSeconds < 0 || waitSeconds > 86_400 { throw ValidationError("--wait-seconds must be in 0...86400") }
    }

    struct Report: Encodable {
        var catalogue: String
        var files: Int
        var added: Int
        var unchanged: Int
        var refreshed: Int
        var replaced: Int
        var moved: Int
        var copies: Int
        var seconds: Double
        var problems: [Problem]
        struct Problem: Encodable {
            var path: String
            var status: String
            var error: String
        }
    }

    func run() throws {
        let started = Date()
        let report: IngestReport
        do {
            try refuseClobbering(database, inputs: paths, option: "DB")
            let files = try TraceFiles.collect(paths)
            let catalog = try Catalog.openForWriting(database, waitMilliseconds: Int32(waitSeconds * 1000))
            let progress = Progress("catalog", total: files.count, unit: "traces", enabled: !output.json)
            defer { progress.finish() }
            let options = IngestOptions(replay: replay, workers: jobs, replayedBy: "vtrace \(VTrace.version)")
            report = try CatalogIngest.add(files, to: catalog, options: options) { done, _ in progress.update(done) }
        } catch let error as CatalogError {
            throw error.exit()
        }
        let seconds = Date().timeIntervalSince(started)
        if output.json {
            print(try JSONText.encode(Report(
                catalogue: database, files: report.files, added: report.added, unchanged: report.unchanged + report.skipped,
                refreshed: report.refreshed, replaced: report.replaced, moved: report.moved, copies: report.copies, seconds: seconds,
                problems: report.problems.map { .init(path: $0.path, status: $0.status.rawValue, error: $0.error) })))
            return
        }
        for p in report.problems.prefix(20) { printError("vtrace: \(p.path): catalogued as \(p.status.rawValue): \(p.error)") }
        if report.problems.count > 20 {
            printError("vtrace: \(report.problems.count - 20) more not whole; SELECT path, status, error FROM traces WHERE status != 'complete' lists them")
        }
        var parts = ["\(report.added) added", "\(report.unchanged + report.skipped) already there"]
        if report.refreshed > 0 { parts.append("\(report.refreshed) replayed now") }
        if report.replaced > 0 { parts.append("\(report.replaced) replaced (the file changed)") }
        if report.moved > 0 { parts.append("\(report.moved) moved") }
        if report.copies > 0 { parts.append("\(report.copies) copies of catalogued traces") }
        if !report.problems.isEmpty { parts.append("\(report.problems.count) not whole (their rows say so)") }
        print("\(terminalSafe(database)): \(report.files) trace\(report.files == 1 ? "" : "s"): \(parts.joined(separator: ", ")) in \(String(format: "%.2f", seconds)) s")
    }
}
