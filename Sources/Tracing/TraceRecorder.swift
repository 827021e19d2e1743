//! The recorder: device observers feed one trace; chunks cut at access boundaries.

#if canImport(Glibc)
import Glibc
#endif
import TraceFormat
import VirtioCore

/// How a recording cuts and compresses chunks.
public struct RecordingOptions: Hashable, Sendable {
    /// zstd level (default from measurements, docs/performance.md).
    public var level: Int32 = 3
    /// A chunk is cut at the first access boundary after this many events...
    public var flushEvents = 65_536
    /// ...or once its oldest event is this old (a background thread cuts an
    /// idle chunk too), so a killed recorder loses at most this window.
    public var flushMilliseconds = 200
    /// ...or past this many staged bytes (the recording thread's fixed-layout
    /// records, about twice the encoded size; see ``StagedChunk``).
    public var chunkTargetSize = 2 * TraceLayout.chunkTargetSize
    /// Chunks waiting for the compressor before recording waits.
    public var queueDepth = 4
    /// Staged bytes past which a chunk is cut even inside a chain (a
    /// continuation chunk, without a checkpoint): above the size at which a
    /// drain's chunk is cut between chains plus what one chain stages, so in
    /// practice chunks are cut between chains.
    public var stagedHardLimit = TraceLayout.chunkHardLimit * 3 / 4
    public init() {}
}

/// What a finished recording wrote.
public struct RecordingSummary: Sendable {
    public var path: String
    public var events: UInt64
    public var chunks: Int
    public var uncompressedBytes: UInt64
    public var fileBytes: UInt64
    public var stalls: Int
    /// Chunks compressed faster than the configured level to keep up.
    public var fasterChunks: Int
}

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

    // Guarded by `mutex`.
    /// The open chunk's events (when `chunkOpen`), staged for the writer's
    /// thread to encode. Not optional: observers mutate it in place on every
    /// event, and mutating through an optional copied it each time.
    @usableFromInline var staged = StagedChunk.idle
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
        self.clock = clock ?? TraceRecorder.monotonicNanoseconds
        writer = try TraceWriter(path: path, header: header, level: options.level, queueDepth: options.queueDepth)
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

    @Sendable public static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// The observer for NIC `nic` (on vCPU `vcpu`).
    public func observer(nic: Int, vcpu: UInt32 = 0) -> RecordingObserver {
        RecordingObserver(recorder: self, nic: nic, vcpu: vcpu)
    }

    // MARK: Chunks (call with the lock held)

    func openChunk(now: UInt64) {
        let checkpoint = zip(states, memoryBound).map { NICCheckpoint($0, memoryBound: $1, accessEvent: accessEvent) }
        staged = StagedChunk(firstEvent: nextEvent, baseTime: now, checkpoint: checkpoint, pool: writer.stagingPool)
        chunkOpen = true
        chunkOpenedAt = now
    }

    func submitChunk() {
        guard chunkOpen else { return }
        chunkOpen = false
        let s = staged
        staged = StagedChunk.idle
        guard s.eventCount > 0 else { return }
        nextEvent = s.firstEvent + s.eventCount
        chunksSubmitted += 1
        do throws(TraceError) { try writer.submit(staged: s) } catch { if failure == nil { failure = error } }
    }

    /// Inside a chain: the chunk grew past the hard limit. Cut it and continue
    /// in a chunk without a checkpoint (the writer's thread links the two).
    @inlinable @inline(__always)
    func checkHardLimit() {
        guard chunkOpen, staged.size >= options.stagedHardLimit else { return }
        cutAtHardLimit()
    }

    @usableFromInline func cutAtHardLimit() {
        staged.endsInsideAccess = true
        submitChunk()
        staged = StagedChunk(firstEvent: nextEvent, baseTime: 0, checkpoint: nil, pool: writer.stagingPool)
        chunkOpen = true
    }

    // MARK: Access boundaries

    func accessBegan(nic: Int, state: VirtioNetState) {
        mutex.lock()
        states[nic] = state
        if !chunkOpen { openChunk(now: clock()) }
        accessEvent = staged.firstEvent + staged.eventCount
    }

    func accessEnded(nic: Int, state: VirtioNetState) {
        states[nic] = state
        if chunkOpen && (chunkIsFull || chunkIsOld(now: clock())) { submitChunk() }
        mutex.unlock()
    }

    /// Whether the open chunk holds enough events or staged bytes to be cut.
    @inlinable var chunkIsFull: Bool {
        staged.eventCount >= UInt64(options.flushEvents) || staged.size >= options.chunkTargetSize
    }

    /// The same inside a drain, at twice the limits: a long drain is one
    /// stream of near-identical chains, which compresses better in larger
    /// chunks (at the limits of an access boundary its trace grew 16-19%,
    /// docs/performance.md).
    @inlinable var drainChunkIsFull: Bool {
        staged.eventCount >= 2 * UInt64(options.flushEvents) || staged.size >= 2 * options.chunkTargetSize
    }

    /// Whether the open chunk's oldest event is older than the flush window.
    @usableFromInline func chunkIsOld(now: UInt64) -> Bool {
        now &- chunkOpenedAt >= UInt64(options.flushMilliseconds) * 1_000_000
    }

    /// Between two chains of a drain: whether to cut a full or old chunk
    /// here (the device then reports its state, ``cutInsideDrain(nic:state:)``),
    /// so a long drain never leaves chunks without a checkpoint. The clock is
    /// read every 64 boundaries.
    @inlinable @inline(__always)
    func drainBoundary() -> DrainBoundaryAction {
        guard chunkOpen else { return .goOn }
        if drainChunkIsFull { return .checkpoint }
        boundariesUntilClock -= 1
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
        staged.endsInsideAccess = true
        submitChunk()
        openChunk(now: clock())
    }

    /// The VMM bound or unbound a NIC's memory: an event outside any access.
    func memoryBinding(nic: Int, bound: Bool) {
        mutex.lock()
        if !chunkOpen { openChunk(now: clock()) }
        staged.memoryBinding(nic: nic, bound: bound)
        memoryBound[nic] = bound
        mutex.unlock()
    }

    func flushLoop() {
        let period = max(1, options.flushMilliseconds / 2)
        mutex.lock()
        while !stopping {
            wake.wait(mutex, milliseconds: period)
            if stopping { break }
            if chunkOpen, staged.eventCount > 0, clock() &- chunkOpenedAt >= UInt64(options.flushMilliseconds) * 1_000_000 {
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
        let failed = failure
        mutex.unlock()
        if let failed {
            writer.abandon()
            throw failed
        }
        let entries = try writer.finish()
        var st = stat()
        let size = stat(writer.path, &st) == 0 ? UInt64(st.st_size) : 0
        return RecordingSummary(path: writer.path, events: entries.last?.endEvent ?? 0, chunks: entries.count,
                                uncompressedBytes: writer.uncompressedBytes, fileBytes: size, stalls: writer.stalls,
                                fasterChunks: writer.fasterChunks)
    }

    /// Stops without an index, leaving `path.partial` as a killed recorder would.
    public func abandon() {
        stopFlusher()
        writer.abandon()
    }
}

/// The device observer that records. One per NIC; all share one recorder.
public struct RecordingObserver: DeviceObserver {
    public let recorder: TraceRecorder
    public let nic: Int
    public var vcpu: UInt32

    public static var observesAccessBoundaries: Bool { true }
    public mutating func accessBegan(state: VirtioNetState) { recorder.accessBegan(nic: nic, state: state) }
    public mutating func accessEnded(state: VirtioNetState) { recorder.accessEnded(nic: nic, state: state) }
    public static var observesDrainBoundaries: Bool { true }
    @inlinable @inline(__always) public mutating func drainBoundary(_ position: DrainPosition) -> DrainBoundaryAction { recorder.drainBoundary() }
    public mutating func drainCheckpoint(state: VirtioNetState) { recorder.cutInsideDrain(nic: nic, state: state) }

    @inlinable public mutating func mmioRead(offset: UInt64, width: Int, value: UInt64) {
        recorder.staged.mmio(nic: nic, vcpu: vcpu, time: recorder.clock(), isWrite: false, offset: offset, width: width, value: value)
    }
    @inlinable public mutating func mmioWrite(offset: UInt64, width: Int, value: UInt64) {
        recorder.staged.mmio(nic: nic, vcpu: vcpu, time: recorder.clock(), isWrite: true, offset: offset, width: width, value: value)
    }
    @inlinable @inline(__always) public mutating func memoryRead(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {
        recorder.staged.memory(nic: nic, isWrite: false, address: address, bytes: bytes, ok: succeeded)
        recorder.checkHardLimit()
    }
    @inlinable @inline(__always) public mutating func memoryWrite(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) {
        recorder.staged.memory(nic: nic, isWrite: true, address: address, bytes: bytes, ok: succeeded)
        recorder.checkHardLimit()
    }
    @inlinable @inline(__always) public mutating func chainPopped(queue: UInt16, head: UInt16, descriptors: UnsafeBufferPointer<Descriptor>) {
        recorder.staged.chain(nic: nic, queue: queue, head: head, descriptorCount: descriptors.count)
        for d in descriptors { recorder.staged.descriptor(addr: d.addr, len: d.len, flags: d.flags.rawValue, next: d.next) }
        recorder.checkHardLimit()
    }
    @inlinable @inline(__always) public mutating func usedPublished(queue: UInt16, id: UInt32, len: UInt32) {
        recorder.staged.used(nic: nic, queue: queue, id: id, len: len)
    }
    @inlinable @inline(__always) public mutating func counterChanged(_ counter: NetCounter, value: UInt64) {
        recorder.staged.counter(nic: nic, index: counter.ordinal, value: value)
    }
    @inlinable public mutating func interruptRaised(_ kind: InterruptSignals) { recorder.staged.interrupt(nic: nic, kind: kind.rawValue) }
    public mutating func queuePoisoned(queue: UInt16, error: QueueError) {
        let (code, details) = PoisonCode.encode(error)
        recorder.staged.poison(nic: nic, queue: queue, code: code, details: details)
    }
    public mutating func statusChanged(from old: UInt8, to new: UInt8) { recorder.staged.status(nic: nic, old: old, new: new) }
    public mutating func driverFeaturesChanged(from old: UInt64, to new: UInt64) {
        recorder.staged.features(nic: nic, old: old, new: new)
    }
    public mutating func activeQueuePairsChanged(from old: UInt16, to new: UInt16) {
        recorder.staged.pairs(nic: nic, old: old, new: new)
    }
    public mutating func deviceReset() { recorder.staged.reset(nic: nic) }
    public mutating func warning(_ warning: DeviceWarning) {
        let (code, details) = WarningCode.encode(warning)
        recorder.staged.warning(nic: nic, code: code, details: details)
    }
    public mutating func memoryBindingChanged(bound: Bool) { recorder.memoryBinding(nic: nic, bound: bound) }
    public mutating func transportOperation(_ operation: TransportOperation) {
        recorder.staged.transport(nic: nic, time: recorder.clock(), code: operation.code, queue: operation.queue, values: operation.values)
    }
}
