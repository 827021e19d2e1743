//! The backend's message handler: what each vhost-user message does to
//! the device, the rings' fds and the negotiated protocol features.

import CVhost
import VirtioCore
#if canImport(Glibc)
import Glibc
#endif

extension VhostUserBackend {
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
}
