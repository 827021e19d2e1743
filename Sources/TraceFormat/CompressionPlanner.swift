//! How the writer compresses each chunk: the level for its backlog, and
//! where it measures, the match finder and whether to drop to the fastest level.

/// The writer's choice of zstd level and match finder for each chunk, and
/// what it learns from each chunk compressed. The configured level while
/// the compressor keeps up; level 1 once chunks queue; zstd's fastest level
/// (``FastestLevelGate/level``) when the queue is full, so that a live guest
/// waits for compression as rarely as possible (each chunk is its own zstd
/// frame; any level reads the same). A planner that measures (the writer's
/// default) also picks the cheaper match finder at the fast levels
/// (``MatchFinderChooser``) and drops to the fastest level only while that
/// has cost less (``FastestLevelGate``); one that does not gives the same
/// frames for the same chunks and backlogs, run after run.
///
/// A value the writer's thread owns; fed only what it measured, so tests
/// drive it with costs of their choosing.
public struct CompressionPlanner: Sendable {
    /// How one chunk is compressed.
    public struct Plan: Sendable, Equatable {
        public var level: Int32
        public var finder: MatchFinderChooser.Finder
        /// Whether its cost feeds the finder choice...
        var measuresFinder = false
        /// ...or the fastest level's.
        var measuresFastest = false
    }

    public let level: Int32
    public let queueDepth: Int
    public let measures: Bool
    public var chooser = MatchFinderChooser()
    public var gate = FastestLevelGate()

    public init(level: Int32, queueDepth: Int, measures: Bool) {
        self.level = level
        self.queueDepth = queueDepth
        self.measures = measures
    }

    /// The level for a chunk when `backlog` chunks (it included) wait, before any measurement.
    public func level(forBacklog backlog: Int) -> Int32 {
        if backlog >= queueDepth { return min(level, FastestLevelGate.level) }
        if backlog > 1 { return min(level, 1) }
        return level
    }

    /// How to compress a chunk of `size` bytes when `backlog` chunks (it included) wait.
    public mutating func plan(backlog: Int, size: Int) -> Plan {
        var chunkLevel = level(forBacklog: backlog)
        // (Small chunks keep the level's own finder: a choice there saves
        // nothing, and their frames stay the same from run to run.)
        let measured = measures && size >= CompressionCost.smallestMeasured
        var measuresFastest = false
        if measured && chunkLevel == FastestLevelGate.level && chunkLevel < level {
            if gate.next(fastLevelCost: chooser.bestCost) { measuresFastest = true } else { chunkLevel = min(level, 1) }
        }
        let chooses = measured && MatchFinderChooser.applies(toLevel: chunkLevel)
        return Plan(level: chunkLevel, finder: chooses ? chooser.next() : .levelDefault,
                    measuresFinder: chooses, measuresFastest: measuresFastest)
    }

    /// What compressing a chunk of `bytes` bytes as `plan` said cost.
    public mutating func observe(_ plan: Plan, nanoseconds: UInt64, bytes: Int) {
        if plan.measuresFinder { chooser.observe(plan.finder, nanoseconds: nanoseconds, bytes: bytes) }
        if plan.measuresFastest { gate.observe(nanoseconds: nanoseconds, bytes: bytes) }
    }
}
