//! Storing summaries: one row per content (SHA-256), so adding again changes
//! nothing, a moved file keeps its row under its new path, and a file
//! rewritten in place replaces its old row.

import Foundation

/// What storing one summary did.
public enum StoreOutcome: Sendable, Hashable {
    /// A new row.
    case added
    /// The same content at the same path: nothing to add.
    case unchanged
    /// The same content at the same path, stored again to add what it lacked (a replay verdict).
    case refreshed
    /// The file at this path changed: its old row was replaced.
    case replaced
    /// The content's row was at `from`, where the file no longer is: the row now has the new path.
    case moved(from: String)
    /// The same content is catalogued at `path`, which is still there: a copy; no second row.
    case copyOf(path: String)
}

/// The statements of ``Catalog/store(_:)``, compiled once per catalogue.
final class CatalogStatements {
    let byHash, byPath, deleteID, deleteOthersAtPath, movePath, touch, insertTrace, insertCounter, insertTimeline: SQLiteStatement

    init(_ db: SQLiteDatabase) {
        func compile(_ sql: String) -> SQLiteStatement {
            // The SQL is ours and the schema checked before: a failure here is a bug.
            do { return try db.prepare(sql) } catch { fatalError("catalogue statement \(sql): \(error)") }
        }
        func placeholders(_ n: Int) -> String { Array(repeating: "?", count: n).joined(separator: ", ") }
        byHash = compile("SELECT id, path, file_bytes, mtime_ns, replay_status FROM traces WHERE content_sha256 = ?")
        byPath = compile("SELECT id, file_bytes, mtime_ns, replay_status FROM traces WHERE path = ?")
        deleteID = compile("DELETE FROM traces WHERE id = ?")
        deleteOthersAtPath = compile("DELETE FROM traces WHERE path = ? AND id IS NOT ?")
        movePath = compile("UPDATE traces SET path = ?, mtime_ns = ? WHERE id = ?")
        touch = compile("UPDATE traces SET mtime_ns = ? WHERE id = ?")
        let columns = CatalogSchema.traceColumns.map(\.name)
        insertTrace = compile("INSERT INTO traces (\(columns.joined(separator: ", "))) VALUES (\(placeholders(columns.count)))")
        insertCounter = compile("INSERT INTO counters VALUES (\(placeholders(CatalogSchema.counterStatColumns.count)))")
        insertTimeline = compile("INSERT INTO timeline VALUES (\(placeholders(CatalogSchema.timelineColumns.count)))")
    }
}

/// A catalogued file as its row knows it (``Catalog/known(path:)``).
public struct KnownTrace: Sendable, Hashable {
    public var id: Int64
    public var fileBytes: Int64
    public var mtimeNanoseconds: Int64
    public var replayed: Bool
}

extension Catalog {
    /// The row catalogued at `path`, if any: whether the file needs reading again.
    public func known(path: String) throws -> KnownTrace? {
        let s = statements.byPath
        try s.bind([.text(path)])
        defer { s.reset() }
        guard try s.step() else { return nil }
        return KnownTrace(id: s.column(0).integerValue ?? 0, fileBytes: s.column(1).integerValue ?? 0,
                          mtimeNanoseconds: s.column(2).integerValue ?? 0, replayed: s.column(3) != .null)
    }

    /// Stores `batch` in one transaction (waiting for another writer's lock):
    /// all of it or, on a failure, none of it.
    public func store(_ batch: [TraceSummary]) throws -> [StoreOutcome] {
        let now = Int64(Date().timeIntervalSince1970 * 1e9)
        return try database.transaction { try batch.map { try store($0, at: now) } }
    }

    /// Stores one summary (inside a transaction).
    func store(_ s: TraceSummary, at now: Int64) throws -> StoreOutcome {
        let st = statements
        guard let hash = s.contentHash else {
            // Unreadable: no identity; the path's row is this one.
            try st.deleteOthersAtPath.run([.text(s.path), .null])
            try insert(s, at: now)
            return .added
        }
        try st.byHash.bind([.text(hash)])
        guard try st.byHash.step() else {
            st.byHash.reset()
            let replaced = try known(path: s.path) != nil
            try st.deleteOthersAtPath.run([.text(s.path), .null])
            try insert(s, at: now)
            return replaced ? .replaced : .added
        }
        let id = st.byHash.column(0).integerValue ?? 0
        let oldPath = st.byHash.column(1).textValue ?? ""
        let old = (bytes: st.byHash.column(2).integerValue ?? 0, mtime: st.byHash.column(3).integerValue ?? 0)
        let lacksReplay = s.replay != nil && st.byHash.column(4) == .null
        st.byHash.reset()
        if oldPath != s.path && Self.unchangedOnDisk(oldPath, bytes: old.bytes, mtime: old.mtime) {
            return .copyOf(path: oldPath)
        }
        // Any other row at this path is of content that is no longer there.
        try st.deleteOthersAtPath.run([.text(s.path), .integer(id)])
        if lacksReplay {
            try st.deleteID.run([.integer(id)])
            try insert(s, at: now)
        } else if oldPath != s.path {
            try st.movePath.run([.text(s.path), .integer(s.mtimeNanoseconds), .integer(id)])
        } else {
            try st.touch.run([.integer(s.mtimeNanoseconds), .integer(id)])
        }
        if oldPath != s.path { return .moved(from: oldPath) }
        return lacksReplay ? .refreshed : .unchanged
    }

    /// Inserts `s`'s rows in the three tables.
    func insert(_ s: TraceSummary, at now: Int64) throws {
        let st = statements
        try st.insertTrace.run(s.traceRow(cataloguedAt: now))
        let id = database.lastInsertID
        for row in s.counterRows(id: id) { try st.insertCounter.run(row) }
        for row in s.timelineRows(id: id) { try st.insertTimeline.run(row) }
    }

    /// True when a regular file is at `path` with the size and modification
    /// time catalogued: the same file, still there.
    static func unchangedOnDisk(_ path: String, bytes: Int64, mtime: Int64) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return false }
        return Int64(st.st_size) == bytes && Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec) == mtime
    }
}
