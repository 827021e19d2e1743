import Foundation
import GuestDriver
import Testing
import VirtioCore

/// Seeded property tests over random rings (the reference's proptests, TQ).
/// Each case prints its seed on failure; set VTRACE_SEED to re-run one seed.
///
/// The per-kick identities checked here are the ones that really hold in the
/// code (spec §3.9 lists where the seed's doc comments claim more). With P the
/// TX chains popped, C the frames captured, U the TX used publishes:
///
///  1. Δtx_chain_invalid + Δtx_oversize_dropped + C = P
///     (each popped chain is captured, invalid or oversize: exactly one);
///  2. U + Δtx_add_used_failures = P (a completion is attempted for every chain);
///  3. C − Δtx_add_used_failures ≤ Δtx_packets ≤ C (tx_packets needs capture AND publish);
///  4. Δrx_packets + Δtx_dropped_no_rx_buffer + Δtx_dropped_rx_poisoned
///       + Δrx_chain_invalid + Δrx_write_failed ≤ C
///       ≤ the same + Δrx_add_used_failures
///     (one RX outcome per captured frame; a delivery whose publish failed
///     shows only as rx_add_used_failures, which also co-occurs with
///     rx_chain_invalid / rx_write_failed);
///  5. Δtx_bytes ≤ 65,557 × Δtx_packets and Δrx_bytes ≤ 65,557 × Δrx_packets;
///  6. every counter is monotonic; invalid_avail_idx_count ≤ number of queues.
@Suite("Properties over random chains")
struct PropertyTests {
    static let cases = 256

    static func seeds(_ base: UInt64) -> [UInt64] {
        if let s = ProcessInfo.processInfo.environment["VTRACE_SEED"], let v = UInt64(s) { return [v] }
        return (0..<UInt64(cases)).map { base &+ $0 &* 0x9E37_79B9 }
    }

    /// Random descriptors into `queue`'s table, random heads into its avail
    /// ring, and an avail.idx `count` ahead of what the device consumed.
    static func scramble(_ h: Harness, queue: Int, rng: inout SplitMix64, maxFlags: UInt16 = 8, count: UInt16) throws {
        let dq = h.drv.queues[queue]!
        for i in 0..<dq.size {
            let d = Descriptor(
                addr: rng.next() % (32 << 20), len: UInt32(rng.next() % (8 << 20)) >> UInt32(rng.next() % 24),
                flags: Descriptor.Flags(rawValue: UInt16(rng.next() % UInt64(maxFlags))),
                next: UInt16(rng.next() % 24))
            try h.drv.setDescriptor(queue: queue, index: i, d)
        }
        let start = h.dev.state.queues[queue].nextAvail
        for k in 0..<count {
            try h.drv.setAvailEntry(queue: queue, slot: start &+ k, head: UInt16(rng.next() % 20))
        }
        try h.drv.setAvailIdx(queue: queue, start &+ count)
    }

    /// Checks identities 1–6 for one kick of TX queue 1.
    static func checkKick(_ h: Harness, seed: UInt64, _ kick: () -> Void) {
        let before = h.counters
        let mark = h.events.count
        kick()
        let d = h.counters.delta(since: before)
        let ev = h.events[mark...]
        let popped = UInt64(ev.filter { if case .chainPopped(1, _, _) = $0 { return true } else { return false } }.count)
        let published = UInt64(ev.filter { if case .usedPublished(1, _, _) = $0 { return true } else { return false } }.count)
        for c in NetCounter.allCases {
            #expect(h.counters[c] >= before[c], "seed \(seed): \(c.name) went backwards")
        }
        #expect(d.txChainInvalid + d.txOversizeDropped <= popped, "seed \(seed)")
        let captured = popped - min(popped, d.txChainInvalid + d.txOversizeDropped)
        #expect(published + d.txAddUsedFailures == popped, "seed \(seed): identity 2")
        #expect(d.txPackets <= captured && captured <= d.txPackets + d.txAddUsedFailures, "seed \(seed): identity 3")
        let rxOutcomes = d.rxPackets + d.txDroppedNoRxBuffer + d.txDroppedRxPoisoned + d.rxChainInvalid + d.rxWriteFailed
        #expect(rxOutcomes <= captured && captured <= rxOutcomes + d.rxAddUsedFailures, "seed \(seed): identity 4")
        #expect(d.txBytes <= 65_557 * d.txPackets && d.rxBytes <= 65_557 * d.rxPackets, "seed \(seed): identity 5")
        #expect(h.counters.invalidAvailIdxCount <= UInt64(h.dev.queueCount), "seed \(seed): identity 6")
    }

    @Test func txChainProgressUnderRandomDescriptors() throws {
        for seed in Self.seeds(0x5EED_0001) {
            var rng = SplitMix64(seed: seed)
            let h = Harness.ready(qsize: 16)
            try h.postRx(count: Int(rng.next() % 8))
            for _ in 0..<(1 + rng.next() % 3) {
                try Self.scramble(h, queue: 1, rng: &rng, count: UInt16(rng.next() % 6))
                let before = (h.counters, h.dev.state.queues[1].nextUsed)
                let pending = h.dev.state.queues[1].nextAvail != (try h.drv.memory.load(UInt16.self, at: h.drv.queues[1]!.avail + 2))
                Self.checkKick(h, seed: seed) { h.kick(1) }
                if pending && !h.dev.state.poisoned[1] {
                    #expect(h.counters != before.0 || h.dev.state.queues[1].nextUsed != before.1, "seed \(seed): no progress")
                }
            }
        }
    }

    @Test func rxChainProgressUnderRandomDescriptors() throws {
        for seed in Self.seeds(0x5EED_0002) {
            var rng = SplitMix64(seed: seed)
            let h = Harness.ready(qsize: 16)
            try Self.scramble(h, queue: 0, rng: &rng, count: UInt16(rng.next() % 17))
            for _ in 0..<(1 + rng.next() % 4) {
                let before = h.counters
                Self.checkKick(h, seed: seed) { _ = try? h.sendTx(length: Int(rng.next() % 3000)) }
                #expect(h.counters != before, "seed \(seed): a captured frame always moves a counter")
            }
        }
    }

    @Test func randomTxHeaderAlwaysLoops() throws {
        for seed in Self.seeds(0x5EED_0003) {
            var rng = SplitMix64(seed: seed)
            let h = Harness.ready(qsize: 16)
            try h.postRx()
            let header = (0..<12).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            try h.ram.write(0x90_0000, bytes: header + [1, 2, 3])
            let s = try h.step { try h.rawChain(queue: 1, [RawDescriptor(addr: 0x90_0000, len: 15)]) }
            #expect(s.delta == counters([.txPackets: 1, .txBytes: 3, .rxPackets: 1, .rxBytes: 3]), "seed \(seed)")
            #expect(s.entries(1).count == 1, "seed \(seed)")
        }
    }

    @Test func randomTxLengthsHaveExactlyOneOutcome() throws {
        for seed in Self.seeds(0x5EED_0004) {
            var rng = SplitMix64(seed: seed)
            let h = Harness.ready(qsize: 16)
            try h.postRx(length: 70_000)
            let n = 1 + Int(rng.next() % 4)
            let chain = (0..<n).map { i in
                RawDescriptor(addr: 0x90_0000 + UInt64(i) * 0x2_0000, len: UInt32(rng.next() % (rng.next() % 2 == 0 ? 40_000 : 1 << 32)))
            }
            let s = try h.step { try h.rawChain(queue: 1, chain) }
            let outcomes = s.delta.txPackets + s.delta.txChainInvalid + s.delta.txOversizeDropped
            #expect(outcomes == 1, "seed \(seed): \(s.delta)")
            #expect(s.entries(1).count == 1, "seed \(seed)")
        }
    }

    @Test func randomTxFlagsIncludingIndirectMakeProgress() throws {
        for seed in Self.seeds(0x5EED_0005) {
            var rng = SplitMix64(seed: seed)
            let h = Harness.ready(qsize: 16)
            try h.postRx(count: 2)
            try Self.scramble(h, queue: 1, rng: &rng, maxFlags: 16, count: 1 + UInt16(rng.next() % 3))
            let before = h.counters
            Self.checkKick(h, seed: seed) { h.kick(1) }
            #expect(h.counters != before, "seed \(seed): no progress")
        }
    }

    @Test func randomNextLinksLoopOrTruncate() throws {
        for seed in Self.seeds(0x5EED_0006) {
            var rng = SplitMix64(seed: seed)
            let h = Harness.ready(qsize: 16)
            try h.postRx(length: 70_000)
            let dq = h.drv.queues[1]!
            // A chain of mapped, readable descriptors whose next links go anywhere.
            for i in 0..<dq.size {
                try h.drv.setDescriptor(queue: 1, index: i, Descriptor(
                    addr: 0x90_0000 + UInt64(i) * 0x1000, len: UInt32(rng.next() % 4096),
                    flags: rng.next() % 4 == 0 ? [] : .next, next: UInt16(rng.next() % 20)))
            }
            try h.drv.setAvailEntry(queue: 1, slot: 0, head: UInt16(rng.next() % 16))
            try h.drv.setAvailIdx(queue: 1, 1)
            let s = h.step { h.kick(1) }
            #expect(s.delta.txPackets + s.delta.txChainInvalid == 1, "seed \(seed): \(s.delta)")
            #expect(s.delta.txOversizeDropped == 0, "seed \(seed)")
        }
    }

    @Test func randomControlChainsKeepPairsInRange() throws {
        for seed in Self.seeds(0x5EED_0007) {
            var rng = SplitMix64(seed: seed)
            let h = Harness.ready(pairs: 4, qsize: 16)
            let cvq = h.dev.controlQueueIndex!
            for _ in 0..<(1 + rng.next() % 3) {
                // Random command bytes where random descriptors may point.
                try h.ram.write(0x90_0000, bytes: (0..<64).map { _ in UInt8(rng.next() % 6) })
                try Self.scramble(h, queue: cvq, rng: &rng, count: 1 + UInt16(rng.next() % 4))
                let before = h.counters
                let poisoned = h.dev.state.poisoned[cvq]
                h.kick(cvq)
                #expect((1...4).contains(h.dev.state.activeQueuePairs), "seed \(seed)")
                if !poisoned { #expect(h.counters != before, "seed \(seed): no progress") }
                for c in NetCounter.allCases { #expect(h.counters[c] >= before[c], "seed \(seed)") }
            }
        }
    }

    @Test func randomMmioNeverTrapsAndKeepsInvariants() {
        for seed in Self.seeds(0x5EED_0008).prefix(64) {
            var rng = SplitMix64(seed: seed)
            let h = Harness(pairs: Int(rng.next() % 3) + 1)
            let offsets: [UInt64] = MMIORegister.allCases.map(\.rawValue) + [0x100, 0x108, 0x1FF, 0xFFF, 0x1000, .max]
            for _ in 0..<2000 {
                let offset = rng.next() % 4 == 0 ? rng.next() % 0x1100 : offsets[Int(rng.next() % UInt64(offsets.count))]
                let width = [1, 2, 4, 4, 4, 8, 3, 0][Int(rng.next() % 8)]
                let value: UInt64 = rng.next() % 3 == 0 ? rng.next() : rng.next() % 16
                if rng.next() % 3 == 0 {
                    _ = h.read(offset: offset, width: width)
                } else {
                    h.write(offset: offset, width: width, value: value)
                }
                #expect((1...h.dev.queuePairs).contains(h.dev.state.activeQueuePairs))
                #expect(h.dev.state.queues.allSatisfy { $0.size.nonzeroBitCount == 1 && $0.size <= 256 })
                #expect(h.dev.state.queues.allSatisfy { $0.descTable % 16 == 0 && $0.availRing % 2 == 0 && $0.usedRing % 4 == 0 })
                #expect(h.dev.state.counters.invalidAvailIdxCount <= UInt64(h.dev.queueCount))
            }
        }
    }
}
