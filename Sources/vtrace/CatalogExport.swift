import ArgumentParser
import Foundation
import TraceCatalog

/// `vtrace catalog export DB --format jsonl|csv -o DIR`
struct CatalogExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a catalogue's tables as CSV or JSON Lines files, for DuckDB, Spark or Trino.",
        discussion: """
            Writes DIR/traces.FORMAT, DIR/counters.FORMAT and DIR/timeline.FORMAT: the same \
            rows and columns as the SQLite tables (NULL is an empty CSV field or JSON null), \
            read in one transaction so the files agree while another `catalog add` runs. \
            Each file is written beside its place and renamed into it. docs/fleet.md shows \
            them queried with DuckDB and with Spark SQL.

            Examples:
              vtrace catalog export fleet.db --format jsonl -o fleet/
              duckdb -c "SELECT recorder_commit, count(*) FROM read_json_auto('fleet/traces.jsonl') GROUP BY 1"
              vtrace catalog export fleet.db --format csv -o /shared/fleet/$(date +%F)/
            """
    )

    @Argument(help: "The catalogue.")
    var database: String

    @Option(help: "jsonl or csv.")
    var format: RowFormat = .jsonl

    @Option(name: [.short, .customLong("output")], help: "The directory to write (created when missing).")
    var output: String

    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        if format == .table { throw ValidationError("--format table is for `catalog query`; export writes jsonl or csv") }
    }

    struct Report: Encodable {
        var file: String
        var rows: Int
    }

    func run() throws {
        let written: [(file: String, rows: Int)]
        do {
            written = try Catalog.openForReading(database).export(to: output, format: format)
        } catch let error as CatalogError {
            throw error.exit()
        }
        if outputOptions.json {
            print(try JSONText.encode(written.map { Report(file: $0.file, rows: $0.rows) }))
        } else {
            for w in written { print("\(terminalSafe(w.file)): \(w.rows) row\(w.rows == 1 ? "" : "s")") }
        }
    }
}
