import ArgumentParser
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
