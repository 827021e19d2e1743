//! A split virtqueue's device-side state and operations, with rust-vmm
//! `virtio-queue` 0.17 semantics (spec §2.6).

/// The device side of one split virtqueue: sizes, ring addresses and indices.
///
/// A plain value: it is compared, snapshotted into trace checkpoints and
/// restored. It never interprets buffers; the device does.
///
/// Guest-driven setters never fail loudly: an invalid value is ignored and the
/// old one kept (they return false so a caller can note it), as virtio-queue's
/// `set_*` do.
public struct SplitQueue: Hashable, Sendable, Codable {
    /// Largest size the device accepts (QueueNumMax).
    public let maxSize: UInt16
    /// Current size (number of ring entries), a power of two in 1...maxSize.
    public private(set) var size: UInt16
    /// QueueReady.
    public var ready: Bool
    /// Guest-physical address of the descriptor table (16-byte aligned).
    public private(set) var descTable: UInt64
    /// Guest-physical address of the avail ring (2-byte aligned).
    public private(set) var availRing: UInt64
    /// Guest-physical address of the used ring (4-byte aligned).
    public private(set) var usedRing: UInt64
    /// Free-running index of the next avail entry to pop (wraps at 2^16).
    public var nextAvail: UInt16
    /// Free-running index of the next used entry to publish (wraps at 2^16).
    public var nextUsed: UInt16

    /// A queue as virtio-queue's `Queue::new(maxSize)` makes it: size = maxSize, not ready, addresses 0.
    public init(maxSize: UInt16) {
        self.maxSize = maxSize
        size = maxSize
        ready = false
        descTable = 0
        availRing = 0
        usedRing = 0
        nextAvail = 0
        nextUsed = 0
    }

    /// Back to the state `init(maxSize:)` makes (spec §2.6 "reset").
    public mutating func reset() {
        self = SplitQueue(maxSize: maxSize)
    }

    /// Sets the size if it is non-zero, a power of two and <= maxSize; otherwise keeps it.
    @discardableResult
    public mutating func setSize(_ newSize: UInt16) -> Bool {
        guard newSize != 0, newSize <= maxSize, newSize & (newSize &- 1) == 0 else { return false }
        size = newSize
        return true
    }

    /// Replaces the low and/or high half of `address`, keeping the merged value
    /// only if it is `alignment`-aligned.
    static func merge(_ address: inout UInt64, low: UInt32?, high: UInt32?, alignment: UInt64) -> Bool {
        let lo = UInt64(low ?? UInt32(truncatingIfNeeded: address))
        let hi = UInt64(high ?? UInt32(truncatingIfNeeded: address >> 32))
        let merged = hi << 32 | lo
        guard merged & (alignment - 1) == 0 else { return false }
        address = merged
        return true
    }

    /// Sets half of the descriptor table address (kept unchanged if misaligned).
    @discardableResult
    public mutating func setDescTable(low: UInt32? = nil, high: UInt32? = nil) -> Bool {
        Self.merge(&descTable, low: low, high: high, alignment: RingLayout.descAlignment)
    }

    /// Sets half of the avail ring address (kept unchanged if misaligned).
    @discardableResult
    public mutating func setAvailRing(low: UInt32? = nil, high: UInt32? = nil) -> Bool {
        Self.merge(&availRing, low: low, high: high, alignment: RingLayout.availAlignment)
    }

    /// Sets half of the used ring address (kept unchanged if misaligned).
    @discardableResult
    public mutating func setUsedRing(low: UInt32? = nil, high: UInt32? = nil) -> Bool {
        Self.merge(&usedRing, low: low, high: high, alignment: RingLayout.usedAlignment)
    }
}

extension SplitQueue {
    /// Pops the next available chain's head index: virtio-queue's `iter()`
    /// followed by one `next()`.
    ///
    /// - Returns: the head index, or nil when nothing is available (including
    ///   when the head entry itself cannot be read: then next_avail does not move).
    /// - Throws: ``QueueError`` when `iter()` fails: not ready, avail address 0,
    ///   unreadable avail.idx, or avail.idx more than `size` ahead. The device
    ///   poisons the queue on any of these (spec §3.6).
    mutating func pop<M, O>(_ bus: inout DeviceBus<M, O>) throws(QueueError) -> UInt16? {
        guard ready, availRing != 0 else { throw .notReady }
        let (idxAddress, overflow) = availRing.addingReportingOverflow(2)
        if overflow { throw .addressOverflow }
        guard let availIdx = bus.load(UInt16.self, at: idxAddress) else {
            throw .memory(GuestMemoryError(address: idxAddress, length: 2))
        }
        // The guest may only be `size` entries ahead of us: anything more is a
        // corrupt (or hostile) index that would make us re-read stale entries.
        if availIdx &- nextAvail > size {
            throw .invalidAvailRingIndex(availIdx: availIdx, nextAvail: nextAvail, size: size)
        }
        if availIdx == nextAvail { return nil }
        // Cannot overflow a UInt64: at most 4 + 2 * 32767 added to an address
        // checked below.
        let offset = RingLayout.availHeaderSize + UInt64(nextAvail % size) * RingLayout.availElementSize
        let (entry, entryOverflow) = availRing.addingReportingOverflow(offset)
        if entryOverflow { return nil }
        guard let head = bus.load(UInt16.self, at: entry) else { return nil }
        nextAvail &+= 1
        return head
    }

    /// Walks the chain starting at `head` into `out` (cleared first), with the
    /// descriptor-chain rules of virtio-queue's `DescriptorChain`:
    /// - the walk ends silently at an index >= the table size, at an unreadable
    ///   descriptor, after a descriptor without NEXT, after `size` descriptors
    ///   (the TTL that stops loops), or when the running byte sum would overflow
    ///   a UInt32 (a chain may not describe 4 GiB or more);
    /// - an INDIRECT descriptor switches to its table (len a multiple
    ///   of 16, at most 65,535 entries, TTL reset to the table length); an
    ///   INDIRECT inside an indirect table, or a malformed table, ends the walk.
    /// A head >= size yields no descriptors.
    func walkChain<M, O>(head: UInt16, _ bus: inout DeviceBus<M, O>, into out: inout [Descriptor]) {
        // removeAll(keepingCapacity:) goes through a generic replaceSubrange;
        // dropping the (trivial) elements one by one costs a few instructions.
        while !out.isEmpty { out.removeLast() }
        var table = descTable
        var tableSize = size
        var index = head
        var ttl = size
        var indirect = false
        var yielded: UInt32 = 0
        var wire = (UInt64(0), UInt64(0))
        while ttl > 0, index < tableSize {
            // Cannot overflow before the add: index < 65536, times 16.
            let (address, overflow) = table.addingReportingOverflow(UInt64(index) * Descriptor.size)
            if overflow { return }
            if !bus.read(address, into: &wire) { return }
            let desc = withUnsafeBytes(of: &wire) { Descriptor(wire: $0) }
            if desc.flags.contains(.indirect) {
                // virtio v1.2 §2.7.5.3.1: no nested indirect tables.
                if indirect { return }
                if desc.len & UInt32(Descriptor.size - 1) != 0 { return }
                let entries = desc.len / UInt32(Descriptor.size)
                if entries > UInt32(UInt16.max) { return }
                table = desc.addr
                tableSize = UInt16(entries)
                index = 0
                ttl = tableSize
                indirect = true
                continue
            }
            let (sum, lenOverflow) = yielded.addingReportingOverflow(desc.len)
            if lenOverflow { return }
            yielded = sum
            out.append(desc)
            if desc.flags.contains(.next) {
                index = desc.next
                ttl -= 1
            } else {
                ttl = 0
            }
        }
    }

    /// Publishes used element {id: head, len} and stores the new used.idx.
    ///
    /// - Throws: ``QueueError/invalidDescriptorIndex(_:)`` for head >= size;
    ///   a memory error if the element cannot be written (next_used unchanged),
    ///   or if used.idx cannot be stored (next_used has then advanced).
    mutating func addUsed<M, O>(_ bus: inout DeviceBus<M, O>, head: UInt16, len: UInt32) throws(QueueError) {
        guard head < size else { throw .invalidDescriptorIndex(head) }
        // Cannot overflow a UInt64 before the checked add: 4 + 8 * 32767.
        let offset = RingLayout.usedHeaderSize + UInt64(nextUsed % size) * RingLayout.usedElementSize
        let (address, overflow) = usedRing.addingReportingOverflow(offset)
        if overflow { throw .addressOverflow }
        let element = (UInt32(head).littleEndian, len.littleEndian)
        if !bus.write(address, from: element) { throw .memory(GuestMemoryError(address: address, length: 8)) }
        nextUsed &+= 1
        let (idxAddress, idxOverflow) = usedRing.addingReportingOverflow(2)
        if idxOverflow { throw .addressOverflow }
        if !bus.store(nextUsed, at: idxAddress) {
            throw .memory(GuestMemoryError(address: idxAddress, length: 2))
        }
    }
}

extension SplitQueue {
    /// Prefetch hints for the `count` chains that follow the next `skip`
    /// available ones: their head descriptors, then the first bytes of each
    /// head's buffer. A driver on another CPU has just written them, so each
    /// first touch would otherwise wait for its cache line alone, one chain
    /// after the other.
    ///
    /// Reads only through ``GuestMemory/peek(_:into:)``: it changes nothing
    /// the device does or records, and with a memory that cannot peek (a
    /// replay's, a test's) it returns after one call.
    func prefetch<M: GuestMemory>(_ memory: M, skip: UInt16, count: UInt16) {
        guard ready, availRing != 0 else { return }
        var word: UInt16 = 0
        guard withUnsafeMutableBytes(of: &word, { memory.peek(availRing &+ 2, into: $0) }) else { return }
        let pending = UInt16(littleEndian: word) &- nextAvail
        guard pending <= size, pending > skip else { return }
        let n = Swift.min(pending - skip, count)
        let first = nextAvail &+ skip
        // Two passes, so the descriptor fetches overlap instead of each
        // waiting for the one before.
        for pass in 0..<2 {
            for i in 0..<n {
                let slot = UInt64((first &+ i) % size)
                let entry = availRing &+ RingLayout.availHeaderSize &+ slot &* RingLayout.availElementSize
                guard withUnsafeMutableBytes(of: &word, { memory.peek(entry, into: $0) }) else { return }
                let head = UInt16(littleEndian: word)
                guard head < size else { continue }
                let address = descTable &+ UInt64(head) &* Descriptor.size
                if pass == 0 {
                    memory.prefetch(address, length: Int(Descriptor.size))
                    continue
                }
                var wire = (UInt64(0), UInt64(0))
                guard withUnsafeMutableBytes(of: &wire, { memory.peek(address, into: $0) }) else { continue }
                let desc = withUnsafeBytes(of: &wire) { Descriptor(wire: $0) }
                memory.prefetch(desc.addr, length: Int(Swift.min(desc.len, 256)))
            }
        }
    }
}
