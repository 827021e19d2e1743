import ArgumentParser
import Foundation
import TraceFormat

/// The trace file argument shared by commands that read one trace.
struct TraceInput: ParsableArguments {
    @Argument(help: "A .vtrace file (or a .vtrace.partial left by a recorder that died).", completion: .file(extensions: ["vtrace", "partial"]))
    var trace: String

    /// Opens the trace or exits 2 with the reader's message.
    func open() throws -> TraceReader {
        do throws(TraceError) {
            return try TraceReader(path: trace)
        } catch {
            if case .io = error {
                printError("vtrace: \(error)")  // already names the file
            } else {
                printError("vtrace: \(trace): \(error)")
            }
            throw ExitCode(VTrace.usageExitCode)
        }
    }
}

extension TraceCompleteness {
    var text: String {
        switch self {
        case .complete: return "complete"
        case .incomplete(let lost, let reason): return "INCOMPLETE: \(reason); \(lost) trailing bytes lost"
        }
    }
}
