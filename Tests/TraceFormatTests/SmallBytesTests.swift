import Testing
import TraceFormat

/// The small-payload copy and compare every recorder and replay access goes
/// through: exact for every length, whichever byte differs.
@Suite("Small payloads")
struct SmallBytesTests {
    @Test func everyLengthComparesAndCopiesExactly() {
        var a = [UInt8](repeating: 0, count: 96), b = a
        for i in a.indices { a[i] = UInt8(truncatingIfNeeded: i &* 37 &+ 11) }
        for n in 0...80 {
            b = a
            a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in #expect(bytesEqual(pa.baseAddress!, pb.baseAddress!, n), "length \(n)") } }
            for at in 0..<n {
                b = a
                b[at] ^= 0x80
                a.withUnsafeBytes { pa in
                    b.withUnsafeBytes { pb in #expect(!bytesEqual(pa.baseAddress!, pb.baseAddress!, n), "length \(n), byte \(at) differs") }
                }
            }
            // A change past the length is not seen.
            b = a
            b[n] ^= 1
            a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in #expect(bytesEqual(pa.baseAddress!, pb.baseAddress!, n), "length \(n)") } }
            var to = [UInt8](repeating: 0xEE, count: 96)
            a.withUnsafeBytes { pa in to.withUnsafeMutableBytes { pt in copyBytes(from: pa.baseAddress!, to: pt.baseAddress!, count: n) } }
            #expect(Array(to[..<n]) == Array(a[..<n]) && to[n...].allSatisfy { $0 == 0xEE }, "length \(n)")
        }
    }
}
