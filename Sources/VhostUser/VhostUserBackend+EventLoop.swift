//! The backend's event loop: one epoll set over the listening socket, the
//! control connection, every ring's kick eventfd and the stop eventfd; and
//! how a session ends (its fds closed, the device reset).

import CVhost
import TraceRecording
import VirtioCore
#if canImport(Glibc)
import Glibc
#endif

extension VhostUserBackend {
    /// Listens on `path` and serves frontends one at a time, `sessions` of
    /// them (nil: until stopped). Each session ends with the device reset.
    /// - Parameter ready: called once the socket listens (a frontend may connect).
    @_specialize(exported: true, where Observer == NoObserver)
    @_specialize(exported: true, where Observer == RecordingObserver)
    public func serve(path: String, sessions: Int?, ready: () -> Void = {}) throws(VhostUserError) -> [VhostSessionSummary] {
        let listener = cvhost_listen(path)
        guard listener >= 0 else {
            if errno == EEXIST { throw VhostUserError("cannot listen on \(path): it exists and is not a socket (not replaced)") }
            throw VhostUserError("cannot listen on \(path): \(String(cString: strerror(errno)))")
        }
        defer {
            close(listener)
            unlink(path)
        }
        if epoll < 0 {
            epoll = cvhost_epoll_create()
            guard epoll >= 0 else { throw VhostUserError("epoll_create1: \(String(cString: strerror(errno)))") }
            cvhost_epoll_add(epoll, stopFD, Self.stopTag)
        }
        cvhost_epoll_add(epoll, listener, Self.listenTag)
        defer { cvhost_epoll_del(epoll, listener) }
        ready()
        var done: [VhostSessionSummary] = []
        var tags = [UInt64](repeating: 0, count: 64)
        let endedBefore = sessionsEnded
        while !stopping && (sessions.map { sessionsEnded - endedBefore < $0 } ?? true) {
            // Polled TX rings (no kick fd) are looked at every millisecond.
            let n = cvhost_epoll_wait(epoll, &tags, 64, polledTX ? 1 : 1000)
            if n < 0 { throw VhostUserError("epoll_wait: \(String(cString: strerror(errno)))") }
            // Control messages first: a frontend sends a ring's set-up before it
            // kicks it, and both may be pending in one wake-up.
            // (Two passes over the tags rather than a sorted copy: no allocation per wake-up.)
            for pass in 0..<2 {
                for i in 0..<Int(n) where (tags[i] == Self.socketTag) == (pass == 0) {
                    wake(tags[i], listener: listener, done: &done)
                }
            }
            if connection >= 0 && polledTX {
                pollRings()
                endSessionIfMemoryShrank(into: &done)
            }
        }
        if connection >= 0 { endSession("stopped", into: &done) }
        return done
    }

    /// One ready descriptor of the loop: stop, a new connection, a message, a kick.
    @_specialize(exported: true, where Observer == NoObserver)
    @_specialize(exported: true, where Observer == RecordingObserver)
    func wake(_ tag: UInt64, listener: Int32, done: inout [VhostSessionSummary]) {
        if tag == Self.stopTag {
            stopping = true
        } else if tag == Self.listenTag {
            let c = cvhost_accept(listener)
            guard c >= 0 else { return }
            if connection >= 0 {
                log(.problem, "vhost-user: a second frontend connected while one is served; refused")
                close(c)
                return
            }
            connection = c
            _ = cvhost_set_nonblocking(c)
            _ = VhostMemory.takeTruncationFaults()  // none of them this session's
            summary = VhostSessionSummary()
            cvhost_epoll_add(epoll, c, Self.socketTag)
            log(.progress, "vhost-user: frontend connected")
            connected()
        } else if tag == Self.socketTag {
            do throws(VhostUserError) {
                // At most 64 messages per wake-up: a frontend that never stops
                // sending must not starve the kicks or a stop request.
                var open = try receiveMessage()
                var handled = 1
                while open && handled < 64 && socketHasData() {
                    open = try receiveMessage()
                    handled += 1
                }
                if !open { endSession("the frontend closed the connection", into: &done) }
            } catch {
                log(.problem, "vhost-user: \(error.message); closing the connection")
                endSession(error.message, into: &done)
            }
        } else if tag < UInt64(kickFD.count), connection >= 0, kickFD[Int(tag)] >= 0 {
            // (An fd a message in this same wake-up took away has no event to read.)
            kick(ring: Int(tag))
        }
        endSessionIfMemoryShrank(into: &done)
    }

    /// Ends the session if a device access since the last look hit a page
    /// the frontend truncated away (the SIGBUS guard counted it).
    func endSessionIfMemoryShrank(into done: inout [VhostSessionSummary]) {
        if connection >= 0, VhostMemory.takeTruncationFaults() > 0 {
            let why = "the frontend shrank its shared memory file while the device used it (those accesses read zeros)"
            log(.problem, "vhost-user: \(why); closing the connection")
            endSession(why, into: &done)
        }
    }

    /// Whether any TX ring is polled (RX rings are never polled: see ``pollRings()``).
    var polledTX: Bool {
        var q = 1
        while q < polled.count {
            if polled[q] { return true }
            q += 2
        }
        return false
    }

    func endSession(_ why: String, into done: inout [VhostSessionSummary]) {
        guard connection >= 0 else { return }
        cvhost_epoll_del(epoll, connection)
        close(connection)
        connection = -1
        dropSessionState()
        summary.ending = why
        sessionsEnded += 1
        done.append(summary)
        if done.count > max(1, summariesKept) { done.removeFirst(done.count - max(1, summariesKept)) }
    }

    /// What a session leaves behind, undone: ring fds closed, the device
    /// reset, the frontend's memory unmapped, protocol features forgotten.
    func dropSessionState() {
        closeRingFDs()
        device.apply(.reset)
        device.memory = nil
        // A fault the ended session caused is not the next one's.
        _ = VhostMemory.takeTruncationFaults()
        protocolFeatures = 0
        protocolNegotiated = false
    }

    func closeRingFDs() {
        for i in kickFD.indices {
            if kickFD[i] >= 0 {
                if epoll >= 0 { cvhost_epoll_del(epoll, kickFD[i]) }
                close(kickFD[i])
            }
            if callFD[i] >= 0 { close(callFD[i]) }
            if errFD[i] >= 0 { close(errFD[i]) }
            kickFD[i] = -1
            pendingKick[i] = false
            polled[i] = false
            pollStuckAt[i] = -1
            callFD[i] = -1
            errFD[i] = -1
        }
    }

    /// Ends the frontend's session as a refused message or a closed socket
    /// does: ring fds closed, device reset, memory unmapped.
    @_specialize(exported: true, where Observer == NoObserver)
    @_specialize(exported: true, where Observer == RecordingObserver)
    public func closeSession() {
        if connection >= 0 {
            var done: [VhostSessionSummary] = []
            endSession("closed", into: &done)
        } else {
            dropSessionState()
        }
    }
}
