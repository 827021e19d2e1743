//! Guest memory during replay: recorded reads served, writes checked.

#if canImport(Glibc)
import Glibc
#endif
import TraceFormat
import VirtioCore

/// Guest memory during replay: reads return the recorded bytes, writes are
/// checked against the recorded ones.
///
/// Payload a snaplen left out (a memory event whose bytes are fewer than its
/// length) is served as zeros: the device reads frame payload only to copy
/// it into an RX buffer, whose write is then checked by address and length
/// and by the bytes that were stored, the frame's first.
public final class ReplayMemory: GuestMemory {
    let cursor: ReplayCursor
    init(cursor: ReplayCursor) { self.cursor = cursor }

    public func read(_ address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(GuestMemoryError) {
        var ok = false
        var matched = false
        if cursor.halted {
            // Past the recording's end (or an abandoned stop) nothing is served: the drain stops at its next pop.
            if cursor.cut != nil || cursor.abandoned { throw GuestMemoryError(address: address, length: buffer.count) }
            // Past a divergence the recording no longer says what this read sees.
            if !cursor.serveFromImage(address, into: buffer) { throw GuestMemoryError(address: address, length: buffer.count) }
            return
        }
        cursor.expect("read \(buffer.count) bytes at 0x\(String(address, radix: 16))") { e in
            guard case .memoryRead(let a, let n, let recordedOK, let r) = e.event.body, a == address, n == buffer.count else { return false }
            if recordedOK, let base = buffer.baseAddress {
                // The range is the decoder's: within the chunk, at most `n` bytes.
                let stored = r.upperBound &- r.lowerBound
                if stored == n {
                    copyBytes(from: cursor.payload(e, r), to: base, count: n)
                } else {
                    Self.servePart(cursor.payload(e, r), stored, into: base, n)
                }
            }
            ok = recordedOK
            matched = true
            return true
        }
        if !matched {
            if cursor.cut != nil || cursor.abandoned { throw GuestMemoryError(address: address, length: buffer.count) }
            // The changed device core read something the recording never saw here.
            if !cursor.serveFromImage(address, into: buffer) { throw GuestMemoryError(address: address, length: buffer.count) }
            return
        }
        if !ok { throw GuestMemoryError(address: address, length: buffer.count) }
    }

    public func write(_ address: UInt64, from bytes: UnsafeRawBufferPointer) throws(GuestMemoryError) {
        var ok = false
        cursor.expect("wrote \(bytes.count) bytes at 0x\(String(address, radix: 16))") { e in
            guard case .memoryWrite(let a, let n, let recordedOK, let r) = e.event.body, a == address, n == bytes.count,
                  r.isEmpty || bytesEqual(cursor.payload(e, r), bytes.baseAddress!, r.upperBound &- r.lowerBound) else { return false }
            ok = recordedOK
            return true
        }
        if !ok { throw GuestMemoryError(address: address, length: bytes.count) }
    }

    /// A read a snaplen stored `stored` of `n` bytes of: those, then zeros.
    @inline(never)
    static func servePart(_ from: UnsafeRawPointer, _ stored: Int, into base: UnsafeMutableRawPointer, _ n: Int) {
        base.copyMemory(from: from, byteCount: stored)
        (base + stored).initializeMemory(as: UInt8.self, repeating: 0, count: n - stored)
    }
}
