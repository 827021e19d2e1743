import ArgumentParser
import Foundation
import TraceFormat
import TraceAnalysis
import VirtioCore

/// `vtrace replay FILE`
struct Replay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Re-execute a trace against the device core and report the first divergence.",
        discussion: """
            Feeds the recorded MMIO accesses (or vhost-user operations) and guest-memory reads to fresh device cores \
            built from the trace header, and checks every output (memory writes, chains, used \
            publishes, counters, interrupts, poisonings, status) against the recording, in \
            order, and each checkpoint against the state reached. No /dev/kvm needed.

            At the first mismatch it prints the event, its chunk and time, the MMIO access \
            that caused it, the chain involved, the events before it, and the counters as \
            recorded and as replayed, side by side.

            A recording that ends inside an access (a recorder killed in the middle of a \
            drain: a .partial) replays up to its last recorded event and stops there; that \
            is not a divergence, and the report names the access that was cut.

            It replays on every core by default (up to 8): the checkpoint segments are replayed \
            side by side, each from its own checkpoint (a segment that matched ends in the \
            state of the next checkpoint, or the replay says so), and the report is the \
            same as on one thread, errors included. With --fault (a fault counts from the \
            start of the replay) a second thread decompresses and decodes ahead instead. \
            --threads 1 keeps it all on one; --break-at and --break-on-divergence replay \
            on one thread.

            --check is made for `git bisect run`: exit 0 when the replay matches, 1 when it \
            diverges, 125 when the trace cannot be used (unreadable, unsupported version), \
            so bisect skips that commit instead of blaming it.

            Examples:
              vtrace replay run.vtrace
              vtrace replay run.vtrace --fault drop-rx:3        # see what that bug looks like
              vtrace replay run.vtrace --keep-going --json
              vtrace replay run.vtrace --threads 1             # all on this thread
              git bisect run sh -c 'swift build -c release && .build/release/vtrace replay --check failing.vtrace'
            """
    )

    @OptionGroup var input: TraceInput

    @OptionGroup var faultOptions: ReplayFaultOptions

    @Flag(help: "For git bisect run: exit 0 match, 1 divergence, 125 unusable trace; print one line.")
    var check = false

    @Flag(help: "After a divergence, go on from the next checkpoint and report every diverging chunk.")
    var keepGoing = false

    @Option(help: "Raise SIGTRAP exactly before event N, inside the device code that produces it (run under gdb; see docs/debugging.md).")
    var breakAt: UInt64?

    @Flag(help: "Raise SIGTRAP at the first mismatch, while the device is inside the diverging access.")
    var breakOnDivergence = false

    @Option(help: "Threads to replay on (default: every core, up to 8): checkpoint segments side by side; with --fault, a second thread decompresses and decodes ahead. 1 keeps it all on this thread.")
    var threads: Int?

    @OptionGroup var output: OutputOptions

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be 1 or more") }
        // SIGTRAP ends an undebugged process with 133: not 0, 1 or 125, which `git bisect run` reads.
        if check && (breakAt != nil || breakOnDivergence) {
            throw ValidationError("--check (for scripts: exit 0, 1 or 125) and --break-at/--break-on-divergence (stops under a debugger) exclude each other")
        }
    }

    struct Report: Encodable {
        var path: String
        var matched: Bool
        var events: UInt64
        var chunks: Int
        var complete: Bool
        var faults: [String]
        var divergences: [DivergenceRecord]
        var counters: [NetCounters]
        /// Where the recording ends inside an access (not a divergence), if it does.
        var cut: RecordingCut?
    }

    func run() throws {
        let reader: TraceReader
        do {
            reader = try input.open()
        } catch {
            throw ExitCode(check ? 125 : VTrace.usageExitCode)
        }
        let faults = try faultOptions.faults(for: reader.header)
        let faultNote = ReplayFaultOptions.note(reader.header, replaying: faults)
        if let target = breakAt, !reader.events.contains(target) {
            printError("vtrace: --break-at \(target): \(input.trace): \(TraceError.noSuchEvent(target, events: reader.events))")
            throw ExitCode(VTrace.usageExitCode)
        }
        let replayer = TraceReplayer(reader: reader, faults: faults)
        DebugHooks.replayer = replayer
        if let target = breakAt {
            replayer.stopAt = target
            replayer.onStop = { inside in
                DebugHooks.stop(inside ? "at event \(target), inside the device code that produces it" : "at event \(target), before the access it begins")
                return true
            }
        }
        if breakOnDivergence {
            replayer.onDivergence = { d in DebugHooks.stop("at the first divergence: \(d)") }
        }
        let outcome: ReplayOutcome
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let debugging = breakAt != nil || breakOnDivergence
        do {
            let progress = Progress("replay", total: reader.chunks.count, enabled: !output.json && !check)
            defer { progress.finish() }
            // A debugger's stops stay on one thread.
            // Each thread holds a segment's chunks: the default stops at 8.
            outcome = try replayer.replayAll(keepGoing: keepGoing, threads: debugging ? 1 : threads ?? min(cores, 8)) { progress.update($0) }
        } catch {
            printError("vtrace: \(input.trace): \(error)")
            throw ExitCode(check ? 125 : VTrace.usageExitCode)
        }
        let start = reader.chunks.first?.firstTime ?? 0
        let divergences = outcome.divergences
        let counters = outcome.counters
        let matched = divergences.isEmpty
        let report = Report(path: input.trace, matched: matched, events: reader.eventCount, chunks: reader.chunks.count,
                            complete: reader.completeness == .complete, faults: faults.specs, divergences: divergences,
                            counters: counters, cut: outcome.cut)
        if check && output.json {
            print(try JSONText.encode(report))
            throw ExitCode(matched ? 0 : 1)
        }
        if !matched, let faultNote { printError("vtrace: \(faultNote)") }
        if check {
            print(matched ? "match: \(reader.events.count) events\(outcome.cut.map { "; " + $0.description } ?? "")" : "diverged at event \(divergences[0].event): expected \(divergences[0].expected); replay \(divergences[0].actual)")
            throw ExitCode(matched ? 0 : 1)
        }
        if output.json {
            print(try JSONText.encode(report))
        } else {
            if let c = outcome.firstContext {
                printDivergence(c, start: start)
            } else if let d = divergences.first {
                print("DIVERGED at chunk \(d.chunk) (event \(d.event)): \(d.actual)")
            }
            if keepGoing && divergences.count > 1 {
                print("\ndiverging chunks (first diverging event):")
                for d in divergences { print("  chunk \(d.chunk): event \(d.event) — expected \(d.expected); replay \(d.actual)") }
            }
            if matched {
                print("\(input.trace): replay matches — \(reader.events.count) events, \(reader.chunks.count) chunks\(faults.isEmpty ? "" : ", faults \(faults)")\(reader.completeness == .complete ? "" : "; " + reader.completeness.text)")
                if let cut = outcome.cut { print("note: \(cut.description); replay stopped there") }
                print(CounterTable.render(perNIC: counters))
            }
        }
        if !matched { throw ExitCode(1) }
    }

    func printDivergence(_ c: TraceReplayer.DivergenceContext, start: UInt64) {
        let d = c.divergence
        let t = c.time &- start
        print("DIVERGED at event \(d.event) (chunk \(d.chunk), nic\(d.nic), t=\(String(format: "%.6f", Double(t) / 1e9)) s)")
        if let cause = c.cause { print("  caused by  #\(cause.number) \(cause.text)") }
        if let chain = c.chain { print("  chain      \(chain)") }
        print("  expected   \(d.expected)")
        print("  replay     \(d.actual)")
        if !c.previous.isEmpty {
            print("  events before it:")
            for p in c.previous { print("    #\(p.number) \(p.text)") }
        }
        for note in c.memoryNotes { print("  memory     \(note)") }
        print("  counters of nic\(d.nic), recorded vs replayed (* differs):")
        let rec = d.nic < c.recorded.count ? c.recorded[d.nic] : NetCounters()
        let rep = d.nic < c.replayed.count ? c.replayed[d.nic] : NetCounters()
        let width = NetCounter.allCases.map(\.name.count).max()!
        for counter in NetCounter.allCases where rec[counter] != 0 || rep[counter] != 0 {
            let mark = rec[counter] == rep[counter] ? "" : "  *"
            print("    \(counter.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(String(rec[counter]).leftPad(10))  \(String(rep[counter]).leftPad(10))\(mark)")
        }
    }
}

/// What a debugger sees when replay stops on purpose.
enum DebugHooks {
    nonisolated(unsafe) static var replayer: TraceReplayer?

    /// Prints why we stop, then raises SIGTRAP (a debugger stops here; without
    /// one the process ends with "Trace/breakpoint trap").
    static func stop(_ why: String) {
        printError("vtrace: stopping \(why)")
        printError("vtrace: in gdb, `call (void)vtrace_debug_print()` prints the device state and counters")
        // A parent may have left SIGTRAP ignored (dispositions survive exec): restore the default.
        signal(SIGTRAP, SIG_DFL)
        raise(SIGTRAP)
    }
}

/// Prints every replayed device's state and counters to standard error. For
/// debuggers: `call (void)vtrace_debug_print()` in gdb.
@_cdecl("vtrace_debug_print")
public func vtraceDebugPrint() {
    guard let replayer = DebugHooks.replayer else {
        printError("vtrace_debug_print: no replay running")
        return
    }
    let stop = replayer.stopState()
    var lines = DebugDisplay.whereLines(stop, eventCount: replayer.reader.eventCount)
    lines[0] = "vtrace: replay " + lines[0]
    lines += DebugDisplay.queueLines(stop.states, addresses: true)
    lines.append(DebugDisplay.counterTable(stop.states))
    let text = lines.joined(separator: "\n")
    printError(text)
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
