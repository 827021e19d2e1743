//! The pattern frame, written into a buffer without building it byte by byte.

/// Writes the pattern frame's first `bytes.count` bytes into `bytes`: byte i
/// is `i & 0xff` (or `fill`). The first 256 bytes are written one by one,
/// the rest doubled by copying what is already there.
func writePattern(_ bytes: UnsafeMutableRawBufferPointer, fill: UInt8?) {
    if let fill { bytes.initializeMemory(as: UInt8.self, repeating: fill); return }
    let first = min(bytes.count, 256)
    for i in 0..<first { bytes[i] = UInt8(truncatingIfNeeded: i) }
    var done = first
    while done < bytes.count {
        let n = min(done, bytes.count - done)
        (bytes.baseAddress! + done).copyMemory(from: bytes.baseAddress!, byteCount: n)
        done += n
    }
}
