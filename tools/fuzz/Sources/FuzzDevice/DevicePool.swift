// One device per queue-pair count, reused for every input. Between inputs
// each goes through its own reset (STATUS = 0), which must leave exactly a
// fresh device's state apart from what reset keeps by design; the harness
// then puts back the fresh state (counters and interrupt count at zero too).

import VirtioCore

typealias FuzzedDevice = VirtioNetDevice<TrackedRAM, NoObserver>

struct DevicePool {
    /// Devices for 1, 2 and 3 queue pairs.
    var devices: [FuzzedDevice]
    /// Their states as built.
    let fresh: [VirtioNetState]

    init(memory: TrackedRAM) {
        devices = (1...3).map { FuzzedDevice(config: NetConfig(queuePairs: $0), memory: memory) }
        fresh = devices.map(\.state)
    }

    /// Resets device `index` and checks the reset, then gives it a fresh device's state.
    mutating func recycle(_ index: Int) {
        devices[index].reset()
        var expected = fresh[index]
        // What STATUS = 0 keeps on purpose (VirtioNetDevice.reset()).
        expected.counters = devices[index].state.counters
        expected.interruptsRaised = devices[index].state.interruptsRaised
        expected.memoryWarningIssued = devices[index].state.memoryWarningIssued
        guard devices[index].state == expected else {
            fatalError("reset left state a fresh device lacks: \(devices[index].state) vs \(expected)")
        }
        guard devices[index].restore(fresh[index]), devices[index].state == fresh[index] else {
            fatalError("restoring the fresh state failed")
        }
    }
}
