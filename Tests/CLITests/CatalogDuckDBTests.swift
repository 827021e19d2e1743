import Foundation
import Testing

/// DuckDB (from PyPI: duckdb and its sqlite_scanner extension, installed by
/// tools/bootstrap.sh --test) reads `catalog export`'s JSON Lines and CSV,
/// and the SQLite file itself, and answers as `catalog query` does.
@Suite("vtrace catalog and DuckDB")
struct CatalogDuckDBTests {
    /// Queries written once, run by both engines (standard SQL both dialects read).
    static let questions = [
        "SELECT recorder_commit, counter, count(*) AS traces, sum(final_value) AS total FROM counters JOIN traces ON traces.id = counters.trace_id GROUP BY 1, 2 ORDER BY 1 NULLS FIRST, 2",
        "SELECT status, count(*) AS n, sum(rx_packets) AS rx, sum(tx_dropped_no_rx_buffer) AS dropped FROM traces GROUP BY 1 ORDER BY 1",
        "SELECT path, replay_event, replay_counter FROM traces WHERE replay_status = 'diverged' ORDER BY path",
        "SELECT t.path, max(l.tx_packets) AS peak FROM timeline l JOIN traces t ON t.id = l.trace_id WHERE l.point >= 16 GROUP BY 1 ORDER BY 1",
    ]

    static let script = """
        import duckdb, json, os, sys
        db, export, questions = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        con = duckdb.connect()
        try:
            import duckdb_extension_sqlite_scanner as ext
            path = os.path.join(os.path.dirname(ext.__file__), 'extensions', 'v' + duckdb.__version__, 'sqlite_scanner.duckdb_extension')
            con.execute(f"LOAD '{path}'")
        except ImportError:
            con.execute("INSTALL sqlite; LOAD sqlite")
        def answers(views):
            for name, source in views.items():
                con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {source}")
            return [[[None if v is None else str(v) for v in row] for row in con.execute(q).fetchall()] for q in questions]
        out = {}
        for form, reader in [('jsonl', 'read_json_auto'), ('csv', 'read_csv_auto')]:
            out[form] = answers({t: f"{reader}('{export}/{t}.{form}')" for t in ['traces', 'counters', 'timeline']})
        out['sqlite'] = answers({t: f"sqlite_scan('{db}', '{t}')" for t in ['traces', 'counters', 'timeline']})
        print(json.dumps(out))
        """

    @Test func duckDBReadsTheExportAndTheFileAndAgrees() throws {
        guard try runCombined("/usr/bin/env", ["python3", "-c", "import duckdb"]).status == 0 else {
            print("SKIPPED: python3 has no duckdb (tools/bootstrap.sh --test installs it from PyPI); the export was checked by vtrace alone")
            return
        }
        let dir = try CatalogCLITests.scratch("duckdb", traces: CatalogCLITests.fleetTraces)
        let db = dir + "/fleet.db"
        #expect(try CLI.run("catalog", "add", db, dir + "/traces", "--replay").status == 0)
        for form in ["jsonl", "csv"] {
            let r = try CLI.run("catalog", "export", db, "--format", form, "-o", dir + "/export")
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout == "\(dir)/export/traces.\(form): 6 rows\n\(dir)/export/counters.\(form): \(try count(db, "counters")) rows\n\(dir)/export/timeline.\(form): 192 rows\n")
        }
        // vtrace's answers, as text (NULL as nil), in the same shape.
        let ours: [[[String?]]] = try Self.questions.map { q in
            let r = try CLI.run("catalog", "query", db, q, "--format", "jsonl")
            #expect(r.status == 0, "\(r.stderr)")
            let columns = try #require(Self.columnOrder(q))
            return try CatalogCLITests.jsonLines(r.stdout).map { row in columns.map { c in row[c].flatMap { $0 is NSNull ? nil : "\($0)" } } }
        }
        #expect(ours[0].count > 10 && ours[2].count == 1)
        let questionsJSON = String(decoding: try JSONSerialization.data(withJSONObject: Self.questions), as: UTF8.self)
        let script = dir + "/duck.py"
        try Data(Self.script.utf8).write(to: URL(fileURLWithPath: script))
        let duck = try runCombined("/usr/bin/env", ["python3", script, db, dir + "/export", questionsJSON])
        #expect(duck.status == 0, "\(duck.output)")
        let parsed = try #require(try? JSONSerialization.jsonObject(with: Data(duck.output.utf8)) as? [String: [[[Any]]]], "\(duck.output)")
        let answers = parsed.mapValues { $0.map { $0.map { $0.map { $0 as? String } } } }
        for form in ["jsonl", "csv", "sqlite"] {
            #expect(answers[form] == ours, "DuckDB over \(form)")
        }
    }

    func count(_ db: String, _ table: String) throws -> Int {
        Int(try CLI.run("catalog", "query", db, "SELECT count(*) FROM \(table)", "--format", "csv").stdout.split(separator: "\n")[1])!
    }

    /// The result columns of a question (what follows SELECT, before FROM, by alias or name).
    static func columnOrder(_ q: String) -> [String]? {
        guard let select = q.range(of: "SELECT "), let from = q.range(of: " FROM ") else { return nil }
        return q[select.upperBound..<from.lowerBound].split(separator: ",").map { item in
            let words = item.trimmingCharacters(in: .whitespaces).split(separator: " ")
            return String(words.count >= 3 && words[words.count - 2] == "AS" ? words.last! : words[0]).replacingOccurrences(of: "t.", with: "")
        }
    }
}
