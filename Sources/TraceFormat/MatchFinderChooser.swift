//! Which zstd match finder the writer uses at a fast level: the one that has
//! compressed this recording's chunks in less CPU time a byte.

/// At zstd's fast levels (1 and 2, the default where a live guest shares the
/// CPU) two match finders can run with the level's small tables: the level's
/// own single hash (`ZSTD_fast`) and the double hash of level 3
/// (`ZSTD_dfast`). Which is quicker depends on the content and the machine
/// (docs/performance.md, issue 24, session 8): on a line-rate generator's
/// frames the double hash took 13–37% fewer instructions a byte and wrote a
/// smaller file; on KVM's bursts it took 5–7% more. So the writer measures:
/// it compresses most chunks with the finder that has cost less CPU time a
/// byte (a running average for each) and every ``exploreEvery``-th chunk
/// with the other, so that a change in the traffic is noticed. Either finder
/// writes frames any zstd decoder reads: the trace format does not change.
///
/// A value the writer's thread owns; fed only what it measured, so tests
/// drive it with costs of their choosing.
public struct MatchFinderChooser: Sendable {
    public enum Finder: Sendable, Equatable {
        /// The level's own (`ZSTD_c_strategy` 0: zstd's choice for the level).
        case levelDefault
        /// `ZSTD_dfast` with the level's other parameters.
        case doubleFast

        var other: Finder { self == .levelDefault ? .doubleFast : .levelDefault }
    }

    /// One chunk in this many tries the finder that is not ahead.
    public static let exploreEvery = 8
    /// Chunks smaller than this are not measured (their cost is zstd's set-up).
    public static let smallestMeasured = 16 * 1024
    /// Weight of a new measurement in the running average.
    static let weight = 0.25

    /// CPU nanoseconds a byte, as a running average, per finder (nil: not yet measured).
    public private(set) var levelDefaultCost: Double?
    public private(set) var doubleFastCost: Double?
    /// Choices made.
    public private(set) var choices = 0

    public init() {}

    /// The finder for the next chunk: each once first, then the cheaper,
    /// except every ``exploreEvery``-th chunk.
    public mutating func next() -> Finder {
        choices += 1
        guard let a = levelDefaultCost else { return .levelDefault }
        guard let b = doubleFastCost else { return .doubleFast }
        let ahead: Finder = a <= b ? .levelDefault : .doubleFast
        return choices % Self.exploreEvery == 0 ? ahead.other : ahead
    }

    /// What compressing `bytes` bytes with `finder` cost.
    public mutating func observe(_ finder: Finder, nanoseconds: UInt64, bytes: Int) {
        guard bytes >= Self.smallestMeasured else { return }
        let cost = Double(nanoseconds) / Double(bytes)
        switch finder {
        case .levelDefault: levelDefaultCost = levelDefaultCost.map { $0 + Self.weight * (cost - $0) } ?? cost
        case .doubleFast: doubleFastCost = doubleFastCost.map { $0 + Self.weight * (cost - $0) } ?? cost
        }
    }

    /// Whether the writer chooses at `level`: zstd's fast levels, where the
    /// level's own finder is the single hash (3 and up already use the double
    /// hash or better; the negative levels trade ratio for speed on purpose).
    public static func applies(toLevel level: Int32) -> Bool { level == 1 || level == 2 }
}
