import Foundation
import Testing
import TraceAnalysis
import TraceFormat
import TraceMapping
import TraceTestSupport
import VirtioCore

/// `CounterCause.explain`: for each of the 16 counters, a recording where it
/// moves, and the exact transition, cause, chain and path-table row `why`
/// names for it (the scenarios are the library's, one per row of the spec's
/// path → counters table).
@Suite("Why did a counter move")
struct CounterCauseTests {
    /// A library scenario recorded under a name of the test's own (tests run in parallel).
    static func scenario(_ name: String, test: String = #function) throws -> TraceReader {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("traces/scenarios/\(name).scenario"), encoding: .utf8)
        let (path, _, _) = try record(text, name: "why-\(name)-" + test.filter { $0.isLetter })
        return try TraceReader(path: path)
    }

    static func golden(_ name: String) throws -> TraceReader {
        try TraceReader(path: repositoryRoot.appendingPathComponent("traces/golden/\(name).vtrace").path)
    }

    func why(_ reader: TraceReader, _ counter: NetCounter, _ selection: CounterCause.Selection = .last, nic: Int? = nil,
             sourceLocation: SourceLocation = #_sourceLocation) throws -> CounterCause {
        try #require(try CounterCause.explain(reader, counter: counter, nic: nic, selection: selection), sourceLocation: sourceLocation)
    }

    /// The transition (event, old → new), the cause's event, the chain's event and head
    /// (and the RX chain's), the row and the sentence.
    func expect(_ c: CounterCause, at event: UInt64, _ old: UInt64, _ new: UInt64, cause: UInt64, chain: (UInt64, UInt16)?,
                rx: (UInt64, UInt16)? = nil, row: PathRow?, _ sentence: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(c.transition.event == event && c.transition.old == old && c.transition.new == new, "\(c.transition)", sourceLocation: sourceLocation)
        #expect(c.cause?.event == cause, "cause \(String(describing: c.cause))", sourceLocation: sourceLocation)
        #expect(c.chain.map { [$0.event, UInt64($0.head)] } == chain.map { [$0.0, UInt64($0.1)] }, "chain \(String(describing: c.chain))",
                sourceLocation: sourceLocation)
        #expect(c.rxChain.map { [$0.event, UInt64($0.head)] } == rx.map { [$0.0, UInt64($0.1)] }, "rx chain \(String(describing: c.rxChain))",
                sourceLocation: sourceLocation)
        #expect(c.path.row == row, sourceLocation: sourceLocation)
        #expect(c.path.sentence == sentence, sourceLocation: sourceLocation)
    }

    // MARK: One test per counter

    @Test func txPackets() throws {
        let c = try why(try Self.scenario("rx-no-buffer"), .txPackets)
        expect(c, at: 52, 0, 1, cause: 41, chain: (45, 0), row: .noRxBuffer,
               "no RX buffer: RX queue 0 is empty (its avail idx 0 equals next_avail: every posted buffer is taken), "
                + "so the 64-byte frame from TX head 0 is dropped; TX head 0 returned and its 64 bytes counted")
        #expect(c.cause?.text == "mmio write QueueNotify/4 = 0x1")
        #expect(c.counters.map(\.counter) == [.txDroppedNoRxBuffer, .txPackets, .txBytes])
        // The RX pop read only the avail idx: the frame read and the pop's reads before it.
        #expect(c.memory.map(\.event) == [42, 43, 44, 46, 47, 49, 50])
        #expect(c.memory.map(\.role) == ["q1 avail idx = 1", "q1 avail ring entry: head 0", "q1 descriptor table entry", "TX frame (descriptor 0)",
                                         "q0 avail idx = 0", "q1 used element", "q1 used idx"])
    }

    @Test func txBytes() throws {
        let c = try why(try Self.scenario("rx-too-small"), .txBytes)
        expect(c, at: 84, 64, 128, cause: 65, chain: (69, 0), rx: (74, 0), row: .rxTooSmall,
               "RX buffer too small: RX head 0 took 8 of the 76 bytes (header and frame), 0 frame bytes counted, "
                + "no counter for the truncation; TX head 0 returned and its 64 bytes counted")
        // rx_bytes does not move for a delivery of no frame bytes.
        #expect(c.counters.map { "\($0.counter.name) \($0.old)->\($0.new) #\($0.event)" }
                == ["rx_packets 1->2 #79", "tx_packets 1->2 #83", "tx_bytes 64->128 #84"])
    }

    @Test func rxPackets() throws {
        let reader = try Self.golden("loopback-basic")
        let c = try why(reader, .rxPackets, .nth(2))
        expect(c, at: 78, 1, 2, cause: 42, chain: (67, 1), rx: (72, 1), row: .delivered,
               "frame delivered: the 64-byte frame from TX head 1 written to RX head 1 (used len 76); TX head 1 returned and its 64 bytes counted")
        #expect(c.rxChain?.descriptors == [TraceDescriptor(addr: 0x104800, len: 2048, flags: 2, next: 0)])
    }

    @Test func rxBytes() throws {
        let c = try why(try Self.scenario("rx-delivered-tx-add-used-fails"), .rxBytes)
        expect(c, at: 57, 0, 64, cause: 41, chain: (45, 0), rx: (50, 0), row: .deliveredTxAddUsedFails,
               "frame delivered: the 64-byte frame from TX head 0 written to RX head 0 (used len 76); "
                + "TX add_used failed: the used element write at 0x4000004 (+8) faulted")
        let failed = try #require(c.memory.first { !$0.ok })
        #expect(failed.event == 58 && failed.op == "write" && failed.address == 0x400_0004 && failed.length == 8 && failed.role == "q1 used element")
    }

    @Test func txDroppedNoRxBuffer() throws {
        let c = try why(try Self.scenario("rx-not-ready"), .txDroppedNoRxBuffer, .nth(2))
        expect(c, at: 57, 1, 2, cause: 40, chain: (55, 1), row: .noRxBuffer,
               "no RX buffer: RX queue 0 is not ready, so the 64-byte frame from TX head 1 is dropped; TX head 1 returned and its 64 bytes counted")
    }

    @Test func txDroppedRxPoisoned() throws {
        let c = try why(try Self.scenario("rx-already-poisoned"), .txDroppedRxPoisoned)
        expect(c, at: 89, 3, 4, cause: 61, chain: (87, 2), row: .rxAlreadyPoisoned,
               "RX poisoned: RX queue 0 was poisoned before this chain (only a reset clears it), so the 64-byte frame from TX head 2 is dropped; "
                + "TX head 2 returned and its 64 bytes counted")
        // Its first move is the poisoning itself.
        let first = try why(try Self.scenario("rx-poison"), .txDroppedRxPoisoned, .nth(1))
        #expect(first.path.row == .rxIterError && first.transition.event == 50)
    }

    @Test func txChainInvalid() throws {
        let reader = try Self.scenario("tx-malformed")
        // Each kind of malformed chain: (transition, cause, chain event, what was wrong).
        let cases: [(UInt64, UInt64, UInt64, String)] = [
            (46, 41, 45, "descriptor 0 at 0x900000 (100 bytes) is device-writable"),
            (57, 52, 56, "the chain holds 8 bytes, fewer than the 12-byte header"),
            (68, 63, 67, "skipping the header in descriptor 0 at 0xfffffffffffffff4 (64 bytes) overflows the address space"),
            (81, 74, 79, "the frame read from descriptor 1 at 0x4000000 (64 bytes) faulted: 0x4000000 +64 is not mapped"),
        ]
        for (k, (event, cause, chain, wrong)) in cases.enumerated() {
            expect(try why(reader, .txChainInvalid, .nth(k + 1)), at: event, UInt64(k), UInt64(k + 1), cause: cause, chain: (chain, 0),
                   row: .txMalformed, "TX chain invalid: \(wrong); TX head 0 returned with used len 0")
        }
        let fault = try why(reader, .txChainInvalid, .nth(4))
        let read = try #require(fault.memory.first { !$0.ok })
        #expect(read.event == 80 && read.op == "read" && read.bytes == "" && read.role == "TX frame (descriptor 1)")
    }

    @Test func txOversizeDropped() throws {
        let c = try why(try Self.scenario("frame-size-cap"), .txOversizeDropped)
        expect(c, at: 83, 1, 2, cause: 76, chain: (81, 0), row: .txOversize,
               "TX chain oversize: descriptor 1 at 0xa00000 (30000 bytes) brings the frame to 70000 bytes after the 12-byte header, "
                + "over the 65,557-byte limit (the 40000 bytes before it were read); TX head 0 returned with used len 0")
        #expect(c.memory.first { $0.event == 82 }?.role == "TX frame (descriptor 0)")
    }

    @Test func rxChainInvalid() throws {
        let c = try why(try Self.scenario("rx-shape-recycled"), .rxChainInvalid)
        expect(c, at: 53, 0, 1, cause: 41, chain: (45, 0), rx: (51, 0), row: .rxShapeRecycled,
               "RX chain invalid: descriptor 1 at 0x900100 (100 bytes) is device-readable; header zeroed (1 piece); "
                + "RX head 0 recycled with used len 0; TX head 0 returned and its 64 bytes counted")
        #expect(c.memory.filter { $0.op == "write" }.map(\.role)
                == ["RX header (descriptor 0)", "RX header zeroing", "q0 used element", "q0 used idx", "q1 used element", "q1 used idx"])
        let fails = try why(try Self.scenario("rx-shape-recycle-fails"), .rxChainInvalid)
        #expect(fails.path.row == .rxShapeRecycleFails)
        #expect(fails.path.sentence == "RX chain invalid: descriptor 0 at 0x900000 (2048 bytes) is device-readable; no header to zero; "
                + "RX recycle failed: the used element write at 0x4000004 (+8) faulted; TX head 0 returned and its 64 bytes counted")
    }

    @Test func rxWriteFailed() throws {
        let reader = try Self.scenario("rx-write-fault")
        let tail = "RX head 0 recycled with used len 0; TX head 0 returned and its 64 bytes counted"
        expect(try why(reader, .rxWriteFailed, .nth(1)), at: 52, 0, 1, cause: 41, chain: (45, 0), rx: (50, 0), row: .rxWriteFault,
               "RX write failed: the header write to descriptor 0 at 0x4000000 (2048 bytes) faulted: 0x4000000 +12 is not mapped; no header to zero; " + tail)
        let last = try why(reader, .rxWriteFailed)
        expect(last, at: 76, 1, 2, cause: 63, chain: (67, 0), rx: (73, 0), row: .rxWriteFault,
               "RX write failed: the frame write to descriptor 1 at 0x4000000 (2048 bytes) faulted: 0x4000000 +64 is not mapped; header zeroed (1 piece); " + tail)
        #expect(last.rxChain?.descriptors.map(\.flags) == [3, 2])
        let write = try #require(last.memory.first { !$0.ok })
        #expect(write.event == 75 && write.role == "RX frame (descriptor 1)" && write.bytes == "000102030405060708090a0b0c0d0e0f")
        #expect(last.memory.first { $0.event == 77 }?.role == "RX header zeroing")
    }

    @Test func txAddUsedFailures() throws {
        let c = try why(try Self.scenario("tx-malformed-add-used-fails"), .txAddUsedFailures)
        expect(c, at: 48, 0, 1, cause: 41, chain: (45, 0), row: .txMalformedAddUsedFails,
               "TX chain invalid: descriptor 0 at 0x900000 (100 bytes) is device-writable; TX add_used failed: the used element write at 0x4000004 (+8) faulted")
        #expect(c.counters.map(\.counter) == [.txChainInvalid, .txAddUsedFailures])
        let oversize = try why(try Self.scenario("tx-oversize-add-used-fails"), .txAddUsedFailures)
        #expect(oversize.path.row == .txOversizeAddUsedFails && oversize.transition.event == 48)
    }

    @Test func rxAddUsedFailures() throws {
        let c = try why(try Self.scenario("rx-add-used-fails"), .rxAddUsedFailures)
        expect(c, at: 54, 0, 1, cause: 41, chain: (45, 0), rx: (50, 0), row: .rxAddUsedFails,
               "RX add_used failed: the 64-byte frame from TX head 0 was written to RX head 0, but the used element write at 0x4000004 (+8) faulted, "
                + "so it is unpublished; TX head 0 returned and its 64 bytes counted")
        let recycle = try why(try Self.scenario("rx-write-fault-recycle-fails"), .rxAddUsedFailures)
        #expect(recycle.path.row == .rxWriteFault)
        #expect(recycle.path.sentence.hasSuffix("no header to zero; RX recycle failed: the used element write at 0x4000004 (+8) faulted; "
                                                + "TX head 0 returned and its 64 bytes counted"))
    }

    @Test func invalidAvailIdxCount() throws {
        // The TX queue's own pop: no chain, the avail idx read decided it.
        let tx = try why(try Self.scenario("tx-poison"), .invalidAvailIdxCount)
        expect(tx, at: 43, 0, 1, cause: 41, chain: nil, row: .txIterError,
               "invalid avail idx: TX queue 1's avail idx 1000 (read at 0x103002) is 1000 ahead of next_avail 0, 744 more than the queue size 256; "
                + "queue 1 poisoned (NEEDS_RESET and a config interrupt after the drain)")
        #expect(tx.memory.map { "#\($0.event) \($0.op) \($0.address) \($0.bytes) \($0.role)" } == ["#42 read 1060866 e803 q1 avail idx = 1000"])
        // The RX pop for a captured frame.
        let rx = try why(try Self.scenario("rx-poison"), .invalidAvailIdxCount)
        expect(rx, at: 48, 0, 1, cause: 41, chain: (45, 0), row: .rxIterError,
               "invalid avail idx: RX queue 0's avail idx 1000 (read at 0x101002) is 1000 ahead of next_avail 0, 744 more than the queue size 256; "
                + "queue 0 poisoned, the 64-byte frame from TX head 0 dropped and the drain stops after this chain; TX head 0 returned and its 64 bytes counted")
        let notReady = try why(try Self.scenario("tx-poison-not-ready"), .invalidAvailIdxCount)
        expect(notReady, at: 41, 0, 1, cause: 40, chain: nil, row: .txIterError,
               "queue not ready: TX queue 1 is not ready, or its avail ring address is 0; queue 1 poisoned (NEEDS_RESET and a config interrupt after the drain)")
        let control = try why(try Self.scenario("ctrl-poison"), .invalidAvailIdxCount)
        expect(control, at: 74, 0, 1, cause: 72, chain: nil, row: .ctrlIterError,
               "invalid avail idx: control queue 4's avail idx 9999 (read at 0x104042) is 9999 ahead of next_avail 0, 9995 more than the queue size 4; "
                + "queue 4 poisoned (NEEDS_RESET only, no interrupt)")
    }

    @Test func ctrlMqSet() throws {
        let c = try why(try Self.scenario("ctrl-ok"), .ctrlMqSet)
        expect(c, at: 84, 0, 1, cause: 72, chain: (77, 0), row: .ctrlOK,
               "MQ VQ_PAIRS_SET 2 accepted: status OK written at 0x10a010, head 0 returned (used len 1), active pairs 1 -> 2")
        #expect(c.chain?.role == "control" && c.chain?.queue == 4)
        #expect(c.memory.map(\.role) == ["q4 avail idx = 1", "q4 avail ring entry: head 0", "q4 descriptor table entry", "q4 descriptor table entry",
                                         "control command (descriptor 0)", "control status (descriptor 1)", "q4 used element", "q4 used idx"])
        #expect(c.memory[4].bytes == "04000200")
    }

    @Test func ctrlChainInvalid() throws {
        let stranded = try why(try Self.scenario("ctrl-no-status"), .ctrlChainInvalid)
        expect(stranded, at: 79, 0, 1, cause: 72, chain: (77, 0), row: .ctrlNoStatus,
               "control chain invalid: no device-writable descriptor with room for the status byte (descriptor 1 is writable but 0 bytes long); "
                + "head 0 is consumed and never returned until a reset")
        let nak = try Self.scenario("ctrl-nak")
        // The 4th to 6th NAKs: (transition, cause, chain event, why).
        let naks: [(UInt64, UInt64, UInt64, String)] = [
            (122, 114, 119, "class 238 is not VIRTIO_NET_CTRL_MQ (4)"),
            (136, 128, 133, "command 1 of class MQ is not VQ_PAIRS_SET (0)"),
            (150, 142, 147, "only 3 of the 4 command bytes could be read"),
        ]
        for (k, (event, cause, chain, why)) in zip(3..., naks) {
            expect(try self.why(nak, .ctrlChainInvalid, .nth(k + 1)), at: event, UInt64(k), UInt64(k + 1), cause: cause, chain: (chain, 0),
                   row: .ctrlNak, "control command NAKed: \(why); status ERR written at 0x900010; head 0 returned (used len 1)")
        }
        #expect(try why(nak, .ctrlChainInvalid, .nth(2)).path.sentence.hasPrefix("control command NAKed: VQ_PAIRS_SET 3 is outside 1...2, the device's queue pairs"))
    }

    @Test func ctrlAddUsedFailures() throws {
        let fault = try why(try Self.scenario("ctrl-status-fault"), .ctrlAddUsedFailures)
        expect(fault, at: 80, 0, 1, cause: 72, chain: (77, 0), row: .ctrlStatusFault,
               "control status write failed: the status byte at 0x4000000 (descriptor 1) is not mapped; "
                + "head 0 is not returned and the command (MQ VQ_PAIRS_SET 2) has no effect")
        let unpublished = try why(try Self.scenario("ctrl-ok-add-used-fails"), .ctrlAddUsedFailures)
        expect(unpublished, at: 81, 0, 1, cause: 72, chain: (77, 0), row: .ctrlOKAddUsedFails,
               "MQ VQ_PAIRS_SET 2 accepted but not published: status OK written at 0x900010, "
                + "then control add_used failed: the used element write at 0x4000004 (+8) faulted; active pairs unchanged")
        let nak = try why(try Self.scenario("ctrl-nak-add-used-fails"), .ctrlAddUsedFailures)
        #expect(nak.path.row == .ctrlNak && nak.counters.map(\.counter) == [.ctrlChainInvalid, .ctrlAddUsedFailures])
    }

    // MARK: Selections and their ends

    @Test func selectionsPickTheTransitionAsked() throws {
        let reader = try Self.golden("nics-aggregate")
        // Any NIC: the last tx_packets move is nic1's; nic0's second is earlier.
        let any = try why(reader, .txPackets).transition
        #expect(any.event == 179 && any.nic == 1 && any.counter == .txPackets && any.old == 0 && any.new == 1)
        #expect(try why(reader, .txPackets, nic: 0).transition.event == 164)
        #expect(try why(reader, .txPackets, .nth(2), nic: 0).transition.event == 164)
        #expect(try why(reader, .txPackets, .nth(3)).transition.event == 179)
        #expect(try why(reader, .txPackets, .atOrBefore(178)).transition.event == 164)
        #expect(try why(reader, .txPackets, .atOrBefore(164)).transition.event == 164)
        #expect(try CounterCause.explain(reader, counter: .txPackets, nic: nil, selection: .nth(4)) == nil)
        #expect(try CounterCause.explain(reader, counter: .txPackets, nic: 2, selection: .last) == nil)
        #expect(try CounterCause.explain(reader, counter: .rxWriteFailed, nic: nil, selection: .last) == nil)
        let tally = try CounterCause.tally(reader, counter: .txPackets, nic: nil)
        #expect(tally.count == 3 && tally.first == 143 && tally.last == 179)
        let first = try #require(tally.first)
        #expect(try CounterCause.explain(reader, counter: .txPackets, nic: nil, selection: .atOrBefore(first - 1)) == nil)
        #expect(try CounterCause.tally(reader, counter: .ctrlMqSet, nic: nil) == CounterCause.Tally())
    }

    @Test func aPausedDrainsCauseComesFromItsCheckpoint() throws {
        // long-drain: a kick at #87 whose drain is cut into chunks between its chains.
        let reader = try Self.golden("long-drain")
        let c = try why(reader, .txPackets, .atOrBefore(700))
        #expect(reader.chunkIndex(containing: 87) != reader.chunkIndex(containing: 680))
        expect(c, at: 680, 26, 27, cause: 87, chain: (663, 26), rx: (669, 52), row: .delivered,
               "frame delivered: the 200-byte frame from TX head 26 written to RX head 52 (used len 212); TX head 26 returned and its 200 bytes counted")
        let nak = try why(reader, .ctrlChainInvalid)
        expect(nak, at: 1589, 0, 1, cause: 1569, chain: (1586, 2), row: .ctrlNak,
               "control command NAKed: VQ_PAIRS_SET 7 is outside 1...2, the device's queue pairs; status ERR written at 0x105010; head 2 returned (used len 1)")
    }

    @Test func aChainCutAtTheHardLimitIsReadAcrossItsChunks() throws {
        // format-edges: chunk 72 continues the chain begun in chunk 71 (no checkpoint between).
        let reader = try Self.golden("format-edges")
        let c = try why(reader, .rxPackets, .nth(1))
        #expect(reader.chunkIndex(containing: 108) == 72 && reader.chunkIndex(containing: 91) == 71)
        expect(c, at: 108, 0, 1, cause: 85, chain: (91, 0), rx: (100, 0), row: .delivered,
               "frame delivered: the 1500-byte frame from TX head 0 written to RX head 0 (used len 1512); TX head 0 returned and its 1500 bytes counted")
        #expect(c.memory.filter { $0.role.hasPrefix("TX frame") }.map(\.length) == [492, 504, 504])
    }

    @Test func aTraceCutShortByAKilledRecorder() throws {
        // Two thirds of long-drain: its last chunk recovered ends inside a drain, with no chunk after it.
        let bytes = try Data(contentsOf: repositoryRoot.appendingPathComponent("traces/golden/long-drain.vtrace"))
        let path = temporaryPath("why-cut.vtrace.partial")
        try bytes.prefix(bytes.count * 2 / 3).write(to: URL(fileURLWithPath: path))
        let reader = try TraceReader(path: path)
        #expect(reader.completeness != .complete && reader.chunks.last?.endsInsideAccess == true)
        expect(try why(reader, .txPackets), at: 1165, 51, 52, cause: 1066, chain: (1147, 9), rx: (1154, 3), row: .delivered,
               "frame delivered: the 60-byte frame from TX head 9 written to RX head 3 (used len 72); TX head 9 returned and its 60 bytes counted")
    }

    @Test func countersMovedOutsideAChainHaveNoRow() throws {
        // format-vectors holds encodings no device makes: a counter after a vhost operation.
        let c = try why(try Self.golden("format-vectors"), .txBytes)
        #expect(c.transition.event == 9 && c.transition.nic == 1 && c.transition.old == 5 && c.transition.new == 2)
        #expect(c.cause?.event == 7 && c.chain == nil && c.path.row == nil && c.memory.isEmpty)
        #expect(c.path.sentence == "tx_bytes moved outside the processing of a chain (no chain or poisoned pop before it in its access)")
    }

    // MARK: A KVM guest and a Linux boot over vhost-user

    @Test func aKVMTraceOfEveryHostilePath() throws {
        let reader = try Self.golden("kvm-hostile")
        let tx64 = "TX head 0 returned and its 64 bytes counted"
        // (counter, selection, transition, old, new, cause, chain, RX chain, row, sentence)
        let cases: [(NetCounter, CounterCause.Selection, UInt64, UInt64, UInt64, UInt64, (UInt64, UInt16)?, (UInt64, UInt16)?, PathRow, String)] = [
            (.invalidAvailIdxCount, .last, 89, 0, 1, 87, nil, nil, .txIterError,
             "invalid avail idx: TX queue 1's avail idx 1000 (read at 0x1005e32) is 1000 ahead of next_avail 0, 744 more than the queue size 256; "
                + "queue 1 poisoned (NEEDS_RESET and a config interrupt after the drain)"),
            (.txChainInvalid, .nth(1), 148, 0, 1, 141, (146, 0), nil, .txMalformed,
             "TX chain invalid: the frame read from descriptor 1 at 0x7f0000000000 (64 bytes) faulted: 0x7f0000000000 +64 is not mapped; "
                + "TX head 0 returned with used len 0"),
            (.rxWriteFailed, .last, 165, 0, 1, 154, (158, 0), (163, 0), .rxWriteFault,
             "RX write failed: the header write to descriptor 0 at 0x7f0000000000 (76 bytes) faulted: 0x7f0000000000 +12 is not mapped; "
                + "no header to zero; RX head 0 recycled with used len 0; " + tx64),
            (.rxChainInvalid, .last, 287, 0, 1, 277, (281, 0), (286, 0), .rxShapeRecycled,
             "RX chain invalid: descriptor 0 at 0x1010680 (76 bytes) is device-readable; no header to zero; RX head 0 recycled with used len 0; " + tx64),
            (.txOversizeDropped, .last, 348, 0, 1, 343, (347, 0), nil, .txOversize,
             "TX chain oversize: descriptor 0 at 0x1013b40 (65570 bytes) brings the frame to 65558 bytes after the 12-byte header, "
                + "over the 65,557-byte limit; none of it was read; TX head 0 returned with used len 0"),
            (.txDroppedNoRxBuffer, .nth(1), 931, 0, 1, 924, (928, 0), nil, .noRxBuffer,
             "no RX buffer: RX queue 0 is empty (its avail idx 0 equals next_avail: every posted buffer is taken), "
                + "so the 64-byte frame from TX head 0 is dropped; " + tx64),
            // A burst: one kick at #706 drains eight chains; the 17th frame is its last.
            (.rxPackets, .last, 868, 16, 17, 706, (857, 7), (862, 7), .delivered,
             "frame delivered: the 64-byte frame from TX head 7 written to RX head 7 (used len 76); TX head 7 returned and its 64 bytes counted"),
        ]
        for (counter, selection, event, old, new, cause, chain, rx, row, sentence) in cases {
            expect(try why(reader, counter, selection), at: event, old, new, cause: cause, chain: chain, rx: rx, row: row, sentence)
        }
    }

    @Test func aLinuxBootOverVhostUser() throws {
        let reader = try Self.golden("vhost-linux")
        let arp = try why(reader, .rxPackets, .nth(1))
        expect(arp, at: 40, 0, 1, cause: 25, chain: (29, 0), rx: (34, 0), row: .delivered,
               "frame delivered: the 42-byte frame from TX head 0 written to RX head 0 (used len 54); TX head 0 returned and its 42 bytes counted")
        #expect(arp.cause?.text == "vhost kick q1")
        #expect(arp.memory.first { $0.role == "TX frame (descriptor 0)" }?.bytes == "ffffffffffff52540012345608060001")
        // The last frame: an MTU-sized one, in the kick at #526.
        let last = try why(reader, .txBytes)
        expect(last, at: 568, 5784, 7298, cause: 526, chain: (551, 16), rx: (556, 24), row: .delivered,
               "frame delivered: the 1514-byte frame from TX head 16 written to RX head 24 (used len 1526); TX head 16 returned and its 1514 bytes counted")
        #expect(try why(reader, .txPackets, .atOrBefore(300)).transition.event == 285)
        #expect(try CounterCause.tally(reader, counter: .rxPackets, nic: nil).count == 25)
    }

    @Test func renderedText() throws {
        let c = try why(try Self.scenario("rx-write-fault"), .rxWriteFailed)
        #expect(c.render() == [
            "rx_write_failed 1 -> 2 at event 76 (nic0)",
            "access    #63 mmio write QueueNotify/4 = 0x1",
            "chain     #67 TX q1 head 0, 1 descriptor",
            "            0: addr 0x104000 len 76 flags 0x0 next 0",
            "rx chain  #73 RX q0 head 0, 2 descriptors",
            "            0: addr 0x900000 len 12 flags 0x3 (next|write) next 1",
            "            1: addr 0x4000000 len 2048 flags 0x2 (write) next 0",
            "path      valid frame, RX write fault (hdr or data), recycle ok / fails",
            "          RX write failed: the frame write to descriptor 1 at 0x4000000 (2048 bytes) faulted: 0x4000000 +64 is not mapped; "
                + "header zeroed (1 piece); RX head 0 recycled with used len 0; TX head 0 returned and its 64 bytes counted",
            "counters  rx_write_failed 1 -> 2 (#76), tx_packets 1 -> 2 (#84), tx_bytes 64 -> 128 (#85)",
            "memory    what the device read and wrote for this chain:",
            "  #64  read   0x103002 +2    ok     q1 avail idx = 2             02 00",
            "  #65  read   0x103006 +2    ok     q1 avail ring entry: head 0  00 00",
            "  #66  read   0x102000 +16   ok     q1 descriptor table entry    00 40 10 00 00 00 00 00 …(+8)",
            "  #68  read   0x10400c +64   ok     TX frame (descriptor 0)      00 01 02 03 04 05 06 07 …(+56)",
            "  #69  read   0x101002 +2    ok     q0 avail idx = 2             02 00",
            "  #70  read   0x101006 +2    ok     q0 avail ring entry: head 0  00 00",
            "  #71  read   0x100000 +16   ok     q0 descriptor table entry    00 00 90 00 00 00 00 00 …(+8)",
            "  #72  read   0x100010 +16   ok     q0 descriptor table entry    00 00 00 04 00 00 00 00 …(+8)",
            "  #74  write  0x900000 +12   ok     RX header (descriptor 0)     00 00 00 00 00 00 00 00 …(+4)",
            "  #75  write  0x4000000 +64  FAULT  RX frame (descriptor 1)      00 01 02 03 04 05 06 07 …(+56)",
            "  #77  write  0x900000 +12   ok     RX header zeroing            00 00 00 00 00 00 00 00 …(+4)",
            "  #78  write  0x101214 +8    ok     q0 used element              00 00 00 00 00 00 00 00",
            "  #79  write  0x10120a +2    ok     q0 used idx                  02 00",
            "  #81  write  0x103214 +8    ok     q1 used element              00 00 00 00 00 00 00 00",
            "  #82  write  0x10320a +2    ok     q1 used idx                  02 00",
        ])
    }
}
