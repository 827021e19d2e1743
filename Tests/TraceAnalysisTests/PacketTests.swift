import Foundation
import GuestDriver
import Testing
import TraceFormat
@testable import TraceAnalysis
import TraceMapping
import TraceRecording
import TraceTestSupport
import VirtioCore

/// Every frame the extractor rebuilds from a trace, with the trace's events by number.
struct Extraction {
    struct Frame: Equatable {
        var nic: Int
        var direction: PacketDirection
        var queue: UInt16
        var head: UInt16
        var chainEvent: UInt64
        var countedEvent: UInt64
        var count: UInt64
        var bytes: [UInt8]
    }
    var frames: [Frame] = []
    var events: [UInt64: TraceEvent] = [:]
    var final: [NetCounters] = []

    init(_ path: String) throws {
        let reader = try TraceReader(path: path)
        var x = PacketExtractor(nics: reader.header.nics, queuePairs: reader.header.queuePairs)
        for i in reader.chunks.indices {
            var d = try reader.decoder(i)
            while let e = try d.next() {
                events[e.number] = e
                x.consume(e, decoder: d) { p in
                    frames.append(Frame(nic: p.nic, direction: p.direction, queue: p.queue, head: p.head, chainEvent: p.chainEvent,
                                        countedEvent: p.countedEvent, count: p.count, bytes: Array(p.bytes)))
                }
            }
        }
        final = try CounterTimeline(reader: reader, nic: nil).finalCounters()
        #expect(x.counts[.tx] == UInt64(frames.filter { $0.direction == .tx }.count))
    }
}

@Suite("Packet extraction")
struct PacketTests {
    /// For every library scenario, recorded in 13-event chunks so frames straddle
    /// chunk boundaries: per NIC and direction, one frame per count of
    /// tx_packets / rx_packets, numbered 1, 2, 3…, whose lengths add up to
    /// tx_bytes / rx_bytes; each frame's chain event pops a chain of its queue
    /// and head, and its counting event sets the counter to its number.
    @Test func everyLibraryScenarioYieldsItsCountedFrames() throws {
        let dir = repositoryRoot.appendingPathComponent("traces/scenarios")
        var total = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() where name.hasSuffix(".scenario") {
            let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
            let (path, _, _) = try record(text, name: "pkt-" + name, flushEvents: 13)
            let x = try Extraction(path)
            for (nic, counters) in x.final.enumerated() {
                for (direction, packets, bytes) in [(PacketDirection.tx, NetCounter.txPackets, NetCounter.txBytes),
                                                    (.rx, .rxPackets, .rxBytes)] {
                    let mine = x.frames.filter { $0.nic == nic && $0.direction == direction }
                    #expect(mine.map(\.count) == (0..<Int(counters[packets])).map { UInt64($0 + 1) },
                            "\(name) nic\(nic) \(direction)")
                    #expect(UInt64(mine.reduce(0) { $0 + $1.bytes.count }) == counters[bytes], "\(name) nic\(nic) \(direction) bytes")
                    for f in mine {
                        #expect(x.events[f.chainEvent]?.body == .chain(queue: f.queue, head: f.head, descriptorCount: chainLength(x, f)),
                                "\(name) event \(f.chainEvent)")
                        #expect(x.events[f.countedEvent]?.body == .counter(index: packets.ordinal, value: f.count), "\(name) event \(f.countedEvent)")
                        #expect((f.queue & 1 == 1) == (direction == .tx))
                    }
                    total += mine.count
                }
            }
        }
        #expect(total > 40)
    }

    func chainLength(_ x: Extraction, _ f: Extraction.Frame) -> Int {
        if case .chain(_, _, let n) = x.events[f.chainEvent]?.body { return n }
        return -1
    }

    /// The bytes themselves: the pattern frame the driver sent, and on RX the
    /// same bytes cut to the buffer (28 bytes of a 64-byte frame, then none).
    @Test func framesCarryTheBytesTheDriverSent() throws {
        let text = try String(contentsOf: repositoryRoot.appendingPathComponent("traces/scenarios/rx-too-small.scenario"), encoding: .utf8)
        let (path, _, _) = try record(text, name: "pkt-bytes", flushEvents: 5)
        let x = try Extraction(path)
        let pattern = VirtioNetDriver<GuestRAM>.patternFrame(length: 64)
        #expect(x.frames.map(\.direction) == [.rx, .tx, .rx, .tx])
        #expect(x.frames.map(\.bytes) == [Array(pattern.prefix(28)), pattern, [], pattern])
    }

    /// Header split over twelve one-byte descriptors (some reads hold only
    /// header bytes), frames over three descriptors, two pairs, a control
    /// queue, a reset and an unbound kick: each RX delivery is the TX frame it
    /// looped back, byte for byte.
    @Test func loopbackDeliveriesEqualTheirFrames() throws {
        for (name, text) in [
            ("split", try String(contentsOf: repositoryRoot.appendingPathComponent("traces/scenarios/header-split.scenario"), encoding: .utf8)),
            ("traffic", trafficScenario),
        ] {
            let (path, _, _) = try record(text, name: "pkt-loop-\(name)", flushEvents: 7)
            let x = try Extraction(path)
            let tx = x.frames.filter { $0.direction == .tx }, rx = x.frames.filter { $0.direction == .rx }
            #expect(!rx.isEmpty)
            // Every RX delivery is counted just before the TX chain that carried it.
            for r in rx {
                let carrier = try #require(tx.first { $0.countedEvent > r.countedEvent && $0.queue == r.queue + 1 }, "\(name)")
                #expect(r.bytes.elementsEqual(carrier.bytes), "\(name) rx at \(r.countedEvent): \(r.bytes.count) bytes vs \(carrier.bytes.count)")
                #expect(carrier.chainEvent < r.chainEvent)
            }
            if name == "split" { #expect(tx.map(\.bytes) == [[UInt8](repeating: 0x5a, count: 64)]) }
            if name == "traffic" { #expect(tx.contains { $0.bytes == VirtioNetDriver<GuestRAM>.patternFrame(length: 1500) && $0.queue == 3 }) }
        }
    }

    /// pcapng written and read back: the section, one interface per NIC and
    /// direction with nanosecond timestamps, packets with their comments.
    @Test func pcapngRoundTrips() throws {
        var w = PcapngWriter()
        w.section(application: "vtrace test", comment: "a comment")
        #expect(w.interface(name: "nic0-tx", description: "tx") == 0)
        #expect(w.interface(name: "nic0-rx", description: "rx") == 1)
        for (i, length) in [0, 1, 3, 4, 61, 1514].enumerated() {
            let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 7 + i) }
            data.withUnsafeBytes { w.packet(interface: UInt32(i % 2), nanoseconds: 1_700_000_000_000_000_000 + UInt64(i), data: $0, comment: i == 2 ? nil : "event \(i)") }
        }
        #expect(w.bytes.count % 4 == 0)
        let f = try PcapngFile(w.bytes)
        #expect(f.application == "vtrace test" && f.comment == "a comment")
        #expect(f.interfaces == [PcapngFile.Interface(linkType: 1, snapLength: 0, name: "nic0-tx", description: "tx", timestampResolution: 9),
                                 PcapngFile.Interface(linkType: 1, snapLength: 0, name: "nic0-rx", description: "rx", timestampResolution: 9)])
        #expect(f.packets.map(\.data.count) == [0, 1, 3, 4, 61, 1514])
        #expect(f.packets.map(\.interface) == [0, 1, 0, 1, 0, 1])
        #expect(f.packets.map(\.comment) == ["event 0", "event 1", nil, "event 3", "event 4", "event 5"])
        #expect(f.packets[5].data == (0..<1514).map { UInt8(truncatingIfNeeded: $0 * 7 + 5) })
        #expect(f.packets[4].timestamp == 1_700_000_000_000_000_004)

        // Cut anywhere, or with a length field bent, the reader reports an offset
        // instead of trapping (a cut between blocks is a shorter valid file).
        for cut in 1..<w.bytes.count {
            if let g = try? PcapngFile(Array(w.bytes.prefix(cut))) { #expect(g.packets.count < 6 && cut % 4 == 0) }
        }
        #expect(throws: PcapngFile.FormatError.self) { try PcapngFile(Array(w.bytes.dropLast(2))) }
        var bent = w.bytes
        bent[4] = 0xff
        #expect(throws: PcapngFile.FormatError.self) { try PcapngFile(bent) }
    }
}
