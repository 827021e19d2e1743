//! The recorded events a replay walks: streamed a window at a time, or
//! decoded whole for random access.

#if canImport(Glibc)
import Glibc
#endif
import TraceFormat
import VirtioCore

/// The recorded events a replay walks, shared by the replay memory and observers.
///
/// Two modes. Streaming (the fast path): events are decoded straight from the
/// loaded chunks' contents, a window of 256 at a time (in place, into a block
/// the cursor owns), as the replay consumes them; or, with a
/// ``ChunkPipeline``, taken in blocks a second thread decoded ahead. Materialized: the whole
/// loaded segment is decoded into `events` for random access (the debugger, divergence reports,
/// serving reads from the memory image). A divergence switches to it; the
/// decoding is deterministic, so both modes see the same events.
final class ReplayCursor {
    /// The loaded segment: one decoder per chunk, positioned at its start.
    private(set) var decoders: [ChunkDecoder] = []
    private(set) var chunkNumbers: [Int] = []
    /// Per slot, the content's first byte (stable while `decoders` holds the buffers).
    private var bases: [UnsafeRawPointer] = []
    /// Streaming state: the decoder being consumed (an empty one when done),
    /// its slot, and the block of decoded events being consumed
    /// (`window[windowIndex..<windowCount]` are `block.events` not consumed yet).
    private var stream = ChunkDecoder()
    private var streamSlot = 0
    static let windowSize = 256
    /// The cursor's own block (one-thread streaming).
    private let ownBlock = EventBlock(capacity: ReplayCursor.windowSize)
    private var block: EventBlock
    private var window: UnsafeMutablePointer<RecordedEvent>
    private var windowIndex = 0
    private var windowCount = 0
    /// The block's chunk has no events after it.
    private var blockEndsChunk = false
    /// Where the events of chunks come from when a second thread decodes them
    /// (nil: decoded here), and per loaded slot whether that chunk is the pipeline's.
    var pipeline: ChunkPipeline?
    private var pipelined: [Bool] = []

    init() {
        block = ownBlock
        window = ownBlock.events
    }

    /// A chunk that failed to decode: the events end there, and the replay throws this.
    private(set) var decodeError: TraceError?
    private var chunkOffsets: [Int] = []

    /// Materialized state.
    private var materialized = false
    private var events: [RecordedEvent] = []
    private var descriptors: [TraceDescriptor] = []
    /// Events of the segment consumed so far (the index of `current` in `events`).
    private(set) var position = 0
    private(set) var divergence: Divergence? {
        didSet { updateHalted() }
    }
    /// Whether `divergence` is set.
    private(set) var diverged = false
    /// Set when the recording ended inside the access being replayed: the
    /// device's further actions are not checked, its reads fail.
    private(set) var cut: RecordingCut? {
        didSet { updateHalted() }
    }
    /// Whether outputs are no longer checked: a divergence or the recording's end
    /// inside an access (a plain flag for the per-event checks).
    private(set) var halted = false
    private func updateHalted() {
        diverged = divergence != nil
        halted = diverged || cut != nil || abandoned
    }
    /// Set when a debugger leaves the replay at a stop (to go back, or to jump
    /// elsewhere): nothing is checked, reads fault, the drain pauses at its
    /// next boundary, and the devices are thrown away.
    private(set) var abandoned = false {
        didSet { updateHalted() }
    }
    /// Whether the loaded segment ends where the recording ends inside an
    /// access (a cut recording: running out of events there is its end, not a divergence).
    private var endsWithCut = false
    /// The NIC whose drain the chunk after the loaded segment resumes from
    /// its checkpoint (-1: none): that NIC's drain pauses at the boundary
    /// where the segment's events run out.
    private var pauseNIC = -1
    /// Per NIC, the number of the event that began the access in progress.
    private(set) var accessEvents: [UInt64] = []
    /// The number the next event would have (the end of the loaded segment, once it is consumed).
    private var endEvent: UInt64 = 0
    /// The NIC whose access is executing.
    private var nic = 0
    /// Called once, at the moment a divergence is found (inside the device's call).
    var onDivergence: ((Divergence) -> Void)?
    /// Per NIC, the device state at the last access boundary (readable from a
    /// debugger while a device is inside an access)...
    private(set) var boundaryStates: [VirtioNetState] = []
    /// ...and the segment position (index of the next event) it was taken at.
    private(set) var boundaryPositions: [Int] = []
    /// Reads the recording did not have at that point, and how each was served.
    private(set) var imageNotes: [String] = []

    /// Where a loaded segment ends, as the replay must know it.
    struct SegmentEnd {
        /// The number the event after the segment has.
        var endEvent: UInt64
        /// Events in the whole trace (to tell a segment's end from the recording's).
        var totalEvents: UInt64
        /// The segment ends where the recording ends inside an access.
        var endsWithCut: Bool
        /// The NIC whose drain the next chunk's checkpoint resumes (-1: none;
        /// `anyNIC`: the next chunk could not be read).
        var pauseNIC: Int
        static let anyNIC = -2
    }

    /// Drops the loaded segment (so its decompression buffers can be refilled).
    func unload() {
        decoders.removeAll(keepingCapacity: true)
        stream = ChunkDecoder()
        chunkNumbers.removeAll(keepingCapacity: true)
        chunkOffsets.removeAll(keepingCapacity: true)
        pipelined.removeAll(keepingCapacity: true)
        releaseBlock()
    }

    /// Loads a segment, chunk `chunk` (at file offset `offset`) decoded by
    /// `decoder`, one `add` per chunk; then `start(end:)`. `pipelined`: the
    /// pipeline handed the decoder over and decodes the chunk's events.
    func add(_ decoder: ChunkDecoder, chunk: Int, offset: Int, pipelined: Bool = false) {
        decoders.append(decoder)
        chunkNumbers.append(chunk)
        chunkOffsets.append(offset)
        self.pipelined.append(pipelined)
    }

    /// Starts the loaded segment from its first event, streaming.
    func start(end: SegmentEnd) {
        endEvent = end.endEvent
        totalEvents = end.totalEvents
        endsWithCut = end.endsWithCut
        pauseNIC = end.pauseNIC
        reset()
    }

    /// The devices as the segment's checkpoint restored them, and per NIC the
    /// number of the event that began its access in progress.
    func restored(states: [VirtioNetState], accessEvents: [UInt64]) {
        boundaryStates = states
        boundaryPositions = Array(repeating: 0, count: states.count)
        self.accessEvents = accessEvents
    }

    /// NIC `n`'s state at an access boundary.
    @inline(__always)
    func reachedBoundary(nic n: Int, state: VirtioNetState) {
        // Past a divergence the device went on unchecked: the boundary stays the last checked one.
        if n < boundaryStates.count && !diverged {
            boundaryStates[n] = state
            boundaryPositions[n] = position
        }
    }

    /// NIC `n` executes next: the drain it resumes, or (with `cause`) the
    /// access that recorded event begins.
    @inline(__always)
    func enter(nic n: Int, cause: UInt64? = nil) {
        nic = n
        if let cause { accessEvents[n] = cause }
    }

    /// The segment's events consumed so far (decodes the segment whole).
    var consumed: ArraySlice<RecordedEvent> {
        materialize()
        return events[..<min(position, events.count)]
    }

    /// The segment's events from the current one on (decodes the segment whole).
    var remaining: ArraySlice<RecordedEvent> {
        materialize()
        return events[min(position, events.count)...]
    }

    /// The event just consumed was wrong: the divergence is at it.
    func divergeAtPrevious(actual: String) {
        guard !halted, position > 0 else { return }
        materialize()
        position -= 1
        diverge(expected: text(events[position]), actual: actual)
    }

    private func reset() {
        materialized = false
        events.removeAll(keepingCapacity: true)
        descriptors.removeAll(keepingCapacity: true)
        position = 0
        divergence = nil
        cut = nil
        abandoned = false
        divergedNIC = nil
        decodeError = nil
        imageNotes.removeAll()
        streamSlot = 0
        blockEndsChunk = false
        stream = decoders.first ?? ChunkDecoder()
        bases = decoders.map(\.contentBase)
        refill()
    }

    /// Takes the next block of events (out of line: once per block): decoded
    /// here into the cursor's own block, or by the pipeline's thread. A chunk
    /// that does not decode ends the events after those before the fault.
    @inline(never)
    private func refill() {
        windowIndex = 0
        windowCount = 0
        while streamSlot < decoders.count {
            if blockEndsChunk {
                nextChunk()
                continue
            }
            releaseBlock()
            let slot = Int32(truncatingIfNeeded: streamSlot)
            if pipelined[streamSlot], let pipeline {
                block = pipeline.nextBlock(chunk: chunkNumbers[streamSlot])
                block.setSlot(slot)
            } else {
                ownBlock.fill(from: &stream, slot: slot)
            }
            window = block.events
            windowCount = block.count
            blockEndsChunk = block.endsChunk
            if let error = block.error {
                decodeError = .corrupt(offset: chunkOffsets[streamSlot], chunk: chunkNumbers[streamSlot], error.description)
                streamSlot = decoders.count
                return
            }
            if windowCount > 0 { return }
        }
    }

    /// Hands a pipeline's block back for refilling; the cursor's own block is current again.
    private func releaseBlock() {
        if block !== ownBlock {
            pipeline?.recycle(block)
            block = ownBlock
            window = ownBlock.events
            windowIndex = 0
            windowCount = 0
        }
    }

    @inline(never)
    private func nextChunk() {
        streamSlot += 1
        blockEndsChunk = false
        stream = streamSlot < decoders.count ? decoders[streamSlot] : ChunkDecoder()
    }

    /// Decodes the whole loaded segment into `events` (once); `position` keeps its meaning.
    func materialize() {
        guard !materialized else { return }
        materialized = true
        for slot in decoders.indices {
            var d = decoders[slot]
            let chunk = chunkNumbers[slot]
            do throws(ChunkDecodeError) {
                try d.decodeAll { e, descriptors in
                    let start = self.descriptors.count
                    if case .chain = e.body { self.descriptors.append(contentsOf: descriptors) }
                    self.events.append(RecordedEvent(event: e, slot: Int32(truncatingIfNeeded: slot), descriptorStart: Int32(truncatingIfNeeded: start)))
                }
            } catch {
                if decodeError == nil { decodeError = .corrupt(offset: chunkOffsets[slot], chunk: chunk, error.description) }
                break
            }
        }
        stream = ChunkDecoder()
        streamSlot = decoders.count
        releaseBlock()
        windowIndex = 0
        windowCount = 0
    }

    var current: RecordedEvent? {
        @inline(__always) get {
            if materialized { return position < events.count ? events[position] : nil }
            return windowIndex < windowCount ? window[windowIndex] : nil
        }
    }

    /// Consumes the current event.
    @inline(__always)
    func advance() {
        position += 1
        if !materialized {
            windowIndex += 1
            if windowIndex == windowCount { refill() }
        }
    }

    /// Descriptor `i` of chain event `e`.
    @inline(__always)
    func descriptor(_ e: RecordedEvent, _ i: Int) -> TraceDescriptor {
        materialized ? descriptors[Int(e.descriptorStart) + i] : block.descriptors[Int(e.descriptorStart) + i]
    }

    /// Serves a read the recording does not have here from the best-known image
    /// of guest memory: the latest recorded read or write (before the cursor, in
    /// the loaded segment) that covers the whole range. Only on divergence paths.
    func serveFromImage(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Bool {
        materialize()
        let n = UInt64(buffer.count)
        var i = min(position, events.count)
        while i > 0 {
            i -= 1
            let e = events[i]
            switch e.event.body {
            case .memoryRead(let a, _, let ok, let r), .memoryWrite(let a, _, let ok, let r):
                // Only the bytes stored: a snaplen's missing payload is no image of memory.
                guard ok, address >= a, address - a + n <= UInt64(r.count) else { continue }
                let from = r.lowerBound + Int(address - a)
                if let base = buffer.baseAddress { base.copyMemory(from: bases[Int(e.slot)] + from, byteCount: buffer.count) }
                if imageNotes.count < 20 {
                    imageNotes.append("read of \(n) bytes at 0x\(String(address, radix: 16)) was not in the recording here; served from the bytes recorded at event \(e.event.number)")
                }
                return true
            default: continue
            }
        }
        if imageNotes.count < 20 {
            imageNotes.append("read of \(n) bytes at 0x\(String(address, radix: 16)) was not in the recording here, and nothing recorded covers [0x\(String(address, radix: 16)), 0x\(String(address &+ n, radix: 16))): served as a fault")
        }
        return false
    }

    /// The payload range of a memory event.
    static func range(_ e: TraceEvent) -> Range<Int> {
        switch e.body {
        case .memoryRead(_, _, _, let r), .memoryWrite(_, _, _, let r): return r
        default: return 0..<0
        }
    }

    /// Where the payload bytes `r` of memory event `e` start.
    @inline(__always)
    func payload(_ e: RecordedEvent, _ r: Range<Int>) -> UnsafeRawPointer { bases[Int(e.slot)] + r.lowerBound }

    /// The event as `vtrace dump` shows it.
    func text(_ e: RecordedEvent) -> String {
        EventFormatting.summary(e.event, bytes: decoders[Int(e.slot)].bytes(Self.range(e.event)),
                                descriptors: (0..<e.descriptorCount).map { descriptor(e, $0) })
    }

    func diverge(expected: String, actual: String) {
        guard !diverged else { return }
        materialize()
        let e = current
        divergence = Divergence(event: e?.event.number ?? (events.last.map { $0.event.number + 1 } ?? 0),
                                chunk: chunkNumbers[Int((e ?? events.last)?.slot ?? 0)],
                                nic: e?.event.nic ?? nic, expected: expected, actual: actual)
        // A debugger called here (and `stopState` after) sees the device inside the diverging access.
        divergedNIC = nic
        executingNIC = nic
        defer { executingNIC = nil }
        onDivergence?(divergence!)
    }

    /// Consumes the current event if `matches` accepts it; otherwise records a
    /// divergence (or, at `stopAt`, stops first).
    @inline(__always)
    func expect(_ actual: @autoclosure () -> String, _ matches: (RecordedEvent) -> Bool) {
        guard !halted else { return }
        // A debugger's stop comes first (out of line; the replay goes on after it, or is abandoned).
        if stopAt != .max, atStop, !reachStop(insideAccess: true) { return }
        if let e = current, e.event.nic == nic, matches(e) {
            advance()
        } else {
            mismatch(actual)
        }
    }

    /// The current event is not what the device did (out of line: only on
    /// divergence, or at the end of a recording cut inside this access).
    @inline(never)
    func mismatch(_ actual: () -> String) {
        if current == nil && endsWithCut {
            endRecording(nic: nic, atChainBoundary: false)
            return
        }
        let expected = current.map { text($0) } ?? (endEvent < totalEvents
            ? "the end of the segment (the next chunk starts at event \(endEvent) with a checkpoint)" : "the end of the recording")
        diverge(expected: expected, actual: actual())
    }

    // MARK: Stops (a debugger's)

    /// The replay stops before consuming the event with this number
    /// (`UInt64.max`: nowhere): inside the device call about to produce it,
    /// or before the access it begins.
    var stopAt: UInt64 = .max
    /// Called at the stop, with whether a device is inside an access; returns
    /// whether the replay goes on (having moved `stopAt` past the current
    /// event) or is abandoned.
    var onStop: ((_ insideAccess: Bool) -> Bool)?
    /// While `onStop` or `onDivergence` runs: the NIC inside an access (nil: the stop is between accesses).
    private(set) var executingNIC: Int?
    /// The NIC whose access diverged (the replay stays inside it).
    private(set) var divergedNIC: Int?

    /// Whether the current event is at or past `stopAt` (reads its number only).
    var atStop: Bool {
        if materialized { return position < events.count && events[position].event.number >= stopAt }
        return windowIndex < windowCount && window[windowIndex].event.number >= stopAt
    }

    /// The replay is at `stopAt`: hands over to `onStop`. Returns whether to go on.
    @inline(never)
    func reachStop(insideAccess: Bool) -> Bool {
        let at = current?.event.number ?? endEvent
        guard let onStop else { stopAt = .max; return true }
        materialize()
        executingNIC = insideAccess ? nic : nil
        defer { executingNIC = nil }
        guard onStop(insideAccess) else {
            abandoned = true
            return false
        }
        if stopAt <= at { stopAt = .max }
        return true
    }

    /// The recording ends here, inside NIC `n`'s access: the replay stops.
    func endRecording(nic n: Int, atChainBoundary: Bool) {
        let start = n < accessEvents.count ? accessEvents[n] : endEvent
        cut = RecordingCut(nic: n, accessEvent: start, endEvent: endEvent, chunk: chunkNumbers.last ?? 0, atChainBoundary: atChainBoundary)
    }
    /// Events in the whole trace (to tell a segment's end from the recording's).
    private var totalEvents: UInt64 = 0

    /// Whether a drain of the executing NIC pauses here, between two chains:
    /// where the segment's events end and the next chunk resumes it, where a
    /// cut recording ends, or (once the recording's end cut the access
    /// mid-chain) at the first boundary after it.
    @inline(__always)
    func pausesDrain(nic n: Int, queue: UInt16) -> Bool {
        if cut != nil || abandoned { return true }
        guard !diverged, current == nil else { return false }
        if n == pauseNIC || pauseNIC == SegmentEnd.anyNIC { return true }
        if endsWithCut {
            endRecording(nic: n, atChainBoundary: true)
            return true
        }
        return false
    }
}
