import Foundation
import Testing

/// A scenario's host memory follows what it writes, not what it fills
/// (issue 19, item 5: `memory 4G` + `mem fill 0 4G 0` reached 4.2 GB).
@Suite("Scenario memory")
struct ScenarioMemoryCLITests {
    static let limit = 200 << 20

    func run(_ name: String, _ text: String) throws -> CLI.Measured {
        let path = try temporaryFile(name, Array(text.utf8))
        return try CLI.runMeasured(["scenario", "run", path, "--summary"])
    }

    @Test func aZeroFillOfFourGigabytesStaysUnbacked() throws {
        let r = try run("fill-zero.scenario", "memory 4G\nmem fill 0 4G 0\nmem expect 0xFFFFFFFF 00\n")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasSuffix("fill-zero.scenario: passed (1 expectation, 2 operations)\n"), "\(r.stdout)")
        #expect(r.maxRSSBytes < Self.limit, "\(r.maxRSSBytes) bytes resident")
    }

    /// The fill that took seconds and 4.2 GB: it now takes neither, and the
    /// memory reads and writes as if it had been written byte by byte.
    @Test func aNonZeroFillOfFourGigabytesReadsBackWithoutBackingIt() throws {
        let r = try run("fill-ab.scenario", """
            memory 4G
            mem fill 0 4G 0xab
            mem expect 0 abab
            mem expect 0xFFFFFFFE abab
            mem write 0x100001 01
            mem expect 0x100000 ab01ab
            mem fill 0x100001 0x100000 0
            mem expect 0x100000 ab0000
            mem expect 0x200000 00ab
            driver init
            rx post
            tx send len=64
            expect counters tx_packets=1 rx_packets=1

            """)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.hasSuffix("fill-ab.scenario: passed (6 expectations, 12 operations)\n"), "\(r.stdout)")
        #expect(r.maxRSSBytes < Self.limit, "\(r.maxRSSBytes) bytes resident")
    }

    @Test func layoutsPastTheLimitsAreRefusedAtTheirLine() throws {
        let many = "memory 1M\n" + (1...64).map { "memory map 0x\(String($0 << 24, radix: 16)) 1M\n" }.joined()
        let r = try run("many-regions.scenario", many)
        #expect(r.status == 2)
        #expect(r.stderr.hasSuffix("many-regions.scenario:65:1: 65 memory regions; the limit is 64\n"), "\(r.stderr)")
        let big = try run("too-big.scenario", "memory 1024G\nmemory map 0x10000000000 1M\n")
        #expect(big.status == 2)
        #expect(big.stderr.hasSuffix("too-big.scenario:2:1: memory regions add up to 0x10000100000 bytes; the limit is 0x10000000000 (1 TiB)\n"),
                "\(big.stderr)")
    }
}
