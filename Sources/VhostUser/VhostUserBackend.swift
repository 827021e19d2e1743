//! The vhost-user-net backend: a Unix socket server whose data path is the
//! device core. The only target besides KVMHost that makes system calls.
//! This file holds its state and lifetime; the event loop, the kicks, the
//! control socket and the message handler are extensions beside it.

import CVhost
import VirtioCore
#if canImport(Glibc)
import Glibc
#endif

/// How much a backend log line matters: progress, or something a frontend
/// did wrong (always worth showing).
public enum VhostLogLevel: Sendable {
    case progress, problem
}

/// What one served session did (as `vtrace serve --json` prints it).
public struct VhostSessionSummary: Sendable, Encodable {
    public var messages = 0
    public var kicks = 0
    public var callSignals = 0
    /// Why the session ended: the peer closed, a refused message, or a stop request.
    public var ending = ""
}

/// The signal (SIGINT, SIGTERM) that last stopped the backends of this
/// process (``VhostUserBackend/stopOnSignals()``); 0 when none has.
public var vhostStopSignal: Int32 { cvhost_stop_signal() }

/// A vhost-user-net backend (server side) over one device core.
///
/// Single-threaded: one epoll loop serves the control socket, every ring's
/// kick eventfd and a stop eventfd. A kick runs the device's queue
/// processing (as a QueueNotify write would on virtio-mmio); interrupts the
/// device raises go out on the pair's call eventfds. Every malformed or
/// hostile message ends the session with a clear error (the device is reset
/// and the frontend's memory unmapped); the backend then waits for the next
/// connection (a frontend's `reconnect`).
public final class VhostUserBackend<Observer: DeviceObserver> {
    public var device: VirtioNetDevice<VhostMemory, Observer>
    /// Where progress and refusals go.
    public var log: (VhostLogLevel, String) -> Void
    /// Called (on the serving thread) when a frontend connects.
    public var connected: () -> Void = {}
    /// Kick / call / err eventfds per ring (-1: none).
    var kickFD: [Int32]
    /// Rings kicked before they were enabled.
    var pendingKick: [Bool]
    /// Rings whose SET_VRING_KICK came without an fd (the "no fd" bit): the
    /// protocol asks the backend to poll them (``pollRings()``).
    var polled: [Bool]
    /// Per polled ring, the `avail->idx` a poll-kick last found and could not
    /// advance past (-1: none): it is not kicked again until the index moves,
    /// so a ring the device will not take from records no kick a millisecond.
    var pollStuckAt: [Int32]
    var callFD: [Int32]
    var errFD: [Int32]
    var protocolFeatures: UInt64 = 0
    var protocolNegotiated = false
    var epoll: Int32 = -1
    var connection: Int32 = -1
    /// Written by a signal handler or ``requestStop()`` to end serving.
    public let stopFD: Int32
    var stopping = false
    var summary = VhostSessionSummary()
    /// Sessions ended so far (the summaries kept are capped; this is not).
    var sessionsEnded = 0
    /// How many session summaries `serve` keeps (the newest): a frontend
    /// reconnecting forever must not grow memory.
    public var summariesKept = 1000

    /// How long a frontend may take to finish a message it began, or to read
    /// a reply, before the session is ended (the socket is non-blocking: a
    /// stalled peer never blocks the loop, its kicks or a stop request). The
    /// time counts for the whole message, not per piece: a peer trickling a
    /// byte at a time gets no longer.
    public var messageDeadlineMilliseconds: Int32 = 5000

    static var stopTag: UInt64 { 1 << 32 }
    static var socketTag: UInt64 { 1 << 33 }
    static var listenTag: UInt64 { 1 << 34 }

    public init(device: VirtioNetDevice<VhostMemory, Observer>, log: @escaping (VhostLogLevel, String) -> Void) throws(VhostUserError) {
        self.device = device
        self.log = log
        let rings = Int(device.queuePairs) * 2
        kickFD = Array(repeating: -1, count: rings)
        pendingKick = Array(repeating: false, count: rings)
        polled = Array(repeating: false, count: rings)
        pollStuckAt = Array(repeating: -1, count: rings)
        callFD = Array(repeating: -1, count: rings)
        errFD = Array(repeating: -1, count: rings)
        stopFD = cvhost_eventfd()
        // The frontend hands us call fds of its choosing; a pipe or socket whose
        // reader is gone must fail a write with EPIPE, not kill the process.
        // (Before the throw below: deinit, which undoes it, runs either way.)
        cvhost_ignore_sigpipe()
        guard stopFD >= 0 else { throw VhostUserError("eventfd: \(String(cString: strerror(errno)))") }
    }

    deinit {
        closeRingFDs()
        if connection >= 0 { close(connection) }
        if epoll >= 0 { close(epoll) }
        // A signal after this must not write to a closed (or reused) fd number.
        cvhost_stop_signals_off(stopFD)
        close(stopFD)
        cvhost_sigpipe_release()
    }

    /// Ends `serve` at its next wake-up (safe from another thread).
    public func requestStop() {
        var one: UInt64 = 1
        _ = write(stopFD, &one, 8)
    }

    /// Makes SIGINT and SIGTERM end serving cleanly (the caller then finishes
    /// its trace). Several backends in one process each get the signal.
    public func stopOnSignals() throws(VhostUserError) {
        guard cvhost_stop_on_signals(stopFD) == 0 else {
            throw VhostUserError("more than 16 backends in this process already stop on SIGINT/SIGTERM")
        }
    }
}
