import ArgumentParser
import Foundation
import Scenarios
import TraceFormat

/// `vtrace scenario from-trace FILE -o OUT.scenario`
struct ScenarioFromTraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "from-trace",
        abstract: "Write the scenario that drives the device core exactly as a trace's recording did.",
        discussion: """
            Each recorded access (an MMIO access, a vhost-user operation, a memory binding) \
            becomes a scenario line, after `mem write` lines for the guest memory the device \
            read during it (the bytes the scenario's memory does not hold yet) and before \
            `expect counters` with the values it left. A comment names each access and what it \
            did. Any transport: a scenario run, a KVM guest, a Linux boot over vhost-user. \
            Recording the scenario gives the same counter timelines (`vtrace diff` exits 0).

            --from starts at the checkpoint at or before that event: the scenario begins with \
            `state` lines holding the devices as the checkpoint has them. --to ends with the \
            access holding that event. --nic keeps one NIC's accesses.

            Examples:
              vtrace scenario from-trace failing.vtrace -o repro.scenario
              vtrace scenario from-trace boot.vtrace --from 85000 --to 87000 -o around-the-split.scenario
              vtrace record --scenario repro.scenario -o again.vtrace && vtrace diff failing.vtrace again.vtrace
            """
    )

    @OptionGroup var input: TraceInput

    @Option(name: .shortAndLong, help: "The scenario to write (- for standard output).")
    var output: String

    @Option(parsing: .unconditional, help: "The first event (the scenario starts at the checkpoint at or before it).")
    var from: UInt64?

    @Option(parsing: .unconditional, help: "The last event (the scenario ends with the access that holds it).")
    var to: UInt64?

    @Option(help: "Only this NIC's accesses.")
    var nic: Int?

    func validate() throws {
        if let from, let to, to < from { throw ValidationError("--to \(to) is before --from \(from)") }
    }

    func run() throws {
        let sink = try OutputFile(output, inputs: [input.trace])
        let reader = try input.open()
        if let nic, nic < 0 || nic >= reader.header.nics {
            printError("vtrace: --nic \(nic): the trace has \(reader.header.nics) NIC(s)")
            throw ExitCode(VTrace.usageExitCode)
        }
        if let from, from >= reader.eventCount {
            printError("vtrace: --from \(from): \(input.trace) has \(reader.eventCount) events")
            throw ExitCode(VTrace.usageExitCode)
        }
        if reader.completeness != .complete {
            printError("vtrace: note: \(input.trace): \(reader.completeness.text); the scenario covers the \(reader.eventCount) events before it")
        }
        let name = URL(fileURLWithPath: input.trace).lastPathComponent
        let result: ScenarioFromTrace.Result
        do throws(TraceError) {
            result = try ScenarioFromTrace.make(reader, name: name, options: .init(from: from, to: to, nic: nic))
        } catch {
            printError("vtrace: \(input.trace): \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
        try sink.write(result.text)
        try sink.commit()
        printError("vtrace: wrote \(output == "-" ? "the scenario" : output): events \(result.firstEvent)…\(max(result.firstEvent, result.endEvent) - (result.endEvent > result.firstEvent ? 1 : 0)), \(result.accesses) accesses, \(result.lines) lines")
    }
}
