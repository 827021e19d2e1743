//! The virtio-net queue paths: notify routing, TX capture, loopback to RX,
//! the control queue (spec §2.7, §3.3–§3.7).

/// What happened to a captured TX frame on the RX side (spec §3.5).
enum RxOutcome {
    /// Written and published; `l2` post-header bytes.
    case delivered(l2: UInt64)
    /// Written but the RX used publish failed (already counted).
    case deliveredButAddUsedFailed
    /// RX was poisoned before this frame.
    case rxAlreadyPoisoned
    /// RX became poisoned popping for this frame; the drain stops after this chain.
    case justRxPoisoned
    /// RX queue not ready, or nothing available.
    case noRxBuffer
    /// Shape or write failure (already counted); `published` if recycled.
    case rxChainInvalid(published: Bool)
    /// The drop-rx fault swallowed the delivery.
    case lostByFault
}

/// Why an RX chain could not take a frame (spec §3.4).
enum RxFailure {
    /// A device-readable descriptor, or an address overflow while writing.
    case shape
    /// Writing the header or the frame faulted.
    case write
}

extension VirtioNetDevice {
    /// QueueNotify routing (spec §2.7): the control queue, an active pair's TX
    /// queue, or nothing.
    mutating func notify(queue index: UInt32) -> InterruptSignals {
        if queuePairs > 1, index == UInt32(queuePairs) * 2 {
            return processControlQueue()
        }
        // (Never past the NIC's own pairs, whatever state was restored.)
        if index & 1 == 1, index / 2 < UInt32(min(state.activeQueuePairs, queuePairs)) {
            return processTx(pair: Int(index / 2))
        }
        return []  // RX kicks, inactive pairs, out-of-range indices
    }

    /// Whether queue work may run: DRIVER_OK set and memory bound (spec §3.3 preconditions).
    mutating func canProcess() -> Bool {
        guard state.status.contains(.driverOK) else { return false }
        guard bus.memory != nil else {
            if !state.memoryWarningIssued {
                state.memoryWarningIssued = true
                bus.observer.warning(.memoryNotBound)
            }
            return false
        }
        return true
    }

    /// Pops the next chain of `queue` into `chain`, as the TX, RX and control
    /// paths all do: its head, or nil when nothing is available or the avail
    /// index is bad. A bad index poisons the queue (``poison(_:_:)``) and
    /// sets `justPoisoned` when the queue is then poisoned (not under the
    /// no-poison fault); otherwise `justPoisoned` is left as it was.
    /// Always inlined: this is the drain's hot path.
    @inline(__always)
    mutating func popOrPoison(_ queue: Int, justPoisoned: inout Bool) -> UInt16? {
        do throws(QueueError) {
            return try popChain(queue)
        } catch {
            if poison(queue, error) { justPoisoned = true }
            return nil
        }
    }

    /// Chains per prefetch hint batch on a TX drain.
    static var prefetchWindow: UInt16 { 16 }

    /// Drains TX queue 2p+1 of `pair` into RX queue 2p (spec §3.3).
    mutating func processTx(pair: Int) -> InterruptSignals {
        guard canProcess() else { return [] }
        return drainTx(pair: pair, usedAdvanced: false)
    }

    /// The TX drain loop and its end, from its start or from a pause
    /// (``DrainPosition``). Returns nothing when the observer paused it.
    mutating func drainTx(pair: Int, usedAdvanced startAdvanced: Bool) -> InterruptSignals {
        let txq = 2 * pair + 1
        let rxq = 2 * pair
        var usedAdvanced = startAdvanced
        var justPoisoned = false
        // Prefetch hints run a window ahead: the first 2W chains, then every
        // W chains the W after the next W.
        var hintCountdown: UInt16 = 0
        var hintSkip: UInt16 = 0
        // Set after the first chain: the observer is offered a pause before each later pop.
        var betweenChains = false
        while !state.poisoned[txq] {
            if Observer.observesDrainBoundaries {
                if betweenChains && pauseBetweenChains(queue: txq, usedAdvanced: usedAdvanced) { return [] }
                betweenChains = true
            }
            // (The countdown restarts with no memory too: a checkpoint can resume a
            // drain with none bound, whose first pop then fails.)
            if hintCountdown == 0 {
                if let memory = bus.memory {
                    state.queues[txq].prefetch(memory, skip: hintSkip, count: hintSkip == 0 ? 2 * Self.prefetchWindow : Self.prefetchWindow)
                }
                hintSkip = Self.prefetchWindow
                hintCountdown = Self.prefetchWindow
            }
            hintCountdown -= 1
            guard let head = popOrPoison(txq, justPoisoned: &justPoisoned) else { break }
            let captured = captureFrame()
            var stop = false
            if let total = captured {
                switch deliver(frameLength: total, to: rxq) {
                case .delivered(let l2):
                    bump(.rxPackets)
                    bump(.rxBytes, by: l2)
                    usedAdvanced = true
                case .deliveredButAddUsedFailed:
                    break
                case .rxAlreadyPoisoned:
                    bump(.txDroppedRxPoisoned)
                case .justRxPoisoned:
                    bump(.txDroppedRxPoisoned)
                    justPoisoned = true
                    stop = true
                case .noRxBuffer:
                    bump(.txDroppedNoRxBuffer)
                case .rxChainInvalid(let published):
                    if published { usedAdvanced = true }
                case .lostByFault:
                    break
                }
            }
            // TX completion is attempted for every popped chain, valid or not.
            // used.len is 0: TX buffers are device-readable.
            if publishUsed(txq, head: head, len: 0) {
                if let total = captured {
                    bump(.txPackets)
                    bump(.txBytes, by: UInt64(total))
                }
                usedAdvanced = true
            } else {
                bump(.txAddUsedFailures)
            }
            if stop { break }
        }
        // Completions are signalled before the device-death notice.
        var raised: InterruptSignals = []
        if usedAdvanced {
            raise(.vring)
            raised.insert(.vring)
        }
        if justPoisoned {
            setNeedsReset()
            raise(.config)
            raised.insert(.config)
        }
        return raised
    }

    /// Copies the post-header bytes of the chain in `chain` into `frame`
    /// (spec §3.3 step 2), counting rejections.
    /// - Returns: the frame length, or nil when the chain was oversize or invalid.
    mutating func captureFrame() -> Int? {
        var headerRemaining = UInt64(NetLayout.headerLength)
        var total = 0
        var invalid = false
        var oversize = false
        for i in chain.indices {
            let d = chain[i]
            if d.isWriteOnly {
                invalid = true
                break
            }
            var address = d.addr
            var length = UInt64(d.len)
            if headerRemaining > 0 {
                // The header is skipped, never read: its bytes mean nothing here.
                let skip = min(headerRemaining, length)
                let (a, overflow) = address.addingReportingOverflow(skip)
                if overflow {
                    invalid = true
                    break
                }
                address = a
                length -= skip
                headerRemaining -= skip
            }
            if length == 0 { continue }
            // Checked before reading, so a multi-GiB length costs nothing.
            if UInt64(total) + length > UInt64(NetLayout.maxFrameSize) {
                oversize = true
                break
            }
            let start = total
            let ok = frame.withUnsafeMutableBytes { raw in
                bus.readFrame(address, into: UnsafeMutableRawBufferPointer(rebasing: raw[start..<start + Int(length)]), frameOffset: start)
            }
            if !ok {
                invalid = true
                break
            }
            total += Int(length)
        }
        if oversize {
            bump(.txOversizeDropped)
            return nil
        }
        if invalid || headerRemaining != 0 {
            bump(.txChainInvalid)
            return nil
        }
        return total
    }

    /// Writes the header and `frame[0..<frameLength]` into one chain of RX
    /// queue `rxq` (spec §3.4).
    mutating func deliver(frameLength: Int, to rxq: Int) -> RxOutcome {
        if state.poisoned[rxq] { return .rxAlreadyPoisoned }
        if !state.queues[rxq].ready { return .noRxBuffer }
        var justPoisoned = false
        guard let head = popOrPoison(rxq, justPoisoned: &justPoisoned) else { return justPoisoned ? .justRxPoisoned : .noRxBuffer }
        if let n = faults.dropRx {
            faultProgress.rxDeliveries += 1
            if faultProgress.rxDeliveries == n { return .lostByFault }
        }

        var failure: RxFailure?
        var header = (UInt64(0), UInt32(1 << 16).littleEndian)  // bytes 10–11: num_buffers = 1
        var headerRemaining = NetLayout.headerLength
        var framePos = 0
        var bytesWritten: UInt64 = 0
        // Header pieces written so far, to zero on failure: each is the start
        // of one of the chain's first descriptors, so their count says which.
        var headerPieces = 0

        walk: for i in chain.indices {
            let d = chain[i]
            if !d.isWriteOnly {
                failure = .shape
                break walk
            }
            var address = d.addr
            var length = Int(d.len)
            if headerRemaining > 0 {
                let n = min(headerRemaining, length)
                if n > 0 {
                    let from = NetLayout.headerLength - headerRemaining
                    let ok = withUnsafeBytes(of: &header) { raw in
                        bus.write(address, from: UnsafeRawBufferPointer(rebasing: raw[from..<from + n]))
                    }
                    if !ok {
                        failure = .write
                        break walk
                    }
                    headerPieces += 1
                    // Checked after the piece was written, as the reference does.
                    let (a, overflow) = address.addingReportingOverflow(UInt64(n))
                    if overflow {
                        failure = .shape
                        break walk
                    }
                    address = a
                    length -= n
                    headerRemaining -= n
                    bytesWritten += UInt64(n)
                }
            }
            // For a zero-length frame this never writes, so the walk visits
            // every descriptor and a trailing read-only one is still a shape error.
            if length == 0 || framePos == frameLength { continue }
            let n = min(length, frameLength - framePos)
            let start = framePos
            let ok = Self.writePiece(&frame, start..<start + n, at: address, to: &bus)
            if !ok {
                failure = .write
                break walk
            }
            framePos += n
            bytesWritten += UInt64(n)
            if framePos == frameLength && headerRemaining == 0 { break walk }
        }

        if let failure {
            bump(failure == .shape ? .rxChainInvalid : .rxWriteFailed)
            // Never leave a stale num_buffers = 1 in a buffer the guest recycles.
            var zeros = (UInt64(0), UInt32(0))
            var remaining = NetLayout.headerLength
            for d in chain where headerPieces > 0 {
                let n = min(remaining, Int(d.len))
                if n == 0 { continue }
                _ = withUnsafeBytes(of: &zeros) { bus.write(d.addr, from: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                remaining -= n
                headerPieces -= 1
            }
            if publishUsed(rxq, head: head, len: 0) { return .rxChainInvalid(published: true) }
            bump(.rxAddUsedFailures)
            return .rxChainInvalid(published: false)
        }
        // A chain too small for the frame (or the header) is a truncated
        // delivery: no counter, the guest sees the used length.
        let l2 = UInt64(framePos)
        if publishUsed(rxq, head: head, len: UInt32(truncatingIfNeeded: bytesWritten)) {
            return .delivered(l2: l2)
        }
        bump(.rxAddUsedFailures)
        return .deliveredButAddUsedFailed
    }

    /// Offers the observer a pause (or a checkpoint) between two chains of a drain of `queue`.
    /// - Returns: true when it paused the drain; `state.drain` then says where it stands.
    @inline(__always)
    mutating func pauseBetweenChains(queue: Int, usedAdvanced: Bool) -> Bool {
        let position = DrainPosition(queue: UInt16(truncatingIfNeeded: queue), usedAdvanced: usedAdvanced)
        switch bus.observer.drainBoundary(position) {
        case .goOn:
            return false
        case .pause:
            state.drain = position
            return true
        case .checkpoint:
            reportDrainCheckpoint(position)
            return false
        }
    }

    /// The whole state at a drain boundary, for the observer that asked (out of line: once per chunk).
    @inline(never)
    mutating func reportDrainCheckpoint(_ position: DrainPosition) {
        state.drain = position
        bus.observer.drainCheckpoint(state: state)
        state.drain = nil
    }

    /// Goes on with a drain paused between two chains (``VirtioNetState/drain``)
    /// until it ends, with the end of the access that began it (its
    /// interrupts, then `accessEnded`), or until the observer pauses it again.
    /// Each call pops at least one chain before it may pause again. A
    /// position that names no queue a drain runs on (a hostile checkpoint)
    /// is dropped and ends the access.
    /// - Returns: the interrupts raised at the drain's end, for the VMM to deliver.
    @discardableResult
    public mutating func resumeDrain() -> InterruptSignals {
        guard let d = state.drain else { return [] }
        state.drain = nil
        var raised: InterruptSignals = []
        if d.isOnDrainingQueue(queueCount: state.queues.count) {
            let q = Int(d.queue)
            raised = q & 1 == 1 ? drainTx(pair: q / 2, usedAdvanced: d.usedAdvanced) : drainControlQueue(q, published: d.usedAdvanced)
        }
        if state.drain == nil, Observer.observesAccessBoundaries { bus.observer.accessEnded(state: state) }
        return raised
    }

    /// Before a new access: a paused drain is finished first, as it would
    /// have been had it never paused.
    mutating func finishPausedDrain() {
        while state.drain != nil { resumeDrain() }
    }

    /// Sets NEEDS_RESET in the status (reported when it changes).
    mutating func setNeedsReset() {
        let old = state.status
        state.status.insert(.needsReset)
        if old != state.status { bus.observer.statusChanged(from: old.rawValue, to: state.status.rawValue) }
    }

    /// Processes the control queue (spec §3.7): MQ / VQ_PAIRS_SET only.
    mutating func processControlQueue() -> InterruptSignals {
        guard let cvq = controlQueueIndex else { return [] }
        guard state.status.contains(.driverOK), state.driverFeatures & NetFeature.ctrlVQ != 0,
            bus.memory != nil, !state.poisoned[cvq]
        else { return [] }
        return drainControlQueue(cvq, published: false)
    }

    /// The control-queue loop and its end, from its start or from a pause.
    mutating func drainControlQueue(_ cvq: Int, published startPublished: Bool) -> InterruptSignals {
        var published = startPublished
        var justPoisoned = false
        var betweenChains = false
        while true {
            if Observer.observesDrainBoundaries {
                if betweenChains && pauseBetweenChains(queue: cvq, usedAdvanced: published) { return [] }
                betweenChains = true
            }
            guard let head = popOrPoison(cvq, justPoisoned: &justPoisoned) else { break }
            // Descriptor order is not enforced: readable descriptors fill a
            // 4-byte command (class, cmd, pairs le16); the first writable
            // descriptor with room for a byte takes the status.
            var command: UInt32 = 0
            var commandLength = 0
            var statusAddress: UInt64?
            for i in chain.indices {
                let d = chain[i]
                if d.isWriteOnly {
                    if statusAddress == nil && d.len >= 1 { statusAddress = d.addr }
                    continue
                }
                guard commandLength < 4 else { continue }
                let n = min(4 - commandLength, Int(d.len))
                if n == 0 { continue }
                let from = commandLength
                let ok = withUnsafeMutableBytes(of: &command) { raw in
                    bus.read(d.addr, into: UnsafeMutableRawBufferPointer(rebasing: raw[from..<from + n]))
                }
                // A failed piece leaves the command short; later pieces fill from here.
                if ok { commandLength += n }
            }
            guard let statusAddress else {
                bump(.ctrlChainInvalid)  // consumed, never returned until reset
                continue
            }
            let c = UInt32(littleEndian: command)  // memory order: class, cmd, pairs lo, pairs hi
            let pairs = UInt16(truncatingIfNeeded: c >> 16)
            let accepted = commandLength == 4 && UInt8(truncatingIfNeeded: c) == NetLayout.ctrlClassMQ
                && UInt8(truncatingIfNeeded: c >> 8) == NetLayout.ctrlMQVQPairsSet && pairs >= 1 && pairs <= queuePairs
            var status = accepted ? NetLayout.ctrlOK : NetLayout.ctrlERR
            let wrote = withUnsafeBytes(of: &status) { bus.write(statusAddress, from: $0) }
            if !wrote {
                bump(.ctrlAddUsedFailures)
                continue
            }
            if !accepted { bump(.ctrlChainInvalid) }
            if publishUsed(cvq, head: head, len: 1) {
                published = true
                if accepted {
                    // State changes only after a successful publish.
                    let old = state.activeQueuePairs
                    state.activeQueuePairs = pairs
                    if old != pairs { bus.observer.activeQueuePairsChanged(from: old, to: pairs) }
                    bump(.ctrlMqSet)
                }
            } else {
                bump(.ctrlAddUsedFailures)
            }
        }
        var raised: InterruptSignals = []
        if published {
            raise(.vring)
            raised.insert(.vring)
        }
        if justPoisoned {
            // Control-queue poison: NEEDS_RESET only, no interrupt bit, no eventfd.
            setNeedsReset()
        }
        return raised
    }
}
