//! Errors reading a trace: what is wrong, where (byte offset, chunk), what to do.

/// A trace that cannot be read, or a part of it that cannot. Every case names
/// the byte offset in the file and, where it applies, the chunk.
public enum TraceError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file is not a vtrace trace (no header frame at `offset`).
    case notATrace(offset: Int)
    /// A major version this reader does not read.
    case unsupportedVersion(major: UInt16, minor: UInt16)
    /// Bytes that contradict the format.
    case corrupt(offset: Int, chunk: Int?, String)
    /// The file ends inside something (the recorder died or the copy was cut).
    case truncated(offset: Int, chunk: Int?, String)
    /// An event number past the end of the trace.
    case noSuchEvent(UInt64, events: Range<UInt64>)
    /// The operating system refused a file operation.
    case io(path: String, String)
    /// Compression or decompression failed.
    case compression(offset: Int, chunk: Int?, String)

    public var description: String {
        func at(_ offset: Int, _ chunk: Int?) -> String {
            "at byte \(offset)" + (chunk.map { " (chunk \($0))" } ?? "")
        }
        switch self {
        case .notATrace(let o): return "not a vtrace trace: no vtrace header frame at byte \(o)"
        case .unsupportedVersion(let major, let minor):
            return "trace format \(major).\(minor) is not supported: this vtrace reads format \(TraceVersion.major).x"
                + (major > TraceVersion.major ? " (a newer vtrace wrote it; upgrade vtrace)" : " (an older vtrace wrote it)")
        case .corrupt(let o, let c, let what): return "corrupt trace \(at(o, c)): \(what)"
        case .truncated(let o, let c, let what): return "truncated trace \(at(o, c)): \(what)"
        case .noSuchEvent(let n, let events):
            return events.isEmpty ? "no event \(n): the trace has no events"
                : "no event \(n): the trace has \(events.count) events (\(events.lowerBound)...\(events.upperBound - 1))"
        case .io(let path, let what): return "\(path): \(what)"
        case .compression(let o, let c, let what): return "compressed data \(at(o, c)) is bad: \(what)"
        }
    }
}
