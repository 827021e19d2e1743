import ArgumentParser
import Foundation
import TraceFormat
import TraceAnalysis

/// `vtrace debug FILE`: an interactive replay that stops anywhere and runs backwards.
struct Debug: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debug",
        abstract: "Replay a trace interactively: stop at any event, watch counters, run backwards.",
        discussion: """
            Reads commands from standard input: on a terminal with line editing, history \
            (VTRACE_HISTORY=FILE keeps it) and Tab completion; from a pipe a line at a time. \
            The replay stops before an event: `at event N` means events 0…N-1 are replayed \
            and the device is about to produce event N, in the middle of its drain if need \
            be. Going backwards restores the nearest checkpoint and replays forward (at most \
            one chunk).

            Commands (`help COMMAND` explains one):
            \(DebugCommand.list)

            Examples:
              vtrace debug run.vtrace
              printf 'break 85298\\ncontinue\\nwhere\\nquit\\n' | vtrace debug boot.vtrace
              printf 'watch rx_write_failed\\nc\\nwhy rx_write_failed\\nrc\\nq\\n' | vtrace debug run.vtrace
            """
    )

    @OptionGroup var input: TraceInput

    @OptionGroup var faultOptions: ReplayFaultOptions

    func run() throws {
        let reader = try input.open()
        let faults = try faultOptions.faults(for: reader.header)
        guard reader.eventCount > 0 else {
            print("vtrace debug: \(input.trace) has no events: nothing to step through")
            return
        }
        let editor = LineEditor(commands: DebugCommand.names)
        let session = DebugSession(reader: reader, replayer: TraceReplayer(reader: reader, faults: faults),
                                   faultNote: ReplayFaultOptions.note(reader.header, replaying: faults)) {
            editor.readLine(prompt: "(vtrace) ")
        }
        print("vtrace debug: \(reader.events.count) events in \(reader.chunks.count) chunks; `help` lists commands")
        do {
            try session.run()
        } catch {
            printError("vtrace: \(input.trace): \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
    }
}
