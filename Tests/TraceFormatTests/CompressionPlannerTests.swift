import Foundation
import Testing
@testable import TraceFormat

/// The writer's plan for each chunk (level, match finder, and whether to drop
/// to zstd's fastest level when the queue is full), driven with costs of the
/// tests' choosing; and a writer whose queue fills while its compressor is held.
@Suite("compression plan by backlog and measured cost")
struct CompressionPlannerTests {
    static let large = 1 << 20

    @Test func theFastestLevelIsUsedUntilMeasuredThenOnlyWhileCheaper() {
        var g = FastestLevelGate()
        let unmeasured = [g.next(fastLevelCost: nil), g.next(fastLevelCost: 2)]
        #expect(unmeasured == [true, true], "not measured yet: used, to measure it")
        g.observe(nanoseconds: 3_000_000, bytes: 1_000_000)                 // 3 ns a byte
        let nothingToCompare = g.next(fastLevelCost: nil)
        #expect(nothingToCompare, "nothing to compare with: used")
        // Dearer than the fast level's 2 ns a byte: used only every eighth decision.
        var used: [Int] = []
        for _ in 4...24 where g.next(fastLevelCost: 2) { used.append(g.decisions) }
        #expect(used == [8, 16, 24])
        // Cheaper than the fast level: always.
        var cheaper: [Bool] = []
        for _ in 1...10 { cheaper.append(g.next(fastLevelCost: 4)) }
        #expect(cheaper == [Bool](repeating: true, count: 10))
        #expect(g.cost == 3)
    }

    @Test func backlogsChooseTheLevelAndAMeasuringPlannerLearnsWhatTheFastestCosts() {
        var p = CompressionPlanner(level: 3, queueDepth: 4, measures: true)
        let calm = p.plan(backlog: 1, size: Self.large)
        #expect(calm == .init(level: 3, finder: .levelDefault))
        // Chunks queue: level 1, where each finder is measured in turn.
        let first = p.plan(backlog: 2, size: Self.large)
        #expect(first.level == 1 && first.finder == .levelDefault && first.measuresFinder)
        p.observe(first, nanoseconds: 2_000_000, bytes: 1_000_000)
        let second = p.plan(backlog: 3, size: Self.large)
        #expect(second.level == 1 && second.finder == .doubleFast)
        p.observe(second, nanoseconds: 1_000_000, bytes: 1_000_000)        // the double hash: 1 ns a byte
        // The queue is full: the fastest level, measured...
        let full = p.plan(backlog: 4, size: Self.large)
        #expect(full.level == FastestLevelGate.level && full.measuresFastest && !full.measuresFinder)
        p.observe(full, nanoseconds: 5_000_000, bytes: 1_000_000)          // ...at 5 ns a byte: dearer
        // ...so a full queue now gets level 1's cheaper finder, but for every
        // eighth decision, which tries the fastest level again.
        var levels: [Int32] = []
        for _ in 2...9 { levels.append(p.plan(backlog: 4, size: Self.large).level) }
        #expect(levels == [1, 1, 1, 1, 1, 1, FastestLevelGate.level, 1])
        #expect(p.gate.cost == 5 && p.chooser.bestCost == 1)
    }

    @Test func aPlannerThatDoesNotMeasureOrASmallChunkKeepsTheBacklogsLevel() {
        var p = CompressionPlanner(level: 3, queueDepth: 4, measures: false)
        for backlog in 1...5 {
            let plan = p.plan(backlog: backlog, size: Self.large)
            #expect(plan == .init(level: p.level(forBacklog: backlog), finder: .levelDefault))
        }
        #expect([1, 2, 4].map { p.level(forBacklog: $0) } == [3, 1, FastestLevelGate.level])
        var m = CompressionPlanner(level: 1, queueDepth: 4, measures: true)
        let small = m.plan(backlog: 4, size: CompressionCost.smallestMeasured - 1)
        #expect(small == .init(level: FastestLevelGate.level, finder: .levelDefault))
        // A level already at or below the fastest stays as it is.
        var fast = CompressionPlanner(level: -7, queueDepth: 4, measures: true)
        let already = fast.plan(backlog: 4, size: Self.large)
        #expect(already == .init(level: -7, finder: .levelDefault))
    }

    /// A held compressor with a full queue of large chunks: the first is
    /// compressed at the fastest level (not measured yet), the next two at
    /// level 1, the last at the writer's level; every chunk reads back.
    @Test(arguments: [Int32(1), 3])
    func aFullQueueDropsToTheFastestLevelOnceUnmeasured(level: Int32) throws {
        let path = NSTemporaryDirectory() + "/planner-\(level)-\(getpid()).vtrace"
        defer { unlink(path) }
        let writer = try TraceWriter(path: path, header: TraceHeader(), level: level, queueDepth: 4)
        writer.holdCompression()
        var first: UInt64 = 0
        for chunk in 0..<4 {
            let e = MatchFinderChooserTests.counterChunk(chunk, firstEvent: first, events: 6_000)
            #expect(e.size >= CompressionCost.smallestMeasured)
            first += e.eventCount
            try writer.submit(e)
        }
        writer.resumeCompression()
        _ = try writer.finish()
        #expect(writer.fastestChunks == 1)
        #expect(writer.fasterChunks == (level == 1 ? 1 : 3))
        try MatchFinderChooserTests.expectCounterChunks(path, chunks: 4, events: 6_000)
    }
}
