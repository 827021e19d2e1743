import ArgumentParser
import Foundation
import VirtioCore

/// Options shared by commands that print results.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print JSON for machines instead of text.")
    var json = false
}

/// `--fault` options shared by `record` and `replay`.
struct FaultOptions: ParsableArguments {
    @Option(name: .customLong("fault"), help: "Inject a fault into the device core: drop-rx:N, skip-used:N, no-poison, count-twice:COUNTER:N (repeatable).")
    var specs: [String] = []

    /// The faults, or exit 2 naming the bad one.
    func parsed() throws -> DeviceFaults {
        switch DeviceFaults.parse(specs) {
        case .success(let f): return f
        case .failure(let e):
            printError("vtrace: \(e)")
            throw ExitCode(VTrace.usageExitCode)
        }
    }
}

extension NetCounter {
    /// Counters named in a comma-separated list, or exit 2 naming the unknown one.
    static func parseList(_ list: String) throws -> [NetCounter] {
        var selected: [NetCounter] = []
        for name in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard let c = NetCounter(name: name) else {
                printError("vtrace: unknown counter '\(name)'; counters are \(NetCounter.allCases.map(\.name).joined(separator: ", "))")
                throw ExitCode(VTrace.usageExitCode)
            }
            selected.append(c)
        }
        return selected
    }
}
