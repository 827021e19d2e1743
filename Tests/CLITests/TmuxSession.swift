import Foundation
import Glibc

/// A program on a real terminal: one detached tmux session of a fixed size,
/// on a tmux server of the test's own (a private socket, `-L`, and no
/// configuration file), so a user's tmux is never touched. Keys go in with
/// send-keys; the screen comes back with capture-pane. ``close()`` kills the
/// server and what runs in it.
final class TmuxSession {
    /// tmux on `PATH`, or nil.
    static let tmux: String? = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        .split(separator: ":").map { "\($0)/tmux" }.first { FileManager.default.isExecutableFile(atPath: $0) }

    private let tmux: String
    private let socket = "vtrace-test-\(getpid())-\(UUID().uuidString.prefix(8))"
    private var running = true
    /// The server's socket, removed after it (tmux leaves it behind).
    private var socketPath: String?

    /// Starts `command` (a shell command line) in a `width`×`height` session
    /// whose environment is this process's without tmux's and `VTRACE_HISTORY`,
    /// plus `environment`. Nil, having said SKIPPED and why, without tmux.
    init?(_ command: String, width: Int = 120, height: Int = 40, environment: [String: String] = [:], skipping what: String) throws {
        guard let tmux = Self.tmux else {
            print("SKIPPED: tmux is not installed (tools/bootstrap.sh --test installs it): \(what) was not tried on a terminal")
            return nil
        }
        self.tmux = tmux
        var inherited = ProcessInfo.processInfo.environment
        for name in ["TMUX", "TMUX_PANE", "VTRACE_HISTORY"] { inherited[name] = nil }
        try startServer(["new-session", "-d", "-x", "\(width)", "-y", "\(height)", "-s", "main", command],
                        environment: inherited.merging(environment) { $1 })
        socketPath = try run(["display-message", "-p", "#{socket_path}"]).trimmingCharacters(in: .newlines)
    }

    deinit { close() }

    /// Kills the server (and the session's processes with it).
    func close() {
        guard running else { return }
        running = false
        _ = try? run(["kill-server"])
        if let socketPath { unlink(socketPath) }
    }

    /// Keys by tmux's names (`Tab`, `Left`, `C-a`, `Enter`).
    func press(_ keys: String...) throws { try run(["send-keys", "-t", "main"] + keys) }

    /// Text typed as it is.
    func type(_ text: String) throws { try run(["send-keys", "-t", "main", "-l", text]) }

    /// The screen's lines (lines the terminal wrapped joined, trailing
    /// spaces taken off) to the last one not empty.
    func screen() throws -> [String] { try capture(joined: true) }

    /// The terminal's rows, the same way.
    func rows() throws -> [String] { try capture(joined: false) }

    private func capture(joined: Bool) throws -> [String] {
        let text = try run(["capture-pane", "-p", "-t", "main"] + (joined ? ["-J"] : []))
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            String(line.reversed().drop { $0 == " " }.reversed())
        }
        while lines.last == "" { lines.removeLast() }
        return lines
    }

    /// tmux's format `format` for the pane (`#{cursor_x}`, `#{pane_pid}`, …).
    func pane(_ format: String) throws -> String {
        try run(["display-message", "-p", "-t", "main", format]).trimmingCharacters(in: .newlines)
    }

    /// Waits (polling, up to `timeout` seconds) until the screen is exactly
    /// `expected` with the cursor at column `cursor` of its last row; throws,
    /// showing the last screen seen, otherwise (the steps after it would
    /// only wait in vain).
    func expectScreen(_ expected: [String], cursor: Int, timeout: Double = 15) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var seen: [String] = [], at = "", wanted = ""
        while true {
            seen = try screen()
            at = try pane("#{cursor_x} #{cursor_y}")
            wanted = "\(cursor) \(try rows().count - 1)"
            if seen == expected && at == wanted { return }
            if Date() > deadline { break }
            usleep(20_000)
        }
        throw ScreenMismatch(description: """
            the screen after \(timeout) s:
            \(seen.map { "|\($0)|" }.joined(separator: "\n"))
            cursor (x y) \(at); expected:
            \(expected.map { "|\($0)|" }.joined(separator: "\n"))
            cursor (x y) \(wanted)
            """)
    }

    /// Runs the tmux command that starts the server, as a login shell would
    /// start a program: no signal blocked or ignored (the test runner's
    /// threads block some, and a child inherits its spawner's mask: SIGTERM
    /// would never reach vtrace), the environment `environment`. The server
    /// stays behind holding the descriptors it was given, so its output goes
    /// to files, never to a pipe this process reads to its end.
    private func startServer(_ arguments: [String], environment: [String: String]) throws {
        let errors = FileManager.default.temporaryDirectory.appendingPathComponent("\(socket).err").path
        defer { unlink(errors) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([tmux, "-L", socket, "-f", "/dev/null"] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, tmux, &actions, &attributes, argv, envp)
        guard spawned == 0 else { throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EINVAL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else {
            throw TmuxFailed(command: arguments.joined(separator: " "), message: (try? String(contentsOfFile: errors, encoding: .utf8)) ?? "status \(status)")
        }
    }

    /// Runs a tmux command against the server; its output.
    @discardableResult
    private func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tmux)
        process.arguments = ["-L", socket, "-f", "/dev/null"] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = out.fileHandleForReading.readDataToEndOfFile()
        let error = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TmuxFailed(command: arguments.joined(separator: " "), message: String(decoding: error, as: UTF8.self))
        }
        return String(decoding: output, as: UTF8.self)
    }

    struct ScreenMismatch: Error, CustomStringConvertible {
        var description: String
    }

    struct TmuxFailed: Error, CustomStringConvertible {
        var command: String
        var message: String
        var description: String { "tmux \(command): \(message)" }
    }
}
