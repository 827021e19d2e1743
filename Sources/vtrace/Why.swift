import ArgumentParser
import Foundation
import TraceFormat
import TraceAnalysis
import VirtioCore

/// `vtrace why FILE COUNTER`
struct Why: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "why",
        abstract: "Explain why a counter moved: the access, the chain, the path the device took, the guest memory that decided it.",
        discussion: """
            Picks one transition of COUNTER (one of the 16 counters; a recorded counter \
            event that changed its value): by default the last one, or the K-th (--nth K, \
            from 1), or the last one at or before event N (--at N); on any NIC, or on --nic N. \
            It reads the recorded events around it (nothing is replayed) and prints, line by line:

              COUNTER OLD -> NEW at event E (nicN): the transition itself
              access    the event that began the access: an MMIO write (QueueNotify)
                        or a vhost-user kick, whose drain moved the counter
              chain     the chain being processed: its event, queue, head, and each
                        descriptor (addr, len, flags, next), numbered in chain order
              rx chain  the RX chain popped for the TX chain's frame, if one was
              path      the row of the spec's path -> counters table (section 3.8)
                        this chain took, and one sentence of facts: which descriptor,
                        which address faulted, which avail idx was bad, what the
                        device published and counted
              counters  every counter the chain's processing moved
              memory    the guest memory it read and wrote, in order: event, address,
                        length, ok or FAULT, what the device was doing (q1 avail idx,
                        q1 descriptor table entry, TX frame, RX header, q0 used
                        element, ...), the first bytes

            A counter that moved when a pop found a bad avail index has no chain: the path \
            is the queue's poisoning, with the avail idx the device read. docs/debugging.md \
            ("Why did a counter move?") walks through a session.

            Exit 0; 1 when the counter has no such transition (it never moved, --nth is past \
            its last move, --at before its first); 2 for bad usage or an unreadable trace.

            Examples:
              vtrace why run.vtrace rx_write_failed
              vtrace why run.vtrace tx_packets --nth 3
              vtrace why run.vtrace invalid_avail_idx_count --at 5000 --nic 1
              vtrace why run.vtrace ctrl_chain_invalid --json
            """
    )

    @OptionGroup var input: TraceInput

    @Argument(help: "The counter, e.g. rx_write_failed (one of the 16 counters).")
    var counter: String

    @Option(help: "Only this NIC's transitions (default: any NIC).")
    var nic: Int?

    @Option(help: "The K-th transition (1 is the first).")
    var nth: Int?

    @Option(help: "The last transition at or before event N.")
    var at: UInt64?

    @Flag(help: "The last transition (the default).")
    var last = false

    @OptionGroup var output: OutputOptions

    func validate() throws {
        if [nth != nil, at != nil, last].filter({ $0 }).count > 1 { throw ValidationError("--nth, --at and --last exclude each other") }
        if let nth, nth < 1 { throw ValidationError("--nth counts from 1") }
    }

    func run() throws {
        let counters = try NetCounter.parseList(counter)
        guard counters.count == 1, let counter = counters.first else {
            printError("vtrace: why explains one counter; counters are \(NetCounter.allCases.map(\.name).joined(separator: ", "))")
            throw ExitCode(VTrace.usageExitCode)
        }
        let reader = try input.open()
        try CounterScopeOptions.check(nic: nic, [reader])
        let selection: CounterCause.Selection = nth.map { .nth($0) } ?? at.map { .atOrBefore($0) } ?? .last
        let cause: CounterCause?
        var tally = CounterCause.Tally()
        do throws(TraceError) {
            cause = try CounterCause.explain(reader, counter: counter, nic: nic, selection: selection)
            if cause == nil { tally = try CounterCause.tally(reader, counter: counter, nic: nic) }
        } catch {
            printError("vtrace: \(terminalSafe(input.trace)): \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
        guard let cause else {
            printError("vtrace: " + missing(counter, tally))
            throw ExitCode(1)
        }
        if output.json {
            print(try JSONText.encode(cause))
        } else {
            for line in cause.render() { print(terminalSafe(line)) }
        }
    }

    /// Why no transition was selected.
    func missing(_ counter: NetCounter, _ tally: CounterCause.Tally) -> String {
        let scope = nic.map { " on nic\($0)" } ?? ""
        let file = terminalSafe(input.trace)
        let times = "\(tally.count) time\(tally.count == 1 ? "" : "s")"
        guard let first = tally.first, let last = tally.last else { return "\(counter.name) never changed\(scope) in \(file) (0 transitions)" }
        if let nth { return "--nth \(nth): \(counter.name) changed \(times)\(scope) in \(file) (first at event \(first), last at event \(last))" }
        return "--at \(at ?? 0): \(counter.name) did not change\(scope) at or before event \(at ?? 0); it changed \(times) in \(file), first at event \(first)"
    }
}
