//! A compiled SQLite statement: bind, step, read columns.

import CSQLite

/// A prepared statement of a `SQLiteDatabase`, reused across rows.
public final class SQLiteStatement {
    let handle: OpaquePointer
    let database: SQLiteDatabase

    init(handle: OpaquePointer, database: SQLiteDatabase) {
        self.handle = handle
        self.database = database
    }

    deinit { sqlite3_finalize(handle) }

    /// Resets the statement and binds `values` to its parameters, in order.
    public func bind(_ values: [SQLValue]) throws(CatalogError) {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        // SQLITE_TRANSIENT: SQLite copies the bytes before the call returns.
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        for (i, value) in values.enumerated() {
            let n = Int32(i + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(handle, n)
            case .integer(let v): rc = sqlite3_bind_int64(handle, n, v)
            case .real(let v): rc = sqlite3_bind_double(handle, n, v)
            case .text(let v): rc = sqlite3_bind_text(handle, n, v, -1, transient)
            case .blob(let v): rc = v.withUnsafeBytes { sqlite3_bind_blob64(handle, n, $0.baseAddress, sqlite3_uint64($0.count), transient) }
            }
            guard rc == SQLITE_OK else { throw database.failure(rc) }
        }
    }

    /// Steps once: true when a row is ready to read, false when done.
    public func step() throws(CatalogError) -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw database.failure(rc)
    }

    /// Binds `values` and runs the statement to its end (an insert, an update).
    public func run(_ values: [SQLValue]) throws(CatalogError) {
        try bind(values)
        while try step() {}
    }

    /// Ends the current run (releases what a read held); bindings stay.
    public func reset() { sqlite3_reset(handle) }

    /// The current row's column `i`.
    public func column(_ i: Int) -> SQLValue {
        let n = Int32(i)
        switch sqlite3_column_type(handle, n) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(handle, n))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(handle, n))
        case SQLITE_TEXT: return .text(sqlite3_column_text(handle, n).map { String(cString: $0) } ?? "")
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(handle, n))
            guard count > 0, let bytes = sqlite3_column_blob(handle, n) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: bytes, count: count)))
        default: return .null
        }
    }

    /// The current row, every column.
    public func row() -> [SQLValue] { (0..<columnCount).map(column) }

    public var columnCount: Int { Int(sqlite3_column_count(handle)) }

    /// The result columns' names.
    public var columnNames: [String] { (0..<columnCount).map { String(cString: sqlite3_column_name(handle, Int32($0))) } }

    /// True when the statement only reads (SQLite's own judgement).
    public var isReadOnly: Bool { sqlite3_stmt_readonly(handle) != 0 }
}
