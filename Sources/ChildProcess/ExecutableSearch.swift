#if canImport(Glibc)
import Glibc
#endif

/// Where a program named on a command line lives, as execvp would find it.
public enum ExecutableSearch {
    /// `name` itself when it holds a slash, else the first executable regular
    /// file called `name` in `path`'s directories (`PATH`'s syntax; an empty
    /// entry is the current directory); nil when there is none.
    public static func find(_ name: String, path: String?) -> String? {
        guard !name.isEmpty else { return nil }
        if name.contains("/") { return isExecutableFile(name) ? name : nil }
        for dir in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = dir.isEmpty ? name : "\(dir)/\(name)"
            if isExecutableFile(candidate) { return candidate }
        }
        return nil
    }

    static func isExecutableFile(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFREG && access(path, X_OK) == 0
    }
}
