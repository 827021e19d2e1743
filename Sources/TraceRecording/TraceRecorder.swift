//! The recorder: device observers feed one trace; chunks cut at access boundaries.

#if canImport(Glibc)
import Glibc
#endif
import HostPrimitives
import TraceFormat
import TraceMapping
import VirtioCore

/// Records one trace from the observers of one or more NICs.
///
/// Thread-safe: each MMIO access holds the recorder's lock from
/// `accessBegan` to `accessEnded`, so NICs on different vCPU threads
/// interleave whole accesses, and the flush thread cuts an idle chunk only
/// between accesses. A new chunk's checkpoint is every NIC's state as of its
/// last access (devices change only inside accesses).
public final class TraceRecorder: @unchecked Sendable {
    public let options: RecordingOptions
    public let header: TraceHeader
    let writer: TraceWriter
    /// The file writer (its compressor can be held, for tests).
    public var traceWriter: TraceWriter { writer }
    let mutex = Mutex()
    let wake = Condition()
    var flusher: BackgroundThread?
    @usableFromInline let clock: @Sendable () -> UInt64
    /// Frame payload bytes stored per frame (``RecordingOptions/snaplen``; `Int.max`: all).
    @usableFromInline let snaplen: Int
    /// ``drainChunkIsFull``'s limits, twice the options' (computed once: the
    /// test runs between every two chains of a drain).
    @usableFromInline let drainFullEvents: UInt64
    @usableFromInline let drainFullSize: Int

    // Guarded by `mutex`.
    /// The open chunk (when `chunkOpen`), encoded as the events happen; the
    /// writer's thread compresses it. Not optional: observers mutate it in
    /// place on every event, and mutating through an optional copied it each time.
    @usableFromInline var encoder = ChunkEncoder.idle
    /// With ``RecordingOptions/defersEncoding``: the open chunk's events,
    /// encoded on the writer's thread (``DeferredRecordingObserver``).
    @usableFromInline var raw = RawChunk.idle
    @usableFromInline let defers: Bool
    @usableFromInline var chunkOpen = false
    var chunkOpenedAt: UInt64 = 0
    var nextEvent: UInt64 = 0
    /// The number of the event that began the access in progress (its cause).
    var accessEvent: UInt64 = 0
    /// Drain boundaries left before the next look at the clock (a chunk grown
    /// old inside a long drain is cut at a boundary too).
    @usableFromInline var boundariesUntilClock = 0
    var states: [VirtioNetState]
    var memoryBound: [Bool]
    var stopping = false
    var failure: TraceError?
    var chunksSubmitted = 0

    // The trigger (guarded by `mutex`, like the chunk).
    /// Whether counter transitions are checked against the trigger (until it first holds).
    @usableFromInline var triggerArmed = false
    /// Per NIC, the counters as recorded (kept while the trigger is armed).
    var triggerCounters: [NetCounters] = []
    /// The event at which the trigger's condition held.
    public private(set) var triggerFiredAt: UInt64?
    /// A marker to write at the end of the access in progress.
    var markerPending = false
    /// The trigger finished the trace: events are encoded and dropped.
    var ended = false
    /// The finished trace (once the trigger ended the recording and the writer finished).
    var endedSummary: RecordingSummary?
    var writerFinished = false
    /// Called once, on the recording thread at an access boundary, when a
    /// trigger with action `stop` has ended the recording: the run should stop.
    public var onTriggerStop: (@Sendable () -> Void)?

    /// Starts a recording into `path` (written as `path.partial` until `finish`).
    /// - Parameters:
    ///   - initialStates: each NIC's state now.
    ///   - clock: monotonic nanoseconds (default CLOCK_MONOTONIC).
    public init(path: String, header: TraceHeader, initialStates: [VirtioNetState], memoryBound: [Bool]? = nil,
                options: RecordingOptions = RecordingOptions(), clock: (@Sendable () -> UInt64)? = nil) throws(TraceError) {
        precondition(initialStates.count == header.nics, "one initial state per NIC")
        self.options = options
        self.header = header
        states = initialStates
        self.memoryBound = memoryBound ?? Array(repeating: true, count: header.nics)
        self.clock = clock ?? monotonicNanoseconds
        snaplen = options.snaplen.map { Int($0) } ?? .max
        drainFullEvents = 2 * UInt64(options.flushEvents)
        drainFullSize = 2 * options.chunkTargetSize
        defers = options.defersEncoding
        var header = header
        header.trigger = options.trigger?.text
        header.snaplen = options.snaplen
        header.minorVersion = min(header.minorVersion, max(options.formatMinor, 3))
        writer = try TraceWriter(path: path, header: header, level: options.level, queueDepth: options.queueDepth, keep: options.keep,
                                 choosesMatchFinder: options.choosesMatchFinder, contentChecksums: options.contentChecksums)
        if let trigger = options.trigger {
            triggerCounters = initialStates.map(\.counters)
            if trigger.holds(triggerCounters) {
                triggerFiredAt = 0
                markerPending = trigger.action == .mark
            } else {
                triggerArmed = true
            }
        }
        if options.flushMilliseconds > 0 {
            flusher = BackgroundThread({ [self] in flushLoop() })
        }
    }

    /// A recorder for `nics` devices of `config` as they are when created
    /// (reset, memory bound) over guest memory `regions`; `header` adds the
    /// provenance.
    public convenience init(path: String, config: NetConfig, nics: Int, regions: [MemoryRegion],
                            options: RecordingOptions = RecordingOptions(), clock: (@Sendable () -> UInt64)? = nil,
                            header customize: (inout TraceHeader) -> Void = { _ in }) throws(TraceError) {
        let probe = VirtioNetDevice<GuestRAM, NoObserver>(config: config, memory: nil)
        var header = TraceHeader(config: config, nics: nics, offeredFeatures: probe.offeredFeatures, regions: regions)
        customize(&header)
        try self.init(path: path, header: header, initialStates: Array(repeating: probe.state, count: nics), options: options, clock: clock)
    }

    /// The observer for NIC `nic` (on vCPU `vcpu`).
    public func observer(nic: Int, vcpu: UInt32 = 0) -> RecordingObserver {
        precondition(!defers, "a recorder that defers encoding records through deferredObserver(nic:vcpu:)")
        return RecordingObserver(recorder: self, nic: nic, vcpu: vcpu)
    }

    /// The observer for NIC `nic` (on vCPU `vcpu`) of a recorder that
    /// defers encoding (``RecordingOptions/defersEncoding``).
    public func deferredObserver(nic: Int, vcpu: UInt32 = 0) -> DeferredRecordingObserver {
        precondition(defers, "a recorder that encodes inline records through observer(nic:vcpu:)")
        return DeferredRecordingObserver(recorder: self, nic: nic, vcpu: vcpu)
    }

    // MARK: The open chunk, encoded or raw

    /// The open chunk's first event and events so far.
    @usableFromInline var chunkFirstEvent: UInt64 { defers ? raw.firstEvent : encoder.firstEvent }
    @usableFromInline var chunkEventCount: UInt64 { defers ? raw.eventCount : encoder.eventCount }

    /// Appends an event outside the device's own (a marker, a memory binding).
    func appendToChunk(_ event: OutgoingEvent, nic: Int, time: UInt64 = 0) {
        if defers { raw.append(event, nic: nic, time: time) } else { encoder.append(event, nic: nic, time: time) }
    }

    // MARK: Chunks (call with the lock held)

    func openChunk(now: UInt64) {
        // Once ended, nothing more is written: no checkpoint to take.
        let checkpoint = ended ? nil : zip(states, memoryBound).map { NICCheckpoint($0, memoryBound: $1, accessEvent: accessEvent) }
        startChunk(firstEvent: nextEvent, baseTime: now, checkpoint: checkpoint, counters: [])
        chunkOpenedAt = now
    }

    /// Opens a chunk, encoded or raw.
    func startChunk(firstEvent: UInt64, baseTime: UInt64, checkpoint: [NICCheckpoint]?, counters: [[UInt64]]) {
        if defers {
            raw = RawChunk(firstEvent: firstEvent, baseTime: baseTime, checkpoint: checkpoint, counters: counters,
                           settings: encoderSettings, capacity: 4 * options.chunkTargetSize + 512 * 1024, pool: writer.rawPool)
            raw.hardLimit = 2 * options.hardLimit
        } else {
            encoder = newEncoder(firstEvent: firstEvent, baseTime: baseTime, checkpoint: checkpoint, counters: counters)
        }
        chunkOpen = true
    }

    /// How this recorder's encoders are made, here or (a raw chunk's) on the
    /// writer's thread: room for a drain's chunk (cut at twice the target)
    /// and the access that crosses it, so pooled buffers never grow (a copy
    /// of the content); the format's records; the hard limit.
    var encoderSettings: EncoderSettings {
        let records = TraceVersion.records(minor: options.formatMinor)
        return EncoderSettings(capacity: 2 * options.chunkTargetSize + 512 * 1024, repeats: records.repeats, predicts: records.predicts,
                               recalls: records.recalls, cursors: records.cursors, hardLimit: options.hardLimit, pool: writer.encoderPool)
    }

    /// The open chunk's encoder: pooled memory, written by this recorder alone.
    func newEncoder(firstEvent: UInt64, baseTime: UInt64, checkpoint: [NICCheckpoint]?, counters: [[UInt64]]) -> ChunkEncoder {
        encoderSettings.encoder(firstEvent: firstEvent, baseTime: baseTime, checkpoint: checkpoint, counters: counters)
    }

    func submitChunk() {
        guard chunkOpen else { return }
        chunkOpen = false
        if defers {
            let r = raw
            raw = RawChunk.idle
            guard !ended, r.eventCount > 0 else { return }
            nextEvent = r.firstEvent + r.eventCount
            chunksSubmitted += 1
            do throws(TraceError) { try writer.submit(raw: r) } catch { if failure == nil { failure = error } }
            return
        }
        var e = encoder
        encoder = ChunkEncoder.idle
        if ended {
            writer.encoderPool.recycle(e)
            return
        }
        guard e.eventCount > 0 else {
            writer.encoderPool.recycle(e)
            return
        }
        nextEvent = e.firstEvent + e.eventCount
        chunksSubmitted += 1
        e.exclusive = false
        do throws(TraceError) { try writer.submit(e) } catch { if failure == nil { failure = error } }
    }

    /// Inside a chain: the chunk grew past the hard limit. Cut it and continue
    /// in a chunk without a checkpoint (the writer's thread links the two).
    @inlinable @inline(__always)
    func checkHardLimit() {
        // (An idle encoder has no hard limit: `chunkOpen` needs no test.)
        guard encoder.pastHardLimit else { return }
        cutAtHardLimit()
    }

    /// The same for a raw chunk past its memory's bound.
    @inlinable @inline(__always)
    func checkRawLimit() {
        guard raw.pastHardLimit else { return }
        cutAtHardLimit()
    }

    /// Cuts the open chunk, encoded or raw, inside an access, and goes on in a continuation.
    @usableFromInline func cutAtHardLimit() {
        markChunkEndsInsideAccess()
        let counters = defers ? raw.currentCounters : encoder.currentCounters, lastTime = defers ? raw.lastTime : encoder.lastTime
        submitChunk()
        startChunk(firstEvent: nextEvent, baseTime: lastTime, checkpoint: nil, counters: counters)
    }

    func markChunkEndsInsideAccess() {
        if defers { raw.markEndsInsideAccess() } else { encoder.markEndsInsideAccess() }
    }

    // MARK: Access boundaries

    func accessBegan(nic: Int, state: VirtioNetState) {
        mutex.lock()
        states[nic] = state
        if !chunkOpen { openChunk(now: clock()) }
        accessEvent = chunkFirstEvent + chunkEventCount
    }

    func accessEnded(nic: Int, state: VirtioNetState) {
        states[nic] = state
        if let fired = triggerFiredAt, !ended { triggerBoundary(nic: nic, fired: fired) }
        if chunkOpen && (chunkIsFull || chunkIsOld(now: clock())) { submitChunk() }
        mutex.unlock()
    }

    // MARK: The trigger (with the lock held)

    /// A counter moved while the trigger is armed: does its condition hold now?
    @usableFromInline func counterMoved(nic: Int, counter: NetCounter, value: UInt64) {
        guard let trigger = options.trigger, nic < triggerCounters.count else { return }
        triggerCounters[nic][counter] = value
        guard trigger.holds(triggerCounters) else { return }
        triggerArmed = false
        triggerFiredAt = chunkFirstEvent + chunkEventCount - 1
        markerPending = trigger.action == .mark
    }

    /// At the end of an access after the trigger held: the marker, or the
    /// end of the recording once `after` more events are in.
    func triggerBoundary(nic: Int, fired: UInt64) {
        guard let trigger = options.trigger else { return }
        if markerPending {
            appendToChunk(.marker(code: MarkerCode.triggerFired.rawValue, details: EventDetails([fired])), nic: nic, time: clock())
            markerPending = false
        }
        guard trigger.action != .mark, chunkFirstEvent + chunkEventCount >= fired &+ (trigger.after ?? UInt64(options.flushEvents)) &+ 1 else { return }
        submitChunk()
        ended = true
        wake.signal()  // the flush thread finishes the file
        if trigger.action == .stop { onTriggerStop?() }
    }

    /// Whether a trigger with action `stop` ended the recording (the run should stop).
    public var stoppedByTrigger: Bool { mutex.withLock { ended && options.trigger?.action == .stop } }

    /// Finishes the file once the trigger ended the recording (on the flush thread, or in `finish`).
    func finishEndedWriter() {
        guard ended, !writerFinished else { return }
        writerFinished = true
        mutex.unlock()
        let result: Result<[ChunkEntry], TraceError>
        do throws(TraceError) { result = .success(try writer.finish()) } catch { result = .failure(error) }
        mutex.lock()
        switch result {
        case .success(let entries): endedSummary = summary(entries)
        case .failure(let error): if failure == nil { failure = error }
        }
    }

    /// What the finished file holds.
    func summary(_ entries: [ChunkEntry]) -> RecordingSummary {
        var st = stat()
        let size = stat(writer.path, &st) == 0 ? UInt64(st.st_size) : 0
        return RecordingSummary(path: writer.path, events: entries.last?.endEvent ?? 0, chunks: entries.count,
                                uncompressedBytes: writer.uncompressedBytes, fileBytes: size, stalls: writer.stalls,
                                fasterChunks: writer.fasterChunks, doubleFastChunks: writer.doubleFastChunks,
                                fastestChunks: writer.fastestChunks, firstEvent: entries.first?.firstEvent ?? 0,
                                droppedChunks: writer.rolledChunks, triggerFiredAt: triggerFiredAt)
    }

    /// Whether the open chunk holds enough events or encoded bytes to be cut.
    @inlinable @inline(__always) var chunkIsFull: Bool {
        if defers { return raw.eventCount >= UInt64(options.flushEvents) || raw.size >= 2 * options.chunkTargetSize }
        return encoder.eventCount >= UInt64(options.flushEvents) || encoder.size >= options.chunkTargetSize
    }

    /// The same inside a drain, at twice the limits: a long drain is one
    /// stream of near-identical chains, which compresses better in larger
    /// chunks (docs/performance.md, issue 17).
    /// (Each observer asks for its own kind of chunk: the question is asked
    /// between every two chains, and a test of the kind there cost serve's
    /// device thread 3 instructions a frame.)
    @inlinable @inline(__always) var drainChunkIsFull: Bool {
        encoder.eventCount >= drainFullEvents || encoder.size >= drainFullSize
    }
    @inlinable @inline(__always) var drainRawChunkIsFull: Bool {
        raw.eventCount >= drainFullEvents || raw.size >= 2 * drainFullSize
    }

    /// Whether the open chunk's oldest event is older than the flush window.
    @usableFromInline func chunkIsOld(now: UInt64) -> Bool {
        now &- chunkOpenedAt >= UInt64(options.flushMilliseconds) * 1_000_000
    }

    /// Between two chains of a drain: whether to cut a full or old chunk
    /// here (the device then reports its state, ``cutInsideDrain(nic:state:)``),
    /// so a long drain never leaves chunks without a checkpoint. The clock is
    /// read every 64 boundaries.
    /// - Parameter raw: whether the observer records into raw chunks.
    @inlinable @inline(__always)
    func drainBoundary(raw: Bool = false) -> DrainBoundaryAction {
        guard chunkOpen else { return .goOn }
        if raw ? drainRawChunkIsFull : drainChunkIsFull { return .checkpoint }
        boundariesUntilClock &-= 1
        if boundariesUntilClock <= 0 && chunkGrewOld() { return .checkpoint }
        return .goOn
    }

    @usableFromInline func chunkGrewOld() -> Bool {
        boundariesUntilClock = 64
        return chunkIsOld(now: clock())
    }

    /// Cuts the chunk between two chains of a drain: the next one starts
    /// with a checkpoint that holds where the drain stands.
    func cutInsideDrain(nic: Int, state: VirtioNetState) {
        states[nic] = state
        markChunkEndsInsideAccess()
        submitChunk()
        openChunk(now: clock())
    }

    /// The VMM bound or unbound a NIC's memory: an event outside any access.
    func memoryBinding(nic: Int, bound: Bool) {
        mutex.lock()
        if !chunkOpen { openChunk(now: clock()) }
        appendToChunk(.memoryBinding(bound: bound), nic: nic)
        memoryBound[nic] = bound
        mutex.unlock()
    }

    func flushLoop() {
        let period = max(1, options.flushMilliseconds / 2)
        mutex.lock()
        while !stopping {
            wake.wait(mutex, milliseconds: period)
            if stopping { break }
            finishEndedWriter()
            if chunkOpen, chunkEventCount > 0, clock() &- chunkOpenedAt >= UInt64(options.flushMilliseconds) * 1_000_000 {
                submitChunk()
            }
        }
        mutex.unlock()
    }

    func stopFlusher() {
        mutex.withLock {
            stopping = true
            wake.signal()
        }
        flusher?.join()
        flusher = nil
    }

    /// Flushes the last chunk, writes the index and renames the file into place.
    public func finish() throws(TraceError) -> RecordingSummary {
        stopFlusher()
        mutex.lock()
        submitChunk()
        finishEndedWriter()
        let failed = failure, ended = endedSummary
        mutex.unlock()
        if let failed {
            writer.abandon()
            throw failed
        }
        if let ended { return ended }
        return summary(try writer.finish())
    }

    /// Stops without an index, leaving `path.partial` as a killed recorder would.
    public func abandon() {
        stopFlusher()
        writer.abandon()
    }
}
