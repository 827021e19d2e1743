import GuestDriver
import Testing
import TraceFormat
@testable import TraceAnalysis
import TraceMapping
import TraceRecording
import TraceTestSupport

@Suite("Myers alignment")
struct MyersTests {
    static func keys(_ values: [UInt64]) -> [KeyedEvent] {
        values.enumerated().map { KeyedEvent(key: DiffKey(kind: .counter, a: 0, b: $0.element), event: UInt64($0.offset), nic: 0, counter: nil, value: 0) }
    }

    static func lcs(_ x: [UInt64], _ y: [UInt64]) -> Int {
        var t = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
        for i in 0..<x.count {
            for j in 0..<y.count {
                t[i + 1][j + 1] = x[i] == y[j] ? t[i][j] + 1 : max(t[i][j + 1], t[i + 1][j])
            }
        }
        return t[x.count][y.count]
    }

    /// On random pairs of sequences, the script rebuilds both sides in order and
    /// matches as many keys as the longest common subsequence (it is shortest).
    @Test func scriptsAreValidAndShortest() throws {
        var rng = SplitMix64(seed: 0xD1FF)
        for _ in 0..<300 {
            let x = (0..<Int(rng.next() % 40)).map { _ in rng.next() % 4 }
            let y = (0..<Int(rng.next() % 40)).map { _ in rng.next() % 4 }
            let script = try #require(myersDiff(Self.keys(x)[...], Self.keys(y)[...], maxEdits: 200))
            var rebuiltX: [UInt64] = [], rebuiltY: [UInt64] = []
            var both = 0
            for op in script {
                switch op {
                case .both(let p, let q):
                    #expect(p.key == q.key)
                    rebuiltX.append(p.key.b)
                    rebuiltY.append(q.key.b)
                    both += 1
                case .onlyA(let p): rebuiltX.append(p.key.b)
                case .onlyB(let q): rebuiltY.append(q.key.b)
                }
            }
            #expect(rebuiltX == x && rebuiltY == y)
            #expect(both == Self.lcs(x, y), "x \(x) y \(y)")
        }
    }

    @Test func tooManyEditsIsNil() {
        let x = Self.keys(Array(0..<50)), y = Self.keys(Array(100..<150))
        #expect(myersDiff(x[...], y[...], maxEdits: 20) == nil)
        #expect(myersDiff(x[...], y[...], maxEdits: 100)?.count == 100)
    }
}
