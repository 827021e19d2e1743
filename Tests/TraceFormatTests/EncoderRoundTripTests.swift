import GuestDriver
import Testing
@testable import TraceFormat

/// Seeded random runs of device-like accesses (ring indices that repeat or
/// move on by one, descriptors read and then popped as chains, used elements
/// written and published, payloads that recur, failed and truncated
/// accesses, counters) encoded as formats 1.7, 1.6, 1.5 and 1.4: each decodes to
/// exactly the events format 1.3 (no repeats, no codes) decodes to. The
/// structured tests pin each record's bytes; this one looks for an encoder
/// state that drifts from a decoder's across many records.
@Suite("Encoder round trips")
struct EncoderRoundTripTests {
    @Test(arguments: 0..<6)
    func randomAccessesDecodeToTheSameEventsInEveryFormat(seed: UInt64) throws {
        var rng = SplitMix64(seed: 0xE7C0_DE00 &+ seed)
        var formats = [AddressCodeTests.encoder(), AddressCodeTests.encoder(recalls: false), AddressCodeTests.encoder(predicts: false),
                       AddressCodeTests.encoder(cursors: false)]
        var plain = AddressCodeTests.encoder(predicts: false, repeats: false)
        func apply(_ body: (inout ChunkEncoder) -> Void) {
            for i in formats.indices { body(&formats[i]) }
            body(&plain)
        }
        func roll(_ n: UInt64) -> Int { Int(rng.next() % n) }
        var last: [UInt64: [UInt8]] = [:]   // the bytes last read or written at an address
        var payloads: [[UInt8]] = [(0..<64).map { UInt8($0) }]
        var descriptors: [(addr: UInt64, len: UInt32, flags: UInt16, next: UInt16)] = []
        var lastHead: UInt16 = 0
        var usedElement: (UInt32, UInt32) = (0, 0)
        for _ in 0..<2_500 {
            switch roll(12) {
            case 0, 1, 2:   // a ring index or slot: the same, one more, or anything
                let address = 0x1000 + 2 * UInt64(roll(40))
                var value = last[address].map { UInt16($0[0]) | UInt16($0[1]) << 8 } ?? UInt16(truncatingIfNeeded: rng.next())
                switch roll(4) {
                case 0: value &+= 1
                case 1: value = UInt16(truncatingIfNeeded: rng.next())
                default: break
                }
                let bytes = [UInt8(truncatingIfNeeded: value), UInt8(value >> 8)]
                let ok = roll(20) != 0, write = roll(3) == 0
                bytes.withUnsafeBytes { b in
                    apply { write ? $0.memoryWrite(nic: 0, address: address, bytes: b, ok: ok) : $0.memoryRead(nic: 0, address: address, bytes: b, ok: ok) }
                }
                if ok { last[address] = bytes; if !write { lastHead = value } }
            case 3, 4:   // descriptors read, then popped as a chain (at the head just read, or not)
                let count = 1 + roll(5)   // up to one more than the recent reads hold
                descriptors = (0..<count).map { _ in (0x10_0000 + 0x1000 * UInt64(roll(16)), UInt32(16 + roll(3) * 60), UInt16(roll(2)), UInt16(roll(4))) }
                let table = 0x2000 + 16 * UInt64(roll(8))
                for (j, d) in descriptors.enumerated() {
                    let bytes = RepeatRecordTests.descriptorBytes(d.addr, d.len, d.flags, d.next)
                    bytes.withUnsafeBytes { b in apply { $0.memoryRead(nic: 0, address: table + 16 * UInt64(j), bytes: b, ok: true) } }
                    last[table + 16 * UInt64(j)] = bytes
                }
                let head = roll(2) == 0 ? lastHead : UInt16(roll(256)), queue = UInt16(roll(2))
                let ds = descriptors
                apply { $0.chain(nic: 0, queue: queue, head: head, count: count) { ds[$0] } }
            case 5:   // a payload in one of the chain's buffers: one seen before, or new
                guard !descriptors.isEmpty else { continue }
                let d = descriptors[roll(UInt64(descriptors.count))]
                var bytes = payloads[roll(UInt64(payloads.count))]
                if roll(3) == 0 {
                    bytes = (0..<(17 + roll(80))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                    payloads.append(bytes)
                }
                let address = d.addr + UInt64(roll(2) * 12)
                bytes.withUnsafeBytes { b in apply { $0.memoryRead(nic: 0, address: address, bytes: b, ok: true) } }
            case 6:   // a used element and the used index
                let address = 0x3000 + 8 * UInt64(roll(8))
                usedElement = roll(2) == 0 ? usedElement : (UInt32(roll(256)), UInt32(roll(2000)))
                var bytes = [UInt8](repeating: 0, count: 8)
                bytes.withUnsafeMutableBytes {
                    $0.storeBytes(of: usedElement.0.littleEndian, as: UInt32.self)
                    $0.storeBytes(of: usedElement.1.littleEndian, toByteOffset: 4, as: UInt32.self)
                }
                bytes.withUnsafeBytes { b in apply { $0.memoryWrite(nic: 0, address: address, bytes: b, ok: true) } }
            case 7:
                let (id, len) = roll(3) == 0 ? (UInt32(roll(256)), UInt32(roll(9))) : usedElement
                apply { $0.used(nic: 0, queue: 1, id: id, len: len) }
            case 8:
                let index = roll(16), value = UInt64(roll(1 << 20))
                apply { $0.counter(nic: 0, index: index, value: value) }
            case 9:   // odd sizes, anywhere
                let bytes = (0..<roll(20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                let address = 0x4000 + UInt64(roll(64)), ok = roll(4) != 0, write = roll(2) == 0
                bytes.withUnsafeBytes { b in
                    apply { write ? $0.memoryWrite(nic: 0, address: address, bytes: b, ok: ok) : $0.memoryRead(nic: 0, address: address, bytes: b, ok: ok) }
                }
            case 10:  // a payload kept in part (snaplen)
                let bytes = payloads[roll(UInt64(payloads.count))]
                let kept = roll(UInt64(bytes.count))
                bytes.withUnsafeBytes { b in
                    let part = UnsafeRawBufferPointer(rebasing: b[0..<kept])
                    apply { $0.append(.memoryRead(address: 0x20_0000, length: bytes.count, ok: true, bytes: part), nic: 0) }
                }
            default:  // a write that repeats a read's bytes
                let bytes = payloads[roll(UInt64(payloads.count))]
                let address = 0x30_0000 + UInt64(roll(4)) * 0x1000
                bytes.withUnsafeBytes { b in apply { $0.memoryWrite(nic: 0, address: address, bytes: b, ok: true) } }
            }
        }
        #expect(plain.eventCount > 2_500 && formats.allSatisfy { $0.eventCount == plain.eventCount })
        try AddressCodeTests.expectSameEvents(formats[0].content, plain.content)
        try AddressCodeTests.expectSameEvents(formats[1].content, plain.content, recalls: false)
        try AddressCodeTests.expectSameEvents(formats[2].content, plain.content, predicts: false, recalls: false)
        try AddressCodeTests.expectSameEvents(formats[3].content, plain.content, cursors: false)
        #expect(formats[0].size < formats[2].size && formats[2].size < plain.size)
    }
}
