//! CRC-32 (IEEE 802.3, reflected, as zlib's crc32): every frame's checksum.

import CChecksum

/// CRC-32 of the trace's frames. Inputs of 64 bytes or more are folded 64
/// bytes at a time by carry-less multiplication where the CPU has it
/// (`CChecksum`: PCLMULQDQ, about 0.1 instructions a byte); the rest, and
/// every input on other CPUs, goes through eight tables, 8 bytes a step
/// (about 4 instructions a byte). Replay checks each chunk's compressed
/// bytes, so this runs over the whole file (docs/performance.md).
public enum CRC32 {
    /// Eight 256-entry tables: table k advances the CRC over k more zero bytes.
    static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = t[Int(prev & 0xFF)] ^ (prev >> 8)
            }
        }
        return t
    }()

    /// Whether this CPU folds (read once).
    public static let folds = vt_crc32_fold_available() != 0

    public static func checksum(_ data: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        guard folds, data.count >= 64, let base = data.baseAddress else { return checksumByTables(data, seed: seed) }
        let whole = data.count & ~15
        let register = vt_crc32_fold(~seed, base, whole)
        return checksumByTables(UnsafeRawBufferPointer(rebasing: data[whole...]), seed: ~register)
    }

    public static func checksum(_ data: [UInt8]) -> UInt32 { data.withUnsafeBytes { checksum($0) } }

    /// The table-driven CRC alone, whatever the CPU (the reference the folded
    /// path is tested against).
    public static func checksumByTables(_ data: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        var c = ~seed
        tables.withUnsafeBufferPointer { t in
            var i = 0
            let n = data.count
            while i + 8 <= n {
                let lo = UInt32(littleEndian: data.loadUnaligned(fromByteOffset: i, as: UInt32.self)) ^ c
                let hi = UInt32(littleEndian: data.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self))
                c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                    ^ t[256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                c = t[Int((c ^ UInt32(data[i])) & 0xFF)] ^ (c >> 8)
                i += 1
            }
        }
        return ~c
    }
}
