import CVhost
import Foundation
import Testing
import TraceFormat
import TraceAnalysis
import TraceRecording
import VhostUser
import VirtioCore

/// A frontend written for the tests: it shares a memfd, lays out two rings in
/// it and talks the protocol over the socket, as QEMU or virtio-user would.
final class TestFrontend {
    let sock: Int32
    let memfd: Int32
    let memory: UnsafeMutableRawPointer
    static let size = 1 << 20
    /// Guest-physical base of the shared memory (the frontend's own address differs).
    static let gpa: UInt64 = 0x10_0000
    var userBase: UInt64 { UInt64(UInt(bitPattern: memory)) }

    init(path: String) throws {
        var s: Int32 = -1
        for _ in 0..<200 {
            s = cvhost_connect(path)
            if s >= 0 { break }
            usleep(10_000)
        }
        guard s >= 0 else { throw VhostUserError("cannot connect to \(path)") }
        sock = s
        memfd = cvhost_memfd(Self.size)
        memory = mmap(nil, Self.size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0)!
    }

    deinit {
        munmap(memory, Self.size)
        close(memfd)
        close(sock)
    }

    func send(_ request: VhostUserRequest, flags: UInt32 = VhostUserBits.version, _ payload: [UInt8] = [], fds: [Int32] = []) {
        var bytes = VhostUserHeader(request: request.rawValue, flags: flags, size: UInt32(payload.count)).bytes + payload
        _ = bytes.withUnsafeMutableBytes { raw in fds.withUnsafeBufferPointer { cvhost_send_fds(sock, raw.baseAddress, raw.count, $0.baseAddress, Int32(fds.count)) } }
    }

    func sendRaw(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { cvhost_send(sock, $0.baseAddress, $0.count) } }

    /// A reply's u64 payload (or nil when the backend closed the connection).
    func reply() -> UInt64? {
        var buf = [UInt8](repeating: 0, count: 20)
        var got = 0
        while got < 20 {
            let n = buf.withUnsafeMutableBytes { recv(sock, $0.baseAddress! + got, 20 - got, 0) }
            if n <= 0 { return nil }
            got += n
        }
        return buf.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 12, as: UInt64.self) }
    }

    /// True once the backend has closed the connection (within 5 s).
    func closedByBackend() -> Bool {
        var pfd = pollfd(fd: sock, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 5000) == 1 else { return false }
        var b: UInt8 = 0
        return recv(sock, &b, 1, 0) == 0
    }

    static func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func u32s(_ a: UInt32, _ b: UInt32) -> [UInt8] { withUnsafeBytes(of: a.littleEndian) { Array($0) } + withUnsafeBytes(of: b.littleEndian) { Array($0) } }

    func memTable(_ regions: [(gpa: UInt64, size: UInt64, user: UInt64, offset: UInt64)], fds: [Int32]) {
        var p = Self.u32s(UInt32(regions.count), 0)
        for r in regions { p += Self.u64(r.gpa) + Self.u64(r.size) + Self.u64(r.user) + Self.u64(r.offset) }
        send(.setMemTable, flags: VhostUserBits.version | VhostUserBits.needReply, p, fds: fds)
    }

    /// Ring q's parts at offsets 0x8000 * q: descriptors, avail (+0x1000), used (+0x2000).
    static func ringOffset(_ q: Int) -> Int { 0x8000 * q }

    func ringAddress(_ q: Int, desc: UInt64? = nil) {
        let base = userBase + UInt64(Self.ringOffset(q))
        send(.setVringAddr, Self.u32s(UInt32(q), 0) + Self.u64(desc ?? base) + Self.u64(base + 0x2000) + Self.u64(base + 0x1000) + Self.u64(0))
    }

    func store<T: FixedWidthInteger>(_ v: T, at offset: Int) { memory.storeBytes(of: v.littleEndian, toByteOffset: offset, as: T.self) }
    func load<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T { T(littleEndian: memory.load(fromByteOffset: offset, as: T.self)) }

    /// Puts a one-descriptor chain at slot `i` of ring `q` and publishes it in avail.
    func post(ring q: Int, slot i: Int, bufferOffset: Int, length: UInt32, writable: Bool) {
        let d = Self.ringOffset(q) + 16 * i
        store(Self.gpa + UInt64(bufferOffset), at: d)
        store(length, at: d + 8)
        store(UInt16(writable ? 2 : 0), at: d + 12)
        store(UInt16(0), at: d + 14)
        store(UInt16(i), at: Self.ringOffset(q) + 0x1000 + 4 + 2 * i)
    }

    func publishAvail(ring q: Int, idx: UInt16) { store(idx, at: Self.ringOffset(q) + 0x1000 + 2) }
    func usedIdx(ring q: Int) -> UInt16 { load(UInt16.self, at: Self.ringOffset(q) + 0x2000 + 2) }
}

/// The backend serving on a background thread.
final class ServedBackend: @unchecked Sendable {
    let backend: VhostUserBackend<RecordingObserver>
    let recorder: TraceRecorder
    var thread: Thread?
    var summaries: [VhostSessionSummary] = []
    var failure: VhostUserError?
    let done = DispatchSemaphore(value: 0)
    let path: String
    let tracePath: String

    init(sessions: Int, name: String, deadlineMilliseconds: Int32 = 5000, summariesKept: Int = 1000, options: RecordingOptions = RecordingOptions()) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vtrace-vhost-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        path = dir.appendingPathComponent("\(name).sock").path
        tracePath = dir.appendingPathComponent("\(name).vtrace").path
        let config = NetConfig(queuePairs: 1, queueMaxSize: 32768)
        recorder = try TraceRecorder(path: tracePath, config: config, nics: 1, regions: [], options: options, header: { $0.transport = "vhost-user" })
        backend = try VhostUserBackend(device: VirtioNetDevice(config: config, memory: nil, observer: recorder.observer(nic: 0)), log: { _, _ in })
        backend.messageDeadlineMilliseconds = deadlineMilliseconds
        backend.summariesKept = summariesKept
        let me = self
        let t = Thread { me.run(sessions: sessions) }
        thread = t
        t.start()
    }

    func run(sessions: Int) {
        do throws(VhostUserError) { summaries = try backend.serve(path: path, sessions: sessions) } catch { failure = error }
        done.signal()
    }

    /// Waits for the backend to finish its sessions; finishes the trace.
    func finish() throws -> RecordingSummary {
        #expect(done.wait(timeout: .now() + 10) == .success, "the backend did not finish")
        return try recorder.finish()
    }
}

@Suite("vhost-user backend", .serialized)
struct BackendTests {
    /// Negotiation, memory, two rings, three frames sent and looped back: the
    /// used rings, the received bytes, the counters and the trace's replay;
    /// with a snaplen (`serve --snaplen`), the same for the frontend, and the
    /// trace keeps each 60-byte frame's first 16 bytes both ways.
    @Test(arguments: [UInt32?.none, 16])
    func aFrontendSendsFramesThatComeBackOnRX(snaplen: UInt32?) throws {
        var options = RecordingOptions()
        options.snaplen = snaplen
        let served = try ServedBackend(sessions: 1, name: "loop\(snaplen.map { "-\($0)" } ?? "")", options: options)
        let f = try TestFrontend(path: served.path)
        f.send(.getFeatures)
        let offered = try #require(f.reply())
        #expect(offered == NetFeature.version1 | VhostUserBits.protocolFeatures)
        f.send(.setFeatures, TestFrontend.u64(offered))
        f.send(.getProtocolFeatures)
        #expect(f.reply() == VhostUserBits.protocolMQ | VhostUserBits.protocolReplyAck)
        f.send(.setProtocolFeatures, TestFrontend.u64(VhostUserBits.protocolReplyAck))
        f.send(.setOwner)
        f.memTable([(TestFrontend.gpa, UInt64(TestFrontend.size), f.userBase, 0)], fds: [f.memfd])
        #expect(f.reply() == 0, "SET_MEM_TABLE is acknowledged")
        var kicks: [Int32] = [], calls: [Int32] = []
        for q in 0..<2 {
            f.send(.setVringNum, TestFrontend.u32s(UInt32(q), 256))
            f.send(.setVringBase, TestFrontend.u32s(UInt32(q), 0))
            f.ringAddress(q)
            let k = cvhost_eventfd(), c = cvhost_eventfd()
            kicks.append(k)
            calls.append(c)
            f.send(.setVringKick, TestFrontend.u64(UInt64(q)), fds: [k])
            f.send(.setVringCall, TestFrontend.u64(UInt64(q)), fds: [c])
            f.send(.setVringEnable, TestFrontend.u32s(UInt32(q), 1))
        }
        // Four RX buffers, three TX frames (12-byte header + 60 bytes).
        for i in 0..<4 { f.post(ring: 0, slot: i, bufferOffset: 0x20000 + 0x1000 * i, length: 2048, writable: true) }
        f.publishAvail(ring: 0, idx: 4)
        for i in 0..<3 {
            let at = 0x40000 + 0x1000 * i
            for b in 0..<72 { f.memory.storeBytes(of: b < 12 ? 0 : UInt8(truncatingIfNeeded: b * 3 + i), toByteOffset: at + b, as: UInt8.self) }
            f.post(ring: 1, slot: i, bufferOffset: at, length: 72, writable: false)
        }
        f.publishAvail(ring: 1, idx: 3)
        var one: UInt64 = 1
        _ = write(kicks[1], &one, 8)
        // The call eventfd of the TX ring fires once the frames are done.
        var pfd = pollfd(fd: calls[1], events: Int16(POLLIN), revents: 0)
        #expect(poll(&pfd, 1, 5000) == 1, "no interrupt on the call eventfd")
        #expect(f.usedIdx(ring: 1) == 3 && f.usedIdx(ring: 0) == 3)
        for i in 0..<3 {
            let used = 0x2000 + 4 + 8 * i
            #expect(f.load(UInt32.self, at: used) == UInt32(i) && f.load(UInt32.self, at: used + 4) == 72, "RX used element \(i)")
            let rx = 0x20000 + 0x1000 * i, tx = 0x40000 + 0x1000 * i
            #expect(memcmp(f.memory + rx + 12, f.memory + tx + 12, 60) == 0, "frame \(i) came back")
            #expect(f.load(UInt16.self, at: rx + 10) == 1, "num_buffers of frame \(i)")
        }
        f.send(.getVringBase, TestFrontend.u32s(1, 0))
        #expect(f.reply().map { $0 >> 32 } == 3, "GET_VRING_BASE reports where the TX ring stopped")
        for fd in kicks + calls { close(fd) }
        shutdown(f.sock, Int32(SHUT_RDWR))  // the deinit closes it
        let summary = try served.finish()
        let c = served.backend.device.counters
        #expect(c.txPackets == 3 && c.rxPackets == 3 && c.txBytes == 180 && c.rxBytes == 180)
        #expect(served.summaries.first?.ending == "the frontend closed the connection")
        // The recording replays with zero divergence.
        let reader = try TraceReader(path: summary.path)
        #expect(reader.header.transport == "vhost-user")
        let replay = try TraceReplayer(reader: reader).replayAll(keepGoing: false)
        #expect(replay.matched, "\(replay.divergences)")
        #expect(replay.counters.first?.rxPackets == 3)
        #expect(reader.header.snaplen == snaplen)
        var partial: [Int] = []
        for i in reader.chunks.indices {
            var d = try reader.decoder(i)
            while let e = try d.next() {
                if e.bytesNotStored > 0 { partial.append(e.bytesNotStored) }
            }
        }
        #expect(partial == (snaplen == nil ? [] : Array(repeating: 60 - 16, count: 6)), "3 frames read, 3 written")
    }

    /// Each hostile message ends its session with an error naming it; the
    /// backend goes on serving the next frontend.
    @Test func hostileMessagesCloseTheConnectionWithAClearError() throws {
        typealias Attack = (name: String, expect: String, run: (TestFrontend) -> Void)
        let attacks: [Attack] = [
            ("ring outside the table", "outside the memory table", { f in
                f.memTable([(TestFrontend.gpa, UInt64(TestFrontend.size), f.userBase, 0)], fds: [f.memfd])
                f.ringAddress(0, desc: 0xdead_0000_0000)
            }),
            ("overlapping regions", "overlap", { f in
                f.memTable([(0, 0x8_0000, f.userBase, 0), (0x4_0000, 0x8_0000, f.userBase + 0x10_0000, 0)], fds: [f.memfd, dup(f.memfd)])
            }),
            ("oversize message", "payload", { f in
                f.sendRaw(VhostUserHeader(request: 2, flags: 1, size: 1 << 20).bytes)
            }),
            ("vanishing peer", "disappeared", { f in
                f.sendRaw(VhostUserHeader(request: 9, flags: 1, size: 40).bytes + [UInt8](repeating: 0, count: 10))
                shutdown(f.sock, Int32(SHUT_WR))
            }),
            ("a region without its fd", "file descriptors", { f in
                f.memTable([(TestFrontend.gpa, 4096, f.userBase, 0)], fds: [])
            }),
            ("unknown request", "unknown request 999", { f in f.sendRaw(VhostUserHeader(request: 999, flags: 1, size: 0).bytes) }),
            ("bad ring size", "power of two", { f in f.send(.setVringNum, TestFrontend.u32s(0, 1000)) }),
            ("no such ring", "names ring 7", { f in f.send(.setVringEnable, TestFrontend.u32s(7, 1)) }),
            ("wrong protocol version", "protocol version", { f in f.sendRaw(VhostUserHeader(request: 1, flags: 2, size: 0).bytes) }),
            ("a truncated payload", "expected 8", { f in f.send(.setFeatures, [1, 2, 3]) }),
            ("features never offered", "refused", { f in f.send(.setFeatures, TestFrontend.u64(1 << 5)) }),
            ("memory beyond the file", "cannot map", { f in
                f.memTable([(TestFrontend.gpa, 1 << 30, f.userBase, 1 << 36)], fds: [f.memfd])
            }),
            // A regular file ignores O_NONBLOCK (on FUSE a write could block the loop).
            ("a file as call fd", "SET_VRING_CALL for ring 1 passed a regular file, not an eventfd, a pipe or a socket", { f in
                f.send(.setVringCall, TestFrontend.u64(1), fds: [f.memfd])
            }),
            // /dev/urandom is always readable: as a kick fd it would read as a kick forever.
            ("a device as kick fd", "SET_VRING_KICK for ring 0 passed a character device, not an eventfd, a pipe or a socket", { f in
                let urandom = open("/dev/urandom", O_RDONLY)
                f.send(.setVringKick, TestFrontend.u64(0), fds: [urandom])
                close(urandom)
            }),
        ]
        let served = try ServedBackend(sessions: attacks.count, name: "hostile")
        for a in attacks {
            let f = try TestFrontend(path: served.path)
            a.run(f)
            #expect(f.closedByBackend(), "\(a.name): the connection stayed open")
        }
        _ = try served.finish()
        #expect(served.summaries.count == attacks.count)
        for (a, s) in zip(attacks, served.summaries) {
            #expect(s.ending.contains(a.expect), "\(a.name): ended with '\(s.ending)'")
        }
        // The device is reset after each and never counted a frame.
        #expect(served.backend.device.counters == NetCounters())
    }

    @Test func aFileInTheWayIsNeverReplaced() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vtrace-not-a-socket-\(getpid())").path
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let backend = try VhostUserBackend(device: VirtioNetDevice(config: NetConfig(), memory: nil, observer: NoObserver()), log: { _, _ in })
        #expect(throws: VhostUserError("cannot listen on \(path): it exists and is not a socket (not replaced)")) {
            _ = try backend.serve(path: path, sessions: 1)
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep me")
    }

    /// A frontend that stops halfway through a message, or whose kick fd is a
    /// pipe at its end, never stalls or spins the loop: the first session ends
    /// at the deadline with a message, the second keeps being served.
    @Test func aStalledOrBrokenFrontendNeverBlocksTheLoop() throws {
        let served = try ServedBackend(sessions: 2, name: "stall", deadlineMilliseconds: 300)
        let stalled = try TestFrontend(path: served.path)
        stalled.sendRaw(VhostUserHeader(request: 2, flags: 1, size: 8).bytes + [1, 2, 3])
        #expect(stalled.closedByBackend(), "a half-sent message kept the session open")

        let f = try TestFrontend(path: served.path)
        var pipeFDs: [Int32] = [0, 0]
        #expect(pipe(&pipeFDs) == 0)
        close(pipeFDs[1])  // the writer is gone: the read end is at its end forever
        f.send(.setVringKick, TestFrontend.u64(1), fds: [pipeFDs[0]])
        close(pipeFDs[0])
        usleep(100_000)
        f.send(.getFeatures)
        #expect(f.reply() == NetFeature.version1 | VhostUserBits.protocolFeatures, "the backend stopped answering")
        shutdown(f.sock, Int32(SHUT_RDWR))  // the deinit closes it
        _ = try served.finish()
        #expect(served.summaries.count == 2)
        #expect(served.summaries.first?.ending == "the frontend sent 3 of 8 bytes of a 8-byte SET_FEATURES payload and did not finish the message within 0.3 s",
                "\(served.summaries.first?.ending ?? "")")
        #expect(served.summaries.last?.ending == "the frontend closed the connection")
    }

    /// The frontend's fds cannot take the backend down or leave a ring
    /// unserved: a call fd whose reader is gone fails with EPIPE (no SIGPIPE
    /// kills the process), and a TX ring set up without a kick fd (the
    /// protocol's "no fd" bit) is polled: its frames go through with no kick.
    @Test func aBrokenCallFdFailsQuietlyAndAPolledRingIsServedWithoutKicks() throws {
        let served = try ServedBackend(sessions: 1, name: "polled")
        let f = try TestFrontend(path: served.path)
        f.send(.setFeatures, TestFrontend.u64(NetFeature.version1 | VhostUserBits.protocolFeatures))
        f.memTable([(TestFrontend.gpa, UInt64(TestFrontend.size), f.userBase, 0)], fds: [f.memfd])
        var p: [Int32] = [0, 0]
        #expect(pipe(&p) == 0)
        close(p[0])  // nobody will ever read the call pipe
        for q in 0..<2 {
            f.send(.setVringNum, TestFrontend.u32s(UInt32(q), 256))
            f.ringAddress(q)
            f.send(.setVringKick, TestFrontend.u64(UInt64(q) | 1 << 8))  // no fd: poll this ring
            f.send(.setVringEnable, TestFrontend.u32s(UInt32(q), 1))
        }
        f.send(.setVringCall, TestFrontend.u64(1), fds: [p[1]])
        close(p[1])
        f.send(.getFeatures)
        _ = f.reply()  // every message above handled: the call pipe is in place before the poll
        for i in 0..<4 { f.post(ring: 0, slot: i, bufferOffset: 0x20000 + 0x1000 * i, length: 2048, writable: true) }
        f.publishAvail(ring: 0, idx: 4)
        for i in 0..<2 { f.post(ring: 1, slot: i, bufferOffset: 0x40000 + 0x1000 * i, length: 72, writable: false) }
        usleep(50_000)
        f.publishAvail(ring: 1, idx: 2)  // and no kick
        for _ in 0..<500 where f.usedIdx(ring: 1) != 2 { usleep(10_000) }
        #expect(f.usedIdx(ring: 1) == 2 && f.usedIdx(ring: 0) == 2, "the polled TX ring was not served")
        f.send(.getFeatures)
        #expect(f.reply() == NetFeature.version1 | VhostUserBits.protocolFeatures, "the backend stopped answering")
        shutdown(f.sock, Int32(SHUT_RDWR))
        let summary = try served.finish()
        #expect(served.summaries.first?.kicks == 1, "one poll found both frames")
        #expect((served.summaries.first?.callSignals ?? 0) >= 1, "the broken call pipe was never written (EPIPE untested)")
        #expect(served.summaries.first?.ending == "the frontend closed the connection")
        let c = served.backend.device.counters
        #expect(c.txPackets == 2 && c.rxPackets == 2)
        // The poll is recorded as a kick of ring 1, and replays.
        let replay = try TraceReplayer(reader: TraceReader(path: summary.path)).replayAll(keepGoing: false)
        #expect(replay.matched, "\(replay.divergences)")
    }

    /// A polled ring the device will not take from (no features yet, so no
    /// DRIVER_OK) is kicked once, not every millisecond; the next message
    /// (the features) lets the poll try again, and the frames go through.
    @Test func aPolledRingTheDeviceCannotTakeFromIsNotKickedEveryMillisecond() throws {
        let served = try ServedBackend(sessions: 1, name: "stuck")
        let f = try TestFrontend(path: served.path)
        f.memTable([(TestFrontend.gpa, UInt64(TestFrontend.size), f.userBase, 0)], fds: [f.memfd])
        for q in 0..<2 {
            f.send(.setVringNum, TestFrontend.u32s(UInt32(q), 256))
            f.ringAddress(q)
            f.send(.setVringKick, TestFrontend.u64(UInt64(q) | 1 << 8))  // no fd: polled (and enabled: no protocol features)
        }
        for i in 0..<2 { f.post(ring: 0, slot: i, bufferOffset: 0x20000 + 0x1000 * i, length: 2048, writable: true) }
        f.publishAvail(ring: 0, idx: 2)
        for i in 0..<2 { f.post(ring: 1, slot: i, bufferOffset: 0x40000 + 0x1000 * i, length: 72, writable: false) }
        f.publishAvail(ring: 1, idx: 2)
        usleep(200_000)  // 200 polls
        #expect(f.usedIdx(ring: 1) == 0, "served before the features were set")
        f.send(.setFeatures, TestFrontend.u64(NetFeature.version1))
        for _ in 0..<500 where f.usedIdx(ring: 1) != 2 { usleep(10_000) }
        #expect(f.usedIdx(ring: 1) == 2 && f.usedIdx(ring: 0) == 2, "the polled ring was not served once the features came")
        shutdown(f.sock, Int32(SHUT_RDWR))
        let summary = try served.finish()
        #expect(served.summaries.first?.kicks == 2, "one kick before the features, one after")
        let c = served.backend.device.counters
        #expect(c.txPackets == 2 && c.rxPackets == 2)
        let replay = try TraceReplayer(reader: TraceReader(path: summary.path)).replayAll(keepGoing: false)
        #expect(replay.matched, "\(replay.divergences)")
    }

    /// The deadline covers a whole message: a frontend sending a byte every
    /// 100 ms (each gap shorter than the 300 ms deadline) is cut off at 300 ms.
    @Test func aTrickledMessageGetsNoMoreTimeThanAStalledOne() throws {
        let served = try ServedBackend(sessions: 1, name: "trickle", deadlineMilliseconds: 300)
        let f = try TestFrontend(path: served.path)
        let bytes = VhostUserHeader(request: 2, flags: 1, size: 8).bytes + [UInt8](repeating: 0, count: 8)
        // 20 bytes at one per 100 ms take 2 s; a deadline per read (each wait
        // under 0.3 s) would never end the session, a deadline per message does.
        let start = Date()
        var closedAfter: Double?
        for b in bytes {
            f.sendRaw([b])
            usleep(100_000)
            var pfd = pollfd(fd: f.sock, events: Int16(POLLIN), revents: 0)
            var probe: UInt8 = 0
            if poll(&pfd, 1, 0) == 1 {
                let r = recv(f.sock, &probe, 1, 0)
                if r == 0 || (r < 0 && errno == ECONNRESET) {
                    closedAfter = Date().timeIntervalSince(start)
                    break
                }
            }
        }
        #expect((closedAfter ?? 99) < 1.5, "closed after \(closedAfter.map { "\($0) s" } ?? "never (2 s of trickle)")")
        _ = try served.finish()
        #expect(served.summaries.first?.ending.hasSuffix("did not finish the message within 0.3 s") == true,
                "\(served.summaries.first?.ending ?? "")")
    }

    /// `--sessions N` ends after N sessions even when it keeps fewer summaries
    /// than that (it kept 1,000 and compared its count with N: above 1,000, never).
    @Test func servingCountsSessionsBeyondTheSummariesItKeeps() throws {
        let served = try ServedBackend(sessions: 3, name: "many", summariesKept: 2)
        for _ in 0..<3 {
            let f = try TestFrontend(path: served.path)
            f.send(.getFeatures)
            #expect(f.reply() != nil)
            shutdown(f.sock, Int32(SHUT_RDWR))
            usleep(20_000)
        }
        _ = try served.finish()
        #expect(served.summaries.count == 2)
        // The newest two, each one GET_FEATURES long.
        for summary in served.summaries {
            #expect(summary.messages == 1 && summary.ending == "the frontend closed the connection", "\(summary)")
        }
    }

    /// SIGINT/SIGTERM go back to what they were once a backend that took them
    /// is gone (its stop eventfd is closed; a later signal must not write to
    /// that fd number, which may be reused).
    @Test func stopSignalsAreHandedBackWhenTheBackendGoes() throws {
        func handler(_ signal: Int32) -> UInt {
            var a = sigaction()
            sigaction(signal, nil, &a)
            return withUnsafeBytes(of: &a.__sigaction_handler) { $0.load(as: UInt.self) }
        }
        func stopRequested(_ backend: VhostUserBackend<NoObserver>) -> Bool {
            var pfd = pollfd(fd: backend.stopFD, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 0) == 1 else { return false }
            var count: UInt64 = 0
            return read(backend.stopFD, &count, 8) == 8 && count > 0
        }
        let before = (handler(SIGINT), handler(SIGTERM), handler(SIGPIPE))
        // (Signals are raised only while a backend's handler is installed.)
        do {
            let first = try VhostUserBackend(device: VirtioNetDevice(config: NetConfig(), memory: nil, observer: NoObserver()), log: { _, _ in })
            try first.stopOnSignals()
            #expect(handler(SIGINT) != before.0 && handler(SIGTERM) != before.1)
            #expect(handler(SIGPIPE) == unsafeBitCast(SIG_IGN, to: UInt.self), "SIGPIPE is not ignored while serving")
            do {
                let second = try VhostUserBackend(device: VirtioNetDevice(config: NetConfig(), memory: nil, observer: NoObserver()), log: { _, _ in })
                try second.stopOnSignals()
                raise(SIGTERM)
                #expect(stopRequested(first) && stopRequested(second), "a signal reaches every backend")
            }
            // The second backend gone, the first still stops on a signal.
            #expect(handler(SIGTERM) != before.1, "the handlers went with the first backend to leave")
            raise(SIGINT)
            #expect(stopRequested(first))
        }
        #expect(handler(SIGINT) == before.0 && handler(SIGTERM) == before.1)
        #expect(handler(SIGPIPE) == before.2, "SIGPIPE's disposition was not handed back")
    }

    /// A frontend that truncates its memory file under the device: the
    /// accesses read zeros instead of killing the backend with SIGBUS, and the
    /// session ends saying so.
    @Test func memoryShrunkUnderTheDeviceEndsTheSessionNotTheProcess() throws {
        let served = try ServedBackend(sessions: 1, name: "shrink")
        let f = try TestFrontend(path: served.path)
        f.send(.setFeatures, TestFrontend.u64(NetFeature.version1 | VhostUserBits.protocolFeatures))
        f.memTable([(TestFrontend.gpa, UInt64(TestFrontend.size), f.userBase, 0)], fds: [f.memfd])
        let kick = VhostFiles.eventFD()
        defer { close(kick) }
        f.send(.setVringNum, TestFrontend.u32s(1, 256))
        f.ringAddress(1)
        f.send(.setVringKick, TestFrontend.u64(1), fds: [kick])
        f.send(.setVringEnable, TestFrontend.u32s(1, 1))
        f.post(ring: 1, slot: 0, bufferOffset: 0x40000, length: 72, writable: false)
        f.publishAvail(ring: 1, idx: 1)
        usleep(100_000)
        #expect(ftruncate(f.memfd, 0) == 0)
        var one: UInt64 = 1
        _ = write(kick, &one, 8)
        #expect(f.closedByBackend(), "the session survived a shrunk memory file")
        _ = try served.finish()
        #expect(served.summaries.first?.ending.contains("shrank its shared memory") == true, "\(served.summaries.first?.ending ?? "")")
    }
}
