import Foundation
@testable import TraceFormat

/// Writes a trace of one NIC, its header adjusted by `adjust`, holding
/// `chunk`; returns the path (for the caller to remove) and the index entries.
func oneChunkTrace(_ name: String, _ chunk: ChunkEncoder, adjust: (inout TraceHeader) -> Void = { _ in }) throws -> (path: String, entries: [ChunkEntry]) {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(getpid()).vtrace").path
    var header = TraceHeader()
    header.nics = 1
    adjust(&header)
    let writer = try TraceWriter(path: path, header: header, level: 1)
    try writer.submit(chunk)
    return (path, try writer.finish())
}
