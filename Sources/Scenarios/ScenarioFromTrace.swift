//! Any trace as a scenario: the accesses it recorded, each preceded by the
//! guest memory the device read during it, followed by the counters it left.

import TraceFormat
import TraceMapping
import VirtioCore

/// Writes the scenario that drives a device core exactly as a recording did.
///
/// For each access (an MMIO access, a vhost-user operation, a memory binding)
/// in order: a comment naming it and what it did, `mem write`/`mem fill` of
/// the guest memory the device read during it that the scenario's memory does
/// not already hold (the first read of each byte in the access; bytes the
/// device itself wrote are known), the access, and `expect counters` with the
/// recorded values of the counters it moved. A trace cut at a checkpoint
/// starts with `state` lines. Recording the scenario gives the same counter
/// timelines as the trace (`vtrace diff` exit 0).
public struct ScenarioFromTrace {
    public struct Options: Sendable {
        /// The first event (the scenario starts at the checkpoint at or before it).
        public var from: UInt64?
        /// The last event (the scenario ends with the access that holds it).
        public var to: UInt64?
        /// Only this NIC's accesses.
        public var nic: Int?
        public init(from: UInt64? = nil, to: UInt64? = nil, nic: Int? = nil) {
            self.from = from
            self.to = to
            self.nic = nic
        }
    }

    /// What was written.
    public struct Result: Sendable {
        public var text: String
        public var firstEvent: UInt64
        public var endEvent: UInt64
        public var accesses: Int
        public var lines: Int
    }

    /// Longest `mem write` line, in bytes.
    static let bytesPerLine = 32

    let reader: TraceReader
    let name: String
    let options: Options
    var out: [String] = []
    var memory = ShadowMemory()
    var counters: [[UInt64]] = []
    var accesses = 0

    /// The scenario of `reader`'s events (`name` for its description).
    public static func make(_ reader: TraceReader, name: String, options: Options = Options()) throws(TraceError) -> Result {
        var maker = ScenarioFromTrace(reader: reader, name: name, options: options)
        return try maker.run()
    }

    init(reader: TraceReader, name: String, options: Options) {
        self.reader = reader
        self.name = name
        self.options = options
    }

    /// The checkpoint chunk the scenario starts from: at or before `from`,
    /// and not inside a drain (a scenario cannot start mid-access).
    func startChunk() throws(TraceError) -> Int {
        guard let from = options.from, let at = reader.chunkIndex(containing: from) else { return 0 }
        var i = reader.checkpointChunk(atOrBefore: at) ?? 0
        while i > 0 {
            let d = try reader.decoder(i)
            if d.checkpoint?.allSatisfy({ $0.drain == nil }) == true { break }
            i = reader.checkpointChunk(atOrBefore: i - 1) ?? 0
        }
        return i
    }

    mutating func run() throws(TraceError) -> Result {
        let header = reader.header
        let first = try startChunk()
        guard first < reader.chunks.count else {
            return Result(text: "# \(name): no events\ndevice\n", firstEvent: 0, endEvent: 0, accesses: 0, lines: 2)
        }
        let startDecoder = try reader.decoder(first)
        guard let checkpoint = startDecoder.checkpoint else {
            throw TraceError.corrupt(offset: Int(reader.chunks[first].offset), chunk: first, "the scenario's first chunk has no checkpoint")
        }
        counters = checkpoint.map(\.counters)
        let lastEvent = min(options.to ?? .max, reader.eventCount == 0 ? 0 : reader.eventCount - 1)

        // Set-up: the devices, the memory, the NICs that do not start reset.
        var setup = ["device nics=\(header.nics) queue_pairs=\(header.queuePairs) mac=\(header.netConfig.mac)"
                     + (header.maxQueueSize != Int(NetLayout.queueMaxSize) ? " queue_max=\(header.maxQueueSize)" : "")]
        setup += try memoryLines(from: first)
        let probe = VirtioNetDevice<GuestRAM, NoObserver>(config: header.netConfig, memory: nil)
        let fresh = NICCheckpoint(probe.state, memoryBound: true)
        for (n, c) in checkpoint.enumerated() where c != fresh && (options.nic == nil || options.nic == n) {
            setup.append(StartStateLine.text(nic: n, c))
        }

        // The accesses.
        var access: [TraceEvent] = []
        var bytes: [UInt64: [UInt8]] = [:]   // payloads of the access's memory events, by event number
        var endEvent = reader.chunks[first].firstEvent
        var pastTheEnd = false
        chunks: for i in first..<reader.chunks.count {
            var d = try reader.decoder(i)
            while let e = try d.next(chunk: i, of: reader) {
                if e.isCause {
                    if !access.isEmpty { emit(access, bytes) }
                    access = []
                    bytes = [:]
                    if e.number > lastEvent {
                        pastTheEnd = true
                        break chunks
                    }
                }
                switch e.body {
                case .memoryRead(_, _, true, let r), .memoryWrite(_, _, true, let r): bytes[e.number] = Array(d.bytes(r))
                default: break
                }
                access.append(e)
                endEvent = e.number + 1
            }
        }
        if !pastTheEnd && !access.isEmpty { emit(access, bytes) }

        let events = "\(reader.chunks[first].firstEvent)…\(endEvent == 0 ? 0 : endEvent - 1)"
        let description = "# \(name): events \(events) as a scenario (vtrace scenario from-trace), \(accesses) accesses"
            + (options.nic.map { ", nic\($0) only" } ?? "")
        let snaplen = reader.header.snaplen.map {
            ["# recorded with --snaplen \($0): frame payload past each frame's first \($0) bytes is not in the trace, nor in these memory lines"]
        } ?? []
        let lines = [description] + snaplen + setup + out
        return Result(text: lines.joined(separator: "\n") + "\n", firstEvent: reader.chunks[first].firstEvent, endEvent: endEvent,
                      accesses: accesses, lines: lines.count)
    }

    /// `memory` lines: the header's regions, or (a vhost-user trace, whose
    /// memory the frontend shares) RAM from 0 up past the highest byte the
    /// device touched.
    func memoryLines(from first: Int) throws(TraceError) -> [String] {
        func size(_ n: UInt64) -> String {
            for (suffix, unit) in [("G", UInt64(1) << 30), ("M", 1 << 20), ("K", 1 << 10)] where n >= unit && n % unit == 0 { return "\(n / unit)\(suffix)" }
            return "\(n)"
        }
        let regions = reader.header.memory
        if regions.count == 1, regions[0].base == 0 { return ["memory \(size(regions[0].size))"] }
        if !regions.isEmpty { return ["memory 0"] + regions.map { "memory map 0x\(String($0.base, radix: 16)) \(size($0.size))" } }
        // The whole trace: the last access may run well past `last` (a long drain).
        var top: UInt64 = 0
        for i in first..<reader.chunks.count {
            var d = try reader.decoder(i)
            while let e = try d.next(chunk: i, of: reader) {
                switch e.body {
                case .memoryRead(let a, let n, _, _), .memoryWrite(let a, let n, _, _): top = max(top, a &+ UInt64(n))
                default: break
                }
            }
        }
        let mib: UInt64 = 1 << 20
        return ["memory \(max(16, (top + mib - 1) / mib))M"]
    }

    /// One access: its comment, the memory it read, itself, its counters.
    mutating func emit(_ events: [TraceEvent], _ payloads: [UInt64: [UInt8]]) {
        guard let cause = events.first, cause.isCause else { return }
        let nic = cause.nic
        if let only = options.nic, only != nic { return }
        let nicWord = reader.header.nics > 1 ? " nic=\(nic)" : ""
        guard let line = operationLine(cause, nicWord: nicWord) else {
            out.append("# #\(cause.number) \(describe(cause)): not expressible in a scenario; left out (it moves no counter)")
            return
        }
        accesses += 1
        out.append("")
        out.append("# #\(cause.number) \(describe(cause))" + summary(events))
        // The bytes the device read, first read of each byte in the access.
        var seen = Intervals()
        for e in events {
            switch e.body {
            case .memoryRead(let address, let length, true, _):
                // Bytes a snaplen did not store are left as the scenario's memory holds them.
                let all = payloads[e.number] ?? []
                for (start, end) in seen.missing(address, address &+ UInt64(all.count)) {
                    writeMemory(start, Array(all[Int(start - address)..<Int(end - address)]))
                }
                seen.add(address, address &+ UInt64(length))
            case .memoryWrite(let address, let length, true, _):
                seen.add(address, address &+ UInt64(length))
                let stored = payloads[e.number] ?? []
                memory.store(address, stored)
                memory.forget(address &+ UInt64(stored.count), length - stored.count)
            default: break
            }
        }
        out.append(line)
        // The counters it moved, at their recorded values.
        var moved: [(NetCounter, UInt64)] = []
        for e in events {
            if case .counter(let index, let value) = e.body, let c = NetCounter(ordinal: index), e.nic < counters.count {
                counters[e.nic][index] = value
                if let k = moved.firstIndex(where: { $0.0 == c }) { moved[k].1 = value } else { moved.append((c, value)) }
            }
        }
        if !moved.isEmpty {
            out.append("expect counters\(nicWord) " + moved.map { "\($0.0.name)=\($0.1)" }.joined(separator: " "))
        }
    }

    /// `mem write` lines for the bytes the scenario's memory does not hold yet
    /// (folded, `mem fill` for a run of one byte).
    mutating func writeMemory(_ address: UInt64, _ bytes: [UInt8]) {
        for (start, run) in memory.differing(address, bytes) {
            if run.count >= 16, run.allSatisfy({ $0 == run[0] }) {
                out.append("mem fill 0x\(String(start, radix: 16)) \(run.count) 0x\(String(run[0], radix: 16))")
            } else {
                var at = 0
                while at < run.count {
                    let piece = run[at..<min(run.count, at + Self.bytesPerLine)]
                    out.append("mem write 0x\(String(start + UInt64(at), radix: 16)) " + piece.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined())
                    at += Self.bytesPerLine
                }
            }
            memory.store(start, run)
        }
    }

    /// The scenario line of a cause, or nil where the language has none (an
    /// MMIO width other than 1, 2, 4 or 8, an unknown vhost operation).
    func operationLine(_ e: TraceEvent, nicWord: String) -> String? {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
        switch e.body {
        case .mmioWrite(let offset, let width, let value) where [1, 2, 4, 8].contains(width):
            return "mmio write \(hex(offset)) \(hex(value))" + (width == 4 ? "" : " width=\(width)") + nicWord
        case .mmioRead(let offset, let width, _) where [1, 2, 4, 8].contains(width):
            return "mmio read \(hex(offset))" + (width == 4 ? "" : " width=\(width)") + nicWord
        case .memoryBinding(let bound):
            return (bound ? "bind memory" : "unbind memory") + nicWord
        case .transport(let code, let queue, let values):
            guard let op = TransportOperation(traceCode: code, queue: queue, values: values) else { return nil }
            switch op {
            case .setFeatures(let f): return "vhost features \(hex(f))" + nicWord
            case .setRingSize(let q, let size): return "vhost ring-size queue=\(q) size=\(size)" + nicWord
            case .setRingAddresses(let q, let d, let a, let u): return "vhost ring-addresses queue=\(q) desc=\(hex(d)) avail=\(hex(a)) used=\(hex(u))" + nicWord
            case .setRingBase(let q, let base): return "vhost ring-base queue=\(q) base=\(base)" + nicWord
            case .enableRing(let q, let enabled): return "vhost ring-enable queue=\(q) enabled=\(enabled ? 1 : 0)" + nicWord
            case .kick(let q): return "vhost kick queue=\(q)" + nicWord
            case .stopRing(let q): return "vhost ring-stop queue=\(q)" + nicWord
            case .reset: return "vhost reset" + nicWord
            }
        default: return nil
        }
    }

    func describe(_ cause: TraceEvent) -> String {
        switch cause.body {
        case .mmioWrite(let offset, _, let value) where offset == MMIORegister.queueNotify.rawValue: return "kick q\(value)"
        case .mmioWrite(let offset, _, let value): return "write \(MMIORegister.describe(offset: offset)) = 0x\(String(value, radix: 16))"
        case .mmioRead(let offset, _, let value): return "read \(MMIORegister.describe(offset: offset)) -> 0x\(String(value, radix: 16))"
        case .memoryBinding(let bound): return bound ? "memory bound" : "memory unbound"
        case .transport(let code, let queue, let values):
            return "vhost " + (TransportOperation(traceCode: code, queue: queue, values: values)?.description ?? "operation \(code)")
        default: return "event"
        }
    }

    /// ": 3 chains (q1 heads 5 6 7), 3 used, tx_packets +3, irq vring".
    func summary(_ events: [TraceEvent]) -> String {
        var chains: [UInt16: [UInt16]] = [:], used = 0, irqs: [String] = [], other: [String] = []
        var deltas: [(String, Int64)] = []
        var before = counters
        for e in events.dropFirst() {
            switch e.body {
            case .chain(let q, let head, _): chains[q, default: []].append(head)
            case .used: used += 1
            case .interrupt(let k): irqs.append("irq \(InterruptSignals(rawValue: k))")
            case .counter(let index, let value):
                guard e.nic < before.count, let c = NetCounter(ordinal: index) else { continue }
                let delta = Int64(bitPattern: value &- before[e.nic][index])
                before[e.nic][index] = value
                if let k = deltas.firstIndex(where: { $0.0 == c.name }) { deltas[k].1 += delta } else { deltas.append((c.name, delta)) }
            case .poison(let q, _, _): other.append("q\(q) poisoned")
            case .status(_, let new): other.append("status \(DeviceStatus(rawValue: new))")
            case .reset: other.append("reset")
            case .pairs(_, let new): other.append("\(new) pairs")
            case .warning: other.append("a warning")
            default: break
            }
        }
        var parts: [String] = []
        for (q, heads) in chains.sorted(by: { $0.key < $1.key }) {
            let shown = heads.prefix(8).map(String.init).joined(separator: " ") + (heads.count > 8 ? " …" : "")
            parts.append("\(heads.count) chain\(heads.count == 1 ? "" : "s") q\(q) (head\(heads.count == 1 ? "" : "s") \(shown))")
        }
        if used > 0 { parts.append("\(used) used") }
        parts += deltas.map { "\($0.0) \($0.1 >= 0 ? "+" : "")\($0.1)" }
        parts += other
        if !irqs.isEmpty { parts.append(irqs.count == 1 ? irqs[0] : "\(irqs.count) irqs") }
        return parts.isEmpty ? "" : ": " + parts.joined(separator: ", ")
    }
}

/// Half-open byte ranges, merged.
struct Intervals {
    var ranges: [(UInt64, UInt64)] = []

    mutating func add(_ start: UInt64, _ end: UInt64) {
        guard start < end else { return }
        var s = start, e = end
        ranges.removeAll { r in
            guard r.0 <= e && s <= r.1 else { return false }
            s = min(s, r.0)
            e = max(e, r.1)
            return true
        }
        ranges.append((s, e))
        ranges.sort { $0.0 < $1.0 }
    }

    /// The parts of [start, end) not in the set.
    func missing(_ start: UInt64, _ end: UInt64) -> [(UInt64, UInt64)] {
        var out: [(UInt64, UInt64)] = []
        var at = start
        for r in ranges where r.1 > at && r.0 < end {
            if r.0 > at { out.append((at, r.0)) }
            at = max(at, r.1)
        }
        if at < end { out.append((at, end)) }
        return out
    }
}

/// What the scenario's guest memory holds as its lines run: zero until
/// written (fresh RAM), then the bytes written or the device stored; unknown
/// where the device wrote payload a snaplen did not store.
struct ShadowMemory {
    static let page: UInt64 = 4096
    var pages: [UInt64: [UInt8]] = [:]
    /// Per page, the bytes whose value is unknown (only pages that have some).
    var unknown: [UInt64: [Bool]] = [:]

    mutating func store(_ address: UInt64, _ bytes: [UInt8]) {
        for (i, b) in bytes.enumerated() {
            let a = address &+ UInt64(i)
            pages[a / Self.page, default: [UInt8](repeating: 0, count: Int(Self.page))][Int(a % Self.page)] = b
            if !unknown.isEmpty { unknown[a / Self.page]?[Int(a % Self.page)] = false }
        }
    }

    /// `count` bytes at `address` hold something the trace does not say.
    mutating func forget(_ address: UInt64, _ count: Int) {
        for i in 0..<max(count, 0) {
            let a = address &+ UInt64(i)
            unknown[a / Self.page, default: [Bool](repeating: false, count: Int(Self.page))][Int(a % Self.page)] = true
        }
    }

    func byte(_ a: UInt64) -> UInt8 { pages[a / Self.page]?[Int(a % Self.page)] ?? 0 }

    func isUnknown(_ a: UInt64) -> Bool { unknown[a / Self.page]?[Int(a % Self.page)] ?? false }

    /// The runs of `bytes` (at `address`) that differ from what memory holds (or may).
    func differing(_ address: UInt64, _ bytes: [UInt8]) -> [(UInt64, [UInt8])] {
        var out: [(UInt64, [UInt8])] = []
        var run: [UInt8] = [], runStart: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            let a = address &+ UInt64(i)
            if byte(a) != b || isUnknown(a) {
                if run.isEmpty { runStart = a }
                run.append(b)
            } else if !run.isEmpty {
                out.append((runStart, run))
                run = []
            }
        }
        if !run.isEmpty { out.append((runStart, run)) }
        return out
    }
}
