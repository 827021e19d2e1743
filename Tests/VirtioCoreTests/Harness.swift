import GuestDriver
import Testing
import VirtioCore

typealias Device = VirtioNetDevice<GuestRAM, EventLog>

/// A NIC, its RAM and a model driver, wired together. A class so that
/// `#expect(h.read(...) == x)` can call mutating device methods.
final class Harness {
    let ram: GuestRAM
    var dev: Device
    var drv: VirtioNetDriver<GuestRAM>

    init(pairs: Int = 1, ramSize: UInt64 = 16 << 20, mac: MACAddress = .default, memoryEvents: Bool = false) {
        ram = try! GuestRAM(size: ramSize)
        dev = Device(config: NetConfig(mac: mac, queuePairs: pairs), memory: ram, observer: EventLog(includeMemory: memoryEvents))
        drv = VirtioNetDriver(memory: ram)
    }

    /// What one driver action did: counter deltas, new used elements per
    /// queue, interrupts returned by the MMIO write, eventfd writes, ISR.
    struct Step {
        var delta: NetCounters
        var signals: InterruptSignals
        var used: [Int: [UsedRecord]]
        var eventfdWrites: UInt64
        var isr: UInt32
        func used(_ q: Int) -> [UsedRecord] { used[q] ?? [] }
        /// (id, len) of the new used elements of queue `q`.
        func entries(_ q: Int) -> [[UInt32]] { used(q).map { [$0.id, $0.len] } }
    }

    /// Runs `body` (typically one kick) and reports what it did. The interrupt
    /// status is acknowledged first so `isr` shows only this step's bits.
    func step(_ body: () throws -> InterruptSignals) rethrows -> Step {
        dev.write(.interruptACK, 3)
        let before = counters
        let irqs = dev.interruptsRaised
        var logged: [Int: Int] = [:]
        for q in drv.queues.keys {
            _ = try? drv.reclaim(queue: q)
            logged[q] = drv.queues[q]!.usedLog.count
        }
        let signals = try body()
        var used: [Int: [UsedRecord]] = [:]
        for q in drv.queues.keys {
            _ = try? drv.reclaim(queue: q)
            let log = drv.queues[q]!.usedLog
            if log.count > logged[q]! { used[q] = Array(log[logged[q]!...]) }
        }
        let isr = UInt32(dev.state.interruptStatus.rawValue)
        return Step(delta: counters.delta(since: before), signals: signals, used: used,
                    eventfdWrites: dev.interruptsRaised - irqs, isr: isr)
    }

    /// A harness initialised with `quirks`.
    static func ready(pairs: Int = 1, qsize: UInt16 = 256, quirks: DriverQuirks) -> Harness {
        let h = Harness(pairs: pairs)
        h.drv.quirks = quirks
        let ok = try! h.initialize(qsize: qsize)
        precondition(ok, "FEATURES_OK refused")
        return h
    }

    /// A harness with the driver initialised (queues of `qsize`, default features).
    static func ready(pairs: Int = 1, qsize: UInt16 = 256, features: UInt64? = nil, memoryEvents: Bool = false) -> Harness {
        let h = Harness(pairs: pairs, memoryEvents: memoryEvents)
        let ok = try! h.initialize(features: features, qsize: qsize)
        precondition(ok, "FEATURES_OK refused")
        return h
    }

    var counters: NetCounters { dev.counters }
    var events: [DeviceEvent] { dev.observer.events }

    /// Runs `body` and returns the counter deltas it caused.
    func delta(_ body: () throws -> Void) rethrows -> NetCounters {
        let before = counters
        try body()
        return counters.delta(since: before)
    }

    func read(_ r: MMIORegister) -> UInt32 { dev.read(r) }
    func read(offset: UInt64, width: Int) -> UInt64 { dev.read(offset: offset, width: width) }
    @discardableResult func write(_ r: MMIORegister, _ v: UInt32) -> InterruptSignals { dev.write(r, v) }
    @discardableResult func write(offset: UInt64, width: Int, value: UInt64) -> InterruptSignals {
        dev.write(offset: offset, width: width, value: value)
    }
    func restore(_ s: VirtioNetState) -> Bool { dev.restore(s) }
    @discardableResult func initialize(features: UInt64? = nil, qsize: UInt16 = 256) throws -> Bool {
        try drv.initialize(&dev, features: features, queueSize: qsize)
    }
    func postRx(pair: Int = 0, count: Int = 1, length: Int = 2048, descriptors: Int = 1) throws {
        try drv.postRx(pair: pair, count: count, length: length, descriptors: descriptors)
    }
    @discardableResult
    func sendTx(pair: Int = 0, count: Int = 1, length: Int = 64, descriptors: Int = 1, fill: UInt8? = nil,
                frame: [UInt8]? = nil, kick: Bool = true) throws -> InterruptSignals {
        try drv.sendTx(&dev, pair: pair, count: count, length: length, descriptors: descriptors, fill: fill, frame: frame, kick: kick)
    }
    @discardableResult
    func rawChain(queue: Int, _ descs: [RawDescriptor], kick: Bool = true) throws -> InterruptSignals {
        try drv.addRawChain(&dev, queue: queue, descs, kick: kick)
    }
    @discardableResult
    func kick(_ queue: Int) -> InterruptSignals { drv.kick(&dev, queue: queue) }
    @discardableResult
    func setPairs(_ n: UInt16, kick: Bool = true) throws -> InterruptSignals {
        try drv.controlSetPairs(&dev, pairs: n, kick: kick)
    }
    func reset() { drv.reset(&dev) }

    /// Walks status to ACKNOWLEDGE|DRIVER|FEATURES_OK with VERSION_1 (the queue-config window).
    func toFeaturesOK() {
        dev.write(.status, 1)
        dev.write(.status, 3)
        dev.write(.driverFeaturesSel, 1)
        dev.write(.driverFeatures, 1)
        dev.write(.status, 0xB)
        precondition(dev.state.status == [.acknowledge, .driver, .featuresOK])
    }

    /// The used elements published on `queue` since the driver's init, reclaimed now.
    func used(_ queue: Int) -> [UsedRecord] {
        try! drv.reclaim(queue: queue)
        return drv.queues[queue]!.usedLog
    }

    func usedIdx(_ queue: Int) -> UInt16 { try! drv.usedIdx(queue: queue) }

    /// The raw interrupt status register.
    func interruptStatus() -> UInt32 { dev.read(.interruptStatus) }
    func status() -> DeviceStatus { DeviceStatus(rawValue: UInt8(dev.read(.status))) }

    /// Events of one kind after event index `from`.
    func interrupts(since from: Int = 0) -> [InterruptSignals] {
        events[from...].compactMap { if case .interrupt(let k) = $0 { return k } else { return nil } }
    }
}

/// Counters built from a literal list of (counter, value).
func counters(_ pairs: KeyValuePairs<NetCounter, UInt64>) -> NetCounters {
    var c = NetCounters()
    for (k, v) in pairs { c[k] = v }
    return c
}
