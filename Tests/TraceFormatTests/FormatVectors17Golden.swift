import Foundation
import Testing
@testable import TraceFormat

/// `traces/golden/format-vectors-1.7.vtrace`: format 1.7's ring cursors.
/// The first chunk holds sixteen frames of ``AddressCodeTests/frame(_:_:sizes:)``
/// (each cursor in use, second time round the ring too); five indices, the
/// fifth taking the oldest entry; an index that wraps from 0xFFFF to 1 and
/// a used id that wraps from 2^32 − 1 to 0; a failed index read and a
/// failed element write (no cursor records). The second chunk (its cursors
/// empty again) starts with a used publication as written before any write
/// (id 0, len 0), a read at address 2^64 − 1 (an empty entry's) and a ring
/// slot at address 1 (an empty ring cursor's next), then three frames.
/// Written with the encoder; rewritten only with `VTRACE_WRITE_GOLDEN=1`.
@Suite("The format 1.7 vectors golden")
struct FormatVectors17GoldenTests {
    static var golden: String {
        URL(fileURLWithPath: FormatVectorsGoldenTests.golden).deletingLastPathComponent().appendingPathComponent("format-vectors-1.7.vtrace").path
    }

    static func write(to path: String) throws {
        try writeTwoChunkVectors(to: path, minor: 7, "format-vectors 1.7: ring cursors (decode only)", first: { first in
            for i in 0..<16 { AddressCodeTests.frame(&first, i, sizes: false) }
            for round in 0..<3 { for a: UInt64 in [0x100, 0x200, 0x300, 0x400] { RingCursorTests.read(&first, a, RingCursorTests.u16(UInt16(round))) } }
            RingCursorTests.read(&first, 0x500, RingCursorTests.u16(0))
            RingCursorTests.read(&first, 0x500, RingCursorTests.u16(0))
            RingCursorTests.read(&first, 0x100, RingCursorTests.u16(3))
            RingCursorTests.read(&first, 0x300, RingCursorTests.u16(3))
            RingCursorTests.read(&first, 0x600, RingCursorTests.u16(0xFFFF))
            RingCursorTests.read(&first, 0x600, RingCursorTests.u16(0xFFFF))
            RingCursorTests.read(&first, 0x600, RingCursorTests.u16(1))
            RingCursorTests.write(&first, 0x7000, RingCursorTests.element(.max, 64))
            RingCursorTests.write(&first, 0x7008, RingCursorTests.element(0, 1514))
            first.used(nic: 0, queue: 0, id: 0, len: 1514)
            RingCursorTests.read(&first, 0x600, RingCursorTests.u16(2), ok: false)
            RingCursorTests.write(&first, 0x7010, RingCursorTests.element(1, 60), ok: false)
        }, next: { next in
            next.used(nic: 0, queue: 1, id: 0, len: 0)
            RingCursorTests.read(&next, .max, RingCursorTests.u16(9))
            RingCursorTests.read(&next, 1, RingCursorTests.u16(4))
            for i in 0..<3 { AddressCodeTests.frame(&next, i, sizes: false) }
        })
    }

    @Test func theVectorsAreWrittenAgainByteForByte() throws {
        try expectWrittenAgainByteForByte(Self.golden, Self.write(to:))
    }

    /// Read back through the file reader: the cursor records are there, and
    /// the edges decode to their accesses.
    @Test func theVectorsDecode() throws {
        let reader = try TraceReader(path: Self.golden)
        #expect(reader.header.minorVersion == 7 && reader.chunks.count == 2)
        var d = try reader.decoder(0), cursorRecords = 0, wrapped: [[UInt8]] = []
        while !d.atEnd {
            if d.buffer.bytes[d.position] == RingCursorTests.tag { cursorRecords += 1 }
            let e = try #require(try d.next())
            switch e.body {
            case .memoryRead(0x600, 2, true, let r), .memoryWrite(0x7008, 8, true, let r): wrapped.append(Array(d.bytes(r)))
            default: break
            }
        }
        // The frames: the avail index from frame 2 (14), the ring slot but frame 8's (15: frame 0's
        // follows the avail index's plain read), the used element from frame 1 but frame 8's (14),
        // the used index from frame 2 (14); the indices' third round and 0x300 (5); 0x600's wrap; 0x7008.
        #expect(cursorRecords == 14 + 15 + 14 + 14 + 5 + 1 + 1)
        #expect(wrapped == [[0xFF, 0xFF], [0xFF, 0xFF], [1, 0], RingCursorTests.element(0, 1514)])
        var second = try reader.decoder(1)
        #expect(try second.next()?.body == .used(queue: 1, id: 0, len: 0))
        var e = try #require(try second.next())
        guard case .memoryRead(UInt64.max, 2, true, let r0) = e.body else { Issue.record("\(e.body)"); return }
        e = try #require(try second.next())
        guard case .memoryRead(1, 2, true, let r1) = e.body else { Issue.record("\(e.body)"); return }
        #expect(second.bytes(r0) == [9, 0] && second.bytes(r1) == [4, 0])
        var events = 3
        while try second.next() != nil { events += 1 }
        #expect(UInt64(events) == reader.chunks[1].eventCount)
    }
}
