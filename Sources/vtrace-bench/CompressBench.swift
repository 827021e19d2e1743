//! What zstd costs on a recorded trace's own chunks, one setting at a time:
//! `vtrace-bench --compress TRACE LEVEL own|dfast [CHUNKS]` (tools/writer-cost.sh).
//!
//! The writer's cost follows the content (docs/performance.md, issue 24,
//! session 10): a live run's chunks change from minute to minute, so an A/B
//! of two writer settings in two live runs compares two contents. This
//! compresses the same chunks, decompressed first, with one setting;
//! under callgrind only `compressAll` is counted (tools/writer-cost.sh).

import TraceFormat

/// The chunks' contents (at most `limit` chunks), decompressed.
func chunkContents(path: String, limit: Int) throws -> (contents: [[UInt8]], events: UInt64) {
    let reader = try TraceReader(path: path)
    let decompressor = ZstdDecompressor()
    var contents: [[UInt8]] = []
    var events: UInt64 = 0
    for i in reader.chunks.indices.prefix(limit) {
        let frame = try reader.compressedChunk(i)
        var content = [UInt8](repeating: 0, count: Int(reader.chunks[i].uncompressedSize))
        try frame.withUnsafeBytes { raw in
            try content.withUnsafeMutableBytes { out in try decompressor.decompress(raw, into: out) }
        }
        contents.append(content)
        events += UInt64(reader.chunks[i].eventCount)
    }
    return (contents, events)
}

/// Compresses every content with `compressor`; the total compressed bytes.
@inline(never)
func compressAll(_ contents: [[UInt8]], _ compressor: ZstdCompressor) throws -> Int {
    var out: [UInt8] = []
    var total = 0
    for c in contents {
        total += try c.withUnsafeBytes { try compressor.compress($0, into: &out) }
    }
    return total
}

/// Prints "chunks events uncompressed compressed" for `path`'s chunks at `level` with `finder`.
func compressBenchmark(path: String, level: Int32, finder: MatchFinderChooser.Finder, limit: Int) throws {
    let (contents, events) = try chunkContents(path: path, limit: limit)
    let compressor = ZstdCompressor(level: level, contentChecksum: false)
    compressor.setFinder(finder)
    let compressed = try compressAll(contents, compressor)
    print(contents.count, events, contents.reduce(0) { $0 + $1.count }, compressed)
}
