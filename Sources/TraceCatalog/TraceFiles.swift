//! The files a `catalog add` names: files as given, directories searched for traces.

import Foundation

public enum TraceFiles {
    /// The file names a directory search takes: recordings and recordings a
    /// recorder left unfinished. Anything else in a directory (notes, logs) is
    /// not a trace and is passed over; a file named directly is always taken.
    public static func isTraceName(_ name: String) -> Bool {
        name.hasSuffix(".vtrace") || name.hasSuffix(".vtrace.partial")
    }

    /// Absolute paths of `arguments`' files, each directory's traces (at any
    /// depth) in name order, every file once.
    /// - Throws: `CatalogError.io` for an argument that does not exist,
    ///   before anything is read.
    public static func collect(_ arguments: [String]) throws(CatalogError) -> [String] {
        var out: [String] = []
        var seen = Set<String>()
        for argument in arguments {
            let path = URL(fileURLWithPath: argument).standardizedFileURL.path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw .io(path: argument, "no such file or directory")
            }
            var found: [String] = [path]
            if isDirectory.boolValue {
                guard let walker = FileManager.default.enumerator(atPath: path) else { throw .io(path: argument, "cannot list the directory") }
                found = []
                while let relative = walker.nextObject() as? String {
                    if isTraceName(relative) { found.append(path + "/" + relative) }
                }
                found.sort()
            }
            for f in found where seen.insert(f).inserted { out.append(f) }
        }
        return out
    }
}
