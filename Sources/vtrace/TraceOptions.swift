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

/// Which of several traces `error` came from, when a command reading them
/// together (diff, plot) failed on one: the first whose chunk the error
/// names fails the same way when decoded again (only on this failure path).
func traceThatFailed(_ error: Error, among inputs: [(path: String, reader: TraceReader)]) -> String? {
    guard let error = error as? TraceError else { return nil }
    let chunk: Int?
    switch error {
    case .corrupt(_, let c, _), .truncated(_, let c, _), .compression(_, let c, _): chunk = c
    default: return nil
    }
    for (path, reader) in inputs {
        let chunks = chunk.map { [$0] } ?? Array(reader.chunks.indices)
        for i in chunks where i < reader.chunks.count {
            do throws(TraceError) {
                var d = try reader.decoder(i)
                while try d.next(chunk: i, of: reader) != nil {}
            } catch let again where again == error {
                return path
            } catch {}
        }
    }
    return nil
}

/// `vtrace: PATH: ERROR` for an error from one of `inputs`, or `vtrace: ERROR`.
func printTraceError(_ error: Error, among inputs: [(path: String, reader: TraceReader)]) {
    if let path = traceThatFailed(error, among: inputs) {
        printError("vtrace: \(path): \(error)")
    } else {
        printError("vtrace: \(error)")
    }
}
