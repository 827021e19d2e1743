@testable import VirtioCore
import GuestDriver
import Testing

/// Queue-level tests against virtio-queue 0.17 semantics (spec §2.6).
@Suite("Split virtqueue")
struct SplitQueueTests {
    let ram = try! GuestRAM(size: 1 << 20)
    let desc: UInt64 = 0x1000, avail: UInt64 = 0x2000, used: UInt64 = 0x3000

    func queue(size: UInt16 = 16) -> SplitQueue {
        var q = SplitQueue(maxSize: 256)
        q.setSize(size)
        q.setDescTable(low: UInt32(desc))
        q.setAvailRing(low: UInt32(avail))
        q.setUsedRing(low: UInt32(used))
        q.ready = true
        return q
    }

    var bus: DeviceBus<GuestRAM, EventLog> { DeviceBus(memory: ram, observer: EventLog(includeMemory: true)) }

    func put(_ index: UInt16, _ d: Descriptor, table: UInt64? = nil) {
        try! ram.write((table ?? desc) + 16 * UInt64(index), bytes: d.wireBytes)
    }

    func offer(_ heads: [UInt16]) {
        for (i, h) in heads.enumerated() { try! ram.store(h, at: avail + 4 + 2 * UInt64(i)) }
        try! ram.store(UInt16(heads.count), at: avail + 2)
    }

    @Test func newQueueMatchesVirtioQueueDefaults() {
        let q = SplitQueue(maxSize: 256)
        #expect(q.size == 256 && !q.ready && q.descTable == 0 && q.availRing == 0 && q.usedRing == 0)
        #expect(q.nextAvail == 0 && q.nextUsed == 0)
    }

    @Test func sizeMustBeNonZeroPowerOfTwoWithinMax() {
        var q = SplitQueue(maxSize: 256)
        for good in [1, 2, 4, 128, 256] as [UInt16] { let ok = q.setSize(good); #expect(ok); #expect(q.size == good) }
        for bad in [0, 3, 6, 255, 257, 512, 0x8000] as [UInt16] { let ok = q.setSize(bad); #expect(!ok); #expect(q.size == 256) }
    }

    @Test func popFailsWhenNotReadyOrAvailAddressZero() {
        var b = bus
        var q = queue()
        q.ready = false
        #expect(throws: QueueError.notReady) { _ = try q.pop(&b) }
        var q2 = SplitQueue(maxSize: 256)
        q2.ready = true
        #expect(throws: QueueError.notReady) { _ = try q2.pop(&b) }
    }

    @Test func availIndexMayBeAtMostSizeAhead() throws {
        var b = bus
        var q = queue(size: 4)
        try ram.store(UInt16(4), at: avail + 2)
        #expect(try q.pop(&b) == 0)  // 4 ahead: fine (head entries are 0)
        try ram.store(UInt16(6), at: avail + 2)  // 5 ahead of next_avail 1
        #expect(throws: QueueError.invalidAvailRingIndex(availIdx: 6, nextAvail: 1, size: 4)) { _ = try q.pop(&b) }
        #expect(q.nextAvail == 1)
        // Wrap-around arithmetic: next_avail 0xFFFF, idx 2 is 3 ahead.
        q.nextAvail = 0xFFFF
        try ram.store(UInt16(2), at: avail + 2)
        #expect(try q.pop(&b) != nil)
        #expect(q.nextAvail == 0)
    }

    @Test func popReadsHeadsInRingOrderAndStopsWhenCaughtUp() throws {
        var b = bus
        var q = queue(size: 4)
        offer([3, 1, 2])
        #expect(try q.pop(&b) == 3)
        #expect(try q.pop(&b) == 1)
        #expect(try q.pop(&b) == 2)
        #expect(try q.pop(&b) == nil)
        #expect(q.nextAvail == 3)
    }

    @Test func unreadableAvailIdxIsAMemoryError() {
        var b = bus
        var q = SplitQueue(maxSize: 256)
        q.setAvailRing(low: 0, high: 0x10)  // 0x10_0000_0000: unmapped
        q.ready = true
        #expect(throws: QueueError.memory(GuestMemoryError(address: 0x10_0000_0002, length: 2))) { _ = try q.pop(&b) }
    }

    @Test func walkFollowsNextAndStopsWithoutIt() {
        var b = bus
        let q = queue()
        put(0, Descriptor(addr: 0x8000, len: 10, flags: .next, next: 5))
        put(5, Descriptor(addr: 0x9000, len: 20, flags: [.next, .write], next: 2))
        put(2, Descriptor(addr: 0xA000, len: 30, flags: .write, next: 9))
        var out: [Descriptor] = []
        q.walkChain(head: 0, &b, into: &out)
        #expect(out.map(\.addr) == [0x8000, 0x9000, 0xA000])
        #expect(out.map(\.len) == [10, 20, 30])
    }

    @Test func walkStopsAtTtlOnLoops() {
        var b = bus
        let q = queue(size: 8)
        put(0, Descriptor(addr: 0x8000, len: 1, flags: .next, next: 1))
        put(1, Descriptor(addr: 0x8000, len: 1, flags: .next, next: 0))
        var out: [Descriptor] = []
        q.walkChain(head: 0, &b, into: &out)
        #expect(out.count == 8)
    }

    @Test func walkStopsAtOutOfRangeIndex() {
        var b = bus
        let q = queue(size: 4)
        put(0, Descriptor(addr: 0x8000, len: 1, flags: .next, next: 4))
        var out: [Descriptor] = []
        q.walkChain(head: 0, &b, into: &out)
        #expect(out.count == 1)
        q.walkChain(head: 4, &b, into: &out)  // head out of range: no descriptors
        #expect(out.isEmpty)
    }

    @Test func walkStopsBeforeLengthSumOverflowsU32() {
        var b = bus
        let q = queue()
        put(0, Descriptor(addr: 0x8000, len: 0xFFFF_FFF0, flags: .next, next: 1))
        put(1, Descriptor(addr: 0x8000, len: 0x0F, flags: .next, next: 2))
        put(2, Descriptor(addr: 0x8000, len: 1, flags: [], next: 0))
        var out: [Descriptor] = []
        q.walkChain(head: 0, &b, into: &out)
        #expect(out.map(\.len) == [0xFFFF_FFF0, 0x0F])  // the third would make 2^32
    }

    @Test func walkStopsAtUnreadableDescriptorTable() {
        var b = bus
        var q = queue()
        q.setDescTable(low: 0xFFF_FF00)  // unmapped
        var out: [Descriptor] = [Descriptor(addr: 1, len: 1)]
        q.walkChain(head: 0, &b, into: &out)
        #expect(out.isEmpty)
    }

    @Test func indirectTablesAreFollowedWithTheirOwnTtl() {
        var b = bus
        let q = queue(size: 4)
        let table: UInt64 = 0x5000
        put(0, Descriptor(addr: 0x8000, len: 12, flags: .next, next: 1))
        put(1, Descriptor(addr: table, len: 16 * 6, flags: .indirect))
        for i in 0..<6 as Range<UInt16> {
            put(i, Descriptor(addr: 0x9000 + UInt64(i), len: 1, flags: i < 5 ? .next : [], next: i + 1), table: table)
        }
        var out: [Descriptor] = []
        q.walkChain(head: 0, &b, into: &out)
        #expect(out.map(\.addr) == [0x8000] + (0..<6).map { 0x9000 + $0 })
    }

    @Test func malformedOrNestedIndirectEndsTheWalk() {
        var b = bus
        let q = queue(size: 4)
        let table: UInt64 = 0x5000
        var out: [Descriptor] = []
        put(0, Descriptor(addr: table, len: 17, flags: .indirect))  // not a multiple of 16
        q.walkChain(head: 0, &b, into: &out)
        #expect(out.isEmpty)
        put(0, Descriptor(addr: table, len: 32, flags: .indirect))
        put(0, Descriptor(addr: 0x9000, len: 1, flags: .next, next: 1), table: table)
        put(1, Descriptor(addr: table, len: 32, flags: .indirect), table: table)  // nested
        q.walkChain(head: 0, &b, into: &out)
        #expect(out.map(\.addr) == [0x9000])
        put(0, Descriptor(addr: table, len: 16 * 65536, flags: .indirect))  // 65,536 entries: too many
        q.walkChain(head: 0, &b, into: &out)
        #expect(out.isEmpty)
    }

    @Test func addUsedWritesElementAndIndex() throws {
        var b = bus
        var q = queue(size: 4)
        for i in 0..<6 as Range<UInt32> {
            try q.addUsed(&b, head: UInt16(i % 4), len: 100 + i)
        }
        #expect(q.nextUsed == 6)
        #expect(try ram.load(UInt16.self, at: used + 2) == 6)
        // Slot 1 holds the 6th element (index 5).
        #expect(try ram.load(UInt32.self, at: used + 4 + 8) == 1)
        #expect(try ram.load(UInt32.self, at: used + 8 + 8) == 105)
        #expect(try ram.load(UInt16.self, at: used) == 0)  // used.flags never written
    }

    @Test func addUsedRefusesHeadOutOfRangeAndUnmappedRing() {
        var b = bus
        var q = queue(size: 4)
        #expect(throws: QueueError.invalidDescriptorIndex(4)) { try q.addUsed(&b, head: 4, len: 0) }
        #expect(q.nextUsed == 0)
        q.setUsedRing(low: 0, high: 0x10)
        #expect(throws: QueueError.memory(GuestMemoryError(address: 0x10_0000_0004, length: 8))) {
            try q.addUsed(&b, head: 0, len: 0)
        }
        #expect(q.nextUsed == 0)
    }

    @Test func addUsedIndexStoreFailureStillAdvances() {
        // Used ring whose element lands in RAM but whose idx field does not:
        // the ring starts 4 bytes before a region.
        let ram = try! GuestRAM(regions: [MemoryRegion(base: 0x1000, size: 0x1000)])
        var b = DeviceBus(memory: ram, observer: NoObserver())
        var q = SplitQueue(maxSize: 256)
        q.setSize(4)
        q.setUsedRing(low: 0xFFC)
        #expect(throws: QueueError.memory(GuestMemoryError(address: 0xFFE, length: 2))) { try q.addUsed(&b, head: 1, len: 7) }
        #expect(q.nextUsed == 1)
        #expect(try! ram.load(UInt32.self, at: 0x1000) == 1)
    }
}
