//! The line editor's history kept across sessions in the file that
//! `VTRACE_HISTORY` names.
import Foundation

/// A history file: one line entered a line, oldest first, at most `limit`
/// lines (appending past the limit drops the oldest).
struct LineHistoryFile {
    let path: String
    let limit: Int

    init(path: String, limit: Int = 1000) {
        self.path = path
        self.limit = limit
    }

    /// The last `limit` lines of the file, without empty lines and with
    /// control characters taken out (a recalled line is written to the
    /// terminal); none when there is no file yet.
    func load() -> [String] {
        lines().suffix(limit).map { line in
            String(String.UnicodeScalarView(line.unicodeScalars.filter { $0.value >= 0x20 && !(0x7F...0x9F).contains($0.value) }))
        }.filter { !$0.isEmpty }
    }

    /// Appends `line`, then, when the file has grown past `limit` lines,
    /// rewrites it with the last `limit` (atomically: a new file renamed over
    /// it). What another session appended meanwhile is kept. The file is
    /// readable by its owner only.
    func append(_ line: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        try FileHandle(fileDescriptor: fd, closeOnDealloc: true).write(contentsOf: Data((line + "\n").utf8))
        let all = lines()
        guard all.count > limit else { return }
        try Data(all.suffix(limit).map { $0 + "\n" }.joined().utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        chmod(path, 0o600)   // the atomic write's new file is 0644
    }

    private func lines() -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").map(String.init)
    }
}
