import Foundation
import Testing
import TraceCatalog
import TraceTestSupport

/// A catalogue's rows: one per content, moves and copies recognised, refusals
/// that name what is wrong, and a second writer that waits or fails cleanly.
@Suite("Catalogue storage")
struct CatalogStoreTests {
    static func golden(_ name: String) -> String { repositoryRoot.appendingPathComponent("traces/golden/\(name).vtrace").path }

    /// A fresh directory with copies of golden traces, and a catalogue path in it.
    static func scratch(_ name: String, traces: [String]) throws -> (dir: String, db: String) {
        let dir = temporaryPath("catalog-\(name)")
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir + "/traces", withIntermediateDirectories: true)
        for t in traces { try FileManager.default.copyItem(atPath: golden(t), toPath: dir + "/traces/\(t).vtrace") }
        return (dir, dir + "/fleet.db")
    }

    static func add(_ paths: [String], to db: String, replay: Bool = false) throws -> IngestReport {
        let catalog = try Catalog.openForWriting(db, waitMilliseconds: 1000)
        return try CatalogIngest.add(try TraceFiles.collect(paths), to: catalog, options: IngestOptions(replay: replay, workers: 2, replayedBy: "t"))
    }

    static func count(_ db: String, _ sql: String) throws -> Int64 {
        try Catalog.openForReading(db).query(sql).rows.first?.first?.integerValue ?? -1
    }

    @Test func addingAgainMovingCopyingAndRewriting() throws {
        let (dir, db) = try Self.scratch("identity", traces: ["rx-poison", "ctrl-ok", "nics-aggregate"])
        var r = try Self.add([dir + "/traces"], to: db)
        #expect((r.files, r.added, r.skipped, r.problems.count) == (3, 3, 0, 0))
        #expect(try Self.count(db, "SELECT count(*) FROM traces") == 3)
        // 32 timeline points per trace; a counters row per counter that moved on a NIC.
        #expect(try Self.count(db, "SELECT count(*) FROM timeline") == 96)
        let moved = TraceSummarizer.summarize(path: Self.golden("rx-poison"), replay: false, replayedBy: "").counterStats.count
        #expect(try Self.count(db, "SELECT count(*) FROM counters WHERE trace_id = (SELECT id FROM traces WHERE path LIKE '%rx-poison%')") == Int64(moved))

        // Again: the same path, size and time are not even read.
        r = try Self.add([dir + "/traces"], to: db)
        #expect((r.added, r.skipped) == (0, 3))

        // Moved: the row keeps its id under the new path.
        let id = try Self.count(db, "SELECT id FROM traces WHERE path LIKE '%/ctrl-ok.vtrace'")
        try FileManager.default.moveItem(atPath: dir + "/traces/ctrl-ok.vtrace", toPath: dir + "/traces/renamed.vtrace")
        r = try Self.add([dir + "/traces"], to: db)
        #expect((r.moved, r.added, r.skipped) == (1, 0, 2))
        #expect(try Self.count(db, "SELECT id FROM traces WHERE path = '\(dir)/traces/renamed.vtrace'") == id)

        // A copy beside the original: no second row.
        try FileManager.default.copyItem(atPath: dir + "/traces/rx-poison.vtrace", toPath: dir + "/traces/z-copy.vtrace")
        r = try Self.add([dir + "/traces"], to: db)
        #expect((r.copies, r.added) == (1, 0))
        #expect(try Self.count(db, "SELECT count(*) FROM traces") == 3)

        // Rewritten in place with other content: the old row goes, with its timeline.
        // (SQLite may give the new row the old id when it was the largest: the
        // content, not the id, says which row went.)
        let oldContent = try #require(try Catalog.openForReading(db).query("SELECT content_sha256 FROM traces WHERE id = \(id)").rows.first?.first?.textValue)
        try FileManager.default.removeItem(atPath: dir + "/traces/z-copy.vtrace")
        try FileManager.default.removeItem(atPath: dir + "/traces/renamed.vtrace")
        try FileManager.default.copyItem(atPath: Self.golden("kvm-mq"), toPath: dir + "/traces/renamed.vtrace")
        r = try Self.add([dir + "/traces"], to: db)
        #expect((r.replaced, r.added) == (1, 0))
        #expect(try Self.count(db, "SELECT count(*) FROM traces") == 3)
        #expect(try Self.count(db, "SELECT count(*) FROM timeline") == 96)
        #expect(try Self.count(db, "SELECT count(*) FROM traces WHERE content_sha256 = '\(oldContent)'") == 0)
        let newContent = TraceSummarizer.summarize(path: Self.golden("kvm-mq"), replay: false, replayedBy: "").contentHash
        #expect(try Self.count(db, "SELECT count(*) FROM traces WHERE path = '\(dir)/traces/renamed.vtrace' AND content_sha256 = '\(newContent ?? "")'") == 1)

        // --replay on catalogued traces fills in their replay columns.
        r = try Self.add([dir + "/traces"], to: db, replay: true)
        #expect((r.refreshed, r.skipped) == (3, 0))
        #expect(try Self.count(db, "SELECT count(*) FROM traces WHERE replay_status = 'match'") == 3)
    }

    @Test func refusesWhatIsNotACatalogue() throws {
        let (dir, _) = try Self.scratch("refusals", traces: [])
        let text = dir + "/notes.db"
        try Data("just some notes\n".utf8).write(to: URL(fileURLWithPath: text))
        #expect(throws: CatalogError.notACatalogue(path: text, "not a SQLite database (SQLite: file is not a database)")) {
            try Catalog.openForWriting(text, waitMilliseconds: 100)
        }
        #expect(try String(contentsOfFile: text, encoding: .utf8) == "just some notes\n")   // untouched

        let newer = dir + "/newer.db"
        _ = try Catalog.openForWriting(newer, waitMilliseconds: 100)
        try SQLiteDatabase(path: newer, readOnly: false, create: false, waitMilliseconds: 100).execute("PRAGMA user_version = 7")
        #expect(throws: CatalogError.newerSchema(path: newer, found: 7, supported: 1)) { try Catalog.openForWriting(newer, waitMilliseconds: 100) }
        #expect(throws: CatalogError.newerSchema(path: newer, found: 7, supported: 1)) { try Catalog.openForReading(newer) }
        #expect(CatalogError.newerSchema(path: "f.db", found: 7, supported: 1).description.contains("schema version 7 is newer than this vtrace's (1)"))

        let foreign = dir + "/foreign.db"
        try SQLiteDatabase(path: foreign, readOnly: false, create: true, waitMilliseconds: 100).execute("CREATE TABLE mine (x)")
        #expect(throws: CatalogError.notACatalogue(path: foreign, "a SQLite database with 1 tables or indexes of its own; vtrace adds to an empty file or a catalogue")) {
            try Catalog.openForWriting(foreign, waitMilliseconds: 100)
        }
        #expect(throws: CatalogError.noSuchCatalogue(path: dir + "/none.db")) { try Catalog.openForReading(dir + "/none.db") }
    }

    @Test func failingSQLGivesTheEnginesMessage() throws {
        let (dir, db) = try Self.scratch("sql", traces: ["rx-poison"])
        _ = try Self.add([dir + "/traces"], to: db)
        let catalog = try Catalog.openForReading(db)
        #expect(throws: CatalogError.query("near \"SELEC\": syntax error")) { try catalog.query("SELEC 1") }
        #expect(throws: CatalogError.query("no such column: nope")) { try catalog.query("SELECT nope FROM traces") }
        #expect(throws: CatalogError.query("attempt to write a readonly database")) { try catalog.query("DELETE FROM traces") }
        #expect(throws: CatalogError.query("one statement at a time: \"SELECT 2\" follows the first")) { try catalog.query("SELECT 1; SELECT 2") }
        #expect(try catalog.query("SELECT 1; -- a comment\n").rows == [[.integer(1)]])
        #expect(try Self.count(db, "SELECT count(*) FROM traces") == 1)
    }

    @Test func aSecondWriterWaitsThenFailsCleanly() throws {
        let (dir, db) = try Self.scratch("locking", traces: ["rx-poison", "ctrl-ok"])
        let holder = try SQLiteDatabase(path: db, readOnly: false, create: true, waitMilliseconds: 100)
        _ = try Catalog.openForWriting(db, waitMilliseconds: 100)   // the tables
        try holder.execute("BEGIN IMMEDIATE")
        let started = Date()
        #expect(throws: CatalogError.locked(path: db, waitedMilliseconds: 300)) {
            let second = try Catalog.openForWriting(db, waitMilliseconds: 300)
            _ = try CatalogIngest.add([dir + "/traces/rx-poison.vtrace"], to: second, options: IngestOptions(replay: false, workers: 1, replayedBy: ""))
        }
        #expect(Date().timeIntervalSince(started) >= 0.3)   // it waited for the lock first
        try holder.execute("COMMIT")
        #expect(try Self.count(db, "SELECT count(*) FROM traces") == 0)   // nothing half-written
        let r = try Self.add([dir + "/traces"], to: db)
        #expect(r.added == 2)
    }
}
