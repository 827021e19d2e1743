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

    /// One chunk in this many tries the finder that is not ahead...
    public static let exploreEvery = 8
    /// ...or in this many, while it has cost more than ``wideGap`` times
    /// the one ahead: on a line-rate generator's frames the level's own
    /// finder took 2.2 times the double hash's instructions a byte, so
    /// trying it every eighth chunk cost the writer 15% (docs/performance.md,
    /// issue 24, session 10).
    public static let exploreRarely = 32
    public static let wideGap = 1.5
    /// Chunks smaller than this are not measured (their cost is zstd's set-up).
    public static var smallestMeasured: Int { CompressionCost.smallestMeasured }

    /// CPU nanoseconds a byte, as a running average, per finder (nil: not yet measured).
    public var levelDefaultCost: Double? { levelDefault.perByte }
    public var doubleFastCost: Double? { doubleFast.perByte }
    /// The cheaper of the two, as measured so far (nil: neither measured).
    public var bestCost: Double? {
        switch (levelDefaultCost, doubleFastCost) {
        case let (a?, b?): min(a, b)
        case let (a, b): a ?? b
        }
    }
    var levelDefault = CompressionCost()
    var doubleFast = CompressionCost()
    /// Choices made.
    public private(set) var choices = 0

    public init() {}

    /// The finder for the next chunk: each once first, then the cheaper,
    /// except every ``exploreEvery``-th chunk (every ``exploreRarely``-th
    /// while the other costs more than ``wideGap`` times as much).
    public mutating func next() -> Finder {
        choices += 1
        guard let a = levelDefaultCost else { return .levelDefault }
        guard let b = doubleFastCost else { return .doubleFast }
        let ahead: Finder = a <= b ? .levelDefault : .doubleFast
        let every = max(a, b) > Self.wideGap * min(a, b) ? Self.exploreRarely : Self.exploreEvery
        return choices % every == 0 ? ahead.other : ahead
    }

    /// What compressing `bytes` bytes with `finder` cost.
    public mutating func observe(_ finder: Finder, nanoseconds: UInt64, bytes: Int) {
        switch finder {
        case .levelDefault: levelDefault.observe(nanoseconds: nanoseconds, bytes: bytes)
        case .doubleFast: doubleFast.observe(nanoseconds: nanoseconds, bytes: bytes)
        }
    }

    /// Whether the writer chooses at `level`: zstd's fast levels, where the
    /// level's own finder is the single hash (3 and up already use the double
    /// hash or better; the negative levels trade ratio for speed on purpose).
    public static func applies(toLevel level: Int32) -> Bool { level == 1 || level == 2 }
}
