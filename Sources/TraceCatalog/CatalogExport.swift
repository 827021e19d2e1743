//! `vtrace catalog export`: each table as one file of CSV or JSON Lines, the
//! forms DuckDB, Spark and Trino read as they are.

import Foundation

extension Catalog {
    /// Writes `DIR/TABLE.csv` or `DIR/TABLE.jsonl` for every table, in the
    /// order of its key (creating `directory`). Each file is written beside
    /// its place and renamed into it: an export that fails leaves the
    /// previous files (or none), never half of one.
    /// - Returns: per table, its file and rows written.
    public func export(to directory: String, format: RowFormat) throws -> [(file: String, rows: Int)] {
        precondition(format != .table, "a table is for people; export writes CSV or JSON Lines")
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw CatalogError.io(path: directory, "is a file; -o names a directory")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CatalogError.io(path: directory, "cannot create the directory: \(error.localizedDescription)")
        }
        var written: [(String, Int)] = []
        // One read transaction: the files agree with each other while `catalog add` runs.
        try database.execute("BEGIN")
        defer { try? database.execute("COMMIT") }
        for table in CatalogSchema.tables {
            let file = directory + "/" + table.name + "." + format.rawValue
            let temporary = directory + "/." + table.name + "." + format.rawValue + ".tmp-\(getpid())"
            guard let out = FileHandle(forWritingAtPath: temporary) ?? {
                FileManager.default.createFile(atPath: temporary, contents: nil) ? FileHandle(forWritingAtPath: temporary) : nil
            }() else {
                throw CatalogError.io(path: temporary, "cannot be written")
            }
            var rows = 0
            var buffer = ""
            do {
                defer { try? out.close() }
                func flush() throws {
                    try out.write(contentsOf: Data(buffer.utf8))
                    buffer.removeAll(keepingCapacity: true)
                }
                var columns: [String] = []
                try query("SELECT * FROM \(table.name) ORDER BY \(table.orderBy)", header: {
                    columns = $0
                    buffer += format.header($0) ?? ""
                }, row: {
                    buffer += format.line($0, columns: columns)
                    rows += 1
                    if buffer.utf8.count > 1 << 20 { try flush() }
                })
                try flush()
                try out.synchronize()
            } catch let error as CatalogError {
                unlink(temporary)
                throw error
            } catch {
                unlink(temporary)
                throw CatalogError.io(path: file, "cannot be written: \(error.localizedDescription)")
            }
            guard rename(temporary, file) == 0 else {
                let why = String(cString: strerror(errno))
                unlink(temporary)
                throw CatalogError.io(path: file, why)
            }
            written.append((file, rows))
        }
        return written
    }
}
