//! Writes a trace file: header, compressed chunks on a background thread, index.

#if canImport(Glibc)
import Glibc
#endif
import HostPrimitives

/// Writes `NAME.partial`, compresses chunks on one background thread, and on
/// `finish()` appends the index and renames the file to `NAME`.
///
/// Memory is bounded: at most `queueDepth` chunks wait for compression; when
/// the thread falls behind, `submit` waits. A process killed at any instant
/// leaves a `.partial` file whose complete chunks a reader recovers: each
/// chunk is preceded by its index entry, and both are written with plain
/// write(2) calls (the kernel keeps them when the process dies).
public final class TraceWriter: @unchecked Sendable {
    public let path: String
    public let partialPath: String
    public let level: Int32
    public let queueDepth: Int

    /// The file being written (the writer's thread replaces it when the window rolls).
    var fd: Int32
    /// The header as written (a rolled window's rewrites its first event).
    let header: TraceHeader
    /// What a flight recorder keeps of the recording (nil: everything).
    public let keep: TraceWindow?
    let mutex = Mutex()
    let notEmpty = Condition()
    let notFull = Condition()
    var thread: BackgroundThread?

    // Guarded by `mutex`.
    /// Chunks waiting: encoded, or raw (``RawChunk``: encoded on this thread first).
    var queue: [PendingChunk] = []
    var stopping = false
    var held = false
    var failure: TraceError?
    var entries: [ChunkEntry] = []
    var fileOffset: UInt64 = 0
    /// How many times `submit` had to wait for the compressor.
    public private(set) var stalls = 0
    /// Chunks compressed at a faster level than asked because others were waiting.
    public private(set) var fasterChunks = 0
    /// Chunks compressed with zstd's double-hash match finder at a fast
    /// level, where it had cost less CPU time a byte (``MatchFinderChooser``).
    public private(set) var doubleFastChunks = 0
    /// Chunks compressed at zstd's fastest level because the queue was full
    /// (where the writer measures, only while it cost less: ``FastestLevelGate``).
    public private(set) var fastestChunks = 0
    public private(set) var uncompressedBytes: UInt64 = 0
    /// Chunks a flight recorder's window dropped.
    public internal(set) var rolledChunks = 0
    var finished = false

    /// Encoder memory, reused chunk after chunk: a recorder's encoders take
    /// it (``ChunkEncoder/init(firstEvent:baseTime:checkpoint:counters:capacity:pool:)``)
    /// and the thread hands each chunk's back once it is written.
    public let encoderPool: BufferPool
    /// Raw chunks' memory, reused the same way (``RawChunk``).
    public let rawPool: RawLogPool
    /// The thread's compressed-frame memory, reused chunk after chunk.
    var frameBuffer: [UInt8] = []

    /// Whether chunks at a fast level are compressed with the match finder
    /// that has cost less CPU time (``MatchFinderChooser``); off, the file is
    /// the same from run to run for the same chunks and levels.
    public let choosesMatchFinder: Bool
    /// Whether each chunk's zstd frame carries zstd's XXH64 content checksum
    /// (docs/trace-format.md: readers accept either; the entry's CRC-32
    /// covers the frame). Off, the writer's thread does a fifth less work at
    /// level 1 (docs/performance.md, issue 24).
    public let contentChecksums: Bool

    /// Creates `path.partial` and writes the header; with `keep`, the file
    /// is a window that drops its oldest chunks (``TraceWindow``).
    public init(path: String, header: TraceHeader, level: Int32 = 3, queueDepth: Int = 4, keep: TraceWindow? = nil,
                choosesMatchFinder: Bool = false, contentChecksums: Bool = true) throws(TraceError) {
        self.choosesMatchFinder = choosesMatchFinder
        self.contentChecksums = contentChecksums
        self.path = path
        partialPath = path + ".partial"
        var header = header
        if let keep { header.window = keep.description }
        self.header = header
        self.keep = keep
        self.level = min(max(level, ZstdCompressor.levels.lowerBound), ZstdCompressor.levels.upperBound)
        self.queueDepth = max(1, queueDepth)
        encoderPool = BufferPool(limit: self.queueDepth + 2)
        rawPool = RawLogPool(limit: self.queueDepth + 2)
        unlink(partialPath + ".roll")  // a killed recorder's unfinished roll
        fd = open(partialPath, O_CREAT | O_TRUNC | (keep == nil ? O_WRONLY : O_RDWR) | O_CLOEXEC, 0o644)
        if fd < 0 { throw .io(path: partialPath, String(cString: strerror(errno))) }
        let payload = header.encode()
        var w = ByteWriter()
        w.fixed(TraceLayout.headerFrameMagic)
        w.fixed(UInt32(payload.count))
        w.append(payload)
        do throws(TraceError) { try writeAll(w.bytes) } catch {
            close(fd)
            throw error
        }
        fileOffset = UInt64(w.count)
        guard let t = BackgroundThread({ [self] in run() }) else {
            close(fd)
            throw .io(path: partialPath, "cannot start the compression thread")
        }
        thread = t
    }

    func writeAll(_ bytes: [UInt8], count: Int? = nil) throws(TraceError) {
        var failure: TraceError?
        bytes.withUnsafeBytes { raw in
            do throws(TraceError) { try writeAll(UnsafeRawBufferPointer(rebasing: raw[..<(count ?? raw.count)])) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(TraceError) {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(path: partialPath, String(cString: strerror(errno)))
            }
            done += n
        }
    }

    /// Hands an encoded chunk to the compressor (the encoder is not written
    /// again); waits while `queueDepth` chunks are pending.
    public func submit(_ encoder: ChunkEncoder) throws(TraceError) {
        try submit(pending: .encoded(encoder))
    }

    /// Hands a chunk's raw events to the writer's thread, which encodes them
    /// (``RawChunk/encode()``) and compresses the result; waits as ``submit(_:)`` does.
    public func submit(raw: RawChunk) throws(TraceError) {
        try submit(pending: .raw(raw))
    }

    func submit(pending chunk: PendingChunk) throws(TraceError) {
        mutex.lock()
        defer { mutex.unlock() }
        if queue.count >= queueDepth && failure == nil { stalls += 1 }
        while queue.count >= queueDepth && failure == nil && !stopping { notFull.wait(mutex) }
        if let failure { throw failure }
        // After finish() or abandon() nothing writes the queue any more.
        if stopping { throw .io(path: partialPath, "the trace was already finished; this chunk is not written") }
        queue.append(chunk)
        notEmpty.signal()
    }

    func run() {
        let compressor = ZstdCompressor(level: level, contentChecksum: contentChecksums)
        var planner = CompressionPlanner(level: level, queueDepth: queueDepth, measures: choosesMatchFinder)
        while true {
            mutex.lock()
            while (queue.isEmpty || held) && !stopping { notEmpty.wait(mutex) }
            if queue.isEmpty {
                mutex.unlock()
                return
            }
            let item = queue[0]
            let backlog = queue.count
            mutex.unlock()
            var failed: TraceError?
            switch item {
            case .encoded(let chunk): failed = compressAndWrite(chunk, backlog: backlog, compressor, &planner)
            case .raw(let raw):
                for chunk in raw.encode() where failed == nil {
                    failed = compressAndWrite(chunk, backlog: backlog, compressor, &planner)
                }
            }
            mutex.withLock {
                queue.removeFirst()
                if let failed, failure == nil { failure = failed }
                notFull.broadcast()
            }
            // Once the queue no longer holds it (a log is reused only when
            // nothing else refers to it: see RawLogPool).
            if case .raw(let raw) = item { rawPool.recycle(raw) }
        }
    }

    /// Plans, compresses and writes one encoded chunk, and hands its memory
    /// back; the error that stopped it, if any.
    func compressAndWrite(_ item: ChunkEncoder, backlog: Int, _ compressor: ZstdCompressor, _ planner: inout CompressionPlanner) -> TraceError? {
        let plan = mutex.withLock {
            let plan = planner.plan(backlog: backlog, size: item.size)
            if plan.level != level { fasterChunks += 1 }
            if plan.level == FastestLevelGate.level && plan.level < level { fastestChunks += 1 }
            if plan.finder == .doubleFast { doubleFastChunks += 1 }
            return plan
        }
        compressor.setLevel(plan.level)
        compressor.setFinder(plan.finder)
        do throws(TraceError) {
            let started = threadCPUNanoseconds()
            try write(item, compressor)
            planner.observe(plan, nanoseconds: threadCPUNanoseconds() &- started, bytes: item.size)
            encoderPool.recycle(item)
            return nil
        } catch {
            return error
        }
    }

    /// Compresses one chunk and writes its entry frame and data (on the thread).
    func write(_ chunk: ChunkEncoder, _ compressor: ZstdCompressor) throws(TraceError) {
        // Into the thread's own frame buffer: no allocation or zeroing per chunk.
        var compressed: Result<Int, ZstdError> = .success(0)
        chunk.out.withBytes { raw in
            do throws(ZstdError) { compressed = .success(try compressor.compress(raw, into: &frameBuffer)) } catch { compressed = .failure(error) }
        }
        let size: Int
        switch compressed {
        case .success(let n): size = n
        case .failure(let e): throw TraceError.compression(offset: Int(fileOffset), chunk: entries.count, e.message)
        }
        let e = frameBuffer.withUnsafeBytes { frame in
            ChunkEntry(offset: fileOffset + UInt64(TraceLayout.frameHeaderSize + TraceLayout.entrySize),
                       compressedSize: UInt32(size), uncompressedSize: UInt32(chunk.size),
                       firstEvent: chunk.firstEvent, eventCount: UInt32(clamping: chunk.eventCount), firstTime: chunk.baseTime,
                       flags: UInt32(truncatingIfNeeded: chunk.flags.rawValue), crc: CRC32.checksum(UnsafeRawBufferPointer(rebasing: frame[..<size])))
        }
        // The entry frame, then the chunk: two write(2)s (a reader keeps a chunk only once both are whole).
        var w = ByteWriter(capacity: 64)
        w.fixed(TraceLayout.entryFrameMagic)
        w.fixed(UInt32(TraceLayout.entrySize))
        e.encode(into: &w)
        try writeAll(w.bytes)
        try writeAll(frameBuffer, count: size)
        fileOffset += UInt64(w.count + size)
        mutex.withLock {
            entries.append(e)
            uncompressedBytes += UInt64(chunk.size)
        }
        if let keep, let first = keep.firstKept(entries, fileSize: fileOffset) { try roll(keepingFrom: first) }
    }

    /// Waits for every pending chunk, writes the index and footer, syncs, and
    /// renames `NAME.partial` to `NAME`.
    /// - Returns: the index entries of all chunks.
    @discardableResult
    public func finish() throws(TraceError) -> [ChunkEntry] {
        stopThread()
        if let failure { throw failure }
        var w = ByteWriter()
        var body = ByteWriter()
        for e in entries { e.encode(into: &body) }
        let total = entries.reduce(UInt64(0)) { $0 + UInt64($1.eventCount) }
        w.fixed(TraceLayout.indexFrameMagic)
        w.fixed(UInt32(body.count + TraceLayout.footerSize))
        w.append(body.bytes)
        w.fixed(UInt32(entries.count))
        w.fixed(total)
        w.fixed(UInt32(1))  // flags: bit 0 = complete
        w.fixed(CRC32.checksum(body.bytes))
        w.fixed(TraceLayout.footerMagic)
        try writeAll(w.bytes)
        if fsync(fd) != 0 { throw .io(path: partialPath, String(cString: strerror(errno))) }
        close(fd)
        if rename(partialPath, path) != 0 { throw .io(path: path, String(cString: strerror(errno))) }
        finished = true
        return entries
    }

    /// Holds the compressor (for tests: makes it fall behind on purpose).
    public func holdCompression() { mutex.withLock { held = true } }

    /// Lets a held compressor go on.
    public func resumeCompression() {
        mutex.withLock {
            held = false
            notEmpty.signal()
        }
    }

    /// Stops without an index, as a killed recorder would (the file stays `.partial`).
    public func abandon() {
        stopThread()
        close(fd)
        finished = true
    }

    func stopThread() {
        mutex.withLock {
            stopping = true
            notEmpty.signal()
        }
        thread?.join()
    }

    /// Index entries written so far.
    public var writtenEntries: [ChunkEntry] { mutex.withLock { entries } }
}

/// A chunk waiting for the writer's thread.
enum PendingChunk {
    case encoded(ChunkEncoder)
    case raw(RawChunk)
}
