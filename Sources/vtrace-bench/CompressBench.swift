//! What zstd costs on a recorded trace's own chunks, one setting at a time:
//! `vtrace-bench --compress TRACE LEVEL own|dfast [CHUNKS] [--as 1.N]` (tools/writer-cost.sh).
//!
//! The writer's cost follows the content (docs/performance.md, issue 24,
//! session 10): a live run's chunks change from minute to minute, so an A/B
//! of two writer settings in two live runs compares two contents. This
//! compresses the same chunks, decompressed first, with one setting;
//! under callgrind only `compressAll` is counted (tools/writer-cost.sh).

import TraceFormat

/// The chunks' contents (at most `limit` chunks), decompressed, or with
/// `minor` their events encoded again as format 1.`minor` (the same events
/// in another format: a format's cost on one content).
func chunkContents(path: String, limit: Int, minor: UInt16? = nil) throws -> (contents: [[UInt8]], events: UInt64) {
    let reader = try TraceReader(path: path)
    let decompressor = ZstdDecompressor()
    var contents: [[UInt8]] = []
    var events: UInt64 = 0
    for i in reader.chunks.indices.prefix(limit) {
        if let minor {
            contents.append(try reencoded(reader.decoder(i), minor: minor))
            events += UInt64(reader.chunks[i].eventCount)
            continue
        }
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

/// The events of `d`'s chunk encoded as format 1.`minor`.
func reencoded(_ d: ChunkDecoder, minor: UInt16) throws -> [UInt8] {
    var d = d
    let r = TraceVersion.records(minor: minor)
    var e = ChunkEncoder(firstEvent: d.firstEvent, baseTime: d.baseTime, checkpoint: d.checkpoint, counters: d.startCounters,
                         capacity: 2 * d.buffer.count + 4096, repeats: r.repeats, predicts: r.predicts, recalls: r.recalls, cursors: r.cursors)
    let room = d.buffer.room
    while let ev = try d.next() {
        if case .chain(let queue, let head, let count) = ev.body {
            e.chain(nic: ev.nic, queue: queue, head: head, count: count) { i in
                let t = d.descriptor(i)
                return (t.addr, t.len, t.flags, t.next)
            }
        } else {
            e.append(ev.body.mapBytes { UnsafeRawBufferPointer(rebasing: room[$0]) }, nic: ev.nic, vcpu: ev.vcpu, time: ev.time)
        }
    }
    if d.flags.contains(.endsInsideAccess) { e.markEndsInsideAccess() }
    return e.content
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
func compressBenchmark(path: String, level: Int32, finder: MatchFinderChooser.Finder, limit: Int, minor: UInt16? = nil) throws {
    let (contents, events) = try chunkContents(path: path, limit: limit, minor: minor)
    let compressor = ZstdCompressor(level: level, contentChecksum: false)
    compressor.setFinder(finder)
    let compressed = try compressAll(contents, compressor)
    print(contents.count, events, contents.reduce(0) { $0 + $1.count }, compressed)
}
