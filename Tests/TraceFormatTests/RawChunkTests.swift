import Testing
@testable import TraceFormat

/// A raw chunk (events appended on the recording thread, encoded on the
/// writer's) encodes to the very records an inline encoder writes, and cuts
/// at the encoder's hard limit where a recorder would.
@Suite("raw chunks")
struct RawChunkTests {
    /// Events of every kind and shape, applied to an encoder or a raw chunk alike.
    static func apply<S: RecordSink>(_ sink: inout S, rounds: Int = 3) {
        var payload = [UInt8](repeating: 0, count: 2_000)
        for i in payload.indices { payload[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 3) }
        payload.withUnsafeBytes { p in
            func bytes(_ n: Int, from: Int = 0) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: p[from..<(from + n)]) }
            var head: UInt16 = 0
            for round in 0..<rounds {
                let nic = round % 2
                sink.append(.mmioWrite(offset: 0x50, width: 4, value: 1), nic: nic, vcpu: UInt32(round), time: 1_000 &* UInt64(round))
                // Ring index, slot, descriptors, payload: repeats and recalls from the second round on.
                sink.memoryRead(nic: nic, address: 0x1002, bytes: bytes(2, from: round), ok: true)
                sink.memoryRead(nic: nic, address: 0x1004 &+ 2 &* UInt64(head), bytes: bytes(2, from: 5), ok: true)
                sink.memoryRead(nic: nic, address: 0x2000, bytes: bytes(16, from: 16), ok: true)
                sink.memoryRead(nic: nic, address: 0x2010, bytes: bytes(16, from: 40), ok: true)
                sink.chain(nic: nic, queue: 1, head: head, count: 2) { i in (0x10_0000 &+ 0x1000 &* UInt64(i), 760, i == 0 ? 1 : 0, UInt16(i + 1)) }
                sink.memoryRead(nic: nic, address: 0x10_000C, bytes: bytes(748, from: 100), ok: true)
                sink.memoryRead(nic: nic, address: 0x10_1000, bytes: bytes(760, from: 848), ok: true)
                sink.memoryRead(nic: nic, address: 0x3000, bytes: bytes(8), ok: false)                     // failed: no bytes stored
                sink.truncatedAccess(nic: nic, address: 0x10_2000, length: 1_500, bytes: bytes(64, from: 200), write: false, ok: true)
                sink.memoryWrite(nic: nic, address: 0x20_0000, bytes: bytes(12), ok: true)
                sink.memoryWrite(nic: nic, address: 0x20_000C, bytes: bytes(748, from: 100), ok: true)   // repeats a recent read
                sink.memoryWrite(nic: nic, address: 0x20_0800, bytes: bytes(1_500, from: 50), ok: false)  // failed, stored
                sink.truncatedAccess(nic: nic, address: 0x20_1000, length: 1_500, bytes: bytes(40, from: 9), write: true, ok: round == 1)
                sink.memoryWrite(nic: nic, address: 0x4008 &+ 8 &* UInt64(head), bytes: bytes(8, from: 24), ok: true)
                sink.memoryWrite(nic: nic, address: 0x4002, bytes: bytes(2, from: round &+ 1), ok: true)
                sink.used(nic: nic, queue: 1, id: UInt32(head), len: 0)
                sink.counter(nic: nic, index: 0, value: UInt64(round + 1))
                sink.counter(nic: nic, index: 1, value: UInt64(round + 1) &* 1_514)
                sink.counter(nic: nic, index: 15, value: 1 << 40 | UInt64(round))
                sink.append(.interrupt(kind: 1), nic: nic, vcpu: 0, time: 0)
                sink.append(.poison(queue: 1, code: 3, details: EventDetails([7, 9])), nic: nic, vcpu: 0, time: 0)
                sink.append(.status(old: 7, new: 15), nic: nic, vcpu: 0, time: 0)
                sink.append(.features(old: 0, new: 1 << 32 | 0x20), nic: nic, vcpu: 0, time: 0)
                sink.append(.pairs(old: 1, new: 2), nic: nic, vcpu: 0, time: 0)
                sink.append(.warning(code: 2, details: EventDetails([1, 2, 3])), nic: nic, vcpu: 0, time: 0)
                sink.append(.memoryBinding(bound: round != 1), nic: nic, vcpu: 0, time: 0)
                sink.append(.transport(code: 4, queue: 1, values: EventDetails([5])), nic: nic, vcpu: 0, time: 2_000 &* UInt64(round) &+ 500)
                sink.append(.marker(code: 1, details: EventDetails([42])), nic: nic, vcpu: 0, time: 2_000 &* UInt64(round) &+ 400)
                sink.append(.mmioRead(offset: 0x60, width: 4, value: 1), nic: nic, vcpu: 7, time: 2_000 &* UInt64(round) &+ 900)
                sink.append(.reset, nic: nic, vcpu: 0, time: 0)
                head &+= 1
            }
        }
    }

    static func settings(minor: UInt16, hardLimit: Int = .max) -> EncoderSettings {
        let r = TraceVersion.records(minor: minor)
        return EncoderSettings(capacity: 1 << 16, repeats: r.repeats, predicts: r.predicts, recalls: r.recalls, cursors: r.cursors, hardLimit: hardLimit, pool: nil)
    }

    static let counters: [[UInt64]] = [[UInt64](repeating: 5, count: 16), [UInt64](repeating: 0, count: 16)]

    @Test(arguments: [UInt16(3), 4, 5, 6])
    func aRawChunkEncodesToTheInlineEncodersBytes(minor: UInt16) {
        let settings = Self.settings(minor: minor)
        var inline = settings.encoder(firstEvent: 100, baseTime: 50, checkpoint: nil, counters: Self.counters)
        Self.apply(&inline)
        var raw = RawChunk(firstEvent: 100, baseTime: 50, checkpoint: nil, counters: Self.counters, settings: settings, capacity: 256)
        Self.apply(&raw)
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
        Self.apply(&raw, rounds: 6)
        let encoded = raw.encode()
        // The recorder's inline cuts (TraceRecorder.checkHardLimit after each access and chain).
        var cutting = CuttingEncoder(settings: settings, counters: Self.counters)
        Self.apply(&cutting, rounds: 6)
        let expected = cutting.done + [cutting.e]
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

/// What a recording observer calls, on an encoder or a raw chunk alike.
protocol RecordSink {
    mutating func memoryRead(nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool)
    mutating func memoryWrite(nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool)
    mutating func truncatedAccess(nic: Int, address: UInt64, length: Int, bytes: UnsafeRawBufferPointer, write: Bool, ok: Bool)
    mutating func chain(nic: Int, queue: UInt16, head: UInt16, count: Int, descriptor: (Int) -> (addr: UInt64, len: UInt32, flags: UInt16, next: UInt16))
    mutating func used(nic: Int, queue: UInt16, id: UInt32, len: UInt32)
    mutating func counter(nic: Int, index: Int, value: UInt64)
    mutating func append(_ event: OutgoingEvent, nic: Int, vcpu: UInt32, time: UInt64)
}

extension ChunkEncoder: RecordSink {}
extension RawChunk: RecordSink {}

/// Encoders cut as the recorder cuts inline: past the hard limit, after an
/// access or a chain, the chunk ends inside the access and a continuation follows.
struct CuttingEncoder: RecordSink {
    let settings: EncoderSettings
    var e: ChunkEncoder
    var done: [ChunkEncoder] = []

    init(settings: EncoderSettings, counters: [[UInt64]]) {
        self.settings = settings
        e = settings.encoder(firstEvent: 0, baseTime: 0, checkpoint: nil, counters: counters)
    }

    mutating func cut() {
        guard e.pastHardLimit else { return }
        e.markEndsInsideAccess()
        let next = settings.encoder(firstEvent: e.firstEvent + e.eventCount, baseTime: e.lastTime, checkpoint: nil, counters: e.currentCounters)
        done.append(e)
        e = next
    }
    mutating func memoryRead(nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool) { e.memoryRead(nic: nic, address: address, bytes: bytes, ok: ok); cut() }
    mutating func memoryWrite(nic: Int, address: UInt64, bytes: UnsafeRawBufferPointer, ok: Bool) { e.memoryWrite(nic: nic, address: address, bytes: bytes, ok: ok); cut() }
    mutating func truncatedAccess(nic: Int, address: UInt64, length: Int, bytes: UnsafeRawBufferPointer, write: Bool, ok: Bool) {
        e.truncatedAccess(nic: nic, address: address, length: length, bytes: bytes, write: write, ok: ok)
        cut()
    }
    mutating func chain(nic: Int, queue: UInt16, head: UInt16, count: Int, descriptor: (Int) -> (addr: UInt64, len: UInt32, flags: UInt16, next: UInt16)) {
        e.chain(nic: nic, queue: queue, head: head, count: count, descriptor: descriptor)
        cut()
    }
    mutating func used(nic: Int, queue: UInt16, id: UInt32, len: UInt32) { e.used(nic: nic, queue: queue, id: id, len: len) }
    mutating func counter(nic: Int, index: Int, value: UInt64) { e.counter(nic: nic, index: index, value: value) }
    mutating func append(_ event: OutgoingEvent, nic: Int, vcpu: UInt32, time: UInt64) { e.append(event, nic: nic, vcpu: vcpu, time: time) }
}
