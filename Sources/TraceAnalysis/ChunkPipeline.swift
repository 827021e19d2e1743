//! Decompression and decoding of the next chunks on a second thread, while
//! the replay thread replays: a bounded pipeline.

import HostPrimitives
import TraceFormat

/// Reads, checks, decompresses and decodes chunks in order on its own
/// thread, with its own reader (file handle, decompressor), ahead of a
/// whole-trace replay that takes them in the same order. One chunk in
/// ``shareCycle`` it only decompresses: the replay thread decodes that one's
/// events itself, so neither thread waits long for the other.
///
/// The replay asks for each chunk's decoder (``decoder(_:)``) as it loads a
/// segment, then for the chunk's events, block after block
/// (``nextBlock(chunk:)``). Both come back exactly as the replay thread
/// would have made them: the same decoder, or the same ``TraceError`` for a
/// chunk that does not read or decompress; the same events, and the same
/// ``ChunkDecodeError`` after the last one that decodes.
///
/// Memory is bounded whatever the trace: at most `maxBlocks` blocks of
/// `blockEvents` events decoded ahead, and at most `chunksAhead`
/// decompressed chunks beyond those the replay has asked for (each at most
/// `TraceLayout.chunkHardLimit`), besides the segment the replay holds, as
/// on one thread.
final class ChunkPipeline: @unchecked Sendable {
    /// Events a block holds: large enough that the two threads meet once
    /// per ~16,000 events (a lock and maybe a wake-up), small enough that a
    /// block is about 1.4 MB (88 bytes an event).
    static let blockEvents = 16_384
    /// Blocks decoded ahead of the replay at most (about 11 MB).
    static let maxBlocks = 8
    /// Chunks decompressed beyond the replay's requests at most.
    static let chunksAhead = 2
    /// Of every `shareCycle` chunks the pipeline hands over, the last one's
    /// events are decoded by the replay thread, the others' here. Decoding
    /// every chunk here left this thread the bottleneck (636 M instructions
    /// against the replay's 419 M on a dense testpmd trace); of shares 1 in
    /// 2, 3 and 4 measured on it, 1 in 3 was fastest (docs/performance.md).
    static let shareCycle = 3

    /// Whether this thread decodes the events of chunk `chunk` (counted from
    /// the first it reads), or leaves that to the replay thread.
    func decodesEvents(of chunk: Int) -> Bool { (chunk - first) % Self.shareCycle != Self.shareCycle - 1 }

    /// The producer's own reader: the consumer's is never touched here.
    private let reader: TraceReader
    /// The first chunk it reads.
    private let first: Int
    private let lock = Mutex()
    private let changed = Condition()
    private var thread: BackgroundThread?

    // Shared state, under `lock`.
    /// The replay wants decoders up to this chunk (inclusive).
    private var requested: Int
    /// Decompressed chunks not yet handed over, in order.
    private var ready: [(chunk: Int, result: Result<ChunkDecoder, TraceError>)] = []
    /// The next chunk the replay may ask for (earlier ones are its own to read).
    private var nextHandOut: Int
    /// Decoded blocks not yet taken, oldest first (`filledHead` is the oldest).
    private var filled: [EventBlock] = []
    private var filledHead = 0
    /// Blocks to fill again, and how many exist.
    private var free: [EventBlock] = []
    private var blocks = 0
    private var stopping = false
    /// The thread reads no more chunks (the trace's end, or one that failed).
    private var doneReading = false

    /// Starts decompressing at chunk `first` of `reader`'s trace (read on
    /// the new thread through its own handle on the same source).
    /// Nil when no second thread or handle can be had: replay on one thread.
    init?(reader consumerReader: TraceReader, from first: Int) {
        guard let own = try? consumerReader.reopened() else { return nil }
        own.verifiesContentChecksums = consumerReader.verifiesContentChecksums
        reader = own
        self.first = first
        requested = first
        nextHandOut = first
        guard let t = BackgroundThread({ [self] in produce(from: first) }) else { return nil }
        thread = t
    }

    /// Stops the thread (whatever it is doing) and waits for it. The
    /// replay calls this when it is done: the thread holds the pipeline.
    func stop() {
        lock.withLock {
            stopping = true
            changed.broadcast()
        }
        thread?.join()
        thread = nil
    }

    // MARK: The replay's side

    /// The decoder of chunk `chunk`, positioned at its start, or the error
    /// reading it gave, and whether the pipeline decodes the chunk's events
    /// (``nextBlock(chunk:)``) or the replay does (``decodesEvents(of:)``);
    /// nil when the pipeline does not have it (a chunk before the ones it
    /// read: the replay reads that one itself).
    func decoder(_ chunk: Int) -> (result: Result<ChunkDecoder, TraceError>, decodesEvents: Bool)? {
        lock.lock()
        defer { lock.unlock() }
        guard chunk >= nextHandOut else { return nil }
        if chunk > requested {
            requested = chunk
            changed.broadcast()
        }
        while true {
            // Chunks skipped over are dropped (their blocks too, as the replay asks for later ones).
            while let first = ready.first, first.chunk < chunk { ready.removeFirst() }
            if let first = ready.first, first.chunk == chunk {
                ready.removeFirst()
                nextHandOut = chunk + 1
                changed.broadcast()
                return (first.result, decodesEvents(of: chunk))
            }
            // The thread stopped reading before this chunk (after one that failed): the replay reads it.
            if stopping || doneReading { return nil }
            changed.wait(lock)
        }
    }

    /// The next block of chunk `chunk`'s events (a chunk whose decoder
    /// ``decoder(_:)`` handed over, saying the pipeline decodes it); blocks of earlier chunks the replay
    /// no longer wants are recycled on the way. Hand the block back with
    /// ``recycle(_:)`` once its events are consumed.
    func nextBlock(chunk: Int) -> EventBlock {
        lock.lock()
        defer { lock.unlock() }
        while true {
            while filledHead < filled.count, filled[filledHead].chunk < chunk {
                free.append(filled[filledHead])
                filledHead += 1
                changed.broadcast()
            }
            if filledHead < filled.count {
                let b = filled[filledHead]
                filledHead += 1
                if filledHead == filled.count {
                    filled.removeAll(keepingCapacity: true)
                    filledHead = 0
                }
                changed.broadcast()
                return b
            }
            changed.wait(lock)
        }
    }

    /// A block whose events the replay has consumed.
    func recycle(_ block: EventBlock) {
        lock.withLock {
            free.append(block)
            changed.broadcast()
        }
    }

    // MARK: The pipeline's thread

    private enum Work {
        case decompress
        case decode(EventBlock)
        case stop
    }

    /// Decompresses chunks from `first` on, as asked for and `chunksAhead`
    /// beyond, and decodes their events into blocks as blocks come free;
    /// asks for decoders come first, so a long segment never waits on blocks.
    private func produce(from first: Int) {
        var next = first
        var failed = false
        var decoding: [(chunk: Int, decoder: ChunkDecoder)] = []
        var buffers: [ChunkBuffer?] = []
        while true {
            let work: Work = lock.withLock {
                while true {
                    if stopping { return .stop }
                    if !failed && next < reader.chunks.count && (next <= requested || ready.count < Self.chunksAhead) { return .decompress }
                    if !decoding.isEmpty {
                        if let b = free.popLast() { return .decode(b) }
                        if blocks < Self.maxBlocks {
                            blocks += 1
                            return .decode(EventBlock(capacity: Self.blockEvents))
                        }
                    }
                    changed.wait(lock)
                }
            }
            switch work {
            case .stop:
                return
            case .decompress:
                // A buffer no decoder holds any more (the replay's or ours) is
                // refilled (no allocation, no page faults), else a new one kept.
                var slot = 0
                while slot < buffers.count && !isKnownUniquelyReferenced(&buffers[slot]) { slot += 1 }
                if slot == buffers.count { buffers.append(nil) }
                let result: Result<ChunkDecoder, TraceError>
                do throws(TraceError) { result = .success(try reader.decoder(next, reusing: &buffers[slot])) } catch { result = .failure(error) }
                if case .success(let d) = result {
                    if decodesEvents(of: next) { decoding.append((next, d)) }
                } else {
                    failed = true
                }
                next += 1
                lock.withLock {
                    ready.append((next - 1, result))
                    if failed || next == reader.chunks.count { doneReading = true }
                    changed.broadcast()
                }
            case .decode(let block):
                block.chunk = decoding[0].chunk
                block.fill(from: &decoding[0].decoder, slot: 0)
                if block.endsChunk { decoding.removeFirst() }
                lock.withLock {
                    filled.append(block)
                    changed.broadcast()
                }
            }
        }
    }
}
