//! Re-executes recorded MMIO accesses against fresh device cores and checks
//! every output against the recording, in order.

#if canImport(Glibc)
import Glibc
#endif
import TraceFormat
import VirtioCore

/// Where a recording ends inside an access: the recorder stopped (was
/// killed) in the middle of a drain. Replay stops there; it is not a divergence.
public struct RecordingCut: Hashable, Sendable, Encodable {
    public var nic: Int
    /// The event that began the access (its MMIO write or vhost-user kick).
    public var accessEvent: UInt64
    /// The first event the recording does not have.
    public var endEvent: UInt64
    /// The last chunk recorded.
    public var chunk: Int
    /// Whether the recording ends between two chains of the drain (else inside a chain).
    public var atChainBoundary: Bool
    /// Events of the access that were recorded (its cause included).
    public var eventsRecorded: UInt64 { endEvent >= accessEvent ? endEvent - accessEvent : 0 }

    /// One line for reports.
    public var description: String {
        "the recording ends inside the access at event \(accessEvent) (nic\(nic)): \(eventsRecorded) of its events recorded, "
            + (atChainBoundary ? "cut between two chains of its drain" : "cut inside a chain")
    }
}

/// The first point where a replay did not match its recording.
public struct Divergence: Error, Hashable, Sendable, CustomStringConvertible {
    /// The recorded event that did not match (or the first one not produced).
    public var event: UInt64
    public var chunk: Int
    public var nic: Int
    /// What the recording says, and what the replay did.
    public var expected: String
    public var actual: String

    public var description: String {
        "event \(event) (chunk \(chunk), nic\(nic)): expected \(expected); replay \(actual)"
    }
}

/// One recorded event, as plain values: its payload bytes stay in the
/// loaded chunk's buffer and a chain's descriptors in the decoder (streaming)
/// or the cursor's flat list (materialized), so copying one costs no
/// reference counting.
struct RecordedEvent {
    var event: TraceEvent
    /// Which loaded chunk holds it (and its payload).
    var slot: Int32
    /// Where its descriptors start in the materialized list.
    var descriptorStart: Int32

    var descriptorCount: Int {
        if case .chain(_, _, let n) = event.body { return n }
        return 0
    }
}

extension TraceEvent {
    /// Whether the replayer re-executes this event (an MMIO access, a
    /// vhost-user operation or a VMM memory binding); everything else is an
    /// output it checks.
    public var isCause: Bool { kind == .mmioRead || kind == .mmioWrite || kind == .memoryBinding || kind == .transport }
}

/// The recorded events a replay walks, shared by the replay memory and observers.
///
/// Two modes. Streaming (the fast path): events are decoded straight from the
/// loaded chunks' contents, a window of 256 at a time (in place, into memory
/// the cursor owns), as the replay consumes them. Materialized: the whole
/// loaded segment is decoded into `events` for random access (the debugger, divergence reports,
/// serving reads from the memory image). A divergence switches to it; the
/// decoding is deterministic, so both modes see the same events.
final class ReplayCursor {
    /// The loaded segment: one decoder per chunk, positioned at its start.
    var decoders: [ChunkDecoder] = []
    var chunkNumbers: [Int] = []
    /// Per slot, the content's first byte (stable while `decoders` holds the buffers).
    var bases: [UnsafeRawPointer] = []
    /// Streaming state: the decoder being consumed (an empty one when done),
    /// its slot, and the window of decoded events not yet consumed
    /// (`window[windowIndex..<windowCount]`) with their chains' descriptors.
    var stream = ChunkDecoder()
    var streamSlot = 0
    static let windowSize = 256
    let window = UnsafeMutablePointer<RecordedEvent>.allocate(capacity: ReplayCursor.windowSize)
    var windowIndex = 0
    var windowCount = 0
    var windowDescriptors: [TraceDescriptor] = []

    init() {
        window.initialize(repeating: RecordedEvent(event: TraceEvent(number: 0, time: 0, nic: 0, vcpu: 0, body: .reset), slot: 0, descriptorStart: 0),
                          count: Self.windowSize)
    }

    /// A chunk that failed to decode: the events end there, and the replay throws this.
    var decodeError: TraceError?
    var chunkOffsets: [Int] = []

    /// Materialized state.
    var materialized = false
    var events: [RecordedEvent] = []
    var descriptors: [TraceDescriptor] = []
    /// Events of the segment consumed so far (the index of `current` in `events`).
    var position = 0
    var divergence: Divergence? {
        didSet { updateHalted() }
    }
    /// Whether `divergence` is set.
    var diverged = false
    /// Set when the recording ended inside the access being replayed: the
    /// device's further actions are not checked, its reads fail.
    var cut: RecordingCut? {
        didSet { updateHalted() }
    }
    /// Whether outputs are no longer checked: a divergence or the recording's end
    /// inside an access (a plain flag for the per-event checks).
    var halted = false
    func updateHalted() {
        diverged = divergence != nil
        halted = diverged || cut != nil
    }
    /// Whether the loaded segment ends where the recording ends inside an
    /// access (a cut recording: running out of events there is its end, not a divergence).
    var endsWithCut = false
    /// The NIC whose drain the chunk after the loaded segment resumes from
    /// its checkpoint (-1: none): that NIC's drain pauses at the boundary
    /// where the segment's events run out.
    var pauseNIC = -1
    /// Per NIC, the number of the event that began the access in progress.
    var accessEvents: [UInt64] = []
    /// The number the next event would have (the end of the loaded segment, once it is consumed).
    var endEvent: UInt64 = 0
    /// The NIC whose access is executing.
    var nic = 0
    /// Called once, at the moment a divergence is found (inside the device's call).
    var onDivergence: ((Divergence) -> Void)?
    /// Per NIC, the device state at the last access boundary (readable from a
    /// debugger while a device is inside an access).
    var boundaryStates: [VirtioNetState] = []
    /// Reads the recording did not have at that point, and how each was served.
    var imageNotes: [String] = []

    deinit { window.deallocate() }

    /// Starts the loaded segment from its first event, streaming.
    func reset() {
        materialized = false
        events.removeAll(keepingCapacity: true)
        descriptors.removeAll(keepingCapacity: true)
        position = 0
        divergence = nil
        cut = nil
        decodeError = nil
        imageNotes.removeAll()
        streamSlot = 0
        stream = decoders.first ?? ChunkDecoder()
        bases = decoders.map(\.contentBase)
        refill()
    }

    /// Decodes the next window of events (out of line: once per window).
    @inline(never)
    func refill() {
        windowIndex = 0
        windowCount = 0
        windowDescriptors.removeAll(keepingCapacity: true)
        while windowCount < Self.windowSize && streamSlot < decoders.count {
            let slot = window + windowCount
            do throws(ChunkDecodeError) {
                if try stream.next(into: &slot.pointee.event) {
                    slot.pointee.slot = Int32(truncatingIfNeeded: streamSlot)
                    if case .chain(_, _, let n) = slot.pointee.event.body {
                        slot.pointee.descriptorStart = Int32(truncatingIfNeeded: windowDescriptors.count)
                        for i in 0..<n { windowDescriptors.append(stream.descriptor(i)) }
                    }
                    windowCount += 1
                    continue
                }
            } catch {
                decodeError = .corrupt(offset: chunkOffsets[streamSlot], chunk: chunkNumbers[streamSlot], error.description)
                streamSlot = decoders.count
                break
            }
            nextChunk()
        }
    }

    @inline(never)
    func nextChunk() {
        streamSlot += 1
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
        materialized ? descriptors[Int(e.descriptorStart) + i] : windowDescriptors[Int(e.descriptorStart) + i]
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
            case .memoryRead(let a, let len, let ok, let r), .memoryWrite(let a, let len, let ok, let r):
                guard ok, address >= a, address - a + n <= UInt64(len) else { continue }
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

    /// Calls `body` with the payload bytes of `e`.
    @inline(__always)
    func withBytes<T>(_ e: RecordedEvent, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        let r = Self.range(e.event)
        return body(UnsafeRawBufferPointer(start: bases[Int(e.slot)] + r.lowerBound, count: r.count))
    }

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
        onDivergence?(divergence!)
    }

    /// Consumes the current event if `matches` accepts it; otherwise records a divergence.
    @inline(__always)
    func expect(_ actual: @autoclosure () -> String, _ matches: (RecordedEvent) -> Bool) {
        guard !halted else { return }
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
            let start = nic < accessEvents.count ? accessEvents[nic] : endEvent
            cut = RecordingCut(nic: nic, accessEvent: start, endEvent: endEvent, chunk: chunkNumbers.last ?? 0, atChainBoundary: false)
            return
        }
        let expected = current.map { text($0) } ?? (pauseNIC >= 0 || !endsWithCut && endEvent < totalEvents
            ? "the end of the segment (the next chunk starts at event \(endEvent) with a checkpoint)" : "the end of the recording")
        diverge(expected: expected, actual: actual())
    }
    /// Events in the whole trace (to tell a segment's end from the recording's).
    var totalEvents: UInt64 = 0

    /// Whether a drain of the executing NIC pauses here, between two chains:
    /// where the segment's events end and the next chunk resumes it, where a
    /// cut recording ends, or (once the recording's end cut the access
    /// mid-chain) at the first boundary after it.
    @inline(__always)
    func pausesDrain(nic n: Int) -> Bool {
        if cut != nil { return true }
        guard !diverged, current == nil else { return false }
        if n == pauseNIC { return true }
        if endsWithCut {
            let start = n < accessEvents.count ? accessEvents[n] : endEvent
            cut = RecordingCut(nic: n, accessEvent: start, endEvent: endEvent, chunk: chunkNumbers.last ?? 0, atChainBoundary: true)
            return true
        }
        return false
    }
}

/// Guest memory during replay: reads return the recorded bytes, writes are
/// checked against the recorded ones.
public final class ReplayMemory: GuestMemory {
    let cursor: ReplayCursor
    init(cursor: ReplayCursor) { self.cursor = cursor }

    public func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) {
        var ok = false
        var matched = false
        if cursor.halted {
            // Past the recording's end nothing is served: the drain stops at its next pop.
            if cursor.cut != nil { throw GuestMemoryError(address: address, length: buffer.count) }
            // Past a divergence the recording no longer says what this read sees.
            if !cursor.serveFromImage(address, into: buffer) { throw GuestMemoryError(address: address, length: buffer.count) }
            return
        }
        cursor.expect("read \(buffer.count) bytes at 0x\(String(address, radix: 16))") { e in
            guard case .memoryRead(let a, let n, let recordedOK, _) = e.event.body, a == address, n == buffer.count else { return false }
            if recordedOK, let base = buffer.baseAddress {
                cursor.withBytes(e) { base.copyMemory(from: $0.baseAddress!, byteCount: n) }
            }
            ok = recordedOK
            matched = true
            return true
        }
        if !matched {
            if cursor.cut != nil { throw GuestMemoryError(address: address, length: buffer.count) }
            // The changed device core read something the recording never saw here.
            if !cursor.serveFromImage(address, into: buffer) { throw GuestMemoryError(address: address, length: buffer.count) }
            return
        }
        if !ok { throw GuestMemoryError(address: address, length: buffer.count) }
    }

    public func write(_ address: UInt64, from bytes: UnsafeRawBufferPointer) throws(GuestMemoryError) {
        var ok = false
        cursor.expect("wrote \(bytes.count) bytes at 0x\(String(address, radix: 16))") { e in
            guard case .memoryWrite(let a, let n, let recordedOK, _) = e.event.body, a == address, n == bytes.count,
                  cursor.withBytes(e, { n == 0 || memcmp($0.baseAddress!, bytes.baseAddress!, n) == 0 }) else { return false }
            ok = recordedOK
            return true
        }
        if !ok { throw GuestMemoryError(address: address, length: bytes.count) }
    }
}

/// Compares each device output with the next recorded event.
public struct ReplayObserver: DeviceObserver {
    let cursor: ReplayCursor
    let nic: Int
    /// The replayed counters, frozen at a divergence.
    public internal(set) var counters: NetCounters

    public static var observesAccessBoundaries: Bool { true }
    public mutating func accessBegan(state: VirtioNetState) {
        if nic < cursor.boundaryStates.count { cursor.boundaryStates[nic] = state }
    }
    public mutating func accessEnded(state: VirtioNetState) {
        if nic < cursor.boundaryStates.count { cursor.boundaryStates[nic] = state }
    }
    public static var observesDrainBoundaries: Bool { true }
    @inline(__always)
    public mutating func drainBoundary(_ position: DrainPosition) -> DrainBoundaryAction { cursor.pausesDrain(nic: nic) ? .pause : .goOn }

    public mutating func chainPopped(queue: UInt16, head: UInt16, descriptors: UnsafeBufferPointer<Descriptor>) {
        let c = cursor
        c.expect("popped chain q\(queue) head \(head) (\(descriptors.count) descriptors)") { e in
            guard case .chain(let q, let h, let n) = e.event.body, q == queue, h == head, n == descriptors.count else { return false }
            for i in 0..<n {
                let r = c.descriptor(e, i), d = descriptors[i]
                if r.addr != d.addr || r.len != d.len || r.flags != d.flags.rawValue || r.next != d.next { return false }
            }
            return true
        }
    }
    public mutating func usedPublished(queue: UInt16, id: UInt32, len: UInt32) {
        cursor.expect("published used q\(queue) id \(id) len \(len)") { e in
            if case .used(queue, id, len) = e.event.body { return true }
            return false
        }
    }
    public mutating func counterChanged(_ counter: NetCounter, value: UInt64) {
        let checked = !cursor.halted
        cursor.expect("set \(counter.name) = \(value)") { e in
            if case .counter(counter.ordinal, value) = e.event.body { return true }
            return false
        }
        // Matched, or the diverging value (shown beside the recorded one); never past the recording's end.
        if checked && cursor.cut == nil { counters[counter] = value }
    }
    public mutating func interruptRaised(_ kind: InterruptSignals) {
        cursor.expect("raised irq \(kind)") { e in
            if case .interrupt(kind.rawValue) = e.event.body { return true }
            return false
        }
    }
    public mutating func queuePoisoned(queue: UInt16, error: QueueError) {
        let (code, details) = PoisonCode.encode(error)
        cursor.expect("poisoned q\(queue): \(error)") { e in e.event.body == .poison(queue: queue, code: code, details: EventDetails(details)) }
    }
    public mutating func statusChanged(from old: UInt8, to new: UInt8) {
        cursor.expect("changed status \(DeviceStatus(rawValue: old)) -> \(DeviceStatus(rawValue: new))") { e in e.event.body == .status(old: old, new: new) }
    }
    public mutating func driverFeaturesChanged(from old: UInt64, to new: UInt64) {
        cursor.expect("changed driver features to 0x\(String(new, radix: 16))") { e in e.event.body == .features(old: old, new: new) }
    }
    public mutating func activeQueuePairsChanged(from old: UInt16, to new: UInt16) {
        cursor.expect("changed active pairs \(old) -> \(new)") { e in e.event.body == .pairs(old: old, new: new) }
    }
    public mutating func deviceReset() { cursor.expect("reset") { e in e.event.body == .reset } }
    public mutating func warning(_ warning: DeviceWarning) {
        let (code, details) = WarningCode.encode(warning)
        cursor.expect("warned: \(warning)") { e in e.event.body == .warning(code: code, details: EventDetails(details)) }
    }
}

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
    /// Called before each recorded MMIO access is re-executed, with the range
    /// of event numbers the access covers (itself and what it caused).
    public var beforeAccess: ((ClosedRange<UInt64>) -> Void)?
    /// Called the moment a divergence is found, while the device is still inside
    /// the access that diverged (a debugger's backtrace shows where).
    public var onDivergence: ((Divergence) -> Void)? {
        get { cursor.onDivergence }
        set { cursor.onDivergence = newValue }
    }
    /// Per NIC, the device state at the last access boundary; safe to read
    /// while a device is inside an access (a debugger stop).
    public var boundaryStates: [VirtioNetState] { cursor.boundaryStates }

    /// The recorded event the replay is at (the next one to match), if any.
    public var currentEvent: UInt64? { cursor.current?.event.number }

    public init(reader: TraceReader, faults: DeviceFaults = DeviceFaults()) {
        self.reader = reader
        self.faults = faults
        memory = ReplayMemory(cursor: cursor)
    }

    /// The queue count the header's configuration implies.
    var queueCount: Int { let p = reader.header.netConfig.effectiveQueuePairs; return Int(p) * 2 + (p > 1 ? 1 : 0) }

    /// Restores the devices from the checkpoint of the loaded segment's first chunk.
    func restoreFromLoadedCheckpoint() throws(TraceError) {
        let index = cursor.chunkNumbers[0]
        guard let checkpoint = cursor.decoders[0].checkpoint else {
            throw TraceError.corrupt(offset: Int(reader.chunks[index].offset), chunk: index, "chunk has no checkpoint to start from")
        }
        devices = []
        for (n, c) in checkpoint.enumerated() {
            guard let state = c.deviceState(queueCount: queueCount) else {
                throw TraceError.corrupt(offset: Int(reader.chunks[index].offset), chunk: index, "checkpoint of nic\(n) is not a valid device state")
            }
            if let d = c.drain, d.accessEvent > reader.chunks[index].firstEvent {
                throw TraceError.corrupt(offset: Int(reader.chunks[index].offset), chunk: index,
                                         "checkpoint of nic\(n) resumes a drain begun at event \(d.accessEvent), after the chunk's first event \(reader.chunks[index].firstEvent)")
            }
            var dev = VirtioNetDevice(config: reader.header.netConfig, memory: c.memoryBound ? memory : nil, observer: ReplayObserver(cursor: cursor, nic: n, counters: state.counters), faults: faults)
            dev.restore(state)
            devices.append(dev)
        }
        cursor.boundaryStates = devices.map(\.state)
        cursor.accessEvents = checkpoint.map { $0.drain?.accessEvent ?? reader.chunks[index].firstEvent }
    }

    /// Whether the recording ends inside an access: its last chunk says so
    /// (format 1.2), or, in an incomplete trace of an older format (whose
    /// chunks do not say), the recorder may have died inside one.
    var recordingEndsInsideAccess: Bool {
        guard let last = reader.chunks.last else { return false }
        if last.endsInsideAccess { return true }
        return reader.completeness != .complete && reader.header.minorVersion < 2
    }

    /// The decoder of the chunk after the last segment, kept from its checkpoint comparison.
    var prefetched: (chunk: Int, decoder: ChunkDecoder)?
    /// Decompression buffers, reused from segment to segment: one per loaded chunk, one for the prefetch.
    var buffers: [ChunkBuffer?] = []
    var prefetchBuffer: ChunkBuffer?

    /// Loads chunks `range` as the cursor's segment and starts streaming it.
    func load(_ range: Range<Int>) throws(TraceError) {
        // Drop the old segment's decoders first, so their buffers can be refilled.
        cursor.decoders.removeAll(keepingCapacity: true)
        cursor.stream = ChunkDecoder()
        cursor.chunkNumbers.removeAll(keepingCapacity: true)
        cursor.chunkOffsets.removeAll(keepingCapacity: true)
        while buffers.count < range.count { buffers.append(nil) }
        for (slot, i) in range.enumerated() {
            if slot == 0, let p = prefetched, p.chunk == i {
                cursor.decoders.append(p.decoder)
                swap(&buffers[0], &prefetchBuffer)
            } else {
                cursor.decoders.append(try reader.decoder(i, reusing: &buffers[slot]))
            }
            cursor.chunkNumbers.append(i)
            cursor.chunkOffsets.append(Int(reader.chunks[i].offset))
        }
        prefetched = nil
        // Where the segment ends: the next chunk's checkpoint (decoded now, and
        // kept as the next segment's start) may resume a drain from here.
        cursor.endEvent = reader.chunks[range.upperBound - 1].endEvent
        cursor.totalEvents = reader.eventCount
        cursor.endsWithCut = range.upperBound == reader.chunks.count && recordingEndsInsideAccess
        cursor.pauseNIC = -1
        if range.upperBound < reader.chunks.count {
            let next = try reader.decoder(range.upperBound, reusing: &prefetchBuffer)
            prefetched = (range.upperBound, next)
            cursor.pauseNIC = next.checkpoint?.firstIndex { $0.drain != nil } ?? -1
        }
        cursor.reset()
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
        try load(first..<end)
        if !continuing || devices.isEmpty { try restoreFromLoadedCheckpoint() }
        run()
        if let error = cursor.decodeError { throw error }
        var result = SegmentResult(firstChunk: first, endChunk: end, events: cursor.position, divergence: cursor.divergence, cut: cursor.cut)
        if !cursor.diverged, let (chunk, next) = prefetched, chunk == end, let cps = next.checkpoint {
            for (n, dev) in devices.enumerated() where n < cps.count {
                let replayed = NICCheckpoint(dev.state, memoryBound: dev.memory != nil, accessEvent: cursor.accessEvents[n])
                if replayed != cps[n] {
                    result.checkpointMismatch = "nic\(n): the state replayed from chunk \(first) differs from the checkpoint of chunk \(end)"
                        + Self.difference(replayed, cps[n])
                    break
                }
            }
        }
        return result
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
        cursor.materialize()
        let checkpointCounters = first.startCounters
        let at = min(cursor.position, cursor.events.count)
        var cause: NumberedText?
        var chain: String?
        var i = at
        while i > 0 {
            i -= 1
            let e = cursor.events[i]
            if chain == nil, e.event.nic == d.nic, case .chain = e.event.body { chain = "#\(e.event.number) " + cursor.text(e) }
            if e.event.nic == d.nic, e.event.kind == .mmioRead || e.event.kind == .mmioWrite {
                cause = NumberedText(number: e.event.number, text: cursor.text(e))
                break
            }
        }
        let previous = cursor.events[max(0, at - before)..<at].map { NumberedText(number: $0.event.number, text: "nic\($0.event.nic) " + cursor.text($0)) }
        var recorded = checkpointCounters.map { NetCounters(values: $0) ?? NetCounters() }
        for e in cursor.events[..<at] {
            if case .counter(let index, let value) = e.event.body, let c = NetCounter(ordinal: index), e.event.nic < recorded.count {
                recorded[e.event.nic][c] = value
            }
        }
        let time = at < cursor.events.count ? cursor.events[at].event.time : (cursor.events.last?.event.time ?? 0)
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
        guard !cursor.halted, let e = cursor.current?.event, let n = devices.firstIndex(where: { $0.state.drain != nil }) else { return false }
        cursor.nic = n
        if let hook = beforeAccess { hook(e.number...lastEventOfAccess()) }
        devices[n].resumeDrain()
        return true
    }

    /// The number of the last event before the next cause after the current event.
    func lastEventOfAccess() -> UInt64 {
        cursor.materialize()
        var last = cursor.position + 1
        while last < cursor.events.count, !cursor.events[last].event.isCause { last += 1 }
        return cursor.events[last - 1].event.number
    }

    /// Re-executes the next recorded cause (an MMIO access or a memory binding)
    /// and checks what it produced; a recorded output where a cause is
    /// expected is a divergence.
    func executeOne() {
        guard let r = cursor.current else { return }
        let e = r.event
        cursor.nic = e.nic
        if e.isCause {
            cursor.accessEvents[e.nic] = e.number
            if let hook = beforeAccess { hook(e.number...lastEventOfAccess()) }
        }
        switch e.body {
        case .mmioRead(let offset, let width, let value):
            cursor.advance()
            let got = devices[e.nic].read(offset: offset, width: width)
            if got != value && !cursor.diverged {
                cursor.materialize()
                cursor.position -= 1
                cursor.diverge(expected: cursor.text(r), actual: "read 0x\(String(got, radix: 16))")
            }
        case .mmioWrite(let offset, let width, let value):
            cursor.advance()
            devices[e.nic].write(offset: offset, width: width, value: value)
        case .memoryBinding(let bound):
            cursor.advance()
            devices[e.nic].memory = bound ? memory : nil
        case .transport(let code, let queue, let values):
            guard let op = TransportOperation(code: code, queue: queue, values: values.values) else {
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
        try load(range)
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
        nextSegmentChunk = end < reader.chunks.count ? end : nil
    }

    /// The divergence found while stepping, if any.
    public var divergence: Divergence? { cursor.divergence }
    /// Where the recording ended inside an access, once the replay reached it.
    public var cut: RecordingCut? { cursor.cut }

    /// Dump text of the recorded events from `from` (inclusive) up to the cursor.
    public func recordedText(since from: UInt64) -> [NumberedText] {
        cursor.materialize()
        return cursor.events[..<min(cursor.position, cursor.events.count)].filter { $0.event.number >= from }
            .map { NumberedText(number: $0.event.number, text: "nic\($0.event.nic) " + cursor.text($0)) }
    }

    /// The last chain event before the cursor, as dump text.
    public var lastChain: NumberedText? {
        cursor.materialize()
        var i = min(cursor.position, cursor.events.count)
        while i > 0 {
            i -= 1
            if case .chain = cursor.events[i].event.body { return NumberedText(number: cursor.events[i].event.number, text: cursor.text(cursor.events[i])) }
        }
        return nil
    }

    /// The number of the first event after the next access: the next cause
    /// after it, or the start of the next segment, or the trace's end.
    public var nextAccessEnd: UInt64 {
        cursor.materialize()
        var i = cursor.position + 1
        while i < cursor.events.count {
            if cursor.events[i].event.isCause { return cursor.events[i].event.number }
            i += 1
        }
        return nextSegmentChunk.map { reader.chunks[$0].firstEvent } ?? reader.eventCount
    }

    /// The next recorded event (what the replay will match next), as dump text.
    public var nextText: NumberedText? { cursor.current.map { NumberedText(number: $0.event.number, text: "nic\($0.event.nic) " + cursor.text($0)) } }
}
