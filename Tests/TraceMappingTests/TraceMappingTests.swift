import Testing
import TraceFormat
import TraceMapping
import VirtioCore

@Suite("Device values as trace values")
struct TraceMappingTests {
    @Test func countersHaveTheTraceFormatsSixteenIndices() {
        // docs/trace-format.md lists this order; it never changes.
        let order = ["tx_packets", "tx_bytes", "rx_packets", "rx_bytes", "tx_dropped_no_rx_buffer", "tx_dropped_rx_poisoned",
                     "tx_chain_invalid", "tx_oversize_dropped", "rx_chain_invalid", "rx_write_failed", "tx_add_used_failures",
                     "rx_add_used_failures", "invalid_avail_idx_count", "ctrl_mq_set", "ctrl_chain_invalid", "ctrl_add_used_failures"]
        #expect(NetCounter.allCases.count == order.count)
        for c in NetCounter.allCases {
            #expect(order[c.ordinal] == c.name)
            #expect(NetCounter(ordinal: c.ordinal) == c)
        }
        #expect(NetCounter(ordinal: 16) == nil && NetCounter(ordinal: -1) == nil)
    }

    @Test func poisonAndWarningCodesRoundTrip() {
        let errors: [(QueueError, UInt64, [UInt64])] = [
            (.notReady, 0, []),
            (.invalidAvailRingIndex(availIdx: 300, nextAvail: 2, size: 256), 1, [300, 2, 256]),
            (.invalidDescriptorIndex(99), 2, [99]),
            (.addressOverflow, 3, []),
            (.memory(GuestMemoryError(address: 0xDEAD_0000, length: 16)), 4, [0xDEAD_0000, 16]),
        ]
        for (error, code, details) in errors {
            let encoded = PoisonCode.encode(error)
            #expect(encoded.code == code && encoded.details.values == details)
            #expect(PoisonCode.decode(code, EventDetails(details)) == error)
        }
        #expect(PoisonCode.decode(5, EventDetails()) == nil)
        let warnings: [(DeviceWarning, UInt64, [UInt64])] = [
            (.memoryNotBound, 0, []), (.featuresRejected(driverFeatures: 0x30, offered: 0x1_0000_0020), 1, [0x30, 0x1_0000_0020]),
        ]
        for (warning, code, details) in warnings {
            let encoded = WarningCode.encode(warning)
            #expect(encoded.code == code && encoded.details.values == details)
            #expect(WarningCode.decode(code, EventDetails(details)) == warning)
        }
        #expect(WarningCode.decode(2, EventDetails()) == nil)
    }

    @Test func transportOperationsRoundTripTheirCodes() {
        let ops: [TransportOperation] = [
            .setFeatures(0x1_0000_0000), .setRingSize(queue: 1, size: 256),
            .setRingAddresses(queue: 2, desc: 0x1000, avail: 0x2000, used: 0x3000), .setRingBase(queue: 1, base: 7),
            .enableRing(queue: 0, enabled: true), .kick(queue: 1), .stopRing(queue: 1), .reset,
        ]
        #expect(ops.map(\.traceCode) == Array(0...7))
        for op in ops {
            #expect(TransportOperation(traceCode: op.traceCode, queue: op.queue, values: op.traceValues) == op)
        }
        // Unknown codes, wrong value counts and out-of-range values are refused.
        #expect(TransportOperation(traceCode: 8, queue: 0, values: EventDetails()) == nil)
        #expect(TransportOperation(traceCode: 5, queue: 0, values: EventDetails([1])) == nil)
        #expect(TransportOperation(traceCode: 1, queue: 0, values: EventDetails([65_536])) == nil)
        #expect(TransportOperation(traceCode: 4, queue: 0, values: EventDetails([2])) == nil)
    }

    @Test func aCheckpointRestoresTheStateItWasTakenFrom() throws {
        var s = VirtioNetState(queueCount: 5)
        s.status = [.acknowledge, .driver, .featuresOK, .driverOK]
        s.driverFeatures = 0x1_0040_0020
        s.activeQueuePairs = 2
        s.counters[.txBytes] = 1234
        s.queues[3].ready = true
        let sized = s.queues[3].setSize(64)
        #expect(sized)
        s.queues[3].nextAvail = 9
        s.poisoned[2] = true
        s.drain = DrainPosition(queue: 3, usedAdvanced: true)
        let checkpoint = NICCheckpoint(s, memoryBound: false, accessEvent: 77)
        #expect(checkpoint.drain == DrainCheckpoint(queue: 3, usedAdvanced: true, accessEvent: 77))
        #expect(!checkpoint.memoryBound && checkpoint.counters[1] == 1234)
        #expect(checkpoint.deviceState(queueCount: 5) == s)
        // A checkpoint that no device could be in is refused.
        #expect(checkpoint.deviceState(queueCount: 3) == nil)
        var rxDrain = checkpoint
        rxDrain.drain = DrainCheckpoint(queue: 2, usedAdvanced: false, accessEvent: 1)   // RX queues never drain
        #expect(rxDrain.deviceState(queueCount: 5) == nil)
        var badSize = checkpoint
        badSize.queues[0].size = 3
        #expect(badSize.deviceState(queueCount: 5) == nil)
    }

    @Test func aHeaderDescribesItsConfiguration() {
        let config = NetConfig(mac: MACAddress(2, 0, 0, 0, 0, 9), queuePairs: 2, queueMaxSize: 128)
        let header = TraceHeader(config: config, nics: 3, offeredFeatures: 0x42, regions: [MemoryRegion(base: 0, size: 1 << 20)])
        #expect(header.nics == 3 && header.queuePairs == 2 && header.maxQueueSize == 128 && header.offeredFeatures == 0x42)
        #expect(header.netConfig == config)
        #expect(header.memory == [TraceMemoryRegion(base: 0, size: 1 << 20)])
    }
}
