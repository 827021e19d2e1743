//! A flight recorder's window: the trace keeps only its newest chunks.

#if canImport(Glibc)
import Glibc
#endif

/// What a flight recorder keeps: the newest chunks within a size or an age.
///
/// The file grows to the limit, then the writer's thread rolls it: the
/// newest half is copied after a rewritten header into a new file, which
/// replaces the old one with a rename (so a recorder killed at any instant
/// leaves one readable trace), and writing goes on there. The window kept
/// is therefore between half the limit and the limit (plus the chunk being
/// written); copying costs at most one more write of each byte. The first
/// chunk kept is always one with a checkpoint, so the window replays.
public struct TraceWindow: Hashable, Sendable, CustomStringConvertible {
    /// The file's size limit in bytes (nil: no size limit).
    public var bytes: UInt64?
    /// The age limit in nanoseconds of recording time (nil: none).
    public var nanoseconds: UInt64?

    public init(bytes: UInt64? = nil, nanoseconds: UInt64? = nil) {
        self.bytes = bytes
        self.nanoseconds = nanoseconds
    }

    public var description: String {
        var parts: [String] = []
        if let bytes { parts.append("\(bytes) bytes") }
        if let nanoseconds { parts.append("\(Double(nanoseconds) / 1e9) s") }
        return "the newest " + parts.joined(separator: " and ")
    }

    /// Whether the window must roll now, and from which chunk the new file
    /// starts: the first checkpoint chunk that brings the file under half
    /// the size limit and drops everything older than the age limit (the
    /// newest chunk stays however large it is).
    func firstKept(_ entries: [ChunkEntry], fileSize: UInt64) -> Int? {
        guard entries.count > 1 else { return nil }
        let newest = entries[entries.count - 1].firstTime
        let tooBig = bytes.map { fileSize > $0 } ?? false
        let tooOld = nanoseconds.map { newest &- entries[0].firstTime > 2 * $0 } ?? false
        guard tooBig || tooOld else { return nil }
        var size = fileSize
        var k = 0
        while k < entries.count - 1 {
            let fits = bytes.map { size <= $0 / 2 } ?? true
            let young = nanoseconds.map { newest &- entries[k].firstTime <= $0 } ?? true
            if fits && young { break }
            let chunk = UInt64(TraceLayout.frameHeaderSize + TraceLayout.entrySize) + UInt64(entries[k].compressedSize)
            size = size > chunk ? size - chunk : 0
            k += 1
        }
        // Start at a checkpoint: back to the nearest one (keeping a little
        // more), or, when only chunk 0 has one before, forward to the next.
        var first = k
        while first > 0 && !entries[first].hasCheckpoint { first -= 1 }
        if first == 0 {
            first = k
            while first < entries.count && !entries[first].hasCheckpoint { first += 1 }
            if first == entries.count { return nil }
        }
        return first > 0 ? first : nil
    }
}

extension TraceWriter {
    /// Replaces the file with one that holds chunks `first...` after a header
    /// whose first event is theirs (on the writer's thread).
    func roll(keepingFrom first: Int) throws(TraceError) {
        let rolled = partialPath + ".roll"
        let out = open(rolled, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0o644)
        if out < 0 { throw .io(path: rolled, String(cString: strerror(errno))) }
        let old = fd
        var kept: [ChunkEntry] = []
        var offset: UInt64 = 0
        do throws(TraceError) {
            fd = out
            var h = header
            h.firstEvent = entries[first].firstEvent
            let payload = h.encode()
            var w = ByteWriter()
            w.fixed(TraceLayout.headerFrameMagic)
            w.fixed(UInt32(payload.count))
            w.append(payload)
            try writeAll(w.bytes)
            offset = UInt64(w.count)
            for e in entries[first...] {
                // Into the frame buffer the thread compresses into: that chunk is written already.
                let size = Int(e.compressedSize)
                if frameBuffer.count < size { frameBuffer = [UInt8](repeating: 0, count: size) }
                let n = frameBuffer.withUnsafeMutableBytes { pread(old, $0.baseAddress!, size, off_t(e.offset)) }
                guard n == size else { throw TraceError.io(path: partialPath, "reading chunk at \(e.offset) to roll the window: \(n < 0 ? String(cString: strerror(errno)) : "short read")") }
                var moved = e
                moved.offset = offset + UInt64(TraceLayout.frameHeaderSize + TraceLayout.entrySize)
                var f = ByteWriter(capacity: 64)
                f.fixed(TraceLayout.entryFrameMagic)
                f.fixed(UInt32(TraceLayout.entrySize))
                moved.encode(into: &f)
                try writeAll(f.bytes)
                try writeAll(frameBuffer, count: size)
                offset += UInt64(f.count + size)
                kept.append(moved)
            }
            if rename(rolled, partialPath) != 0 { throw TraceError.io(path: partialPath, String(cString: strerror(errno))) }
        } catch {
            fd = old
            close(out)
            unlink(rolled)
            throw error
        }
        close(old)
        fileOffset = offset
        mutex.withLock {
            rolledChunks += first
            entries = kept
        }
    }
}
