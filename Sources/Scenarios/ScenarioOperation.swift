//! The operations of the scenario language (docs/scenarios.md).

import GuestDriver
import VirtioCore

/// How the scenario's devices and memory are built (the set-up lines).
public struct ScenarioSetup: Hashable, Sendable {
    public var nics = 1
    public var queuePairs = 1
    public var mac = MACAddress.default
    /// RAM from address 0; 0 for none.
    public var memorySize: UInt64 = 16 << 20
    /// Extra regions from `memory map`.
    public var extraRegions: [MemoryRegion] = []
    /// Each queue's QueueNumMax (`device queue_max=N`).
    public var queueMaxSize = NetLayout.queueMaxSize
    /// NICs that start in a given state (`state nic=N ...`) rather than reset:
    /// a scenario cut from a trace at a checkpoint.
    public var states: [Int: StartState] = [:]

    public init() {}

    /// The devices' configuration.
    public var netConfig: NetConfig { NetConfig(mac: mac, queuePairs: queuePairs, queueMaxSize: queueMaxSize) }

    /// All RAM regions.
    public var regions: [MemoryRegion] {
        (memorySize > 0 ? [MemoryRegion(base: 0, size: memorySize)] : []) + extraRegions
    }
}

/// A NIC's state at the start of a scenario, and whether guest memory is bound to it.
public struct StartState: Hashable, Sendable {
    public var state: VirtioNetState
    public var memoryBound: Bool
    public init(state: VirtioNetState, memoryBound: Bool) {
        self.state = state
        self.memoryBound = memoryBound
    }
}

/// One scenario operation, with its arguments parsed and checked.
public enum ScenarioOperation: Hashable, Sendable {
    case mmioWrite(offset: UInt64, value: UInt64, width: Int)
    case mmioRead(offset: UInt64, width: Int, expect: UInt64?)
    case memWrite(address: UInt64, bytes: [UInt8])
    case memFill(address: UInt64, length: UInt64, byte: UInt8)
    case memExpect(address: UInt64, bytes: [UInt8])
    case driverInit(features: UInt64?, queueSize: UInt16, quirks: DriverQuirks, driverOK: Bool)
    case bindMemory(Bool)
    case rxPost(pair: Int, count: Int, length: Int, descriptors: Int)
    case txSend(pair: Int, count: Int, length: Int, descriptors: Int, fill: UInt8?, kick: Bool)
    case chain(queue: Int, descriptors: [RawDescriptor], kick: Bool)
    case availIdx(queue: Int, value: UInt16)
    case kick(queue: UInt32)
    case ctrlMQ(pairs: UInt16, kick: Bool)
    case reset
    case irqAck(value: UInt32?)
    /// A vhost-user frontend's operation (the second transport).
    case vhost(TransportOperation)
    case expectCounters([CounterValue])
    case expectAggregate([CounterValue])
    case expectUsedIdx(queue: Int, value: UInt16)
    case expectUsedEntry(queue: Int, entry: Int, id: UInt32?, len: UInt32?)
    case expectStatus(UInt64)
    case expectInterrupt(UInt64)
    case expectPairs(UInt16)
    case expectPoisoned(queue: Int, poisoned: Bool)
    case expectRxFrame(pair: Int, entry: Int, bytes: [UInt8])

    /// Whether the operation checks something (an `expect`, `mem expect`, or `mmio read expect=`).
    public var isExpectation: Bool {
        switch self {
        case .expectCounters, .expectAggregate, .expectUsedIdx, .expectUsedEntry, .expectStatus, .expectInterrupt,
             .expectPairs, .expectPoisoned, .expectRxFrame, .memExpect:
            return true
        case .mmioRead(_, _, let expect): return expect != nil
        default: return false
        }
    }

    /// Whether the operation needs the NIC's driver initialised first.
    var needsDriver: Bool {
        switch self {
        case .rxPost, .txSend, .chain, .availIdx, .ctrlMQ, .expectUsedIdx, .expectUsedEntry, .expectRxFrame: return true
        default: return false
        }
    }
}

/// `name=value` of one counter in an expectation.
public struct CounterValue: Hashable, Sendable {
    public var counter: NetCounter
    public var value: UInt64
}

/// One line of a scenario.
public struct ScenarioStep: Hashable, Sendable {
    public var line: Int
    public var column: Int
    public var nic: Int
    /// How many times to run the operation (`repeat N ...`).
    public var repeatCount: Int
    public var operation: ScenarioOperation

    public init(line: Int, column: Int, nic: Int, repeatCount: Int, operation: ScenarioOperation) {
        self.line = line
        self.column = column
        self.nic = nic
        self.repeatCount = repeatCount
        self.operation = operation
    }
}

/// A parsed scenario file.
public struct Scenario: Hashable, Sendable {
    /// The file name used in messages.
    public var file: String
    /// The first comment line, if the file starts with one: its description.
    public var summary: String?
    public var setup: ScenarioSetup
    public var steps: [ScenarioStep]
}
