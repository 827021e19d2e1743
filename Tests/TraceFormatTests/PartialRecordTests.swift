import Foundation
import Testing
@testable import TraceFormat

/// The partial memory record (kind 15, aux 4; format 1.3) as hostile input:
/// every length and count it carries is checked, and what breaks the format
/// is an error naming the record's offset (and, read from a file, the
/// chunk's), never a trap or a read past the chunk.
@Suite("Partial memory records, hostile")
struct PartialRecordTests {
    static func checkpoint() -> NICCheckpoint {
        var cp = NICCheckpoint()
        cp.queues = [QueueCheckpoint(), QueueCheckpoint()]
        return cp
    }

    /// A chunk holding one MMIO access, then `record` (raw bytes), then
    /// another access; and the offset `record` starts at.
    static func chunk(_ record: [UInt8]) -> (ChunkEncoder, Int) {
        var e = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [checkpoint()], counters: [])
        e.append(.mmioWrite(offset: 0x50, width: 4, value: 1), nic: 0, vcpu: 0, time: 1)
        let at = e.size
        e.appendRaw(record)
        e.append(.mmioRead(offset: 0x60, width: 4, value: 0), nic: 0, vcpu: 0, time: 2)
        return (e, at)
    }

    /// The tag, flags, a zero address delta, length and stored count (varints), then `bytes`.
    static func record(flags: UInt8, length: UInt64, stored: UInt64, bytes: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.byte(RecordCode.tag(code: TruncatedMemoryRecord.code))
        w.byte(flags)
        w.varint(0)
        w.varint(length)
        w.varint(stored)
        w.append(bytes)
        return w.bytes
    }

    @Test func theRecordsTagIsEscapeFour() {
        #expect(RecordCode.tag(code: TruncatedMemoryRecord.code) == 0x4F)
    }

    /// A well-formed one decodes; each broken one is an error at its tag.
    @Test(arguments: [
        (UInt8(0), UInt64(100), UInt64(200), [UInt8](repeating: 7, count: 200), "memory read of 100 bytes stores 200 of them (a part is fewer)"),
        (1, 100, 100, [UInt8](repeating: 7, count: 100), "memory write of 100 bytes stores 100 of them (a part is fewer)"),
        (0, 0, 0, [], "memory read of 0 bytes stores 0 of them (a part is fewer)"),
        (2, 100, 0, [], "a failed memory read with part of a payload (a failed read stores none)"),
        (0, 1 << 32, 4, [1, 2, 3, 4], "memory read length 4294967296 out of range"),
        (3, UInt64.max, 4, [1, 2, 3, 4], "memory write length 18446744073709551615 out of range"),
        (1, 1_000_000, 500_000, [1, 2, 3], "memory write's stored part of 500000 bytes, 7 left in the chunk"),  // 3, and the MMIO read's 4
    ])
    func aBrokenPartialRecordIsAnErrorAtItsTag(flags: UInt8, length: UInt64, stored: UInt64, bytes: [UInt8], message: String) throws {
        let (e, at) = Self.chunk(Self.record(flags: flags, length: length, stored: stored, bytes: bytes))
        var d = try ChunkDecoder(content: e.content, nics: 1)
        #expect(try d.next()?.kind == .mmioWrite)
        #expect(throws: ChunkDecodeError(offset: at, message)) { _ = try d.next() }
    }

    @Test func aWellFormedOneDecodesAndUnusedFlagBitsAreIgnored() throws {
        let (e, _) = Self.chunk(Self.record(flags: 0xFC | 1, length: 100, stored: 3, bytes: [1, 2, 3]))
        var d = try ChunkDecoder(content: e.content, nics: 1)
        _ = try d.next()
        let partial = try #require(try d.next())
        guard case .memoryWrite(0, 100, true, let r) = partial.body else { Issue.record("\(partial.body)"); return }
        #expect(Array(d.bytes(r)) == [1, 2, 3] && partial.bytesNotStored == 97)
        #expect(try d.next()?.body == .mmioRead(offset: 0x60, width: 4, value: 0))
        #expect(try d.next() == nil)
    }

    /// In a file: the reader's error names the chunk and its offset in the
    /// file, and the record's offset in the chunk's content.
    @Test func inAFileTheErrorNamesTheChunkAndTheOffsets() throws {
        let (e, at) = Self.chunk(Self.record(flags: 0, length: 1500, stored: 1600, bytes: [UInt8](repeating: 0xa7, count: 1600)))
        let (path, entries) = try oneChunkTrace("partial-hostile", e) { $0.snaplen = 64 }
        defer { try? FileManager.default.removeItem(atPath: path) }
        let reader = try TraceReader(path: path)
        #expect(reader.header.snaplen == 64)
        var d = try reader.decoder(0)
        _ = try d.next(chunk: 0, of: reader)
        #expect(throws: TraceError.corrupt(offset: Int(entries[0].offset), chunk: 0,
                                           "memory read of 1500 bytes stores 1600 of them (a part is fewer) (byte \(at) of the chunk's content)")) {
            _ = try d.next(chunk: 0, of: reader)
        }
    }

    /// A 1.2 reader knows no kind 15 aux 4: it stops there (an unknown
    /// context record), as this reader does at aux 14, at 1.4's aux 5…7
    /// in content older than 1.4, at 1.5's aux 8…11 in content older than
    /// 1.5, at 1.6's aux 12 in content older than 1.6, and at 1.7's aux 13
    /// in content older than 1.7.
    @Test func theNextEscapeIsStillUnknown() throws {
        let (e, at) = Self.chunk([RecordCode.tag(code: CursorRecord.code + 1), 0])
        var d = try ChunkDecoder(content: e.content, nics: 1)
        _ = try d.next()
        #expect(throws: ChunkDecodeError(offset: at, "unknown context record 14")) { _ = try d.next() }
        let (older6, older6At) = Self.chunk([RecordCode.tag(code: CursorRecord.code), 0])
        var d6 = try ChunkDecoder(content: older6.content, nics: 1, cursors: false)
        _ = try d6.next()
        #expect(throws: ChunkDecodeError(offset: older6At, "unknown context record 13")) { _ = try d6.next() }
        let (older, olderAt) = Self.chunk([RecordCode.tag(code: RecalledRecord.read), 0])
        var d5 = try ChunkDecoder(content: older.content, nics: 1, recalls: false)
        _ = try d5.next()
        #expect(throws: ChunkDecodeError(offset: olderAt, "unknown context record 12")) { _ = try d5.next() }
        for code in [PredictedRecord.chainAtHead, PredictedRecord.usedAsWritten, PredictedRecord.incrementedRead, PredictedRecord.incrementedWrite] {
            let (old, at) = Self.chunk([RecordCode.tag(code: code), 0])
            var d = try ChunkDecoder(content: old.content, nics: 1, predicts: false)
            _ = try d.next()
            #expect(throws: ChunkDecodeError(offset: at, "unknown context record \(code - RecordCode.firstEscaped)")) { _ = try d.next() }
        }
        for code in [RepeatRecord.read, RepeatRecord.write, RepeatRecord.chainAsRead] {
            let (old, at) = Self.chunk([RecordCode.tag(code: code), 0])
            var d = try ChunkDecoder(content: old.content, nics: 1, repeats: false)
            _ = try d.next()
            #expect(throws: ChunkDecodeError(offset: at, "unknown context record \(code - RecordCode.firstEscaped)")) { _ = try d.next() }
        }
    }

    /// The header's snaplen: a varint up to 2^32 − 1; more is corrupt.
    @Test func theHeadersSnaplenIsChecked() throws {
        var h = TraceHeader()
        h.snaplen = .max
        let bytes = h.encode()
        #expect(try bytes.withUnsafeBytes { try TraceHeader.decode($0, fileOffset: 8) }.snaplen == .max)
        var w = ByteWriter()
        w.varint(1 << 32)
        var over = Array(TraceHeader().encode().dropLast(4)) + [19, UInt8(w.count)] + w.bytes
        over += withUnsafeBytes(of: CRC32.checksum(over).littleEndian) { Array($0) }
        let tagAt = TraceHeader().encode().count - 4
        #expect(throws: TraceError.corrupt(offset: 8 + tagAt, chunk: nil, "header field 19 value 4294967296 is over 4294967295")) {
            _ = try over.withUnsafeBytes { try TraceHeader.decode($0, fileOffset: 8) }
        }
    }
}
