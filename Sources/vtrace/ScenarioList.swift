import ArgumentParser
import Foundation
import Scenarios

/// `vtrace scenario list [DIR]`
struct ScenarioList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the scenarios in a directory with what each one shows.",
        discussion: """
            Lists every *.scenario file in DIR (default: traces/scenarios) with its first \
            comment line, its operation and expectation counts, and whether it parses.

            Examples:
              vtrace scenario list
              vtrace scenario list my-scenarios/ --json
            """
    )

    @Argument(help: "Directory to list.", completion: .directory)
    var directory = "traces/scenarios"

    @OptionGroup var output: OutputOptions

    struct Entry: Encodable {
        var name: String
        var path: String
        var summary: String?
        var operations: Int?
        var expectations: Int?
        var error: String?
    }

    func run() throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            printError("\(directory): no such directory (run from the repository root, or give DIR)")
            throw ExitCode(VTrace.usageExitCode)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".scenario") }.sorted()
        var entries: [Entry] = []
        for name in names {
            let path = (directory as NSString).appendingPathComponent(name)
            var entry = Entry(name: String(name.dropLast(".scenario".count)), path: path)
            do {
                let scenario = try ScenarioParser.parse(file: path, bytes: try InputFiles.read(path, limit: ScenarioParser.maxFileSize))
                entry.summary = scenario.summary
                entry.operations = scenario.steps.count
                entry.expectations = scenario.steps.filter { $0.operation.isExpectation }.count
            } catch {
                entry.error = "\(error)"
            }
            entries.append(entry)
        }
        if output.json {
            print(try JSONText.encode(entries))
            if entries.contains(where: { $0.error != nil }) { throw ExitCode(VTrace.usageExitCode) }
            return
        }
        let width = entries.map(\.name.count).max() ?? 0
        for e in entries {
            let pad = String(repeating: " ", count: width - e.name.count)
            if let error = e.error {
                print("\(terminalSafe(e.name))\(pad)  MALFORMED: \(terminalSafe(error))")
            } else {
                print("\(terminalSafe(e.name))\(pad)  \(terminalSafe(e.summary ?? "(no description)"))  [\(e.operations ?? 0) ops, \(e.expectations ?? 0) expects]")
            }
        }
        print("\(entries.count) scenario\(entries.count == 1 ? "" : "s") in \(directory)")
        if entries.contains(where: { $0.error != nil }) { throw ExitCode(VTrace.usageExitCode) }
    }
}
