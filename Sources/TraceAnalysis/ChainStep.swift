//! The recorded events of one chain's processing, read in the order the
//! device makes them (spec §3.3–3.7): the pop of the drained queue, the
//! frame capture or the control command, the RX delivery, the publishes and
//! the counters, with the role of every guest-memory access.

import TraceFormat
import TraceMapping
import VirtioCore

/// What a queue index is on a device with `pairs` queue pairs.
enum QueueRole: String {
    case tx = "TX", rx = "RX", control = "control", unused = "unused"

    init(queue: UInt16, pairs: Int) {
        if Int(queue) < 2 * pairs {
            self = queue % 2 == 1 ? .tx : .rx
        } else {
            self = pairs > 1 && Int(queue) == 2 * pairs ? .control : .unused
        }
    }

    /// Whether the device drains this queue on a kick (its chains are the steps of a drain).
    var isDrained: Bool { self == .tx || self == .control }
}

/// One chain's processing, from its pop (or the pop's poison) to its last
/// publish and counter. Positions are indices into an ``EventWindow``.
struct ChainStep {
    struct Chain {
        var index: Int
        var queue: UInt16
        var head: UInt16
        var descriptors: [TraceDescriptor]
    }

    struct Poison {
        var index: Int
        var queue: UInt16
        var error: QueueError?
    }

    /// A used-ring publish (or its failure).
    struct Publish {
        var queue: UInt16
        /// The used length published; nil when the publish failed.
        var usedLength: UInt32?
        /// The write that faulted, when the failure was one.
        var failedWrite: Int?
    }

    /// How the TX frame capture ended (spec §3.3 step 2).
    enum Capture {
        case captured(total: Int)
        case writable(descriptor: Int)
        case headerOverflow(descriptor: Int)
        case oversize(descriptor: Int, before: Int, total: UInt64)
        case readFault(descriptor: Int, read: Int)
        /// Fewer than 12 bytes in the chain.
        case short(bytes: UInt64)
        /// The recorded reads are not the ones the chain's descriptors call for.
        case unexplained
    }

    /// How the RX walk ended (spec §3.4 step 2).
    enum Delivery {
        case written(headerBytes: Int, frameBytes: Int)
        case readOnly(descriptor: Int)
        case overflow(descriptor: Int)
        case writeFault(descriptor: Int, header: Bool, write: Int)
        case unexplained
    }

    let drained: UInt16
    let role: QueueRole
    var range: Range<Int> = 0..<0
    /// Whether the step runs to the window's end (it may go on in the next chunk).
    var reachesWindowEnd = false
    var popReads: [Int] = []
    var chain: Chain?
    var poison: Poison?
    var capture: Capture?
    var rxPopReads: [Int] = []
    var rxChain: Chain?
    var delivery: Delivery?
    /// The header pieces the RX walk wrote before it failed (zeroed after).
    var headerPieces = 0
    /// Control: the command bytes read, the status descriptor and its write.
    var command: [UInt8] = []
    var statusDescriptor: Int?
    var statusWrite: (index: Int, ok: Bool)?
    var publishes: [Publish] = []
    /// Positions of the counter events.
    var counters: [Int] = []
    var pairs: (old: UInt16, new: UInt16)?
    /// The role of each memory access, by position.
    var roles: [Int: String] = [:]

    /// Reads the step whose first event is at `start` in `window`: the reads of
    /// the pop of `drained` (a TX or control queue), then what followed.
    init(_ window: EventWindow, from start: Int, drained: UInt16, pairs: Int) {
        self.drained = drained
        role = QueueRole(queue: drained, pairs: pairs)
        var reader = StepReader(window: window, at: start)
        popReads = readPop(&reader, queue: drained)
        if case .chain(let q, let h, _) = reader.body, q == drained {
            chain = Chain(index: reader.at, queue: q, head: h, descriptors: window.descriptors(reader.at))
            reader.at += 1
        } else {
            readPoison(&reader, queue: drained)
        }
        if let chain {
            if role == .tx {
                readCapture(&reader, chain)
                if case .captured(let total) = capture { readDelivery(&reader, rxQueue: drained - 1, frameLength: total) }
            } else {
                readCommand(&reader, chain)
            }
        }
        readRest(&reader)
        range = start..<reader.at
        reachesWindowEnd = reader.at >= window.events.count
    }

    /// The reads of a pop: avail idx, avail ring entry, then descriptor table entries.
    mutating func readPop(_ r: inout StepReader, queue: UInt16) -> [Int] {
        var reads: [Int] = []
        while case .memoryRead(_, _, let ok, _) = r.body {
            let value = ok ? littleEndian(r.window.bytes(r.at)) : nil
            switch reads.count {
            case 0: roles[r.at] = "q\(queue) avail idx" + (value.map { " = \($0)" } ?? "")
            case 1: roles[r.at] = "q\(queue) avail ring entry" + (value.map { ": head \($0)" } ?? "")
            default: roles[r.at] = "q\(queue) descriptor table entry"
            }
            reads.append(r.at)
            r.at += 1
        }
        return reads
    }

    /// `invalid_avail_idx_count` and the poison of `queue`, if they are next.
    mutating func readPoison(_ r: inout StepReader, queue: UInt16) {
        guard case .counter(let index, _) = r.body, index == NetCounter.invalidAvailIdxCount.ordinal,
              case .poison(let q, let code, let details) = r.body(r.at + 1), q == queue else { return }
        counters.append(r.at)
        poison = Poison(index: r.at + 1, queue: q, error: PoisonCode.decode(code, details))
        r.at += 2
    }

    /// The frame reads of a TX chain, as the capture walks its descriptors.
    mutating func readCapture(_ r: inout StepReader, _ chain: Chain) {
        var headerRemaining = UInt64(NetLayout.headerLength)
        var total: UInt64 = 0
        var chainBytes: UInt64 = 0
        for (i, d) in chain.descriptors.enumerated() {
            chainBytes += UInt64(d.len)
            if d.isDeviceWritable { capture = .writable(descriptor: i); return }
            var address = d.addr
            var length = UInt64(d.len)
            if headerRemaining > 0 {
                let skip = min(headerRemaining, length)
                let (a, overflow) = address.addingReportingOverflow(skip)
                if overflow { capture = .headerOverflow(descriptor: i); return }
                address = a
                length -= skip
                headerRemaining -= skip
            }
            if length == 0 { continue }
            if total + length > UInt64(NetLayout.maxFrameSize) {
                capture = .oversize(descriptor: i, before: Int(total), total: total + length)
                return
            }
            guard case .memoryRead(let a, let n, let ok, _) = r.body, a == address, UInt64(n) == length else {
                capture = .unexplained
                return
            }
            roles[r.at] = "TX frame (descriptor \(i))"
            r.at += 1
            if !ok { capture = .readFault(descriptor: i, read: r.at - 1); return }
            total += length
        }
        capture = headerRemaining != 0 ? .short(bytes: chainBytes) : .captured(total: Int(total))
    }

    /// The RX pop for a captured frame and the writes of the RX walk.
    mutating func readDelivery(_ r: inout StepReader, rxQueue: UInt16, frameLength: Int) {
        rxPopReads = readPop(&r, queue: rxQueue)
        guard case .chain(let q, let h, _) = r.body, q == rxQueue else {
            readPoison(&r, queue: rxQueue)
            return
        }
        let chain = Chain(index: r.at, queue: q, head: h, descriptors: r.window.descriptors(r.at))
        rxChain = chain
        r.at += 1
        var headerRemaining = NetLayout.headerLength
        var framePos = 0
        /// Takes the write of `n` bytes at `address` the walk makes next: nil if it is not there.
        func expectWrite(_ address: UInt64, _ n: Int, _ role: String) -> Bool? {
            guard case .memoryWrite(let a, let length, let ok, _) = r.body, a == address, length == n else { return nil }
            roles[r.at] = role
            r.at += 1
            return ok
        }
        for (i, d) in chain.descriptors.enumerated() {
            if !d.isDeviceWritable { delivery = .readOnly(descriptor: i); return }
            var address = d.addr
            var length = Int(d.len)
            if headerRemaining > 0 {
                let n = min(headerRemaining, length)
                if n > 0 {
                    guard let ok = expectWrite(address, n, "RX header (descriptor \(i))") else { delivery = .unexplained; return }
                    if !ok { delivery = .writeFault(descriptor: i, header: true, write: r.at - 1); return }
                    headerPieces += 1
                    let (a, overflow) = address.addingReportingOverflow(UInt64(n))
                    if overflow { delivery = .overflow(descriptor: i); return }
                    address = a
                    length -= n
                    headerRemaining -= n
                }
            }
            if length == 0 || framePos == frameLength { continue }
            let n = min(length, frameLength - framePos)
            guard let ok = expectWrite(address, n, "RX frame (descriptor \(i))") else { delivery = .unexplained; return }
            if !ok { delivery = .writeFault(descriptor: i, header: false, write: r.at - 1); return }
            framePos += n
            if framePos == frameLength && headerRemaining == 0 { break }
        }
        delivery = .written(headerBytes: NetLayout.headerLength - headerRemaining, frameBytes: framePos)
    }

    /// The command reads of a control chain and its status write.
    mutating func readCommand(_ r: inout StepReader, _ chain: Chain) {
        var status: (descriptor: Int, address: UInt64)?
        for (i, d) in chain.descriptors.enumerated() {
            if d.isDeviceWritable {
                if status == nil && d.len >= 1 { status = (i, d.addr) }
                continue
            }
            guard command.count < 4 else { continue }
            let n = min(4 - command.count, Int(d.len))
            if n == 0 { continue }
            guard case .memoryRead(let a, let length, let ok, _) = r.body, a == d.addr, length == n else { return }
            roles[r.at] = "control command (descriptor \(i))"
            if ok { command += r.window.bytes(r.at) }
            r.at += 1
        }
        statusDescriptor = status?.descriptor
        if let status, case .memoryWrite(let a, 1, let ok, _) = r.body, a == status.address {
            roles[r.at] = "control status (descriptor \(status.descriptor))"
            statusWrite = (r.at, ok)
            r.at += 1
        }
    }

    /// What follows until the next pop: publishes (their writes), counters,
    /// header zeroing, a change of active pairs.
    mutating func readRest(_ r: inout StepReader) {
        var pending: [Int] = []
        loop: while let body = r.body {
            switch body {
            case .memoryWrite:
                pending.append(r.at)
            case .used(let q, _, let len):
                publishes.append(Publish(queue: q, usedLength: len, failedWrite: nil))
                labelPublish(&pending, queue: q, r)
            case .counter(let index, _):
                counters.append(r.at)
                if let q = failedPublishQueue(NetCounter(ordinal: index)) {
                    let failed = pending.last { if case .memoryWrite(_, _, false, _) = r.window.events[$0].event.body { true } else { false } }
                    publishes.append(Publish(queue: q, usedLength: nil, failedWrite: failed))
                    labelPublish(&pending, queue: q, r)
                }
            case .poison(let q, let code, let details):
                if poison == nil { poison = Poison(index: r.at, queue: q, error: PoisonCode.decode(code, details)) }
            case .pairs(let old, let new):
                pairs = (old, new)
            default:
                break loop
            }
            r.at += 1
        }
        for i in pending { roles[i] = "write" }
    }

    /// The queue whose publish failed when `counter` moves at a step's end;
    /// nil for other counters (and for a control status write that faulted).
    func failedPublishQueue(_ counter: NetCounter?) -> UInt16? {
        switch counter {
        case .txAddUsedFailures: return drained
        case .rxAddUsedFailures: return drained - 1
        case .ctrlAddUsedFailures: return statusWrite?.ok == true ? drained : nil
        default: return nil
        }
    }

    /// Names the writes before a publish: its used element and used idx
    /// last, the zeroing of a failed RX walk's header pieces before them.
    mutating func labelPublish(_ pending: inout [Int], queue: UInt16, _ r: StepReader) {
        func length(_ i: Int) -> Int {
            if case .memoryWrite(_, let n, _, _) = r.body(i) { return n }
            return 0
        }
        if pending.count >= 2, length(pending[pending.count - 1]) == 2, length(pending[pending.count - 2]) == 8 {
            roles[pending.removeLast()] = "q\(queue) used idx"
            roles[pending.removeLast()] = "q\(queue) used element"
        } else if let last = pending.last, length(last) == 8 {
            roles[pending.removeLast()] = "q\(queue) used element"
        }
        for i in pending { roles[i] = headerPieces > 0 ? "RX header zeroing" : "write" }
        pending.removeAll()
    }
}

extension TraceDescriptor {
    /// Whether the device may write the buffer (VIRTQ_DESC_F_WRITE).
    var isDeviceWritable: Bool { flags & Descriptor.Flags.write.rawValue != 0 }
}

/// A 16-bit little-endian value (an avail idx or ring entry), if `bytes` holds two bytes.
func littleEndian(_ bytes: ArraySlice<UInt8>) -> Int? {
    bytes.count == 2 ? Int(bytes[bytes.startIndex]) | Int(bytes[bytes.startIndex + 1]) << 8 : nil
}

/// A position in a window's events.
struct StepReader {
    let window: EventWindow
    var at: Int

    var body: TraceEvent.Body? { body(at) }
    func body(_ i: Int) -> TraceEvent.Body? { i < window.events.count ? window.events[i].event.body : nil }
}
