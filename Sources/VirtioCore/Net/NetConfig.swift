//! Construction parameters and config space of the virtio-net device.

/// A 6-byte Ethernet address.
public struct MACAddress: Hashable, Sendable, Codable, CustomStringConvertible {
    public var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8, _ b4: UInt8, _ b5: UInt8) {
        bytes = (b0, b1, b2, b3, b4, b5)
    }

    /// The reference VMM's default: locally administered, unicast.
    public static let `default` = MACAddress(0x02, 0, 0, 0, 0, 0x01)

    /// Parses `aa:bb:cc:dd:ee:ff`.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var b = [UInt8]()
        for p in parts {
            guard p.count == 2, let v = UInt8(p, radix: 16) else { return nil }
            b.append(v)
        }
        self.init(b[0], b[1], b[2], b[3], b[4], b[5])
    }

    public var array: [UInt8] { [bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5] }

    public var description: String {
        array.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }

    public static func == (a: MACAddress, b: MACAddress) -> Bool { a.array == b.array }
    public func hash(into h: inout Hasher) { h.combine(array) }
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let mac = MACAddress(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad MAC \(text)"))
        }
        self = mac
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// How a virtio-net device is built: its MAC and number of queue pairs.
public struct NetConfig: Hashable, Sendable, Codable {
    /// Most queue pairs a device may have (virtio: 0x8000; the reference: 256).
    public static let maxQueuePairs = 256

    public var mac: MACAddress
    /// Queue pairs, clamped to 1...256 by the device.
    public var queuePairs: Int
    /// The largest ring a queue takes (QueueNumMax): 256 on virtio-mmio, as
    /// the reference; over vhost-user the frontend picks the ring size
    /// (QEMU's virtio-mmio offers 1024), so the backend takes up to 32768,
    /// the split-ring maximum. A power of two in 1...32768.
    public var queueMaxSize: UInt16 = NetLayout.queueMaxSize

    enum CodingKeys: String, CodingKey { case mac, queuePairs = "queue_pairs" }

    public init(mac: MACAddress = .default, queuePairs: Int = 1, queueMaxSize: UInt16 = NetLayout.queueMaxSize) {
        self.mac = mac
        self.queuePairs = queuePairs
        self.queueMaxSize = queueMaxSize
    }

    /// `queueMaxSize` as the device uses it: a power of two in 1...32768 (else 256).
    public var effectiveQueueMaxSize: UInt16 {
        queueMaxSize >= 1 && queueMaxSize <= 32768 && queueMaxSize & (queueMaxSize - 1) == 0 ? queueMaxSize : NetLayout.queueMaxSize
    }

    /// `queuePairs` clamped to 1...256, as the device uses it.
    public var effectiveQueuePairs: UInt16 { UInt16(min(max(queuePairs, 1), NetConfig.maxQueuePairs)) }

    /// The queues a device built from this config has: RX and TX of every
    /// pair (``effectiveQueuePairs``), plus the control queue when there is
    /// more than one pair (only then are MQ and CTRL_VQ offered, spec decision 1).
    public var queueCount: Int {
        let pairs = effectiveQueuePairs
        return Int(pairs) * 2 + (pairs > 1 ? 1 : 0)
    }
}

/// Feature bits the device knows (virtio v1.2 §5.1.3, §6).
public enum NetFeature {
    public static let mac: UInt64 = 1 << 5
    public static let ctrlVQ: UInt64 = 1 << 17
    public static let mq: UInt64 = 1 << 22
    public static let version1: UInt64 = 1 << 32
}

/// Constants of the net device (spec §3, §7).
public enum NetLayout {
    /// virtio_net_hdr_v1 (with num_buffers): 12 bytes, skipped on TX, written on RX.
    public static let headerLength = 12
    /// Largest post-header frame, inclusive: ETH_HLEN 14 + two VLAN tags 2×4 + max MTU 65,535.
    public static let maxFrameSize = 65_557
    /// QueueNumMax of every queue.
    public static let queueMaxSize: UInt16 = 256
    /// Populated bytes of config space: mac[6], status u16, max_virtqueue_pairs u16, mtu u16.
    public static let configSize = 12
    /// VIRTIO_NET_CTRL_MQ class and its VQ_PAIRS_SET command.
    public static let ctrlClassMQ: UInt8 = 4
    public static let ctrlMQVQPairsSet: UInt8 = 0
    /// Control status bytes.
    public static let ctrlOK: UInt8 = 0
    public static let ctrlERR: UInt8 = 1
    /// The RX header: bytes 0–9 zero, num_buffers = 1 little-endian at 10–11.
    public static let rxHeader: (UInt64, UInt32) = (0, UInt32(1) << 16)
}
