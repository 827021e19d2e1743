// What a guest can never break, checked after every step of an input.

import VirtioCore

/// Stops the process when `after` has a counter below its value in `before`.
/// Compares the sixteen fields directly (a plain load and compare each); only a
/// failure walks the named counters to say which one.
@inline(__always)
func checkCountersNeverDecrease(_ before: NetCounters, _ after: NetCounters) {
    let ok = after.txPackets >= before.txPackets && after.txBytes >= before.txBytes
        && after.rxPackets >= before.rxPackets && after.rxBytes >= before.rxBytes
        && after.txDroppedNoRxBuffer >= before.txDroppedNoRxBuffer
        && after.txDroppedRxPoisoned >= before.txDroppedRxPoisoned
        && after.txChainInvalid >= before.txChainInvalid && after.txOversizeDropped >= before.txOversizeDropped
        && after.rxChainInvalid >= before.rxChainInvalid && after.rxWriteFailed >= before.rxWriteFailed
        && after.txAddUsedFailures >= before.txAddUsedFailures && after.rxAddUsedFailures >= before.rxAddUsedFailures
        && after.invalidAvailIdxCount >= before.invalidAvailIdxCount && after.ctrlMqSet >= before.ctrlMqSet
        && after.ctrlChainInvalid >= before.ctrlChainInvalid && after.ctrlAddUsedFailures >= before.ctrlAddUsedFailures
    if ok { return }
    for c in NetCounter.allCases where after[c] < before[c] { fatalError("\(c.name) went backwards") }
    fatalError("a counter went backwards")
}

/// Queues poisoned now.
@inline(__always)
func poisonedQueues(_ dev: FuzzedDevice) -> Int {
    var n = 0
    for p in dev.state.poisoned where p { n += 1 }
    return n
}

/// Each poisoning counts exactly once: over one step, invalid_avail_idx_count
/// grows by the number of queues that became poisoned, unless the step
/// reset the device (no step both resets and kicks), which clears every
/// flag and counts nothing. (Reset clears poison, so the lifetime count may
/// pass the queue count: CountersTests.aQueuePoisonedAgainAfterResetCountsAgain.)
@inline(__always)
func checkPoisonCountedOnce(countBefore: UInt64, poisonedBefore: Int, _ dev: FuzzedDevice) {
    let grew = dev.counters.invalidAvailIdxCount &- countBefore
    let poisoned = poisonedQueues(dev)
    guard grew == UInt64(max(0, poisoned - poisonedBefore)) && (poisoned >= poisonedBefore || poisoned == 0)
    else { fatalError("poison counted \(grew) times for \(poisonedBefore) -> \(poisoned) poisoned queues") }
}

/// The device-wide rules: active pairs in range, every queue's size and ring alignment legal.
@inline(__always)
func checkDeviceRules(_ dev: FuzzedDevice) {
    guard (1...dev.queuePairs).contains(dev.state.activeQueuePairs) else { fatalError("active pairs out of range") }
    for i in dev.state.queues.indices {
        let q = dev.state.queues[i]
        guard q.size.nonzeroBitCount == 1, q.size <= q.maxSize, q.descTable % 16 == 0, q.availRing % 2 == 0,
              q.usedRing % 4 == 0 else { fatalError("queue state broke its rules: \(q)") }
    }
}
