import Foundation
import Testing
@testable import TraceFormat

/// The writer's choice of zstd match finder at a fast level, driven with
/// costs of the tests' choosing: each finder measured once, then the cheaper
/// one, the other every eighth chunk (every 32nd while it costs more than
/// 1.5 times as much), and a change of traffic followed.
@Suite("zstd match finder choice")
struct MatchFinderChooserTests {
    @Test func eachFinderOnceThenTheCheaperWithAnExplorationEveryEighthChunk() {
        var c = MatchFinderChooser()
        #expect(c.next() == .levelDefault)
        c.observe(.levelDefault, nanoseconds: 3_000_000, bytes: 1_000_000)   // 3 ns a byte
        #expect(c.next() == .doubleFast)
        c.observe(.doubleFast, nanoseconds: 2_000_000, bytes: 1_000_000)     // 2 ns a byte
        var picks: [MatchFinderChooser.Finder] = []
        for _ in 3...16 {
            let f = c.next()
            picks.append(f)
            c.observe(f, nanoseconds: f == .doubleFast ? 2_000_000 : 3_000_000, bytes: 1_000_000)
        }
        // Choices 3…16: the cheaper (double-fast) but at choices 8 and 16.
        let explored = picks.indices.filter { picks[$0] == .levelDefault }.map { $0 + 3 }
        #expect(explored == [8, 16])
        #expect(c.levelDefaultCost == 3 && c.doubleFastCost == 2)
    }

    /// Where the other finder costs more than 1.5 times the one ahead,
    /// trying it every eighth chunk is dear: it is tried every 32nd.
    @Test func aFinderFarBehindIsTriedEveryThirtySecondChunk() {
        var c = MatchFinderChooser()
        _ = c.next(); c.observe(.levelDefault, nanoseconds: 4_000_000, bytes: 1_000_000)   // 4 ns a byte
        _ = c.next(); c.observe(.doubleFast, nanoseconds: 2_000_000, bytes: 1_000_000)     // 2 ns a byte
        var explored: [Int] = []
        for choice in 3...70 {
            let f = c.next()
            if f == .levelDefault { explored.append(choice) }
            c.observe(f, nanoseconds: f == .doubleFast ? 2_000_000 : 4_000_000, bytes: 1_000_000)
        }
        #expect(explored == [32, 64])
        #expect(c.bestCost == 2)
    }

    @Test func aChangeOfTrafficIsFollowed() {
        var c = MatchFinderChooser()
        _ = c.next(); c.observe(.levelDefault, nanoseconds: 3_000_000, bytes: 1_000_000)
        _ = c.next(); c.observe(.doubleFast, nanoseconds: 2_000_000, bytes: 1_000_000)
        // Now double-fast turns dear (4 ns a byte): its running average goes
        // 2 → 2.5 → 2.875 → 3.156, past the level's own 3 at the third chunk.
        var chunksUntilSwitch = 0
        while c.next() == .doubleFast {
            c.observe(.doubleFast, nanoseconds: 4_000_000, bytes: 1_000_000)
            chunksUntilSwitch += 1
        }
        #expect(chunksUntilSwitch == 3)
        #expect(c.doubleFastCost! > c.levelDefaultCost!)
    }

    @Test func smallChunksAreNotMeasuredAndOnlyFastLevelsChoose() {
        var c = MatchFinderChooser()
        _ = c.next()
        c.observe(.levelDefault, nanoseconds: 1_000_000, bytes: MatchFinderChooser.smallestMeasured - 1)
        #expect(c.levelDefaultCost == nil)
        #expect(c.next() == .levelDefault, "nothing measured yet: still the level's own")
        #expect((-5...19).filter { MatchFinderChooser.applies(toLevel: Int32($0)) } == [1, 2])
    }

    /// A trace written at level 1 from chunks of at least 16 KiB: the
    /// second is compressed with the double hash (each finder is tried once,
    /// whatever it costs), every chunk reads back as encoded; at level 3 the
    /// choice is made only for chunks dropped to level 1 behind a backlog,
    /// and for smaller chunks (the format's golden vectors, written again
    /// byte for byte) never.
    @Test(arguments: [(Int32(1), 6_000), (3, 6_000), (1, 100)])
    func theWriterChoosesForLargeChunksAtFastLevels(level: Int32, eventsAChunk: Int) throws {
        try Self.writeAndCheck(level: level, eventsAChunk: eventsAChunk, chooses: true)
    }

    /// A writer told not to choose (a deterministic recording) never does.
    @Test func aWriterThatDoesNotChooseKeepsTheLevelsFinder() throws {
        try Self.writeAndCheck(level: 1, eventsAChunk: 6_000, chooses: false)
    }

    static func writeAndCheck(level: Int32, eventsAChunk: Int, chooses: Bool) throws {
        let path = NSTemporaryDirectory() + "/finder-\(level)-\(eventsAChunk)-\(chooses)-\(getpid()).vtrace"
        defer { unlink(path) }
        let writer = try TraceWriter(path: path, header: TraceHeader(), level: level, queueDepth: 64, choosesMatchFinder: chooses)
        var first: UInt64 = 0
        var sizes: [Int] = []
        for chunk in 0..<6 {
            let e = Self.counterChunk(chunk, firstEvent: first, events: eventsAChunk)
            first += e.eventCount
            sizes.append(e.size)
            try writer.submit(e)
        }
        _ = try writer.finish()
        let large = sizes.allSatisfy { $0 >= MatchFinderChooser.smallestMeasured }
        #expect(large == (eventsAChunk == 6_000))
        if !chooses {
            #expect(writer.doubleFastChunks == 0)
        } else if level == 1 && large {
            #expect(writer.doubleFastChunks >= 1 && writer.doubleFastChunks <= 5)
        } else if large {
            // Level 3 chooses only for chunks the writer dropped to level 1
            // because others were waiting (a loaded machine).
            #expect(writer.doubleFastChunks <= writer.fasterChunks)
        } else {
            #expect(writer.doubleFastChunks == 0)
        }
        try Self.expectCounterChunks(path, chunks: 6, events: eventsAChunk)
    }

    /// Chunk `chunk` of a test trace: `events` counter events (values the chunk's own).
    static func counterChunk(_ chunk: Int, firstEvent: UInt64, events: Int) -> ChunkEncoder {
        var e = ChunkEncoder(firstEvent: firstEvent, baseTime: 0, checkpoint: nil, counters: [[UInt64](repeating: 0, count: 16)])
        for i in 0..<events { e.append(.counter(index: i & 3, value: UInt64(i &* 977 &+ chunk)), nic: 0) }
        return e
    }

    /// That the trace at `path` holds `chunks` chunks of ``counterChunk(_:firstEvent:events:)``, each as encoded.
    static func expectCounterChunks(_ path: String, chunks: Int, events: Int) throws {
        let reader = try TraceReader(path: path)
        #expect(reader.chunks.count == chunks)
        for chunk in 0..<chunks {
            var d = try reader.decoder(chunk)
            var i = 0
            while let event = try d.next() {
                #expect(event.body == .counter(index: i & 3, value: UInt64(i &* 977 &+ chunk)))
                i += 1
            }
            #expect(i == events)
        }
    }
}
