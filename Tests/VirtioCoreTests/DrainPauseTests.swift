import GuestDriver
import Testing
import VirtioCore

/// Logs every event like ``EventLog`` and pauses drains at chosen boundaries.
struct PausingLog: DeviceObserver {
    var log = EventLog(includeMemory: true)
    /// Boundaries offered so far, and the ones (by that count) to pause at.
    var boundaries = 0
    var pauseAt: Set<Int> = []
    var accessesEnded = 0
    var drainsSeen: [DrainPosition] = []

    mutating func mmioRead(offset: UInt64, width: Int, value: UInt64) { log.mmioRead(offset: offset, width: width, value: value) }
    mutating func mmioWrite(offset: UInt64, width: Int, value: UInt64) { log.mmioWrite(offset: offset, width: width, value: value) }
    mutating func memoryRead(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) { log.memoryRead(address: address, bytes: bytes, succeeded: succeeded) }
    mutating func memoryWrite(address: UInt64, bytes: UnsafeRawBufferPointer, succeeded: Bool) { log.memoryWrite(address: address, bytes: bytes, succeeded: succeeded) }
    mutating func chainPopped(queue: UInt16, head: UInt16, descriptors: UnsafeBufferPointer<Descriptor>) { log.chainPopped(queue: queue, head: head, descriptors: descriptors) }
    mutating func usedPublished(queue: UInt16, id: UInt32, len: UInt32) { log.usedPublished(queue: queue, id: id, len: len) }
    mutating func counterChanged(_ counter: NetCounter, value: UInt64) { log.counterChanged(counter, value: value) }
    mutating func interruptRaised(_ kind: InterruptSignals) { log.interruptRaised(kind) }
    mutating func queuePoisoned(queue: UInt16, error: QueueError) { log.queuePoisoned(queue: queue, error: error) }
    mutating func statusChanged(from old: UInt8, to new: UInt8) { log.statusChanged(from: old, to: new) }
    mutating func activeQueuePairsChanged(from old: UInt16, to new: UInt16) { log.activeQueuePairsChanged(from: old, to: new) }
    static var observesAccessBoundaries: Bool { true }
    mutating func accessEnded(state: VirtioNetState) { accessesEnded += 1 }
    static var observesDrainBoundaries: Bool { true }
    mutating func drainBoundary(_ position: DrainPosition) -> DrainBoundaryAction {
        boundaries += 1
        drainsSeen.append(position)
        if pauseAt.contains(boundaries) { return .pause }
        return checkpointAt.contains(boundaries) ? .checkpoint : .goOn
    }
    /// Boundaries (by count) to ask for the state at, and the states reported.
    var checkpointAt: Set<Int> = []
    var checkpoints: [VirtioNetState] = []
    mutating func drainCheckpoint(state: VirtioNetState) { checkpoints.append(state) }
}

@Suite("Drains paused between chains")
struct DrainPauseTests {
    typealias Dev = VirtioNetDevice<GuestRAM, PausingLog>

    /// A device and driver with `frames` TX frames posted (RX buffers for all
    /// but the last three) and not yet kicked.
    static func loaded(pairs: Int = 1, frames: Int = 12, pauseAt: Set<Int> = []) throws -> (Dev, VirtioNetDriver<GuestRAM>) {
        let ram = try GuestRAM(size: 16 << 20)
        var dev = Dev(config: NetConfig(queuePairs: pairs), memory: ram, observer: PausingLog())
        var drv = VirtioNetDriver(memory: ram)
        _ = try drv.initialize(&dev, queueSize: 32)
        try drv.postRx(count: frames - 3)
        try drv.sendTx(&dev, count: frames, length: 100, kick: false)
        dev.observer = PausingLog()
        dev.observer.pauseAt = pauseAt
        return (dev, drv)
    }

    /// Pausing and resuming changes nothing the device does: the same events
    /// in the same order, the same state, the same interrupts (returned by the
    /// resume that ends the drain), one end of the access.
    @Test(arguments: [Set<Int>(), [1], [5], [1, 2, 3], [11], [4, 9]])
    func aPausedDrainResumesToTheSameEventsAndState(_ pauses: Set<Int>) throws {
        var (plain, plainDriver) = try Self.loaded()
        let plainRaised = plainDriver.kick(&plain, queue: 1)
        var (paused, pausedDriver) = try Self.loaded(pauseAt: pauses)
        var raised = pausedDriver.kick(&paused, queue: 1)
        var resumes = 0
        while paused.state.drain != nil {
            let at = paused.state.drain!
            // Paused where the observer saw the drain: TX queue 1, and a used
            // element published by then (every chain publishes on TX).
            #expect(at == DrainPosition(queue: 1, usedAdvanced: true))
            #expect(raised == [] && paused.observer.accessesEnded == 0)
            raised = paused.resumeDrain()
            resumes += 1
        }
        #expect(resumes == pauses.count)
        #expect(paused.observer.log.events == plain.observer.log.events)
        #expect(paused.state == plain.state && paused.state.drain == nil)
        #expect(raised == plainRaised && raised == [.vring])
        #expect(paused.observer.accessesEnded == 1)
        // 12 chains: a boundary after each, the last before the final empty pop.
        #expect(paused.observer.boundaries == 12 && plain.observer.boundaries == 12)
        #expect(paused.counters.txPackets == 12 && paused.counters.rxPackets == 9 && paused.counters.txDroppedNoRxBuffer == 3)
    }

    /// An observer that asks for the state at some boundaries gets it with
    /// the drain's position set, and the drain goes on exactly as without.
    @Test func aCheckpointAtABoundaryReportsTheStateAndChangesNothing() throws {
        var (plain, plainDriver) = try Self.loaded()
        _ = plainDriver.kick(&plain, queue: 1)
        var (asked, askedDriver) = try Self.loaded()
        asked.observer.checkpointAt = [2, 7]
        _ = askedDriver.kick(&asked, queue: 1)
        #expect(asked.observer.log.events == plain.observer.log.events && asked.state == plain.state)
        let reported = asked.observer.checkpoints
        #expect(reported.count == 2 && reported.allSatisfy { $0.drain == DrainPosition(queue: 1, usedAdvanced: true) })
        // Taken after 2 and 7 chains: that many TX completions counted.
        #expect(reported.map(\.counters.txPackets) == [2, 7] && reported.map { $0.queues[1].nextAvail } == [2, 7])
        #expect(asked.state.drain == nil)
    }

    /// A checkpointed drain (state restored with `drain` set) resumes in a
    /// fresh device exactly as the original goes on.
    @Test func aRestoredPausedDrainFinishesLikeTheOriginal() throws {
        var (plain, plainDriver) = try Self.loaded()
        _ = plainDriver.kick(&plain, queue: 1)
        var (first, firstDriver) = try Self.loaded(pauseAt: [4])
        _ = firstDriver.kick(&first, queue: 1)
        let snapshot = first.state
        let before = first.observer.log.events.count
        // A second device over the same memory, restored from the snapshot.
        var second = Dev(config: NetConfig(), memory: first.memory, observer: PausingLog())
        let restored = second.restore(snapshot)
        #expect(restored)
        let raised = second.resumeDrain()
        #expect(raised == [.vring])
        #expect(Array(plain.observer.log.events[before...]) == second.observer.log.events)
        #expect(second.state == plain.state)
    }

    /// Any access while a drain is paused finishes the drain first, as it
    /// would have run had it never paused.
    @Test func anAccessWhileADrainIsPausedFinishesItFirst() throws {
        var (plain, plainDriver) = try Self.loaded()
        _ = plainDriver.kick(&plain, queue: 1)
        _ = plain.read(.interruptStatus)
        var (paused, pausedDriver) = try Self.loaded(pauseAt: [3])
        _ = pausedDriver.kick(&paused, queue: 1)
        #expect(paused.state.drain != nil)
        let isr = paused.read(.interruptStatus)
        #expect(isr == 1)
        #expect(paused.observer.log.events == plain.observer.log.events && paused.state == plain.state)
        #expect(paused.observer.accessesEnded == 2)
    }

    /// The control queue's drain pauses and resumes too, with its "published" state.
    @Test func aControlQueueDrainPausesAndResumes() throws {
        func run(pauseAt: Set<Int>) throws -> Dev {
            let ram = try GuestRAM(size: 16 << 20)
            var dev = Dev(config: NetConfig(queuePairs: 4), memory: ram, observer: PausingLog())
            var drv = VirtioNetDriver(memory: ram)
            _ = try drv.initialize(&dev, queueSize: 32)
            for pairs in [2, 9, 3] as [UInt16] { try drv.controlSetPairs(&dev, pairs: pairs, kick: false) }
            dev.observer = PausingLog()
            dev.observer.pauseAt = pauseAt
            _ = drv.kick(&dev, queue: 8)
            while dev.state.drain != nil {
                #expect(dev.state.drain!.queue == 8 && dev.state.drain!.usedAdvanced)
                dev.resumeDrain()
            }
            return dev
        }
        let plain = try run(pauseAt: [])
        let paused = try run(pauseAt: [1, 2])
        #expect(paused.observer.log.events == plain.observer.log.events && paused.state == plain.state)
        #expect(paused.state.activeQueuePairs == 3 && paused.counters.ctrlMqSet == 2 && paused.counters.ctrlChainInvalid == 1)
        #expect(paused.observer.boundaries == 3 && paused.observer.accessesEnded == 1)
    }

    /// A position naming no queue a drain runs on (a hostile checkpoint) is
    /// dropped: the access ends, nothing else happens.
    @Test(arguments: [0, 2, 7, 200] as [UInt16])
    func aPositionOnNoDrainingQueueIsDropped(_ queue: UInt16) throws {
        var (dev, _) = try Self.loaded()
        var s = dev.state
        s.drain = DrainPosition(queue: queue, usedAdvanced: true)
        let restored = dev.restore(s)
        #expect(restored)
        let raised = dev.resumeDrain()
        #expect(raised == [])
        #expect(dev.state.drain == nil && dev.observer.log.events.isEmpty && dev.observer.accessesEnded == 1)
    }

    /// A TX drain resumed with no guest memory bound (a hostile checkpoint:
    /// the fuzzer's) fails its first pop, as a kick with memory gone would:
    /// no trap in the prefetch countdown, the queue poisoned, the access ended.
    @Test func aDrainResumedWithoutMemoryFailsItsFirstPop() throws {
        var (dev, _) = try Self.loaded()
        var s = dev.state
        s.drain = DrainPosition(queue: 1, usedAdvanced: false)
        let restored = dev.restore(s)
        #expect(restored)
        dev.memory = nil
        dev.observer = PausingLog()
        dev.resumeDrain()
        #expect(dev.state.drain == nil && dev.state.poisoned[1] && dev.observer.accessesEnded == 1)
        // The failed read of avail.idx counts as the spec says (docs/device.md), and only that.
        var expected = s.counters
        expected.invalidAvailIdxCount += 1
        #expect(dev.counters == expected)
    }

    /// A restored state claiming more active pairs than the NIC has (a
    /// hostile checkpoint: the fuzzer's second find) routes no kick past the
    /// NIC's own queues: the kick of queue 3 of a one-pair NIC is ignored.
    @Test func kicksNeverReachPairsTheNICDoesNotHave() throws {
        var (dev, _) = try Self.loaded()
        var s = dev.state
        s.activeQueuePairs = 3
        let restored = dev.restore(s)
        #expect(restored)
        dev.observer = PausingLog()
        let raised = dev.write(offset: 0x50, width: 4, value: 3)
        // The write itself, and nothing it did: no pop, no counter.
        #expect(raised == [] && dev.observer.log.events.count == 1 && dev.counters == s.counters, "\(dev.observer.log.events)")
        #expect(dev.state.queues == s.queues)
    }
}
