//! The guest's serial console: COM1's registers as the guest sees them, and
//! the lines it writes (a run's `serial`, and what `--console` echoes).

#if canImport(Glibc)
import Glibc
#endif

/// COM1 (ports 0x3F8...0x3FF) as far as a guest printing lines needs it.
///
/// Bytes written to the data port make up lines, at most 1 MiB of them kept
/// (one vCPU's: each vCPU has its own, and a line is written by one vCPU).
/// The line status register reads "transmitter empty and idle", every other
/// register 0, so a guest's driver never waits.
struct SerialPort {
    /// The data register (transmit holding register on a write).
    static let dataPort: UInt16 = 0x3F8
    /// The line status register.
    static let lineStatusPort: UInt16 = 0x3FD
    /// Bytes kept at most; later ones are dropped.
    static let byteLimit = 1 << 20

    /// Complete lines, and the line being written.
    var lines: [String] = []
    var partial: [UInt8] = []
    /// Bytes taken so far (newlines included).
    var bytes = 0

    /// An OUT of `count` bytes at `data` to `port`: bytes for the data port
    /// are kept (up to the limit); `lineEnded` sees each line as it ends.
    mutating func write(port: UInt16, _ data: UnsafeMutablePointer<UInt8>, count: Int, lineEnded: (String) -> Void) {
        guard port == Self.dataPort else { return }
        for k in 0..<count where bytes < Self.byteLimit {
            bytes += 1
            if data[k] == 10 {
                let line = String(decoding: partial, as: UTF8.self)
                lines.append(line)
                partial.removeAll(keepingCapacity: true)
                lineEnded(line)
            } else {
                partial.append(data[k])
            }
        }
    }

    /// An IN of `count` bytes from `port` into `data`.
    static func read(port: UInt16, into data: UnsafeMutablePointer<UInt8>, count: Int) {
        // Line status: transmitter empty and idle; everything else reads 0.
        data.update(repeating: port == lineStatusPort ? 0x60 : 0, count: count)
    }

    /// Everything written: each line with its newline, then the line being written.
    var text: String {
        var text = ""
        for line in lines { text += line + "\n" }
        if !partial.isEmpty { text += String(decoding: partial, as: UTF8.self) }
        return text
    }

    /// Copies a line to standard error (`--console`), in one write.
    static func echo(_ line: String) {
        let text = line + "\n"
        _ = text.withCString { Glibc.write(2, $0, strlen($0)) }
    }
}
