//! Matching a replayed device's actions against a chunk's records directly,
//! without building events: the whole-trace replay's fast path.

/// The outcome of matching one device action against the next record.
public enum RecordMatch: Equatable, Sendable {
    /// The record is this action, and it succeeded when recorded.
    case matched
    /// The record is this action, recorded as failed (guest memory refused it).
    case matchedFailed
    /// The record is something else, or does not decode: the caller gives up
    /// on matching directly (and replays the events one by one to say why).
    case mismatch
    /// The content has no record left (nothing was consumed): the caller
    /// goes on with the next chunk, if there is one.
    case end
}

/// Each `match` call decodes the next record exactly as ``next(into:)``
/// would (context records applied on the way; the same state moves: read
/// and write ends, recent reads, the repeat table, counters), through the
/// same field parsers, but compares its fields with what the device did
/// instead of building a ``TraceEvent``. A record of another kind, NIC or
/// content, or one that does not decode, is ``RecordMatch/mismatch``; the
/// decoder's state is then undefined, and the caller starts over from a
/// copy taken earlier. At the content's end it is ``RecordMatch/end``.
extension ChunkDecoder {
    /// Applies the context records before the next event record. False at
    /// the content's end, or at a context record that does not decode (left
    /// unread).
    @inline(never)
    public mutating func atEventRecord() -> Bool {
        while offset < end {
            let tag = reader.base[offset]
            let code = RecordCode.code(ofTag: tag)
            guard code >= RecordCode.firstEscaped, let context = ContextRecord(rawValue: code) else { return true }
            let tagOffset = offset
            offset += 1
            do throws(ChunkDecodeError) { try apply(context, tagOffset) } catch { offset = tagOffset; return false }
        }
        return false
    }

    /// The next event record's tag, consumed, if it is an event of NIC `nic`:
    /// otherwise `code` is `endCode` at the content's end, and
    /// `mismatchCode` for another NIC's event or a context record that does
    /// not decode (nothing consumed but the context records before it).
    @inlinable @inline(__always)
    mutating func takeTag(nic n: Int) -> (code: UInt8, aux: UInt8, tagOffset: Int) {
        guard offset < end else { return (Self.endCode, 0, offset) }
        var tag = reader.base[offset]
        if tag == Self.nicTag || tag == Self.vcpuTag {
            guard atEventRecord() else { return (offset >= end ? Self.endCode : Self.mismatchCode, 0, offset) }
            tag = reader.base[offset]
        }
        guard n == nic else { return (Self.mismatchCode, 0, offset) }
        let tagOffset = offset
        offset &+= 1
        return (RecordCode.code(ofTag: tag), tag >> 4, tagOffset)
    }

    /// Tags of the context records, and the codes ``takeTag(nic:)`` returns
    /// where there is no event of the NIC (no record has them).
    @usableFromInline static let nicTag = RecordCode.tag(code: ContextRecord.nic.rawValue)
    @usableFromInline static let vcpuTag = RecordCode.tag(code: ContextRecord.vcpu.rawValue)
    @usableFromInline static let endCode: UInt8 = 0xFE
    @usableFromInline static let mismatchCode: UInt8 = 0xFF

    /// A tag that is no event of the NIC as a match outcome.
    @inlinable @inline(__always)
    static func missing(_ code: UInt8) -> RecordMatch { code == endCode ? .end : .mismatch }

    /// A device read of `buffer.count` bytes at `address` by NIC `nic`:
    /// served from the record (a part a snaplen left out as zeros).
    @inlinable @inline(__always)
    public mutating func matchRead(nic n: Int, address: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> RecordMatch {
        let t = takeTag(nic: n)
        let a: UInt64, length: Int, ok: Bool, range: Range<Int>
        do throws(ChunkDecodeError) {
            if t.code == TraceEventKind.memoryRead.rawValue || t.code == RepeatRecord.read && repeats {
                // One address decoding for both records (the matcher stays small enough to inline them).
                let at = try self.address(from: lastReadEnd, t.tagOffset)
                if t.code == TraceEventKind.memoryRead.rawValue {
                    (a, length, ok, range) = try memoryReadFields(t.aux, t.tagOffset, at: at)
                } else {
                    let f = try repeatedAccess(isRead: true, at: at, t.tagOffset)
                    (a, length, ok, range) = (f.address, f.bytes.count, true, f.bytes)
                }
            } else if t.code == PredictedRecord.incrementedRead && predicts {
                let f = try incrementedAccess(isRead: true, t.tagOffset)
                (a, length, ok, range) = (f.address, 2, true, f.bytes)
            } else if t.code == RecalledRecord.read && recalls {
                let f = try recalledRead(t.tagOffset)
                (a, length, ok, range) = (f.address, f.bytes.count, true, f.bytes)
            } else if t.code == CursorRecord.code && cursors {
                let f = try cursorAccess(t.tagOffset)
                guard !f.isWrite else { return .mismatch }
                (a, length, ok, range) = (f.address, f.bytes.count, true, f.bytes)
            } else if t.code == TruncatedMemoryRecord.code,
                      case .memoryRead(let ta, let tl, let tok, let tr) = try truncatedMemory(t.tagOffset) {
                (a, length, ok, range) = (ta, tl, tok, tr)
            } else {
                return Self.missing(t.code)
            }
        } catch { return .mismatch }
        guard a == address, length == buffer.count else { return .mismatch }
        decodedCount &+= 1
        guard ok else { return .matchedFailed }
        guard let to = buffer.baseAddress else { return .matched }
        let from = contentBase + range.lowerBound
        let stored = range.count
        if stored == length {
            copyBytes(from: from, to: to, count: length)
        } else {
            to.copyMemory(from: from, byteCount: stored)
            (to + stored).initializeMemory(as: UInt8.self, repeating: 0, count: length - stored)
        }
        return .matched
    }

    /// A device write of `bytes` at `address` by NIC `nic`: the recorded
    /// bytes must be these (as many as were stored).
    @inlinable @inline(__always)
    public mutating func matchWrite(nic n: Int, address: UInt64, from bytes: UnsafeRawBufferPointer) -> RecordMatch {
        let t = takeTag(nic: n)
        let a: UInt64, length: Int, ok: Bool, range: Range<Int>
        do throws(ChunkDecodeError) {
            if t.code == TraceEventKind.memoryWrite.rawValue || t.code == RepeatRecord.write && repeats {
                let at = try self.address(from: lastWriteEnd, t.tagOffset)
                if t.code == TraceEventKind.memoryWrite.rawValue {
                    (a, length, ok, range) = try memoryWriteFields(t.aux, t.tagOffset, at: at)
                } else {
                    let f = try repeatedAccess(isRead: false, at: at, t.tagOffset)
                    (a, length, ok, range) = (f.address, f.bytes.count, true, f.bytes)
                }
            } else if t.code == PredictedRecord.incrementedWrite && predicts {
                let f = try incrementedAccess(isRead: false, t.tagOffset)
                (a, length, ok, range) = (f.address, 2, true, f.bytes)
            } else if t.code == CursorRecord.code && cursors {
                let f = try cursorAccess(t.tagOffset)
                guard f.isWrite else { return .mismatch }
                (a, length, ok, range) = (f.address, f.bytes.count, true, f.bytes)
            } else if t.code == TruncatedMemoryRecord.code,
                      case .memoryWrite(let ta, let tl, let tok, let tr) = try truncatedMemory(t.tagOffset) {
                (a, length, ok, range) = (ta, tl, tok, tr)
            } else {
                return Self.missing(t.code)
            }
        } catch { return .mismatch }
        guard a == address, length == bytes.count,
              range.isEmpty || bytesEqual(contentBase + range.lowerBound, bytes.baseAddress!, range.count) else { return .mismatch }
        decodedCount &+= 1
        return ok ? .matched : .matchedFailed
    }

    /// A chain of `count` descriptors popped by NIC `nic` (`descriptor(i)`
    /// gives the device's descriptor `i`).
    @inlinable @inline(__always)
    public mutating func matchChain(nic n: Int, queue: UInt16, head: UInt16, count: Int,
                                    _ descriptor: (Int) -> TraceDescriptor) -> RecordMatch {
        let t = takeTag(nic: n)
        do throws(ChunkDecodeError) {
            if t.code == RepeatRecord.chainAsRead && repeats || t.code == PredictedRecord.chainAtHead && predicts {
                // Compared where they were read: no copy into the descriptor list.
                let f = try chainAsReadHeader(atHead: t.code == PredictedRecord.chainAtHead, t.tagOffset)
                guard f.queue == queue, f.head == head, f.count == count else { return .mismatch }
                for i in 0..<count where asReadDescriptor(i, of: count) != descriptor(i) { return .mismatch }
            } else if t.code == TraceEventKind.chain.rawValue {
                // Each descriptor compared as it is decoded: none is stored
                // (the last chain's descriptors are left as they were).
                let f = try chainHeader(t.tagOffset)
                guard f.queue == queue, f.head == head, f.count == count else { return .mismatch }
                for i in 0..<count where try chainDescriptor() != descriptor(i) { return .mismatch }
            } else {
                return Self.missing(t.code)
            }
        } catch { return .mismatch }
        decodedCount &+= 1
        return .matched
    }

    /// A used element NIC `nic` published.
    @inlinable @inline(__always)
    public mutating func matchUsed(nic n: Int, queue: UInt16, id: UInt32, len: UInt32) -> RecordMatch {
        let t = takeTag(nic: n)
        do throws(ChunkDecodeError) {
            if t.code == TraceEventKind.used.rawValue {
                guard try usedFields() == (queue, id, len) else { return .mismatch }
            } else if t.code == PredictedRecord.usedAsWritten && predicts {
                guard try usedAsWrittenFields(t.tagOffset) == (queue, id, len) else { return .mismatch }
            } else {
                return Self.missing(t.code)
            }
        } catch { return .mismatch }
        decodedCount &+= 1
        return .matched
    }

    /// Counter `index` of NIC `nic` moved to `value`.
    @inlinable @inline(__always)
    public mutating func matchCounter(nic n: Int, index: Int, value: UInt64) -> RecordMatch {
        let t = takeTag(nic: n)
        guard t.code == TraceEventKind.counter.rawValue, Int(t.aux) == index else { return Self.missing(t.code) }
        do throws(ChunkDecodeError) {
            guard try counterValue(t.aux) == value else { return .mismatch }
        } catch { return .mismatch }
        decodedCount &+= 1
        return .matched
    }

    /// Any other event of NIC `nic`: decoded as ``next(into:)`` does, and
    /// accepted by `matches`.
    public mutating func matchEvent(nic n: Int, _ matches: (TraceEvent.Body) -> Bool) -> RecordMatch {
        guard atEventRecord() else { return offset >= end ? .end : .mismatch }
        guard n == nic else { return .mismatch }
        var e = TraceEvent(number: 0, time: 0, nic: 0, vcpu: 0, body: .reset)
        do throws(ChunkDecodeError) {
            guard try next(into: &e) else { return .end }
        } catch { return .mismatch }
        return matches(e.body) ? .matched : .mismatch
    }
}
