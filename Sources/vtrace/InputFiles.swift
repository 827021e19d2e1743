import Foundation

/// Reading input files with a size limit and a clear error.
enum InputFiles {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The bytes of `path`, refusing files larger than `limit` before reading them.
    static func read(_ path: String, limit: Int) throws -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw Failure(description: "\(path): no such file")
        }
        if isDirectory.boolValue { throw Failure(description: "\(path): is a directory") }
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        if let size = attributes?[.size] as? Int, size > limit {
            throw Failure(description: "\(path): \(size) bytes is over the \(limit)-byte limit")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else { throw Failure(description: "\(path): cannot be read") }
        defer { try? handle.close() }
        let data = try handle.read(upToCount: limit + 1) ?? Data()
        return [UInt8](data)
    }
}

/// Writes a line to standard error.
func printError(_ text: String) {
    fflush(nil)  // flush stdout first: keep the order of interleaved stdout and stderr lines
    FileHandle.standardError.write(Data((terminalSafe(text, keepNewlines: true) + "\n").utf8))
}
