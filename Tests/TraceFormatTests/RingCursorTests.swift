import Foundation
import GuestDriver
import Testing
@testable import TraceFormat

/// Format 1.7's ring cursors (``RingCursors``, ``CursorRecord``): which
/// accesses become cursor records, at what size, that each decodes (and
/// matches) as the access it stands for, the cursors' edges, and hostile records.
@Suite("Ring cursors")
struct RingCursorTests {
    static let tag = RecordCode.tag(code: CursorRecord.code)

    /// The record tags of `content` (one NIC, no MMIO: every record is an event).
    static func tags(_ content: [UInt8], cursors: Bool = true) throws -> [UInt8] {
        var d = try ChunkDecoder(content: content, nics: 1, cursors: cursors), tags: [UInt8] = []
        while !d.atEnd {
            tags.append(content[d.position])
            _ = try d.next()
        }
        return tags
    }

    static func read(_ e: inout ChunkEncoder, _ address: UInt64, _ bytes: [UInt8], ok: Bool = true) {
        bytes.withUnsafeBytes { e.memoryRead(nic: 0, address: address, bytes: $0, ok: ok) }
    }

    static func write(_ e: inout ChunkEncoder, _ address: UInt64, _ bytes: [UInt8], ok: Bool = true) {
        bytes.withUnsafeBytes { e.memoryWrite(nic: 0, address: address, bytes: $0, ok: ok) }
    }

    static func u16(_ v: UInt16) -> [UInt8] { [UInt8(truncatingIfNeeded: v), UInt8(v >> 8)] }
    static func element(_ id: UInt32, _ len: UInt32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: id >> (8 * $0)) } + (0..<4).map { UInt8(truncatingIfNeeded: len >> (8 * $0)) }
    }

    /// Each cursor's record, byte for byte: an index that entered the cache,
    /// the ring slot after the last, the used element after the last, and
    /// the used publication predicted from the used cursor.
    @Test func eachCursorTakesItsBytes() throws {
        var e = AddressCodeTests.encoder()
        Self.read(&e, 0x2002, Self.u16(7))                  // plain: the ring cursor
        Self.read(&e, 0x2002, Self.u16(7))                  // a repeat, 0 back: enters entry 0
        #expect(e.ring.entry(of: 0x2002) == 0 && e.ring.ring(0).address == 0x2002)
        var at = e.size
        Self.read(&e, 0x2002, Self.u16(9))                  // entry 0, +2
        #expect(Array(e.content[at...]) == [Self.tag, 2 << 4 | 0 << 1])
        at = e.size
        Self.write(&e, 0x2002, Self.u16(8))                 // entry 0 written, −1
        #expect(Array(e.content[at...]) == [Self.tag, 0xF8, 0xFF, 0x3F] && e.ring.value(0) == 8)  // 0xFFFF << 4 | 8
        Self.read(&e, 0x4000, Self.u16(3))                  // plain, far from cursor 0: cursor 1 takes it, to the front
        #expect(e.ring.ring(0).address == 0x4000 && e.ring.ring(1).address == 0x2002)
        at = e.size
        Self.read(&e, 0x4002, Self.u16(4))                  // the slot after cursor 0's, +1 (zigzag 2)
        #expect(Array(e.content[at...]) == [Self.tag, 2 << 3 | 0 << 2 | 1] && e.ring.ring(0).address == 0x4002)
        at = e.size
        Self.read(&e, 0x2004, Self.u16(1))                  // the slot after cursor 1's (0x2002, 7): −6 (zigzag 11)
        #expect(Array(e.content[at...]) == [Self.tag, 11 << 3 | 1 << 2 | 1] && e.ring.ring(0).address == 0x2004 && e.ring.ring(1).address == 0x4002)
        at = e.size
        Self.read(&e, 0x2000, Self.u16(2))                  // plain, near cursor 0 (its ring, wrapped): cursor 0 takes it
        #expect(e.ring.ring(0).address == 0x2000 && e.ring.ring(1).address == 0x4002)
        Self.write(&e, 0x6000, Self.element(5, 60))         // plain: used cursor 0
        at = e.size
        Self.write(&e, 0x6008, Self.element(9, 1514))       // the element after it, id +4 (zigzag 8)
        #expect(Array(e.content[at...]) == [Self.tag, 8 << 3 | 0 << 2 | 3, 0xEA, 0x0B])
        Self.write(&e, 0x9800, Self.element(7, 60))         // plain, far: used cursor 1, to the front
        at = e.size
        Self.write(&e, 0x6010, Self.element(8, 60))         // after cursor 1's, id −1 (zigzag 1)
        #expect(Array(e.content[at...]) == [Self.tag, 1 << 3 | 1 << 2 | 3, 60] && e.ring.used(1).address == 0x9800)
        at = e.size
        e.used(nic: 0, queue: 1, id: 8, len: 60)
        #expect(Array(e.content[at...]) == [RecordCode.tag(code: PredictedRecord.usedAsWritten), 1])
        // Failed accesses are never cursor records.
        at = e.size
        Self.read(&e, 0x2002, Self.u16(9), ok: false)
        Self.write(&e, 0x6010, Self.element(10, 60), ok: false)
        #expect(Array(try Self.tags(e.content).suffix(2)) == [RecordCode.tag(code: TraceEventKind.memoryRead.rawValue, small: 1),
                                                               RecordCode.tag(code: TraceEventKind.memoryWrite.rawValue, small: 1)])
        // Every record decodes to the access the plain format holds.
        var plain = AddressCodeTests.encoder(predicts: false, repeats: false)
        Self.read(&plain, 0x2002, Self.u16(7)); Self.read(&plain, 0x2002, Self.u16(7)); Self.read(&plain, 0x2002, Self.u16(9))
        Self.write(&plain, 0x2002, Self.u16(8)); Self.read(&plain, 0x4000, Self.u16(3)); Self.read(&plain, 0x4002, Self.u16(4))
        Self.read(&plain, 0x2004, Self.u16(1)); Self.read(&plain, 0x2000, Self.u16(2))
        Self.write(&plain, 0x6000, Self.element(5, 60)); Self.write(&plain, 0x6008, Self.element(9, 1514))
        Self.write(&plain, 0x9800, Self.element(7, 60)); Self.write(&plain, 0x6010, Self.element(8, 60))
        plain.used(nic: 0, queue: 1, id: 8, len: 60)
        Self.read(&plain, 0x2002, Self.u16(9), ok: false); Self.write(&plain, 0x6010, Self.element(10, 60), ok: false)
        try AddressCodeTests.expectSameEvents(e.content, plain.content)
    }

    /// Four indices fill the cache; a fifth to enter takes the first's
    /// entry (round robin), and the first, entering again, the second's.
    /// Encoder and decoder keep the same cache.
    @Test func aFifthIndexTakesTheOldestEntry() throws {
        var e = AddressCodeTests.encoder(), plain = AddressCodeTests.encoder(predicts: false, repeats: false)
        func read(_ a: UInt64, _ v: UInt16) {
            Self.read(&e, a, Self.u16(v))
            Self.read(&plain, a, Self.u16(v))
        }
        let four: [UInt64] = [0x100, 0x200, 0x300, 0x400]
        for round in 0..<3 { for a in four { read(a, UInt16(round)) } }
        #expect(four.map { e.ring.entry(of: $0) } == [0, 1, 2, 3])
        read(0x500, 0)
        read(0x500, 0)
        read(0x100, 3)
        read(0x300, 3)
        #expect([0x100, 0x200, 0x300, 0x400, 0x500].map { e.ring.entry(of: $0) } == [1, -1, 2, 3, 0])
        let plainRead = RecordCode.tag(code: TraceEventKind.memoryRead.rawValue), incremented = RecordCode.tag(code: PredictedRecord.incrementedRead)
        // Stored, then incremented (each entering), then cursor records; the fifth stored and
        // repeated (entering); the first incremented (entering again); the third still a cursor record.
        #expect(try Self.tags(e.content) == [UInt8](repeating: plainRead, count: 4) + [UInt8](repeating: incremented, count: 4)
                + [UInt8](repeating: Self.tag, count: 4) + [plainRead, RecordCode.tag(code: RepeatRecord.read), incremented, Self.tag])
        try AddressCodeTests.expectSameEvents(e.content, plain.content)
    }

    /// An empty entry or cursor is at 2^64 − 1 with value 0: a record naming
    /// one decodes there (entry), 2 bytes on (a ring slot: address 1) or 8
    /// (a used element: address 7); a used publication as written before
    /// any 8-byte write names id 0, len 0 (in 1.6 it is an error).
    @Test func emptyCursorsDecodeAtTheirDefinedPlaces() throws {
        var (d, at) = try RepeatRecordTests.hostile([Self.tag, 3 << 4 | 2 << 1], predicts: true)
        var ev = try #require(try d.next())
        guard case .memoryRead(UInt64.max, 2, true, let r) = ev.body else { Issue.record("\(ev.body)"); return }
        #expect(d.bytes(r) == [3, 0] && r.lowerBound > at)
        (d, _) = try RepeatRecordTests.hostile([Self.tag, 10 << 3 | 1, Self.tag, 2 << 3 | 1], predicts: true)
        ev = try #require(try d.next())
        guard case .memoryRead(1, 2, true, let r1) = ev.body else { Issue.record("\(ev.body)"); return }
        ev = try #require(try d.next())
        guard case .memoryRead(3, 2, true, let r2) = ev.body else { Issue.record("\(ev.body)"); return }
        #expect(d.bytes(r1) == [5, 0] && d.bytes(r2) == [6, 0])
        (d, _) = try RepeatRecordTests.hostile([RecordCode.tag(code: PredictedRecord.usedAsWritten), 1, Self.tag, 6 << 3 | 3, 76,
                                                RecordCode.tag(code: PredictedRecord.usedAsWritten), 1], predicts: true)
        #expect(try d.next()?.body == .used(queue: 1, id: 0, len: 0))
        ev = try #require(try d.next())
        guard case .memoryWrite(7, 8, true, let r3) = ev.body else { Issue.record("\(ev.body)"); return }
        #expect(d.bytes(r3) == Self.element(3, 76)[...])
        #expect(try d.next()?.body == .used(queue: 1, id: 3, len: 76))
        // The encoder agrees: a 2-byte read at 2^64 − 1 is entry 0's, a used publication before any write is predicted.
        var e = AddressCodeTests.encoder()
        Self.read(&e, .max, Self.u16(4))
        e.used(nic: 0, queue: 0, id: 0, len: 0)
        #expect(Array(e.content.suffix(4)) == [Self.tag, 4 << 4, RecordCode.tag(code: PredictedRecord.usedAsWritten), 0])
        // Values wrap: an index from 0xFFFF to 1 is +2; an id from 2^32 − 1 to 0 is +1.
        e = AddressCodeTests.encoder()
        Self.read(&e, 0x10, Self.u16(0xFFFF)); Self.read(&e, 0x10, Self.u16(0xFFFF))
        var before = e.size
        Self.read(&e, 0x10, Self.u16(1))
        #expect(Array(e.content[before...]) == [Self.tag, 2 << 4])
        Self.write(&e, 0x20, Self.element(.max, 1))
        before = e.size
        Self.write(&e, 0x28, Self.element(0, 1))
        #expect(Array(e.content[before...]) == [Self.tag, 2 << 3 | 3, 1])
        var plain = AddressCodeTests.encoder(predicts: false, repeats: false)
        Self.read(&plain, .max, Self.u16(4)); plain.used(nic: 0, queue: 0, id: 0, len: 0)
        Self.read(&plain, 0x10, Self.u16(0xFFFF)); Self.read(&plain, 0x10, Self.u16(0xFFFF)); Self.read(&plain, 0x10, Self.u16(1))
        Self.write(&plain, 0x20, Self.element(.max, 1)); Self.write(&plain, 0x28, Self.element(0, 1))
        var both = AddressCodeTests.encoder()
        Self.read(&both, .max, Self.u16(4)); both.used(nic: 0, queue: 0, id: 0, len: 0)
        Self.read(&both, 0x10, Self.u16(0xFFFF)); Self.read(&both, 0x10, Self.u16(0xFFFF)); Self.read(&both, 0x10, Self.u16(1))
        Self.write(&both, 0x20, Self.element(.max, 1)); Self.write(&both, 0x28, Self.element(0, 1))
        try AddressCodeTests.expectSameEvents(both.content, plain.content)
    }

    /// Out-of-range changes and a record cut short are errors at the tag.
    @Test func hostileCursorRecordsAreErrors() throws {
        var (d, at) = try RepeatRecordTests.hostile([Self.tag, 0x80, 0x80, 0x40], predicts: true)  // 2^16 << 4: entry 0
        #expect(throws: ChunkDecodeError(offset: at, "cursor record's change 65536 is not below 65,536")) { _ = try d.next() }
        (d, at) = try RepeatRecordTests.hostile([Self.tag, 0x81, 0x80, 0x20], predicts: true)  // 2^16 << 3 | 1: a ring slot
        #expect(throws: ChunkDecodeError(offset: at, "cursor record's change 65536 is not below 65,536")) { _ = try d.next() }
        (d, at) = try RepeatRecordTests.hostile([Self.tag, 0x83, 0x80, 0x80, 0x80, 0x80, 0x01, 0], predicts: true)  // 2^32 << 3 | 3
        #expect(throws: ChunkDecodeError(offset: at, "used element cursor record of id change code 4294967296 and len 0 (each below 2^32)")) { _ = try d.next() }
        (d, at) = try RepeatRecordTests.hostile([Self.tag, 3, 0x80, 0x80, 0x80, 0x80, 0x10], predicts: true)  // len 2^32
        #expect(throws: ChunkDecodeError(offset: at, "used element cursor record of id change code 0 and len 4294967296 (each below 2^32)")) { _ = try d.next() }
        (d, _) = try RepeatRecordTests.hostile([Self.tag], predicts: true)
        #expect(throws: ChunkDecodeError.self) { _ = try d.next() }
        (d, _) = try RepeatRecordTests.hostile([Self.tag, 3], predicts: true)
        #expect(throws: ChunkDecodeError.self) { _ = try d.next() }
        // The matcher refuses a read record as a write and a write record as a read.
        (d, _) = try RepeatRecordTests.hostile([Self.tag, 10 << 3 | 1], predicts: true)
        #expect([UInt8](Self.u16(5)).withUnsafeBytes { d.matchWrite(nic: 0, address: 1, from: $0) } == .mismatch)
        (d, _) = try RepeatRecordTests.hostile([Self.tag, 6 << 3 | 3, 76], predicts: true)
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(buffer.withUnsafeMutableBytes { d.matchRead(nic: 0, address: 7, into: $0) } == .mismatch)
    }

    /// A content of nothing but used element records, the most bytes
    /// materialised for a content byte (8 for 3), decodes whole: the room
    /// after the content is enough for any valid chunk.
    @Test func theRoomHoldsEveryMaterialisedByte() throws {
        var e = AddressCodeTests.encoder()
        for i in 0..<3_000 { Self.write(&e, 0x6000 + 8 * UInt64(i), Self.element(UInt32(i), 60)) }
        let tags = try Self.tags(e.content)
        #expect(tags.count == 3_000 && tags.dropFirst().allSatisfy { $0 == Self.tag })
        var d = try ChunkDecoder(content: e.content, nics: 1), last: [UInt8] = []
        while let ev = try d.next() { if case .memoryWrite(_, 8, true, let r) = ev.body { last = Array(d.bytes(r)) } }
        #expect(last == Self.element(2_999, 60))
    }

    /// A device walking split rings of several queues (more indices than
    /// the cache holds, interleaved at random), with failed accesses, jumps
    /// and stalls: format 1.7 decodes to format 1.3's events, the matcher
    /// takes every record, and 1.7 is smaller than 1.6.
    @Test(arguments: 0..<4)
    func walkedRingsDecodeAndMatchAsWritten(seed: UInt64) throws {
        var rng = SplitMix64(seed: 0xC0_5E00 &+ seed)
        func roll(_ n: UInt64) -> Int { Int(rng.next() % n) }
        var e = AddressCodeTests.encoder(), older = AddressCodeTests.encoder(cursors: false), plain = AddressCodeTests.encoder(predicts: false, repeats: false)
        func apply(_ body: (inout ChunkEncoder) -> Void) { body(&e); body(&older); body(&plain) }
        let queues = 2 + Int(seed % 3) * 2, size = 64
        var avail = [UInt16](repeating: 0, count: queues), seen = avail, used = avail
        for _ in 0..<3_000 {
            let q = roll(UInt64(queues)), base = 0x10_0000 * UInt64(q + 1)
            let availIndex = base + 2, ring = base + 4, usedIndex = base + 0x8002, usedRing = base + 0x8004
            if roll(4) == 0 { avail[q] &+= UInt16(1 + roll(roll(8) == 0 ? 300 : 4)) }   // the driver adds buffers
            let ok = roll(40) != 0
            let idx = avail[q]
            apply { Self.read(&$0, availIndex, Self.u16(idx), ok: ok) }
            guard ok else { continue }
            while seen[q] != avail[q] && roll(6) != 0 {
                let slot = Int(seen[q]) % size, head = UInt16(truncatingIfNeeded: roll(8) == 0 ? roll(UInt64(size)) : slot)
                let slotOK = roll(50) != 0
                apply { Self.read(&$0, ring + 2 * UInt64(slot), Self.u16(head), ok: slotOK) }
                guard slotOK else { break }
                seen[q] &+= 1
                let buffer = 0x4000_0000 + UInt64(roll(1 << 16)) << 12
                let descriptor = RepeatRecordTests.descriptorBytes(buffer, 1514, 0, 0)
                apply { Self.read(&$0, 0x8000 + 16 * UInt64(head), descriptor) }
                apply { $0.chain(nic: 0, queue: UInt16(q), head: head, count: 1) { _ in (buffer, 1514, 0, 0) } }
                let element = Self.element(UInt32(head), UInt32(60 + roll(1400)))
                let elementOK = roll(50) != 0
                apply { Self.write(&$0, usedRing + 8 * UInt64(Int(used[q]) % size), element, ok: elementOK) }
                guard elementOK else { break }
                used[q] &+= 1
                let u = used[q]
                apply { Self.write(&$0, usedIndex, Self.u16(u)) }
                apply { $0.used(nic: 0, queue: UInt16(q), id: UInt32(head), len: UInt32(element[4]) | UInt32(element[5]) << 8) }
            }
        }
        try AddressCodeTests.expectSameEvents(e.content, plain.content)
        try AddressCodeTests.expectSameEvents(older.content, plain.content, cursors: false)
        #expect(e.size < older.size)
        #expect(try Self.tags(e.content).filter { $0 == Self.tag }.count > 1_000)
        // The matcher, fed format 1.3's events, takes each of 1.7's records.
        var d = try ChunkDecoder(content: e.content, nics: 1), p = try ChunkDecoder(content: plain.content, nics: 1, repeats: false)
        while let ev = try p.next() {
            let outcome: RecordMatch
            switch ev.body {
            case .memoryRead(let address, let length, let ok, let r):
                var buffer = [UInt8](repeating: 0, count: length)
                outcome = buffer.withUnsafeMutableBytes { d.matchRead(nic: 0, address: address, into: $0) }
                #expect(outcome == (ok ? .matched : .matchedFailed) && (!ok || buffer[...] == p.bytes(r)), "event \(ev.number)")
            case .memoryWrite(let address, _, let ok, let r):
                let bytes = Array(p.bytes(r))
                outcome = bytes.withUnsafeBytes { d.matchWrite(nic: 0, address: address, from: $0) }
                #expect(outcome == (ok ? .matched : .matchedFailed), "event \(ev.number)")
            case .chain(let queue, let head, let count):
                let list = p.descriptors
                #expect(d.matchChain(nic: 0, queue: queue, head: head, count: count) { list[$0] } == .matched, "event \(ev.number)")
            case .used(let queue, let id, let len):
                #expect(d.matchUsed(nic: 0, queue: queue, id: id, len: len) == .matched, "event \(ev.number)")
            default:
                Issue.record("unexpected \(ev.body)")
                return
            }
        }
        #expect(d.matchCounter(nic: 0, index: 0, value: 0) == .end)
    }
}
