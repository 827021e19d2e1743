//! The backend's control socket: reading a message whole (with its fds)
//! and sending replies, never blocking the loop, each within a deadline.

import CVhost
import HostPrimitives
#if canImport(Glibc)
import Glibc
#endif

extension VhostUserBackend {
    /// Whether another message is waiting on the control socket.
    func socketHasData() -> Bool {
        var p = pollfd(fd: connection, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) == 1
    }

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
}
