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

/// The faults a replay runs with: `--fault`, or with `--recorded-faults` the
/// ones the trace's header says it was recorded with.
struct ReplayFaultOptions: ParsableArguments {
    @OptionGroup var given: FaultOptions

    @Flag(help: "Replay with the faults the trace was recorded with (its header lists them; see `vtrace info`).")
    var recordedFaults = false

    func validate() throws {
        if recordedFaults && !given.specs.isEmpty { throw ValidationError("--recorded-faults and --fault exclude each other") }
    }

    /// The faults for `header`'s trace, or exit 2 naming a bad one.
    func faults(for header: TraceHeader) throws -> DeviceFaults {
        guard recordedFaults else { return try given.parsed() }
        switch DeviceFaults.parse(header.faults) {
        case .success(let f): return f
        case .failure(let e):
            printError("vtrace: the trace's recorded faults: \(e)")
            throw ExitCode(VTrace.usageExitCode)
        }
    }

    /// A word for a replay that diverges where a recorded fault acted: nil
    /// when the trace was recorded without faults or is replayed with them.
    static func note(_ header: TraceHeader, replaying faults: DeviceFaults) -> String? {
        guard !header.faults.isEmpty, header.faults != faults.specs else { return nil }
        let specs = header.faults.joined(separator: " ")
        return "note: this trace was recorded with faults \(specs); a replay without them diverges where they acted: "
            + "replay them with \(header.faults.map { "--fault \($0)" }.joined(separator: " ")), or --recorded-faults"
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
    func check(_ readers: [TraceReader]) throws { try Self.check(nic: nic, readers) }

    /// Exits 2 when `nic` names a NIC one of `readers` lacks.
    static func check(nic: Int?, _ readers: [TraceReader]) throws {
        if let nic, let r = readers.first(where: { nic < 0 || nic >= $0.header.nics }) {
            printError("vtrace: --nic \(nic): the trace has \(r.header.nics) NIC(s)")
            throw ExitCode(VTrace.usageExitCode)
        }
    }
}
