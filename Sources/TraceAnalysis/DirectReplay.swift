//! A segment replayed straight from its records: each device action matched
//! against the next record in place, no events built. The whole-trace
//! replay's fast path; anything it cannot settle goes back to the replay
//! event by event.

import TraceFormat
import TraceMapping
import VirtioCore

/// The records of a loaded segment as the direct replay walks them: the
/// chunk being matched, and the executing NIC. Shared by the memory and
/// observers of the direct replay's devices.
///
/// It never explains anything: the first action that is not the next
/// record (or a record that does not decode, a chunk whose event count is
/// not its index entry's, events past the segment's end) makes it give up,
/// and the caller replays the segment again event by event, from the same
/// start, which finds and reports exactly what happened.
final class RecordStream {
    /// The chunk being matched: a copy of its decoder in `decoders`, made
    /// exclusive (never copied again: it is matched in place).
    var decoder: ChunkDecoder
    private let decoders: [ChunkDecoder]
    private let eventCounts: [UInt64]
    private var slot = 0
    /// The NIC whose access executes.
    var nic = 0
    /// Set at the first action that does not match: nothing is matched after it.
    var gaveUp = false
    /// The NIC whose drain the next chunk's checkpoint resumes (-1: none).
    let pauseNIC: Int
    /// Events matched in the chunks before the current one.
    private var earlierEvents: UInt64 = 0

    /// - Parameters:
    ///   - decoders: the segment's chunks, each at its start.
    ///   - eventCounts: each chunk's events, as its index entry says.
    init(decoders: [ChunkDecoder], eventCounts: [UInt64], pauseNIC: Int) {
        self.decoders = decoders
        self.eventCounts = eventCounts
        self.pauseNIC = pauseNIC
        decoder = decoders.first ?? ChunkDecoder()
        decoder.makeExclusive()
    }

    /// Events matched so far.
    var matched: UInt64 { earlierEvents &+ decoder.decoded }

    /// Whether another event record of the segment follows (moving on to
    /// the next chunk where this one's records end).
    func hasEvent() -> Bool {
        decoder.atEventRecord() || nextChunk()
    }

    /// Matches one action against the next record with `body`, in the next
    /// chunk where this one's records end.
    @inline(__always)
    func match(_ body: (inout ChunkDecoder) -> RecordMatch) -> RecordMatch {
        let r = body(&decoder)
        if r != .end { return r }
        return nextChunk() ? body(&decoder) : .mismatch
    }

    /// The chunk's records are done: it must have held as many events as
    /// its index entry says, and end cleanly; then the next chunk with an
    /// event record, if any.
    @inline(never)
    private func nextChunk() -> Bool {
        while true {
            guard decoder.atEnd, slot < eventCounts.count, decoder.decoded == eventCounts[slot] else {
                gaveUp = true
                return false
            }
            guard slot + 1 < decoders.count else { return false }
            earlierEvents &+= decoder.decoded
            slot += 1
            decoder = decoders[slot]
            decoder.makeExclusive()
            if decoder.atEventRecord() { return true }
        }
    }

    /// Gives up (and says so to the device: a read fails).
    @inline(never)
    func giveUp() { gaveUp = true }
}

/// Guest memory for the direct replay: reads served from the records, writes checked against them.
final class DirectMemory: GuestMemory {
    let stream: RecordStream
    init(stream: RecordStream) { self.stream = stream }

    func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) {
        let s = stream
        if !s.gaveUp {
            switch s.match({ $0.matchRead(nic: s.nic, address: address, into: buffer) }) {
            case .matched: return
            case .matchedFailed: throw GuestMemoryError(address: address, length: buffer.count)
            case .mismatch, .end: break
            }
        }
        s.giveUp()
        throw GuestMemoryError(address: address, length: buffer.count)
    }

    func write(_ address: UInt64, from bytes: UnsafeRawBufferPointer) throws(GuestMemoryError) {
        let s = stream
        if !s.gaveUp {
            switch s.match({ $0.matchWrite(nic: s.nic, address: address, from: bytes) }) {
            case .matched: return
            case .matchedFailed: throw GuestMemoryError(address: address, length: bytes.count)
            case .mismatch, .end: break
            }
        }
        s.giveUp()
        throw GuestMemoryError(address: address, length: bytes.count)
    }
}

/// The observer of a direct replay's device: each output matched against the next record.
struct DirectObserver: DeviceObserver {
    let stream: RecordStream
    let nic: Int

    /// Matches one output: `body` is the match against the current decoder.
    @inline(__always)
    private func expect(_ body: (inout ChunkDecoder, Int) -> RecordMatch) {
        let s = stream
        if s.gaveUp { return }
        let n = nic
        if s.match({ body(&$0, n) }) != .matched { s.giveUp() }
    }

    static var observesDrainBoundaries: Bool { true }
    @inline(__always)
    mutating func drainBoundary(_ position: DrainPosition) -> DrainBoundaryAction {
        let s = stream
        if s.gaveUp { return .pause }
        // Where the segment's events end and the next chunk resumes this drain.
        return nic == s.pauseNIC && !s.hasEvent() ? .pause : .goOn
    }

    mutating func chainPopped(queue: UInt16, head: UInt16, descriptors: UnsafeBufferPointer<Descriptor>) {
        expect { d, n in
            d.matchChain(nic: n, queue: queue, head: head, count: descriptors.count) { i in
                let x = descriptors[i]
                return TraceDescriptor(addr: x.addr, len: x.len, flags: x.flags.rawValue, next: x.next)
            }
        }
    }
    mutating func usedPublished(queue: UInt16, id: UInt32, len: UInt32) {
        expect { d, n in d.matchUsed(nic: n, queue: queue, id: id, len: len) }
    }
    mutating func counterChanged(_ counter: NetCounter, value: UInt64) {
        expect { d, n in d.matchCounter(nic: n, index: counter.ordinal, value: value) }
    }
    mutating func interruptRaised(_ kind: InterruptSignals) {
        expect { d, n in d.matchEvent(nic: n) { $0 == .raised(kind) } }
    }
    mutating func queuePoisoned(queue: UInt16, error: QueueError) {
        expect { d, n in d.matchEvent(nic: n) { $0 == .poisoned(queue: queue, error) } }
    }
    mutating func statusChanged(from old: UInt8, to new: UInt8) {
        expect { d, n in d.matchEvent(nic: n) { $0 == .status(old: old, new: new) } }
    }
    mutating func driverFeaturesChanged(from old: UInt64, to new: UInt64) {
        expect { d, n in d.matchEvent(nic: n) { $0 == .features(old: old, new: new) } }
    }
    mutating func activeQueuePairsChanged(from old: UInt16, to new: UInt16) {
        expect { d, n in d.matchEvent(nic: n) { $0 == .pairs(old: old, new: new) } }
    }
    mutating func deviceReset() {
        expect { d, n in d.matchEvent(nic: n) { $0 == .reset } }
    }
    mutating func warning(_ warning: DeviceWarning) {
        expect { d, n in d.matchEvent(nic: n) { $0 == .warned(warning) } }
    }
}

/// Where a NIC stands between accesses: its state, whether memory is bound,
/// and the number of the event that began its access in progress (a drain
/// paused between chains). A segment starts from one per NIC, and ends in one.
struct NICPosition {
    var state: VirtioNetState
    var memoryBound: Bool
    var accessEvent: UInt64
}

extension VirtioNetDevice {
    /// Where this device stands, its access in progress begun at `accessEvent`.
    func position(accessEvent: UInt64) -> NICPosition {
        NICPosition(state: state, memoryBound: memory != nil, accessEvent: accessEvent)
    }
}

/// A whole segment replayed directly: devices restored from the segment's
/// start, every access re-executed, every action matched in place.
struct DirectReplay {
    typealias Device = VirtioNetDevice<DirectMemory, DirectObserver>

    /// What the segment ended with, when every action matched.
    struct End {
        var nics: [NICPosition]
        var events: UInt64
    }

    /// Replays the segment of `decoders` from `starts`; nil when an action
    /// did not match (or anything else the event-by-event replay must look at).
    static func run(decoders: [ChunkDecoder], eventCounts: [UInt64], pauseNIC: Int, starts: [NICPosition],
                    config: NetConfig) -> End? {
        let stream = RecordStream(decoders: decoders, eventCounts: eventCounts, pauseNIC: pauseNIC)
        let memory = DirectMemory(stream: stream)
        var devices: [Device] = []
        devices.reserveCapacity(starts.count)
        for (n, s) in starts.enumerated() {
            var d = Device(config: config, memory: s.memoryBound ? memory : nil, observer: DirectObserver(stream: stream, nic: n))
            guard d.restore(s.state) else { return nil }
            devices.append(d)
        }
        var accessEvents = starts.map(\.accessEvent)
        // A drain the checkpoint left paused goes on first (at most one NIC has one).
        if stream.hasEvent(), let n = devices.firstIndex(where: { $0.state.drain != nil }) {
            stream.nic = n
            devices[n].resumeDrain()
        }
        var event = TraceEvent(number: 0, time: 0, nic: 0, vcpu: 0, body: .reset)
        while !stream.gaveUp && stream.hasEvent() {
            do throws(ChunkDecodeError) {
                guard try stream.decoder.next(into: &event) else { return nil }
            } catch { return nil }
            let n = event.nic
            stream.nic = n
            if event.isCause { accessEvents[n] = event.number }
            switch event.body {
            case .mmioRead(let offset, let width, let value):
                if devices[n].read(offset: offset, width: width) != value { return nil }
            case .mmioWrite(let offset, let width, let value):
                devices[n].write(offset: offset, width: width, value: value)
            case .memoryBinding(let bound):
                devices[n].memory = bound ? memory : nil
            case .marker:
                break
            case .transport(let code, let queue, let values):
                guard let op = TransportOperation(traceCode: code, queue: queue, values: values) else { return nil }
                devices[n].apply(op)
            default:
                return nil
            }
        }
        if stream.gaveUp { return nil }
        return End(nics: devices.indices.map { devices[$0].position(accessEvent: accessEvents[$0]) }, events: stream.matched)
    }
}
