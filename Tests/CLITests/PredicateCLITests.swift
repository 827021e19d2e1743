import Foundation
import Testing

@Suite("vtrace bisect --until nesting")
struct PredicateCLITests {
    /// 50,000 parentheses, 100,000 `!` or a 60,000-term chain once overflowed
    /// the stack (exit 139); now each is bad usage at the column past 256
    /// levels. (The message quotes the 100 KB expression: no pipe for it.)
    @Test func deepExpressionsAreBadUsageNotACrash() throws {
        let trace = repositoryRoot.appendingPathComponent("traces/golden/loopback-basic.vtrace").path
        let cases: [(String, Int)] = [
            (String(repeating: "(", count: 50_000) + "tx_packets > 0" + String(repeating: ")", count: 50_000), 257),
            (String(repeating: "!", count: 100_000) + "tx_packets", 257),
            (Array(repeating: "1", count: 60_001).joined(separator: "+") + " > 0", 512),
        ]
        for (expression, column) in cases {
            let r = try CLI.runMeasured(["bisect", trace, "--until", expression])
            #expect(r.status == 2, "\(r.stderr.suffix(200))")
            #expect(r.stderr.hasSuffix("': column \(column): expression nested too deeply (more than 256 levels of parentheses and operators)\n"),
                    "\(r.stderr.suffix(200))")
            #expect(r.stdout.isEmpty)
        }
        let help = try CLI.run("bisect", "--help")
        #expect(help.stdout.contains("nested at most 256 levels deep"))
    }
}
