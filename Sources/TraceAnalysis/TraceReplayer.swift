//! Re-executes recorded MMIO accesses against fresh device cores and checks
//! every output against the recording, in order.

#if canImport(Glibc)
import Glibc
#endif
import TraceFormat
import TraceMapping
import VirtioCore

/// Replays a trace segment by segment: from a checkpoint chunk up to (not
/// including) the next checkpoint chunk, then compares the devices' states
/// with that checkpoint.
public final class TraceReplayer {
    public let reader: TraceReader
    let cursor = ReplayCursor()
    let memory: ReplayMemory
    public private(set) var devices: [VirtioNetDevice<ReplayMemory, ReplayObserver>] = []

    /// Faults the replayed devices run with.
    public let faults: DeviceFaults
    /// Called the moment a divergence is found, while the device is still inside
    /// the access that diverged (a debugger's backtrace shows where).
    public var onDivergence: ((Divergence) -> Void)? {
        get { cursor.onDivergence }
        set { cursor.onDivergence = newValue }
    }
    public init(reader: TraceReader, faults: DeviceFaults = DeviceFaults()) {
        self.reader = reader
        self.faults = faults
        memory = ReplayMemory(cursor: cursor)
    }

    /// The queue count the header's configuration implies.
    var queueCount: Int { reader.header.netConfig.queueCount }

    /// Restores the devices from the checkpoint of the loaded segment's first chunk.
    func restoreFromLoadedCheckpoint() throws(TraceError) {
        install(try checkpointStarts(cursor.decoders[0], chunk: cursor.chunkNumbers[0]))
    }

    /// New devices, each where `nics` says (and the cursor told so).
    func install(_ nics: [NICPosition]) {
        devices = nics.indices.map { n in
            var dev = VirtioNetDevice(config: reader.header.netConfig, memory: nics[n].memoryBound ? memory : nil,
                                      observer: ReplayObserver(cursor: cursor, nic: n, counters: nics[n].state.counters), faults: faults)
            dev.restore(nics[n].state)
            return dev
        }
        cursor.restored(states: nics.map(\.state), accessEvents: nics.map(\.accessEvent))
    }

    /// Where the devices stand now.
    var positions: [NICPosition] {
        devices.indices.map { devices[$0].position(accessEvent: cursor.accessEvents[$0]) }
    }

    /// Where every NIC starts, from the checkpoint of chunk `index` (decoded by `decoder`).
    func checkpointStarts(_ decoder: ChunkDecoder, chunk index: Int) throws(TraceError) -> [NICPosition] {
        guard let checkpoint = decoder.checkpoint else {
            throw TraceError.corrupt(offset: Int(reader.chunks[index].offset), chunk: index, "chunk has no checkpoint to start from")
        }
        var starts: [NICPosition] = []
        for (n, c) in checkpoint.enumerated() {
            guard let state = c.deviceState(queueCount: queueCount) else {
                throw TraceError.corrupt(offset: Int(reader.chunks[index].offset), chunk: index, "checkpoint of nic\(n) is not a valid device state")
            }
            if let d = c.drain, d.accessEvent > reader.chunks[index].firstEvent {
                throw TraceError.corrupt(offset: Int(reader.chunks[index].offset), chunk: index,
                                         "checkpoint of nic\(n) resumes a drain begun at event \(d.accessEvent), after the chunk's first event \(reader.chunks[index].firstEvent)")
            }
            starts.append(NICPosition(state: state, memoryBound: c.memoryBound, accessEvent: c.drain?.accessEvent ?? reader.chunks[index].firstEvent))
        }
        return starts
    }

    /// Whether the recording ends inside an access: its last chunk says so
    /// (format 1.2), or, in an incomplete trace of an older format (whose
    /// chunks do not say), the recorder may have died inside one.
    var recordingEndsInsideAccess: Bool {
        guard let last = reader.chunks.last else { return false }
        if last.endsInsideAccess { return true }
        return reader.completeness != .complete && reader.header.minorVersion < 2
    }

    /// The decoder of the chunk after the last segment, kept from its
    /// checkpoint comparison (and whether the pipeline decodes its events).
    var prefetched: (chunk: Int, decoder: ChunkDecoder, pipelined: Bool)?
    /// Decompresses and decodes the next chunks on a second thread, during `replayAll(threads: 2)`.
    var pipeline: ChunkPipeline?
    /// Decompression buffers, reused from segment to segment: one per loaded chunk, one for the prefetch.
    var buffers: [ChunkBuffer?] = []
    var prefetchBuffer: ChunkBuffer?

    /// Loads chunks `range` as the cursor's segment and starts streaming it.
    /// - Parameter tolerant: a next chunk that does not decode is not an
    ///   error yet (stepping: the events before it can still be reached).
    func load(_ range: Range<Int>, tolerant: Bool = false) throws(TraceError) {
        // Drop the old segment's decoders first, so their buffers can be refilled.
        cursor.unload()
        let (loaded, end) = try segmentDecoders(range, tolerant: tolerant)
        start(loaded, range, end)
    }

    /// Hands the decoders of chunks `range` to the cursor and starts streaming them.
    func start(_ loaded: [(decoder: ChunkDecoder, pipelined: Bool)], _ range: Range<Int>, _ end: ReplayCursor.SegmentEnd) {
        for (i, l) in zip(range, loaded) {
            cursor.add(l.decoder, chunk: i, offset: Int(reader.chunks[i].offset), pipelined: l.pipelined)
        }
        cursor.start(end: end)
    }

    /// The decoders of chunks `range`, each at its chunk's start, and where
    /// the segment ends (the next chunk's decoder is kept in `prefetched`).
    func segmentDecoders(_ range: Range<Int>, tolerant: Bool = false) throws(TraceError)
        -> ([(decoder: ChunkDecoder, pipelined: Bool)], ReplayCursor.SegmentEnd) {
        while buffers.count < range.count { buffers.append(nil) }
        var loaded: [(decoder: ChunkDecoder, pipelined: Bool)] = []
        for (slot, i) in range.enumerated() {
            if slot == 0, let p = prefetched, p.chunk == i {
                loaded.append((p.decoder, p.pipelined && pipeline != nil))
                swap(&buffers[0], &prefetchBuffer)
            } else {
                let (decoder, pipelined) = try chunkDecoder(i, reusing: &buffers[slot])
                loaded.append((decoder, pipelined))
            }
        }
        prefetched = nil
        // Where the segment ends: the next chunk's checkpoint (decoded now, and
        // kept as the next segment's start) may resume a drain from here.
        var end = ReplayCursor.SegmentEnd(endEvent: reader.chunks[range.upperBound - 1].endEvent, totalEvents: reader.eventCount,
                                          endsWithCut: range.upperBound == reader.chunks.count && recordingEndsInsideAccess, pauseNIC: -1)
        if range.upperBound < reader.chunks.count {
            do throws(TraceError) {
                let (next, pipelined) = try chunkDecoder(range.upperBound, reusing: &prefetchBuffer)
                prefetched = (range.upperBound, next, pipelined)
                end.pauseNIC = next.checkpoint?.firstIndex { $0.drain != nil } ?? -1
            } catch {
                if !tolerant { throw error }
                // Which drain it resumes is unknown: any drain pauses where the
                // events end, and loading that chunk then reports the error.
                end.pauseNIC = ReplayCursor.SegmentEnd.anyNIC
            }
        }
        return (loaded, end)
    }

    /// The decoder of chunk `i`: the pipeline's (which may decode its events
    /// too: `pipelined`), or read here into `buffer`; either way the same
    /// decoder, or the same error.
    func chunkDecoder(_ i: Int, reusing buffer: inout ChunkBuffer?) throws(TraceError) -> (ChunkDecoder, pipelined: Bool) {
        if let handed = pipeline?.decoder(i) { return (try handed.result.get(), handed.decodesEvents) }
        return (try reader.decoder(i, reusing: &buffer), false)
    }

    /// The end of the segment starting at checkpoint chunk `first`: the next checkpoint chunk, or the trace's end.
    func segmentEnd(from first: Int) -> Int {
        var end = first + 1
        while end < reader.chunks.count && !reader.chunks[end].hasCheckpoint { end += 1 }
        return end
    }

    /// The result of replaying one segment.
    public struct SegmentResult {
        public var firstChunk: Int
        public var endChunk: Int
        public var events: Int
        public var divergence: Divergence?
        /// Per NIC: the replayed state differs from the next checkpoint (nil if none follows).
        public var checkpointMismatch: String?
        /// The recording ended inside an access, here.
        public var cut: RecordingCut?
    }

    /// Replays from checkpoint chunk `first` to the next checkpoint chunk.
    /// - Parameter continuing: keep the devices as the previous segment left
    ///   them instead of restoring the checkpoint (faults count from the start).
    public func replaySegment(from first: Int, continuing: Bool = false) throws(TraceError) -> SegmentResult {
        let end = segmentEnd(from: first)
        cursor.unload()
        let (loaded, segmentEnd) = try segmentDecoders(first..<end)
        if let r = try replayDirectly(loaded.map(\.decoder), first..<end, segmentEnd, continuing: continuing) { return r }
        start(loaded, first..<end, segmentEnd)
        if !continuing || devices.isEmpty {
            try restoreFromLoadedCheckpoint()
        } else {
            cursor.restored(states: devices.map(\.state), accessEvents: cursor.accessEvents)
        }
        run()
        if let error = cursor.decodeError { throw error }
        var result = SegmentResult(firstChunk: first, endChunk: end, events: cursor.position, divergence: cursor.divergence, cut: cursor.cut)
        if !cursor.diverged { result.checkpointMismatch = checkpointMismatch(first, end, positions) }
        return result
    }

    /// Whether segments are replayed directly from their records where they
    /// can be (``DirectReplay``): with no faults, no stop and no cut at the
    /// segment's end. Off, every segment is replayed event by event; the
    /// outcome is the same either way (tested).
    public var replaysDirectly = true
    /// Whether segments can be replayed directly in this replay: asked for,
    /// and no faults (they count from the start) and no stop to honour.
    var replaysSegmentsDirectly: Bool { replaysDirectly && faults.isEmpty && stopAt == .max }
    /// Segments settled directly so far (the rest were replayed event by event).
    public private(set) var directSegments = 0

    /// Replays chunks `range` directly from `decoders` (see
    /// ``replaysDirectly``): the segment's result, with the devices left as
    /// the event-by-event replay leaves them; nil when it did not settle the
    /// segment (a divergence, a record that does not decode, a cut, a stop),
    /// which is then replayed event by event from the same start.
    func replayDirectly(_ decoders: [ChunkDecoder], _ range: Range<Int>, _ end: ReplayCursor.SegmentEnd,
                        continuing: Bool) throws(TraceError) -> SegmentResult? {
        guard replaysSegmentsDirectly, !end.endsWithCut, end.pauseNIC != ReplayCursor.SegmentEnd.anyNIC,
              let first = decoders.first else { return nil }
        let starts = continuing && !devices.isEmpty ? positions : try checkpointStarts(first, chunk: range.lowerBound)
        guard let done = DirectReplay.run(decoders: decoders, eventCounts: range.map { UInt64(reader.chunks[$0].eventCount) },
                                          pauseNIC: end.pauseNIC, starts: starts, config: reader.header.netConfig) else { return nil }
        directSegments += 1
        // The devices as the event-by-event replay would have left them.
        install(done.nics)
        var result = SegmentResult(firstChunk: range.lowerBound, endChunk: range.upperBound, events: Int(done.events))
        result.checkpointMismatch = checkpointMismatch(range.lowerBound, range.upperBound, done.nics)
        return result
    }

    /// Whether the positions a segment from chunk `first` replayed to differ
    /// from the checkpoint of chunk `end` (decoded and kept in `prefetched`), and how.
    func checkpointMismatch(_ first: Int, _ end: Int, _ nics: [NICPosition]) -> String? {
        guard let (chunk, next, _) = prefetched, chunk == end, let cps = next.checkpoint else { return nil }
        for (n, p) in nics.enumerated() where n < cps.count {
            let replayed = NICCheckpoint(p.state, memoryBound: p.memoryBound, accessEvent: p.accessEvent)
            if replayed != cps[n] {
                return "nic\(n): the state replayed from chunk \(first) differs from the checkpoint of chunk \(end)"
                    + Self.difference(replayed, cps[n])
            }
        }
        return nil
    }

    /// What differs between a replayed and a recorded checkpoint, for the report.
    static func difference(_ replayed: NICCheckpoint, _ recorded: NICCheckpoint) -> String {
        if replayed.drain != recorded.drain {
            func text(_ d: DrainCheckpoint?) -> String {
                d.map { "a drain of q\($0.queue) paused (begun at event \($0.accessEvent))" } ?? "no drain paused"
            }
            return " (recorded: \(text(recorded.drain)); replayed: \(text(replayed.drain)))"
        }
        if replayed.counters != recorded.counters { return " (counters)" }
        if replayed.queues != recorded.queues { return " (queues)" }
        return ""
    }

    /// An event number with the event as `vtrace dump` shows it.
    public struct NumberedText: Hashable, Sendable {
        public var number: UInt64
        public var text: String
    }

    /// What the replay looked like where it diverged: for a report.
    public struct DivergenceContext: Sendable {
        public var divergence: Divergence
        /// The MMIO access that caused the diverging event (dump text), and its event number.
        public var cause: NumberedText?
        /// The chain being processed, if any (dump text).
        public var chain: String?
        /// Up to `before` events before the divergence.
        public var previous: [NumberedText]
        /// Reads the replay served from the best-known memory image, or could not.
        public var memoryNotes: [String] = []
        /// Per NIC: counters as recorded at the divergence, and as replayed.
        public var recorded: [NetCounters]
        public var replayed: [NetCounters]
        public var time: UInt64
    }

    /// Details of the current divergence (call after a segment diverged).
    public func divergenceContext(before: Int = 6) -> DivergenceContext? {
        guard let d = cursor.divergence, let first = cursor.decoders.first else { return nil }
        let checkpointCounters = first.startCounters
        let consumed = cursor.consumed
        var cause: NumberedText?
        var chain: String?
        for e in consumed.reversed() {
            if chain == nil, e.event.nic == d.nic, case .chain = e.event.body { chain = "#\(e.event.number) " + cursor.text(e) }
            if e.event.nic == d.nic, e.event.kind == .mmioRead || e.event.kind == .mmioWrite {
                cause = NumberedText(number: e.event.number, text: cursor.text(e))
                break
            }
        }
        let previous = consumed.suffix(before).map { NumberedText(number: $0.event.number, text: "nic\($0.event.nic) " + cursor.text($0)) }
        var recorded = checkpointCounters.map { NetCounters(values: $0) ?? NetCounters() }
        for e in consumed {
            if case .counter(let index, let value) = e.event.body, let c = NetCounter(ordinal: index), e.event.nic < recorded.count {
                recorded[e.event.nic][c] = value
            }
        }
        let time = cursor.remaining.first?.event.time ?? consumed.last?.event.time ?? 0
        return DivergenceContext(divergence: d, cause: cause, chain: chain, previous: previous, memoryNotes: cursor.imageNotes,
                                 recorded: recorded, replayed: devices.map(\.observer.counters), time: time)
    }

    /// Runs the loaded events: a drain the segment's checkpoint left paused
    /// goes on first, then each MMIO access is re-executed; everything
    /// between accesses must match.
    func run() {
        resumePausedDrain()
        while !cursor.halted, cursor.current != nil { executeOne() }
    }

    /// Resumes the drain a checkpoint left paused (at most one NIC has one),
    /// if the segment has events for it. Returns whether it did.
    @discardableResult
    func resumePausedDrain() -> Bool {
        guard !cursor.halted, cursor.current != nil, let n = devices.firstIndex(where: { $0.state.drain != nil }) else { return false }
        cursor.enter(nic: n)
        devices[n].resumeDrain()
        return true
    }

    /// Re-executes the next recorded cause (an MMIO access or a memory binding)
    /// and checks what it produced; a recorded output where a cause is
    /// expected is a divergence.
    func executeOne() {
        guard var r = cursor.current else { return }
        if r.event.number >= cursor.stopAt {
            guard cursor.reachStop(insideAccess: false), let now = cursor.current else { return }
            r = now  // the stop decodes the segment whole: the event's descriptors moved
        }
        let e = r.event
        cursor.enter(nic: e.nic, cause: e.isCause ? e.number : nil)
        switch e.body {
        case .mmioRead(let offset, let width, let value):
            cursor.advance()
            let got = devices[e.nic].read(offset: offset, width: width)
            if got != value { cursor.divergeAtPrevious(actual: "read 0x\(String(got, radix: 16))") }
        case .mmioWrite(let offset, let width, let value):
            cursor.advance()
            devices[e.nic].write(offset: offset, width: width, value: value)
        case .memoryBinding(let bound):
            cursor.advance()
            devices[e.nic].memory = bound ? memory : nil
        case .marker:
            // A recorder's mark between two accesses: nothing for the device to do.
            cursor.advance()
        case .transport(let code, let queue, let values):
            guard let op = TransportOperation(traceCode: code, queue: queue, values: values) else {
                cursor.diverge(expected: cursor.text(r), actual: "an operation this build does not know")
                return
            }
            cursor.advance()
            devices[e.nic].apply(op)
        default:
            cursor.diverge(expected: cursor.text(r), actual: "produced nothing more for the access before it")
        }
    }

    // MARK: Stepping (the interactive debugger)

    /// The chunk after the loaded segment, if any.
    var nextSegmentChunk: Int?

    /// Starts stepping at checkpoint chunk `chunk` (the nearest checkpoint at or before it).
    public func begin(at chunk: Int) throws(TraceError) {
        guard let first = reader.checkpointChunk(atOrBefore: min(chunk, reader.chunks.count - 1)) else {
            throw TraceError.corrupt(offset: 0, chunk: chunk, "no checkpoint at or before chunk \(chunk)")
        }
        let end = segmentEnd(from: first)
        try loadForStepping(first..<end)
        try restoreFromLoadedCheckpoint()
        nextSegmentChunk = end < reader.chunks.count ? end : nil
    }

    /// Loads a segment decoded whole, for random access while stepping.
    func loadForStepping(_ range: Range<Int>) throws(TraceError) {
        try load(range, tolerant: true)
        cursor.materialize()
        if let error = cursor.decodeError { throw error }
    }

    /// Executes one access (and checks its outputs). Loads the next segment when
    /// the current one is done. Returns the number of the event executed, or nil
    /// at the end of the trace or after a divergence.
    public func stepAccess() throws(TraceError) -> UInt64? {
        guard !cursor.halted else { return nil }
        try advanceSegmentIfNeeded()
        guard let number = cursor.current?.event.number else { return nil }
        if resumePausedDrain() { return number }
        executeOne()
        // The outputs of this access are consumed by the observers during the call.
        return number
    }

    /// Loads the next segment (carrying the devices on) when the current one is done.
    public func advanceSegmentIfNeeded() throws(TraceError) {
        guard !cursor.halted, cursor.current == nil, let next = nextSegmentChunk else { return }
        let end = segmentEnd(from: next)
        try loadForStepping(next..<end)
        cursor.restored(states: devices.map(\.state), accessEvents: cursor.accessEvents)
        nextSegmentChunk = end < reader.chunks.count ? end : nil
    }

    /// The replay stops before consuming the event with this number (see
    /// `onStop`); `UInt64.max`: nowhere.
    public var stopAt: UInt64 {
        get { cursor.stopAt }
        set { cursor.stopAt = newValue }
    }

    /// Called when the replay reaches `stopAt`, with whether a device is
    /// inside an access (then the call comes from inside the device code that
    /// is about to produce the event: a debugger's backtrace shows it). The
    /// devices must not be read there; `stopState()` can be. Return true to
    /// go on (after moving `stopAt` on, or it is cleared), false to abandon
    /// the replay: the device finishes its access unchecked and stepping ends
    /// until `restart(at:)`.
    public var onStop: ((_ insideAccess: Bool) -> Bool)? {
        get { cursor.onStop }
        set { cursor.onStop = newValue }
    }

    /// Whether the replay was abandoned at a stop.
    public var abandoned: Bool { cursor.abandoned }

    /// Restores the nearest checkpoint at or before event `target` and arms
    /// a stop there: `runForward()` then replays at most the events between
    /// that checkpoint and `target`. With faults the replay starts over at the
    /// first chunk instead: a fault counts the device's actions from the
    /// start (its Nth RX delivery), which a later checkpoint does not hold.
    public func restart(at target: UInt64) throws(TraceError) {
        let last = max(reader.eventCount, 1) - 1
        try begin(at: faults.isEmpty ? reader.chunkIndex(containing: min(target, last)) ?? 0 : 0)
        stopAt = target
    }

    /// Replays access after access, across segments, until the end, a
    /// divergence or a stop that abandons the replay.
    public func runForward() throws(TraceError) {
        while try stepAccess() != nil {}
    }

    /// The divergence found while stepping, if any.
    public var divergence: Divergence? { cursor.divergence }
    /// Where the recording ended inside an access, once the replay reached it.
    public var cut: RecordingCut? { cursor.cut }

    /// The last chain event before the cursor, as dump text.
    public var lastChain: NumberedText? {
        guard let e = cursor.consumed.last(where: { if case .chain = $0.event.body { return true } else { return false } }) else { return nil }
        return NumberedText(number: e.event.number, text: cursor.text(e))
    }

    /// The next recorded event (what the replay will match next), as dump text.
    public var nextText: NumberedText? { cursor.current.map { NumberedText(number: $0.event.number, text: "nic\($0.event.nic) " + cursor.text($0)) } }
}
