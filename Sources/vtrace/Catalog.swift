import ArgumentParser
import TraceCatalog

/// `vtrace catalog add|query|export`: many traces as rows of a SQLite file.
struct CatalogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Catalogue many traces in a SQLite file and ask fleet questions in SQL.",
        discussion: """
            A catalogue is one SQLite file (docs/fleet.md has its schema): a row per trace in \
            `traces` (provenance, completeness, sizes, faults, final counters, the first \
            poison, `vtrace check`'s verdict and, with --replay, the replay's), the counters \
            that moved per trace and NIC in `counters` (first and last event, how often), and \
            each trace's aggregate counters at \(CatalogSchema.timelinePoints) evenly spaced events in \
            `timeline`. Query it with `catalog query`, the sqlite3 shell or DuckDB; export \
            it as CSV or JSON Lines for Spark or Trino.

            Examples:
              vtrace catalog add fleet.db ci-traces/                 # every .vtrace below, on all cores
              vtrace catalog add fleet.db ci-traces/ --replay        # and replay each against this build
              vtrace catalog query fleet.db 'SELECT recorder_commit, count(*) FROM traces WHERE rx_write_failed > 0 GROUP BY 1'
              vtrace catalog export fleet.db --format jsonl -o fleet-export/
            """,
        subcommands: [CatalogAdd.self, CatalogQuery.self, CatalogExport.self]
    )
}

extension CatalogError {
    /// Prints the error (`vtrace: …`) and exits 2.
    func exit() -> ExitCode {
        printError("vtrace: \(description)")
        return ExitCode(VTrace.usageExitCode)
    }
}
