import ArgumentParser
import Foundation
import TraceCatalog

/// `vtrace catalog query DB SQL`
struct CatalogQuery: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Run one SQL statement on a catalogue (read-only) and print its rows.",
        discussion: """
            The catalogue is opened read-only: a statement that would change it fails. SQL \
            that SQLite refuses prints SQLite's message, exit 2. Tables: traces, counters, \
            timeline (docs/fleet.md: every column and its unit, and ten questions answered).

            Examples:
              vtrace catalog query fleet.db 'SELECT path, rx_write_failed FROM traces WHERE rx_write_failed > 0'
              vtrace catalog query fleet.db 'SELECT recorder_commit, counter, sum(final_value) FROM counters JOIN traces ON traces.id = trace_id GROUP BY 1, 2' --format csv
              vtrace catalog query fleet.db 'SELECT * FROM timeline WHERE trace_id = 7' --format jsonl
            """
    )

    @Argument(help: "The catalogue.")
    var database: String

    @Argument(help: "One SQL statement (SQLite's dialect).")
    var sql: String

    @Option(help: "table (aligned, for people), csv (with a header line) or jsonl (an object per row).")
    var format: RowFormat = .table

    func run() throws {
        var out = ""
        func flush(force: Bool = false) {
            if force || out.utf8.count > 1 << 16 {
                print(out, terminator: "")
                out = ""
            }
        }
        do {
            let catalog = try Catalog.openForReading(database)
            if format == .table {
                out = RowFormat.table(try catalog.query(sql)) { terminalSafe($0) }
            } else {
                var columns: [String] = []
                try catalog.query(sql, header: {
                    columns = $0
                    out += format.header($0) ?? ""
                }, row: {
                    out += format.line($0, columns: columns)
                    flush()
                })
            }
        } catch let error as CatalogError {
            flush(force: true)
            throw error.exit()
        }
        flush(force: true)
    }
}

extension RowFormat: ExpressibleByArgument {}
