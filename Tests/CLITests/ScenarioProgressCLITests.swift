import Foundation
import Testing

/// `scenario run` of a long scenario shows its progress on a terminal, in
/// operations, and erases it before the verdict; through a pipe, or with
/// --json, its output is what it always was (issue 19, item 10).
/// VTRACE_PROGRESS_AFTER_MS=0 stands in for "after a second".
@Suite("Scenario run progress")
struct ScenarioProgressCLITests {
    @Test func aTerminalSeesOperationsAndAPipeSeesTheUsualOutput() throws {
        let path = try temporaryFile("long-kicks.scenario", Array("# kicks\ndriver init\nrepeat 200000 kick queue=1\n".utf8))
        let verdict = "\(path): passed (0 expectations, 200001 operations)"
        let now = ["VTRACE_PROGRESS_AFTER_MS": "0"]
        guard let tty = try CLI.runOnATerminal(["scenario", "run", path, "--summary"], environment: now) else { return }
        #expect(tty.status == 0, "\(tty.output)")
        #expect(tty.output.hasPrefix("\rscenario run long-kicks.scenario ["), "\(tty.output)")
        for done in [65_536, 131_072, 196_608] {
            #expect(tty.output.contains("] \(done)/200001 operations, about "), "\(tty.output)")
        }
        let erased = tty.output.range(of: "\r\u{1B}[K" + verdict)
        #expect(erased != nil, "\(tty.output)")
        guard let json = try CLI.runOnATerminal(["scenario", "run", path, "--json"], environment: now) else { return }
        #expect(json.status == 0 && !json.output.contains("operations\u{1B}[K") && !json.output.contains("\r\u{1B}[K"), "\(json.output)")
        let piped = try runCombined(CLI.productsDirectory.appendingPathComponent("vtrace").path, ["scenario", "run", path, "--summary"],
                                    environment: now)
        #expect(piped.status == 0)
        #expect(piped.output == verdict + "\n")
    }
}
