import ArgumentParser
import Foundation
import TraceFormat

/// The trace file argument shared by commands that read one trace.
struct TraceInput: ParsableArguments {
    @Argument(help: "A .vtrace file (or a .vtrace.partial left by a recorder that died).", completion: .file(extensions: ["vtrace", "partial"]))
    var trace: String

    /// Opens the trace or exits 2 with the reader's message. Chunks are
    /// checked against the index's CRC-32; zstd's own content checksums only
    /// when `contentChecksums` (`vtrace verify`).
    func open(contentChecksums: Bool = false) throws -> TraceReader {
        try Self.open(trace, contentChecksums: contentChecksums)
    }

    /// Opens the trace at `path` or exits 2 with the reader's message.
    static func open(_ path: String, contentChecksums: Bool = false) throws -> TraceReader {
        do throws(TraceError) {
            let reader = try TraceReader(path: path)
            reader.verifiesContentChecksums = contentChecksums
            return reader
        } catch {
            if case .io = error {
                printError("vtrace: \(error)")  // already names the file
            } else {
                printError("vtrace: \(path): \(error)")
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
