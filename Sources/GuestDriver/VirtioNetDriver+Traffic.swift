//! The model driver's traffic: RX buffers posted, TX frames sent, control
//! commands; and the raw and hostile operations tests misbehave with.

import VirtioCore

extension VirtioNetDriver {
    // MARK: Traffic

    /// The TX frame the driver sends by default: byte i is `i & 0xff`.
    public static func patternFrame(length: Int, fill: UInt8? = nil) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: length) { buffer, count in
            writePattern(UnsafeMutableRawBufferPointer(buffer), fill: fill)
            count = length
        }
    }

    /// Splits `total` bytes over `parts` pieces: ⌊total/parts⌋ each, the first
    /// `total mod parts` one more.
    public static func split(_ total: Int, into parts: Int) -> [Int] {
        (0..<parts).map { piece($0, of: total, into: parts) }
    }

    /// Piece `i` of ``split(_:into:)``, without the array.
    static func piece(_ i: Int, of total: Int, into parts: Int) -> Int {
        total / parts + (i < total % parts ? 1 : 0)
    }

    /// Posts `count` RX chains of `length` bytes, each over `descriptors`
    /// device-writable descriptors, on RX queue of `pair`. No kick.
    public mutating func postRx(pair: Int = 0, count: Int = 1, length: Int = 2048, descriptors: Int = 1) throws(DriverError) {
        let q = Self.rxQueue(pair: pair)
        try ensureFree(queue: q, count * descriptors)
        for _ in 0..<count {
            try addBufferChain(queue: q, .zeros, length: length, descriptors: descriptors, writable: true)
        }
    }

    /// Sends `count` TX chains: a 12-byte zero header then `frame` (default
    /// the pattern frame of `length` bytes), split over `descriptors`
    /// device-readable descriptors; then one kick unless `kick` is false.
    @discardableResult
    public mutating func sendTx<D: MMIODevice>(
        _ device: inout D, pair: Int = 0, count: Int = 1, length: Int = 64, descriptors: Int = 1,
        fill: UInt8? = nil, frame: [UInt8]? = nil, kick: Bool = true
    ) throws(DriverError) -> InterruptSignals {
        let q = Self.txQueue(pair: pair)
        let contents = BufferContents.txFrame(frame: frame, length: length, fill: fill)
        let total = NetLayout.headerLength + (frame?.count ?? length)
        try ensureFree(queue: q, count * descriptors)
        for _ in 0..<count {
            try addBufferChain(queue: q, contents, length: total, descriptors: descriptors, writable: false)
        }
        return kick ? self.kick(&device, queue: q) : []
    }

    /// Sends a VQ_PAIRS_SET control command: one readable 4-byte descriptor
    /// {class 4, cmd 0, pairs le16} and one writable 1-byte status descriptor
    /// (preset to 0xff so a test sees whether the device wrote it).
    @discardableResult
    public mutating func controlSetPairs<D: MMIODevice>(
        _ device: inout D, pairs requested: UInt16, kick: Bool = true
    ) throws(DriverError) -> InterruptSignals {
        try controlCommand(&device, class: NetLayout.ctrlClassMQ, command: NetLayout.ctrlMQVQPairsSet,
                           data: [UInt8(requested & 0xff), UInt8(requested >> 8)], kick: kick)
    }

    /// Sends any control command: class, command, data in one readable
    /// descriptor, then a writable status byte.
    @discardableResult
    public mutating func controlCommand<D: MMIODevice>(
        _ device: inout D, class cls: UInt8, command: UInt8, data: [UInt8], kick: Bool = true
    ) throws(DriverError) -> InterruptSignals {
        guard let q = controlQueue else { throw .queueNotSetUp(2 * max(pairs, 1)) }
        let body = [cls, command] + data
        guard let cmdAddr = buffers.allocate(UInt64(body.count)) else { throw .outOfBufferSpace(wanted: UInt64(body.count)) }
        guard let statusAddr = buffers.allocate(1) else { throw .outOfBufferSpace(wanted: 1) }
        try write(cmdAddr, body)
        try write(statusAddr, [0xff])
        try addChain(
            queue: q,
            [RawDescriptor(addr: cmdAddr, len: UInt32(body.count)), RawDescriptor(addr: statusAddr, len: 1, writable: true)],
            allocations: [(cmdAddr, UInt64(body.count)), (statusAddr, 1)])
        return kick ? self.kick(&device, queue: q) : []
    }

    /// The status byte of the most recent control command still in guest
    /// memory, read from the used log's last record.
    public func lastControlStatus() -> UInt8? {
        guard let q = controlQueue, let rec = queues[q]?.usedLog.last, rec.buffers.count >= 2,
              let b = try? memory.bytes(at: rec.buffers[1].addr, count: 1) else { return nil }
        return b[0]
    }

    // MARK: Raw and hostile operations

    /// Adds a raw chain to `queue`: the descriptors go into free table slots,
    /// linked with NEXT in order; the head goes into the avail ring and
    /// avail.idx advances by one. Addresses are used as given (they may be
    /// unmapped, directions wrong, flags odd): this is how tests misbehave.
    @discardableResult
    public mutating func addRawChain<D: MMIODevice>(
        _ device: inout D, queue: Int, _ descriptors: [RawDescriptor], kick: Bool = true
    ) throws(DriverError) -> InterruptSignals {
        try addChain(queue: queue, descriptors, allocations: [])
        return kick ? self.kick(&device, queue: queue) : []
    }

    /// Overwrites `queue`'s avail.idx in guest memory with `value` (hostile).
    /// The driver's own shadow index is left alone.
    public func setAvailIdx(queue: Int, _ value: UInt16) throws(DriverError) {
        guard let dq = queues[queue] else { throw .queueNotSetUp(queue) }
        try store(value, at: dq.avail + 2)
    }

    /// Writes `value` into `queue`'s avail ring entry `slot` (hostile).
    public func setAvailEntry(queue: Int, slot: UInt16, head: UInt16) throws(DriverError) {
        guard let dq = queues[queue] else { throw .queueNotSetUp(queue) }
        try store(head, at: dq.avail + 4 + 2 * UInt64(slot % dq.size))
    }

    /// Writes a descriptor table entry directly (hostile).
    public func setDescriptor(queue: Int, index: UInt16, _ d: Descriptor) throws(DriverError) {
        guard let dq = queues[queue] else { throw .queueNotSetUp(queue) }
        try write(d, at: dq.desc + UInt64(index) * 16)
    }
}
