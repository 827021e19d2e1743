import Foundation
import GuestDriver
import Testing
import TraceFormat

/// The CRC-32 of every frame: the folded path (carry-less multiplication)
/// agrees with the tables at every length, alignment and seed, and both with
/// zlib's crc32.
@Suite("CRC-32")
struct CRC32Tests {
    /// zlib.crc32 of these inputs (Python's zlib), an independent reference.
    @Test func agreesWithZlib() {
        let ramp = (0..<1024).map { UInt8(truncatingIfNeeded: $0) }
        #expect(CRC32.checksum(ramp) == 0xB70B_4C26)
        #expect(CRC32.checksum([UInt8](repeating: 0, count: 1000)) == 0x060B_1780)
        #expect(CRC32.checksum((0..<77).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }) == 0x05C9_59DD)
        ramp.withUnsafeBytes { #expect(CRC32.checksumByTables($0) == 0xB70B_4C26) }
    }

    /// Lengths 0 to 700 at each of 16 alignments, each with a seed: the
    /// folded result is the tables' (64 bytes and up fold; the tail of up to
    /// 15 bytes and anything shorter goes by table).
    @Test func foldingAgreesWithTheTablesEverywhere() {
        var rng = SplitMix64(seed: 0xC3C3_2024)  // seeded: a failure re-runs exactly
        let bytes = (0..<(700 + 16)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        bytes.withUnsafeBytes { all in
            for offset in 0..<16 {
                for length in 0...700 {
                    let slice = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                    let seed = UInt32.random(in: 0...UInt32.max, using: &rng)
                    let folded = CRC32.checksum(slice, seed: seed)
                    let tabled = CRC32.checksumByTables(slice, seed: seed)
                    if folded != tabled { Issue.record("length \(length) at offset \(offset), seed \(seed): \(folded) != \(tabled)"); return }
                }
            }
        }
    }

    /// A checksum continued from another's result is the checksum of the two
    /// together, across every split of a megabyte-sized input's first kilobyte.
    @Test func aChecksumContinuesAcrossPieces() {
        var rng = SplitMix64(seed: 0x5EED)
        let bytes = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        bytes.withUnsafeBytes { all in
            let whole = CRC32.checksum(all)
            #expect(whole == CRC32.checksumByTables(all))
            for split in 0..<1024 {
                let first = CRC32.checksum(UnsafeRawBufferPointer(rebasing: all[..<split]))
                if CRC32.checksum(UnsafeRawBufferPointer(rebasing: all[split...]), seed: first) != whole {
                    Issue.record("split at \(split)"); return
                }
            }
        }
    }

    /// The fold is used exactly where the CPU says it can be.
    @Test func foldsWhereTheCPUHasCarryLessMultiply() throws {
        #if arch(x86_64)
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        #expect(CRC32.folds == (flags.contains("pclmulqdq") && flags.contains("sse4_1")))
        #else
        #expect(!CRC32.folds)
        #endif
    }
}
