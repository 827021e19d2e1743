//! The 16 virtio-net device counters (spec §3.8), named and ordered as in the seed.

/// One of the device's 16 counters. Raw values are the counters' canonical
/// names (the seed's field names), used in scenarios, traces and JSON.
///
/// Every counter is cumulative for the device's lifetime: STATUS = 0 does not
/// reset it. Where the seed's doc comments and the reference code disagree
/// (spec §3.9), these docs state what the code does.
public enum NetCounter: String, CaseIterable, Hashable, Sendable, Codable {
    /// TX chains whose frame was captured and whose TX used publish succeeded,
    /// whatever happened on RX (a frame dropped for want of an RX buffer still counts).
    case txPackets = "tx_packets"
    /// Post-header bytes of the frames counted in `tx_packets`.
    case txBytes = "tx_bytes"
    /// Frames written to an RX chain whose RX used publish succeeded (truncated ones too).
    case rxPackets = "rx_packets"
    /// L2 bytes actually written for the frames counted in `rx_packets` (header excluded).
    case rxBytes = "rx_bytes"
    /// Captured TX frames dropped because the pair's RX queue was not ready or empty.
    case txDroppedNoRxBuffer = "tx_dropped_no_rx_buffer"
    /// Captured TX frames dropped because the pair's RX queue is (or just became) poisoned.
    case txDroppedRxPoisoned = "tx_dropped_rx_poisoned"
    /// TX chains rejected: a device-writable descriptor, fewer than 12 bytes,
    /// address overflow skipping the header, or an unreadable frame piece.
    case txChainInvalid = "tx_chain_invalid"
    /// TX chains whose frame exceeds 65,557 post-header bytes (dropped, never truncated).
    case txOversizeDropped = "tx_oversize_dropped"
    /// RX chains with a device-readable descriptor (or an address overflow while writing).
    case rxChainInvalid = "rx_chain_invalid"
    /// RX chains where writing the header or frame faulted.
    case rxWriteFailed = "rx_write_failed"
    /// TX used publishes that failed (never poisons).
    case txAddUsedFailures = "tx_add_used_failures"
    /// RX used publishes that failed (never poisons).
    case rxAddUsedFailures = "rx_add_used_failures"
    /// Queues poisoned: any `iter()` error on TX, RX or the control queue, once per poisoning.
    case invalidAvailIdxCount = "invalid_avail_idx_count"
    /// VQ_PAIRS_SET commands accepted and published.
    case ctrlMqSet = "ctrl_mq_set"
    /// Control chains without a writable status byte, or NAKed (status ERR) with the status written.
    case ctrlChainInvalid = "ctrl_chain_invalid"
    /// Control chains whose status write or used publish failed.
    case ctrlAddUsedFailures = "ctrl_add_used_failures"

    /// The canonical (seed) name, e.g. `tx_packets`.
    @inlinable public var name: String { rawValue }

    /// Position in the canonical order, 0...15.
    public var index: Int { NetCounter.allCases.firstIndex(of: self)! }

    /// Looks a counter up by canonical name.
    public init?(name: String) { self.init(rawValue: name) }
}

/// The values of all 16 counters at one moment: a plain value, compared,
/// hashed, encoded (with the seed's snake_case names) and summed.
public struct NetCounters: Hashable, Sendable, Codable, CustomStringConvertible {
    public var txPackets: UInt64 = 0
    public var txBytes: UInt64 = 0
    public var rxPackets: UInt64 = 0
    public var rxBytes: UInt64 = 0
    public var txDroppedNoRxBuffer: UInt64 = 0
    public var txDroppedRxPoisoned: UInt64 = 0
    public var txChainInvalid: UInt64 = 0
    public var txOversizeDropped: UInt64 = 0
    public var rxChainInvalid: UInt64 = 0
    public var rxWriteFailed: UInt64 = 0
    public var txAddUsedFailures: UInt64 = 0
    public var rxAddUsedFailures: UInt64 = 0
    public var invalidAvailIdxCount: UInt64 = 0
    public var ctrlMqSet: UInt64 = 0
    public var ctrlChainInvalid: UInt64 = 0
    public var ctrlAddUsedFailures: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case txPackets = "tx_packets", txBytes = "tx_bytes", rxPackets = "rx_packets", rxBytes = "rx_bytes"
        case txDroppedNoRxBuffer = "tx_dropped_no_rx_buffer", txDroppedRxPoisoned = "tx_dropped_rx_poisoned"
        case txChainInvalid = "tx_chain_invalid", txOversizeDropped = "tx_oversize_dropped"
        case rxChainInvalid = "rx_chain_invalid", rxWriteFailed = "rx_write_failed"
        case txAddUsedFailures = "tx_add_used_failures", rxAddUsedFailures = "rx_add_used_failures"
        case invalidAvailIdxCount = "invalid_avail_idx_count", ctrlMqSet = "ctrl_mq_set"
        case ctrlChainInvalid = "ctrl_chain_invalid", ctrlAddUsedFailures = "ctrl_add_used_failures"
    }

    /// The value of one counter.
    @inlinable
    public subscript(counter: NetCounter) -> UInt64 {
        get {
            switch counter {
            case .txPackets: return txPackets
            case .txBytes: return txBytes
            case .rxPackets: return rxPackets
            case .rxBytes: return rxBytes
            case .txDroppedNoRxBuffer: return txDroppedNoRxBuffer
            case .txDroppedRxPoisoned: return txDroppedRxPoisoned
            case .txChainInvalid: return txChainInvalid
            case .txOversizeDropped: return txOversizeDropped
            case .rxChainInvalid: return rxChainInvalid
            case .rxWriteFailed: return rxWriteFailed
            case .txAddUsedFailures: return txAddUsedFailures
            case .rxAddUsedFailures: return rxAddUsedFailures
            case .invalidAvailIdxCount: return invalidAvailIdxCount
            case .ctrlMqSet: return ctrlMqSet
            case .ctrlChainInvalid: return ctrlChainInvalid
            case .ctrlAddUsedFailures: return ctrlAddUsedFailures
            }
        }
        set {
            switch counter {
            case .txPackets: txPackets = newValue
            case .txBytes: txBytes = newValue
            case .rxPackets: rxPackets = newValue
            case .rxBytes: rxBytes = newValue
            case .txDroppedNoRxBuffer: txDroppedNoRxBuffer = newValue
            case .txDroppedRxPoisoned: txDroppedRxPoisoned = newValue
            case .txChainInvalid: txChainInvalid = newValue
            case .txOversizeDropped: txOversizeDropped = newValue
            case .rxChainInvalid: rxChainInvalid = newValue
            case .rxWriteFailed: rxWriteFailed = newValue
            case .txAddUsedFailures: txAddUsedFailures = newValue
            case .rxAddUsedFailures: rxAddUsedFailures = newValue
            case .invalidAvailIdxCount: invalidAvailIdxCount = newValue
            case .ctrlMqSet: ctrlMqSet = newValue
            case .ctrlChainInvalid: ctrlChainInvalid = newValue
            case .ctrlAddUsedFailures: ctrlAddUsedFailures = newValue
            }
        }
    }

    /// Adds `delta` to one counter (wrapping, as every counter does) and
    /// returns its new value: the device's bump, one switch with the
    /// addition in place (reading and then setting through the subscript
    /// took two, and a call).
    @inlinable @inline(__always)
    public mutating func add(_ delta: UInt64, to counter: NetCounter) -> UInt64 {
        switch counter {
        case .txPackets: txPackets &+= delta; return txPackets
        case .txBytes: txBytes &+= delta; return txBytes
        case .rxPackets: rxPackets &+= delta; return rxPackets
        case .rxBytes: rxBytes &+= delta; return rxBytes
        case .txDroppedNoRxBuffer: txDroppedNoRxBuffer &+= delta; return txDroppedNoRxBuffer
        case .txDroppedRxPoisoned: txDroppedRxPoisoned &+= delta; return txDroppedRxPoisoned
        case .txChainInvalid: txChainInvalid &+= delta; return txChainInvalid
        case .txOversizeDropped: txOversizeDropped &+= delta; return txOversizeDropped
        case .rxChainInvalid: rxChainInvalid &+= delta; return rxChainInvalid
        case .rxWriteFailed: rxWriteFailed &+= delta; return rxWriteFailed
        case .txAddUsedFailures: txAddUsedFailures &+= delta; return txAddUsedFailures
        case .rxAddUsedFailures: rxAddUsedFailures &+= delta; return rxAddUsedFailures
        case .invalidAvailIdxCount: invalidAvailIdxCount &+= delta; return invalidAvailIdxCount
        case .ctrlMqSet: ctrlMqSet &+= delta; return ctrlMqSet
        case .ctrlChainInvalid: ctrlChainInvalid &+= delta; return ctrlChainInvalid
        case .ctrlAddUsedFailures: ctrlAddUsedFailures &+= delta; return ctrlAddUsedFailures
        }
    }

    /// All 16 values in canonical order.
    public var values: [UInt64] { NetCounter.allCases.map { self[$0] } }

    /// Counters from 16 values in canonical order; nil for any other count.
    public init?(values: [UInt64]) {
        guard values.count == NetCounter.allCases.count else { return nil }
        for (c, v) in zip(NetCounter.allCases, values) { self[c] = v }
    }

    /// Field-wise difference `self - earlier` (wrapping), for "what moved" reports.
    public func delta(since earlier: NetCounters) -> NetCounters {
        var d = NetCounters()
        for c in NetCounter.allCases { d[c] = self[c] &- earlier[c] }
        return d
    }

    /// The counters that are non-zero, in canonical order.
    public var nonZero: [(NetCounter, UInt64)] {
        NetCounter.allCases.compactMap { self[$0] == 0 ? nil : ($0, self[$0]) }
    }

    /// Device-level total over several NICs: field-wise saturating sum, nil for none.
    public static func aggregate<S: Sequence>(_ snapshots: S) -> NetCounters? where S.Element == NetCounters {
        var total: NetCounters?
        for s in snapshots {
            guard var t = total else { total = s; continue }
            for c in NetCounter.allCases {
                let (sum, overflow) = t[c].addingReportingOverflow(s[c])
                t[c] = overflow ? .max : sum
            }
            total = t
        }
        return total
    }

    /// One NIC's counters (zero for a NIC not there), or with `nic` nil the
    /// total over all of them.
    public static func scoped(_ perNIC: [NetCounters], nic: Int?) -> NetCounters {
        if let nic { return nic >= 0 && nic < perNIC.count ? perNIC[nic] : NetCounters() }
        return perNIC.count == 1 ? perNIC[0] : aggregate(perNIC) ?? NetCounters()
    }

    public var description: String {
        NetCounter.allCases.map { "\($0.name)=\(self[$0])" }.joined(separator: " ")
    }
}
