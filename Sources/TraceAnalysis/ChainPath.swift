//! The path a chain's processing took: the row of the spec's path → counters
//! table (§3.8) and one sentence with the facts the recorded events show.

import TraceFormat
import TraceMapping
import VirtioCore

extension ChainStep {
    /// The path of this step, on a device with `pairs` queue pairs.
    func path(_ w: EventWindow, pairs: Int) -> CounterCause.Path {
        let facts = PathFacts(step: self, window: w, pairs: pairs)
        if let poison, poison.queue == drained {
            let after = role == .tx ? "NEEDS_RESET and a config interrupt after the drain" : "NEEDS_RESET only, no interrupt"
            return .init(row: role == .tx ? .txIterError : .ctrlIterError,
                         sentence: facts.poisoned(poison, idxRead: popReads.first) + "; queue \(poison.queue) poisoned (\(after))")
        }
        guard let chain else {
            return .init(row: nil, sentence: "no chain was popped from \(facts.name(drained)) and no queue was poisoned where the counter moved")
        }
        return role == .tx ? facts.txPath(chain) : facts.controlPath(chain)
    }
}

/// What the sentences are made of: the step, the window's events, the device's queue pairs.
struct PathFacts {
    let step: ChainStep
    let window: EventWindow
    let pairs: Int

    /// The counters that moved in the step: old and new value.
    var moved: [NetCounter: (old: UInt64, new: UInt64)] {
        var out: [NetCounter: (UInt64, UInt64)] = [:]
        for i in step.counters {
            if case .counter(let index, let value) = window.events[i].event.body, let c = NetCounter(ordinal: index) {
                out[c] = (out[c]?.0 ?? window.events[i].previous, value)
            }
        }
        return out
    }

    func name(_ queue: UInt16) -> String { "\(QueueRole(queue: queue, pairs: pairs).rawValue) queue \(queue)" }

    static func describe(_ d: TraceDescriptor, _ i: Int) -> String { "descriptor \(i) at \(EventFormatting.hex(d.addr)) (\(d.len) bytes)" }

    /// Address and length of memory event `i`.
    func access(_ i: Int) -> (address: UInt64, length: Int) {
        switch window.events[i].event.body {
        case .memoryRead(let a, let n, _, _), .memoryWrite(let a, let n, _, _): return (a, n)
        default: return (0, 0)
        }
    }

    func publish(of queue: UInt16) -> ChainStep.Publish? { step.publishes.first { $0.queue == queue } }

    /// Whether the step recorded a failed publish on `queue` (a publish the
    /// device believed done without a used entry, as under the skip-used fault, is not one).
    func publishFailed(_ queue: UInt16) -> Bool { publish(of: queue).map { $0.usedLength == nil } ?? false }

    /// Why a publish of `head` failed.
    func publishFailure(_ p: ChainStep.Publish, head: UInt16) -> String {
        guard let w = p.failedWrite else {
            return "head \(head) is out of range of the queue (or the used ring address overflows): nothing was written"
        }
        let (a, n) = access(w)
        return "the used \(n == 2 ? "idx" : "element") write at \(EventFormatting.hex(a)) (+\(n)) faulted"
    }

    /// The poisoning of a queue, with the avail idx the device read.
    func poisoned(_ p: ChainStep.Poison, idxRead: Int?) -> String {
        let queue = name(p.queue)
        switch p.error {
        case .invalidAvailRingIndex(let idx, let next, let size):
            let ahead = idx &- next
            let at = idxRead.map { " (read at \(EventFormatting.hex(access($0).address)))" } ?? ""
            return "invalid avail idx: \(queue)'s avail idx \(idx)\(at) is \(ahead) ahead of next_avail \(next), "
                + "\(Int(ahead) - Int(size)) more than the queue size \(size)"
        case .notReady: return "queue not ready: \(queue) is not ready, or its avail ring address is 0"
        case .memory(let m): return "avail idx unreadable: \(queue)'s avail idx at \(EventFormatting.hex(m.address)) (\(m.length) bytes) is not mapped"
        case .addressOverflow: return "ring address overflow: \(queue)'s avail idx address overflows 64 bits"
        case .invalidDescriptorIndex(let h): return "invalid descriptor index: \(queue) names head \(h)"
        case nil: return "\(queue) poisoned by an error this build does not know"
        }
    }

    // MARK: TX

    func txPath(_ chain: ChainStep.Chain) -> CounterCause.Path {
        let moved = self.moved
        let txOK = !publishFailed(step.drained)
        let d = chain.descriptors
        var invalid: String?
        switch step.capture {
        case .oversize(let i, let before, let total)?:
            let read = before > 0 ? " (the \(before) bytes before it were read)" : "; none of it was read"
            return .init(row: txOK ? .txOversize : .txOversizeAddUsedFails,
                         sentence: "TX chain oversize: \(Self.describe(d[i], i)) brings the frame to \(total) bytes after the 12-byte header, "
                            + "over the 65,557-byte limit\(read); " + txClause(chain.head, counted: nil))
        case .writable(let i)?: invalid = "\(Self.describe(d[i], i)) is device-writable"
        case .headerOverflow(let i)?: invalid = "skipping the header in \(Self.describe(d[i], i)) overflows the address space"
        case .readFault(let i, let read)?:
            let (a, n) = access(read)
            invalid = "the frame read from \(Self.describe(d[i], i)) faulted: \(EventFormatting.hex(a)) +\(n) is not mapped"
        case .short(let bytes)?:
            invalid = d.isEmpty ? "the chain has no descriptors (\(emptyChainReason(chain.head)))"
                : "the chain holds \(bytes) bytes, fewer than the 12-byte header"
        case .captured(let total)?:
            return capturedPath(chain, frameLength: total, moved: moved, txOK: txOK)
        case .unexplained?, nil:
            let row: PathRow? = moved[.txOversizeDropped] != nil ? (txOK ? .txOversize : .txOversizeAddUsedFails)
                : moved[.txChainInvalid] != nil ? (txOK ? .txMalformed : .txMalformedAddUsedFails) : nil
            return .init(row: row, sentence: "TX head \(chain.head): the recorded frame reads are not the ones its descriptors call for; "
                            + txClause(chain.head, counted: nil))
        }
        return .init(row: txOK ? .txMalformed : .txMalformedAddUsedFails,
                     sentence: "TX chain invalid: \(invalid!); " + txClause(chain.head, counted: nil))
    }

    /// Why a popped chain yielded no descriptors.
    func emptyChainReason(_ head: UInt16) -> String {
        if let last = step.popReads.last, step.popReads.count > 2, case .memoryRead(let a, _, false, _) = window.events[last].event.body {
            return "its descriptor at \(EventFormatting.hex(a)) is not mapped"
        }
        return step.popReads.count <= 2 ? "head \(head) is beyond the queue size" : "its descriptors could not be walked"
    }

    /// The TX completion: returned (and counted), or why its publish failed.
    func txClause(_ head: UInt16, counted: UInt64?) -> String {
        guard let p = publish(of: step.drained) else { return "TX head \(head) not returned: no used entry and no failure were recorded" }
        guard p.usedLength != nil else { return "TX add_used failed: " + publishFailure(p, head: head) }
        return "TX head \(head) returned" + (counted.map { " and its \($0) bytes counted" } ?? " with used len 0")
    }

    /// The path of a captured frame: its RX outcome, then the TX completion.
    func capturedPath(_ chain: ChainStep.Chain, frameLength total: Int, moved: [NetCounter: (old: UInt64, new: UInt64)], txOK: Bool) -> CounterCause.Path {
        let rxq = step.drained - 1
        let frame = "the \(total)-byte frame from TX head \(chain.head)"
        let counted = moved[.txPackets].map { _ in moved[.txBytes].map { $0.new &- $0.old } ?? 0 }
        let tx = "; " + txClause(chain.head, counted: counted)
        let rxPublish = publish(of: rxq)
        let rxHead = step.rxChain?.head ?? 0
        var recycle: String {
            guard let p = rxPublish else { return "RX head \(rxHead) not recycled: no used entry and no failure were recorded" }
            return p.usedLength != nil ? "RX head \(rxHead) recycled with used len 0" : "RX recycle failed: " + publishFailure(p, head: rxHead)
        }
        let rd = step.rxChain?.descriptors ?? []
        let zeroed = step.headerPieces == 0 ? "no header to zero" : "header zeroed (\(step.headerPieces) piece\(step.headerPieces == 1 ? "" : "s"))"
        if let p = step.poison, p.queue == rxq {
            return .init(row: .rxIterError, sentence: poisoned(p, idxRead: step.rxPopReads.first)
                            + "; queue \(rxq) poisoned, \(frame) dropped and the drain stops after this chain" + tx)
        }
        if moved[.txDroppedRxPoisoned] != nil {
            return .init(row: .rxAlreadyPoisoned,
                         sentence: "RX poisoned: \(name(rxq)) was poisoned before this chain (only a reset clears it), so \(frame) is dropped" + tx)
        }
        if moved[.txDroppedNoRxBuffer] != nil {
            let why: String
            switch step.rxPopReads.count {
            case 0: why = "\(name(rxq)) is not ready"
            case 1:
                let idx = littleEndian(window.bytes(step.rxPopReads[0])).map { " \($0)" } ?? ""
                why = "\(name(rxq)) is empty (its avail idx\(idx) equals next_avail: every posted buffer is taken)"
            default: why = "\(name(rxq))'s avail ring entry at \(EventFormatting.hex(access(step.rxPopReads[1]).address)) could not be read"
            }
            return .init(row: .noRxBuffer, sentence: "no RX buffer: \(why), so \(frame) is dropped" + tx)
        }
        switch step.delivery {
        case .readOnly(let i)?:
            return .init(row: publishFailed(rxq) ? .rxShapeRecycleFails : .rxShapeRecycled,
                         sentence: "RX chain invalid: \(Self.describe(rd[i], i)) is device-readable; \(zeroed); " + recycle + tx)
        case .overflow(let i)?:
            return .init(row: publishFailed(rxq) ? .rxShapeRecycleFails : .rxShapeRecycled,
                         sentence: "RX chain invalid: writing the header to \(Self.describe(rd[i], i)) overflows the address space; \(zeroed); " + recycle + tx)
        case .writeFault(let i, let header, let write)?:
            let (a, n) = access(write)
            return .init(row: .rxWriteFault,
                         sentence: "RX write failed: the \(header ? "header" : "frame") write to \(Self.describe(rd[i], i)) faulted: "
                            + "\(EventFormatting.hex(a)) +\(n) is not mapped; \(zeroed); " + recycle + tx)
        case .written(let headerBytes, let frameBytes)?:
            guard let p = rxPublish else { break }
            guard let length = p.usedLength else {
                return .init(row: .rxAddUsedFails, sentence: "RX add_used failed: \(frame) was written to RX head \(rxHead), but "
                                + publishFailure(p, head: rxHead) + ", so it is unpublished" + tx)
            }
            if headerBytes + frameBytes < NetLayout.headerLength + total {
                return .init(row: .rxTooSmall,
                             sentence: "RX buffer too small: RX head \(rxHead) took \(length) of the \(NetLayout.headerLength + total) bytes "
                                + "(header and frame), \(frameBytes) frame bytes counted, no counter for the truncation" + tx)
            }
            return .init(row: txOK ? .delivered : .deliveredTxAddUsedFails,
                         sentence: "frame delivered: \(frame) written to RX head \(rxHead) (used len \(length))" + tx)
        case .unexplained?, nil:
            break
        }
        return .init(row: nil, sentence: "\(frame) was captured, but the recorded events show no RX outcome the device has for it" + tx)
    }

    // MARK: Control

    /// The command as read: `MQ VQ_PAIRS_SET 2`, or its class and command.
    var commandText: String {
        let c = step.command
        guard c.count == 4 else { return "\(c.count) of its 4 bytes read" }
        if c[0] == NetLayout.ctrlClassMQ && c[1] == NetLayout.ctrlMQVQPairsSet { return "MQ VQ_PAIRS_SET \(Int(c[2]) | Int(c[3]) << 8)" }
        return "class \(c[0]) command \(c[1])"
    }

    /// Why the device NAKs the command it read (spec §3.7).
    var nakReason: String {
        let c = step.command
        guard c.count == 4 else { return "only \(c.count) of the 4 command bytes could be read" }
        if c[0] != NetLayout.ctrlClassMQ { return "class \(c[0]) is not VIRTIO_NET_CTRL_MQ (4)" }
        if c[1] != NetLayout.ctrlMQVQPairsSet { return "command \(c[1]) of class MQ is not VQ_PAIRS_SET (0)" }
        return "VQ_PAIRS_SET \(Int(c[2]) | Int(c[3]) << 8) is outside 1...\(pairs), the device's queue pairs"
    }

    func controlPath(_ chain: ChainStep.Chain) -> CounterCause.Path {
        let d = chain.descriptors
        guard let k = step.statusDescriptor else {
            let why: String
            if let w = d.indices.first(where: { d[$0].isDeviceWritable }) {
                why = "descriptor \(w) is writable but 0 bytes long"
            } else {
                why = d.isEmpty ? "the chain has no descriptors" : "all \(d.count) descriptors are device-readable"
            }
            return .init(row: .ctrlNoStatus, sentence: "control chain invalid: no device-writable descriptor with room for the status byte (\(why)); "
                            + "head \(chain.head) is consumed and never returned until a reset")
        }
        let address = EventFormatting.hex(d[k].addr)
        guard let status = step.statusWrite, status.ok else {
            return .init(row: .ctrlStatusFault, sentence: "control status write failed: the status byte at \(address) (descriptor \(k)) is not mapped; "
                            + "head \(chain.head) is not returned and the command (\(commandText)) has no effect")
        }
        let published = publish(of: step.drained)
        let returned = published?.usedLength != nil ? "head \(chain.head) returned (used len 1)"
            : "control add_used failed: " + (published.map { publishFailure($0, head: chain.head) } ?? "no used entry was recorded")
        if window.bytes(status.index).first != NetLayout.ctrlOK {
            return .init(row: .ctrlNak, sentence: "control command NAKed: \(nakReason); status ERR written at \(address); " + returned)
        }
        guard published?.usedLength != nil else {
            return .init(row: .ctrlOKAddUsedFails, sentence: "\(commandText) accepted but not published: status OK written at \(address), then "
                            + returned + "; active pairs unchanged")
        }
        let change = step.pairs.map { "active pairs \($0.old) -> \($0.new)" } ?? "active pairs unchanged (already that many)"
        return .init(row: .ctrlOK, sentence: "\(commandText) accepted: status OK written at \(address), " + returned + ", " + change)
    }
}
