import GuestDriver
import Testing
import VirtioCore

@Suite("virtio-mmio transport (spec §2)")
struct TransportTests {
    @Test func identityRegisters() {
        let h = Harness()
        #expect(h.read(.magicValue) == 0x7472_6976)
        #expect(h.read(.version) == 2)
        #expect(h.read(.deviceID) == 1)
        #expect(h.read(.vendorID) == 0)
        #expect(h.read(.configGeneration) == 0)
    }

    @Test func singlePairOffersExactlyVersion1AndMac() {
        let h = Harness()
        h.write(.deviceFeaturesSel, 0)
        #expect(h.read(.deviceFeatures) == 0x20)
        h.write(.deviceFeaturesSel, 1)
        #expect(h.read(.deviceFeatures) == 0x1)
        h.write(.deviceFeaturesSel, 2)
        #expect(h.read(.deviceFeatures) == 0)
        h.write(.deviceFeaturesSel, 0xFFFF_FFFF)
        #expect(h.read(.deviceFeatures) == 0)
        // CSUM 0, MTU 3, MRG_RXBUF 15, STATUS 16, CTRL_VQ 17, MQ 22, INDIRECT 28, EVENT_IDX 29.
        for bit in [0, 3, 15, 16, 17, 22, 28, 29] as [UInt64] {
            #expect(h.dev.offeredFeatures & (1 << bit) == 0, "bit \(bit) must not be offered")
        }
    }

    @Test func multiqueueOffersMqAndCtrlVqOnMmio() {
        let h = Harness(pairs: 4)
        h.write(.deviceFeaturesSel, 0)
        #expect(h.read(.deviceFeatures) == 0x20 | 1 << 17 | 1 << 22)
        #expect(h.read(offset: 0x108, width: 2) == 4)
    }

    @Test func queueCountFollowsClampedPairs() {
        let ram = try! GuestRAM(size: 1 << 20)
        #expect(VirtioNetDevice(config: NetConfig(queuePairs: 0), memory: ram).queueCount == 2)
        #expect(VirtioNetDevice(config: NetConfig(queuePairs: 1), memory: ram).queueCount == 2)
        #expect(VirtioNetDevice(config: NetConfig(queuePairs: 2), memory: ram).queueCount == 5)
        #expect(VirtioNetDevice(config: NetConfig(queuePairs: 10000), memory: ram).queueCount == 513)
        #expect(VirtioNetDevice(config: NetConfig(queuePairs: -5), memory: ram).queueCount == 2)
        // The config says it before a device exists (the replayer checks checkpoints against it).
        #expect([0, 1, 2, 10000, -5].map { NetConfig(queuePairs: $0).queueCount } == [2, 2, 5, 513, 2])
    }

    @Test func configSpaceServesMacPairsAndZeros() {
        let h = Harness(pairs: 4, mac: MACAddress(0x52, 0x54, 0x00, 0x12, 0x34, 0x56))
        let mac = (0..<6).map { UInt8(h.read(offset: 0x100 + UInt64($0), width: 1)) }
        #expect(mac == [0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
        #expect(h.read(offset: 0x100, width: 4) == 0x1200_5452)
        #expect(h.read(offset: 0x100, width: 8) == 0x0000_5634_1200_5452)
        #expect(h.read(offset: 0x106, width: 2) == 0)  // link status
        #expect(h.read(offset: 0x108, width: 2) == 4)  // max_virtqueue_pairs
        #expect(h.read(offset: 0x10A, width: 2) == 0)  // mtu
        #expect(h.read(offset: 0x10C, width: 4) == 0)
        #expect(h.read(offset: 0xFFC, width: 4) == 0)
        let single = Harness()
        #expect(single.read(offset: 0x108, width: 2) == 0)
    }

    @Test func configSpaceWritesAreIgnored() {
        let h = Harness()
        for width in [1, 2, 4, 8] { h.write(offset: 0x100, width: width, value: 0xFFFF_FFFF_FFFF_FFFF) }
        #expect(h.dev.configSpace == [2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
        #expect(h.read(offset: 0x100, width: 1) == 2)
    }

    @Test(arguments: [1, 2, 8])
    func nonFourByteRegisterReadsAreAllOnes(width: Int) {
        let h = Harness()
        let expected: UInt64 = width == 8 ? .max : (1 << (8 * UInt64(width))) - 1
        #expect(h.read(offset: 0x000, width: width) == expected)
        #expect(h.read(offset: 0x070, width: width) == expected)
    }

    @Test(arguments: [1, 2, 8])
    func nonFourByteRegisterWritesAreIgnored(width: Int) {
        let h = Harness()
        h.write(offset: MMIORegister.status.rawValue, width: width, value: 1)
        #expect(h.read(.status) == 0)
        h.write(offset: MMIORegister.queueSel.rawValue, width: width, value: 1)
        #expect(h.dev.state.queueSel == 0)
    }

    @Test func unknownRegistersReadZeroAndIgnoreWrites() {
        let h = Harness()
        let before = h.dev.state
        for offset in [0x0C0, 0x028, 0x03C, 0x040, 0x0AC, 0x0B0, 0x018, 0x0F8] as [UInt64] {
            #expect(h.read(offset: offset, width: 4) == 0)
            h.write(offset: offset, width: 4, value: 0xDEAD_BEEF)
        }
        // Write-only registers read 0.
        for r in [MMIORegister.deviceFeaturesSel, .driverFeatures, .driverFeaturesSel, .queueSel, .queueNum,
                  .queueNotify, .interruptACK, .queueDescLow, .queueDriverHigh, .queueDeviceLow] {
            #expect(h.read(r) == 0, "\(r)")
        }
        #expect(h.dev.state == before)
    }

    @Test func oddWidthsAndOffsetsNeverTrap() {
        let h = Harness()
        for width in [0, 3, 5, 9, -1, 100] {
            #expect(h.read(offset: 0x70, width: width) == (width == 3 || width == 5 ? (1 << (8 * UInt64(width))) - 1 : 0))
            h.write(offset: 0x70, width: width, value: 1)
        }
        #expect(h.read(offset: .max, width: 8) == 0)
        #expect(h.read(offset: .max - 3, width: 8) == 0)
        h.write(offset: .max, width: 4, value: 1)
        #expect(h.dev.state.status == [])
    }

    @Test func statusStateMachineWalksPhasesInOrder() {
        let h = Harness()
        #expect(h.status() == [])
        h.write(.status, 0x2)  // DRIVER before ACKNOWLEDGE: refused
        #expect(h.status() == [])
        h.write(.status, 0x1)
        #expect(h.status() == [.acknowledge])
        h.write(.status, 0x1)  // same value: refused no-op
        #expect(h.status() == [.acknowledge])
        h.write(.status, 0x9)  // skipping DRIVER
        #expect(h.status() == [.acknowledge])
        h.write(.status, 0x3)
        h.write(.status, 0x7)  // DRIVER_OK before FEATURES_OK
        #expect(h.status() == [.acknowledge, .driver])
        h.write(.driverFeaturesSel, 1)
        h.write(.driverFeatures, 1)
        h.write(.status, 0xB)
        #expect(h.status() == [.acknowledge, .driver, .featuresOK])
        h.write(.status, 0x3)  // clearing FEATURES_OK
        #expect(h.status() == [.acknowledge, .driver, .featuresOK])
        h.write(.status, 0xF)
        #expect(h.status() == [.acknowledge, .driver, .featuresOK, .driverOK])
        h.write(.status, 0xF | 0x80)  // the driver may not set FAILED itself
        h.write(.status, 0xF | 0x40)  // nor NEEDS_RESET
        h.write(.status, 0x10F)  // nor bits above the byte
        #expect(h.status() == [.acknowledge, .driver, .featuresOK, .driverOK])
        h.write(.status, 0)
        #expect(h.status() == [])
    }

    @Test func statusTransitionsMatchTheTableExhaustively() {
        // For every reachable status and every byte written, the result is
        // either the write (one table row) or unchanged.
        let reachable: [UInt8] = [0x0, 0x1, 0x3, 0xB, 0xF]
        for from in reachable {
            for value in 1...255 as ClosedRange<UInt32> {
                let h = Harness()
                h.write(.driverFeaturesSel, 1)
                for step in [0x1, 0x3, 0xB, 0xF] as [UInt32] where UInt32(from) >= step && from & UInt8(step) == UInt8(step) {
                    if step == 0xB {
                        h.write(.driverFeaturesSel, 1)
                        h.write(.driverFeatures, 1)
                    }
                    h.write(.status, step)
                }
                #expect(h.dev.state.status.rawValue == from)
                h.write(.driverFeaturesSel, 1)
                h.write(.driverFeatures, 1)
                h.write(.status, value)
                let allowed = DeviceStatus.transitions.contains {
                    $0.from.rawValue == from && UInt32($0.from.rawValue | $0.adds.rawValue) == value
                }
                #expect(h.dev.state.status.rawValue == (allowed ? UInt8(value) : from), "from \(from) write \(value)")
            }
        }
    }

    @Test func driverFeaturesAreGatedByStatus() {
        let h = Harness()
        h.write(.driverFeaturesSel, 1)
        h.write(.driverFeatures, 1)  // before DRIVER: ignored
        #expect(h.dev.state.driverFeatures == 0)
        h.write(.status, 1)
        h.write(.driverFeatures, 1)  // ACKNOWLEDGE only: ignored
        #expect(h.dev.state.driverFeatures == 0)
        h.write(.status, 3)
        h.write(.driverFeatures, 1)
        h.write(.driverFeaturesSel, 0)
        h.write(.driverFeatures, 0x20)
        #expect(h.dev.state.driverFeatures == NetFeature.version1 | NetFeature.mac)
        h.write(.driverFeaturesSel, 2)
        h.write(.driverFeatures, 0xFFFF)  // window 2: ignored
        #expect(h.dev.state.driverFeatures == NetFeature.version1 | NetFeature.mac)
        h.write(.status, 0xB)
        #expect(h.status().contains(.featuresOK))
        h.write(.driverFeaturesSel, 0)
        h.write(.driverFeatures, 0)  // after FEATURES_OK: ignored
        #expect(h.dev.state.driverFeatures == NetFeature.version1 | NetFeature.mac)
    }

    @Test func featuresOkRejectedWithoutVersion1() {
        let h = Harness()
        let ok = try! h.initialize(features: NetFeature.mac)
        #expect(!ok)
        #expect(h.status() == [.acknowledge, .driver, .failed])
        h.write(.status, 0xB)  // stuck until reset
        h.write(.status, 0xF)
        #expect(h.status() == [.acknowledge, .driver, .failed])
        #expect(h.events.contains(.warning(.featuresRejected(driverFeatures: NetFeature.mac, offered: h.dev.offeredFeatures))))
        #expect(h.counters == NetCounters())
        h.write(.status, 0)
        #expect(h.status() == [])
    }

    @Test func featuresOkRejectedForUnofferedBit() {
        let h = Harness()
        let ok = try! h.initialize(features: NetFeature.version1 | NetFeature.mq)
        #expect(!ok)
        #expect(h.status().contains(.failed))
        #expect(!h.status().contains(.featuresOK))
        let h2 = Harness()
        #expect(try! h2.initialize(features: NetFeature.version1 | NetFeature.mac))
        #expect(h2.status() == [.acknowledge, .driver, .featuresOK, .driverOK])
    }

    @Test func queueNumMaxAndSelectorBounds() {
        let h = Harness()
        for (q, expected) in [(0, 256), (1, 256), (2, 0), (9999, 0), (UInt32.max, 0)] as [(UInt32, UInt32)] {
            h.write(.queueSel, q)
            #expect(h.read(.queueNumMax) == expected)
            #expect(h.read(.queueReady) == 0)
        }
        let mq = Harness(pairs: 2)
        mq.write(.queueSel, 4)
        #expect(mq.read(.queueNumMax) == 256)
        mq.write(.queueSel, 5)
        #expect(mq.read(.queueNumMax) == 0)
    }

    @Test func queueConfigurationOnlyInsideTheWindow() {
        let h = Harness()
        h.write(.queueSel, 1)
        h.write(.queueNum, 16)  // status 0: ignored
        h.write(.queueReady, 1)
        #expect(h.dev.state.queues[1].size == 256)
        #expect(!h.dev.state.queues[1].ready)
        #expect(try! h.initialize(qsize: 8))
        #expect(h.dev.state.queues[1].size == 8)
        h.write(.queueSel, 1)
        h.write(.queueReady, 0)  // after DRIVER_OK: ignored
        h.write(.queueNum, 4)
        h.write(.queueDescLow, 0x1000)
        #expect(h.dev.state.queues[1].ready)
        #expect(h.dev.state.queues[1].size == 8)
        #expect(h.dev.state.queues[1].descTable == h.drv.queues[1]!.desc)
    }

    @Test func queueSizeRulesAndTruncation() {
        let h = Harness()
        h.toFeaturesOK()
        h.write(.queueSel, 0)
        h.write(.queueNum, 64)
        #expect(h.dev.state.queues[0].size == 64)
        for bad in [0, 3, 100, 512, 257] as [UInt32] {
            h.write(.queueNum, bad)
            #expect(h.dev.state.queues[0].size == 64, "size \(bad) must be refused")
        }
        h.write(.queueNum, 0x1_0010)  // upper 16 bits dropped before validation: 16
        #expect(h.dev.state.queues[0].size == 16)
        h.write(.queueNum, 1)
        #expect(h.dev.state.queues[0].size == 1)
        h.write(.queueReady, 2)  // only 1 means ready
        #expect(!h.dev.state.queues[0].ready)
        h.write(.queueReady, 1)
        #expect(h.read(.queueReady) == 1)
    }

    @Test func ringAddressAlignmentAndHalves() {
        let h = Harness()
        h.toFeaturesOK()
        h.write(.queueSel, 0)
        h.write(.queueDescLow, 0x1008)  // not 16-aligned: kept 0
        #expect(h.dev.state.queues[0].descTable == 0)
        h.write(.queueDescLow, 0x1010)
        h.write(.queueDescHigh, 0x2)
        #expect(h.dev.state.queues[0].descTable == 0x2_0000_1010)
        h.write(.queueDriverLow, 0x3001)  // avail needs 2
        #expect(h.dev.state.queues[0].availRing == 0)
        h.write(.queueDriverLow, 0x3002)
        h.write(.queueDeviceLow, 0x4002)  // used needs 4
        #expect(h.dev.state.queues[0].usedRing == 0)
        h.write(.queueDeviceLow, 0x4004)
        h.write(.queueDeviceHigh, 0xFFFF_FFFF)
        #expect(h.dev.state.queues[0].availRing == 0x3002)
        #expect(h.dev.state.queues[0].usedRing == 0xFFFF_FFFF_0000_4004)
    }

    @Test func interruptAckClearsOnlyAckedBits() throws {
        let h = Harness.ready()
        try h.postRx()
        let raised = try h.sendTx()
        #expect(raised == .vring)
        #expect(h.interruptStatus() == 1)
        h.write(.interruptACK, 2)
        #expect(h.interruptStatus() == 1)
        h.write(.interruptACK, 1)
        #expect(h.interruptStatus() == 0)
    }

    @Test func resetClearsStateButPreservesCounters() throws {
        let h = Harness.ready()
        try h.postRx()
        try h.sendTx()
        h.write(.queueSel, 1)
        h.write(.deviceFeaturesSel, 1)
        let counters = h.counters
        #expect(counters.txPackets == 1 && counters.rxPackets == 1)
        h.reset()
        #expect(h.events.last == .reset)
        var fresh = VirtioNetState(queueCount: 2)
        fresh.counters = counters
        fresh.interruptsRaised = 1  // kept, like the counters
        #expect(h.dev.state == fresh)
        #expect(h.read(.interruptStatus) == 0)
        // The device works again after re-initialisation.
        #expect(try h.initialize())
        try h.postRx()
        try h.sendTx()
        #expect(h.counters.txPackets == 2)
        #expect(h.counters.rxPackets == 2)
    }

    @Test func restoreReplacesStateAndRejectsWrongShape() throws {
        let h = Harness.ready()
        let snapshot = h.dev.state
        try h.postRx()
        try h.sendTx()
        #expect(h.dev.state != snapshot)
        #expect(h.restore(snapshot))
        #expect(h.dev.state == snapshot)
        #expect(!h.restore(VirtioNetState(queueCount: 5)))
        #expect(h.dev.state == snapshot)
    }
}
