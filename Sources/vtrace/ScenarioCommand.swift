import ArgumentParser

/// `vtrace scenario`: scripted guest drivers.
struct ScenarioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scenario",
        abstract: "Run scripted guest drivers against the device core.",
        discussion: """
            A scenario file drives the device like a guest driver, one operation per line, \
            with expectations on counters, used rings, status and memory. The language is \
            documented in docs/scenarios.md; a library of scenarios lives in traces/scenarios/.
            """,
        subcommands: [ScenarioRun.self, ScenarioList.self, ScenarioFromTraceCommand.self]
    )
}
