//! Decodes one chunk's uncompressed content back into events.

/// Reads the events of one chunk, in order, without allocating per event.
///
/// Hostile content yields ``ChunkDecodeError`` (with the offset inside the
/// content), never a trap: every length is checked against the bytes left,
/// every count against a limit.
public struct ChunkDecoder {
    public let content: [UInt8]
    public let firstEvent: UInt64
    public let flags: ChunkFlags
    public let baseTime: UInt64
    /// Every NIC's state at the chunk start (nil for a continuation chunk).
    public let checkpoint: [NICCheckpoint]?
    /// Per NIC, counter values at the chunk start.
    public let startCounters: [[UInt64]]
    /// The descriptors of the last chain event decoded.
    public private(set) var descriptors: [TraceDescriptor] = []
    /// Events decoded so far.
    public private(set) var decoded: UInt64 = 0

    let nics: Int
    var offset: Int
    var time: UInt64
    var nic = 0
    var vcpu: UInt32 = 0
    var lastReadEnd: UInt64 = 0
    var lastWriteEnd: UInt64 = 0
    var lastDescriptorEnd: UInt64 = 0
    var counters: [[UInt64]]
    var recentReads: [(Int, Int)] = []

    /// Most descriptors one chain event may list (an indirect table's 65,535 plus a queue's 32,768).
    public static let maxDescriptors = 65_535 + 32_768

    public init(content: [UInt8], nics: Int) throws(ChunkDecodeError) {
        self.content = content
        self.nics = nics
        var parsed: (UInt64, ChunkFlags, UInt64, [NICCheckpoint]?, [[UInt64]], Int)?
        var failure: ChunkDecodeError?
        content.withUnsafeBytes { raw in
            var r = ByteReader(raw)
            do throws(ChunkDecodeError) {
                do {
                    let first = try r.varint()
                    let flags = ChunkFlags(rawValue: try r.varint())
                    let base = try r.varint()
                    let count = try r.varint()
                    guard count == UInt64(nics) else {
                        throw ChunkDecodeError(offset: r.offset, "chunk describes \(count) NICs, the header \(nics)")
                    }
                    if flags.contains(.checkpoint) {
                        var cps: [NICCheckpoint] = []
                        for _ in 0..<nics { cps.append(try NICCheckpoint.decode(&r)) }
                        parsed = (first, flags, base, cps, cps.map(\.counters), r.offset)
                    } else {
                        var all: [[UInt64]] = []
                        for _ in 0..<nics {
                            var c: [UInt64] = []
                            for _ in 0..<NICCheckpoint.counterCount { c.append(try r.varint()) }
                            all.append(c)
                        }
                        parsed = (first, flags, base, nil, all, r.offset)
                    }
                } catch {
                    throw ChunkDecodeError.from(error)
                }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        let p = parsed!
        firstEvent = p.0
        flags = p.1
        baseTime = p.2
        checkpoint = p.3
        startCounters = p.4
        counters = p.4
        offset = p.5
        time = baseTime
    }

    /// Offset of the next record within the content.
    public var position: Int { offset }

    /// The bytes of a payload range.
    public func bytes(_ range: Range<Int>) -> ArraySlice<UInt8> { content[range] }

    /// The next event, or nil at the end of the chunk.
    public mutating func next() throws(ChunkDecodeError) -> TraceEvent? {
        var result: TraceEvent?
        var failure: ChunkDecodeError?
        content.withUnsafeBytes { raw in
            var r = ByteReader(raw, from: offset)
            do throws(ChunkDecodeError) {
                result = try decodeOne(&r)
                offset = r.offset
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return result
    }

    /// Decodes every remaining event, calling `body` with each and the
    /// descriptors of a chain event. One pass over the content: the fast path
    /// for replay.
    public mutating func decodeAll(_ body: (TraceEvent, [TraceDescriptor]) -> Void) throws(ChunkDecodeError) {
        var failure: ChunkDecodeError?
        let bytes = content
        bytes.withUnsafeBytes { raw in
            var r = ByteReader(raw, from: offset)
            do throws(ChunkDecodeError) {
                while let e = try decodeOne(&r) { body(e, descriptors) }
            } catch {
                failure = error
            }
            offset = r.offset
        }
        if let failure { throw failure }
    }

    mutating func decodeOne(_ r: inout ByteReader) throws(ChunkDecodeError) -> TraceEvent? {
        do {
            while true {
                if r.atEnd { return nil }
                let tagOffset = r.offset
                let tag = try r.byte()
                let kind = tag & 15
                let aux = tag >> 4
                if kind == 15 {
                    let v = try r.varint()
                    switch aux {
                    case 0:
                        guard v < UInt64(nics) else { throw ChunkDecodeError(offset: tagOffset, "event names NIC \(v); the trace has \(nics)") }
                        nic = Int(v)
                    case 1:
                        guard v <= UInt64(UInt32.max) else { throw ChunkDecodeError(offset: tagOffset, "vCPU \(v) out of range") }
                        vcpu = UInt32(v)
                    default: throw ChunkDecodeError(offset: tagOffset, "unknown context record \(aux)")
                    }
                    continue
                }
                guard let k = TraceEventKind(rawValue: kind) else {
                    throw ChunkDecodeError(offset: tagOffset, "unknown event kind \(kind)")
                }
                let body = try decodeBody(k, aux: aux, &r, tagOffset: tagOffset)
                let event = TraceEvent(number: firstEvent &+ decoded, time: time, nic: nic, vcpu: vcpu, body: body)
                decoded += 1
                return event
            }
        } catch {
            throw ChunkDecodeError.from(error)
        }
    }

    mutating func decodeBody(_ k: TraceEventKind, aux: UInt8, _ r: inout ByteReader, tagOffset: Int) throws(ChunkDecodeError) -> TraceEvent.Body {
        do {
            switch k {
            case .mmioRead, .mmioWrite:
                let width = aux == 15 ? Int(truncatingIfNeeded: try r.zigzag()) : Int(aux)
                let offset = try r.varint()
                let value = try r.varint()
                time &+= try r.varint()
                return k == .mmioRead ? .mmioRead(offset: offset, width: width, value: value)
                    : .mmioWrite(offset: offset, width: width, value: value)
            case .memoryRead:
                let address = lastReadEnd &+ UInt64(bitPattern: try r.zigzag())
                let length = try r.varint()
                let ok = aux & 1 == 0
                var range = r.offset..<r.offset
                if ok {
                    guard length <= UInt64(r.remaining) else {
                        throw ChunkDecodeError(offset: tagOffset, "memory read of \(length) bytes, \(r.remaining) left in the chunk")
                    }
                    range = try r.skip(Int(length))
                    if length >= 8 {
                        recentReads.insert((Int(length), range.lowerBound), at: 0)
                        if recentReads.count > 4 { recentReads.removeLast() }
                    }
                } else {
                    guard length <= UInt64(UInt32.max) else { throw ChunkDecodeError(offset: tagOffset, "memory read length \(length) out of range") }
                }
                lastReadEnd = address &+ length
                return .memoryRead(address: address, length: Int(length), ok: ok, bytes: range)
            case .memoryWrite:
                let address = lastWriteEnd &+ UInt64(bitPattern: try r.zigzag())
                let length = try r.varint()
                let ok = aux & 1 == 0
                let range: Range<Int>
                if aux & 2 != 0 {
                    let i = Int(aux >> 2)
                    guard i < recentReads.count, recentReads[i].0 == Int(clamping: length) else {
                        throw ChunkDecodeError(offset: tagOffset, "memory write refers to a read that is not there")
                    }
                    range = recentReads[i].1..<(recentReads[i].1 + recentReads[i].0)
                } else {
                    guard length <= UInt64(r.remaining) else {
                        throw ChunkDecodeError(offset: tagOffset, "memory write of \(length) bytes, \(r.remaining) left in the chunk")
                    }
                    range = try r.skip(Int(length))
                }
                lastWriteEnd = address &+ length
                return .memoryWrite(address: address, length: Int(length), ok: ok, bytes: range)
            case .chain:
                let queue: UInt16 = try narrow(r.varint(), r.offset)
                let head: UInt16 = try narrow(r.varint(), r.offset)
                let count = try r.varint()
                // Each descriptor takes at least 4 bytes: a count beyond that is a lie.
                guard count <= UInt64(Self.maxDescriptors), count <= UInt64(r.remaining / 4) else {
                    throw ChunkDecodeError(offset: tagOffset, "chain claims \(count) descriptors")
                }
                descriptors.removeAll(keepingCapacity: true)
                for _ in 0..<count {
                    let addr = lastDescriptorEnd &+ UInt64(bitPattern: try r.zigzag())
                    let len: UInt32 = try narrow(r.varint(), r.offset)
                    let flags: UInt16 = try narrow(r.varint(), r.offset)
                    let next: UInt16 = try narrow(r.varint(), r.offset)
                    descriptors.append(TraceDescriptor(addr: addr, len: len, flags: flags, next: next))
                    lastDescriptorEnd = addr &+ UInt64(len)
                }
                return .chain(queue: queue, head: head, descriptorCount: Int(count))
            case .used:
                return .used(queue: try narrow(r.varint(), r.offset), id: try narrow(r.varint(), r.offset), len: try narrow(r.varint(), r.offset))
            case .counter:
                let index = Int(aux)
                let delta = try r.varint()
                counters[nic][index] &+= delta
                return .counter(index: index, value: counters[nic][index])
            case .interrupt:
                let kind: UInt32 = aux == 15 ? try narrow(r.varint(), r.offset) : UInt32(aux)
                return .interrupt(kind: kind)
            case .poison:
                let queue: UInt16 = try narrow(r.varint(), r.offset)
                let code = try r.varint()
                return .poison(queue: queue, code: code, details: try details(&r, tagOffset))
            case .status:
                return .status(old: try r.byte(), new: try r.byte())
            case .features:
                return .features(old: try r.varint(), new: try r.varint())
            case .pairs:
                return .pairs(old: try narrow(r.varint(), r.offset), new: try narrow(r.varint(), r.offset))
            case .reset:
                return .reset
            case .warning:
                let code = try r.varint()
                return .warning(code: code, details: try details(&r, tagOffset))
            case .memoryBinding:
                return .memoryBinding(bound: aux & 1 != 0)
            }
        } catch {
            throw ChunkDecodeError.from(error)
        }
    }

    func details(_ r: inout ByteReader, _ tagOffset: Int) throws(ChunkDecodeError) -> EventDetails {
        do {
            let n = try r.varint()
            guard n <= 3 else { throw ChunkDecodeError(offset: tagOffset, "\(n) details (at most 3)") }
            var v: [UInt64] = []
            for _ in 0..<n { v.append(try r.varint()) }
            return EventDetails(v)
        } catch {
            throw ChunkDecodeError.from(error)
        }
    }
}
