//! Opens a trace: header, index (or recovery of a killed recorder's chunks), chunks by event number.

/// What state a trace file is in.
public enum TraceCompleteness: Hashable, Sendable {
    /// Finished cleanly: the index and footer are present and consistent.
    case complete
    /// The recorder stopped before writing the index (killed, crashed, or still
    /// running): these chunks were recovered; `lostBytes` at the end were not
    /// a complete chunk.
    case incomplete(lostBytes: Int, reason: String)
}

/// Reads a trace from any ``TraceSource``, with bounded memory: the index
/// (44 bytes per chunk) plus one chunk at a time.
public final class TraceReader {
    public let source: TraceSource
    public let header: TraceHeader
    public let chunks: [ChunkEntry]
    public let completeness: TraceCompleteness
    /// The number after the last event (the total of events, unless the
    /// trace is a window that starts at `firstEvent`).
    public let eventCount: UInt64
    /// The first event's number: 0, or where a flight recorder's window starts.
    public var firstEvent: UInt64 { chunks.first?.firstEvent ?? header.firstEvent }
    /// The numbers of the events the file holds.
    public var events: Range<UInt64> { firstEvent..<max(firstEvent, eventCount) }
    /// Bytes of the header frame.
    public let headerSize: Int
    let decompressor = ZstdDecompressor()
    /// Room for one chunk's entry frame and compressed bytes (`withCompressedChunk`).
    private var compressed = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    deinit { compressed.deallocate() }

    /// Whether decompression also verifies zstd's content checksum of each
    /// chunk (default true). Every chunk's compressed bytes are checked
    /// against the index's CRC-32 either way; replay turns this off (a frame
    /// whose bytes are intact decodes to one content), `vtrace verify` keeps it on.
    public var verifiesContentChecksums = true {
        didSet { decompressor.verifyContentChecksum(verifiesContentChecksums) }
    }

    public convenience init(path: String) throws(TraceError) {
        try self.init(source: try FileTraceSource(path: path))
    }

    public init(source: TraceSource) throws(TraceError) {
        self.source = source
        // Header frame.
        let first = try source.read(at: 0, count: 8)
        guard first.count == 8 else {
            if first.isEmpty { throw TraceError.truncated(offset: 0, chunk: nil, "the file is empty") }
            throw TraceError.notATrace(offset: 0)
        }
        let magic = Self.u32(first, 0), length = Int(Self.u32(first, 4))
        guard magic == TraceLayout.headerFrameMagic else { throw TraceError.notATrace(offset: 0) }
        guard length <= TraceLayout.maxHeaderSize else {
            throw TraceError.corrupt(offset: 4, chunk: nil, "header frame claims \(length) bytes (limit \(TraceLayout.maxHeaderSize))")
        }
        let payload = try source.read(at: 8, count: length)
        guard payload.count == length else {
            throw TraceError.truncated(offset: 8 + payload.count, chunk: nil, "the file ends inside the header")
        }
        var decoded: Result<TraceHeader, TraceError> = .failure(.notATrace(offset: 0))
        payload.withUnsafeBytes { raw in
            do throws(TraceError) { decoded = .success(try TraceHeader.decode(raw, fileOffset: 8)) } catch { decoded = .failure(error) }
        }
        header = try decoded.get()
        headerSize = 8 + length
        if let indexed = try Self.readIndex(source, after: headerSize, firstEvent: header.firstEvent) {
            chunks = indexed
            completeness = .complete
        } else {
            let (found, lost, reason) = try Self.scan(source, from: headerSize, firstEvent: header.firstEvent)
            chunks = found
            completeness = .incomplete(lostBytes: lost, reason: reason)
        }
        // A window of a longer recording starts at a checkpoint: replay restores it.
        if header.firstEvent != 0, let first = chunks.first, !first.hasCheckpoint {
            throw TraceError.corrupt(offset: Int(first.offset), chunk: 0, "the trace's window starts at event \(header.firstEvent), but its first chunk has no checkpoint to start from")
        }
        eventCount = chunks.last.map { $0.endEvent } ?? header.firstEvent
    }

    /// A reader of the same trace for another thread: the same header and
    /// chunks (not read again), its own handle on the bytes and its own
    /// decompressor. Nil when the source cannot be opened twice.
    public func reopened() throws(TraceError) -> TraceReader? {
        guard let other = try source.reopened() else { return nil }
        return TraceReader(source: other, header: header, chunks: chunks, completeness: completeness, eventCount: eventCount, headerSize: headerSize)
    }

    private init(source: TraceSource, header: TraceHeader, chunks: [ChunkEntry], completeness: TraceCompleteness, eventCount: UInt64, headerSize: Int) {
        self.source = source
        self.header = header
        self.chunks = chunks
        self.completeness = completeness
        self.eventCount = eventCount
        self.headerSize = headerSize
    }

    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }

    static func u64(_ b: [UInt8], _ at: Int) -> UInt64 { UInt64(u32(b, at)) | UInt64(u32(b, at + 4)) << 32 }

    /// The index from the footer, or nil when there is no footer (an incomplete trace).
    static func readIndex(_ source: TraceSource, after headerEnd: Int, firstEvent: UInt64) throws(TraceError) -> [ChunkEntry]? {
        let size = source.size
        guard size >= headerEnd + TraceLayout.frameHeaderSize + TraceLayout.footerSize else { return nil }
        let footerAt = size - TraceLayout.footerSize
        let footer = try source.read(at: footerAt, count: TraceLayout.footerSize)
        guard footer.count == TraceLayout.footerSize, u32(footer, 20) == TraceLayout.footerMagic else { return nil }
        let count = Int(u32(footer, 0))
        guard count <= TraceLayout.maxChunks else {
            throw TraceError.corrupt(offset: footerAt, chunk: nil, "footer claims \(count) chunks")
        }
        guard u32(footer, 12) == 1 else {
            throw TraceError.corrupt(offset: footerAt + 12, chunk: nil, "footer flags are 0x\(String(u32(footer, 12), radix: 16)), expected 0x1")
        }
        let bodySize = count * TraceLayout.entrySize
        let frameAt = footerAt - bodySize - TraceLayout.frameHeaderSize
        guard frameAt >= headerEnd else {
            throw TraceError.corrupt(offset: footerAt, chunk: nil, "footer claims \(count) chunks; the index cannot fit before it")
        }
        let frameHeader = try source.read(at: frameAt, count: TraceLayout.frameHeaderSize)
        guard u32(frameHeader, 0) == TraceLayout.indexFrameMagic, Int(u32(frameHeader, 4)) == bodySize + TraceLayout.footerSize else {
            throw TraceError.corrupt(offset: frameAt, chunk: nil, "the index frame is not where the footer says")
        }
        let body = try source.read(at: frameAt + TraceLayout.frameHeaderSize, count: bodySize)
        let crc = u32(footer, 16)
        guard CRC32.checksum(body) == crc else {
            throw TraceError.corrupt(offset: frameAt, chunk: nil, "index checksum mismatch")
        }
        var entries: [ChunkEntry] = []
        entries.reserveCapacity(count)
        body.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            for _ in 0..<count { if let e = try? ChunkEntry.decode(&r) { entries.append(e) } }
        }
        var expectedOffset = headerEnd
        var expectedEvent = firstEvent
        for (i, e) in entries.enumerated() {
            let at = frameAt + TraceLayout.frameHeaderSize + i * TraceLayout.entrySize
            guard e.offset == UInt64(expectedOffset + TraceLayout.frameHeaderSize + TraceLayout.entrySize) else {
                throw TraceError.corrupt(offset: at, chunk: i, "index entry places the chunk at \(e.offset), expected \(expectedOffset + 52)")
            }
            guard e.firstEvent == expectedEvent else {
                throw TraceError.corrupt(offset: at, chunk: i, "index entry starts at event \(e.firstEvent), expected \(expectedEvent)")
            }
            guard Int(e.uncompressedSize) <= TraceLayout.chunkHardLimit else {
                throw TraceError.corrupt(offset: at, chunk: i, "chunk claims \(e.uncompressedSize) uncompressed bytes (limit \(TraceLayout.chunkHardLimit))")
            }
            expectedOffset = Int(e.offset) + Int(e.compressedSize)
            guard expectedOffset <= frameAt else {
                throw TraceError.corrupt(offset: at, chunk: i, "chunk runs past the index")
            }
            expectedEvent = e.endEvent
        }
        guard expectedOffset == frameAt else {
            throw TraceError.corrupt(offset: expectedOffset, chunk: nil, "\(frameAt - expectedOffset) unindexed bytes before the index")
        }
        let total = u64(footer, 4)
        guard total == expectedEvent &- firstEvent else {
            throw TraceError.corrupt(offset: footerAt, chunk: nil, "footer counts \(total) events, the index \(expectedEvent &- firstEvent)")
        }
        // A recorder finishes a trace only between accesses: a complete trace
        // whose last chunk ends inside one lost its end.
        if let last = entries.last, last.endsInsideAccess {
            throw TraceError.corrupt(offset: frameAt + TraceLayout.frameHeaderSize + (entries.count - 1) * TraceLayout.entrySize, chunk: entries.count - 1,
                                     "the trace is complete, but its last chunk ends inside an access (the events that finish it are missing)")
        }
        return entries
    }

    /// Recovers the chunks of a trace without an index by walking entry + chunk pairs.
    static func scan(_ source: TraceSource, from start: Int, firstEvent: UInt64) throws(TraceError) -> ([ChunkEntry], Int, String) {
        var entries: [ChunkEntry] = []
        var at = start
        var expectedEvent = firstEvent
        let size = source.size
        while at < size {
            let head = try source.read(at: at, count: TraceLayout.frameHeaderSize + TraceLayout.entrySize)
            if head.count < TraceLayout.frameHeaderSize {
                return (entries, size - at, "the file ends inside a frame header at byte \(at)")
            }
            let magic = u32(head, 0)
            if magic == TraceLayout.indexFrameMagic {
                if at + TraceLayout.frameHeaderSize + Int(u32(head, 4)) > size {
                    return (entries, size - at, "the file ends inside the index (the recorder died while finishing)")
                }
                throw TraceError.corrupt(offset: at, chunk: nil, "an index frame is present but the footer is damaged")
            }
            guard magic == TraceLayout.entryFrameMagic, u32(head, 4) == UInt32(TraceLayout.entrySize) else {
                throw TraceError.corrupt(offset: at, chunk: entries.count, "expected a chunk entry frame, found magic 0x\(String(magic, radix: 16))")
            }
            if head.count < TraceLayout.frameHeaderSize + TraceLayout.entrySize {
                return (entries, size - at, "the file ends inside the entry of chunk \(entries.count) at byte \(at)")
            }
            var entry: ChunkEntry?
            head.withUnsafeBytes { raw in
                var r = ByteReader(raw, from: TraceLayout.frameHeaderSize)
                entry = try? ChunkEntry.decode(&r)
            }
            let e = entry!
            let chunkAt = at + TraceLayout.frameHeaderSize + TraceLayout.entrySize
            guard e.offset == UInt64(chunkAt), e.firstEvent == expectedEvent,
                  Int(e.uncompressedSize) <= TraceLayout.chunkHardLimit else {
                throw TraceError.corrupt(offset: at, chunk: entries.count, "chunk entry does not fit the chunks before it")
            }
            if chunkAt + Int(e.compressedSize) > size {
                return (entries, size - at, "the file ends inside chunk \(entries.count) (\(size - chunkAt) of \(e.compressedSize) bytes present)")
            }
            entries.append(e)
            expectedEvent = e.endEvent
            at = chunkAt + Int(e.compressedSize)
        }
        return (entries, 0, "the recorder stopped after a complete chunk, before writing the index")
    }

    /// The chunk holding event `number` (binary search over the index).
    public func chunkIndex(containing number: UInt64) -> Int? {
        var lo = 0, hi = chunks.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if chunks[mid].endEvent <= number { lo = mid + 1 } else { hi = mid }
        }
        return lo < chunks.count && chunks[lo].firstEvent <= number ? lo : nil
    }

    /// The nearest chunk at or before `index` that starts with a checkpoint.
    public func checkpointChunk(atOrBefore index: Int) -> Int? {
        var i = index
        while i >= 0 {
            if chunks[i].hasCheckpoint { return i }
            i -= 1
        }
        return nil
    }

    /// Checks the entry frame written before chunk `index` against the index
    /// (in a complete trace the index is authoritative; this finds damage to the copy).
    public func checkEntryFrame(_ index: Int) throws(TraceError) {
        let at = Int(chunks[index].offset) - TraceLayout.entrySize - TraceLayout.frameHeaderSize
        try checkEntryFrame(index, try source.read(at: at, count: TraceLayout.frameHeaderSize + TraceLayout.entrySize)[...])
    }

    /// Checks `raw`, the bytes of chunk `index`'s entry frame: its magic, its
    /// length and its entry must be the index's (an unknown frame there, even
    /// a skippable one, is corrupt: docs/trace-format.md).
    func checkEntryFrame(_ index: Int, _ raw: ArraySlice<UInt8>) throws(TraceError) {
        let e = chunks[index]
        let at = Int(e.offset) - TraceLayout.entrySize - TraceLayout.frameHeaderSize
        var w = ByteWriter()
        w.fixed(TraceLayout.entryFrameMagic)
        w.fixed(UInt32(TraceLayout.entrySize))
        e.encode(into: &w)
        guard raw.elementsEqual(w.bytes) else {
            let first = zip(raw, w.bytes).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? raw.count
            throw TraceError.corrupt(offset: at + first, chunk: index, "the entry frame before the chunk differs from the index")
        }
    }

    /// The compressed bytes of chunk `index`, checked against the index's CRC
    /// (read with the entry frame before it, which is checked too).
    public func compressedChunk(_ index: Int) throws(TraceError) -> [UInt8] {
        try withCompressedChunk(index) { Array($0) }
    }

    /// Calls `body` with chunk `index`'s compressed frame, read (with its
    /// entry frame, both checked) into memory this reader keeps and reuses
    /// chunk after chunk: no allocation, no zeroing, no copy per chunk.
    func withCompressedChunk<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) -> R) throws(TraceError) -> R {
        let e = chunks[index]
        let entryFrame = TraceLayout.frameHeaderSize + TraceLayout.entrySize
        let total = entryFrame + Int(e.compressedSize)
        if compressed.count < total {
            compressed.deallocate()
            compressed = .allocate(byteCount: total, alignment: 16)
        }
        let room = UnsafeMutableRawBufferPointer(rebasing: compressed[..<total])
        let got = try source.read(at: Int(e.offset) - entryFrame, into: room)
        guard got == total else {
            throw TraceError.truncated(offset: Int(e.offset) - entryFrame + got, chunk: index, "the chunk is cut short")
        }
        try checkEntryFrame(index, Array(room[..<entryFrame])[...])
        let frame = UnsafeRawBufferPointer(rebasing: room[entryFrame...])
        guard CRC32.checksum(frame) == e.crc else {
            throw TraceError.corrupt(offset: Int(e.offset), chunk: index, "chunk checksum mismatch (the bytes changed after recording)")
        }
        return body(frame)
    }

    /// Decompresses chunk `index` into `buffer`: refilled when nothing else
    /// holds it (no decoder over it is alive), a new buffer otherwise.
    func fill(_ buffer: inout ChunkBuffer?, chunk index: Int) throws(TraceError) {
        let e = chunks[index]
        if buffer == nil || !isKnownUniquelyReferenced(&buffer!) { buffer = ChunkBuffer(capacity: Int(e.uncompressedSize)) }
        var failure: ZstdError?
        let target = buffer!
        try withCompressedChunk(index) { raw in
            do throws(ZstdError) {
                try target.fill(count: Int(e.uncompressedSize)) { (out: UnsafeMutableRawBufferPointer) throws(ZstdError) in
                    try decompressor.decompress(raw, into: out)
                }
            } catch { failure = error }
        }
        if let failure { throw TraceError.compression(offset: Int(e.offset), chunk: index, failure.message) }
    }

    /// A decoder positioned at the start of chunk `index`.
    public func decoder(_ index: Int) throws(TraceError) -> ChunkDecoder {
        var buffer: ChunkBuffer?
        return try decoder(index, reusing: &buffer)
    }

    /// A decoder positioned at the start of chunk `index`, decompressing into
    /// `buffer` when no other decoder still uses it (see ``ChunkBuffer``).
    public func decoder(_ index: Int, reusing buffer: inout ChunkBuffer?) throws(TraceError) -> ChunkDecoder {
        let e = chunks[index]
        try fill(&buffer, chunk: index)
        do throws(ChunkDecodeError) {
            let d = try ChunkDecoder(buffer: buffer!, nics: header.nics, formatMinor: header.minorVersion)
            guard d.firstEvent == e.firstEvent else {
                throw ChunkDecodeError(offset: 0, "chunk starts at event \(d.firstEvent), the index says \(e.firstEvent)")
            }
            guard d.baseTime == e.firstTime else {
                throw ChunkDecodeError(offset: 0, "chunk's base timestamp is \(d.baseTime), the index says \(e.firstTime)")
            }
            guard d.flags.rawValue == UInt64(e.flags) else {
                throw ChunkDecodeError(offset: 0, "chunk flags are 0x\(String(d.flags.rawValue, radix: 16)), the index says 0x\(String(e.flags, radix: 16))")
            }
            return d
        } catch {
            throw TraceError.corrupt(offset: Int(e.offset), chunk: index, error.description)
        }
    }
}

extension ChunkDecoder {
    /// The next event of chunk `index` of `reader`, with a decoding problem
    /// reported as a ``TraceError`` naming the chunk and its file offset.
    /// At the chunk's end, the events decoded must be as many as its index
    /// entry says (otherwise event numbers would overlap the next chunk's).
    public mutating func next(chunk index: Int, of reader: TraceReader) throws(TraceError) -> TraceEvent? {
        let event: TraceEvent?
        do throws(ChunkDecodeError) { event = try next() } catch {
            throw TraceError.corrupt(offset: Int(reader.chunks[index].offset), chunk: index, error.description)
        }
        let entry = reader.chunks[index]
        if event == nil, decoded != UInt64(entry.eventCount) {
            throw TraceError.corrupt(offset: Int(entry.offset), chunk: index, "the chunk holds \(decoded) events, its index entry \(entry.eventCount)")
        }
        return event
    }
}
