//! What can go wrong with a catalogue: every case names the file and says
//! what to do; SQLite's own words are kept where it spoke.

/// A catalogue that cannot be opened, written or queried.
public enum CatalogError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No file at `path` (queries and exports never create one).
    case noSuchCatalogue(path: String)
    /// The file is not a SQLite database, or one that is not a vtrace catalogue.
    case notACatalogue(path: String, String)
    /// A newer vtrace wrote the catalogue: its schema version is past ours.
    case newerSchema(path: String, found: Int32, supported: Int32)
    /// Another process held the catalogue's write lock for longer than we wait.
    case locked(path: String, waitedMilliseconds: Int32)
    /// SQL given by the user that SQLite refused: its message.
    case query(String)
    /// Any other SQLite failure: what we were doing and SQLite's message.
    case sqlite(path: String, String)
    /// A file or directory (an export's) that could not be written.
    case io(path: String, String)

    public var description: String {
        switch self {
        case .noSuchCatalogue(let path):
            return "\(path): no such catalogue (create one with `vtrace catalog add \(path) TRACE_OR_DIR...`)"
        case .notACatalogue(let path, let why):
            return "\(path): not a vtrace catalogue: \(why)"
        case .newerSchema(let path, let found, let supported):
            return "\(path): catalogue schema version \(found) is newer than this vtrace's (\(supported)); a newer vtrace wrote it: use that one"
        case .locked(let path, let ms):
            return "\(path): another process held the catalogue's write lock for \(ms / 1000) s (--wait-seconds); nothing of this batch was written, earlier batches were: run again to add the rest"
        case .query(let message):
            return "SQL: \(message)"
        case .sqlite(let path, let message):
            return "\(path): SQLite: \(message)"
        case .io(let path, let message):
            return "\(path): \(message)"
        }
    }
}
