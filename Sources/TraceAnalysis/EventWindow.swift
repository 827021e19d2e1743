//! A few consecutive chunks decoded whole, for random access by event number:
//! what `why` walks back and forth around one counter transition.

import TraceFormat

/// One event of an ``EventWindow``: where its payload and descriptors are.
struct WindowEvent {
    var event: TraceEvent
    /// The window's decoder that holds its payload bytes.
    var slot: Int
    /// A chain event's descriptors in the window's flat list.
    var descriptors: Range<Int>
    /// A counter event's value before it.
    var previous: UInt64
}

/// The events of chunks `chunks` of a trace, decoded whole (one chunk, or a
/// few when a chain's processing crosses a chunk boundary).
struct EventWindow {
    let reader: TraceReader
    private(set) var chunks: ClosedRange<Int>
    private(set) var events: [WindowEvent] = []
    private var decoders: [ChunkDecoder] = []
    private var descriptorList: [TraceDescriptor] = []

    init(_ reader: TraceReader, chunks: ClosedRange<Int>) throws(TraceError) {
        self.reader = reader
        self.chunks = chunks
        for c in chunks {
            var d = try reader.decoder(c)
            let slot = decoders.count
            var values = d.startCounters
            while let e = try d.next(chunk: c, of: reader) {
                var range = descriptorList.endIndex..<descriptorList.endIndex
                var previous: UInt64 = 0
                switch e.body {
                case .chain:
                    descriptorList += d.descriptors
                    range = range.lowerBound..<descriptorList.endIndex
                case .counter(let index, let value) where e.nic < values.count && index < values[e.nic].count:
                    previous = values[e.nic][index]
                    values[e.nic][index] = value
                default: break
                }
                events.append(WindowEvent(event: e, slot: slot, descriptors: range, previous: previous))
            }
            decoders.append(d)
        }
    }

    /// The window with one more chunk before it (the same window at the trace's start).
    func withEarlierChunk() throws(TraceError) -> EventWindow {
        chunks.lowerBound == 0 ? self : try EventWindow(reader, chunks: (chunks.lowerBound - 1)...chunks.upperBound)
    }

    /// The window with one more chunk after it (the same window at the trace's end).
    func withLaterChunk() throws(TraceError) -> EventWindow {
        chunks.upperBound + 1 >= reader.chunks.count ? self : try EventWindow(reader, chunks: chunks.lowerBound...(chunks.upperBound + 1))
    }

    /// The position of event `number` in `events`.
    func index(of number: UInt64) -> Int? {
        guard let first = events.first?.event.number, number >= first, number - first < UInt64(events.count) else { return nil }
        return Int(number - first)
    }

    /// Whether the window's first chunk continues an access (and maybe a
    /// chain) begun in the chunk before it, without a checkpoint between.
    var startsInsideAChain: Bool {
        reader.chunks[chunks.lowerBound].flags & UInt32(ChunkFlags.continuation.rawValue) != 0
    }

    /// Whether the chunk after the window continues a chain the window ends
    /// inside of: the window's last chunk ends inside an access, and the next
    /// one is there and continues it without a checkpoint (one cut between
    /// two chains starts with one).
    var nextChunkContinuesAChain: Bool {
        let next = chunks.upperBound + 1
        return reader.chunks[chunks.upperBound].endsInsideAccess && next < reader.chunks.count && !reader.chunks[next].hasCheckpoint
    }

    /// The checkpoint the window's first chunk starts with, if any.
    var firstCheckpoint: [NICCheckpoint]? { decoders.first?.checkpoint }

    /// The payload bytes of memory event `i`.
    func bytes(_ i: Int) -> ArraySlice<UInt8> {
        switch events[i].event.body {
        case .memoryRead(_, _, _, let r), .memoryWrite(_, _, _, let r): return decoders[events[i].slot].bytes(r)
        default: return []
        }
    }

    /// The descriptors of chain event `i`.
    func descriptors(_ i: Int) -> [TraceDescriptor] { Array(descriptorList[events[i].descriptors]) }

    /// Event `i` as `vtrace dump` shows it, without number, time and NIC.
    func summary(_ i: Int) -> String {
        EventFormatting.summary(events[i].event, bytes: bytes(i), descriptors: descriptors(i))
    }
}
