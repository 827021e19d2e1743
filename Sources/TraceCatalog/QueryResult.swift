//! A query's result: column names and rows, read from SQLite.

/// The rows of one SQL statement.
public struct QueryResult: Sendable, Hashable {
    public var columns: [String]
    public var rows: [[SQLValue]]

    public init(columns: [String], rows: [[SQLValue]]) {
        self.columns = columns
        self.rows = rows
    }
}

extension Catalog {
    /// Runs one read-only statement of the user's and streams its rows to
    /// `row` (after `header` with the column names).
    /// - Throws: `CatalogError.query` with SQLite's message when the SQL fails.
    public func query(_ sql: String, header: ([String]) throws -> Void, row: ([SQLValue]) throws -> Void) throws {
        let statement: SQLiteStatement
        do {
            statement = try database.prepare(sql)
        } catch CatalogError.sqlite(_, let message) {
            throw CatalogError.query(message)
        }
        try header(statement.columnNames)
        do {
            while try statement.step() { try row(statement.row()) }
        } catch CatalogError.sqlite(_, let message) {
            throw CatalogError.query(message)
        }
    }

    /// All rows of `sql` at once.
    public func query(_ sql: String) throws -> QueryResult {
        var result = QueryResult(columns: [], rows: [])
        try query(sql, header: { result.columns = $0 }, row: { result.rows.append($0) })
        return result
    }
}
