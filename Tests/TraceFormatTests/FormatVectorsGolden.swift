import Foundation
import Testing
@testable import TraceFormat

/// `traces/golden/format-vectors.vtrace`: encodings a device never produces,
/// written with the encoder directly (a test vector for other decoders, like
/// `tools/trace-decoder`; it decodes, it does not replay): an interrupt kind
/// past the tag's four bits (the IRQ escape) and at its edge, MMIO widths
/// past them, a vCPU switch on an access, a counter whose delta wraps past
/// 2^64, NIC switches, a vhost-user record, and a continuation chunk that
/// carries its counter baselines. This test writes it again and asserts the
/// same bytes; `VTRACE_WRITE_GOLDEN=1` rewrites it (only for a new format version).
@Suite("The format-vectors golden")
struct FormatVectorsGoldenTests {
    static var golden: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("traces/golden/format-vectors.vtrace").path
    }

    static func write(to path: String) throws {
        var header = TraceHeader()
        header.minorVersion = 2  // the 1.2 vectors, as written then (1.3's are `format-vectors-1.3`)
        header.nics = 2
        header.guestDescription = "format-vectors: encodings a device never produces (decode only)"
        var cp = NICCheckpoint()
        cp.queues = [QueueCheckpoint(), QueueCheckpoint()]
        var nearlyWrapped = cp
        nearlyWrapped.counters[1] = UInt64.max - 1
        let writer = try TraceWriter(path: path, header: header, level: 1, queueDepth: 64)
        var first = ChunkEncoder(firstEvent: 0, baseTime: 1_000, checkpoint: [cp, nearlyWrapped], counters: [], repeats: false)
        first.append(.mmioRead(offset: 0x70, width: 15, value: 1), nic: 0, vcpu: 0, time: 1_010)
        first.append(.mmioWrite(offset: 0x50, width: -3, value: 0), nic: 0, vcpu: 7, time: 1_020)
        first.append(.interrupt(kind: 14), nic: 0)
        first.append(.interrupt(kind: 15), nic: 0)
        first.append(.interrupt(kind: 1 << 20), nic: 0)
        first.append(.mmioRead(offset: 0x60, width: 4, value: 3), nic: 1, vcpu: 7, time: 1_030)
        first.append(.counter(index: 1, value: 5), nic: 1)                   // wraps: delta 7
        first.append(.transport(code: 2, queue: 1, values: EventDetails([0x1000, 0x2000, 0x3000])), nic: 1, time: 1_040)
        first.append(.counter(index: 15, value: 1), nic: 0)
        first.markEndsInsideAccess()
        try writer.submit(first)
        // A continuation: no checkpoint, the counters the previous chunk ended with.
        var next = ChunkEncoder(firstEvent: first.firstEvent + first.eventCount, baseTime: first.lastTime, checkpoint: nil,
                                counters: first.currentCounters, repeats: false)
        next.append(.counter(index: 1, value: 2), nic: 1)                    // 5 -> 2: a delta of 2^64 - 3
        next.append(.used(queue: 1, id: 3, len: 0), nic: 1)
        next.append(.interrupt(kind: UInt32.max), nic: 0)
        try writer.submit(next)
        _ = try writer.finish()
    }

    @Test func theVectorsAreWrittenAgainByteForByte() throws {
        try expectWrittenAgainByteForByte(Self.golden, Self.write(to:))
    }

    @Test func theVectorsDecodeToWhatWasWritten() throws {
        let reader = try TraceReader(path: Self.golden)
        #expect(reader.chunks.map(\.hasCheckpoint) == [true, false] && reader.chunks[0].endsInsideAccess)
        var events: [TraceEvent] = []
        for i in reader.chunks.indices {
            var d = try reader.decoder(i)
            while let e = try d.next() { events.append(e) }
        }
        #expect(events.map(\.body) == [
            .mmioRead(offset: 0x70, width: 15, value: 1), .mmioWrite(offset: 0x50, width: -3, value: 0),
            .interrupt(kind: 14), .interrupt(kind: 15), .interrupt(kind: 1 << 20),
            .mmioRead(offset: 0x60, width: 4, value: 3), .counter(index: 1, value: 5),
            .transport(code: 2, queue: 1, values: EventDetails([0x1000, 0x2000, 0x3000])), .counter(index: 15, value: 1),
            .counter(index: 1, value: 2), .used(queue: 1, id: 3, len: 0), .interrupt(kind: UInt32.max),
        ])
        #expect(events.map(\.nic) == [0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 1, 0])
        // Context (NIC, vCPU) starts over in every chunk, a continuation too.
        #expect(events.map(\.vcpu) == [0, 7, 7, 7, 7, 7, 7, 7, 7, 0, 0, 0])
        #expect(events.map(\.time) == [1_010, 1_020, 1_020, 1_020, 1_020, 1_030, 1_030, 1_040, 1_040, 1_040, 1_040, 1_040])
    }
}

/// `traces/golden/format-vectors-1.3.vtrace`: what format 1.3 added — a
/// window of a longer recording (the header's first event, 5,000, and the
/// window and trigger fields; its first chunk starts there with a
/// checkpoint), a marker event, and a snaplen (the header field, tag 19, and
/// partial memory records: a read that stores 4 of its 100 bytes, the write
/// of its copy, a failed write that stores none of 1,500, and a plain write
/// that repeats the plain read before the partial one, which is no recent
/// read). Rewritten only with `VTRACE_WRITE_GOLDEN=1`.
@Suite("The format 1.3 vectors golden")
struct FormatVectors13GoldenTests {
    static var golden: String {
        URL(fileURLWithPath: FormatVectorsGoldenTests.golden).deletingLastPathComponent().appendingPathComponent("format-vectors-1.3.vtrace").path
    }

    static func write(to path: String) throws {
        var header = TraceHeader()
        header.minorVersion = 3
        header.nics = 1
        header.guestDescription = "format-vectors 1.3: a window from event 5000 with a marker and partial payloads (decode only)"
        header.firstEvent = 5_000
        header.trigger = "rx_write_failed > 0"
        header.snaplen = 4
        var cp = NICCheckpoint()
        cp.queues = [QueueCheckpoint(), QueueCheckpoint()]
        cp.counters[9] = 1
        let writer = try TraceWriter(path: path, header: header, level: 1, queueDepth: 64, keep: TraceWindow(bytes: 8 << 20, nanoseconds: 30_000_000_000))
        var first = ChunkEncoder(firstEvent: 5_000, baseTime: 2_000, checkpoint: [cp], counters: [], repeats: false)
        first.append(.mmioWrite(offset: 0x50, width: 4, value: 1), nic: 0, vcpu: 0, time: 2_010)
        first.append(.counter(index: 0, value: 1), nic: 0)
        first.append(.marker(code: MarkerCode.triggerFired.rawValue, details: EventDetails([5_001])), nic: 0, time: 2_020)
        first.append(.marker(code: 77, details: EventDetails([1, 2, 3])), nic: 0, time: 2_030)
        Self.payload.withUnsafeBytes { p in
            first.append(.memoryRead(address: 0x10_0070, length: 16, ok: true, bytes: UnsafeRawBufferPointer(rebasing: p[0..<16])), nic: 0)
            first.append(.memoryRead(address: 0x10_000c, length: 100, ok: true, bytes: UnsafeRawBufferPointer(rebasing: p[0..<4])), nic: 0)
            first.append(.memoryWrite(address: 0x20_000c, length: 100, ok: true, bytes: UnsafeRawBufferPointer(rebasing: p[0..<4])), nic: 0)
            first.append(.memoryWrite(address: 0x30_000c, length: 1_500, ok: false, bytes: UnsafeRawBufferPointer(rebasing: p[0..<0])), nic: 0)
            first.append(.memoryWrite(address: 0x20_0070, length: 16, ok: true, bytes: UnsafeRawBufferPointer(rebasing: p[0..<16])), nic: 0)
        }
        try writer.submit(first)
        _ = try writer.finish()
    }

    /// The partial records' payload: bytes 0, 1, 2, ….
    static let payload: [UInt8] = (0..<100).map { UInt8($0) }

    @Test func theVectorsAreWrittenAgainByteForByte() throws {
        try expectWrittenAgainByteForByte(Self.golden, Self.write(to:))
    }

    @Test func theVectorsDecodeToWhatWasWritten() throws {
        let reader = try TraceReader(path: Self.golden)
        #expect(reader.header.minorVersion == 3 && reader.header.firstEvent == 5_000 && reader.firstEvent == 5_000)
        #expect(reader.events == 5_000..<5_009 && reader.eventCount == 5_009)
        #expect(reader.header.window == "the newest 8388608 bytes and 30.0 s" && reader.header.trigger == "rx_write_failed > 0")
        #expect(reader.header.snaplen == 4)
        var d = try reader.decoder(0)
        var events: [TraceEvent] = []
        while let e = try d.next() { events.append(e) }
        #expect(events.map(\.number) == Array(5_000..<5_009))
        #expect(events.prefix(4).map(\.body) == [
            .mmioWrite(offset: 0x50, width: 4, value: 1), .counter(index: 0, value: 1),
            .marker(code: 1, details: EventDetails([5_001])), .marker(code: 77, details: EventDetails([1, 2, 3])),
        ])
        #expect(events.map(\.time) == [2_010, 2_010, 2_020, 2_030, 2_030, 2_030, 2_030, 2_030, 2_030])
        // The memory events: address, length, ok, the bytes stored, the bytes not.
        let memory = events.dropFirst(4).map { e -> (UInt64, Int, Bool, [UInt8], Int) in
            switch e.body {
            case .memoryRead(let a, let n, let ok, let r), .memoryWrite(let a, let n, let ok, let r): return (a, n, ok, Array(d.bytes(r)), e.bytesNotStored)
            default: return (0, 0, false, [], 0)
            }
        }
        #expect(events.dropFirst(4).map(\.kind) == [.memoryRead, .memoryRead, .memoryWrite, .memoryWrite, .memoryWrite])
        #expect(memory.map(\.0) == [0x10_0070, 0x10_000c, 0x20_000c, 0x30_000c, 0x20_0070])
        #expect(memory.map(\.1) == [16, 100, 100, 1_500, 16] && memory.map(\.2) == [true, true, true, false, true])
        #expect(memory.map(\.3) == [Array(Self.payload[0..<16]), [0, 1, 2, 3], [0, 1, 2, 3], [], Array(Self.payload[0..<16])])
        #expect(memory.map(\.4) == [0, 96, 96, 1_500, 0])
    }

    /// A window whose first chunk has no checkpoint cannot be replayed: corrupt, naming chunk 0.
    @Test func aWindowMustStartAtACheckpoint() throws {
        var e = ChunkEncoder(firstEvent: 10, baseTime: 0, checkpoint: nil, counters: [Array(repeating: 0, count: 16)])
        e.append(.mmioRead(offset: 0, width: 4, value: 0), nic: 0, vcpu: 0, time: 1)
        let (path, entries) = try oneChunkTrace("window-no-cp", e) { $0.firstEvent = 10 }
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: TraceError.corrupt(offset: Int(entries[0].offset), chunk: 0,
                                           "the trace's window starts at event 10, but its first chunk has no checkpoint to start from")) {
            _ = try TraceReader(path: path)
        }
    }
}

@Suite("Chunk event counts")
struct ChunkEventCountTests {
    /// A chunk that holds another number of events than its entry says (an
    /// entry frame edited in a recorder-died trace, which has no index) is
    /// corrupt at its end, naming the chunk: event numbers would overlap.
    @Test func aChunkHoldingMoreEventsThanItsEntrySaysIsCorrupt() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("count-\(getpid()).vtrace").path
        var header = TraceHeader()
        header.nics = 1
        var cp = NICCheckpoint()
        cp.queues = [QueueCheckpoint(), QueueCheckpoint()]
        let writer = try TraceWriter(path: path, header: header, level: 1)
        var e = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [cp], counters: [])
        for i in 0..<3 { e.append(.mmioRead(offset: 0, width: 4, value: UInt64(i)), nic: 0, vcpu: 0, time: UInt64(i)) }
        try writer.submit(e)
        _ = try writer.finish()
        // Leave the chunk without its index, then make its entry frame say 2 events.
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let reader = try TraceReader(path: path)
        let entryAt = Int(reader.chunks[0].offset) - 44
        bytes[entryAt + 24] = 2
        bytes.removeSubrange(Int(reader.chunks[0].offset + UInt64(reader.chunks[0].compressedSize))...)
        let partial = path + ".partial"
        try Data(bytes).write(to: URL(fileURLWithPath: partial))
        defer { try? FileManager.default.removeItem(atPath: path); try? FileManager.default.removeItem(atPath: partial) }
        let cut = try TraceReader(path: partial)
        #expect(cut.chunks.count == 1 && cut.chunks[0].eventCount == 2)
        var d = try cut.decoder(0)
        for _ in 0..<3 { #expect(try d.next(chunk: 0, of: cut) != nil) }
        #expect(throws: TraceError.corrupt(offset: Int(cut.chunks[0].offset), chunk: 0, "the chunk holds 3 events, its index entry 2")) {
            _ = try d.next(chunk: 0, of: cut)
        }
    }
}

/// Writes a golden trace again with `write` (the golden itself first, under
/// `VTRACE_WRITE_GOLDEN=1`) into a temporary file, and requires the same bytes.
func expectWrittenAgainByteForByte(_ golden: String, _ write: (String) throws -> Void,
                                   sourceLocation: SourceLocation = #_sourceLocation) throws {
    if ProcessInfo.processInfo.environment["VTRACE_WRITE_GOLDEN"] == "1" { try write(golden) }
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(URL(fileURLWithPath: golden).lastPathComponent)-\(getpid())").path
    try write(path)
    defer { try? FileManager.default.removeItem(atPath: path) }
    #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(contentsOf: URL(fileURLWithPath: golden)), sourceLocation: sourceLocation)
}

/// Writes the decode-only vectors of format 1.`minor` to `path`: two chunks,
/// each begun at ``RepeatRecordTests/checkpoint()`` with the records 1.`minor`
/// may hold, filled by `first` and then `next` (whose tables start empty).
func writeTwoChunkVectors(to path: String, minor: UInt16, _ description: String,
                          first: (inout ChunkEncoder) -> Void, next: (inout ChunkEncoder) -> Void) throws {
    var header = TraceHeader()
    header.minorVersion = minor
    header.guestDescription = description
    let writer = try TraceWriter(path: path, header: header, level: 1, queueDepth: 64)
    let records = TraceVersion.records(minor: minor)
    func chunk(_ firstEvent: UInt64, _ baseTime: UInt64, _ fill: (inout ChunkEncoder) -> Void) throws -> ChunkEncoder {
        var e = ChunkEncoder(firstEvent: firstEvent, baseTime: baseTime, checkpoint: [RepeatRecordTests.checkpoint()], counters: [],
                             repeats: records.repeats, predicts: records.predicts, recalls: records.recalls, cursors: records.cursors)
        fill(&e)
        try writer.submit(e)
        return e
    }
    let a = try chunk(0, 0, first)
    _ = try chunk(a.eventCount, a.lastTime, next)
    _ = try writer.finish()
}
