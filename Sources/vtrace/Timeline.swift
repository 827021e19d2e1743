import ArgumentParser
import Foundation
import TraceFormat
import TraceAnalysis
import VirtioCore

/// `vtrace timeline FILE`
struct Timeline: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "timeline",
        abstract: "Print counter values over event numbers (and time).",
        discussion: """
            One row at the start, one at every transition of a selected counter, and one at \
            the end; with --every N, one row per N events instead. Columns: the event number, \
            nanoseconds since the first access, the NIC and counter that moved, then the \
            selected counters (default: every counter that is not zero at the end).

            Examples:
              vtrace timeline run.vtrace
              vtrace timeline run.vtrace --counters rx_packets,tx_dropped_no_rx_buffer --nic 1
              vtrace timeline run.vtrace --every 100000 --format csv > counters.csv
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, csv, jsonl
    }

    @OptionGroup var input: TraceInput

    @Option(help: "Comma-separated counter names (default: those not zero at the end).")
    var counters: String?

    @OptionGroup var scope: CounterScopeOptions
    var nic: Int? { scope.nic }

    @Option(help: "One row per N events instead of one per transition.")
    var every: UInt64?

    @Option(help: "table, csv or jsonl.")
    var format: Format = .table

    func validate() throws {
        if let every, every == 0 { throw ValidationError("--every must be at least 1") }
    }

    func run() throws {
        let reader = try input.open()
        try scope.check([reader])
        let timeline = CounterTimeline(reader: reader, nic: nic)
        var selected: [NetCounter]
        if let counters {
            selected = try NetCounter.parseList(counters)
        } else {
            do {
                let end = try timeline.finalCounters()
                let scoped = nic.map { end[$0] } ?? (NetCounters.aggregate(end) ?? NetCounters())
                selected = NetCounter.allCases.filter { scoped[$0] != 0 }
                if selected.isEmpty { selected = [.txPackets, .rxPackets] }
            } catch {
                printError("vtrace: \(input.trace): \(error)")
                throw ExitCode(VTrace.usageExitCode)
            }
        }
        let names = selected.map(\.name)
        var out = ""
        func flush(force: Bool = false) {
            if force || out.utf8.count > 1 << 16 {
                print(out, terminator: "")
                out = ""
            }
        }
        switch format {
        case .table:
            out += ["event".leftPad(12), "time_ns".leftPad(14), "moved".padding(toLength: 30, withPad: " ", startingAt: 0)].joined(separator: " ")
                + names.map { $0.leftPad(max(12, $0.count)) }.joined(separator: " ") + "\n"
        case .csv:
            out += (["event", "time_ns", "nic", "counter"] + names).joined(separator: ",") + "\n"
        case .jsonl:
            break
        }
        do {
            try timeline.walk(counters: Set(selected), every: every) { s in
                let moved = s.marker.map { "nic\(s.nic!) \($0)" } ?? s.counter.map { "nic\(s.nic!) \($0.name)" } ?? ""
                switch format {
                case .table where s.marker != nil:
                    // A marker's line: its text in full, no counters.
                    out += [String(s.event).leftPad(12), String(s.time).leftPad(14), moved].joined(separator: " ") + "\n"
                case .table:
                    out += [String(s.event).leftPad(12), String(s.time).leftPad(14), moved.padding(toLength: 30, withPad: " ", startingAt: 0)].joined(separator: " ")
                        + zip(selected, names).map { String(s.counters[$0.0]).leftPad(max(12, $0.1.count)) }.joined(separator: " ") + "\n"
                case .csv:
                    out += ([String(s.event), String(s.time), s.nic.map(String.init) ?? "", s.counter?.name ?? s.marker ?? ""] + selected.map { String(s.counters[$0]) }).joined(separator: ",") + "\n"
                case .jsonl:
                    var fields = ["\"event\":\(s.event)", "\"time_ns\":\(s.time)"]
                    if let n = s.nic, let c = s.counter { fields += ["\"nic\":\(n)", "\"counter\":\"\(c.name)\""] }
                    if let n = s.nic, let m = s.marker { fields += ["\"nic\":\(n)", "\"marker\":\(EventFormatting.jsonString(m))"] }
                    fields.append("\"counters\":{" + selected.map { "\"\($0.name)\":\(s.counters[$0])" }.joined(separator: ",") + "}")
                    out += "{" + fields.joined(separator: ",") + "}\n"
                }
                flush()
            }
        } catch {
            flush(force: true)
            printError("vtrace: \(input.trace): \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
        flush(force: true)
    }
}
