import Foundation
import Testing
@testable import TraceFormat

/// Format 1.5's address codes and predicted records: which code the encoder
/// picks for each access of a driver's frame, that every record decodes to
/// the very event, the history's reach, and hostile codes.
@Suite("Address codes and predicted records")
struct AddressCodeTests {
    /// Memory accesses in one ``frame(_:_:sizes:)``.
    static let accessesPerFrame = 6

    /// Frame `i` as a device sees a driver's split ring of 8: the avail
    /// index (0x2002), the ring slot (0x2004 + 2 × slot), the descriptor
    /// (0x1000 + 16 × slot) of a buffer at a new address every frame, the
    /// chain, the frame's 64 bytes 12 into the buffer, the used element
    /// (0x3004 + 8 × slot), the used index (0x3002), the publication and a
    /// counter. With `sizes`, each record's size is checked as it is written
    /// (format 1.6's, or 1.7's where the encoder writes cursor records).
    static func frame(_ e: inout ChunkEncoder, _ i: Int, sizes: Bool) {
        let slot = i % 8, buffer = 0x9000 + 0x100 * UInt64(i), cursors = e.cursors
        func check(_ before: Int, _ expected: Int, _ what: String) {
            if sizes { #expect(e.size - before == expected, "frame \(i): \(what)") }
        }
        // After the first frame: the index at the same address as a frame
        // before (one code byte), the slot and the descriptor after the
        // frame before's (one), stored; second time round the ring the slot
        // and the used element repeat their address's last bytes (same
        // address, 48 accesses back: two code bytes).
        var before = e.size
        [UInt8(truncatingIfNeeded: i + 1), 0].withUnsafeBytes { e.memoryRead(nic: 0, address: 0x2002, bytes: $0, ok: true) }
        // After the first frame, the index one more than a frame before: incremented (tag, code, amount 1).
        // 1.7: that one enters the index cache; from the third frame on, a cursor record (tag, entry and amount).
        if i > 0 { check(before, cursors && i > 1 ? 1 + 1 : 1 + 1 + 1, "avail index") }
        before = e.size
        [UInt8(slot), 0].withUnsafeBytes { e.memoryRead(nic: 0, address: 0x2004 + 2 * UInt64(slot), bytes: $0, ok: true) }
        // 1.7: the slot after the last is a cursor record (tag, amount); slot 0 again, second time
        // round, is not (and the cursor record before left no table entry at its address: the end
        // of the avail index's access 42 back, stored).
        if i > 0 && cursors { check(before, i == 8 ? 1 + 2 + 1 + 2 : 1 + 1, "ring slot") }
        if i > 0 && !cursors { check(before, i < 8 ? 1 + 1 + 1 + 2 : 1 + 2, "ring slot") }
        before = e.size
        let descriptor = RepeatRecordTests.descriptorBytes(buffer, 76, 0, 0)
        descriptor.withUnsafeBytes { e.memoryRead(nic: 0, address: 0x1000 + 16 * UInt64(slot), bytes: $0, ok: true) }
        // Second time round, the descriptor's own address (48 accesses back) comes first.
        if i > 0 { check(before, i < 8 ? 1 + 1 + 1 + 16 : 1 + 2 + 1 + 16, "descriptor") }
        before = e.size
        e.chain(nic: 0, queue: 1, head: UInt16(slot), count: 1) { _ in (buffer, 76, 0, 0) }
        check(before, 3, "chain at the head just read")
        before = e.size
        let payload = (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) }
        payload.withUnsafeBytes { e.memoryRead(nic: 0, address: buffer + 12, bytes: $0, ok: true) }
        check(before, 1 + 2 + 1 + 64, "frame in the chain's buffer")
        before = e.size
        [UInt8(slot), 0, 0, 0, 76, 0, 0, 0].withUnsafeBytes { e.memoryWrite(nic: 0, address: 0x3004 + 8 * UInt64(slot), bytes: $0, ok: true) }
        // 1.7: the element after the last is a cursor record (tag, id change, len); slot 0 again repeats.
        if i > 0 { check(before, cursors && i != 8 ? 1 + 1 + 1 : i < 8 ? 1 + 1 + 1 + 8 : 1 + 2, "used element") }
        before = e.size
        [UInt8(truncatingIfNeeded: i + 1), 0].withUnsafeBytes { e.memoryWrite(nic: 0, address: 0x3002, bytes: $0, ok: true) }
        if i > 0 { check(before, cursors && i > 1 ? 1 + 1 : 1 + 1 + 1, "used index") }
        before = e.size
        e.used(nic: 0, queue: 1, id: UInt32(slot), len: 76)
        check(before, 2, "used as written")
        e.counter(nic: 0, index: 0, value: UInt64(i + 1))
    }

    /// `content` decodes (with `predicts`) to the events `plain` (format 1.3)
    /// decodes to, bytes and descriptors included.
    static func expectSameEvents(_ content: [UInt8], _ plain: [UInt8], predicts: Bool = true, recalls: Bool = true, cursors: Bool = true) throws {
        var d = try ChunkDecoder(content: content, nics: 1, predicts: predicts, recalls: recalls, cursors: cursors)
        var p = try ChunkDecoder(content: plain, nics: 1, repeats: false)
        while let a = try p.next() {
            let b = try #require(try d.next())
            switch (a.body, b.body) {
            case (.memoryRead(let x, let n, let ok, let r), .memoryRead(let y, let m, let ok2, let q)),
                 (.memoryWrite(let x, let n, let ok, let r), .memoryWrite(let y, let m, let ok2, let q)):
                #expect(x == y && n == m && ok == ok2 && p.bytes(r) == d.bytes(q), "event \(a.number)")
            case (.chain, .chain):
                #expect(a.body == b.body && p.descriptors == d.descriptors, "event \(a.number)")
            default:
                #expect(a.body == b.body, "event \(a.number)")
            }
        }
        #expect(try d.next() == nil)
    }

    static func encoder(predicts: Bool = true, repeats: Bool = true, recalls: Bool = true, cursors: Bool = true) -> ChunkEncoder {
        ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [RepeatRecordTests.checkpoint()], counters: [], repeats: repeats, predicts: predicts, recalls: recalls, cursors: cursors)
    }

    /// Format 1.6 (`cursors` false) and 1.7.
    @Test(arguments: [false, true])
    func aDriversFramesTakeTheCodesTheyShouldAndDecodeToTheirEvents(cursors: Bool) throws {
        var e = Self.encoder(cursors: cursors), plain = Self.encoder(predicts: false, repeats: false), older = Self.encoder(predicts: false)
        var before = Self.encoder(cursors: false)
        for i in 0..<16 {
            Self.frame(&e, i, sizes: true)
            Self.frame(&plain, i, sizes: false)
            Self.frame(&older, i, sizes: false)
            Self.frame(&before, i, sizes: false)
        }
        #expect(e.eventCount == plain.eventCount && e.size < older.size && older.size < plain.size)
        if cursors { #expect(e.size < before.size) }
        try Self.expectSameEvents(e.content, plain.content, cursors: cursors)
    }

    /// The frame's accesses in the direct replay's matcher (which shares the
    /// field parsers) match the device's actions one by one.
    @Test func theMatcherTakesPredictedRecords() throws {
        var e = Self.encoder(), plain = Self.encoder(predicts: false, repeats: false)
        for i in 0..<10 {
            Self.frame(&e, i, sizes: false)
            Self.frame(&plain, i, sizes: false)
        }
        var d = try ChunkDecoder(content: e.content, nics: 1)
        var p = try ChunkDecoder(content: plain.content, nics: 1, repeats: false)
        var matched = 0
        while let ev = try p.next() {
            let outcome: RecordMatch
            switch ev.body {
            case .memoryRead(let address, let length, _, let r):
                var buffer = [UInt8](repeating: 0, count: length)
                outcome = buffer.withUnsafeMutableBytes { d.matchRead(nic: 0, address: address, into: $0) }
                #expect(buffer[...] == p.bytes(r), "event \(ev.number)")
            case .memoryWrite(let address, _, _, let r):
                let bytes = Array(p.bytes(r))
                outcome = bytes.withUnsafeBytes { d.matchWrite(nic: 0, address: address, from: $0) }
            case .chain(let queue, let head, let count):
                let list = p.descriptors
                outcome = d.matchChain(nic: 0, queue: queue, head: head, count: count) { list[$0] }
            case .used(let queue, let id, let len):
                outcome = d.matchUsed(nic: 0, queue: queue, id: id, len: len)
            case .counter(let index, let value):
                outcome = d.matchCounter(nic: 0, index: index, value: value)
            default:
                Issue.record("unexpected \(ev.body)")
                return
            }
            #expect(outcome == .matched, "event \(ev.number)")
            matched += 1
        }
        #expect(matched == 90)
        // A used publication with another id than the element written is no match.
        var f = Self.encoder()
        Self.frame(&f, 0, sizes: false)
        var m = try ChunkDecoder(content: f.content, nics: 1)
        while m.position < f.size {
            var copy = m
            if copy.matchUsed(nic: 0, queue: 1, id: 0, len: 76) == .matched {
                #expect(m.matchUsed(nic: 0, queue: 1, id: 1, len: 76) == .mismatch)
                return
            }
            _ = try m.next()
        }
        Issue.record("no used record")
    }

    /// An access `reach` accesses back is reached, one more is not (the
    /// encoder falls back to the delta, and a decoder refuses the code):
    /// 256 in format 1.5, 4096 from 1.6.
    @Test(arguments: [(false, 256), (true, 4096)])
    func theHistoryReachesItsFormatsAccesses(recalls: Bool, reach: Int) throws {
        #expect(AddressCode.reach(recalls: recalls) == reach)
        for between in [reach - 1, reach] {
            var e = Self.encoder(recalls: recalls), plain = Self.encoder(predicts: false, repeats: false)
            for x in [0, 1] as [UInt8] {
                // x = 0: the first access at 0x2002; x = 1: the same address again after `between` others.
                if x == 1 {
                    for j in 0..<between {
                        [UInt8(truncatingIfNeeded: j)].withUnsafeBytes {
                            e.memoryRead(nic: 0, address: 0x10_0000 + 64 * UInt64(j), bytes: $0, ok: true)
                            plain.memoryRead(nic: 0, address: 0x10_0000 + 64 * UInt64(j), bytes: $0, ok: true)
                        }
                    }
                }
                let before = e.size
                [x, 0].withUnsafeBytes { e.memoryRead(nic: 0, address: 0x2002, bytes: $0, ok: true) }
                [x, 0].withUnsafeBytes { plain.memoryRead(nic: 0, address: 0x2002, bytes: $0, ok: true) }
                if x == 1 {
                    // `reach` back: ((reach - 1) << 2 | 1), a varint of two bytes.
                    let code = UInt64(e.content[before + 1] & 0x7F) | UInt64(e.content[before + 2]) << 7
                    #expect(between == reach - 1 ? e.content[before + 1] & 0x80 != 0 && code == UInt64(reach - 1) << 2 | AddressCode.same
                                                 : UInt64(e.content[before + 1]) & 3 == AddressCode.delta,
                            "\(between) between")
                }
            }
            try Self.expectSameEvents(e.content, plain.content, recalls: recalls)
        }
        // `reach` + 44 accesses, then a code one past the reach.
        var far = ByteWriter(capacity: 4)
        far.varint(UInt64(reach) << 2 | AddressCode.same)
        let (d0, at) = try RepeatRecordTests.hostile([RecordCode.tag(code: TraceEventKind.memoryRead.rawValue)] + far.bytes + [2, 0, 0],
                                                     predicts: true, recalls: recalls) { e in
            for j in 0..<(reach + 44) { [UInt8(1)].withUnsafeBytes { e.memoryRead(nic: 0, address: 0x10_0000 + 64 * UInt64(j), bytes: $0, ok: true) } }
        }
        var d = d0
        #expect(throws: ChunkDecodeError(offset: at, "address code names memory access \(reach + 1) back; the chunk has \(reach + 44) before it and the history keeps \(reach)")) { _ = try d.next() }
    }

    @Test func hostileCodesAreErrors() throws {
        let read = RecordCode.tag(code: TraceEventKind.memoryRead.rawValue)
        // Two accesses back, one made.
        var (d, at) = try RepeatRecordTests.hostile([read, 1 << 2 | 1, 2, 0, 0], predicts: true) { e in
            [UInt8(1), 0].withUnsafeBytes { e.memoryRead(nic: 0, address: 0x2002, bytes: $0, ok: true) }
        }
        #expect(throws: ChunkDecodeError(offset: at, "address code names memory access 2 back; the chunk has 1 before it and the history keeps 4096")) { _ = try d.next() }
        // The end of access 1 back: 0x2004.
        (d, at) = try RepeatRecordTests.hostile([read, 0 << 2 | 2, 2, 7, 0], predicts: true) { e in
            [UInt8(1), 0].withUnsafeBytes { e.memoryRead(nic: 0, address: 0x2002, bytes: $0, ok: true) }
        }
        #expect(try d.next()?.body == .memoryRead(address: 0x2004, length: 2, ok: true, bytes: (at + 3)..<(at + 5)))
        // Descriptor 1 of a one-descriptor chain; no chain at all.
        (d, at) = try RepeatRecordTests.hostile([read, (1 + (1 | 4 << 2)) << 2 | 3, 2, 0, 0], predicts: true) { e in
            e.chain(nic: 0, queue: 1, head: 0, count: 1) { _ in (0x9000, 76, 0, 0) }
        }
        #expect(throws: ChunkDecodeError(offset: at, "address code names descriptor 1 of the last chain; it has 1 (of the first 4)")) { _ = try d.next() }
        (d, at) = try RepeatRecordTests.hostile([read, (1 + 0) << 2 | 3, 2, 0, 0], predicts: true)
        #expect(throws: ChunkDecodeError(offset: at, "address code names descriptor 0 of the last chain; it has 0 (of the first 4)")) { _ = try d.next() }
        // An absolute address: code 3, then the address.
        (d, at) = try RepeatRecordTests.hostile([read, 3, 0x89, 0xCF, 0x95, 0x9A, 0x12, 2, 5, 6], predicts: true)
        #expect(try d.next()?.body == .memoryRead(address: 0x1_2345_6789, length: 2, ok: true, bytes: (at + 8)..<(at + 10)))
        // A chain at the head with no 2-byte read before it; a used as written with no 8-byte write.
        (d, at) = try RepeatRecordTests.hostile([RecordCode.tag(code: PredictedRecord.chainAtHead), 1, 1], predicts: true) { e in
            RepeatRecordTests.descriptorBytes(0x9000, 76, 0, 0).withUnsafeBytes { e.memoryRead(nic: 0, address: 0x1000, bytes: $0, ok: true) }
        }
        #expect(throws: ChunkDecodeError(offset: at, "chain at the ring's head, but no 2-byte read came before it in this chunk")) { _ = try d.next() }
        (d, at) = try RepeatRecordTests.hostile([RecordCode.tag(code: PredictedRecord.usedAsWritten), 1], predicts: true, cursors: false) { e in
            [UInt8](repeating: 1, count: 4).withUnsafeBytes { e.memoryWrite(nic: 0, address: 0x3004, bytes: $0, ok: true) }
        }
        #expect(throws: ChunkDecodeError(offset: at, "used as written, but no 8-byte write came before it in this chunk")) { _ = try d.next() }
        // An incremented read at an address with no access, with a 4-byte one, or adding 2^16.
        let incremented = RecordCode.tag(code: PredictedRecord.incrementedRead)
        (d, at) = try RepeatRecordTests.hostile([incremented, 0, 1], predicts: true)
        #expect(throws: ChunkDecodeError(offset: at, "incremented read at 0x0 follows no 2-byte access in this chunk")) { _ = try d.next() }
        (d, at) = try RepeatRecordTests.hostile([incremented, 0 << 2 | 1, 1], predicts: true) { e in
            [UInt8](repeating: 1, count: 4).withUnsafeBytes { e.memoryRead(nic: 0, address: 0x2002, bytes: $0, ok: true) }
        }
        #expect(throws: ChunkDecodeError(offset: at, "incremented read at 0x2002 follows no 2-byte access in this chunk")) { _ = try d.next() }
        (d, at) = try RepeatRecordTests.hostile([incremented, 0 << 2 | 1, 0x80, 0x80, 0x04], predicts: true) { e in
            [UInt8](repeating: 1, count: 2).withUnsafeBytes { e.memoryRead(nic: 0, address: 0x2002, bytes: $0, ok: true) }
        }
        #expect(throws: ChunkDecodeError(offset: at, "incremented read adds 65536 (below 65,536)")) { _ = try d.next() }
        // Adding 0xFFFF wraps: 0x0101 + 0xFFFF = 0x0100, materialised after the content.
        (d, at) = try RepeatRecordTests.hostile([incremented, 0 << 2 | 1, 0xFF, 0xFF, 0x03], predicts: true) { e in
            [UInt8](repeating: 1, count: 2).withUnsafeBytes { e.memoryRead(nic: 0, address: 0x2002, bytes: $0, ok: true) }
        }
        let wrapped = try #require(try d.next())
        guard case .memoryRead(0x2002, 2, true, let r) = wrapped.body else { Issue.record("\(wrapped.body)"); return }
        #expect(d.bytes(r) == [0, 1] && r.lowerBound == at + 5)
        // In a 1.4 chunk the predicted records are unknown.
        (d, at) = try RepeatRecordTests.hostile([RecordCode.tag(code: PredictedRecord.usedAsWritten), 1])
        #expect(throws: ChunkDecodeError(offset: at, "unknown context record 9")) { _ = try d.next() }
    }
}

/// `traces/golden/format-vectors-1.5.vtrace`: format 1.5's address codes and
/// predicted records (sixteen of ``AddressCodeTests/frame(_:_:sizes:)``'s
/// frames, two round the ring; a failed read, an absolute address, a chain
/// of two descriptors and accesses in its second buffer, a partial read; then
/// a second chunk, whose history starts empty), written with the encoder.
/// Rewritten only with `VTRACE_WRITE_GOLDEN=1`.
@Suite("The format 1.5 vectors golden")
struct FormatVectors15GoldenTests {
    static var golden: String {
        URL(fileURLWithPath: FormatVectorsGoldenTests.golden).deletingLastPathComponent().appendingPathComponent("format-vectors-1.5.vtrace").path
    }

    static func write(to path: String) throws {
        try writeTwoChunkVectors(to: path, minor: 5, "format-vectors 1.5: address codes and predicted records (decode only)", first: { first in
            for i in 0..<16 { AddressCodeTests.frame(&first, i, sizes: false) }
            [UInt8(9), 9].withUnsafeBytes { first.memoryRead(nic: 0, address: 0x2002, bytes: $0, ok: false) }
            [UInt8(1), 2].withUnsafeBytes { first.memoryRead(nic: 0, address: 0xFFFF_0000_0000_0000, bytes: $0, ok: true) }
            RepeatRecordTests.descriptorBytes(0xA000, 12, 1, 2).withUnsafeBytes { first.memoryRead(nic: 0, address: 0x1010, bytes: $0, ok: true) }
            RepeatRecordTests.descriptorBytes(0xB000, 1500, 0, 0).withUnsafeBytes { first.memoryRead(nic: 0, address: 0x1020, bytes: $0, ok: true) }
            first.chain(nic: 0, queue: 0, head: 1, count: 2) { $0 == 0 ? (0xA000, 12, 1, 2) : (0xB000, 1500, 0, 0) }
            [UInt8](repeating: 3, count: 40).withUnsafeBytes { first.memoryWrite(nic: 0, address: 0xB000, bytes: $0, ok: true) }
            [UInt8](repeating: 4, count: 4).withUnsafeBytes {
                first.append(.memoryRead(address: 0xB100, length: 100, ok: true, bytes: $0), nic: 0)
            }
        }, next: { next in
            for i in 0..<3 { AddressCodeTests.frame(&next, i, sizes: false) }
        })
    }

    @Test func theVectorsAreWrittenAgainByteForByte() throws {
        try expectWrittenAgainByteForByte(Self.golden, Self.write(to:))
    }

    /// Read back through the file reader (address codes for 1.5): the
    /// second chunk's first frame is coded from nothing again, and both
    /// chunks hold the events the frames made.
    @Test func theVectorsDecode() throws {
        let reader = try TraceReader(path: Self.golden)
        #expect(reader.header.minorVersion == 5 && reader.chunks.count == 2)
        var d = try reader.decoder(1)
        var used: [TraceEvent.Body] = [], chains = 0, reads: [UInt64] = []
        while let e = try d.next() {
            switch e.body {
            case .used: used.append(e.body)
            case .chain(1, let head, 1): chains += 1; #expect(d.descriptors == [TraceDescriptor(addr: 0x9000 + 0x100 * UInt64(head), len: 76, flags: 0, next: 0)])
            case .memoryRead(let a, _, true, _): reads.append(a)
            default: break
            }
        }
        #expect(used == (0..<3).map { .used(queue: 1, id: UInt32($0), len: 76) } && chains == 3)
        #expect(reads == [0x2002, 0x2004, 0x1000, 0x900C, 0x2002, 0x2006, 0x1010, 0x910C, 0x2002, 0x2008, 0x1020, 0x920C])
    }
}

/// `traces/golden/format-vectors-1.6.vtrace`: format 1.6's reach and
/// recalled reads (sixteen frames as in the 1.5 vectors; a 64-byte read, a
/// descriptor, the same 64 bytes read elsewhere (recalled, one back); a
/// 2-byte read repeated 301 accesses later (an address code of 300, past
/// 1.5's reach); a second chunk of three frames), written with the encoder.
/// Rewritten only with `VTRACE_WRITE_GOLDEN=1`.
@Suite("The format 1.6 vectors golden")
struct FormatVectors16GoldenTests {
    static var golden: String {
        URL(fileURLWithPath: FormatVectorsGoldenTests.golden).deletingLastPathComponent().appendingPathComponent("format-vectors-1.6.vtrace").path
    }
    static let frame = (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }

    static func write(to path: String) throws {
        try writeTwoChunkVectors(to: path, minor: 6, "format-vectors 1.6: a far address code and a recalled read (decode only)", first: { first in
            for i in 0..<16 { AddressCodeTests.frame(&first, i, sizes: false) }
            Self.frame.withUnsafeBytes { first.memoryRead(nic: 0, address: 0xC000, bytes: $0, ok: true) }
            RepeatRecordTests.descriptorBytes(0xD000, 64, 0, 0).withUnsafeBytes { first.memoryRead(nic: 0, address: 0x1030, bytes: $0, ok: true) }
            Self.frame.withUnsafeBytes { first.memoryRead(nic: 0, address: 0xD000, bytes: $0, ok: true) }
            [UInt8(5), 0].withUnsafeBytes { first.memoryRead(nic: 0, address: 0xE000, bytes: $0, ok: true) }
            for j in 0..<300 { [UInt8(truncatingIfNeeded: j)].withUnsafeBytes { first.memoryRead(nic: 0, address: 0x10_0000 + 64 * UInt64(j), bytes: $0, ok: true) } }
            [UInt8(5), 0].withUnsafeBytes { first.memoryRead(nic: 0, address: 0xE000, bytes: $0, ok: true) }
        }, next: { next in
            for i in 0..<3 { AddressCodeTests.frame(&next, i, sizes: false) }
        })
    }

    @Test func theVectorsAreWrittenAgainByteForByte() throws {
        try expectWrittenAgainByteForByte(Self.golden, Self.write(to:))
    }

    /// Read back through the file reader: the recalled read holds the first
    /// read's bytes at its own address, and the far repeat its address and bytes.
    @Test func theVectorsDecode() throws {
        let reader = try TraceReader(path: Self.golden)
        #expect(reader.header.minorVersion == 6 && reader.chunks.count == 2)
        var d = try reader.decoder(0)
        var tail: [(UInt64, [UInt8])] = []
        while let e = try d.next() {
            if case .memoryRead(let a, _, true, let r) = e.body, a >= 0xC000 && a < 0x10_0000 { tail.append((a, Array(d.bytes(r)))) }
        }
        #expect(tail.map(\.0) == [0xC000, 0xD000, 0xE000, 0xE000])
        #expect(tail.count == 4 && tail[0].1 == Self.frame && tail[1].1 == Self.frame && tail[2].1 == [5, 0] && tail[3].1 == [5, 0])
        var second = try reader.decoder(1), events = 0
        while try second.next() != nil { events += 1 }
        #expect(UInt64(events) == reader.chunks[1].eventCount)
    }

    /// The two records 1.6 adds, at their exact sizes: the recalled read is
    /// its tag, a one-byte address code and the recent read it names; the
    /// far repeat its tag and a two-byte address code (300 back, `same`).
    @Test func theRecallAndTheFarRepeatTakeTheirBytes() throws {
        // The same accesses into a 1.6 and a 1.5 encoder; the sizes before the recall and before the far repeat.
        func accesses(_ e: inout ChunkEncoder) -> (Int, Int) {
            Self.frame.withUnsafeBytes { e.memoryRead(nic: 0, address: 0xC000, bytes: $0, ok: true) }
            RepeatRecordTests.descriptorBytes(0xD000, 64, 0, 0).withUnsafeBytes { e.memoryRead(nic: 0, address: 0x1030, bytes: $0, ok: true) }
            let recall = e.size
            Self.frame.withUnsafeBytes { e.memoryRead(nic: 0, address: 0x1040, bytes: $0, ok: true) }
            [UInt8(5), 0].withUnsafeBytes { e.memoryRead(nic: 0, address: 0xE000, bytes: $0, ok: true) }
            for j in 0..<300 { [UInt8(truncatingIfNeeded: j)].withUnsafeBytes { e.memoryRead(nic: 0, address: 0x10_0000 + 64 * UInt64(j), bytes: $0, ok: true) } }
            let far = e.size
            [UInt8(5), 0].withUnsafeBytes { e.memoryRead(nic: 0, address: 0xE000, bytes: $0, ok: true) }
            return (recall, far)
        }
        var e = AddressCodeTests.encoder(), older = AddressCodeTests.encoder(recalls: false)
        let (recall, far) = accesses(&e)
        let (recall5, far5) = accesses(&older)
        // Address 0x1040: where the last read ended (a delta of 0); recent read 1.
        #expect(Array(e.content[recall..<(recall + 3)]) == [RecordCode.tag(code: RecalledRecord.read), UInt8(AddressCode.delta), 1])
        let code = 300 << 2 | AddressCode.same
        #expect(Array(e.content[far...]) == [RecordCode.tag(code: RepeatRecord.read), UInt8(code & 0x7F) | 0x80, UInt8(code >> 7)])
        // 1.5 writes the bytes of the second frame, and the far repeat's address as a delta.
        #expect(older.content[recall5] == RecordCode.tag(code: TraceEventKind.memoryRead.rawValue) && older.size - far5 > 3)
        #expect(older.size > e.size + 60)
        var d = try ChunkDecoder(content: e.content, nics: 1), d5 = try ChunkDecoder(content: older.content, nics: 1, recalls: false)
        while let a = try d.next() {
            let b = try #require(try d5.next())
            #expect(a.body.kind == b.body.kind)
            if case .memoryRead(let x, let n, _, let r) = a.body, case .memoryRead(let y, let m, _, let q) = b.body {
                #expect(x == y && n == m && d.bytes(r) == d5.bytes(q))
            }
        }
        #expect(try d5.next() == nil)
    }

    /// A recalled or truncated payload in the last chain's buffers is coded
    /// as the place in them: in the first buffer (the encoder's shortcut)
    /// and in the second (its general path) alike, and each decodes to its
    /// address.
    @Test func aRecalledPayloadIsCodedAsItsPlaceInTheChain() throws {
        var e = AddressCodeTests.encoder()
        Self.frame.withUnsafeBytes { e.memoryRead(nic: 0, address: 0xC000, bytes: $0, ok: true) }
        e.chain(nic: 0, queue: 1, head: 0, descriptorCount: 2)
        e.descriptor(addr: 0x5000, len: 76, flags: 1, next: 1)
        e.descriptor(addr: 0x9000, len: 1500, flags: 0, next: 0)
        var at: [Int] = []
        for address in [0x500C, 0x9100] as [UInt64] {
            at.append(e.size)
            Self.frame.withUnsafeBytes { e.memoryRead(nic: 0, address: address, bytes: $0, ok: true) }
        }
        let tag = RecordCode.tag(code: RecalledRecord.read)
        func varint(_ v: UInt64) -> [UInt8] { var w = ByteWriter(); w.varint(v); return w.bytes }
        #expect(Array(e.content[at[0]..<at[1]]) == [tag] + varint(AddressCode.inChain(0, offset: 12)) + [0])
        #expect(Array(e.content[at[1]...]) == [tag] + varint(AddressCode.inChain(1, offset: 0x100)) + [0])
        // The same places, with only 4 of the 64 bytes kept (a snaplen).
        let truncated = RecordCode.tag(code: TruncatedMemoryRecord.code)
        for (address, code) in [(0x500C, AddressCode.inChain(0, offset: 12)), (0x9100, AddressCode.inChain(1, offset: 0x100))] as [(UInt64, UInt64)] {
            let before = e.size
            Self.frame.withUnsafeBytes { e.append(.memoryRead(address: address, length: 64, ok: true, bytes: UnsafeRawBufferPointer(rebasing: $0[0..<4])), nic: 0) }
            #expect(Array(e.content[before...]) == [truncated, 0] + varint(code) + [64, 4] + Self.frame[0..<4])
        }
        var d = try ChunkDecoder(content: e.content, nics: 1)
        var reads: [UInt64] = []
        while let event = try d.next() {
            if case .memoryRead(let address, 64, true, let r) = event.body {
                reads.append(address)
                #expect(Array(d.bytes(r)) == Array(Self.frame[0..<d.bytes(r).count]))
            }
        }
        #expect(reads == [0xC000, 0x500C, 0x9100, 0x500C, 0x9100])
    }

    /// A recalled read of a recent read that is not there, or past the four kept, is an error at its tag.
    @Test func aRecallOfNothingIsAnError() throws {
        let recalled = RecordCode.tag(code: RecalledRecord.read)
        var (d, at) = try RepeatRecordTests.hostile([recalled, 3, 0x80, 0x20, 0], predicts: true)
        #expect(throws: ChunkDecodeError(offset: at, "recalled read names recent read 0; the chunk has fewer")) { _ = try d.next() }
        (d, at) = try RepeatRecordTests.hostile([recalled, 3, 0x80, 0x20, 4], predicts: true) { e in
            for j in 0..<5 { [UInt8](repeating: UInt8(j), count: 8).withUnsafeBytes { e.memoryRead(nic: 0, address: 0x3000 + 8 * UInt64(j), bytes: $0, ok: true) } }
        }
        #expect(throws: ChunkDecodeError(offset: at, "recalled read names recent read 4; the chunk has fewer")) { _ = try d.next() }
        (d, at) = try RepeatRecordTests.hostile([recalled, 3, 0x80, 0x20, 0], predicts: true, recalls: false)
        #expect(throws: ChunkDecodeError(offset: at, "unknown context record 12")) { _ = try d.next() }
    }
}
