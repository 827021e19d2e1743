import Foundation
import Testing
import TraceFormat

/// A chunk's zstd frame carries zstd's XXH64 content checksum only when its
/// writer was asked to; a reader reads either, checking the checksum or not.
@Suite("Content checksums")
struct ContentChecksumTests {
    /// zstd's frame header descriptor (the byte after the frame's magic)
    /// flags a content checksum with bit 2 (RFC 8878, 3.1.1.1.1).
    static func carriesChecksum(_ file: [UInt8], _ chunk: ChunkEntry) -> Bool {
        file[Int(chunk.offset) + 4] & 0x04 != 0
    }

    @Test(arguments: [true, false])
    func chunksCarryTheChecksumTheWriterWasAskedFor(_ checksums: Bool) throws {
        let path = NSTemporaryDirectory() + "/content-checksum-\(checksums)-\(getpid()).vtrace"
        defer { unlink(path) }
        let writer = try TraceWriter(path: path, header: TraceHeader(), level: 1, queueDepth: 64, contentChecksums: checksums)
        #expect(writer.contentChecksums == checksums)
        var first: UInt64 = 0
        for chunk in 0..<3 {
            var e = ChunkEncoder(firstEvent: first, baseTime: 0, checkpoint: nil, counters: [[UInt64](repeating: 0, count: 16)])
            for i in 0..<2_000 { e.append(.counter(index: i & 7, value: UInt64(i &* 31 &+ chunk)), nic: 0) }
            first += e.eventCount
            try writer.submit(e)
        }
        _ = try writer.finish()
        let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        for verifying in [true, false] {
            let reader = try TraceReader(path: path)
            reader.verifiesContentChecksums = verifying
            #expect(reader.chunks.count == 3)
            for (c, entry) in reader.chunks.enumerated() {
                #expect(Self.carriesChecksum(file, entry) == checksums, "chunk \(c)")
                var d = try reader.decoder(c)
                var i = 0
                while let event = try d.next() {
                    #expect(event.body == .counter(index: i & 7, value: UInt64(i &* 31 &+ c)))
                    i += 1
                }
                #expect(i == 2_000)
            }
        }
    }

    /// The checksum has teeth where it is kept: a frame whose stored XXH64
    /// is wrong (its CRC-32 made to match, as a writer's bug would) fails to
    /// decompress when checksums are verified, and not otherwise.
    @Test func aWrongChecksumFailsOnlyAReaderThatVerifies() throws {
        let source = [UInt8]((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let frame = try source.withUnsafeBytes { try ZstdCompressor(level: 1).compress($0) }
        var broken = frame
        broken[broken.count - 1] ^= 0x55   // the XXH64's last byte ends the frame
        let decompressor = ZstdDecompressor()
        var out = [UInt8](repeating: 0, count: source.count)
        #expect(throws: ZstdError.self) {
            try broken.withUnsafeBytes { f in try out.withUnsafeMutableBytes { try decompressor.decompress(f, into: $0) } }
        }
        #expect(decompressor.verifyContentChecksum(false))
        try broken.withUnsafeBytes { f in try out.withUnsafeMutableBytes { try decompressor.decompress(f, into: $0) } }
        #expect(out == source)
        let bare = try source.withUnsafeBytes { try ZstdCompressor(level: 1, contentChecksum: false).compress($0) }
        #expect(bare.count == frame.count - 4 && bare[4] & 0x04 == 0 && frame[4] & 0x04 != 0)
    }
}
