//! The vhost-user wire format: message header, the requests a net backend
//! handles, their payloads. Pure parsing (no system calls), so it is unit
//! tested and fuzzed on its own.

/// Request codes (front-end to back-end) of the vhost-user protocol.
public enum VhostUserRequest: UInt32, Sendable, CaseIterable {
    case getFeatures = 1, setFeatures, setOwner, resetOwner, setMemTable, setLogBase, setLogFD, setVringNum,
         setVringAddr, setVringBase, getVringBase, setVringKick, setVringCall, setVringErr, getProtocolFeatures,
         setProtocolFeatures, getQueueNum, setVringEnable, sendRARP, netSetMTU, setBackendReqFD, iotlbMessage,
         setVringEndian, getConfig, setConfig
    case resetDevice = 34
    case getMaxMemSlots = 36
    case setStatus = 39, getStatus

    /// The name in the vhost-user specification.
    public var name: String {
        switch self {
        case .getFeatures: return "GET_FEATURES"
        case .setFeatures: return "SET_FEATURES"
        case .setOwner: return "SET_OWNER"
        case .resetOwner: return "RESET_OWNER"
        case .setMemTable: return "SET_MEM_TABLE"
        case .setLogBase: return "SET_LOG_BASE"
        case .setLogFD: return "SET_LOG_FD"
        case .setVringNum: return "SET_VRING_NUM"
        case .setVringAddr: return "SET_VRING_ADDR"
        case .setVringBase: return "SET_VRING_BASE"
        case .getVringBase: return "GET_VRING_BASE"
        case .setVringKick: return "SET_VRING_KICK"
        case .setVringCall: return "SET_VRING_CALL"
        case .setVringErr: return "SET_VRING_ERR"
        case .getProtocolFeatures: return "GET_PROTOCOL_FEATURES"
        case .setProtocolFeatures: return "SET_PROTOCOL_FEATURES"
        case .getQueueNum: return "GET_QUEUE_NUM"
        case .setVringEnable: return "SET_VRING_ENABLE"
        case .sendRARP: return "SEND_RARP"
        case .netSetMTU: return "NET_SET_MTU"
        case .setBackendReqFD: return "SET_BACKEND_REQ_FD"
        case .iotlbMessage: return "IOTLB_MSG"
        case .setVringEndian: return "SET_VRING_ENDIAN"
        case .getConfig: return "GET_CONFIG"
        case .setConfig: return "SET_CONFIG"
        case .resetDevice: return "RESET_DEVICE"
        case .getMaxMemSlots: return "GET_MAX_MEM_SLOTS"
        case .setStatus: return "SET_STATUS"
        case .getStatus: return "GET_STATUS"
        }
    }
}

/// Feature and flag bits of the protocol itself.
public enum VhostUserBits {
    /// Header flags: version 1 in bits 0-1, a reply, a request for an ack.
    public static let version: UInt32 = 0x1
    public static let versionMask: UInt32 = 0x3
    public static let reply: UInt32 = 0x4
    public static let needReply: UInt32 = 0x8
    /// VHOST_USER_F_PROTOCOL_FEATURES, in the device feature word.
    public static let protocolFeatures: UInt64 = 1 << 30
    /// Protocol features this backend offers: MQ and REPLY_ACK (and nothing it
    /// does not implement: a frontend uses whatever is offered).
    public static let protocolMQ: UInt64 = 1 << 0
    public static let protocolReplyAck: UInt64 = 1 << 3
    public static let offeredProtocolFeatures: UInt64 = protocolMQ | protocolReplyAck
    /// SET_VRING_KICK/CALL/ERR: the low byte is the ring, this bit says "no fd".
    public static let noFD: UInt64 = 1 << 8
    /// Header size and the largest payload accepted (SET_MEM_TABLE with 8
    /// regions is 264 bytes; GET/SET_CONFIG at most 268).
    public static let headerSize = 12
    public static let maxPayload = 4096
    /// Most regions in a memory table, and most fds with one message.
    public static let maxRegions = 8
}

/// A message the backend refuses; the connection is then closed.
public struct VhostUserError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A message header.
public struct VhostUserHeader: Hashable, Sendable {
    public var request: UInt32
    public var flags: UInt32
    public var size: UInt32

    public init(request: UInt32, flags: UInt32, size: UInt32) {
        self.request = request
        self.flags = flags
        self.size = size
    }

    /// Parses the 12 header bytes; refuses another protocol version and
    /// payloads larger than the protocol allows.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(VhostUserError) -> VhostUserHeader {
        guard bytes.count >= VhostUserBits.headerSize else {
            throw VhostUserError("message header of \(bytes.count) bytes (a header is 12)")
        }
        let h = VhostUserHeader(request: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian,
                                flags: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian,
                                size: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian)
        guard h.flags & VhostUserBits.versionMask == VhostUserBits.version else {
            throw VhostUserError("message \(h.request) has protocol version \(h.flags & VhostUserBits.versionMask), not 1")
        }
        guard h.size <= UInt32(VhostUserBits.maxPayload) else {
            throw VhostUserError("message \(h.request) claims a \(h.size)-byte payload (at most \(VhostUserBits.maxPayload))")
        }
        return h
    }

    /// The 12 bytes of a header.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(12)
        for v in [request, flags, size] { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        return out
    }
}

/// One memory-table entry: guest-physical range, the frontend's address of
/// it, and where it starts in the passed file.
public struct VhostMemoryRegion: Hashable, Sendable {
    public var guestAddress: UInt64
    public var size: UInt64
    public var userAddress: UInt64
    public var mmapOffset: UInt64
    public init(guestAddress: UInt64, size: UInt64, userAddress: UInt64, mmapOffset: UInt64) {
        self.guestAddress = guestAddress
        self.size = size
        self.userAddress = userAddress
        self.mmapOffset = mmapOffset
    }
}

/// A decoded request with its payload.
public enum VhostUserMessage: Hashable, Sendable {
    case getFeatures
    case setFeatures(UInt64)
    case setOwner
    case resetOwner
    case setMemTable([VhostMemoryRegion])
    case setVringNum(index: UInt32, num: UInt32)
    case setVringAddr(index: UInt32, flags: UInt32, desc: UInt64, used: UInt64, avail: UInt64, log: UInt64)
    case setVringBase(index: UInt32, num: UInt32)
    case getVringBase(index: UInt32)
    /// KICK, CALL or ERR: the ring, and whether an fd came with it.
    case setVringFD(VhostUserRequest, index: UInt32, hasFD: Bool)
    case getProtocolFeatures
    case setProtocolFeatures(UInt64)
    case getQueueNum
    case setVringEnable(index: UInt32, enabled: Bool)
    case resetDevice
    /// A request this backend acknowledges and ignores (SEND_RARP, NET_SET_MTU, SET_VRING_ENDIAN).
    case ignored(VhostUserRequest)

    /// Decodes a request's payload. `fds` is how many descriptors came with
    /// it: each request takes exactly the ones it needs.
    public static func parse(_ header: VhostUserHeader, payload: UnsafeRawBufferPointer, fds: Int) throws(VhostUserError) -> VhostUserMessage {
        guard let request = VhostUserRequest(rawValue: header.request) else {
            throw VhostUserError("unknown request \(header.request)")
        }
        guard payload.count == Int(header.size) else {
            throw VhostUserError("\(request.name): payload of \(payload.count) bytes, header says \(header.size)")
        }
        func size(_ n: Int) throws(VhostUserError) {
            guard payload.count == n else { throw VhostUserError("\(request.name): payload of \(payload.count) bytes, expected \(n)") }
        }
        func u32(_ at: Int) -> UInt32 { payload.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian }
        func u64(_ at: Int) -> UInt64 { payload.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian }
        func noFDs() throws(VhostUserError) {
            guard fds == 0 else { throw VhostUserError("\(request.name) carries \(fds) file descriptors; it takes none") }
        }
        switch request {
        case .setMemTable:
            guard payload.count >= 8 else { throw VhostUserError("SET_MEM_TABLE: payload of \(payload.count) bytes, expected at least 8") }
            let n = Int(u32(0))
            guard n >= 1, n <= VhostUserBits.maxRegions else { throw VhostUserError("SET_MEM_TABLE: \(n) regions (1 to \(VhostUserBits.maxRegions))") }
            guard payload.count >= 8 + 32 * n else {
                throw VhostUserError("SET_MEM_TABLE: \(n) regions need \(8 + 32 * n) bytes, the payload has \(payload.count)")
            }
            guard fds == n else { throw VhostUserError("SET_MEM_TABLE: \(n) regions but \(fds) file descriptors") }
            let regions = (0..<n).map { i in
                VhostMemoryRegion(guestAddress: u64(8 + 32 * i), size: u64(16 + 32 * i), userAddress: u64(24 + 32 * i), mmapOffset: u64(32 + 32 * i))
            }
            return .setMemTable(regions)
        case .setVringKick, .setVringCall, .setVringErr:
            try size(8)
            let v = u64(0)
            let hasFD = v & VhostUserBits.noFD == 0
            guard fds == (hasFD ? 1 : 0) else {
                throw VhostUserError("\(request.name): \(fds) file descriptors, expected \(hasFD ? 1 : 0)")
            }
            guard v & ~(VhostUserBits.noFD | 0xFF) == 0 else { throw VhostUserError("\(request.name): stray bits in 0x\(String(v, radix: 16))") }
            return .setVringFD(request, index: UInt32(v & 0xFF), hasFD: hasFD)
        default:
            try noFDs()
        }
        switch request {
        case .getFeatures: return .getFeatures
        case .setFeatures:
            try size(8)
            return .setFeatures(u64(0))
        case .setOwner: return .setOwner
        case .resetOwner: return .resetOwner
        case .setVringNum:
            try size(8)
            return .setVringNum(index: u32(0), num: u32(4))
        case .setVringAddr:
            try size(40)
            return .setVringAddr(index: u32(0), flags: u32(4), desc: u64(8), used: u64(16), avail: u64(24), log: u64(32))
        case .setVringBase:
            try size(8)
            return .setVringBase(index: u32(0), num: u32(4))
        case .getVringBase:
            try size(8)
            return .getVringBase(index: u32(0))
        case .getProtocolFeatures: return .getProtocolFeatures
        case .setProtocolFeatures:
            try size(8)
            return .setProtocolFeatures(u64(0))
        case .getQueueNum: return .getQueueNum
        case .setVringEnable:
            try size(8)
            let on = u32(4)
            guard on <= 1 else { throw VhostUserError("SET_VRING_ENABLE: state \(on) (0 or 1)") }
            return .setVringEnable(index: u32(0), enabled: on == 1)
        case .resetDevice: return .resetDevice
        case .sendRARP, .netSetMTU, .setVringEndian: return .ignored(request)
        default:
            throw VhostUserError("\(request.name) is not supported by this backend")
        }
    }
}

/// Reply payloads.
public enum VhostUserReply {
    /// A reply carrying a u64 (features, protocol features, queue count, an ack).
    public static func u64(_ request: UInt32, _ value: UInt64) -> [UInt8] {
        var out = VhostUserHeader(request: request, flags: VhostUserBits.version | VhostUserBits.reply, size: 8).bytes
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
        return out
    }

    /// GET_VRING_BASE's reply: the ring and its next avail index.
    public static func vringState(_ request: UInt32, index: UInt32, num: UInt32) -> [UInt8] {
        var out = VhostUserHeader(request: request, flags: VhostUserBits.version | VhostUserBits.reply, size: 8).bytes
        withUnsafeBytes(of: index.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: num.littleEndian) { out.append(contentsOf: $0) }
        return out
    }
}
