import ArgumentParser
import Foundation
import TraceFormat
import TraceAnalysis

/// `vtrace check FILE`
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate, at every event, the counter identities the device guarantees.",
        discussion: """
            Checks the recording event by event and access by access: counters never \
            decrease; bytes counters move only right after their packets counters; a queue \
            is poisoned (and counted) once until a reset; per MMIO access, the TX chains \
            popped, captured, rejected and published and the RX outcomes add up (the \
            identities in docs/device.md); and when no drop or failure counter has moved, \
            rx_packets equals tx_packets. Exit 0, or 1 with the first violation.

            Examples:
              vtrace check run.vtrace
              vtrace check run.vtrace --json
            """
    )

    @OptionGroup var input: TraceInput
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var path: String
        var ok: Bool
        var events: UInt64
        var accesses: Int
        var violation: String?
        var event: UInt64?
        var rule: String?
    }

    func run() throws {
        let reader = try input.open()
        let checker: InvariantChecker?, failure: InvariantViolation?
        let progress = Progress("check", total: reader.chunks.count, enabled: !output.json)
        do throws(TraceError) {
            defer { progress.finish() }
            (checker, failure) = try InvariantChecker.check(reader) { progress.update($0) }
        } catch {
            printError("vtrace: \(input.trace): \(error)")
            throw ExitCode(VTrace.usageExitCode)
        }
        let report = Report(path: input.trace, ok: failure == nil, events: checker?.eventsChecked ?? 0,
                            accesses: checker?.accessesChecked ?? 0, violation: failure?.description, event: failure?.event, rule: failure?.rule)
        if output.json {
            print(try JSONText.encode(report))
        } else if let failure {
            print("\(input.trace): VIOLATION at \(failure)")
        } else {
            print("\(input.trace): OK — \(report.events) events, \(report.accesses) accesses (MMIO or vhost-user), every identity held")
        }
        if failure != nil { throw ExitCode(1) }
    }
}
