//! The vhost-user-net backend: a Unix socket server whose data path is the
//! device core. The only target besides KVMHost that makes system calls.

import CVhost
import HostPrimitives
import TraceRecording
import VirtioCore
#if canImport(Glibc)
import Glibc
#endif

/// How much a backend log line matters: progress, or something a frontend
/// did wrong (always worth showing).
public enum VhostLogLevel: Sendable {
    case progress, problem
}

/// What one served session did.
public struct VhostSessionSummary: Sendable {
    public var messages = 0
    public var kicks = 0
    public var callSignals = 0
    /// Why the session ended: the peer closed, a refused message, or a stop request.
    public var ending = ""
}

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

    // MARK: The data path

    /// Whether another message is waiting on the control socket.
    func socketHasData() -> Bool {
        var p = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) == 1
    }

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

    // MARK: The control socket

    /// How long a frontend may take to finish a message it began, or to read
    /// a reply, before the session is ended (the socket is non-blocking: a
    /// stalled peer never blocks the loop, its kicks or a stop request). The
    /// time counts for the whole message, not per piece: a peer trickling a
    /// byte at a time gets no longer.
    public var messageDeadlineMilliseconds: Int32 = 5000

    /// A message's deadline on the monotonic clock (nanoseconds).
    func deadline() -> UInt64 { monotonicNanoseconds() + UInt64(max(0, messageDeadlineMilliseconds)) * 1_000_000 }

    /// Milliseconds left until `deadline` (0 once it passed), for poll.
    static func millisecondsLeft(_ deadline: UInt64) -> Int32 {
        let now = monotonicNanoseconds()
        return now >= deadline ? 0 : Int32(clamping: (deadline - now + 999_999) / 1_000_000)
    }

    /// `5 s`, `0.3 s`: a deadline as the error messages say it.
    static func seconds(_ milliseconds: Int32) -> String {
        milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(Double(milliseconds) / 1000) s"
    }

    /// `a regular file`, `a character device`: an fd's type as the errors say it.
    static func describe(fileType type: mode_t) -> String {
        switch type {
        case S_IFREG: return "a regular file"
        case S_IFDIR: return "a directory"
        case S_IFBLK: return "a block device"
        case S_IFCHR: return "a character device"
        case S_IFLNK: return "a symbolic link"
        default: return "a file of type 0o\(String(type, radix: 8))"
        }
    }

    /// Reads exactly `buffer.count` bytes (collecting any fds into `fds`):
    /// false only when the peer closed before the first byte and `eofIsClean`.
    func readFully(_ buffer: UnsafeMutableRawBufferPointer, fds: inout [Int32], truncated: inout Int32, what: String,
                   eofIsClean: Bool, deadline: UInt64) throws(VhostUserError) -> Bool {
        var got = 0
        while got < buffer.count {
            var more = [Int32](repeating: -1, count: VhostUserBits.maxRegions)
            var m: Int32 = 0
            let n = cvhost_recv(connection, buffer.baseAddress! + got, buffer.count - got, &more, Int32(more.count), &m, &truncated)
            if n > 0 {
                fds += more.prefix(Int(m))
                got += n
                continue
            }
            if n == 0 {
                if got == 0 && eofIsClean { return false }
                throw VhostUserError("the frontend disappeared \(got) bytes into \(what)")
            }
            guard errno == EAGAIN || errno == EWOULDBLOCK else {
                throw VhostUserError("reading \(what): \(String(cString: strerror(errno)))")
            }
            switch cvhost_wait(connection, 0, stopFD, Self.millisecondsLeft(deadline)) {
            case 1: continue
            case 2: throw VhostUserError("stopped while the frontend was sending \(what)")
            case 0: throw VhostUserError("the frontend sent \(got) of \(buffer.count) bytes of \(what) and did not finish the message within \(Self.seconds(messageDeadlineMilliseconds))")
            default: throw VhostUserError("waiting for \(what): \(String(cString: strerror(errno)))")
            }
        }
        return true
    }

    /// Reads one message and answers it; false when the peer closed cleanly.
    func receiveMessage() throws(VhostUserError) -> Bool {
        var received: [Int32] = []
        var truncated: Int32 = 0
        var handedOver = false
        defer { if !handedOver { for fd in received { close(fd) } } }
        var head = [UInt8](repeating: 0, count: VhostUserBits.headerSize)
        let due = deadline()
        let open = try head.withUnsafeMutableBytes { raw in
            Result { () throws(VhostUserError) in
                try readFully(raw, fds: &received, truncated: &truncated, what: "a message header", eofIsClean: true, deadline: due)
            }
        }.get()
        if !open { return false }
        let header = try head.withUnsafeBytes { raw in Result { () throws(VhostUserError) in try VhostUserHeader.parse(raw) } }.get()
        let name = VhostUserRequest(rawValue: header.request)?.name ?? "message \(header.request)"
        // File descriptors come with the header; any with the payload are refused below.
        let withHeader = received.count
        var payload = [UInt8](repeating: 0, count: Int(header.size))
        _ = try payload.withUnsafeMutableBytes { raw in
            Result { () throws(VhostUserError) in
                try readFully(raw, fds: &received, truncated: &truncated, what: "a \(header.size)-byte \(name) payload", eofIsClean: false,
                              deadline: due)
            }
        }.get()
        guard received.count <= VhostUserBits.maxRegions, truncated == 0, received.count == withHeader else {
            throw VhostUserError("\(name) came with more than \(VhostUserBits.maxRegions) file descriptors, or some after its header")
        }
        summary.messages += 1
        handedOver = true
        let answer = payload.withUnsafeBytes { raw in
            Result { () throws(VhostUserError) in try process(header: header, payload: raw, fds: received) }
        }
        switch answer {
        case .success(let reply): if let reply { try send(reply) }
        case .failure(let error):
            if header.flags & VhostUserBits.needReply != 0, protocolFeatures & VhostUserBits.protocolReplyAck != 0 {
                try? send(VhostUserReply.u64(header.request, 1))
            }
            throw error
        }
        return true
    }

    /// Parses and carries out one message, as the socket loop does with each
    /// (public for the fuzzer and tools): the reply to send, if any, including
    /// a REPLY_ACK ack. `fds` become the backend's (closed when refused).
    public func process(header: VhostUserHeader, payload: UnsafeRawBufferPointer, fds: [Int32]) throws(VhostUserError) -> [UInt8]? {
        let message: VhostUserMessage
        do throws(VhostUserError) { message = try VhostUserMessage.parse(header, payload: payload, fds: fds.count) } catch {
            for fd in fds { close(fd) }
            throw error
        }
        let reply = try handle(message, fds: fds, request: header.request)
        // Any message may be what a stuck polled ring was waiting for (features, an enable).
        for i in pollStuckAt.indices { pollStuckAt[i] = -1 }
        for ring in pendingKick.indices where pendingKick[ring] && device.state.queues[ring].ready { notifyDevice(ring: ring) }
        if reply == nil, header.flags & VhostUserBits.needReply != 0, protocolFeatures & VhostUserBits.protocolReplyAck != 0 {
            return VhostUserReply.u64(header.request, 0)
        }
        return reply
    }

    /// A kick of `ring` without its eventfd (the fuzzer's and tools' way in).
    @_specialize(exported: true, where Observer == NoObserver)
    @_specialize(exported: true, where Observer == RecordingObserver)
    public func deliverKick(ring: Int) {
        guard ring >= 0, ring < kickFD.count else { return }
        summary.kicks += 1
        if device.state.queues[ring].ready { notifyDevice(ring: ring) } else { pendingKick[ring] = true }
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

    func send(_ bytes: [UInt8]) throws(VhostUserError) {
        let due = deadline()
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { cvhost_send(connection, $0.baseAddress! + sent, $0.count - sent) }
            if n > 0 {
                sent += n
                continue
            }
            guard n < 0, errno == EAGAIN || errno == EWOULDBLOCK else {
                throw VhostUserError("sending a reply: \(n == 0 ? "nothing sent" : String(cString: strerror(errno)))")
            }
            switch cvhost_wait(connection, 1, stopFD, Self.millisecondsLeft(due)) {
            case 1: continue
            case 2: throw VhostUserError("stopped while the frontend was not reading its replies")
            default: throw VhostUserError("the frontend does not read its replies (\(Self.seconds(messageDeadlineMilliseconds)))")
            }
        }
    }

    func ring(_ index: UInt32, _ what: String) throws(VhostUserError) -> Int {
        guard Int(index) < kickFD.count else {
            throw VhostUserError("\(what) names ring \(index); the device has \(kickFD.count) (\(device.queuePairs) pair\(device.queuePairs == 1 ? "" : "s"))")
        }
        return Int(index)
    }

    /// Handles one message; a reply of its own, or nil.
    func handle(_ message: VhostUserMessage, fds: [Int32], request: UInt32) throws(VhostUserError) -> [UInt8]? {
        switch message {
        case .getFeatures:
            return VhostUserReply.u64(request, device.vhostOfferedFeatures | VhostUserBits.protocolFeatures)
        case .setFeatures(let f):
            let offered = device.vhostOfferedFeatures | VhostUserBits.protocolFeatures
            protocolNegotiated = f & VhostUserBits.protocolFeatures != 0
            device.apply(.setFeatures(f & ~VhostUserBits.protocolFeatures))
            guard f & ~offered == 0, device.state.status.contains(.featuresOK) else {
                throw VhostUserError("SET_FEATURES 0x\(String(f, radix: 16)): the device offered 0x\(String(offered, radix: 16)) and refused them")
            }
        case .setOwner, .ignored:
            break
        case .resetOwner, .resetDevice:
            device.apply(.reset)
        case .setMemTable(let table):
            let memory = try VhostMemory(table: table, fds: fds)
            device.memory = memory
            log(.progress, "vhost-user: memory table of \(table.count) region\(table.count == 1 ? "" : "s"), \(table.reduce(0) { $0 + $1.size } >> 20) MiB")
        case .setVringNum(let index, let num):
            let q = try ring(index, "SET_VRING_NUM")
            let max = UInt32(device.config.effectiveQueueMaxSize)
            guard num >= 1, num <= max, num & (num - 1) == 0 else {
                throw VhostUserError("SET_VRING_NUM \(num) for ring \(q): the device takes a power of two up to \(max)")
            }
            device.apply(.setRingSize(queue: UInt16(q), size: UInt16(num)))
        case .setVringAddr(let index, _, let desc, let used, let avail, _):
            let q = try ring(index, "SET_VRING_ADDR")
            guard let memory = device.memory else { throw VhostUserError("SET_VRING_ADDR for ring \(q) before SET_MEM_TABLE") }
            func gpa(_ a: UInt64, _ name: String) throws(VhostUserError) -> UInt64 {
                guard let g = memory.guestAddress(ofFrontendAddress: a) else {
                    throw VhostUserError("ring \(q)'s \(name) address 0x\(String(a, radix: 16)) is outside the memory table")
                }
                return g
            }
            device.apply(.setRingAddresses(queue: UInt16(q), desc: try gpa(desc, "descriptor table"), avail: try gpa(avail, "avail ring"),
                                           used: try gpa(used, "used ring")))
        case .setVringBase(let index, let num):
            let q = try ring(index, "SET_VRING_BASE")
            guard num <= UInt32(UInt16.max) else { throw VhostUserError("SET_VRING_BASE \(num) for ring \(q) is not a 16-bit index") }
            device.apply(.setRingBase(queue: UInt16(q), base: UInt16(num)))
        case .getVringBase(let index):
            let q = try ring(index, "GET_VRING_BASE")
            guard case .ringBase(let base) = device.apply(.stopRing(queue: UInt16(q))).reply else { return nil }
            return VhostUserReply.vringState(request, index: index, num: UInt32(base))
        case .setVringFD(let which, let index, let hasFD):
            let q: Int
            do throws(VhostUserError) { q = try ring(index, which.name) } catch {
                for fd in fds { close(fd) }
                throw error
            }
            let fd: Int32 = hasFD ? fds[0] : -1
            if fd >= 0 {
                // Eventfds (an anonymous inode: no type bits), pipes and sockets
                // only: files ignore O_NONBLOCK (a FUSE file could block the loop),
                // /dev/urandom as a kick fd would read as a kick forever, and
                // /dev/null cannot be watched at all.
                var st = stat()
                let type = fstat(fd, &st) == 0 ? st.st_mode & S_IFMT : S_IFREG
                guard type == 0 || type == S_IFIFO || type == S_IFSOCK else {
                    close(fd)
                    throw VhostUserError("\(which.name) for ring \(q) passed \(Self.describe(fileType: type)), not an eventfd, a pipe or a socket")
                }
                // Never block on the frontend's fds: a full pipe or an empty one must not stop the loop.
                _ = cvhost_set_nonblocking(fd)
            }
            switch which {
            case .setVringKick:
                if kickFD[q] >= 0 {
                    cvhost_epoll_del(epoll, kickFD[q])
                    close(kickFD[q])
                }
                kickFD[q] = -1
                // (No loop yet, as under the fuzzer: nothing to watch it with.)
                if fd >= 0, epoll >= 0, cvhost_epoll_add(epoll, fd, UInt64(q)) != 0 {
                    let reason = String(cString: strerror(errno))
                    close(fd)
                    throw VhostUserError("SET_VRING_KICK for ring \(q): its fd cannot be watched (\(reason))")
                }
                kickFD[q] = fd
                polled[q] = fd < 0
                pollStuckAt[q] = -1
                if fd < 0 {
                    log(.progress, "vhost-user: ring \(q) has no kick eventfd; the backend polls it (every millisecond)")
                }
                // Without protocol features a ring starts when its kick fd arrives.
                if !protocolNegotiated { device.apply(.enableRing(queue: UInt16(q), enabled: true)) }
            case .setVringCall:
                if callFD[q] >= 0 { close(callFD[q]) }
                callFD[q] = fd
            default:
                if errFD[q] >= 0 { close(errFD[q]) }
                errFD[q] = fd
            }
        case .getProtocolFeatures:
            return VhostUserReply.u64(request, VhostUserBits.offeredProtocolFeatures)
        case .setProtocolFeatures(let f):
            guard f & ~VhostUserBits.offeredProtocolFeatures == 0 else {
                throw VhostUserError("SET_PROTOCOL_FEATURES 0x\(String(f, radix: 16)): offered 0x\(String(VhostUserBits.offeredProtocolFeatures, radix: 16))")
            }
            protocolFeatures = f
        case .getQueueNum:
            return VhostUserReply.u64(request, UInt64(device.queuePairs))
        case .setVringEnable(let index, let enabled):
            let q = try ring(index, "SET_VRING_ENABLE")
            device.apply(.enableRing(queue: UInt16(q), enabled: enabled))
        }
        return nil
    }
}
