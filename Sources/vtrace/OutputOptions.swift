import ArgumentParser
import Foundation
import TraceFormat
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
        if selected.isEmpty {
            printError("vtrace: no counters named; counters are \(NetCounter.allCases.map(\.name).joined(separator: ", "))")
            throw ExitCode(VTrace.usageExitCode)
        }
        return selected
    }
}

/// `--nic N` or `--aggregate` (the default) for commands that show one scope's counters.
struct CounterScopeOptions: ParsableArguments {
    @Option(help: "One NIC's counters (default: the aggregate over all NICs).")
    var nic: Int?

    @Flag(help: "The aggregate over all NICs (the default).")
    var aggregate = false

    func validate() throws {
        if nic != nil && aggregate { throw ValidationError("--nic and --aggregate exclude each other") }
    }

    /// Exits 2 when --nic names a NIC one of `readers` lacks.
    func check(_ readers: [TraceReader]) throws {
        if let nic, let r = readers.first(where: { nic < 0 || nic >= $0.header.nics }) {
            printError("vtrace: --nic \(nic): the trace has \(r.header.nics) NIC(s)")
            throw ExitCode(VTrace.usageExitCode)
        }
    }
}
