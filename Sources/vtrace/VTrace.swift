import ArgumentParser
import Foundation

/// The vtrace command: configuration only; each subcommand lives in its own file.
@main
struct VTrace: ParsableCommand {
    static let version = "0.2.0"

    static let configuration = CommandConfiguration(
        commandName: "vtrace",
        abstract: "Record, replay and compare traces of a virtio-net device.",
        discussion: """
            vtrace drives a loopback virtio-net NIC on virtio-mmio (the ktstr VMM's device, \
            with its 16 counters) and explains what its counters did.

            Exit codes: 0 ok, 1 a check failed, 2 bad usage or a malformed input.
            """,
        version: version,
        subcommands: [Demo.self, ScenarioCommand.self, Record.self, Info.self, Dump.self, Verify.self, Replay.self, Bisect.self, Check.self, Debug.self, Diff.self, Timeline.self, Why.self, Export.self, Plot.self, Reduce.self, RunGuest.self, Serve.self, CatalogCommand.self]
    )

    /// The subcommands' names (a type without a `commandName` is named after itself, lowercased).
    static var commandNames: [String] {
        configuration.subcommands.map { $0.configuration.commandName ?? String(describing: $0).lowercased() }
    }

    /// Exit status for bad usage or malformed input (ArgumentParser's own is 64).
    static let usageExitCode: Int32 = 2

    /// Runs the command, mapping ArgumentParser's usage failures (64) to 2, the
    /// code vtrace documents for bad usage.
    static func main() {
        do {
            // `vtrace help NAME` with a NAME that is no command: ArgumentParser
            // prints the top-level help and exits 0; say so and exit 2.
            let arguments = Array(CommandLine.arguments.dropFirst())
            if arguments.first == "help", arguments.count > 1, !commandNames.contains(arguments[1]) {
                printError("vtrace help: no command '\(arguments[1])'; commands are \(commandNames.joined(separator: ", "))")
                Foundation.exit(usageExitCode)
            }
            var command = try parseAsRoot()
            try command.run()
            checkStandardOutput()
        } catch {
            checkStandardOutput()
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(usageExitCode)
            }
            exit(withError: error)
        }
    }
}
