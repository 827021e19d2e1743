import Foundation
import GuestDriver
import Testing
@testable import TraceFormat

@Suite("Trace codec")
struct CodecTests {
    @Test func varintsAndZigzagRoundTrip() throws {
        let values: [UInt64] = [0, 1, 127, 128, 255, 300, 16383, 16384, (1 << 21) - 1, 1 << 21, 1 << 32, .max - 1, .max]
        var w = ByteWriter()
        for v in values { w.varint(v) }
        let signed: [Int64] = [0, -1, 1, -64, 64, .min, .max]
        for v in signed { w.zigzag(v) }
        #expect(w.bytes.prefix(3) == [0, 1, 0x7F])
        try w.bytes.withUnsafeBytes { (raw) throws in
            var r = ByteReader(raw)
            for v in values { #expect(try r.varint() == v) }
            for v in signed { #expect(try r.zigzag() == v) }
            #expect(r.atEnd)
        }
    }

    /// Varints of every length from one to ten bytes, each read where eight
    /// or more bytes remain (decoded from one word up to eight bytes) and
    /// where it ends the buffer (byte by byte): the same value, the same
    /// bytes consumed, whatever follows; redundant and cut forms too.
    @Test func varintsOfEveryLengthWhateverFollows() throws {
        var rng = SplitMix64(seed: 0x7A41_1EB5)  // seeded: a failure re-runs exactly
        for length in 1...10 {
            for _ in 0..<200 {
                let low: UInt64 = length == 1 ? 0 : 1 << UInt64(7 * (length - 1))
                let high: UInt64 = length >= 10 ? .max : (1 << UInt64(7 * length)) - 1
                let value = UInt64.random(in: low...high, using: &rng)
                var w = ByteWriter()
                w.varint(value)
                #expect(w.bytes.count == length)
                for tail in [[], [UInt8](repeating: 0xFF, count: 9), [UInt8](repeating: 0, count: 8), [0x80, 0x01, 2, 3, 4, 5, 6, 7, 8, 9, 10]] as [[UInt8]] {
                    let bytes = w.bytes + tail
                    try bytes.withUnsafeBytes { (raw) throws in
                        var r = ByteReader(raw)
                        let got = try r.varint()
                        if got != value || r.offset != length { Issue.record("\(value) (\(length) bytes) then \(tail.count): \(got) at \(r.offset)") }
                    }
                }
            }
        }
        let padding = [UInt8](repeating: 0xAA, count: 12)
        let forms: [([UInt8], Result<UInt64, ByteReadError>, Int)] = [
            ([0x80, 0x80, 0x80, 0x80, 0x00], .success(0), 5),
            ([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], .success((1 << 56) - 1), 8),
            ([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], .success(1 << 56), 9),
            ([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], .success(.max), 10),
            ([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02], .failure(.badVarint(offset: 0)), 0),
        ]
        for (bytes, expected, consumed) in forms {
            (bytes + padding).withUnsafeBytes { raw in
                var r = ByteReader(raw)
                #expect(Result { () throws(ByteReadError) in try r.varint() } == expected, "\(bytes)")
                if case .success = expected { #expect(r.offset == consumed, "\(bytes)") }
            }
        }
        // Nine or more bytes of continuation and then the end: cut short.
        [UInt8](repeating: 0x80, count: 9).withUnsafeBytes { raw in
            var r = ByteReader(raw)
            #expect(throws: ByteReadError.truncated(offset: 9, needed: 1)) { _ = try r.varint() }
        }
    }

    @Test func readerRefusesTruncatedAndOverlongVarints() {
        let cases: [([UInt8], ByteReadError)] = [
            ([0x80], .truncated(offset: 1, needed: 1)),
            ([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02], .badVarint(offset: 0)),
            ([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], .badVarint(offset: 0)),
        ]
        for (bytes, expected) in cases {
            bytes.withUnsafeBytes { raw in
                var r = ByteReader(raw)
                #expect(throws: expected) { _ = try r.varint() }
            }
        }
        // Every form of one to four bytes, redundant 0x80 groups and cut ones included.
        let forms: [([UInt8], Result<UInt64, ByteReadError>)] = [
            ([0x80, 0x00], .success(0)), ([0x81, 0x80, 0x00], .success(1)), ([0xFF, 0xFF, 0x7F], .success((1 << 21) - 1)),
            ([0x80, 0x80, 0x80, 0x01], .success(1 << 21)), ([0x80, 0x80], .failure(.truncated(offset: 2, needed: 1))),
            ([0xFF, 0xFF, 0xFF], .failure(.truncated(offset: 3, needed: 1))),
        ]
        for (bytes, expected) in forms {
            bytes.withUnsafeBytes { raw in
                var r = ByteReader(raw)
                #expect(Result { () throws(ByteReadError) in try r.varint() } == expected, "\(bytes)")
                if case .success = expected { #expect(r.atEnd, "\(bytes)") }
            }
        }
        ([1, 2, 3] as [UInt8]).withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var r = ByteReader(raw)
            #expect(throws: ByteReadError.truncated(offset: 0, needed: 1)) { _ = try r.fixed(UInt32.self) }
            #expect(throws: ByteReadError.self) { _ = try r.skip(-1) }
        }
    }

    /// Chunk buffers below, at and above the size where they take whole huge
    /// pages hold exactly what was written, refilled larger or smaller.
    @Test func chunkBuffersHoldTheirContentAtEverySize() throws {
        let sizes = [1, 4096, (512 << 10) - 1, 512 << 10, 1 << 20, (2 << 20) + 1, 100]
        let buffer = ChunkBuffer(capacity: 64)
        for (i, n) in sizes.enumerated() {
            let fresh = ChunkBuffer(capacity: n)
            for b in [buffer, fresh] {
                b.fill(count: n) { room in
                    for k in stride(from: 0, to: n, by: 4093) { room[k] = UInt8(truncatingIfNeeded: k &+ i) }
                    room[n - 1] = 0xA5
                }
                #expect(b.bytes.count == n)
                #expect(b.bytes[n - 1] == 0xA5)
                #expect(stride(from: 0, to: n - 1, by: 4093).allSatisfy { b.bytes[$0] == UInt8(truncatingIfNeeded: $0 &+ i) }, "\(n)")
                if n >= 512 << 10 { #expect(UInt(bitPattern: b.bytes.baseAddress) % UInt(2 << 20) == 0, "\(n) bytes in whole huge pages") }
            }
        }
    }

    @Test func crc32MatchesTheStandardCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([]) == 0)
    }

    @Test func headerRoundTripsAndChecksItself() throws {
        var h = TraceHeader()
        h.nics = 3
        h.queuePairs = 2
        h.mac = [0x52, 0x54, 0, 1, 2, 3]
        h.offeredFeatures = 0x1_0042_0020
        h.memory = [TraceMemoryRegion(base: 0, size: 16 << 20), TraceMemoryRegion(base: 1 << 32, size: 4096)]
        h.recorderVersion = "9.9"
        h.gitCommit = "abc"
        h.hostName = "h"
        h.startTimeNanoseconds = 123
        h.commandLine = "vtrace record"
        h.scenario = "s.scenario"
        h.guestDescription = "a guest"
        h.faults = ["drop-rx:3"]
        let bytes = h.encode()
        let back = try bytes.withUnsafeBytes { raw in try TraceHeader.decode(raw, fileOffset: 8) }
        #expect(back == h)
        var flipped = bytes
        flipped[20] ^= 1
        #expect(throws: TraceError.self) { try flipped.withUnsafeBytes { raw in try TraceHeader.decode(raw, fileOffset: 8) } }
        var newer = bytes
        newer[8] = 2  // major version 2
        #expect(throws: TraceError.unsupportedVersion(major: 2, minor: TraceVersion.minor)) { try newer.withUnsafeBytes { raw in try TraceHeader.decode(raw, fileOffset: 8) } }
        #expect(TraceError.unsupportedVersion(major: 2, minor: 0).description.contains("upgrade vtrace"))
    }

    @Test func headerSkipsFieldsOfANewerMinorVersion() throws {
        var h = TraceHeader()
        h.minorVersion = 7
        var bytes = Array(h.encode().dropLast(4))
        // An unknown tag 99 with 3 bytes, as a newer minor version might add.
        bytes += [99, 3, 1, 2, 3]
        bytes += withUnsafeBytes(of: CRC32.checksum(bytes).littleEndian) { Array($0) }
        let back = try bytes.withUnsafeBytes { raw in try TraceHeader.decode(raw, fileOffset: 8) }
        #expect(back.minorVersion == 7 && back.nics == 1)
    }

    /// Encodes one of every kind, with NIC and vCPU switches, and decodes it back.
    @Test func everyEventKindRoundTrips() throws {
        var cp = NICCheckpoint()
        cp.counters = (0..<16).map { UInt64($0) * 10 }
        cp.queues = [QueueCheckpoint(), QueueCheckpoint()]
        cp.queues[1].nextAvail = 7
        cp.queues[1].poisoned = true
        var e = ChunkEncoder(firstEvent: 100, baseTime: 5_000, checkpoint: [cp, cp], counters: [])
        let frame = (0..<64).map { UInt8($0) }
        e.append(.mmioWrite(offset: 0x50, width: 4, value: 1), nic: 0, vcpu: 0, time: 5_010)
        frame.withUnsafeBytes { e.append(.memoryRead(address: 0x9000, length: $0.count, ok: true, bytes: $0), nic: 0) }
        e.append(.memoryRead(address: 0x1_0000_0000, length: 0, ok: false, bytes: UnsafeRawBufferPointer(start: nil, count: 0)), nic: 0)
        frame.withUnsafeBytes { e.append(.memoryWrite(address: 0xA000, length: $0.count, ok: true, bytes: $0), nic: 0) }  // deduplicated
        ([1, 2, 3] as [UInt8]).withUnsafeBytes { e.append(.memoryWrite(address: 0x10, length: $0.count, ok: false, bytes: $0), nic: 1) }
        e.append(.chain(queue: 1, head: 3, descriptorCount: 2), nic: 1)
        e.descriptor(addr: 0x9000, len: 76, flags: 1, next: 4)
        e.descriptor(addr: 0x8000, len: 12, flags: 2, next: 0)
        e.append(.used(queue: 1, id: 3, len: 0), nic: 1)
        e.append(.counter(index: 2, value: 25), nic: 1)
        e.append(.counter(index: 15, value: 151), nic: 0)
        e.append(.interrupt(kind: 3), nic: 0)
        e.append(.interrupt(kind: 1 << 20), nic: 0)
        e.append(.poison(queue: 1, code: 1, details: EventDetails([1000, 0, 256])), nic: 0)
        e.append(.status(old: 0xF, new: 0x4F), nic: 0)
        e.append(.features(old: 0, new: 1 << 32), nic: 0)
        e.append(.pairs(old: 1, new: 4), nic: 0)
        e.append(.reset, nic: 0)
        e.append(.warning(code: 1, details: EventDetails([3, 4])), nic: 0)
        e.append(.memoryBinding(bound: false), nic: 1)
        e.append(.mmioRead(offset: 0x100, width: -7, value: .max), nic: 1, vcpu: 3, time: 4_000)
        #expect(e.eventCount == 19)

        var d = try ChunkDecoder(content: e.content, nics: 2)
        #expect(d.firstEvent == 100 && d.baseTime == 5_000 && d.checkpoint == [cp, cp])
        var events: [TraceEvent] = []
        var chain: [TraceDescriptor] = []
        var payloads: [[UInt8]] = []
        while let ev = try d.next() {
            events.append(ev)
            if case .chain = ev.body { chain = d.descriptors }
            switch ev.body {
            case .memoryRead(_, _, _, let r), .memoryWrite(_, _, _, let r): payloads.append(Array(d.bytes(r)))
            default: break
            }
        }
        #expect(events.map(\.number) == Array(100..<119))
        #expect(events.map(\.nic) == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
        #expect(events[0].body == .mmioWrite(offset: 0x50, width: 4, value: 1) && events[0].time == 5_010)
        #expect(events[2].body == .memoryRead(address: 0x1_0000_0000, length: 0, ok: false, bytes: events[2].bodyRange))
        #expect(payloads[0] == frame && payloads[2] == frame && payloads[3] == [1, 2, 3])
        guard case .memoryWrite(0xA000, 64, true, _) = events[3].body else { Issue.record("dedup write"); return }
        #expect(chain == [TraceDescriptor(addr: 0x9000, len: 76, flags: 1, next: 4), TraceDescriptor(addr: 0x8000, len: 12, flags: 2, next: 0)])
        #expect(events[6].body == .used(queue: 1, id: 3, len: 0))
        #expect(events[7].body == .counter(index: 2, value: 25))
        #expect(events[8].body == .counter(index: 15, value: 151))
        #expect(events[9].body == .interrupt(kind: 3) && events[10].body == .interrupt(kind: 1 << 20))
        #expect(events[11].body == .poison(queue: 1, code: 1, details: EventDetails([1000, 0, 256])))
        #expect(events[12].body == .status(old: 0xF, new: 0x4F))
        #expect(events[13].body == .features(old: 0, new: 1 << 32))
        #expect(events[14].body == .pairs(old: 1, new: 4))
        #expect(events[15].body == .reset)
        #expect(events[16].body == .warning(code: 1, details: EventDetails([3, 4])))
        #expect(events[17].body == .memoryBinding(bound: false))
        // A clock that went backwards records no time passing.
        #expect(events[18].body == .mmioRead(offset: 0x100, width: -7, value: .max) && events[18].time == 5_010 && events[18].vcpu == 3)
        #expect(try d.next() == nil)
    }

    @Test func hostileChunkContentIsAnErrorNeverATrap() throws {
        var rng = SplitMix64(seed: 0x7ACE_F11E)  // seeded: a failure re-runs exactly
        var cp = NICCheckpoint()
        cp.queues = [QueueCheckpoint(), QueueCheckpoint()]
        var e = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [cp], counters: [])
        for i in 0..<50 {
            e.append(.mmioWrite(offset: 0x50, width: 4, value: 1), nic: 0, vcpu: 0, time: UInt64(i))
            (0..<32).map { UInt8($0) }.withUnsafeBytes { e.append((i % 2 == 0) ? .memoryWrite(address: 0x1000, length: $0.count, ok: true, bytes: $0) : .memoryRead(address: 0x1000, length: $0.count, ok: true, bytes: $0), nic: 0) }
            e.append(.chain(queue: 1, head: 0, descriptorCount: 1), nic: 0)
            e.descriptor(addr: 0x9000, len: 76, flags: 1, next: 4)
        }
        let good = e.content
        for trial in 0..<3000 {
            var b = good
            switch trial % 3 {
            case 0: b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            case 1: b.removeSubrange(Int.random(in: 0..<b.count, using: &rng)...)
            default: for _ in 0..<8 { b[Int.random(in: 0..<b.count, using: &rng)] ^= 0xFF }
            }
            do {
                var d = try ChunkDecoder(content: b, nics: 1)
                var n = 0
                while try d.next() != nil { n += 1; if n > 100_000 { Issue.record("runaway decode"); break } }
            } catch {
                #expect(!error.message.isEmpty)
            }
        }
    }
}

extension TraceEvent {
    /// The payload range of a memory event (for building expected values).
    var bodyRange: Range<Int> {
        switch body {
        case .memoryRead(_, _, _, let r), .memoryWrite(_, _, _, let r): return r
        default: return 0..<0
        }
    }
}

/// The encoder as a recorder drives it: every kind, payloads of every size,
/// writes that repeat reads, memory from a pool.
@Suite("The chunk encoder")
struct ChunkEncoderTests {
    /// One of every event kind, with NIC and vCPU switches, a deduplicated
    /// write, odd payload lengths (0, 3, 13) and the inline ones (2, 4, 8,
    /// 16), and partial payloads (a snaplen's: 10 of 64 bytes read, before
    /// the write that repeats the whole read, so it must be no recent read;
    /// none of 64 written; a failed write that keeps 3 of 200, on NIC 1).
    static func everyKind(_ s: inout ChunkEncoder, time: UInt64) {
        let frame = (0..<64).map { UInt8($0) }
        s.append(.mmioWrite(offset: 0x50, width: 4, value: 1), nic: 0, vcpu: 0, time: time + 10)
        frame.withUnsafeBytes { s.append(.memoryRead(address: 0x9000, length: $0.count, ok: true, bytes: $0), nic: 0, vcpu: 0, time: 0) }
        s.append(.memoryRead(address: 0x1_0000_0000, length: 0, ok: false, bytes: UnsafeRawBufferPointer(start: nil, count: 0)), nic: 0, vcpu: 0, time: 0)
        frame.withUnsafeBytes { f in
            s.append(.memoryRead(address: 0x9100, length: 64, ok: true, bytes: UnsafeRawBufferPointer(rebasing: f[0..<10])), nic: 0, vcpu: 0, time: 0)
            s.append(.memoryWrite(address: 0xA100, length: 64, ok: true, bytes: UnsafeRawBufferPointer(rebasing: f[0..<0])), nic: 0, vcpu: 0, time: 0)
            s.append(.memoryWrite(address: 0xB100, length: 200, ok: false, bytes: UnsafeRawBufferPointer(rebasing: f[0..<3])), nic: 1, vcpu: 0, time: 0)
        }
        frame.withUnsafeBytes { s.append(.memoryWrite(address: 0xA000, length: $0.count, ok: true, bytes: $0), nic: 0, vcpu: 0, time: 0) }
        for n in [2, 3, 4, 8, 13, 16] {
            frame.withUnsafeBytes {
                let bytes = UnsafeRawBufferPointer(rebasing: $0[5..<(5 + n)]), address = 0x10 * UInt64(n)
                s.append(n % 2 == 0 ? .memoryWrite(address: address, length: n, ok: n != 13, bytes: bytes)
                                    : .memoryRead(address: address, length: n, ok: n != 13, bytes: bytes), nic: 1, vcpu: 0, time: 0)
            }
        }
        s.append(.chain(queue: 1, head: 3, descriptorCount: 2), nic: 1, vcpu: 0, time: 0)
        s.descriptor(addr: 0x9000, len: 76, flags: 1, next: 4)
        s.descriptor(addr: 0x8000, len: .max, flags: .max, next: .max)
        s.append(.used(queue: 1, id: 3, len: .max), nic: 1, vcpu: 0, time: 0)
        s.append(.counter(index: 2, value: 25), nic: 1, vcpu: 0, time: 0)
        s.append(.counter(index: 15, value: 151), nic: 0, vcpu: 0, time: 0)
        s.append(.interrupt(kind: 3), nic: 0, vcpu: 0, time: 0)
        s.append(.interrupt(kind: .max), nic: 0, vcpu: 0, time: 0)
        s.append(.poison(queue: .max, code: 1, details: EventDetails([1000, 0, 256, 7])), nic: 0, vcpu: 0, time: 0)
        s.append(.status(old: 0xF, new: 0xFF), nic: 0, vcpu: 0, time: 0)
        s.append(.features(old: 0, new: .max), nic: 0, vcpu: 0, time: 0)
        s.append(.pairs(old: 1, new: .max), nic: 0, vcpu: 0, time: 0)
        s.append(.reset, nic: 0, vcpu: 0, time: 0)
        s.append(.warning(code: .max, details: EventDetails([3])), nic: 0, vcpu: 0, time: 0)
        s.append(.warning(code: 2, details: EventDetails([])), nic: 1, vcpu: 0, time: 0)
        s.append(.memoryBinding(bound: false), nic: 1, vcpu: 0, time: 0)
        s.append(.transport(code: 2, queue: 1, values: EventDetails([0x1000, 0x2000, 0x3000])), nic: 0, vcpu: 0, time: time + 20)
        s.append(.transport(code: 5, queue: 300, values: EventDetails()), nic: 1, vcpu: 0, time: time + 20)
        s.append(.marker(code: 1, details: EventDetails([12_345])), nic: 1, vcpu: 0, time: time + 30)
        s.append(.marker(code: .max, details: EventDetails()), nic: 0, vcpu: 0, time: time + 31)
        s.append(.mmioRead(offset: 0x100, width: -7, value: .max), nic: 1, vcpu: 3, time: time - 1)
    }

    /// `everyKind` writes every kind there is (so the codec is checked for
    /// each), and each decodes to what was written.
    @Test func everyKindIsWrittenAndDecoded() throws {
        let cp = Self.checkpoint()
        var e = ChunkEncoder(firstEvent: 7, baseTime: 1_000, checkpoint: [cp, cp], counters: [])
        Self.everyKind(&e, time: 1_000)
        var kinds = Set<TraceEventKind>()
        var decoded: [TraceEvent] = []
        var d = try ChunkDecoder(content: e.content, nics: 2)
        while let event = try d.next() {
            kinds.insert(event.kind)
            decoded.append(event)
        }
        #expect(UInt64(decoded.count) == e.eventCount && decoded.first?.number == 7)
        #expect(kinds == Set(TraceEventKind.allCases))
        let transports = decoded.filter { $0.kind == .transport }
        #expect(transports.map(\.body) == [.transport(code: 2, queue: 1, values: EventDetails([0x1000, 0x2000, 0x3000])),
                                           .transport(code: 5, queue: 300, values: EventDetails())])
        #expect(transports.map(\.nic) == [0, 1] && transports.map(\.time) == [1_020, 1_020])
        let markers = decoded.filter { $0.kind == .marker }
        #expect(markers.map(\.body) == [.marker(code: 1, details: EventDetails([12_345])), .marker(code: .max, details: EventDetails())])
        #expect(markers.map(\.nic) == [1, 0] && markers.map(\.time) == [1_030, 1_031])
        // The partial payloads: address, length, ok, bytes stored; then the whole write after them.
        let memory = decoded.filter { $0.kind == .memoryRead || $0.kind == .memoryWrite }
        #expect(memory.prefix(6).map(\.bytesNotStored) == [0, 0, 54, 64, 197, 0])
        #expect(memory.prefix(6).map(\.nic) == [0, 0, 0, 0, 1, 0])
        guard case .memoryRead(0x9100, 64, true, let r) = memory[2].body, r.count == 10,
              case .memoryWrite(0xA100, 64, true, let w) = memory[3].body, w.isEmpty,
              case .memoryWrite(0xB100, 200, false, let failed) = memory[4].body, failed.count == 3,
              case .memoryWrite(0xA000, 64, true, let whole) = memory[5].body, whole == memory[0].bodyRange else {
            Issue.record("partial payloads: \(memory.prefix(6).map(\.body))")
            return
        }
        #expect(decoded.last?.body == .mmioRead(offset: 0x100, width: -7, value: .max) && decoded.last?.vcpu == 3)
    }

    static func checkpoint() -> NICCheckpoint {
        var cp = NICCheckpoint()
        cp.counters = (0..<16).map { UInt64($0) * 10 }
        cp.queues = [QueueCheckpoint(), QueueCheckpoint()]
        return cp
    }

    /// A continuation chunk starts from the counters and time the chunk
    /// before it ended with, and encoder memory comes from a pool: a buffer
    /// still held is never reused, one handed back and let go is.
    @Test func aContinuationAndPooledMemory() throws {
        let cp = Self.checkpoint()
        var first = ChunkEncoder(firstEvent: 100, baseTime: 5_000, checkpoint: [cp, cp], counters: [])
        Self.everyKind(&first, time: 5_000)
        let pool = BufferPool(limit: 4)
        var held = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [cp], counters: [])
        held.append(.counter(index: 1, value: 5), nic: 0)
        let heldContent = held.content
        pool.recycle(held)
        var next = ChunkEncoder(firstEvent: 100 + first.eventCount, baseTime: first.lastTime, checkpoint: nil,
                                counters: first.currentCounters, pool: pool)
        Self.everyKind(&next, time: 6_000)
        #expect(held.content == heldContent, "a kept chunk's memory was reused")
        #expect(next.flags == .continuation)
        var d = try ChunkDecoder(content: next.content, nics: 2)
        #expect(d.startCounters == first.currentCounters)
        var counters: [TraceEvent] = []
        while let event = try d.next() {
            if event.kind == .counter { counters.append(event) }
        }
        #expect(counters.map(\.body) == [.counter(index: 2, value: 25), .counter(index: 15, value: 151)])
        pool.recycle(ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [cp], counters: []))
        #expect(pool.count == 1)
        _ = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [cp], counters: [], pool: pool)
        #expect(pool.count == 0)
    }

    /// `pastHardLimit` holds exactly once the content reaches `hardLimit`
    /// bytes, through the memory growing under it (from 64 bytes), in a copy
    /// and never in an encoder without a limit or in a pooled buffer's next
    /// user.
    @Test func theHardLimitIsReachedAtItsByte() throws {
        let cp = Self.checkpoint()
        let pool = BufferPool(limit: 2)
        var e = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [cp], counters: [], capacity: 64, pool: pool)
        var unlimited = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [cp], counters: [], capacity: 64)
        let limit = e.size + 1_000
        e.hardLimit = limit
        #expect(e.hardLimit == limit && unlimited.hardLimit == .max)
        var crossed = 0
        for i in 0..<300 {
            let before = e.pastHardLimit
            e.append(.counter(index: i & 15, value: UInt64(i) << 20), nic: 0)
            unlimited.append(.counter(index: i & 15, value: UInt64(i) << 20), nic: 0)
            #expect(e.pastHardLimit == (e.size >= limit), "after \(i + 1) records, \(e.size) bytes")
            #expect(!unlimited.pastHardLimit)
            if e.pastHardLimit && !before { crossed += 1 }
        }
        #expect(crossed == 1 && e.size > limit)
        var copy = e
        copy.append(.reset, nic: 0)
        #expect(copy.pastHardLimit && copy.hardLimit == limit)
        e.exclusive = false
        pool.recycle(e)
        e = .idle
        let reused = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [cp], counters: [], pool: pool)
        #expect(pool.count == 0, "the pooled buffer was not reused")
        #expect(reused.hardLimit == .max && !reused.pastHardLimit)
    }

    /// Loopback traffic: TX reads of a frame (whole, or over two or three
    /// descriptors), then the RX write of the same bytes, plus writes that
    /// must not count as repeats.
    static func loopback(_ s: inout ChunkEncoder) {
        let frame = (0..<1500).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        frame.withUnsafeBytes { f in
            let small = UnsafeRawBufferPointer(rebasing: f[0..<16])
            // One piece; small reads in between do not break the match.
            s.append(.memoryRead(address: 0x1000, length: f.count, ok: true, bytes: f), nic: 0, vcpu: 0, time: 0)
            s.append(.memoryRead(address: 0x20, length: small.count, ok: true, bytes: small), nic: 0, vcpu: 0, time: 0)
            s.append(.memoryWrite(address: 0x8000, length: f.count, ok: true, bytes: f), nic: 0, vcpu: 0, time: 0)
            // Two and three pieces, end to end.
            s.append(.memoryRead(address: 0x2000, length: UnsafeRawBufferPointer(rebasing: f[0..<744]).count, ok: true, bytes: UnsafeRawBufferPointer(rebasing: f[0..<744])), nic: 0, vcpu: 0, time: 0)
            s.append(.memoryRead(address: 0x3000, length: UnsafeRawBufferPointer(rebasing: f[744...]).count, ok: true, bytes: UnsafeRawBufferPointer(rebasing: f[744...])), nic: 0, vcpu: 0, time: 0)
            s.append(.memoryWrite(address: 0x9000, length: f.count, ok: false, bytes: f), nic: 1, vcpu: 0, time: 0)
            s.append(.memoryRead(address: 0x2000, length: UnsafeRawBufferPointer(rebasing: f[0..<500]).count, ok: true, bytes: UnsafeRawBufferPointer(rebasing: f[0..<500])), nic: 0, vcpu: 0, time: 0)
            s.append(.memoryRead(address: 0x3000, length: UnsafeRawBufferPointer(rebasing: f[500..<1000]).count, ok: true, bytes: UnsafeRawBufferPointer(rebasing: f[500..<1000])), nic: 0, vcpu: 0, time: 0)
            s.append(.memoryRead(address: 0x4000, length: UnsafeRawBufferPointer(rebasing: f[1000...]).count, ok: true, bytes: UnsafeRawBufferPointer(rebasing: f[1000...])), nic: 0, vcpu: 0, time: 0)
            s.append(.memoryWrite(address: 0xA000, length: f.count, ok: true, bytes: f), nic: 0, vcpu: 0, time: 0)
            // The last piece alone, as a write of its own length.
            s.append(.memoryWrite(address: 0xB000, length: UnsafeRawBufferPointer(rebasing: f[1000...]).count, ok: true, bytes: UnsafeRawBufferPointer(rebasing: f[1000...])), nic: 0, vcpu: 0, time: 0)
            // Same length, one byte different; a failed read is never a source.
            var other = frame
            other[1499] ^= 1
            other.withUnsafeBytes { s.append(.memoryWrite(address: 0xC000, length: $0.count, ok: true, bytes: $0), nic: 0, vcpu: 0, time: 0) }
            s.append(.memoryRead(address: 0x5000, length: UnsafeRawBufferPointer(rebasing: f[0..<200]).count, ok: false, bytes: UnsafeRawBufferPointer(rebasing: f[0..<200])), nic: 0, vcpu: 0, time: 0)
            s.append(.memoryWrite(address: 0xD000, length: UnsafeRawBufferPointer(rebasing: f[0..<200]).count, ok: true, bytes: UnsafeRawBufferPointer(rebasing: f[0..<200])), nic: 0, vcpu: 0, time: 0)
        }
    }

    /// A write that repeats one of the last four reads of its length is a
    /// reference to that read's bytes; anything else is stored.
    @Test func writesThatRepeatReadsAreReferences() throws {
        let cp = Self.checkpoint()
        var e = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [cp, cp], counters: [])
        Self.loopback(&e)
        var d = try ChunkDecoder(content: e.content, nics: 2)
        var events: [TraceEvent] = []
        while let event = try d.next() { events.append(event) }
        let frame = (0..<1500).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var referenced: [UInt64] = []
        for w in events {
            guard case .memoryWrite(let address, let length, _, let range) = w.body else { continue }
            // Every write decodes to its bytes, referenced or stored.
            var expected = Array(frame[(length == 500 ? 1000 : 0)...].prefix(length))
            if address == 0xC000 { expected[1499] ^= 1 }
            #expect(Array(d.bytes(range)) == expected, "write at \(address)")
            // A reference's bytes are its read's, earlier in the content.
            if events.contains(where: { r in
                if case .memoryRead(_, length, true, let read) = r.body { return read == range }
                return false
            }) { referenced.append(address) }
        }
        // The whole frame while its one-piece read is among the last four
        // (twice), and the last piece alone; not the frame read in three
        // pieces, the altered one, or the bytes of a failed read.
        #expect(referenced == [0x8000, 0x9000, 0xB000])
    }
}
