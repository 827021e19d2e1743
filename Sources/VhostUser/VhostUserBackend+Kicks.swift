//! The backend's data path: a kick (from its eventfd, from polling a ring
//! without one, or handed in) runs the device's queue processing, and the
//! interrupts it raises go out on the pair's call eventfds.

import CVhost
import TraceRecording
import VirtioCore
#if canImport(Glibc)
import Glibc
#endif

extension VhostUserBackend {
    /// A ring's kick eventfd became readable: drain it and notify the device.
    /// A kick for a ring not enabled yet waits until the ring is.
    func kick(ring: Int) {
        var counter: UInt64 = 0
        let n = read(kickFD[ring], &counter, 8)
        if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) {
            // Not an eventfd that stays quiet (a pipe whose writer is gone):
            // it would wake the loop forever.
            log(.problem, "vhost-user: ring \(ring)'s kick fd is at its end; the ring is no longer kicked")
            cvhost_epoll_del(epoll, kickFD[ring])
            close(kickFD[ring])
            kickFD[ring] = -1
            return
        }
        if n < 0 { return }  // a stale wake-up: nothing to read
        summary.kicks += 1
        guard device.state.queues[ring].ready else {
            pendingKick[ring] = true
            return
        }
        notifyDevice(ring: ring)
    }

    /// Rings set up without a kick fd (bit 8 of SET_VRING_KICK: "poll
    /// instead"): each TX ring that is ready, not poisoned, and whose avail index moved past
    /// what the device took is run as if kicked (and recorded as a kick).
    /// The index is peeked, not read: a hint that is never recorded and
    /// decides only whether to kick; the kick itself reads it as usual.
    /// The serving loop calls this after every wake-up, at least every
    /// millisecond while any ring is polled.
    @_specialize(exported: true, where Observer == NoObserver)
    @_specialize(exported: true, where Observer == RecordingObserver)
    public func pollRings() {
        guard let memory = device.memory else { return }
        // TX rings only: an RX kick does nothing (RX buffers are taken when TX
        // delivers), and a poisoned ring waits for a reset, not for kicks.
        for q in polled.indices where polled[q] && q % 2 == 1 && !device.state.poisoned[q] {
            let queue = device.state.queues[q]
            guard queue.ready, queue.availRing != 0 else { continue }
            var raw: UInt16 = 0
            guard withUnsafeMutableBytes(of: &raw, { memory.peek(queue.availRing &+ 2, into: $0) }) else { continue }
            let idx = UInt16(littleEndian: raw)
            guard idx != queue.nextAvail, Int32(idx) != pollStuckAt[q] else { continue }
            summary.kicks += 1
            notifyDevice(ring: q)
            // Nothing taken (no DRIVER_OK yet, an inactive pair, a bad index
            // under no-poison): wait for the index to move before kicking again.
            pollStuckAt[q] = device.state.queues[q].nextAvail == queue.nextAvail ? Int32(idx) : -1
        }
    }

    /// Runs the device for a kick of `ring` and signals the pair's call eventfds.
    @_specialize(exported: true, where Observer == NoObserver)
    @_specialize(exported: true, where Observer == RecordingObserver)
    func notifyDevice(ring: Int) {
        pendingKick[ring] = false
        let (raised, _) = device.apply(.kick(queue: UInt16(ring)))
        if raised.contains(.vring) {
            // The used rings of the kicked queue's pair advanced (TX completions, RX deliveries).
            let pair = ring / 2
            for q in 2 * pair...2 * pair + 1 where callFD[q] >= 0 {
                var one: UInt64 = 1
                _ = write(callFD[q], &one, 8)
                summary.callSignals += 1
            }
        }
    }

    /// A kick of `ring` without its eventfd (the fuzzer's and tools' way in).
    @_specialize(exported: true, where Observer == NoObserver)
    @_specialize(exported: true, where Observer == RecordingObserver)
    public func deliverKick(ring: Int) {
        guard ring >= 0, ring < kickFD.count else { return }
        summary.kicks += 1
        if device.state.queues[ring].ready { notifyDevice(ring: ring) } else { pendingKick[ring] = true }
    }
}
