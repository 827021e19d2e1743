//! What the driver writes into a buffer it posts: zeros (an RX buffer) or a
//! zero virtio-net header and a frame (a TX buffer). Written straight into
//! guest memory: no array and no staging copy per buffer.

import VirtioCore

/// The contents of a buffer the driver allocates for a chain.
enum BufferContents {
    /// All zeros (RX buffers).
    case zeros
    /// A zero 12-byte header, then `frame`, or `length` bytes of the
    /// pattern frame (byte i is `i & 0xff`), or `length` copies of `fill`.
    case txFrame(frame: [UInt8]?, length: Int, fill: UInt8?)
}

/// 4 KiB of the pattern frame: any piece of the frame that starts at a
/// multiple of 256 is a prefix of this.
let patternPage = VirtioNetDriver<GuestRAM>.patternFrame(length: 4096)

extension VirtioNetDriver {
    /// Writes `contents` into the `length` bytes at `base`. All or nothing as
    /// far as the mapping decides: the range is first zeroed in one
    /// ``GuestMemory/fill(_:count:with:)``, which fails whole if any byte is
    /// unmapped; the frame's bytes then go where that fill proved mapped.
    func write(_ contents: BufferContents, at base: UInt64, length: Int) throws(DriverError) {
        try fill(base, length, 0)
        guard case .txFrame(let frame, let frameLength, let fillByte) = contents else { return }
        let start = base + UInt64(NetLayout.headerLength)
        if let frame {
            try write(start, frame)
        } else if let fillByte {
            try fill(start, frameLength, fillByte)
        } else {
            var failure: DriverError?
            patternPage.withUnsafeBytes { page in
                var at = 0
                while at < frameLength && failure == nil {
                    let n = min(page.count, frameLength - at)
                    do throws(DriverError) { try write(start + UInt64(at), UnsafeRawBufferPointer(rebasing: page[0..<n])) }
                    catch { failure = error }
                    at += n
                }
            }
            if let failure { throw failure }
        }
    }
}
