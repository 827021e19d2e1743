//! Whether the writer drops to zstd's fastest level when its queue is full:
//! only while that level has measured cheaper than the fast level's best.

/// When chunks fill the writer's queue, the writer drops to zstd's fastest
/// level (``level``, -4) for the next chunk, on the assumption that it
/// compresses faster. On some traffic it does not: on a line-rate
/// generator's 64-byte frames level -4 took more instructions a byte than
/// level 1 with the double hash (2.0 times) and even than level 1's own
/// finder (1.1 times), and wrote files 2.7 to 3 times larger
/// (docs/performance.md, issue 24, session 10), so falling behind made the
/// writer fall further behind. So the writer measures it, as it measures the
/// fast level's finders (``MatchFinderChooser``): the first time the queue
/// is full it uses level -4 and measures it; afterwards only while level -4
/// has cost less CPU time a byte than the better finder at the fast level,
/// and every ``exploreEvery``-th time regardless, so that a change in the
/// traffic is noticed. Any level writes frames any zstd decoder reads.
///
/// A value the writer's thread owns; fed only what it measured, so tests
/// drive it with costs of their choosing.
public struct FastestLevelGate: Sendable {
    /// zstd's level for a writer whose queue is full.
    public static let level: Int32 = -4
    /// One full-queue chunk in this many uses ``level`` even where it has cost more.
    public static let exploreEvery = 8

    /// CPU nanoseconds a byte at ``level``, as a running average (nil: not yet measured).
    public var cost: Double? { measured.perByte }
    var measured = CompressionCost()
    /// Decisions made.
    public private(set) var decisions = 0

    public init() {}

    /// Whether the next chunk of a full queue is compressed at ``level``,
    /// given the best cost a byte measured at the fast level (nil: none yet):
    /// yes until both are measured, then where ``level`` is cheaper and
    /// every ``exploreEvery``-th time.
    public mutating func next(fastLevelCost: Double?) -> Bool {
        decisions += 1
        guard let cost, let fastLevelCost else { return true }
        return cost < fastLevelCost || decisions % Self.exploreEvery == 0
    }

    /// What compressing `bytes` bytes at ``level`` cost.
    public mutating func observe(nanoseconds: UInt64, bytes: Int) {
        measured.observe(nanoseconds: nanoseconds, bytes: bytes)
    }
}
