import Foundation
import Testing
@testable import TraceFormat

/// Format 1.4's repeat records: what the encoder writes as a repeat, that it
/// decodes to the very event, and that hostile repeat records are errors.
@Suite("Repeat records")
struct RepeatRecordTests {
    static func checkpoint() -> NICCheckpoint {
        var cp = NICCheckpoint()
        cp.queues = [QueueCheckpoint(), QueueCheckpoint()]
        return cp
    }

    static func descriptorBytes(_ addr: UInt64, _ len: UInt32, _ flags: UInt16, _ next: UInt16) -> [UInt8] {
        var b: [UInt8] = []
        withUnsafeBytes(of: addr.littleEndian) { b += $0 }
        withUnsafeBytes(of: len.littleEndian) { b += $0 }
        withUnsafeBytes(of: flags.littleEndian) { b += $0 }
        withUnsafeBytes(of: next.littleEndian) { b += $0 }
        return b
    }

    /// An address other than `address` whose repeat-table slot is the same.
    static func collidingAddress(_ address: UInt64) -> UInt64 {
        var a = address + 2
        while RepeatTable.slot(of: a) != RepeatTable.slot(of: address) { a += 2 }
        return a
    }

    /// One chunk of every repeat case, each access's record size checked as
    /// it is written when the encoder writes 1.4's repeats (a repeat is its
    /// tag and a one-byte address delta; 1.5's address codes are
    /// `AddressCodeTests`').
    static func write(_ e: inout ChunkEncoder) {
        func read(_ address: UInt64, _ bytes: [UInt8], ok: Bool = true, size: Int? = nil) {
            let before = e.size
            bytes.withUnsafeBytes { e.memoryRead(nic: 0, address: address, bytes: $0, ok: ok) }
            if let size, e.repeats && !e.predicts { #expect(e.size - before == size, "read at \(address)") }
        }
        func write(_ address: UInt64, _ bytes: [UInt8], ok: Bool = true, size: Int? = nil) {
            let before = e.size
            bytes.withUnsafeBytes { e.memoryWrite(nic: 0, address: address, bytes: $0, ok: ok) }
            if let size, e.repeats && !e.predicts { #expect(e.size - before == size, "write at \(address)") }
        }
        func chain(_ descriptors: [(UInt64, UInt32, UInt16, UInt16)], size: Int? = nil) {
            let before = e.size
            e.chain(nic: 0, queue: 1, head: 3, count: descriptors.count) { descriptors[$0] }
            if let size, e.repeats && !e.predicts { #expect(e.size - before == size, "chain \(descriptors)") }
        }
        e.append(.mmioWrite(offset: 0x50, width: 4, value: 1), nic: 0, vcpu: 0, time: 10)
        // avail.idx read twice, moved, read twice more.
        read(0x2002, [5, 0], size: 7)
        read(0x2002, [5, 0], size: 2)
        read(0x2002, [6, 0], size: 5)
        read(0x2002, [6, 0], size: 2)
        // A descriptor read, then its chain; two descriptors, then theirs.
        read(0x1000, descriptorBytes(0x9000, 76, 0, 0), size: 20)
        chain([(0x9000, 76, 0, 0)], size: 4)
        read(0x1010, descriptorBytes(0xA000, 12, 1, 2), size: 19)
        read(0x1020, descriptorBytes(0xB000, 1500, 0, 0), size: 19)
        chain([(0xA000, 12, 1, 2), (0xB000, 1500, 0, 0)], size: 4)
        // The first descriptor read again: a repeat, and a recent read still.
        read(0x1000, descriptorBytes(0x9000, 76, 0, 0), size: 2)
        chain([(0x9000, 76, 0, 0)], size: 4)
        // Descriptors that are not the reads just made: a plain chain.
        chain([(0x9000, 77, 0, 0)])
        // A used element written twice at its address; the second is a repeat.
        write(0x3008, [3, 0, 0, 0, 76, 0, 0, 0], size: 13)
        write(0x3008, [3, 0, 0, 0, 76, 0, 0, 0], size: 2)
        // A write that repeats a recent read (a reference), then again at its address.
        write(0x4000, descriptorBytes(0x9000, 76, 0, 0), size: 4)
        write(0x4000, descriptorBytes(0x9000, 76, 0, 0), size: 2)
        // Two addresses of one slot: the later takes it.
        let other = collidingAddress(0x2002)
        read(other, [1, 1])
        read(0x2002, [6, 0])                   // the slot is other's: stored again
        read(0x2002, [6, 0], size: 2)
        // Failed accesses and accesses over 16 bytes are never remembered.
        read(0x5000, [1, 2], ok: false)
        read(0x5000, [1, 2], size: 5)          // a failed read stores no bytes: this is the first
        write(0x6000, [9, 9], ok: false)
        write(0x6000, [9, 9], size: 5)
        let long = [UInt8](repeating: 7, count: 17)
        read(0x7000, long)
        read(0x7000, long, size: 20)
    }

    /// In 1.4 and in 1.5 (address codes as well).
    @Test(arguments: [false, true]) func eachRepeatDecodesToTheEventItStandsFor(predicts: Bool) throws {
        var e = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [Self.checkpoint()], counters: [], predicts: predicts)
        Self.write(&e)
        var plain = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [Self.checkpoint()], counters: [], repeats: false)
        Self.write(&plain)
        #expect(e.eventCount == plain.eventCount && e.size < plain.size)
        try AddressCodeTests.expectSameEvents(e.content, plain.content, predicts: predicts)
    }

    /// Chunks decode alone: an access repeated in the next chunk is stored there again.
    @Test func theTableIsEmptyAtEachChunk() throws {
        var first = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [Self.checkpoint()], counters: [])
        [UInt8]([5, 0]).withUnsafeBytes { first.memoryRead(nic: 0, address: 0x2002, bytes: $0, ok: true) }
        var next = ChunkEncoder(firstEvent: 1, baseTime: 0, checkpoint: [Self.checkpoint()], counters: [])
        let before = next.size
        [UInt8]([5, 0]).withUnsafeBytes { next.memoryRead(nic: 0, address: 0x2002, bytes: $0, ok: true) }
        #expect(next.size - before == 7)
    }

    /// A decoder just before `record`, written after what `after` encodes
    /// (in 1.4, or with `predicts` in 1.7, 1.6 without `cursors`, or 1.5
    /// without `recalls`), and the record's offset.
    static func hostile(_ record: [UInt8], predicts: Bool = false, recalls: Bool = true, cursors: Bool = true,
                        after: (inout ChunkEncoder) -> Void = { _ in }) throws -> (ChunkDecoder, Int) {
        var e = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [Self.checkpoint()], counters: [], predicts: predicts, recalls: recalls, cursors: cursors)
        after(&e)
        let at = e.size
        e.appendRaw(record)
        var d = try ChunkDecoder(content: e.content, nics: 1, predicts: predicts, recalls: recalls, cursors: cursors)
        while d.position < at { _ = try d.next() }
        return (d, at)
    }

    @Test func aRepeatOfNothingIsAnError() throws {
        var (d, at) = try Self.hostile([RecordCode.tag(code: RepeatRecord.read), 0x84, 0x80, 0x01])  // address 0x2002 (zigzag 0x4004)
        #expect(throws: ChunkDecodeError(offset: at, "repeated read at 0x2002 repeats no access in this chunk")) { _ = try d.next() }
        // The slot holds another address.
        let other = Self.collidingAddress(0x2002)
        (d, at) = try Self.hostile([RecordCode.tag(code: RepeatRecord.write), 0]) { e in
            [UInt8]([1, 1]).withUnsafeBytes { e.memoryWrite(nic: 0, address: other, bytes: $0, ok: true) }
            [UInt8]([0, 0]).withUnsafeBytes { e.memoryWrite(nic: 0, address: 0x2000, bytes: $0, ok: false) }  // the write end: 0x2002
        }
        #expect(throws: ChunkDecodeError(offset: at, "repeated write at 0x2002 repeats no access in this chunk")) { _ = try d.next() }
    }

    @Test func aChainAsReadNeedsItsDescriptorReads() throws {
        let tag = RecordCode.tag(code: RepeatRecord.chainAsRead)
        for count: UInt8 in [0, 5] {
            var (d, at) = try Self.hostile([tag, 1, 3, count])
            #expect(throws: ChunkDecodeError(offset: at, "chain as read claims \(count) descriptors (1 to 4)")) { _ = try d.next() }
        }
        // One 16-byte read, two descriptors claimed; a read of another length.
        var (d, at) = try Self.hostile([tag, 1, 3, 2]) { e in
            Self.descriptorBytes(1, 2, 3, 4).withUnsafeBytes { e.memoryRead(nic: 0, address: 0x1000, bytes: $0, ok: true) }
        }
        #expect(throws: ChunkDecodeError(offset: at, "chain as read refers to 2 descriptor reads that are not there")) { _ = try d.next() }
        (d, at) = try Self.hostile([tag, 1, 3, 1]) { e in
            [UInt8](repeating: 1, count: 12).withUnsafeBytes { e.memoryRead(nic: 0, address: 0x1000, bytes: $0, ok: true) }
        }
        #expect(throws: ChunkDecodeError(offset: at, "chain as read refers to 1 descriptor reads that are not there")) { _ = try d.next() }
    }
}

/// `traces/golden/format-vectors-1.4.vtrace`: the repeat records of format
/// 1.4 (``RepeatRecordTests/write(_:)``'s chunk, then a second chunk whose
/// table starts empty), written with the encoder. Rewritten only with
/// `VTRACE_WRITE_GOLDEN=1`.
@Suite("The format 1.4 vectors golden")
struct FormatVectors14GoldenTests {
    static var golden: String {
        URL(fileURLWithPath: FormatVectorsGoldenTests.golden).deletingLastPathComponent().appendingPathComponent("format-vectors-1.4.vtrace").path
    }

    static func write(to path: String) throws {
        try writeTwoChunkVectors(to: path, minor: 4, "format-vectors 1.4: repeat records (decode only)",
                                 first: { RepeatRecordTests.write(&$0) },
                                 next: { next in
                                     [UInt8]([6, 0]).withUnsafeBytes { next.memoryRead(nic: 0, address: 0x2002, bytes: $0, ok: true) }
                                     [UInt8]([6, 0]).withUnsafeBytes { next.memoryRead(nic: 0, address: 0x2002, bytes: $0, ok: true) }
                                 })
    }

    @Test func theVectorsAreWrittenAgainByteForByte() throws {
        try expectWrittenAgainByteForByte(Self.golden, Self.write(to:))
    }

    /// Read back through the file reader (which keeps the table for 1.4): the
    /// second chunk's first read is stored, its second a repeat of it.
    @Test func theVectorsDecode() throws {
        let reader = try TraceReader(path: Self.golden)
        #expect(reader.header.minorVersion == 4 && reader.chunks.count == 2)
        var d = try reader.decoder(1)
        var reads: [[UInt8]] = []
        while let e = try d.next() {
            if case .memoryRead(0x2002, 2, true, let r) = e.body { reads.append(Array(d.bytes(r))) }
        }
        #expect(reads == [[6, 0], [6, 0]])
    }
}

/// A decoder is a value: a copy taken at any point decodes on its own, the
/// two interleaved or one after the other (the table is copied before a
/// write while both hold it).
@Suite("Repeat records in copied decoders")
struct RepeatTableCopyTests {
    /// Two copies of a decoder, interleaved, each decode the rest of the
    /// chunk as if alone: the repeat table and the running counters are
    /// each copy's own, made so by copy-on-write or, for a copy its owner
    /// made exclusive, by `makeExclusive()` (the other copy untouched).
    @Test(arguments: [false, true]) func aCopyDecodesOnItsOwn(exclusive: Bool) throws {
        var e = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [RepeatRecordTests.checkpoint()], counters: [])
        RepeatRecordTests.write(&e)
        for i in 0..<6 {
            e.append(.counter(index: i % 3, value: UInt64(10 * i + 1)), nic: 0)
            // Repeats of earlier accesses between the counters.
            ([6, 0] as [UInt8]).withUnsafeBytes { e.memoryRead(nic: 0, address: 0x2002, bytes: $0, ok: true) }
            ([3, 0, 0, 0, 76, 0, 0, 0] as [UInt8]).withUnsafeBytes { e.memoryWrite(nic: 0, address: 0x3008, bytes: $0, ok: true) }
        }
        var whole = try ChunkDecoder(content: e.content, nics: 1)
        var expected: [TraceEvent] = []
        while let ev = try whole.next() { expected.append(ev) }
        #expect(expected.filter { if case .counter = $0.body { true } else { false } }.count == 6)
        for split in [0, 3, 9, expected.count / 2, expected.count / 2 + 3] {
            var a = try ChunkDecoder(content: e.content, nics: 1)
            for _ in 0..<split { _ = try a.next() }
            var b = a
            if exclusive { b.makeExclusive() }
            var fromA: [TraceEvent] = [], fromB: [TraceEvent] = []
            // Interleaved: b, a, b, a, … (b, the copy, writes first)
            while true {
                let y = try b.next(), x = try a.next()
                if let x { fromA.append(x) }
                if let y { fromB.append(y) }
                if x == nil && y == nil { break }
            }
            #expect(fromA == Array(expected[split...]) && fromB == fromA, "split at \(split)")
        }
    }
}
