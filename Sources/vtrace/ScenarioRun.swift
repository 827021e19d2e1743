import ArgumentParser
import Foundation
import Scenarios
import VirtioCore

/// `vtrace scenario run FILE...`
struct ScenarioRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run scenario files against fresh devices and check their expectations.",
        discussion: """
            Each file runs against fresh devices and memory. Failed expectations print as \
            FILE:LINE: expected …, got …; the run of that file goes on. Then the file's final \
            counters print as a table (non-zero counters only, unless --all-counters).

            A run that takes more than a second shows its progress in operations on \
            standard error when that is a terminal (never with --json).

            Exit status: 0 when every expectation of every file held, 1 when one did not, \
            2 when a file is malformed (FILE:LINE:COLUMN: message) or asks the driver for \
            something it cannot do.

            Examples:
              vtrace scenario run traces/scenarios/loopback-basic.scenario
              vtrace scenario run traces/scenarios/*.scenario --summary
              vtrace scenario run my.scenario --json
            """
    )

    @Argument(help: "Scenario files.", completion: .file(extensions: ["scenario"]))
    var files: [String]

    @OptionGroup var output: OutputOptions

    @Flag(help: "Print one line per file instead of the counter tables.")
    var summary = false

    @Flag(help: "Show all 16 counters in the tables, not only the non-zero ones.")
    var allCounters = false

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one scenario file") }
    }

    func run() throws {
        var reports: [FileReport] = []
        var malformed = false
        var failed = false
        for path in files {
            let report = Self.runFile(path, showProgress: !output.json)
            if report.error != nil { malformed = true }
            if !report.failures.isEmpty { failed = true }
            reports.append(report)
            if !output.json { printText(report) }
        }
        if output.json {
            print(try JSONText.encode(RunReport(passed: !malformed && !failed, files: reports)))
        } else if files.count > 1 {
            let passed = reports.filter(\.passed).count
            print("\(passed) of \(reports.count) scenario files passed")
        }
        if malformed { throw ExitCode(VTrace.usageExitCode) }
        if failed { throw ExitCode(1) }
    }

    static func runFile(_ path: String, showProgress: Bool) -> FileReport {
        do {
            let bytes = try InputFiles.read(path, limit: ScenarioParser.maxFileSize)
            let scenario = try ScenarioParser.parse(file: path, bytes: bytes)
            var runner = try ScenarioRunner(scenario)
            let progress = Progress("scenario run \(path.split(separator: "/").last ?? "")", total: runner.totalOperations,
                                    unit: "operations", enabled: showProgress)
            let result = runner.run(progress: progress.enabled ? { progress.update($0) } : nil)
            progress.finish()
            return FileReport(result: result)
        } catch let error as ScenarioError {
            return FileReport(file: path, error: ErrorReport(error))
        } catch {
            return FileReport(file: path, error: ErrorReport(line: 0, column: 0, message: "\(error)", text: "\(error)"))
        }
    }

    func printText(_ r: FileReport) {
        for f in r.failures { print(terminalSafe("\(f.file):\(f.line): \(f.message)")) }
        if let e = r.error { printError(e.text) }
        func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
        if r.error != nil && r.nics == nil {
            print("\(r.file): malformed, not run")
        } else if r.error != nil {
            print("\(r.file): ERROR after \(plural(r.operations, "operation"))")
        } else if r.failures.isEmpty {
            print("\(r.file): passed (\(plural(r.expectations, "expectation")), \(plural(r.operations, "operation")))")
        } else {
            print("\(r.file): FAILED: \(r.failures.count) of \(plural(r.expectations, "expectation")) did not hold (\(plural(r.operations, "operation")))")
        }
        if !summary, let nics = r.nics, r.error == nil || r.operations > 0 {
            var columns = nics.enumerated().map { ("nic\($0.offset)", $0.element) }
            if nics.count > 1 { columns.append(("total", r.aggregate ?? NetCounters())) }
            print(CounterTable.render(columns, onlyNonZero: !allCounters))
            print("")
        }
    }
}

/// The JSON form of a run.
struct RunReport: Encodable {
    var passed: Bool
    var files: [FileReport]
}

struct ErrorReport: Encodable {
    var line: Int
    var column: Int
    var message: String
    var text: String

    init(line: Int, column: Int, message: String, text: String) {
        self.line = line
        self.column = column
        self.message = message
        self.text = text
    }

    init(_ e: ScenarioError) {
        self.init(line: e.line, column: e.column, message: e.message, text: e.description)
    }

    enum CodingKeys: String, CodingKey { case line, column, message }
}

struct FileReport: Encodable {
    var file: String
    var passed: Bool
    var expectations = 0
    var operations = 0
    var failures: [ExpectationFailure] = []
    var error: ErrorReport?
    var nics: [NetCounters]?
    var aggregate: NetCounters?

    init(file: String, error: ErrorReport) {
        self.file = file
        passed = false
        self.error = error
    }

    init(result: ScenarioResult) {
        file = result.file
        passed = result.passed
        expectations = result.expectationsChecked
        operations = result.operationsRun
        failures = result.failures
        error = result.error.map(ErrorReport.init)
        nics = result.counters
        aggregate = result.aggregate
    }
}
