import Foundation
import GuestDriver
import Scenarios
import Testing
import TraceFormat
import TraceAnalysis
import TraceMapping
import TraceRecording
import TraceTestSupport
import VirtioCore

@Suite("Streaming replay")
struct StreamingReplayTests {
    /// Two chunks with a checkpoint each; the second turns hostile after two valid events (at content byte `badAt`).
    static func writeCorruptMidChunk(_ name: String) throws -> (path: String, badAt: Int) {
        let probe = VirtioNetDevice<GuestRAM, NoObserver>(memory: nil)
        let header = TraceHeader(config: NetConfig(), nics: 1, offeredFeatures: probe.offeredFeatures, regions: [MemoryRegion(base: 0, size: 1 << 20)])
        let path = temporaryPath(name + ".vtrace")
        let writer = try TraceWriter(path: path, header: header)
        var chunk0 = ChunkEncoder(firstEvent: 0, baseTime: 0, checkpoint: [NICCheckpoint(probe.state, memoryBound: false)], counters: [])
        chunk0.append(.mmioRead(offset: 0, width: 4, value: 0x7472_6976), nic: 0, vcpu: 0, time: 1)  // MagicValue
        try writer.submit(chunk0)
        var chunk1 = ChunkEncoder(firstEvent: 1, baseTime: 2, checkpoint: [NICCheckpoint(probe.state, memoryBound: false)], counters: [])
        chunk1.append(.mmioRead(offset: 4, width: 4, value: 2), nic: 0, vcpu: 0, time: 3)  // Version
        chunk1.append(.mmioRead(offset: 8, width: 4, value: 1), nic: 0, vcpu: 0, time: 4)  // DeviceID
        let badAt = chunk1.size
        chunk1.appendRaw([0xEF, 0x00])  // context record 14: there is no such record
        try writer.submit(chunk1)
        let entries = try writer.finish()
        #expect(entries.count == 2)
        return (path, badAt)
    }

    /// A chunk whose content turns hostile after two valid events: the segment
    /// before it replays clean, and replaying the bad chunk throws an error
    /// naming the chunk, its file offset and the byte inside its content (no
    /// trap, and no divergence reported in its place).
    @Test func aCorruptRecordMidChunkIsAnErrorNamingTheChunk() throws {
        let (path, badAt) = try Self.writeCorruptMidChunk("corrupt-mid-chunk")
        let reader = try TraceReader(path: path)
        let replayer = TraceReplayer(reader: reader)
        let first = try replayer.replaySegment(from: 0)
        #expect(first.divergence == nil && first.checkpointMismatch == nil && first.events == 1)
        #expect(throws: TraceError.corrupt(offset: Int(reader.chunks[1].offset), chunk: 1,
                                           "unknown context record 14 (byte \(badAt) of the chunk's content)")) {
            _ = try replayer.replaySegment(from: 1)
        }
        // The whole-trace replay reports the same error (the CLI exits 125 under --check).
        #expect(throws: TraceError.self) { _ = try TraceReplayer(reader: reader).replayAll(keepGoing: true) }
    }
}
