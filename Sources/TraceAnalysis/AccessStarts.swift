//! Where accesses begin in a recording: the cause events (an MMIO access, a
//! memory binding, a vhost-user operation) a debugger steps between.

import TraceFormat

extension TraceReader {
    /// The first cause event after event `event`, if any.
    public func accessStart(after event: UInt64) throws(TraceError) -> UInt64? {
        guard event + 1 < eventCount, let first = chunkIndex(containing: event + 1) else { return nil }
        var buffer: ChunkBuffer?
        for i in first..<chunks.count {
            var d = try decoder(i, reusing: &buffer)
            while let e = try d.next(chunk: i, of: self) {
                if e.number > event && e.isCause { return e.number }
            }
        }
        return nil
    }

    /// The last cause event before event `event`, if any.
    public func accessStart(before event: UInt64) throws(TraceError) -> UInt64? {
        guard event > 0, let last = chunkIndex(containing: min(event, eventCount) - 1) else { return nil }
        var buffer: ChunkBuffer?
        for i in stride(from: last, through: 0, by: -1) {
            var d = try decoder(i, reusing: &buffer)
            var found: UInt64?
            while let e = try d.next(chunk: i, of: self), e.number < event {
                if e.isCause { found = e.number }
            }
            if let found { return found }
        }
        return nil
    }
}

extension TraceReader {
    /// Events `range` (at most `limit` of them) as `vtrace dump` shows them, with their NIC.
    public func recordedText(_ range: Range<UInt64>, limit: Int) throws(TraceError) -> [TraceReplayer.NumberedText] {
        let range = range.clamped(to: events)
        guard !range.isEmpty, let first = chunkIndex(containing: range.lowerBound) else { return [] }
        var lines: [TraceReplayer.NumberedText] = []
        for i in first..<chunks.count where chunks[i].firstEvent < range.upperBound {
            var d = try decoder(i)
            while let e = try d.next(chunk: i, of: self), e.number < range.upperBound {
                guard e.number >= range.lowerBound else { continue }
                if lines.count == limit { return lines }
                lines.append(.init(number: e.number, text: "nic\(e.nic) " + EventFormatting.summary(e, d)))
            }
        }
        return lines
    }
}
