import Foundation
import Glibc

extension CLI {
    struct Measured {
        var status: Int32
        /// The child's own peak resident memory.
        var maxRSSBytes: Int
        var stdout: String
        var stderr: String
    }

    /// Runs the built `vtrace` with `arguments` (standard input from /dev/null,
    /// output to files, so no pipe fills up whatever it prints) and returns its
    /// exit status (128 + N for signal N), its own peak resident memory and
    /// its output. The peak comes from /usr/bin/time, which forks vtrace from
    /// its own small process: a child posix_spawn starts shares the test
    /// runner's memory until it execs (vfork), and Linux carries that high-water
    /// mark into the child's ru_maxrss (the whole suite's runner: 585 MB seen).
    static func runMeasured(_ arguments: [String]) throws -> Measured {
        let binary = CLI.productsDirectory.appendingPathComponent("vtrace").path
        let out = try temporaryFile("rss-\(UUID().uuidString).out", []), err = try temporaryFile("rss-\(UUID().uuidString).err", [])
        defer {
            try? FileManager.default.removeItem(atPath: out)
            try? FileManager.default.removeItem(atPath: err)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_TRUNC, 0)
        posix_spawn_file_actions_addopen(&actions, 2, err, O_WRONLY | O_TRUNC, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = (["/usr/bin/time", "-f", "vtrace-maxrss-kb %M", binary] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/usr/bin/time", &actions, nil, argv, environ)
        guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EINVAL) }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        // time exits with the program's status, or 128 + N when a signal ended it.
        let code = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + status & 0x7F
        var lines = try String(contentsOfFile: err, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        var peak = 0
        if let last = lines.last, last.hasPrefix("vtrace-maxrss-kb ") {
            peak = (Int(last.dropFirst("vtrace-maxrss-kb ".count)) ?? 0) * 1024
            lines.removeLast()
        }
        // time's own notes ("Command exited with non-zero status N", "Command
        // terminated by signal N") are not vtrace's output.
        if let last = lines.last, last.hasPrefix("Command exited with non-zero status") || last.hasPrefix("Command terminated by signal") {
            lines.removeLast()
        }
        let stderr = lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
        return Measured(status: code, maxRSSBytes: peak, stdout: try String(contentsOfFile: out, encoding: .utf8), stderr: stderr)
    }

    /// Runs the built `vtrace` with `arguments` on a pseudo-terminal (from
    /// script(1)), standard output and error together, with the given extra
    /// environment; nil, having said SKIPPED, where /usr/bin/script is missing.
    static func runOnATerminal(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String)? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else {
            print("SKIPPED: no /usr/bin/script to give vtrace a pseudo-terminal")
            return nil
        }
        let command = ([productsDirectory.appendingPathComponent("vtrace").path] + arguments).map(quoted).joined(separator: " ")
        return try runCombined("/usr/bin/script", ["-qec", command, "/dev/null"], environment: environment)
    }
}
