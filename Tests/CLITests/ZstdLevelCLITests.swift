import Foundation
import Testing
import TraceFormat

/// `--level`: zstd's levels 1...19 and its fast levels, written --level=-N.
@Suite("Recording --level (CLI)")
struct ZstdLevelCLITests {
    @Test func aFastLevelRecordsATraceThatReplaysAlike() throws {
        let scenario = try FlightRecorderCLITests.scenario(200)
        let fast = try temporaryFile("level-fast.vtrace", []), usual = try temporaryFile("level-usual.vtrace", [])
        let f = try CLI.run("record", "--scenario", scenario, "-o", fast, "--level=-5")
        let u = try CLI.run("record", "--scenario", scenario, "-o", usual, "--level", "1")
        #expect(f.status == 0 && u.status == 0, "\(f.stderr) \(u.stderr)")
        // The same events, whatever the level.
        let a = try TraceReader(path: fast), b = try TraceReader(path: usual)
        #expect(a.eventCount == b.eventCount && a.eventCount > 60_000)
        #expect(try CLI.run("replay", "--check", fast).status == 0)
        // Event for event, but for the times (each recording has its own clock).
        let untimed = { (path: String) throws -> [String] in
            try CLI.run("dump", "--json", path).stdout.split(separator: "\n").map { String($0.replacing(/"t":[0-9]+,/, with: "")) }
        }
        #expect(try untimed(fast) == untimed(usual))
    }

    @Test func levelsOutsideZstdsRangesAreBadUsage() throws {
        let scenario = try FlightRecorderCLITests.scenario(1)
        for bad in ["--level=0", "--level=-51", "--level=20"] {
            let r = try CLI.run("record", "--scenario", scenario, "-o", try temporaryFile("level-bad.vtrace", []), bad)
            #expect(r.status == 2 && r.stderr.contains("--level must be in 1...19 or, for zstd's fast levels, -50...-1"), "\(bad): \(r.stderr)")
        }
    }
}
