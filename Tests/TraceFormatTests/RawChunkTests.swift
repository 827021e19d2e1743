import Testing
@testable import TraceFormat

/// A raw chunk (events appended on the recording thread, encoded on the
/// writer's) encodes to the very records an inline encoder writes, and cuts
/// at the encoder's hard limit where a recorder would.
@Suite("raw chunks")
struct RawChunkTests {
    /// Events of every kind and shape, applied to an encoder or a raw chunk alike.
    static func apply<S>(_ sink: inout S, _ record: RecordingCalls<S>, rounds: Int = 3) {
        var payload = [UInt8](repeating: 0, count: 2_000)
        for i in payload.indices { payload[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 3) }
        payload.withUnsafeBytes { p in
            func bytes(_ n: Int, from: Int = 0) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: p[from..<(from + n)]) }
            var head: UInt16 = 0
            for round in 0..<rounds {
                let nic = round % 2
                record.append(&sink, .mmioWrite(offset: 0x50, width: 4, value: 1), nic, UInt32(round), 1_000 &* UInt64(round))
                // Ring index, slot, descriptors, payload: repeats and recalls from the second round on.
                record.read(&sink, nic, 0x1002, bytes(2, from: round), true)
                record.read(&sink, nic, 0x1004 &+ 2 &* UInt64(head), bytes(2, from: 5), true)
                record.read(&sink, nic, 0x2000, bytes(16, from: 16), true)
                record.read(&sink, nic, 0x2010, bytes(16, from: 40), true)
                record.chain(&sink, nic, 1, head, 2) { i in (0x10_0000 &+ 0x1000 &* UInt64(i), 760, i == 0 ? 1 : 0, UInt16(i + 1)) }
                record.read(&sink, nic, 0x10_000C, bytes(748, from: 100), true)
                record.read(&sink, nic, 0x10_1000, bytes(760, from: 848), true)
                record.read(&sink, nic, 0x3000, bytes(8), false)                     // failed: no bytes stored
                record.truncated(&sink, nic, 0x10_2000, 1_500, bytes(64, from: 200), false, true)
                record.write(&sink, nic, 0x20_0000, bytes(12), true)
                record.write(&sink, nic, 0x20_000C, bytes(748, from: 100), true)   // repeats a recent read
                record.write(&sink, nic, 0x20_0800, bytes(1_500, from: 50), false)  // failed, stored
                record.truncated(&sink, nic, 0x20_1000, 1_500, bytes(40, from: 9), true, round == 1)
                record.write(&sink, nic, 0x4008 &+ 8 &* UInt64(head), bytes(8, from: 24), true)
                record.write(&sink, nic, 0x4002, bytes(2, from: round &+ 1), true)
                record.used(&sink, nic, 1, UInt32(head), 0)
                record.counter(&sink, nic, 0, UInt64(round + 1))
                record.counter(&sink, nic, 1, UInt64(round + 1) &* 1_514)
                record.counter(&sink, nic, 15, 1 << 40 | UInt64(round))
                record.append(&sink, .interrupt(kind: 1), nic, 0, 0)
                record.append(&sink, .poison(queue: 1, code: 3, details: EventDetails([7, 9])), nic, 0, 0)
                record.append(&sink, .status(old: 7, new: 15), nic, 0, 0)
                record.append(&sink, .features(old: 0, new: 1 << 32 | 0x20), nic, 0, 0)
                record.append(&sink, .pairs(old: 1, new: 2), nic, 0, 0)
                record.append(&sink, .warning(code: 2, details: EventDetails([1, 2, 3])), nic, 0, 0)
                record.append(&sink, .memoryBinding(bound: round != 1), nic, 0, 0)
                record.append(&sink, .transport(code: 4, queue: 1, values: EventDetails([5])), nic, 0, 2_000 &* UInt64(round) &+ 500)
                record.append(&sink, .marker(code: 1, details: EventDetails([42])), nic, 0, 2_000 &* UInt64(round) &+ 400)
                record.append(&sink, .mmioRead(offset: 0x60, width: 4, value: 1), nic, 7, 2_000 &* UInt64(round) &+ 900)
                record.append(&sink, .reset, nic, 0, 0)
                head &+= 1
            }
        }
    }

    /// The calls a recording observer makes, for either sink.
    struct RecordingCalls<S> {
        var read: (inout S, Int, UInt64, UnsafeRawBufferPointer, Bool) -> Void
        var write: (inout S, Int, UInt64, UnsafeRawBufferPointer, Bool) -> Void
        var truncated: (inout S, Int, UInt64, Int, UnsafeRawBufferPointer, Bool, Bool) -> Void
        var chain: (inout S, Int, UInt16, UInt16, Int, (Int) -> (addr: UInt64, len: UInt32, flags: UInt16, next: UInt16)) -> Void
        var used: (inout S, Int, UInt16, UInt32, UInt32) -> Void
        var counter: (inout S, Int, Int, UInt64) -> Void
        var append: (inout S, OutgoingEvent, Int, UInt32, UInt64) -> Void
    }

    static var encoderCalls: RecordingCalls<ChunkEncoder> { RecordingCalls<ChunkEncoder>(
        read: { $0.memoryRead(nic: $1, address: $2, bytes: $3, ok: $4) },
        write: { $0.memoryWrite(nic: $1, address: $2, bytes: $3, ok: $4) },
        truncated: { $0.truncatedAccess(nic: $1, address: $2, length: $3, bytes: $4, write: $5, ok: $6) },
        chain: { $0.chain(nic: $1, queue: $2, head: $3, count: $4, descriptor: $5) },
        used: { $0.used(nic: $1, queue: $2, id: $3, len: $4) },
        counter: { $0.counter(nic: $1, index: $2, value: $3) },
        append: { $0.append($1, nic: $2, vcpu: $3, time: $4) }) }

    static var rawCalls: RecordingCalls<RawChunk> { RecordingCalls<RawChunk>(
        read: { $0.memoryRead(nic: $1, address: $2, bytes: $3, ok: $4) },
        write: { $0.memoryWrite(nic: $1, address: $2, bytes: $3, ok: $4) },
        truncated: { $0.truncatedAccess(nic: $1, address: $2, length: $3, bytes: $4, write: $5, ok: $6) },
        chain: { $0.chain(nic: $1, queue: $2, head: $3, count: $4, descriptor: $5) },
        used: { $0.used(nic: $1, queue: $2, id: $3, len: $4) },
        counter: { $0.counter(nic: $1, index: $2, value: $3) },
        append: { $0.append($1, nic: $2, vcpu: $3, time: $4) }) }

    static func settings(minor: UInt16, hardLimit: Int = .max) -> EncoderSettings {
        let r = TraceVersion.records(minor: minor)
        return EncoderSettings(capacity: 1 << 16, repeats: r.repeats, predicts: r.predicts, recalls: r.recalls, hardLimit: hardLimit, pool: nil)
    }

    static let counters: [[UInt64]] = [[UInt64](repeating: 5, count: 16), [UInt64](repeating: 0, count: 16)]

    @Test(arguments: [UInt16(3), 4, 5, 6])
    func aRawChunkEncodesToTheInlineEncodersBytes(minor: UInt16) {
        let settings = Self.settings(minor: minor)
        var inline = settings.encoder(firstEvent: 100, baseTime: 50, checkpoint: nil, counters: Self.counters)
        Self.apply(&inline, Self.encoderCalls)
        var raw = RawChunk(firstEvent: 100, baseTime: 50, checkpoint: nil, counters: Self.counters, settings: settings, capacity: 256)
        Self.apply(&raw, Self.rawCalls)
        #expect(raw.eventCount == inline.eventCount && raw.eventCount == 3 * 31)
        #expect(raw.currentCounters == inline.currentCounters)
        #expect(raw.lastTime == inline.lastTime)
        raw.markEndsInsideAccess()
        inline.markEndsInsideAccess()
        let encoded = raw.encode()
        #expect(encoded.count == 1)
        #expect(encoded[0].content == inline.content)
        #expect(encoded[0].flags == inline.flags)
    }

    /// A raw chunk's memory comes back through the pool once nothing else
    /// holds it, emptied, with the new chunk's counters; a log still held
    /// elsewhere is not handed out.
    @Test func aPooledLogIsReusedOnlyWhenNothingHoldsIt() {
        let pool = RawLogPool(limit: 2), settings = Self.settings(minor: 6)
        var first: RawChunk? = RawChunk(firstEvent: 0, baseTime: 0, checkpoint: nil, counters: Self.counters, settings: settings, capacity: 4096, pool: pool)
        first!.counter(nic: 0, index: 3, value: 99)
        let log = ObjectIdentifier(first!.log)
        pool.recycle(first!)
        let held = first
        let second = RawChunk(firstEvent: 1, baseTime: 0, checkpoint: nil, counters: Self.counters, settings: settings, capacity: 4096, pool: pool)
        #expect(ObjectIdentifier(second.log) != log, "a log another chunk still holds")
        _ = held
        first = nil
        pool.recycle(second)
        let secondLog = ObjectIdentifier(second.log)
        _ = consume second
        let third = RawChunk(firstEvent: 2, baseTime: 0, checkpoint: nil, counters: [[UInt64](repeating: 7, count: 16)], settings: settings, capacity: 4096, pool: pool)
        #expect(ObjectIdentifier(third.log) == secondLog)
        #expect(third.size == 0 && third.eventCount == 0 && third.currentCounters == [[UInt64](repeating: 7, count: 16)])
    }

    /// Past the hard limit the raw chunk's records go on in continuation
    /// chunks, cut after the same access a recorder cuts after.
    /// (Hard limits from 1,500 to 4,000 bytes, so that cuts fall after
    /// every kind of record that is checked: reads, writes, truncated
    /// accesses, chains.)
    @Test(arguments: Array(stride(from: 1_500, to: 4_000, by: 23)))
    func pastTheHardLimitTheEncodingIsCutAsARecorderCutsIt(hardLimit: Int) {
        let settings = Self.settings(minor: 6, hardLimit: hardLimit)
        var raw = RawChunk(firstEvent: 0, baseTime: 0, checkpoint: nil, counters: Self.counters, settings: settings, capacity: 256)
        Self.apply(&raw, Self.rawCalls, rounds: 6)
        let encoded = raw.encode()
        // The recorder's inline cuts (TraceRecorder.checkHardLimit after each access and chain).
        var expected: [ChunkEncoder] = []
        var e = settings.encoder(firstEvent: 0, baseTime: 0, checkpoint: nil, counters: Self.counters)
        var cutting = Self.encoderCalls
        func cut(_ e: inout ChunkEncoder) {
            guard e.pastHardLimit else { return }
            e.markEndsInsideAccess()
            let next = settings.encoder(firstEvent: e.firstEvent + e.eventCount, baseTime: e.lastTime, checkpoint: nil, counters: e.currentCounters)
            expected.append(e)
            e = next
        }
        let read = cutting.read, write = cutting.write, truncated = cutting.truncated, chain = cutting.chain
        cutting.read = { read(&$0, $1, $2, $3, $4); cut(&$0) }
        cutting.write = { write(&$0, $1, $2, $3, $4); cut(&$0) }
        cutting.truncated = { truncated(&$0, $1, $2, $3, $4, $5, $6); cut(&$0) }
        cutting.chain = { chain(&$0, $1, $2, $3, $4, $5); cut(&$0) }
        Self.apply(&e, cutting, rounds: 6)
        expected.append(e)
        #expect(encoded.count == expected.count && encoded.count >= 4, "\(encoded.count) chunks")
        for (i, (a, b)) in zip(encoded, expected).enumerated() {
            #expect(a.content == b.content, "chunk \(i)")
            #expect(a.flags == b.flags && a.firstEvent == b.firstEvent, "chunk \(i)")
        }
        #expect(encoded.dropLast().allSatisfy { $0.flags.contains(.endsInsideAccess) })
        #expect(encoded.dropFirst().allSatisfy { $0.flags.contains(.continuation) })
        #expect(encoded.reduce(0) { $0 + $1.eventCount } == raw.eventCount)
    }
}
