//! Rebuilds the frames a trace carried from its memory events: what each TX
//! chain's readable descriptors held past the virtio-net header, and what the
//! device wrote into each RX chain past the header.

import TraceFormat
import TraceMapping
import VirtioCore

/// Which way a frame crossed the device.
public enum PacketDirection: String, Sendable, Hashable, CaseIterable {
    /// Read from a TX chain (counted by tx_packets).
    case tx
    /// Written into an RX chain (counted by rx_packets).
    case rx
}

/// One rebuilt frame. `bytes` is valid only during the callback that receives it.
public struct ExtractedPacket {
    public var nic: Int
    public var direction: PacketDirection
    public var queue: UInt16
    public var head: UInt16
    /// The chain event that popped the frame's chain.
    public var chainEvent: UInt64
    /// The counter event (tx_packets or rx_packets) that counted it.
    public var countedEvent: UInt64
    /// The counter's value after it counted this frame.
    public var count: UInt64
    /// Monotonic nanoseconds of the counting event.
    public var time: UInt64
    /// The frame, virtio-net header stripped: as much of it as the trace
    /// stored (its first `snaplen` bytes under a snaplen).
    public var bytes: UnsafeRawBufferPointer
    /// The frame's length on the wire: `bytes.count`, or more when a
    /// snaplen left its end out.
    public var length: Int
}

/// Feeds on a trace's events in order and hands out a frame each time
/// tx_packets or rx_packets counts one.
///
/// The device reads a TX frame right after popping its chain, piece by piece
/// in descriptor order, and writes an RX delivery (header, then frame) right
/// after popping the RX chain. So a chain's frame is the run of successful
/// memory accesses that follow its chain event and land, in order, inside the
/// chain's descriptors of the right direction; each access is placed at its
/// offset in those descriptors laid end to end, less the 12 header bytes. The
/// run ends at the first event that does not fit. Frames are what the trace
/// recorded, not what a replay would produce, so a trace from another device
/// build exports as it was seen. Memory is bounded: a frame buffer of the
/// largest frame per NIC and direction, and the chain's descriptor list.
public struct PacketExtractor {
    /// The chain a frame is being gathered from.
    struct Pending {
        var active = false
        var collecting = false
        var queue: UInt16 = 0
        var head: UInt16 = 0
        var chainEvent: UInt64 = 0
        /// The chain's descriptors of the frame's direction, in chain order.
        var spans: [(addr: UInt64, len: UInt64)] = []
        /// Where the next access is looked for, and the chain offset that span starts at.
        var cursor = 0
        var cursorOffset: UInt64 = 0
        /// Frame bytes (header stripped); `extent` of them are meaningful.
        var frame: [UInt8] = []
        var extent = 0
        /// The frame's length: `extent`, or beyond it where accesses stored only part of their bytes.
        var length = 0

        mutating func start(queue: UInt16, head: UInt16, event: UInt64) {
            if frame.isEmpty { frame = [UInt8](repeating: 0, count: PacketExtractor.frameCapacity) }
            // Clear only what the last frame used.
            frame.withUnsafeMutableBytes { raw in
                if extent > 0 { raw.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0, count: extent) }
            }
            extent = 0
            length = 0
            spans.removeAll(keepingCapacity: true)
            cursor = 0
            cursorOffset = 0
            active = true
            collecting = true
            self.queue = queue
            self.head = head
            chainEvent = event
        }

        /// Places an access of `length` bytes, the first of which are
        /// `bytes` (all of them, unless a snaplen kept fewer); false when it
        /// is not the frame's (which ends the run).
        mutating func place(address: UInt64, length: UInt64, bytes: UnsafeRawBufferPointer) -> Bool {
            var i = cursor
            var offset = cursorOffset
            while i < spans.count {
                let s = spans[i]
                if address >= s.addr, address - s.addr <= s.len, length <= s.len - (address - s.addr) {
                    break
                }
                offset += s.len
                i += 1
            }
            guard i < spans.count else { return false }
            cursor = i
            cursorOffset = offset
            let chainOffset = offset + (address - spans[i].addr)
            let header = UInt64(NetLayout.headerLength)
            // Header bytes are not frame bytes; what lies past the largest frame is dropped.
            guard chainOffset + length > header else { return true }
            let skip = chainOffset < header ? header - chainOffset : 0
            let start = chainOffset + skip - header
            guard start < UInt64(PacketExtractor.frameCapacity) else { return true }
            let capacity = UInt64(PacketExtractor.frameCapacity) - start
            self.length = max(self.length, Int(start + min(length - skip, capacity)))
            let stored = UInt64(bytes.count)
            let n = stored > skip ? Int(min(stored - skip, capacity)) : 0
            if n > 0 {
                frame.withUnsafeMutableBytes { raw in
                    raw.baseAddress!.advanced(by: Int(start)).copyMemory(from: bytes.baseAddress!.advanced(by: Int(skip)), byteCount: n)
                }
                extent = max(extent, Int(start) + n)
            }
            return true
        }
    }

    /// The largest frame the device carries.
    static let frameCapacity = NetLayout.maxFrameSize

    let queuePairs: Int
    /// Per NIC: [tx, rx].
    var pending: [[Pending]]
    /// Frames handed out so far, per direction.
    public private(set) var counts: [PacketDirection: UInt64] = [.tx: 0, .rx: 0]

    /// - Parameters:
    ///   - nics: the trace's NIC count.
    ///   - queuePairs: queue pairs per NIC (the control queue, 2 × pairs when
    ///     there is more than one pair, carries no frames).
    public init(nics: Int, queuePairs: Int) {
        self.queuePairs = queuePairs
        pending = Array(repeating: [Pending(), Pending()], count: nics)
    }

    /// Takes the next event (`decoder` is the one that produced it); calls
    /// `emit` when the event counts a frame.
    public mutating func consume(_ e: TraceEvent, decoder d: borrowing ChunkDecoder, emit: (ExtractedPacket) -> Void) {
        guard e.nic < pending.count else { return }
        switch e.body {
        case .chain(let queue, let head, let count):
            if queuePairs > 1 && Int(queue) == 2 * queuePairs { return }  // control queue
            let dir = queue & 1 == 1 ? 0 : 1
            pending[e.nic][dir].start(queue: queue, head: head, event: e.number)
            // TX frames come from readable descriptors, RX deliveries go into writable ones.
            let wantWritable = dir == 1
            for i in 0..<count {
                let desc = d.descriptor(i)
                if (desc.flags & Descriptor.Flags.write.rawValue != 0) == wantWritable {
                    pending[e.nic][dir].spans.append((desc.addr, UInt64(desc.len)))
                }
            }
            stopOthers(nic: e.nic, except: dir)
        case .memoryRead(let address, let length, let ok, let range):
            access(nic: e.nic, dir: 0, ok: ok, address: address, length: length, range: range, decoder: d)
        case .memoryWrite(let address, let length, let ok, let range):
            access(nic: e.nic, dir: 1, ok: ok, address: address, length: length, range: range, decoder: d)
        case .counter(let index, let value):
            let dir: Int
            switch NetCounter(ordinal: index) {
            case .txPackets: dir = 0
            case .rxPackets: dir = 1
            default: return stopOthers(nic: e.nic, except: -1)
            }
            stopOthers(nic: e.nic, except: -1)
            let p = pending[e.nic][dir]
            guard p.active else { return }
            pending[e.nic][dir].active = false
            let direction: PacketDirection = dir == 0 ? .tx : .rx
            counts[direction, default: 0] += 1
            p.frame.withUnsafeBytes { raw in
                emit(ExtractedPacket(nic: e.nic, direction: direction, queue: p.queue, head: p.head, chainEvent: p.chainEvent,
                                     countedEvent: e.number, count: value, time: e.time,
                                     bytes: UnsafeRawBufferPointer(rebasing: raw[0..<p.extent]), length: max(p.length, p.extent)))
            }
        case .reset:
            pending[e.nic][0].active = false
            pending[e.nic][1].active = false
        default:
            stopOthers(nic: e.nic, except: -1)
        }
    }

    /// A read feeds a TX frame, a write an RX delivery; anything else ends both runs.
    mutating func access(nic: Int, dir: Int, ok: Bool, address: UInt64, length: Int, range: Range<Int>, decoder d: borrowing ChunkDecoder) {
        stopOthers(nic: nic, except: dir)
        guard pending[nic][dir].collecting else { return }
        let bytes = UnsafeRawBufferPointer(start: d.contentBase + range.lowerBound, count: range.count)
        if !ok || !pending[nic][dir].place(address: address, length: UInt64(length), bytes: bytes) {
            pending[nic][dir].collecting = false
        }
    }

    @inline(__always)
    mutating func stopOthers(nic: Int, except dir: Int) {
        for k in 0..<2 where k != dir { pending[nic][k].collecting = false }
    }
}
