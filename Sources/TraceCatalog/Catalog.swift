//! A catalogue file: a SQLite database with the schema of `CatalogSchema`,
//! opened for adding (created when new) or for reading.

import Foundation

/// An open catalogue.
public final class Catalog {
    public let database: SQLiteDatabase
    public var path: String { database.path }
    /// Statements reused for every row stored (Catalog+Store.swift).
    lazy var statements = CatalogStatements(database)

    /// Opens `path` for adding traces, creating the file and its tables when
    /// new; a write waits up to `waitMilliseconds` for another writer's lock.
    /// - Throws: `CatalogError`: not SQLite, not a catalogue, a newer schema.
    public static func openForWriting(_ path: String, waitMilliseconds: Int32) throws -> Catalog {
        let catalog = Catalog(try SQLiteDatabase(path: path, readOnly: false, create: true, waitMilliseconds: waitMilliseconds))
        try catalog.checkSchema(creating: true)
        try catalog.database.execute("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL")
        return catalog
    }

    /// Opens `path` for queries and exports; it must exist and be a catalogue.
    public static func openForReading(_ path: String) throws -> Catalog {
        guard FileManager.default.fileExists(atPath: path) else { throw CatalogError.noSuchCatalogue(path: path) }
        let catalog = Catalog(try SQLiteDatabase(path: path, readOnly: true, create: false, waitMilliseconds: 5_000))
        try catalog.checkSchema(creating: false)
        return catalog
    }

    init(_ database: SQLiteDatabase) { self.database = database }

    /// Refuses what is not a catalogue of a version we read; creates the
    /// tables in an empty database when `creating`.
    func checkSchema(creating: Bool) throws {
        // The first read of a file that is not SQLite fails here (SQLITE_NOTADB).
        let application = Int32(truncatingIfNeeded: try database.scalar("PRAGMA application_id")?.integerValue ?? 0)
        let version = Int32(truncatingIfNeeded: try database.scalar("PRAGMA user_version")?.integerValue ?? 0)
        if application == CatalogSchema.applicationID {
            if version > CatalogSchema.version {
                throw CatalogError.newerSchema(path: path, found: version, supported: CatalogSchema.version)
            }
            return
        }
        if application != 0 {
            throw CatalogError.notACatalogue(path: path, "a SQLite database of another program (application_id \(application))")
        }
        guard creating else {
            throw CatalogError.notACatalogue(path: path, "a SQLite database without vtrace's tables")
        }
        try database.transaction {
            // Two `catalog add` may create the same new file at once: the second
            // gets the lock after the first committed and finds the tables.
            let tables = try database.scalar("SELECT count(*) FROM sqlite_master")?.integerValue ?? 0
            let ours = try database.scalar("PRAGMA application_id")?.integerValue == Int64(CatalogSchema.applicationID)
            if ours { return }
            if tables > 0 {
                throw CatalogError.notACatalogue(path: path, "a SQLite database with \(tables) tables or indexes of its own; vtrace adds to an empty file or a catalogue")
            }
            try database.execute(CatalogSchema.creation)
        }
        // Readers (queries, exports) never block the writer, nor it them.
        try? database.execute("PRAGMA journal_mode = WAL")
    }
}
