//! A child process that cannot outlive its parent: its own process group
//! (killed as a whole), a death signal bound to the starting thread, and,
//! when the parent is the terminal's foreground job, the terminal while it runs.

import CSpawn
import HostPrimitives
#if canImport(Glibc)
import Glibc
#endif

/// A started child, ended and reaped by the time the value is gone.
///
/// Start it from a thread that lives as long as the child should (the main
/// thread): Linux sends the death signal (SIGKILL) when *that thread* ends,
/// so even a SIGKILL of this process takes the child down. One thread waits
/// (``wait(orReadable:milliseconds:)``, ``stop(graceMilliseconds:)``); any
/// may read ``termination`` after that thread is joined.
public final class SupervisedChild: @unchecked Sendable {
    public let pid: Int32
    /// The terminal handed to the child's group, given back when it ends (-1: none).
    let terminal: Int32
    /// Readable once the child ends (-1: no pidfds here; polled instead).
    let pidfd: Int32
    private let lock = Mutex()
    private var ended: ChildTermination?

    /// What ``wait(orReadable:milliseconds:)`` woke for.
    public enum Wake: Equatable, Sendable {
        case ended(ChildTermination)
        /// The descriptor at this index of the ones passed is readable.
        case readable(Int)
        case timedOut
    }

    /// Starts `executable` with `arguments` (argv, its first element the name
    /// the program sees) in a process group of its own. With `takeTerminal`,
    /// when standard input is a terminal whose foreground group is ours, the
    /// child's group becomes the foreground one (a program that reads or sets
    /// up the terminal, like QEMU's `-serial stdio`, would otherwise stop on
    /// SIGTTIN/SIGTTOU), and ours again when it ends.
    public init(executable: String, arguments: [String], takeTerminal: Bool, standardOutputToStandardError: Bool) throws(SpawnError) {
        let terminal: Int32 = takeTerminal && cspawn_in_foreground(STDIN_FILENO) == 1 ? STDIN_FILENO : -1
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        let options = cspawn_options(terminal: terminal, stdout_to_stderr: standardOutputToStandardError ? 1 : 0, death_signal: SIGKILL)
        let pid = cspawn_start(executable, &argv, options)
        guard pid > 0 else { throw SpawnError(program: executable, errno: errno) }
        self.pid = pid
        self.terminal = terminal
        pidfd = cspawn_pidfd(pid)
    }

    deinit {
        if termination == nil { _ = reap() }
        if pidfd >= 0 { close(pidfd) }
    }

    /// How it ended; nil while it runs (or before a wait has seen it end).
    public var termination: ChildTermination? { lock.withLock { ended } }

    /// Sends `signal` to the child's whole process group (nothing once it is reaped).
    public func signalGroup(_ signal: Int32) {
        lock.withLock {
            if ended == nil { _ = kill(-pid, signal) }
        }
    }

    /// Waits until the child ends (reaping it: what is left of its group is
    /// killed), one of `fds` is readable, or `milliseconds` pass (negative:
    /// no limit). An ended child wins over a readable descriptor.
    public func wait(orReadable fds: [Int32], milliseconds: Int) -> Wake {
        if let t = termination { return .ended(t) }
        let start = monotonicNanoseconds()
        var polled = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        if pidfd >= 0 { polled.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
        while true {
            let elapsed = Int((monotonicNanoseconds() - start) / 1_000_000)
            let left = milliseconds < 0 ? -1 : max(0, milliseconds - elapsed)
            // Without a pidfd the child's end is looked for every 20 ms.
            let timeout = pidfd >= 0 ? left : (left < 0 ? 20 : min(left, 20))
            for i in polled.indices { polled[i].revents = 0 }
            let n = poll(&polled, nfds_t(polled.count), Int32(clamping: timeout))
            if n < 0 && errno != EINTR { return .timedOut }
            if pidfd >= 0 ? polled[fds.count].revents != 0 : cspawn_has_ended(pid) == 1 {
                return .ended(reap())
            }
            if let i = fds.indices.first(where: { polled[$0].revents != 0 }) { return .readable(i) }
            if left == 0 { return .timedOut }
        }
    }

    /// Ends the child: SIGTERM to its group, then SIGKILL if it has not ended
    /// within `graceMilliseconds`. Returns how it ended.
    @discardableResult
    public func stop(graceMilliseconds: Int) -> ChildTermination {
        signalGroup(SIGTERM)
        if case .ended(let t) = wait(orReadable: [], milliseconds: graceMilliseconds) { return t }
        signalGroup(SIGKILL)
        if case .ended(let t) = wait(orReadable: [], milliseconds: -1) { return t }
        return reap()
    }

    /// Kills what is left of the group, reaps the child, gives the terminal back.
    private func reap() -> ChildTermination {
        lock.lock()
        defer { lock.unlock() }
        if let ended { return ended }
        var code: Int32 = 0, signal: Int32 = 0
        let t: ChildTermination
        if cspawn_reap(pid, &code, &signal) == 0 {
            t = signal != 0 ? .killed(signal: signal) : .exited(code)
        } else {
            t = .killed(signal: SIGKILL)  // reaped elsewhere: not ours to know
        }
        if terminal >= 0 { cspawn_reclaim_terminal(terminal) }
        ended = t
        return t
    }
}
