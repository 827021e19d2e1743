// Fuzzes the scenario parser and runner: any bytes must give a scenario or a
// located error, and a parsed scenario must run (bounded) without trapping.

import FuzzSupport
import Scenarios

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    do throws(ScenarioError) {
        var scenario = try ScenarioParser.parse(file: "fuzz", bytes: bytes)
        // Keep runs short: small memory, few repeats.
        if scenario.setup.regions.reduce(0, { $0 + $1.size }) > 64 << 20 { return 0 }
        scenario.steps = scenario.steps.map { var s = $0; s.repeatCount = min(s.repeatCount, 4); return s }
        var runner = try ScenarioRunner(scenario)
        _ = runner.run()
    } catch {
        precondition(error.line >= 0 && error.column >= 0 && !error.message.isEmpty)
    }
    return 0
}

@_cdecl("FuzzScenario_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { fuzz($0, $1) }
}
