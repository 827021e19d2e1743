//! A model guest virtio-net driver: it lays out real rings in guest memory and
//! drives the device over MMIO exactly as a guest driver does.

import VirtioCore

/// One descriptor of a raw chain: a guest address, a length, a direction.
public struct RawDescriptor: Hashable, Sendable {
    public var addr: UInt64
    public var len: UInt32
    /// Device-writable (VIRTQ_DESC_F_WRITE).
    public var writable: Bool
    /// Extra flag bits to set (e.g. INDIRECT), beyond NEXT and WRITE.
    public var extraFlags: Descriptor.Flags

    public init(addr: UInt64, len: UInt32, writable: Bool = false, extraFlags: Descriptor.Flags = []) {
        self.addr = addr
        self.len = len
        self.writable = writable
        self.extraFlags = extraFlags
    }
}

/// A used element the driver reclaimed, with the buffers of its chain.
public struct UsedRecord: Hashable, Sendable {
    public var id: UInt32
    public var len: UInt32
    /// (address, length) of the chain's descriptors, in order; empty if the id
    /// named no chain the driver had in flight.
    public var buffers: [RawDescriptor]
}

/// Ways the driver can misbehave during initialisation, on request.
public struct DriverQuirks: Hashable, Sendable {
    /// Per queue index: program this descriptor-table address instead of the real one.
    public var descTable: [Int: UInt64] = [:]
    /// Per queue index: program this avail-ring address instead of the real one.
    public var availRing: [Int: UInt64] = [:]
    /// Per queue index: program this used-ring address instead of the real one
    /// (the driver then also reads used entries from there).
    public var usedRing: [Int: UInt64] = [:]
    /// Queues left not ready (QueueReady never written).
    public var leaveNotReady: Set<Int> = []

    public init() {}
}

/// Driver-side state of one virtqueue.
public struct DriverQueue: Sendable {
    public let index: Int
    public let size: UInt16
    public let desc: UInt64
    public let avail: UInt64
    public let used: UInt64
    /// The driver's avail.idx (what it has published).
    public internal(set) var availIdx: UInt16 = 0
    /// used.idx the driver has consumed up to.
    public internal(set) var lastUsed: UInt16 = 0
    /// Every used element reclaimed since the queue was set up, in order.
    public internal(set) var usedLog: [UsedRecord] = []
    var freeDescriptors: [UInt16]
    /// head → (descriptor indices, buffers the driver allocated, buffers as posted).
    var inFlight: [UInt16: (descs: [UInt16], allocations: [(UInt64, UInt64)], buffers: [RawDescriptor])] = [:]

    init(index: Int, size: UInt16, desc: UInt64, avail: UInt64, used: UInt64) {
        self.index = index
        self.size = size
        self.desc = desc
        self.avail = avail
        self.used = used
        freeDescriptors = (0..<size).reversed().map { $0 }
    }

    /// Descriptors not in flight.
    public var freeCount: Int { freeDescriptors.count }
    /// Chains handed to the device and not yet seen used.
    public var inFlightCount: Int { inFlight.count }
    /// The buffers of the in-flight chain with head `head`, as posted.
    public func inFlightBuffers(head: UInt16) -> [RawDescriptor]? { inFlight[head]?.buffers }
}

/// The model driver for one NIC.
///
/// It keeps rings and buffers inside `[areaBase, areaBase + 0x700000)`,
/// by default `0x100000 + nic × 0x800000`, and like a real driver reclaims
/// used chains before allocating new ones, so a small queue carries any
/// amount of traffic. Every register access goes through the device's MMIO
/// interface; every ring access through guest memory.
public struct VirtioNetDriver<Memory: GuestMemory> {
    /// Size of a NIC's driver area.
    public static var areaSize: UInt64 { 0x70_0000 }
    /// Guest-physical start of NIC `nic`'s driver area.
    public static func areaBase(nic: Int) -> UInt64 { 0x10_0000 + UInt64(nic) * 0x80_0000 }

    public let memory: Memory
    public let areaBase: UInt64
    /// Features the device offered at the last init.
    public private(set) var offeredFeatures: UInt64 = 0
    /// Features the driver wrote at the last init.
    public private(set) var negotiatedFeatures: UInt64 = 0
    /// Status read back after FEATURES_OK at the last init.
    public private(set) var statusAfterFeatures: UInt8 = 0
    /// Queues set up at the last init, by queue index.
    public private(set) var queues: [Int: DriverQueue] = [:]
    /// Queue pairs the driver set up (max_virtqueue_pairs when MQ, else 1).
    public private(set) var pairs: Int = 0
    var buffers: BufferAllocator
    /// Misbehaviour applied at the next ``initialize(_:features:queueSize:)``.
    public var quirks = DriverQuirks()

    public init(memory: Memory, nic: Int = 0) {
        self.init(memory: memory, areaBase: Self.areaBase(nic: nic))
    }

    public init(memory: Memory, areaBase: UInt64) {
        self.memory = memory
        self.areaBase = areaBase
        buffers = BufferAllocator(start: areaBase, end: areaBase + Self.areaSize)
    }

    /// The features a driver asks for by default: the offered ones among VERSION_1, MAC, MQ, CTRL_VQ.
    public static var defaultWanted: UInt64 { NetFeature.version1 | NetFeature.mac | NetFeature.mq | NetFeature.ctrlVQ }

    // MARK: Initialisation (virtio v1.2 §3.1.1)

    /// Resets the device and walks the initialisation sequence: ACKNOWLEDGE,
    /// DRIVER, read offered features, write `features` (default: offered ∩
    /// ``defaultWanted``), FEATURES_OK, read status back. If the device did not
    /// keep FEATURES_OK it stops there and returns false. Otherwise it sets up
    /// every queue the features imply (RX/TX of every pair, the control queue
    /// with CTRL_VQ) at `queueSize`, ready, and sets DRIVER_OK (unless
    /// `driverOK` is false).
    @discardableResult
    public mutating func initialize<D: MMIODevice>(
        _ device: inout D, features: UInt64? = nil, queueSize: UInt16 = 256, driverOK: Bool = true
    ) throws(DriverError) -> Bool {
        guard queueSize != 0, queueSize <= 32768, queueSize & (queueSize - 1) == 0 else {
            throw .badQueueSize(queueSize)
        }
        queues = [:]
        pairs = 0
        buffers = BufferAllocator(start: areaBase, end: areaBase + Self.areaSize)
        device.write(.status, 0)
        device.write(.status, UInt32(DeviceStatus.acknowledge.rawValue))
        device.write(.status, UInt32(DeviceStatus([.acknowledge, .driver]).rawValue))
        device.write(.deviceFeaturesSel, 0)
        var offered = UInt64(device.read(.deviceFeatures))
        device.write(.deviceFeaturesSel, 1)
        offered |= UInt64(device.read(.deviceFeatures)) << 32
        offeredFeatures = offered
        let wanted = features ?? (offered & Self.defaultWanted)
        negotiatedFeatures = wanted
        device.write(.driverFeaturesSel, 0)
        device.write(.driverFeatures, UInt32(truncatingIfNeeded: wanted))
        device.write(.driverFeaturesSel, 1)
        device.write(.driverFeatures, UInt32(truncatingIfNeeded: wanted >> 32))
        device.write(.status, UInt32(DeviceStatus([.acknowledge, .driver, .featuresOK]).rawValue))
        statusAfterFeatures = UInt8(truncatingIfNeeded: device.read(.status))
        guard DeviceStatus(rawValue: statusAfterFeatures).contains(.featuresOK) else { return false }

        var pairCount = 1
        if wanted & NetFeature.mq != 0 {
            // max_virtqueue_pairs at config offset 8.
            let lo = device.read(offset: MMIOLayout.configOffset + 8, width: 2)
            pairCount = max(1, Int(lo))
        }
        pairs = pairCount
        var indices = Array(0..<(2 * pairCount))
        if wanted & NetFeature.ctrlVQ != 0 { indices.append(2 * pairCount) }

        // Rings first, each queue in its own page-aligned slot.
        let descBytes = RingLayout.descTableBytes(size: queueSize)
        let availOffset = descBytes
        let usedOffset = (availOffset + RingLayout.availRingBytes(size: queueSize) + 3) / 4 * 4
        let stride = (usedOffset + RingLayout.usedRingBytes(size: queueSize) + 4095) / 4096 * 4096
        guard let ringsStart = buffers.allocate(stride * UInt64(indices.count)) else {
            throw .ringsDoNotFit(queues: indices.count, queueSize: queueSize)
        }
        // Zero the rings as a driver allocating fresh pages would.
        try fill(ringsStart, Int(stride) * indices.count, 0)
        for (slot, q) in indices.enumerated() {
            let base = ringsStart + UInt64(slot) * stride
            let dq = DriverQueue(
                index: q, size: queueSize, desc: quirks.descTable[q] ?? base,
                avail: quirks.availRing[q] ?? base + availOffset, used: quirks.usedRing[q] ?? base + usedOffset)
            device.write(.queueSel, UInt32(q))
            _ = device.read(.queueNumMax)
            device.write(.queueNum, UInt32(queueSize))
            device.write(.queueDescLow, UInt32(truncatingIfNeeded: dq.desc))
            device.write(.queueDescHigh, UInt32(truncatingIfNeeded: dq.desc >> 32))
            device.write(.queueDriverLow, UInt32(truncatingIfNeeded: dq.avail))
            device.write(.queueDriverHigh, UInt32(truncatingIfNeeded: dq.avail >> 32))
            device.write(.queueDeviceLow, UInt32(truncatingIfNeeded: dq.used))
            device.write(.queueDeviceHigh, UInt32(truncatingIfNeeded: dq.used >> 32))
            if !quirks.leaveNotReady.contains(q) { device.write(.queueReady, 1) }
            queues[q] = dq
        }
        if driverOK { setDriverOK(&device) }
        return true
    }

    /// Sets DRIVER_OK (the last step of initialisation; separate so a test
    /// can act before it).
    public func setDriverOK<D: MMIODevice>(_ device: inout D) {
        device.write(.status, UInt32(DeviceStatus([.acknowledge, .driver, .featuresOK, .driverOK]).rawValue))
    }

    /// Writes 0 to Status; the driver forgets its queues.
    public mutating func reset<D: MMIODevice>(_ device: inout D) {
        device.write(.status, 0)
        queues = [:]
        pairs = 0
        buffers = BufferAllocator(start: areaBase, end: areaBase + Self.areaSize)
    }

    /// Kicks queue `queue` (QueueNotify).
    @discardableResult
    public func kick<D: MMIODevice>(_ device: inout D, queue: Int) -> InterruptSignals {
        device.write(.queueNotify, UInt32(truncatingIfNeeded: queue))
    }

    /// Reads InterruptStatus and acknowledges it (or `value`); returns what was read.
    @discardableResult
    public func acknowledgeInterrupts<D: MMIODevice>(_ device: inout D, value: UInt32? = nil) -> UInt32 {
        let status = device.read(.interruptStatus)
        device.write(.interruptACK, value ?? status)
        return status
    }

    // MARK: Queue indices

    /// Index of pair `pair`'s RX queue.
    public static func rxQueue(pair: Int) -> Int { 2 * pair }
    /// Index of pair `pair`'s TX queue.
    public static func txQueue(pair: Int) -> Int { 2 * pair + 1 }
    /// Index of the control queue, if set up.
    public var controlQueue: Int? { negotiatedFeatures & NetFeature.ctrlVQ != 0 && pairs > 0 ? 2 * pairs : nil }

    // MARK: Traffic

    /// The TX frame the driver sends by default: byte i is `i & 0xff`.
    public static func patternFrame(length: Int, fill: UInt8? = nil) -> [UInt8] {
        (0..<length).map { fill ?? UInt8(truncatingIfNeeded: $0) }
    }

    /// Splits `total` bytes over `parts` pieces: ⌊total/parts⌋ each, the first
    /// `total mod parts` one more.
    public static func split(_ total: Int, into parts: Int) -> [Int] {
        (0..<parts).map { total / parts + ($0 < total % parts ? 1 : 0) }
    }

    /// Posts `count` RX chains of `length` bytes, each over `descriptors`
    /// device-writable descriptors, on RX queue of `pair`. No kick.
    public mutating func postRx(pair: Int = 0, count: Int = 1, length: Int = 2048, descriptors: Int = 1) throws(DriverError) {
        let q = Self.rxQueue(pair: pair)
        try ensureFree(queue: q, count * descriptors)
        for _ in 0..<count {
            try addBufferChain(queue: q, bytes: nil, length: length, descriptors: descriptors, writable: true)
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
        let payload = frame ?? Self.patternFrame(length: length, fill: fill)
        let bytes = [UInt8](repeating: 0, count: NetLayout.headerLength) + payload
        try ensureFree(queue: q, count * descriptors)
        for _ in 0..<count {
            try addBufferChain(queue: q, bytes: bytes, length: bytes.count, descriptors: descriptors, writable: false)
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
        try write(dq.desc + UInt64(index) * 16, d.wireBytes)
    }

    // MARK: Used ring

    /// used.idx as the driver reads it from guest memory.
    public func usedIdx(queue: Int) throws(DriverError) -> UInt16 {
        guard let dq = queues[queue] else { throw .queueNotSetUp(queue) }
        return try load(UInt16.self, at: dq.used + 2)
    }

    /// Consumes new used elements of `queue`: logs them and frees their
    /// descriptors and buffers. Returns the new records.
    @discardableResult
    public mutating func reclaim(queue: Int) throws(DriverError) -> [UsedRecord] {
        // Taken out of the dictionary while it changes, so its arrays are not
        // copied on write (the used log grows for the whole run); always put back.
        guard var dq = queues.removeValue(forKey: queue) else { throw .queueNotSetUp(queue) }
        defer { queues[queue] = dq }
        let usedIdx = try load(UInt16.self, at: dq.used + 2)
        var records: [UsedRecord] = []
        // A hostile device could claim far more; never consume more than a ring's worth.
        var budget = Int(dq.size)
        while dq.lastUsed != usedIdx && budget > 0 {
            let slot = UInt64(dq.lastUsed % dq.size)
            let id = try load(UInt32.self, at: dq.used + 4 + 8 * slot)
            let len = try load(UInt32.self, at: dq.used + 8 + 8 * slot)
            var rec = UsedRecord(id: id, len: len, buffers: [])
            if id <= UInt32(UInt16.max), let entry = dq.inFlight.removeValue(forKey: UInt16(id)) {
                rec.buffers = entry.buffers
                dq.freeDescriptors.append(contentsOf: entry.descs.reversed())
                for (a, n) in entry.allocations { buffers.release(a, n) }
            }
            dq.usedLog.append(rec)
            records.append(rec)
            dq.lastUsed &+= 1
            budget -= 1
        }
        return records
    }

    /// Reclaims every queue.
    public mutating func reclaimAll() throws(DriverError) {
        for q in queues.keys.sorted() { try reclaim(queue: q) }
    }

    /// The bytes the device wrote into the chain of `record` (its used len,
    /// gathered from the chain's buffers in order).
    public func receivedBytes(_ record: UsedRecord) throws(DriverError) -> [UInt8] {
        var out: [UInt8] = []
        var remaining = Int(record.len)
        for b in record.buffers where remaining > 0 {
            let n = min(remaining, Int(b.len))
            out += try bytes(b.addr, n)
            remaining -= n
        }
        return out
    }

    // MARK: Internals

    /// Reclaims, then checks that `needed` descriptors are free, so a request
    /// too large fails whole before anything is posted.
    mutating func ensureFree(queue: Int, _ needed: Int) throws(DriverError) {
        reclaimBeforeAllocating(queue)
        guard let dq = queues[queue] else { throw .queueNotSetUp(queue) }
        guard dq.freeCount >= needed else { throw .outOfDescriptors(queue: queue, wanted: needed, free: dq.freeCount) }
    }

    /// Reclaims before allocating, as a driver does. A used ring the driver
    /// cannot read (a quirk put it at an unmapped address) reclaims nothing.
    mutating func reclaimBeforeAllocating(_ queue: Int) {
        _ = try? reclaim(queue: queue)
    }

    mutating func addBufferChain(queue: Int, bytes: [UInt8]?, length: Int, descriptors: Int, writable: Bool) throws(DriverError) {
        guard descriptors >= 1 else { throw .emptyChain }
        reclaimBeforeAllocating(queue)
        guard let dq = queues[queue] else { throw .queueNotSetUp(queue) }
        guard dq.freeCount >= descriptors else {
            throw .outOfDescriptors(queue: queue, wanted: descriptors, free: dq.freeCount)
        }
        guard let base = buffers.allocate(UInt64(length)) else { throw .outOfBufferSpace(wanted: UInt64(length)) }
        if let bytes { try write(base, bytes) } else { try fill(base, length, 0) }
        var raw: [RawDescriptor] = []
        var offset: UInt64 = 0
        for piece in Self.split(length, into: descriptors) {
            raw.append(RawDescriptor(addr: base + offset, len: UInt32(piece), writable: writable))
            offset += UInt64(piece)
        }
        try addChain(queue: queue, raw, allocations: [(base, UInt64(length))])
    }

    mutating func addChain(queue: Int, _ raw: [RawDescriptor], allocations: [(UInt64, UInt64)]) throws(DriverError) {
        guard !raw.isEmpty else { throw .emptyChain }
        reclaimBeforeAllocating(queue)
        guard var dq = queues.removeValue(forKey: queue) else { throw .queueNotSetUp(queue) }
        defer { queues[queue] = dq }
        guard dq.freeCount >= raw.count else {
            for (a, n) in allocations { buffers.release(a, n) }
            throw .outOfDescriptors(queue: queue, wanted: raw.count, free: dq.freeCount)
        }
        var slots: [UInt16] = []
        for _ in raw { slots.append(dq.freeDescriptors.removeLast()) }
        for (i, r) in raw.enumerated() {
            var flags = r.extraFlags
            if r.writable { flags.insert(.write) }
            var next: UInt16 = 0
            if i + 1 < raw.count {
                flags.insert(.next)
                next = slots[i + 1]
            }
            let d = Descriptor(addr: r.addr, len: r.len, flags: flags, next: next)
            try write(dq.desc + UInt64(slots[i]) * 16, d.wireBytes)
        }
        let head = slots[0]
        try store(head, at: dq.avail + 4 + 2 * UInt64(dq.availIdx % dq.size))
        dq.availIdx &+= 1
        try store(dq.availIdx, at: dq.avail + 2)
        dq.inFlight[head] = (slots, allocations, raw)
    }

    func write(_ address: UInt64, _ bytes: [UInt8]) throws(DriverError) {
        do throws(GuestMemoryError) { try memory.write(address, bytes: bytes) } catch { throw .memory(error) }
    }

    func bytes(_ address: UInt64, _ count: Int) throws(DriverError) -> [UInt8] {
        do throws(GuestMemoryError) { return try memory.bytes(at: address, count: count) } catch { throw .memory(error) }
    }

    func fill(_ address: UInt64, _ count: Int, _ byte: UInt8) throws(DriverError) {
        try write(address, [UInt8](repeating: byte, count: count))
    }

    func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws(DriverError) {
        do throws(GuestMemoryError) { try memory.store(value, at: address) } catch { throw .memory(error) }
    }

    func load<T: FixedWidthInteger>(_: T.Type, at address: UInt64) throws(DriverError) -> T {
        do throws(GuestMemoryError) { return try memory.load(T.self, at: address) } catch { throw .memory(error) }
    }
}
