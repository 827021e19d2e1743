// Fuzzes the `bisect --until` predicate parser: any bytes must parse or fail
// with a located error (never a trap or a stack overflow, however deep the
// nesting); a parsed predicate evaluates on extreme counters, and its
// description parses back to the same tree (or, being more deeply
// parenthesised, fails only with the nesting error).

import FuzzSupport
import TraceAnalysis
import VirtioCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: start, count: count), as: UTF8.self)
    let predicate: CounterPredicate
    do throws(CounterPredicate.ParseError) {
        predicate = try CounterPredicate.parse(text)
    } catch {
        precondition(error.column >= 1 && error.column <= text.utf8.count + 1 && !error.message.isEmpty, "\(error)")
        return 0
    }
    var low = NetCounters(), high = NetCounters()
    for (i, c) in NetCounter.allCases.enumerated() {
        low[c] = UInt64(i)
        high[c] = .max - UInt64(i)
    }
    _ = predicate.holds(NetCounters())
    _ = predicate.holds(low)
    _ = predicate.holds(high)
    _ = predicate.staysTrueOnceTrue
    do throws(CounterPredicate.ParseError) {
        let again = try CounterPredicate.parse(predicate.description)
        precondition(again == predicate, "\(text) → \(predicate) → \(again)")
    } catch {
        precondition(error.message.hasPrefix("expression nested too deeply"), "\(predicate): \(error)")
    }
    return 0
}

@_cdecl("FuzzPredicate_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { fuzz($0, $1) }
}
