import Foundation
import Scenarios
import Testing
import TraceFormat
import TraceRecording
import TraceTestSupport
import VirtioCore

/// The device's frame payload accesses, in order, as it reports them.
final class FrameAccessLog {
    struct Access: Equatable {
        var write: Bool
        var address: UInt64
        var length: Int
        var frameOffset: Int
    }
    var accesses: [Access] = []
}

/// An observer that logs only what the device reports as frame payload.
struct FrameAccessObserver: DeviceObserver {
    let log: FrameAccessLog
    mutating func frameRead(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool, frameOffset: Int) {
        log.accesses.append(.init(write: false, address: address, length: bytes.count, frameOffset: frameOffset))
    }
    mutating func frameWrite(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool, frameOffset: Int) {
        log.accesses.append(.init(write: true, address: address, length: bytes.count, frameOffset: frameOffset))
    }
}

/// `--snaplen N` (RecordingOptions.snaplen): a recording of
/// `traces/workloads/snaplen-frames.scenario` against the full recording of
/// the same run, event by event.
@Suite("Snaplen recordings")
struct SnaplenRecordingTests {
    /// The frames of the workload, by the lengths the device moved: TX frames
    /// read, RX frames written (the two 300-byte frames into 100-byte
    /// buffers: 88 bytes past the header; the 700-byte one faults, after
    /// which nothing more of it is written; the 200-byte one finds no buffer).
    static let txFrames = [1500, 1500, 1500, 1000, 1000, 300, 300, 200, 700, 40, 40]
    static let rxFrames = [1500, 1500, 1500, 1000, 1000, 88, 88, 700, 40, 40]

    /// The frame payload accesses of the workload, from the device itself.
    static func frameAccesses() throws -> [FrameAccessLog.Access] {
        let scenario = try ScenarioParser.parse(file: "snaplen-frames", text: try snaplenFramesScenario())
        let log = FrameAccessLog()
        var runner = try ScenarioRunner(scenario) { _ in FrameAccessObserver(log: log) }
        #expect(runner.run().passed)
        return log.accesses
    }

    /// Every event of a trace with each memory event's stored bytes.
    static func events(_ path: String) throws -> (TraceHeader, [(TraceEvent, [UInt8])]) {
        let reader = try TraceReader(path: path)
        var out: [(TraceEvent, [UInt8])] = []
        for i in reader.chunks.indices {
            var d = try reader.decoder(i)
            while let e = try d.next() {
                switch e.body {
                case .memoryRead(_, _, _, let r), .memoryWrite(_, _, _, let r): out.append((e, Array(d.bytes(r))))
                default: out.append((e, []))
                }
            }
        }
        return (reader.header, out)
    }

    /// A memory event without its payload: kind, address, length, ok.
    static func shape(_ e: TraceEvent) -> [UInt64]? {
        switch e.body {
        case .memoryRead(let a, let n, let ok, _): return [2, a, UInt64(n), ok ? 1 : 0]
        case .memoryWrite(let a, let n, let ok, _): return [3, a, UInt64(n), ok ? 1 : 0]
        default: return nil
        }
    }

    /// The same events as the full recording — every number, chain, counter
    /// and memory access (address, length, outcome) — and each frame payload
    /// access stores its first max(0, N − its offset in the frame) bytes, the
    /// frame's bytes; every other access stores all of its bytes. Per frame
    /// that is min(N, its length).
    @Test(arguments: [UInt32(0), 16, 64, 1_500, 65_557])
    func eachFrameKeepsItsFirstNBytesAndEverythingElseIsWhole(snaplen: UInt32) throws {
        let text = try snaplenFramesScenario()
        let (fullPath, _, _) = try record(text, name: "snaplen-full-\(snaplen)")
        let (snapPath, result, _) = try record(text, name: "snaplen-\(snaplen)", snaplen: snaplen)
        #expect(result.passed, "the workload's expected counters")
        let (fullHeader, full) = try Self.events(fullPath)
        let (header, snap) = try Self.events(snapPath)
        #expect(fullHeader.snaplen == nil && header.snaplen == snaplen)
        #expect(full.count == snap.count && full.count == 302)
        var frames = try Self.frameAccesses()[...]
        // TX reads: 3 frames of one piece, 2 of three, 2 + 1 + 1 of one, 2 of two;
        // RX writes: 3 of one, 2 of two, 2 + 1 (the fault) + 2 of one.
        #expect(frames.count == (3 + 6 + 4 + 4) + (3 + 4 + 5))
        var stored: [(write: Bool, offset: Int, count: Int)] = []
        var notStored = 0
        for ((f, fullBytes), (s, bytes)) in zip(full, snap) {
            #expect(s.number == f.number && s.nic == f.nic)
            guard let fs = Self.shape(f) else {
                #expect(s.body == f.body, "event \(s.number)")
                continue
            }
            #expect(Self.shape(s) == fs, "event \(s.number)")
            #expect(fullBytes.starts(with: bytes), "event \(s.number): the bytes kept are the first ones")
            if let access = frames.first, access.write == (fs[0] == 3), access.address == fs[1], access.length == Int(fs[2]) {
                frames.removeFirst()
                #expect(bytes.count == min(access.length, max(0, Int(snaplen) - access.frameOffset)), "event \(s.number)")
                stored.append((access.write, access.frameOffset, bytes.count))
            } else {
                #expect(bytes == fullBytes, "event \(s.number): not frame payload, stored whole")
            }
            #expect(s.bytesNotStored == fullBytes.count - bytes.count && f.bytesNotStored == 0)
            notStored += s.bytesNotStored
        }
        #expect(frames.isEmpty, "every frame access was found in the trace")
        // Per frame (a new one starts at offset 0): min(N, its length) bytes.
        func perFrame(write: Bool) -> [Int] {
            stored.filter { $0.write == write }.reduce(into: [Int]()) { frames, piece in
                if piece.offset == 0 { frames.append(piece.count) } else { frames[frames.count - 1] += piece.count }
            }
        }
        #expect(perFrame(write: false) == Self.txFrames.map { min($0, Int(snaplen)) })
        #expect(perFrame(write: true) == Self.rxFrames.map { min($0, Int(snaplen)) })
        let payload = Self.txFrames.reduce(0, +) + Self.rxFrames.reduce(0, +)
        #expect(notStored == payload - (Self.txFrames + Self.rxFrames).map { min($0, Int(snaplen)) }.reduce(0, +))
        #expect(notStored == [0: 15_536, 16: 15_200, 64: 14_288, 1_500: 0, 65_557: 0][snaplen])
    }

    /// `--snaplen 0`: not one payload byte in the file. Every frame byte of
    /// the workload is 0xa7: the full recording's chunks hold runs of them,
    /// the snaplen-0 recording's not two in a row (and its header none).
    @Test func withSnaplenZeroNoPayloadByteIsInTheFile() throws {
        let text = try snaplenFramesScenario()
        let (fullPath, _, _) = try record(text, name: "snaplen-zero-full")
        let (path, _, summary) = try record(text, name: "snaplen-zero", snaplen: 0)
        /// Runs of `n` 0xa7 bytes in the file, its chunks decompressed.
        func runs(_ path: String, of n: Int) throws -> Int {
            let reader = try TraceReader(path: path)
            let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            var content: [UInt8] = []
            var at = 0
            for (i, chunk) in reader.chunks.enumerated() {
                content += file[at..<Int(chunk.offset)]
                content += try reader.decoder(i).buffer.bytes
                at = Int(chunk.offset) + Int(chunk.compressedSize)
            }
            content += file[at...]
            let pattern = [UInt8](repeating: 0xa7, count: n)
            return content.indices.dropLast(n - 1).filter { content[$0..<($0 + n)].elementsEqual(pattern) }.count
        }
        #expect(try runs(fullPath, of: 64) > 0)
        #expect(try runs(path, of: 2) == 0)
        #expect(summary.events == 302)
    }
}
