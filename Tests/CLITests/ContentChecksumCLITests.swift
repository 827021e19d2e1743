import Foundation
import Testing
import TraceFormat

/// `--content-checksums` reaches the recorder: with it every chunk's zstd
/// frame carries zstd's content checksum, without it (the default) none
/// does, and `vtrace verify` and `replay` pass both.
@Suite("Content checksums on the command line")
struct ContentChecksumCLITests {
    @Test func theFlagDecidesEveryChunksChecksum() throws {
        let scenario = repositoryRoot.appendingPathComponent("traces/scenarios/long-drain.scenario").path
        for asked in [false, true] {
            let out = try temporaryFile("content-checksums-\(asked).vtrace", [])
            let record = try CLI.runArguments(["record", "--scenario", scenario, "-o", out, "--flush-events", "200"]
                                              + (asked ? ["--content-checksums"] : []))
            #expect(record.status == 0, "\(record.stderr)")
            let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: out)))
            let chunks = try TraceReader(path: out).chunks
            #expect(chunks.count >= 5)
            // zstd's Content_Checksum_flag: bit 2 of the byte after the frame's magic.
            #expect(chunks.allSatisfy { (file[Int($0.offset) + 4] & 0x04 != 0) == asked }, "asked: \(asked)")
            #expect(try CLI.run("verify", out).status == 0)
            #expect(try CLI.run("replay", out).status == 0)
        }
        #expect(try CLI.run("record", "--help").stdout.contains("--content-checksums"))
    }
}
