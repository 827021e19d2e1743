//! How a recording cuts and compresses chunks, and what a finished one wrote.

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
    /// ...or past this many encoded bytes.
    public var chunkTargetSize = TraceLayout.chunkTargetSize
    /// Chunks waiting for the compressor before recording waits.
    public var queueDepth = 4
    /// At zstd levels 1 and 2, compress each chunk with the match finder
    /// that has cost the writer less CPU time a byte (``MatchFinderChooser``);
    /// off, the same events and options give the same file.
    public var choosesMatchFinder = true
    /// Whether chunks carry zstd's XXH64 content checksum besides the
    /// index's CRC-32 of their compressed bytes (``TraceWriter/contentChecksums``).
    /// Off by default: the CRC-32 already proves the bytes the writer wrote,
    /// and the XXH64 was a fifth of the writer's work at line rate.
    public var contentChecksums = false
    /// Whether the recording thread leaves the encoding to the writer's
    /// thread: it only appends each event's fields and bytes to a raw chunk
    /// (``RawChunk``), about a quarter of what encoding costs it, and the
    /// writer encodes the chunk before compressing it (the same records).
    /// For a thread that must not wait (a vCPU's) where a core is idle;
    /// where none is, the raw log's cost is added to the total.
    public var defersEncoding = false
    /// Encoded bytes past which a chunk is cut even inside a chain (a
    /// continuation chunk, without a checkpoint): above the size at which a
    /// drain's chunk is cut between chains plus what one chain encodes, so in
    /// practice chunks are cut between chains; below the format's
    /// ``TraceLayout/chunkHardLimit`` by more than one record.
    public var hardLimit = TraceLayout.chunkHardLimit * 3 / 4
    /// A flight recorder's window: only the newest chunks are kept (nil: all).
    public var keep: TraceWindow?
    /// Stop recording (or mark the trace) once a counter condition holds.
    public var trigger: RecordingTrigger?
    /// Frame payload bytes kept per frame, like tcpdump's snaplen (nil: all):
    /// past the first `snaplen` bytes of each frame (counted across its
    /// descriptors), TX frame reads and RX frame writes store only their
    /// length. Ring metadata, descriptors, virtio-net headers, control
    /// commands and counters are always stored whole.
    public var snaplen: UInt32?
    /// The format's minor version to write: 7 (the default) with ring
    /// cursors, 6 without them (what vtrace before 1.7 reads) with address
    /// codes reaching 4096 accesses back and recalled reads, 5 with address
    /// codes reaching 256 and no recalled reads (what vtrace before 1.6
    /// reads), 4 without address codes and predicted records (before 1.5),
    /// 3 without repeat records either (before 1.4).
    public var formatMinor = TraceVersion.minor
    public init() {}
}

/// A recording's trigger: the counter condition it waits for, and what
/// happens once it holds.
public struct RecordingTrigger: Sendable, Hashable {
    /// What the trigger does once its condition held.
    public enum Action: String, Sendable, CaseIterable {
        /// Record `after` more events, finish the trace, and stop the run.
        case stop
        /// Record `after` more events and finish the trace; the run goes on unrecorded.
        case `continue`
        /// Write a marker event and go on recording.
        case mark
    }
    /// The condition as the user wrote it (the header keeps it).
    public var text: String
    /// Whether the condition holds for these counters (one per NIC), called
    /// after each counter transition until it first does.
    public var holds: @Sendable ([NetCounters]) -> Bool
    /// Events recorded after the one at which it held (nil: one chunk's worth, `flushEvents`).
    public var after: UInt64?
    public var action: Action

    public init(text: String, after: UInt64? = nil, action: Action = .stop, holds: @escaping @Sendable ([NetCounters]) -> Bool) {
        self.text = text
        self.after = after
        self.action = action
        self.holds = holds
    }

    /// Two triggers are the same when written the same (the condition is compiled from `text`).
    public static func == (a: Self, b: Self) -> Bool { a.text == b.text && a.after == b.after && a.action == b.action }
    public func hash(into h: inout Hasher) {
        h.combine(text)
        h.combine(after)
        h.combine(action)
    }
}

/// What a finished recording wrote, and whether the recording thread ever
/// waited for it (`vtrace run --json` and `serve --json` print it as it is).
public struct RecordingSummary: Sendable, Encodable {
    public var path: String
    public var events: UInt64
    public var chunks: Int
    public var uncompressedBytes: UInt64
    public var fileBytes: UInt64
    /// Times the recording thread waited for the compressor.
    public var stalls: Int
    /// Chunks compressed faster than the configured level because others were waiting.
    public var fasterChunks: Int
    /// Chunks compressed with zstd's double-hash match finder, where at a
    /// fast level it had cost the writer less (``MatchFinderChooser``).
    public var doubleFastChunks: Int = 0
    /// Chunks compressed at zstd's fastest level because the queue was full
    /// (where it had cost the writer less: ``FastestLevelGate``).
    public var fastestChunks: Int = 0
    /// The first event the file holds: 0, or where a flight recorder's window starts.
    public var firstEvent: UInt64 = 0
    /// Chunks a flight recorder's window dropped.
    public var droppedChunks: Int = 0
    /// The event at which the trigger's condition held, if it did.
    public var triggerFiredAt: UInt64?
}
