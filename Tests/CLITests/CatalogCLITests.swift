import Foundation
import Testing

/// `vtrace catalog`: add, query and export through the built binary; DuckDB
/// reading the export and the SQLite file gets `catalog query`'s answers.
@Suite("vtrace catalog")
struct CatalogCLITests {
    static func golden(_ name: String) -> String { repositoryRoot.appendingPathComponent("traces/golden/\(name).vtrace").path }

    /// A fresh directory holding copies of `traces` (golden names) in traces/.
    static func scratch(_ name: String, traces: [String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vtrace-catalog-cli-\(getpid())/\(name)").path
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir + "/traces", withIntermediateDirectories: true)
        for t in traces { try FileManager.default.copyItem(atPath: golden(t), toPath: dir + "/traces/\(t).vtrace") }
        return dir
    }

    static func jsonLines(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    static let fleetTraces = ["rx-poison", "ctrl-ok", "nics-aggregate", "kvm-mq", "format-vectors-1.3", "long-drain"]

    @Test func addQueryAndTheirFormats() throws {
        let dir = try Self.scratch("add", traces: Self.fleetTraces)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.golden("kvm-burst"))))
        bytes[bytes.count / 2] ^= 0x5a
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/traces/flipped.vtrace"))
        try Data("not a trace\n".utf8).write(to: URL(fileURLWithPath: dir + "/traces/README.md"))   // passed over: not a trace's name
        let db = dir + "/fleet.db"
        let r = try CLI.run("catalog", "add", db, dir + "/traces", "--replay")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("\(db): 7 traces: 7 added, 0 already there, 1 not whole (their rows say so) in "), "\(r.stdout)")
        #expect(r.stderr == "vtrace: \(dir)/traces/flipped.vtrace: catalogued as corrupt: corrupt trace at byte 365 (chunk 0): chunk checksum mismatch (the bytes changed after recording)\n")

        let csv = try CLI.run("catalog", "query", db, "SELECT status, count(*) AS n, sum(check_ok) AS checked_ok FROM traces GROUP BY 1 ORDER BY 1", "--format", "csv")
        #expect(csv.status == 0 && csv.stdout == "status,n,checked_ok\ncomplete,6,5\ncorrupt,1,\n", "\(csv.stdout)\(csv.stderr)")
        let table = try CLI.run("catalog", "query", db, "SELECT replay_status, count(*) AS n FROM traces GROUP BY 1 ORDER BY 1")
        #expect(table.stdout == "replay_status  n\n-------------  -\ndiverged       1\nerror          1\nmatch          5\n(3 rows)\n", "\(table.stdout)")
        let diverged = try Self.jsonLines(try CLI.run("catalog", "query", db, "SELECT replay_event, replay_counter, check_rule FROM traces WHERE replay_status = 'diverged'", "--format", "jsonl").stdout)
        #expect(diverged.count == 1 && diverged[0]["replay_event"] as? Int == 5001 && diverged[0]["replay_counter"] as? String == "tx_packets")
        #expect(diverged[0]["check_rule"] as? String == "identity 3")

        // The counters table against `vtrace dump`: rx-poison's poison and its counter moves.
        let poison = try CLI.run("catalog", "query", db, "SELECT first_poison_event FROM traces WHERE path LIKE '%rx-poison%'", "--format", "csv")
        #expect(poison.stdout == "first_poison_event\n49\n")
        let moves = try CLI.run("catalog", "query", db,
                                "SELECT moves, first_move_event, last_move_event FROM counters JOIN traces ON traces.id = trace_id WHERE path LIKE '%rx-poison%' AND counter = 'tx_packets'", "--format", "csv")
        let dumped = try dumpLines(Self.golden("rx-poison"), kind: "counter").filter { $0["counter"] as? String == "tx_packets" }.map { $0["n"] as! Int }
        #expect(moves.stdout == "moves,first_move_event,last_move_event\n\(dumped.count),\(dumped.first!),\(dumped.last!)\n")

        // Again: nothing added, nothing read.
        let again = try CLI.run("catalog", "add", db, dir + "/traces", "--json")
        let report = try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as! [String: Any]
        #expect(again.status == 0 && report["added"] as? Int == 0 && report["unchanged"] as? Int == 7 && report["files"] as? Int == 7)
    }

    @Test func badInputExitsTwoAndLosesNothing() throws {
        let dir = try Self.scratch("bad", traces: ["rx-poison"])
        let notSQLite = dir + "/notes.txt"
        try Data("my notes\n".utf8).write(to: URL(fileURLWithPath: notSQLite))
        var r = try CLI.run("catalog", "add", notSQLite, dir + "/traces")
        #expect(r.status == 2 && r.stderr == "vtrace: \(notSQLite): not a vtrace catalogue: not a SQLite database (SQLite: file is not a database)\n")
        #expect(try String(contentsOfFile: notSQLite, encoding: .utf8) == "my notes\n")
        #expect(try CLI.run("catalog", "query", notSQLite, "SELECT 1").status == 2)

        let db = dir + "/fleet.db"
        #expect(try CLI.run("catalog", "add", db, dir + "/traces").status == 0)
        r = try CLI.run("catalog", "query", db, "SELEC path FROM traces")
        #expect(r.status == 2 && r.stderr == "vtrace: SQL: near \"SELEC\": syntax error\n" && r.stdout.isEmpty)
        r = try CLI.run("catalog", "query", db, "DROP TABLE traces")
        #expect(r.status == 2 && r.stderr == "vtrace: SQL: attempt to write a readonly database\n")
        r = try CLI.run("catalog", "add", db, dir + "/no-such-dir")
        #expect(r.status == 2 && r.stderr == "vtrace: \(dir)/no-such-dir: no such file or directory\n")
        #expect(try CLI.run("catalog", "query", db, "SELECT count(*) FROM traces", "--format", "csv").stdout == "count(*)\n1\n")
        try Data("x".utf8).write(to: URL(fileURLWithPath: dir + "/a-file"))
        r = try CLI.run("catalog", "export", db, "--format", "csv", "-o", dir + "/a-file")
        #expect(r.status == 2 && r.stderr == "vtrace: \(dir)/a-file: is a file; -o names a directory\n")
        #expect(try String(contentsOfFile: dir + "/a-file", encoding: .utf8) == "x")

        // A newer vtrace's catalogue: refused, naming the version.
        #expect(try runCombined("/usr/bin/env", ["python3", "-c", "import sqlite3; c = sqlite3.connect('\(db)'); c.execute('PRAGMA user_version = 9'); c.commit()"]).status == 0)
        r = try CLI.run("catalog", "add", db, dir + "/traces")
        #expect(r.status == 2 && r.stderr == "vtrace: \(db): catalogue schema version 9 is newer than this vtrace's (1); a newer vtrace wrote it: use that one\n")
        #expect(try CLI.run("catalog", "query", db, "SELECT 1").status == 2)
        r = try CLI.run("catalog", "query", dir + "/none.db", "SELECT 1")
        #expect(r.status == 2 && r.stderr.contains("no such catalogue"))
        #expect(try CLI.run("catalog", "export", db, "--format", "table", "-o", dir + "/x").status == 2)
    }

    /// Thousands of files, most of them cut or damaged copies of one trace:
    /// every one becomes a row, and the add never stops.
    @Test func aDirectoryOfDamagedTracesBecomesRows() throws {
        let dir = try Self.scratch("damaged", traces: ["rx-poison"])
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.golden("long-drain"))))
        for cut in 0..<1500 {   // distinct contents: long-drain cut at 1500 lengths
            try Data(bytes.prefix(bytes.count - 1 - cut * 17)).write(to: URL(fileURLWithPath: dir + "/traces/cut-\(cut).vtrace"))
        }
        for flip in 0..<500 {
            var b = bytes
            b[200 + flip * 51] ^= 0x01
            try Data(b).write(to: URL(fileURLWithPath: dir + "/traces/flip-\(flip).vtrace"))
        }
        let db = dir + "/fleet.db"
        let r = try CLI.run("catalog", "add", db, dir + "/traces", "--json")
        #expect(r.status == 0, "\(r.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(report["files"] as? Int == 2001 && report["added"] as? Int == 2001)
        let statuses = try CLI.run("catalog", "query", db, "SELECT status, count(*) FROM traces GROUP BY 1 ORDER BY 1", "--format", "csv").stdout
        let counts = Dictionary(uniqueKeysWithValues: statuses.split(separator: "\n").dropFirst().map { line -> (String, Int) in
            let f = line.split(separator: ",")
            return (String(f[0]), Int(f[1])!)
        })
        #expect(counts.values.reduce(0, +) == 2001 && counts["complete"] == 1)
        #expect((report["problems"] as! [[String: Any]]).count == 2000)
        // Every row that is not whole says why.
        #expect(try CLI.run("catalog", "query", db, "SELECT count(*) FROM traces WHERE status != 'complete' AND (error IS NULL OR error = '')", "--format", "csv").stdout == "count(*)\n0\n")
    }

    @Test func twoAddsAtOnceTakeTurns() throws {
        let dir = try Self.scratch("concurrent", traces: [])
        let names = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("traces/reference").path).filter { $0.hasSuffix(".vtrace") }
        try FileManager.default.createDirectory(atPath: dir + "/a", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/b", withIntermediateDirectories: true)
        for n in names { try FileManager.default.copyItem(atPath: repositoryRoot.appendingPathComponent("traces/reference/\(n)").path, toPath: dir + "/a/\(n)") }
        for t in Self.fleetTraces { try FileManager.default.copyItem(atPath: Self.golden(t), toPath: dir + "/b/\(t).vtrace") }
        let db = dir + "/fleet.db"
        let processes = try ["a", "b"].map { side -> (Process, Pipe) in
            let p = Process()
            p.executableURL = CLI.productsDirectory.appendingPathComponent("vtrace")
            p.arguments = ["catalog", "add", db, dir + "/" + side, "--json", "--jobs", "1"]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            return (p, out)
        }
        var added = 0
        for (p, out) in processes {
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            added += (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["added"] as? Int ?? -1
        }
        #expect(added == names.count + Self.fleetTraces.count)
        let rows = try CLI.run("catalog", "query", db, "SELECT count(*), count(DISTINCT content_sha256) FROM traces", "--format", "csv")
        #expect(rows.stdout == "count(*),count(DISTINCT content_sha256)\n\(added),\(added)\n", "\(rows.stderr)")
    }

    @Test func progressOnATerminal() throws {
        let dir = try Self.scratch("progress", traces: Self.fleetTraces)
        guard let r = try CLI.runOnATerminal(["catalog", "add", dir + "/fleet.db", dir + "/traces"], environment: ["VTRACE_PROGRESS_AFTER_MS": "0"]) else { return }
        #expect(r.status == 0)
        #expect(r.output.contains("catalog [") && r.output.contains("/6 traces"))
    }

    @Test func helpTeaches() throws {
        for sub in ["add", "query", "export"] {
            let r = try CLI.run("catalog", sub, "--help")
            #expect(r.status == 0 && r.stdout.contains("Examples:") && r.stdout.contains("vtrace catalog \(sub) fleet.db"))
        }
        #expect(try CLI.run("catalog", "--help").stdout.contains("docs/fleet.md"))
    }
}
