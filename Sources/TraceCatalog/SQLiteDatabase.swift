//! A connection to one SQLite file: open, run, prepare, transactions. Every
//! failure is a `CatalogError` carrying SQLite's own message.

import CSQLite
import Foundation

/// One SQLite connection, used from one thread at a time (the catalogue's
/// ingest writes from its calling thread; workers never touch it).
public final class SQLiteDatabase {
    let handle: OpaquePointer
    public let path: String
    /// How long a write waits for another process's lock (SQLite's busy timeout).
    public let waitMilliseconds: Int32

    /// Opens `path`; with `create`, a missing file becomes an empty database.
    /// - Throws: `CatalogError.noSuchCatalogue` for a missing file without
    ///   `create`; `.sqlite` when SQLite cannot open it.
    public init(path: String, readOnly: Bool, create: Bool, waitMilliseconds: Int32) throws(CatalogError) {
        var db: OpaquePointer?
        let flags = readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0)
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close(db)
            if rc & 0xff == SQLITE_CANTOPEN && !create { throw .noSuchCatalogue(path: path) }
            throw .sqlite(path: path, message)
        }
        handle = db
        self.path = path
        self.waitMilliseconds = waitMilliseconds
        // A second writer waits this long for the first one's lock, then fails cleanly.
        sqlite3_busy_timeout(db, waitMilliseconds)
    }

    deinit { sqlite3_close_v2(handle) }

    /// SQLite's message for the last failure on this connection.
    var message: String { String(cString: sqlite3_errmsg(handle)) }

    /// The error for a failed call that returned `rc`: a lock held past our
    /// wait is `.locked`, a file that is not a database `.notACatalogue`.
    func failure(_ rc: Int32) -> CatalogError {
        switch rc & 0xff {
        case SQLITE_BUSY, SQLITE_LOCKED: return .locked(path: path, waitedMilliseconds: waitMilliseconds)
        case SQLITE_NOTADB: return .notACatalogue(path: path, "not a SQLite database (SQLite: \(message))")
        default: return .sqlite(path: path, message)
        }
    }

    /// Runs `sql` (one or more statements, no results).
    public func execute(_ sql: String) throws(CatalogError) {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw failure(rc) }
    }

    /// Compiles one statement.
    /// - Throws: `.sqlite` with SQLite's message; also for no statement, or
    ///   more than one (only the first would run).
    public func prepare(_ sql: String) throws(CatalogError) -> SQLiteStatement {
        var statement: OpaquePointer?
        let (rc, rest) = sql.withCString { text -> (Int32, String) in
            var tail: UnsafePointer<CChar>?
            let rc = sqlite3_prepare_v2(handle, text, -1, &statement, &tail)
            return (rc, tail.map { String(cString: $0) } ?? "")
        }
        guard rc == SQLITE_OK else { throw failure(rc) }
        guard let statement else { throw .sqlite(path: path, "no SQL statement (only blanks or comments)") }
        if !Self.isBlank(rest) {
            sqlite3_finalize(statement)
            throw .sqlite(path: path, "one statement at a time: \"\(rest.trimmingCharacters(in: .whitespacesAndNewlines))\" follows the first")
        }
        return SQLiteStatement(handle: statement, database: self)
    }

    /// True for text that is only blanks, semicolons and SQL comments.
    static func isBlank(_ text: String) -> Bool {
        var rest = Substring(text)
        while let c = rest.first {
            if c == ";" || c.isWhitespace {
                rest = rest.dropFirst()
            } else if rest.hasPrefix("--") {
                rest = rest.drop { $0 != "\n" }
            } else if rest.hasPrefix("/*") {
                guard let end = rest.range(of: "*/") else { return true }
                rest = rest[end.upperBound...]
            } else {
                return false
            }
        }
        return true
    }

    /// The first column of the first row of `sql`, or nil without rows.
    public func scalar(_ sql: String) throws(CatalogError) -> SQLValue? {
        let s = try prepare(sql)
        return try s.step() ? s.column(0) : nil
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`: the write lock is taken
    /// first (waiting up to the busy timeout), so two writers never deadlock
    /// upgrading a read; a throw rolls everything back.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// The row id of the last insert.
    public var lastInsertID: Int64 { sqlite3_last_insert_rowid(handle) }
}
