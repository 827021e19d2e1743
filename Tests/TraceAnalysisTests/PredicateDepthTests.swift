import Testing
import TraceAnalysis
import VirtioCore

/// `bisect --until` expressions nest at most 256 levels: deeper ones are a
/// parse error at the column where the limit is passed, not a stack overflow.
@Suite("Counter predicate nesting")
struct PredicateDepthTests {
    static let tooDeep = "expression nested too deeply (more than 256 levels of parentheses and operators)"

    func error(_ text: String) -> CounterPredicate.ParseError? {
        do {
            _ = try CounterPredicate.parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func nestingPastTheLimitFailsAtTheColumnThatPassesIt() {
        let cases: [(String, String, Int)] = [
            ("50,000 parentheses", String(repeating: "(", count: 50_000) + "tx_packets > 0" + String(repeating: ")", count: 50_000), 257),
            ("100,000 !", String(repeating: "!", count: 100_000) + "tx_packets", 257),
            ("100,000 unary -", String(repeating: "-", count: 100_000) + "1", 257),
            ("256 ! then a counter", String(repeating: "!", count: 256) + "tx_packets", 257),
            // 1+1+…: the k-th '+' is at column 2k; the 256th makes 257 levels.
            ("a chain of 60,000 +", Array(repeating: "1", count: 60_001).joined(separator: "+"), 512),
            ("a chain of 257 terms", Array(repeating: "1", count: 257).joined(separator: "+"), 512),
            // Inside 255 parentheses the comparison's right operand is level 257.
            ("a comparison in 255 parentheses", String(repeating: "(", count: 255) + "tx_packets > 0" + String(repeating: ")", count: 255), 269),
        ]
        for (name, text, column) in cases {
            let e = error(text)
            #expect(e?.column == column, "\(name): \(String(describing: e))")
            #expect(e?.message == Self.tooDeep, "\(name)")
        }
    }

    @Test func nestingUpToTheLimitParsesAndEvaluates() throws {
        var c = NetCounters()
        c.txPackets = 10
        let parens = try CounterPredicate.parse(String(repeating: "(", count: 255) + "tx_packets" + String(repeating: ")", count: 255))
        #expect(parens == .counter(.txPackets))
        #expect(parens.value(c) == 10)
        let nots = try CounterPredicate.parse(String(repeating: "!", count: 255) + "tx_packets")
        #expect(nots.value(c) == 0)  // an odd number of ! of a non-zero value
        let chain = try CounterPredicate.parse(Array(repeating: "tx_packets", count: 256).joined(separator: " + "))
        #expect(chain.value(c) == 2560)
        #expect(chain.staysTrueOnceTrue == false)
        let compared = try CounterPredicate.parse(String(repeating: "(", count: 254) + "tx_packets > 9" + String(repeating: ")", count: 254))
        #expect(compared.holds(c) && compared.staysTrueOnceTrue)
    }
}
