//! A model guest virtio-net driver: it lays out real rings in guest memory and
//! drives the device over MMIO exactly as a guest driver does. This file:
//! the driver, its initialisation and its register accesses; its traffic
//! and its rings are extensions beside it.

import VirtioCore

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
    public internal(set) var queues = DriverQueues()
    /// Queue pairs the driver set up (max_virtqueue_pairs when MQ, else 1).
    public private(set) var pairs: Int = 0
    var buffers: BufferAllocator
    /// How many more buffers of `length` bytes the driver's area holds now
    /// (what the rings and in-flight chains leave free; reclaim first to count
    /// the used chains' buffers as free).
    public func buffersThatFit(length: Int) -> Int { buffers.count(fitting: UInt64(length)) }
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
        queues = DriverQueues()
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
        queues.reserveCapacity(indices.count)
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
        queues = DriverQueues()
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

    // MARK: Guest memory

    func write(_ address: UInt64, _ bytes: [UInt8]) throws(DriverError) {
        do throws(GuestMemoryError) { try memory.write(address, bytes: bytes) } catch { throw .memory(error) }
    }

    func bytes(_ address: UInt64, _ count: Int) throws(DriverError) -> [UInt8] {
        do throws(GuestMemoryError) { return try memory.bytes(at: address, count: count) } catch { throw .memory(error) }
    }

    /// Writes `count` copies of `byte` in one all-or-nothing write.
    func fill(_ address: UInt64, _ count: Int, _ byte: UInt8) throws(DriverError) {
        do throws(GuestMemoryError) { try memory.fill(address, count: count, with: byte) } catch { throw .memory(error) }
    }

    /// Writes descriptor `d` in its 16-byte wire form (virtio v1.2 §2.7.5) at `address`.
    func write(_ d: Descriptor, at address: UInt64) throws(DriverError) {
        var wire = (d.addr.littleEndian, d.len.littleEndian, d.flags.rawValue.littleEndian, d.next.littleEndian)
        try withUnsafeBytes(of: &wire) { (raw) throws(DriverError) in try write(address, raw) }
    }

    /// Writes `raw` to `address` (one all-or-nothing write).
    func write(_ address: UInt64, _ raw: UnsafeRawBufferPointer) throws(DriverError) {
        do throws(GuestMemoryError) { try memory.write(address, from: raw) } catch { throw .memory(error) }
    }

    func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws(DriverError) {
        do throws(GuestMemoryError) { try memory.store(value, at: address) } catch { throw .memory(error) }
    }

    func load<T: FixedWidthInteger>(_: T.Type, at address: UInt64) throws(DriverError) -> T {
        do throws(GuestMemoryError) { return try memory.load(T.self, at: address) } catch { throw .memory(error) }
    }
}
