//! How a recording cuts and compresses chunks, and what a finished one wrote.

import TraceFormat

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
}
