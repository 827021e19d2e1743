import ArgumentParser
import Foundation
import TraceFormat
import TraceAnalysis
import VirtioCore

/// `vtrace debug FILE`: an interactive stepper over a replay.
struct Debug: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Step through a replay, one MMIO access at a time.",
        discussion: """
            Reads commands from standard input (a terminal or a pipe):
              step [N]     re-execute the next N MMIO accesses (default 1), showing what each produced
              continue     run to the next breakpoint, divergence or the end
              goto N       jump to event N (restores the nearest checkpoint, then steps)
              break N      stop before the access that produces event N
              counters     the replayed counters of every NIC
              queues       each NIC's status and queues
              event        the next recorded event
              chain        the last chain popped
              quit         leave

            Examples:
              vtrace debug run.vtrace
              printf 'goto 1200\\ncounters\\nstep 3\\nquit\\n' | vtrace debug run.vtrace
            """
    )

    /// The commands' names, for Tab completion on a terminal.
    static let commandNames = ["step", "continue", "goto", "break", "counters", "queues", "event", "chain", "help", "quit"]

    @OptionGroup var input: TraceInput

    @OptionGroup var faultOptions: ReplayFaultOptions

    func run() throws {
        let reader = try input.open()
        let faults = try faultOptions.faults(for: reader.header)
        let replayer = TraceReplayer(reader: reader, faults: faults)
        let faultNote = ReplayFaultOptions.note(reader.header, replaying: faults)
        var breakpoints = Set<UInt64>()
        let editor = LineEditor(commands: Debug.commandNames)
        guard reader.eventCount > 0 else {
            print("vtrace debug: \(input.trace) has no events: nothing to step through")
            return
        }
        do {
            try replayer.begin(at: 0)
        } catch {
            printError("vtrace: \(input.trace): \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
        print("vtrace debug: \(reader.eventCount) events in \(reader.chunks.count) chunks; `help` lists commands")

        func diverged(_ d: Divergence) {
            print("DIVERGED at \(d)")
            if let faultNote { print(faultNote) }
        }

        /// At an access whose drain passes `target` after two or more chains:
        /// runs it until the boundary before the chain that holds `target`.
        func enter(towards target: UInt64) throws {
            guard replayer.chainsBefore(target) >= 2 else { return }
            replayer.stopBefore = target
            defer { replayer.stopBefore = nil }
            _ = try replayer.stepAccess()
            if let d = replayer.divergence { diverged(d) }
        }

        /// "at event N", and why when it is before `target`.
        func printStop(_ target: UInt64?) {
            guard let at = replayer.nextText?.number else { print("at event end"); return }
            guard let target, at < target, replayer.divergence == nil else { print("at event \(at)"); return }
            if replayer.insideADrain {
                print("at event \(at): the drain is paused before the chain whose events hold event \(target) (debug stops between a drain's chains)")
            } else {
                print("at event \(at): event \(target) is inside the access #\(at)…#\(replayer.nextAccessEnd - 1), which `step` runs whole")
            }
        }

        /// Steps one access and prints what it did; false at the end or on divergence.
        func step(verbose: Bool) throws -> Bool {
            guard let start = try replayer.stepAccess() else {
                if let d = replayer.divergence { diverged(d) } else { print("end of trace") }
                return false
            }
            if verbose { for line in replayer.recordedText(since: start) { print("#\(line.number) \(line.text)") } }
            if let d = replayer.divergence {
                diverged(d)
                return false
            }
            return true
        }

        func runUntil(_ stop: (UInt64) -> Bool) throws {
            while true {
                try replayer.advanceSegmentIfNeeded()
                guard let next = replayer.nextText?.number else {
                    if let d = replayer.divergence { diverged(d) } else { print("end of trace") }
                    return
                }
                if stop(next) { return }
                if try !step(verbose: false) { return }
            }
        }

        while true {
            guard let line = editor.readLine(prompt: "(vtrace) ") else { break }
            let words = line.split(separator: " ").map(String.init)
            guard let command = words.first else { continue }
            let arg = words.count > 1 ? UInt64(words[1]) : nil
            if words.count > 1 && arg == nil { print("'\(words[1])' is not a number"); continue }
            do {
                switch command {
                case "step", "s":
                    for _ in 0..<(arg ?? 1) { if try !step(verbose: true) { break } }
                case "continue", "c":
                    var first = true
                    try runUntil { n in
                        defer { first = false }
 
                        // Stop before the access that produces a breakpoint event.
                        let end = replayer.nextAccessEnd
                        return !first && breakpoints.contains { $0 >= n && $0 < end }
                    }
                    if let n = replayer.nextText?.number, let bp = breakpoints.filter({ $0 >= n }).min(), bp < replayer.nextAccessEnd {
                        try enter(towards: bp)
                    }
                    printStop(breakpoints.filter { $0 >= (replayer.nextText?.number ?? 0) }.min())
                case "goto", "g":
                    guard let target = arg else { print("goto needs an event number"); continue }
                    guard target < reader.eventCount, let chunk = reader.chunkIndex(containing: target) else {
                        print("no event \(target) (the trace has \(reader.eventCount))")
                        continue
                    }
                    try replayer.begin(at: chunk)
                    try runUntil { n in
                        // Stop at the access holding the target: the next cause after it is past it.
                        n >= target || target < replayer.nextAccessEnd
                    }
                    if let at = replayer.nextText?.number, at < target, replayer.divergence == nil {
                        try enter(towards: target)
                    }
                    printStop(target)
                case "break", "b":
                    guard let n = arg else { print("break needs an event number"); continue }
                    breakpoints.insert(n)
                    print("breakpoint at event \(n)")
                case "counters":
                    let counters = replayer.devices.map(\.counters)
                    var columns = counters.enumerated().map { ("nic\($0.offset)", $0.element) }
                    if counters.count > 1 { columns.append(("total", NetCounters.aggregate(counters) ?? NetCounters())) }
                    print(CounterTable.render(columns, onlyNonZero: true))
                case "queues":
                    for (n, dev) in replayer.devices.enumerated() {
                        let s = dev.state
                        print("nic\(n): status \(s.status), interrupt status 0x\(String(s.interruptStatus.rawValue, radix: 16)), active pairs \(s.activeQueuePairs)")
                        for (i, q) in s.queues.enumerated() where q.ready || s.poisoned[i] {
                            print("  queue \(i): size \(q.size) next_avail \(q.nextAvail) next_used \(q.nextUsed)\(s.poisoned[i] ? " POISONED" : "")")
                        }
                    }
                case "event", "e":
                    print(replayer.nextText.map { "next: #\($0.number) \($0.text)" } ?? "end of trace")
                case "chain":
                    print(replayer.lastChain.map { "#\($0.number) \($0.text)" } ?? "no chain yet")
                case "help", "h", "?":
                    print("step [N] | continue | goto N | break N | counters | queues | event | chain | quit")
                case "quit", "q", "exit":
                    return
                default:
                    print("unknown command '\(command)'; `help` lists them")
                }
            } catch {
                print("error: \(error)")
            }
        }
    }
}
