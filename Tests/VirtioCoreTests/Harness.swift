import GuestDriver
import Testing
import VirtioCore

typealias Device = VirtioNetDevice<GuestRAM, EventLog>

/// A NIC, its RAM and a model driver, wired together.
struct Harness {
    let ram: GuestRAM
    var dev: Device
    var drv: VirtioNetDriver<GuestRAM>

    init(pairs: Int = 1, ramSize: UInt64 = 16 << 20, mac: MACAddress = .default, memoryEvents: Bool = false) {
        ram = try! GuestRAM(size: ramSize)
        dev = Device(config: NetConfig(mac: mac, queuePairs: pairs), memory: ram, observer: EventLog(includeMemory: memoryEvents))
        drv = VirtioNetDriver(memory: ram)
    }

    /// A harness with the driver initialised (queues of `qsize`, default features).
    static func ready(pairs: Int = 1, qsize: UInt16 = 256, features: UInt64? = nil, memoryEvents: Bool = false) -> Harness {
        var h = Harness(pairs: pairs, memoryEvents: memoryEvents)
        let ok = try! h.drv.initialize(&h.dev, features: features, queueSize: qsize)
        precondition(ok, "FEATURES_OK refused")
        return h
    }

    var counters: NetCounters { dev.counters }
    var events: [DeviceEvent] { dev.observer.events }

    /// Runs `body` and returns the counter deltas it caused.
    mutating func delta(_ body: (inout Harness) throws -> Void) rethrows -> NetCounters {
        let before = counters
        try body(&self)
        return counters.delta(since: before)
    }

    /// The used elements published on `queue` since the driver's init, reclaimed now.
    mutating func used(_ queue: Int) -> [UsedRecord] {
        try! drv.reclaim(queue: queue)
        return drv.queues[queue]!.usedLog
    }

    func usedIdx(_ queue: Int) -> UInt16 { try! drv.usedIdx(queue: queue) }

    /// The raw interrupt status register.
    mutating func interruptStatus() -> UInt32 { dev.read(.interruptStatus) }
    mutating func status() -> DeviceStatus { DeviceStatus(rawValue: UInt8(dev.read(.status))) }

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

/// A seeded generator that prints its seed so a failure can be re-run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
