import GuestDriver
import Testing
import VirtioCore

/// The vhost-user transport facade (TransportOperation) over the same core.
@Suite("vhost-user transport facade")
struct VhostTransportTests {
    func device(pairs: Int = 1) -> VirtioNetDevice<GuestRAM, EventLog> {
        VirtioNetDevice(config: NetConfig(queuePairs: pairs, queueMaxSize: 32768), memory: try! GuestRAM(size: 1 << 20), observer: EventLog())
    }

    @Test func ringsEnabledBeforeFeaturesStartTheDeviceOnceFeaturesAreAccepted() {
        var d = device()
        d.apply(.enableRing(queue: 0, enabled: true))
        #expect(d.state.status == [] && d.state.queues[0].ready)
        d.apply(.setFeatures(NetFeature.version1))
        #expect(d.state.status == [.acknowledge, .driver, .featuresOK, .driverOK])
        #expect(d.observer.events == [
            .status(from: 0, to: 1), .status(from: 1, to: 3), .driverFeatures(from: 0, to: NetFeature.version1),
            .status(from: 3, to: 0xB), .status(from: 0xB, to: 0xF),
        ])
        // The same features again change nothing; other features start over.
        d.observer.events = []
        d.apply(.setFeatures(NetFeature.version1))
        #expect(d.observer.events.isEmpty && d.state.status.contains(.driverOK) && d.state.queues[0].ready)
        d.apply(.setFeatures(NetFeature.version1 | NetFeature.mac))
        #expect(d.state.status == [.acknowledge, .driver, .featuresOK], "re-negotiation resets the rings")
        #expect(!d.state.queues[0].ready && d.state.driverFeatures == NetFeature.version1 | NetFeature.mac)
    }

    @Test func featuresNeverOfferedFailTheDeviceWithTheMMIOWarning() {
        var d = device()
        d.apply(.setFeatures(NetFeature.version1 | 1 << 40))
        #expect(d.state.status == [.acknowledge, .driver, .failed])
        #expect(d.observer.events.contains(.warning(.featuresRejected(driverFeatures: NetFeature.version1 | 1 << 40, offered: d.offeredFeatures))))
        // Nothing starts a FAILED device.
        d.apply(.enableRing(queue: 1, enabled: true))
        #expect(!d.state.status.contains(.driverOK))
        #expect(d.vhostOfferedFeatures == NetFeature.version1)
    }

    @Test func ringSetUpFollowsTheQueueRules() {
        var d = device()
        d.apply(.setFeatures(NetFeature.version1))
        d.apply(.setRingSize(queue: 1, size: 1024))
        #expect(d.state.queues[1].size == 1024)
        d.apply(.setRingSize(queue: 1, size: 1000))  // not a power of two: kept
        #expect(d.state.queues[1].size == 1024)
        d.apply(.setRingAddresses(queue: 1, desc: 0x1000, avail: 0x5000, used: 0x6000))
        #expect(d.state.queues[1].descTable == 0x1000 && d.state.queues[1].availRing == 0x5000 && d.state.queues[1].usedRing == 0x6000)
        d.apply(.setRingAddresses(queue: 1, desc: 0x1001, avail: 0x5000, used: 0x6000))  // misaligned table: kept
        #expect(d.state.queues[1].descTable == 0x1000)
        d.apply(.setRingBase(queue: 1, base: 77))
        #expect(d.state.queues[1].nextAvail == 77)
        d.apply(.enableRing(queue: 1, enabled: true))
        #expect(d.apply(.stopRing(queue: 1)).reply == .ringBase(77))
        #expect(!d.state.queues[1].ready)
        // Rings that do not exist change nothing.
        let before = d.state
        d.apply(.setRingSize(queue: 9, size: 8))
        d.apply(.enableRing(queue: 9, enabled: true))
        #expect(d.apply(.kick(queue: 9)).raised == [])
        #expect(d.state == before)
    }

    @Test func enabledPairsSetTheActivePairsWithMQ() {
        var d = device(pairs: 2)
        d.apply(.setFeatures(NetFeature.version1 | NetFeature.mq))
        d.apply(.enableRing(queue: 0, enabled: true))
        d.apply(.enableRing(queue: 1, enabled: true))
        #expect(d.state.activeQueuePairs == 1)
        d.apply(.enableRing(queue: 3, enabled: true))
        #expect(d.state.activeQueuePairs == 2)
        #expect(d.observer.events.last == .activeQueuePairs(from: 1, to: 2))
        d.apply(.reset)
        #expect(d.state.status == [] && d.state.activeQueuePairs == 1 && !d.state.queues[3].ready)
    }

    /// The device does not care where a kick came from: a QueueNotify write
    /// and a vhost-user kick of the same rings do exactly the same thing.
    @Test func aKickDoesTheSameAsAQueueNotifyWrite() throws {
        var results: [[DeviceEvent]] = []
        for viaVhost in [false, true] {
            let h = Harness(memoryEvents: true)
            try h.drv.initialize(&h.dev)
            try h.drv.postRx(count: 4)
            _ = try h.drv.sendTx(&h.dev, count: 3, kick: false)
            h.dev.observer.events = []
            if viaVhost {
                h.dev.apply(.kick(queue: 1))
            } else {
                h.write(.queueNotify, 1)
            }
            // The cause itself differs (an MMIO write, a transport operation); everything it caused does not.
            results.append(h.dev.observer.events.filter { if case .mmioWrite = $0 { return false }; return true })
            #expect(h.dev.counters.txPackets == 3 && h.dev.counters.rxPackets == 3)
        }
        #expect(results[0] == results[1])
        #expect(results[0].count > 20)
    }
}
