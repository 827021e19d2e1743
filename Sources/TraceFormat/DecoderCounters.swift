//! A decoder's running counter values, shared by its copies until one writes.

/// Per NIC, the current values of its 16 counters (NIC n at `16 × n`): what a
/// chunk's counter records move. A reference with copy-on-write by its
/// owner (``ChunkDecoder``), as ``RepeatTable`` is, so that a decoder that
/// owns it exclusively (``ChunkDecoder/makeExclusive()``) writes it without a
/// uniqueness check per counter event.
@usableFromInline
final class DecoderCounters {
    @usableFromInline let values: UnsafeMutablePointer<UInt64>
    @usableFromInline let count: Int

    /// Each NIC's 16 values from `perNIC` (missing ones 0); room for one NIC
    /// at least, so that a NIC index below the decoder's NIC count and a
    /// counter below 16 are always inside.
    init(_ perNIC: [[UInt64]]) {
        count = perNIC.count * NICCheckpoint.counterCount
        values = .allocate(capacity: max(count, NICCheckpoint.counterCount))
        values.initialize(repeating: 0, count: max(count, NICCheckpoint.counterCount))
        for (n, list) in perNIC.enumerated() {
            for i in 0..<NICCheckpoint.counterCount { values[n * NICCheckpoint.counterCount + i] = i < list.count ? list[i] : 0 }
        }
    }

    /// The values `other` holds.
    @usableFromInline init(copying other: DecoderCounters) {
        count = other.count
        values = .allocate(capacity: max(count, NICCheckpoint.counterCount))
        values.initialize(from: other.values, count: max(count, NICCheckpoint.counterCount))
    }

    deinit { values.deallocate() }
}
