import ArgumentParser
import Foundation
import TraceFormat
import TraceAnalysis
import VirtioCore

/// `vtrace diff A B`
struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare two traces' counter timelines and show where they part.",
        discussion: """
            The traces are aligned by content, not by event number, so two boots of the same \
            workload with different timing and MMIO noise still line up: chains by (NIC, queue, \
            position in the queue's sequence of chains, head), counter transitions by (NIC, \
            counter, step), MMIO writes by register and value, reads by register, and used \
            publishes, interrupts, poisonings, status changes and resets by their fields \
            (memory traffic is left out). A Myers diff over windows of the two streams keeps \
            memory bounded on traces of any size.

            The counter timelines are identical when every counter transition of one trace has \
            its partner in the other. Otherwise diff prints the first transition that one \
            trace has and the other lacks (with event numbers in both), the counters of both \
            there and at the end with per-counter differences, and the aligned events around \
            it: "=" in both, "-" only in A, "+" only in B.

            Each NIC is compared separately; --nic picks one, --aggregate compares the sum \
            over all NICs as one stream.

            Exit codes: 0 identical counter timelines, 1 they differ, 2 bad usage or an \
            unreadable trace.

            Examples:
              vtrace diff passing.vtrace failing.vtrace
              vtrace diff passing.vtrace failing.vtrace --aggregate --json
            """
    )

    @Argument(help: "The reference trace (for example a passing CI run).", completion: .file(extensions: ["vtrace", "partial"]))
    var a: String

    @Argument(help: "The trace to compare with it (for example the failing run).", completion: .file(extensions: ["vtrace", "partial"]))
    var b: String

    @Option(help: "Compare only this NIC.")
    var nic: Int?

    @Flag(help: "Compare the aggregate over all NICs as one stream.")
    var aggregate = false

    @Option(help: "Aligned events to show before the split (after it: twice as many).")
    var context = 6

    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var a: TraceSummary
        var b: TraceSummary
        var identical: Bool
        var scopes: [ScopeReport]
    }
    struct TraceSummary: Encodable {
        var path: String
        var events: UInt64
        var nics: Int
        var complete: Bool
    }
    struct ScopeReport: Encodable {
        @NullWhenNil var nic: Int?
        var aggregate: Bool
        var identical: Bool
        @NullWhenNil var summary: String?
        @NullWhenNil var splitCounter: String?
        /// null: A has no event at the split.
        @NullWhenNil var eventA: UInt64?
        @NullWhenNil var eventB: UInt64?
        @NullWhenNil var afterA: UInt64?
        @NullWhenNil var afterB: UInt64?
        var countersAtSplitA: NetCounters?
        var countersAtSplitB: NetCounters?
        var endA: NetCounters
        var endB: NetCounters
        var context: [CounterDiff.ContextLine]
        var matched: Int
        var onlyA: Int
        var onlyB: Int
        var unalignedWindows: Int
        enum CodingKeys: String, CodingKey {
            case nic, aggregate, identical, summary, splitCounter = "split_counter", eventA = "event_a", eventB = "event_b"
            case afterA = "after_a", afterB = "after_b", countersAtSplitA = "counters_at_split_a", countersAtSplitB = "counters_at_split_b"
            case endA = "end_a", endB = "end_b", context
            case matched = "counter_transitions_in_both", onlyA = "counter_transitions_only_a", onlyB = "counter_transitions_only_b"
            case unalignedWindows = "unaligned_windows"
        }
    }

    func validate() throws {
        if nic != nil && aggregate { throw ValidationError("--nic and --aggregate exclude each other") }
        if context < 0 { throw ValidationError("--context must be 0 or more") }
    }

    func run() throws {
        let readerA = try TraceInput.open(a)
        let readerB = try TraceInput.open(b)
        var scopes: [DiffScope]
        if aggregate {
            scopes = [.aggregate]
        } else if let nic {
            guard nic >= 0 && nic < min(readerA.header.nics, readerB.header.nics) else {
                printError("vtrace: --nic \(nic): A has \(readerA.header.nics) NIC(s), B has \(readerB.header.nics)")
                throw ExitCode(VTrace.usageExitCode)
            }
            scopes = [.nic(nic)]
        } else {
            scopes = (0..<min(readerA.header.nics, readerB.header.nics)).map { .nic($0) }
        }
        var diffs: [CounterDiff] = []
        do {
            for scope in scopes {
                diffs.append(try CounterDiff.compare(readerA, readerB, scope: scope, before: context, after: 2 * context))
            }
        } catch {
            printTraceError(error, among: [(a, readerA), (b, readerB)])
            throw ExitCode(VTrace.usageExitCode)
        }
        let nicsDiffer = !aggregate && nic == nil && readerA.header.nics != readerB.header.nics
        let identical = diffs.allSatisfy(\.identical) && !nicsDiffer
        if output.json {
            let report = Report(a: summary(a, readerA), b: summary(b, readerB), identical: identical, scopes: diffs.map(scopeReport))
            print(try JSONText.encode(report))
        } else {
            printText(diffs, readerA, readerB, nicsDiffer: nicsDiffer, identical: identical)
        }
        if !identical { throw ExitCode(1) }
    }

    func summary(_ path: String, _ r: TraceReader) -> TraceSummary {
        TraceSummary(path: path, events: r.eventCount, nics: r.header.nics, complete: r.completeness == .complete)
    }

    func scopeReport(_ d: CounterDiff) -> ScopeReport {
        var nicNumber: Int?
        if case .nic(let n) = d.scope { nicNumber = n }
        return ScopeReport(nic: nicNumber, aggregate: d.scope == .aggregate, identical: d.identical, summary: d.split?.summary,
                           splitCounter: d.split?.counter?.name, eventA: d.split?.a.event, eventB: d.split?.b.event,
                           afterA: d.split?.a.after, afterB: d.split?.b.after,
                           countersAtSplitA: d.split?.countersA, countersAtSplitB: d.split?.countersB, endA: d.endA, endB: d.endB,
                           context: d.context, matched: d.matched, onlyA: d.onlyA, onlyB: d.onlyB, unalignedWindows: d.unalignedWindows)
    }

    func printText(_ diffs: [CounterDiff], _ ra: TraceReader, _ rb: TraceReader, nicsDiffer: Bool, identical: Bool) {
        print("A  \(a): \(ra.events.count) events, \(ra.header.nics) NIC(s), \(ra.completeness.text)")
        print("B  \(b): \(rb.events.count) events, \(rb.header.nics) NIC(s), \(rb.completeness.text)")
        if nicsDiffer { print("the traces have different NIC counts: compared NICs 0..<\(min(ra.header.nics, rb.header.nics))") }
        for d in diffs {
            let name: String
            switch d.scope {
            case .nic(let n): name = "nic\(n)"
            case .aggregate: name = "aggregate"
            }
            print("")
            guard let split = d.split else {
                print("\(name): counter timelines identical — all \(d.matched) counter transitions aligned (A \(d.eventsA) events, B \(d.eventsB))")
                print(CounterTable.render([("A = B", d.endA)], onlyNonZero: true).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
                continue
            }
            print("\(name): DIFFER — \(split.summary)")
            if let t = split.a.text, let e = split.a.event { print("  A #\(e)  \(t)") }
            if let t = split.b.text, let e = split.b.event { print("  B #\(e)  \(t)") }
            if !d.context.isEmpty {
                print("  around the split (= the same in both, ~ aligned but not the same: both shown, - only in A, + only in B):")
                for line in d.context {
                    let a = line.eventA.map { "A#\($0)" } ?? "", b = line.eventB.map { "B#\($0)" } ?? ""
                    print("    \(line.mark) \(a.padding(toLength: 10, withPad: " ", startingAt: 0)) \(b.padding(toLength: 10, withPad: " ", startingAt: 0)) \(line.text)")
                }
            } else if context > 0 {
                print("  around the split: the events there differ too much to align (try a smaller --context)")
            }
            print("  counters at the split, and at the end (* differs):")
            print(table(split, d))
            print("  counter transitions: \(d.matched) in both, \(d.onlyA) only in A, \(d.onlyB) only in B"
                  + (d.unalignedWindows > 0 ? "; \(d.unalignedWindows) window(s) too different to align" : ""))
        }
        print("")
        print(identical ? "verdict: identical counter timelines" : "verdict: the counter timelines differ")
    }

    /// Counters at the split and the end, a B−A column for the end, and a
    /// mark where A and B disagree at either point.
    func table(_ split: CounterDiff.Split, _ d: CounterDiff) -> String {
        let pairs = [(split.countersA, split.countersB), (d.endA, d.endB)]
        let names = NetCounter.allCases.filter { c in pairs.contains { $0.0[c] != 0 || $0.1[c] != 0 } }
        func delta(_ c: NetCounter) -> String {
            let v = Int64(bitPattern: d.endB[c] &- d.endA[c])
            return v > 0 ? "+\(v)" : String(v)
        }
        return CounterTable.render(rows: names, columns: [("A split", { String(split.countersA[$0]) }), ("B split", { String(split.countersB[$0]) }),
                                                          ("A end", { String(d.endA[$0]) }), ("B end", { String(d.endB[$0]) }), ("B−A end", delta)],
                                   indent: "    ", mark: { c in pairs.contains { $0.0[c] != $0.1[c] } ? "  *" : "" })
    }
}
