//! Text and JSON renderings of trace events, with virtio names.

import TraceFormat
import TraceMapping
import VirtioCore

/// Renders events for `vtrace dump` (text and JSON Lines).
public enum EventFormatting {
    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

    static func hexBytes(_ b: ArraySlice<UInt8>, limit: Int) -> String {
        var s = ""
        for (i, x) in b.enumerated() {
            if i == limit { return s + " …(+\(b.count - limit))" }
            if i > 0 { s += " " }
            s += (x < 16 ? "0" : "") + String(x, radix: 16)
        }
        return s
    }

    /// A memory event's bytes as hex (the first `limit`), then what a
    /// snaplen left out: `00 01 … (+1436 not stored)`, `… (+1500 not stored)`.
    static func payload(_ b: ArraySlice<UInt8>, notStored: Int, limit: Int) -> String {
        let shown = hexBytes(b, limit: limit)
        guard notStored > 0 else { return shown }
        return (shown.isEmpty ? "…" : shown + " …") + " (+\(notStored) not stored)"
    }

    static func counterName(_ index: Int) -> String { NetCounter(ordinal: index)?.name ?? "counter\(index)" }

    /// One line of text for an event; `start` is the trace's first timestamp.
    public static func text(_ e: TraceEvent, _ d: ChunkDecoder, start: UInt64, byteLimit: Int = 16) -> String {
        let t = e.time >= start ? e.time - start : 0
        let seconds = "\(t / 1_000_000_000).\(String(t % 1_000_000_000 + 1_000_000_000).dropFirst())"
        let prefix = "#\(e.number) \(seconds) nic\(e.nic) "
        return prefix + summary(e, d, byteLimit: byteLimit)
    }

    /// The event without number, time and NIC.
    public static func summary(_ e: TraceEvent, _ d: ChunkDecoder, byteLimit: Int = 16) -> String {
        var bytes: ArraySlice<UInt8> = []
        switch e.body {
        case .memoryRead(_, _, _, let r), .memoryWrite(_, _, _, let r): bytes = d.bytes(r)
        default: break
        }
        return summary(e, bytes: bytes, descriptors: d.descriptors, byteLimit: byteLimit)
    }

    /// The event without number, time and NIC, from its payload bytes and descriptors.
    public static func summary(_ e: TraceEvent, bytes: ArraySlice<UInt8>, descriptors: [TraceDescriptor], byteLimit: Int = 16) -> String {
        switch e.body {
        case .mmioRead(let o, let w, let v): return "mmio read  \(MMIORegister.describe(offset: o))/\(w) -> \(hex(v))" + (e.vcpu != 0 ? " vcpu\(e.vcpu)" : "")
        case .mmioWrite(let o, let w, let v): return "mmio write \(MMIORegister.describe(offset: o))/\(w) = \(hex(v))" + (e.vcpu != 0 ? " vcpu\(e.vcpu)" : "")
        case .memoryRead(let a, let n, let ok, _):
            return "mem read  \(hex(a)) +\(n)" + (ok ? " = \(payload(bytes, notStored: e.bytesNotStored, limit: byteLimit))" : " FAULT")
        case .memoryWrite(let a, let n, let ok, _):
            return "mem write \(hex(a)) +\(n) = \(payload(bytes, notStored: e.bytesNotStored, limit: byteLimit))" + (ok ? "" : " FAULT")
        case .chain(let q, let h, let n):
            let descs = descriptors.prefix(8).map { "\(hex($0.addr)):\($0.len)\($0.flags & 2 != 0 ? ":w" : "")\($0.flags & 4 != 0 ? ":i" : "")" }
            return "chain q\(q) head \(h) [\(descs.joined(separator: " "))\(n > 8 ? " …(+\(n - 8))" : "")]"
        case .used(let q, let id, let len): return "used q\(q) id \(id) len \(len)"
        case .counter(let i, let v): return "counter \(counterName(i)) = \(v)"
        case .interrupt(let k): return "irq \(InterruptSignals(rawValue: k))"
        case .poison(let q, let code, let det):
            return "poison q\(q): " + (PoisonCode.decode(code, det).map { "\($0)" } ?? "code \(code)")
        case .status(let a, let b): return "status \(DeviceStatus(rawValue: a)) -> \(DeviceStatus(rawValue: b))"
        case .features(let a, let b): return "driver features \(hex(a)) -> \(hex(b))"
        case .pairs(let a, let b): return "active pairs \(a) -> \(b)"
        case .reset: return "reset"
        case .warning(let code, let det): return "warning: " + (WarningCode.decode(code, det).map { "\($0)" } ?? "code \(code)")
        case .memoryBinding(let bound): return bound ? "memory bound" : "memory unbound"
        case .transport(let code, let q, let values): return "vhost " + transportName(code, q, values)
        case .marker(let code, let det): return "marker: " + markerText(code, det)
        }
    }

    /// A descriptor's flags as words (NEXT, WRITE, INDIRECT; other bits in hex).
    public static func flagWords(_ flags: UInt16) -> [String] {
        var words = [(Descriptor.Flags.next, "NEXT"), (.write, "WRITE"), (.indirect, "INDIRECT")]
            .filter { Descriptor.Flags(rawValue: flags).contains($0.0) }.map(\.1)
        let other = flags & ~(Descriptor.Flags.next.rawValue | Descriptor.Flags.write.rawValue | Descriptor.Flags.indirect.rawValue)
        if other != 0 { words.append("0x" + String(other, radix: 16)) }
        return words
    }

    /// What a marker marks, in words.
    public static func markerText(_ code: UInt64, _ details: EventDetails) -> String {
        switch MarkerCode(rawValue: code) {
        case .triggerFired: return "trigger fired" + (details.count > 0 ? " at event \(details.a)" : "")
        case nil: return "code \(code) \(details.values.map(String.init).joined(separator: " "))"
        }
    }

    /// `kick q1`, `ring-addresses q0 desc …`, or the raw numbers of an operation this build does not know.
    static func transportName(_ code: UInt8, _ queue: UInt16, _ values: EventDetails) -> String {
        TransportOperation(traceCode: code, queue: queue, values: values)?.description
            ?? "op \(code) q\(queue) \(values.values.map { hex($0) }.joined(separator: " "))"
    }

    public static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    out += "\\u00" + (u.value < 16 ? "0" : "") + String(u.value, radix: 16)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    static func plainHex(_ b: ArraySlice<UInt8>) -> String {
        var s = ""
        s.reserveCapacity(b.count * 2)
        for x in b { s += (x < 16 ? "0" : "") + String(x, radix: 16) }
        return s
    }

    /// One JSON object (a JSON Lines line) for an event.
    public static func json(_ e: TraceEvent, _ d: ChunkDecoder, start: UInt64) -> String {
        var f: [(String, String)] = [("n", "\(e.number)"), ("t", "\(e.time >= start ? e.time - start : 0)"), ("nic", "\(e.nic)")]
        func s(_ k: String, _ v: String) { f.append((k, jsonString(v))) }
        func n<T: BinaryInteger>(_ k: String, _ v: T) { f.append((k, "\(v)")) }
        func b(_ k: String, _ v: Bool) { f.append((k, v ? "true" : "false")) }
        s("kind", e.kind.name)
        switch e.body {
        case .mmioRead(let o, let w, let v), .mmioWrite(let o, let w, let v):
            n("offset", o)
            s("register", MMIORegister.describe(offset: o))
            n("width", w)
            s("op", e.kind == .mmioRead ? "read" : "write")
            n("value", v)
            n("vcpu", e.vcpu)
        case .memoryRead(let a, let len, let ok, let r), .memoryWrite(let a, let len, let ok, let r):
            n("address", a)
            n("length", len)
            b("ok", ok)
            s("bytes", plainHex(d.bytes(r)))
            if e.bytesNotStored > 0 { n("not_stored", e.bytesNotStored) }
        case .chain(let q, let h, _):
            n("queue", q)
            n("head", h)
            let list = d.descriptors.map { "{\"addr\":\($0.addr),\"len\":\($0.len),\"flags\":\($0.flags),\"next\":\($0.next)}" }
            f.append(("descriptors", "[" + list.joined(separator: ",") + "]"))
        case .used(let q, let id, let len):
            n("queue", q)
            n("id", id)
            n("len", len)
        case .counter(let i, let v):
            s("counter", counterName(i))
            n("value", v)
        case .interrupt(let k):
            s("interrupt", InterruptSignals(rawValue: k).description)
            n("bits", k)
        case .poison(let q, let code, let det):
            n("queue", q)
            s("error", PoisonCode.decode(code, det).map { "\($0)" } ?? "code \(code)")
        case .status(let a, let b2):
            n("old", a)
            n("new", b2)
        case .features(let a, let b2):
            n("old", a)
            n("new", b2)
        case .pairs(let a, let b2):
            n("old", a)
            n("new", b2)
        case .reset: break
        case .warning(let code, let det): s("warning", WarningCode.decode(code, det).map { "\($0)" } ?? "code \(code)")
        case .memoryBinding(let bound): b("bound", bound)
        case .transport(let code, let q, let values):
            s("op", transportName(code, q, values))
            n("code", code)
            n("queue", q)
            f.append(("values", "[" + values.values.map { "\($0)" }.joined(separator: ",") + "]"))
        case .marker(let code, let det):
            s("marker", markerText(code, det))
            n("code", code)
            f.append(("values", "[" + det.values.map { "\($0)" }.joined(separator: ",") + "]"))
        }
        return "{" + f.map { "\(jsonString($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }
}
