//! Runs a parsed scenario against fresh devices and memory.

import GuestDriver
import VirtioCore

/// What a scenario run produced.
public struct ScenarioResult: Sendable {
    public var file: String
    /// Expectations that did not hold, in order.
    public var failures: [ExpectationFailure]
    /// The error that stopped the run early (the driver could not do what a line asked).
    public var error: ScenarioError?
    /// Final counters of each NIC.
    public var counters: [NetCounters]
    /// Field-wise saturating sum over the NICs.
    public var aggregate: NetCounters { NetCounters.aggregate(counters) ?? NetCounters() }
    /// Expectations checked.
    public var expectationsChecked: Int
    /// Operations executed (a `repeat` counts each time).
    public var operationsRun: Int

    public var passed: Bool { failures.isEmpty && error == nil }
}

/// Executes a scenario: one device and one model driver per NIC over shared RAM.
///
/// Generic over the observer so the recorder can watch the same run a test
/// runs; `makeObserver` is called once per NIC.
public struct ScenarioRunner<Observer: DeviceObserver> {
    public let scenario: Scenario
    public let ram: GuestRAM
    public private(set) var devices: [VirtioNetDevice<GuestRAM, Observer>]
    public private(set) var drivers: [VirtioNetDriver<GuestRAM>]
    var failures: [ExpectationFailure] = []
    var checked = 0
    var operations = 0

    public init(_ scenario: Scenario, faults: DeviceFaults = DeviceFaults(), makeObserver: (Int) -> Observer) throws(ScenarioError) {
        self.scenario = scenario
        let memory: GuestRAM
        do throws(MemoryLayoutError) {
            memory = try GuestRAM(regions: scenario.setup.regions)
        } catch {
            throw ScenarioError(file: scenario.file, line: 0, column: 0, message: error.description)
        }
        ram = memory
        let config = scenario.setup.netConfig
        devices = (0..<scenario.setup.nics).map { VirtioNetDevice(config: config, memory: memory, observer: makeObserver($0), faults: faults) }
        for (n, start) in scenario.setup.states {
            _ = devices[n].restore(start.state)
            if !start.memoryBound { devices[n].memory = nil }
        }
        drivers = (0..<scenario.setup.nics).map { VirtioNetDriver(memory: memory, nic: $0) }
    }

    /// Operations a whole run executes (a `repeat` counts each time).
    public var totalOperations: Int { scenario.steps.reduce(0) { $0 + $1.repeatCount } }

    /// Operations between two ``run(progress:)`` reports: a power of two, so
    /// the check is a mask; about 10 ms of the fastest operations (kicks of
    /// an empty queue) in a release build.
    public static var progressInterval: Int { 1 << 16 }

    /// Runs every step; expectation failures are collected and the run goes
    /// on; a driver error stops it. `progress`, if given, is called with the
    /// operations done every ``progressInterval`` operations (so a short run
    /// never calls it); the run costs one mask test per operation more.
    /// - Parameter afterStep: called after each step (its index) with every
    ///   NIC's counters then (a reducer's expectations).
    /// - Parameter shouldStop: asked before each operation; true ends the run there (a recording's trigger).
    public mutating func run(progress: ((Int) -> Void)? = nil, afterStep: ((Int, [NetCounters]) -> Void)? = nil,
                             shouldStop: (() -> Bool)? = nil) -> ScenarioResult {
        var stop: ScenarioError?
        outer: for (index, step) in scenario.steps.enumerated() {
            defer { if stop == nil, let afterStep { afterStep(index, devices.map(\.counters)) } }
            for _ in 0..<step.repeatCount {
                if let shouldStop, shouldStop() { break outer }
                do throws(ScenarioError) {
                    try execute(step)
                } catch {
                    stop = error
                    break outer
                }
                operations += 1
                if operations & (Self.progressInterval - 1) == 0, let progress { progress(operations) }
            }
        }
        return ScenarioResult(file: scenario.file, failures: failures, error: stop, counters: devices.map(\.counters),
                              expectationsChecked: checked, operationsRun: operations)
    }

    func fail(_ step: ScenarioStep, _ message: String) -> ScenarioError {
        ScenarioError(file: scenario.file, line: step.line, column: step.column, message: message)
    }

    mutating func expect(_ step: ScenarioStep, _ ok: Bool, _ message: @autoclosure () -> String) {
        checked += 1
        if !ok { failures.append(ExpectationFailure(file: scenario.file, line: step.line, message: message())) }
    }

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ") }

    mutating func execute(_ step: ScenarioStep) throws(ScenarioError) {
        let n = step.nic
        // Memory operations: a fault is the scenario's error, at its line.
        do throws(GuestMemoryError) {
            switch step.operation {
            case .memWrite(let address, let bytes):
                try ram.write(address, bytes: bytes)
                return
            case .memFill(let address, let length, let byte):
                try ram.fill(address, count: Int(length), with: byte)
                return
            case .memExpect(let address, let bytes):
                let got = try ram.bytes(at: address, count: bytes.count)
                expect(step, got == bytes, "expected memory at \(Self.hex(address)) = \(Self.hex(bytes)), got \(Self.hex(got))")
                return
            default: break
            }
        } catch {
            throw fail(step, error.description)
        }
        do throws(DriverError) {
            switch step.operation {
            case .memWrite, .memFill, .memExpect: break
            case .mmioWrite(let offset, let value, let width):
                devices[n].write(offset: offset, width: width, value: value)
            case .mmioRead(let offset, let width, let expected):
                let value = devices[n].read(offset: offset, width: width)
                if let expected {
                    expect(step, value == expected, "expected mmio \(MMIORegister.describe(offset: offset)) = \(Self.hex(expected)), got \(Self.hex(value))")
                }
            case .driverInit(let features, let qsize, let quirks, let driverOK):
                drivers[n].quirks = quirks
                _ = try drivers[n].initialize(&devices[n], features: features, queueSize: qsize, driverOK: driverOK)
            case .bindMemory(let bound):
                devices[n].memory = bound ? ram : nil
            case .rxPost(let pair, let count, let length, let descs):
                try drivers[n].postRx(pair: pair, count: count, length: length, descriptors: descs)
            case .txSend(let pair, let count, let length, let descs, let fill, let kick):
                try drivers[n].sendTx(&devices[n], pair: pair, count: count, length: length, descriptors: descs, fill: fill, kick: kick)
            case .chain(let queue, let descs, let kick):
                try drivers[n].addRawChain(&devices[n], queue: queue, descs, kick: kick)
            case .availIdx(let queue, let value):
                try drivers[n].setAvailIdx(queue: queue, value)
            case .kick(let queue):
                devices[n].write(.queueNotify, queue)
            case .ctrlMQ(let pairs, let kick):
                try drivers[n].controlSetPairs(&devices[n], pairs: pairs, kick: kick)
            case .reset:
                drivers[n].reset(&devices[n])
            case .vhost(let op):
                devices[n].apply(op)
            case .irqAck(let value):
                drivers[n].acknowledgeInterrupts(&devices[n], value: value)
            case .expectCounters(let values):
                check(step, values, devices[n].counters, what: "")
            case .expectAggregate(let values):
                check(step, values, NetCounters.aggregate(devices.map(\.counters)) ?? NetCounters(), what: "aggregate ")
            case .expectUsedIdx(let queue, let value):
                let got = try drivers[n].usedIdx(queue: queue)
                expect(step, got == value, "expected used.idx of queue \(queue) = \(value), got \(got)")
            case .expectUsedEntry(let queue, let entry, let id, let len):
                try drivers[n].reclaim(queue: queue)
                let log = drivers[n].queues[queue]?.usedLog ?? []
                guard entry < log.count else {
                    expect(step, false, "expected used entry \(entry) on queue \(queue), got only \(log.count) entr\(log.count == 1 ? "y" : "ies")")
                    return
                }
                let e = log[entry]
                var want: [String] = [], got: [String] = []
                if let id { want.append("id=\(id)"); got.append("id=\(e.id)") }
                if let len { want.append("len=\(len)"); got.append("len=\(e.len)") }
                expect(step, (id == nil || id == e.id) && (len == nil || len == e.len),
                       "expected used entry \(entry) on queue \(queue) \(want.joined(separator: " ")), got \(got.joined(separator: " "))")
            case .expectStatus(let value):
                let got = devices[n].read(offset: MMIORegister.status.rawValue, width: 4)
                expect(step, got == value, "expected status \(Self.hex(value)) (\(Self.statusName(value))), got \(Self.hex(got)) (\(Self.statusName(got)))")
            case .expectInterrupt(let value):
                let got = devices[n].read(offset: MMIORegister.interruptStatus.rawValue, width: 4)
                expect(step, got == value, "expected interrupt status \(Self.hex(value)), got \(Self.hex(got))")
            case .expectPairs(let value):
                let got = devices[n].state.activeQueuePairs
                expect(step, got == value, "expected \(value) active queue pairs, got \(got)")
            case .expectPoisoned(let queue, let poisoned):
                let got = queue < devices[n].queueCount ? devices[n].state.poisoned[queue] : false
                expect(step, got == poisoned, "expected queue \(queue) \(poisoned ? "poisoned" : "not poisoned"), got \(got ? "poisoned" : "not poisoned")")
            case .expectRxFrame(let pair, let entry, let bytes):
                let queue = VirtioNetDriver<GuestRAM>.rxQueue(pair: pair)
                try drivers[n].reclaim(queue: queue)
                let log = drivers[n].queues[queue]?.usedLog ?? []
                guard entry < log.count else {
                    expect(step, false, "expected RX entry \(entry) on queue \(queue), got only \(log.count)")
                    return
                }
                let data = try drivers[n].receivedBytes(log[entry])
                let frame = data.count >= NetLayout.headerLength ? Array(data[NetLayout.headerLength...]) : []
                expect(step, frame == bytes, "expected RX frame \(entry) = \(Self.hex(bytes)), got \(Self.hex(frame))")
            }
        } catch {
            throw fail(step, error.description)
        }
    }

    mutating func check(_ step: ScenarioStep, _ values: [CounterValue], _ counters: NetCounters, what: String) {
        let wrong = values.filter { counters[$0.counter] != $0.value }
        expect(step, wrong.isEmpty,
               "expected \(what)\(wrong.map { "\($0.counter.name)=\($0.value)" }.joined(separator: " ")), got \(wrong.map { "\($0.counter.name)=\(counters[$0.counter])" }.joined(separator: " "))")
    }

    static func statusName(_ v: UInt64) -> String { v > 0xFF ? "invalid" : DeviceStatus(rawValue: UInt8(v)).description }
}

extension ScenarioRunner where Observer == NoObserver {
    public init(_ scenario: Scenario, faults: DeviceFaults = DeviceFaults()) throws(ScenarioError) {
        try self.init(scenario, faults: faults, makeObserver: { _ in NoObserver() })
    }
}
