//! A trace around one chunk's uncompressed content: how fuzzers and tests
//! put hostile records in front of a replay, past the container's checksums.

import TraceFormat
import VirtioCore

extension TraceWriter {
    /// Writes `content` (a chunk's uncompressed content: its header,
    /// checkpoint or counters, then records) as the one chunk of a trace of
    /// `nics` NICs at `path`: the header's configuration has as many queue
    /// pairs as the first checkpoint's queues imply, the chunk keeps its
    /// first event number (the header's first event), and its index entry
    /// counts the events its records decode to before the end or an error.
    /// False when the content's own header does not decode (nothing written).
    /// The trace is of format 1.`minor` (the records are read as its).
    public static func writeOneChunk(content: [UInt8], nics: Int, minor: UInt16 = TraceVersion.minor, to path: String) throws(TraceError) -> Bool {
        guard let d = try? ChunkDecoder(buffer: ChunkBuffer(content), nics: nics, formatMinor: minor) else { return false }
        var counting = d
        var events: UInt64 = 0
        while (try? counting.next()) != nil { events += 1 }
        let queues = d.checkpoint?.first?.queues.count ?? 2
        var header = TraceHeader(config: NetConfig(queuePairs: queues > 2 ? (queues - 1) / 2 : 1), nics: nics, offeredFeatures: 0,
                                 regions: [MemoryRegion(base: 0, size: 1 << 30)])
        header.firstEvent = d.firstEvent
        header.minorVersion = minor
        let writer = try TraceWriter(path: path, header: header, level: 1)
        var chunk = ChunkEncoder(firstEvent: d.firstEvent, baseTime: d.baseTime, checkpoint: d.checkpoint, counters: d.startCounters)
        chunk.appendRaw(Array(content[d.position...]), events: events)
        try writer.submit(chunk)
        _ = try writer.finish()
        return true
    }
}
